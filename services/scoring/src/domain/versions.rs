//! Policy versions (draft → active → retired) and evaluation runs, as stored.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::policy::PolicyInput;
use crate::ScoringError;

/// Where a policy version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyStatus {
    /// Editable, not in force; can be simulated.
    Draft,
    /// In force; one per program.
    Active,
    /// No longer in force, or a draft dropped.
    Retired,
}

impl PolicyStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "draft" => Some(Self::Draft),
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// A version of a program's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// Id.
    pub id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// 1, 2, 3… per program.
    pub version: i32,
    /// Draft, active or retired.
    pub status: PolicyStatus,
    /// The rules as written (validated against the program when stored and when used).
    pub document: PolicyInput,
    /// Free text.
    pub description: String,
    /// Bumped on every change, for optimistic concurrency.
    pub revision: i64,
    /// Who wrote it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who activated it.
    pub activated_by: Option<String>,
    /// When.
    pub activated_at: Option<DateTime<Utc>>,
    /// Who retired it.
    pub retired_by: Option<String>,
    /// When.
    pub retired_at: Option<DateTime<Utc>>,
}

impl PolicyVersion {
    /// The version itself when it is a draft at `expected_revision` (any revision when `None`):
    /// only a draft changes, and a stale revision means the caller edited an old copy.
    ///
    /// # Errors
    /// `FailedPrecondition` for a version that is not a draft, `Aborted` for a stale revision.
    pub fn into_draft_at(self, expected_revision: Option<i64>) -> Result<Self, ScoringError> {
        if self.status != PolicyStatus::Draft {
            return Err(ScoringError::FailedPrecondition(format!(
                "policy version {} is {}, not a draft",
                self.id,
                self.status.as_str()
            )));
        }
        if expected_revision.is_some_and(|expected| expected != self.revision) {
            return Err(ScoringError::Aborted(format!(
                "policy version {} is at revision {}; reload and retry",
                self.id, self.revision
            )));
        }
        Ok(self)
    }
}

/// What starts an evaluation run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// The policy's schedule.
    Schedule,
    /// `EvaluateNow`.
    Manual,
    /// `ActivatePolicy`.
    PolicyActivation,
}

impl RunTrigger {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::PolicyActivation => "policy_activation",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "schedule" => Some(Self::Schedule),
            "manual" => Some(Self::Manual),
            "policy_activation" => Some(Self::PolicyActivation),
            _ => None,
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// In progress.
    Running,
    /// Done.
    Succeeded,
    /// Stopped by an error.
    Failed,
}

impl RunStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "running" => Some(Self::Running),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// An evaluation run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRun {
    /// Id.
    pub id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// The policy applied.
    pub policy_version_id: Uuid,
    /// Its version number.
    pub policy_version: i32,
    /// What started it.
    pub trigger: RunTrigger,
    /// The due time, for scheduled runs.
    pub due_at: Option<DateTime<Utc>>,
    /// Where it is.
    pub status: RunStatus,
    /// Who asked (manual and activation runs).
    pub requested_by: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
    /// Counts per tier before and after, changes: free-form JSON filled as the run ends.
    pub summary: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
    /// Its counters so far (they grow with each page's commit).
    pub progress: RunProgress,
    /// Customers per tier before the run, once it started.
    pub counts_before: Option<serde_json::Value>,
    /// Times it was resumed after its replica stopped.
    pub resumed: i32,
}

/// A run as it starts judging, or resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// When the run first started judging: the instant a run by hand judges the window at, kept
    /// across resumes so that every member of the run is judged on one window.
    pub judging_started_at: DateTime<Utc>,
    /// The tier counts before its first start, once stored.
    pub counts_before: Option<serde_json::Value>,
    /// How many times it was resumed, this start included.
    pub resumed: i32,
}

/// What one page of an evaluation run did; added to the run's counters in the page's
/// transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunProgress {
    /// Members judged.
    pub evaluated: i64,
    /// Changes to a higher tier.
    pub upgrades: i64,
    /// Changes to a lower tier.
    pub downgrades: i64,
}
