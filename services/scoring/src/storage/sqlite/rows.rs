//! Rows as SQLite returns them (instants in microseconds since the epoch, documents as JSON
//! text), and their conversion into domain records.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::{
        decision::{Override, Reason, TierState},
        month::Month,
        policy::PolicyInput,
        program::{Program, Scope, Tier},
        state::{HistoryRecord, HistoryWindow, StoredState},
        versions::{EvaluationRun, PolicyStatus, PolicyVersion, RunStatus, RunTrigger},
        window::{Bucket, Totals},
    },
};

pub(super) use crate::storage::HISTORY_COLUMNS;

/// A tier history record as stored ([`HISTORY_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct HistoryRow {
    id: Uuid,
    program_id: Uuid,
    customer_id: Uuid,
    from_rank: i64,
    to_rank: i64,
    reason: String,
    policy_version_id: Option<Uuid>,
    policy_version: Option<i32>,
    totals: Json<Totals>,
    occurred_at: i64,
    window_start: Option<i64>,
    window_end: Option<i64>,
    evaluation_run_id: Option<Uuid>,
    activity_id: Option<Uuid>,
    operator_name: Option<String>,
    operator_reason: Option<String>,
    override_expires_at: Option<i64>,
}

impl HistoryRow {
    /// The record; a reason this build does not know is an internal error.
    pub(super) fn into_record(self) -> Result<HistoryRecord, ScoringError> {
        Ok(HistoryRecord {
            id: self.id,
            program_id: self.program_id,
            customer_id: self.customer_id,
            from_rank: rank(self.from_rank),
            to_rank: rank(self.to_rank),
            reason: Reason::parse(&self.reason)
                .ok_or_else(|| ScoringError::Internal(format!("reason {:?}", self.reason)))?,
            policy_version_id: self.policy_version_id,
            policy_version: self.policy_version,
            totals: self.totals.0,
            occurred_at: instant(self.occurred_at),
            window: self.window_end.map(|end| HistoryWindow {
                start: self.window_start.map(instant),
                end: instant(end),
            }),
            evaluation_run_id: self.evaluation_run_id,
            activity_id: self.activity_id,
            operator_name: self.operator_name,
            operator_reason: self.operator_reason,
            override_expires_at: self.override_expires_at.map(instant),
        })
    }
}

pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Whole days from `earlier` to `later`, rounded down (as Postgres's `floor` of the epoch
/// difference).
pub(super) fn days_between(earlier: i64, later: DateTime<Utc>) -> i64 {
    (micros(later) - earlier).div_euclid(86_400_000_000)
}

pub(super) fn rank(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

pub(super) const PROGRAM_COLUMNS: &str =
    "id, code, name, currency, scope, tiers, created_at, cache_generation, last_evaluated_at";

pub(super) const POLICY_COLUMNS: &str = "id, program_id, version, status, rules, description, revision, created_by, \
     created_at, updated_at, activated_by, activated_at, retired_by, retired_at";

pub(super) const RUN_COLUMNS: &str = "id, program_id, policy_version_id, \
     (SELECT version FROM policy_versions p WHERE p.id = policy_version_id) AS policy_version, trigger, due_at, status, \
     requested_by, started_at, finished_at, summary, error, members_evaluated, upgrades, downgrades, counts_before, resumed";

pub(super) const STATE_COLUMNS: &str = "earned_rank, since, last_qualified_at, override_rank, override_until, override_reason, \
     override_operator, override_set_at, lapsed_at, version";

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ProgramRow {
    id: Uuid,
    code: String,
    name: String,
    currency: String,
    scope: Json<Scope>,
    tiers: Json<Vec<Tier>>,
    created_at: i64,
    cache_generation: i32,
    last_evaluated_at: Option<i64>,
}

impl From<ProgramRow> for Program {
    fn from(row: ProgramRow) -> Self {
        Self {
            id: row.id,
            code: row.code,
            name: row.name,
            currency: row.currency,
            scope: row.scope.0,
            tiers: row.tiers.0,
            created_at: instant(row.created_at),
            cache_generation: row.cache_generation,
            last_evaluated_at: row.last_evaluated_at.map(instant),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct PolicyRow {
    id: Uuid,
    program_id: Uuid,
    version: i32,
    status: String,
    rules: Json<PolicyInput>,
    description: String,
    revision: i64,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    activated_by: Option<String>,
    activated_at: Option<i64>,
    retired_by: Option<String>,
    retired_at: Option<i64>,
}

impl TryFrom<PolicyRow> for PolicyVersion {
    type Error = ScoringError;

    fn try_from(row: PolicyRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            program_id: row.program_id,
            version: row.version,
            status: PolicyStatus::parse(&row.status)
                .ok_or_else(|| ScoringError::Internal(format!("policy status {:?}", row.status)))?,
            document: row.rules.0,
            description: row.description,
            revision: row.revision,
            created_by: row.created_by,
            created_at: instant(row.created_at),
            updated_at: instant(row.updated_at),
            activated_by: row.activated_by,
            activated_at: row.activated_at.map(instant),
            retired_by: row.retired_by,
            retired_at: row.retired_at.map(instant),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct RunRow {
    id: Uuid,
    program_id: Uuid,
    policy_version_id: Uuid,
    policy_version: Option<i32>,
    trigger: String,
    due_at: Option<i64>,
    status: String,
    requested_by: String,
    started_at: i64,
    finished_at: Option<i64>,
    summary: Json<serde_json::Value>,
    error: Option<String>,
    members_evaluated: i64,
    upgrades: i64,
    downgrades: i64,
    counts_before: Option<Json<serde_json::Value>>,
    resumed: i32,
}

impl TryFrom<RunRow> for EvaluationRun {
    type Error = ScoringError;

    fn try_from(row: RunRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            program_id: row.program_id,
            policy_version_id: row.policy_version_id,
            policy_version: row.policy_version.unwrap_or_default(),
            trigger: RunTrigger::parse(&row.trigger)
                .ok_or_else(|| ScoringError::Internal(format!("run trigger {:?}", row.trigger)))?,
            due_at: row.due_at.map(instant),
            status: RunStatus::parse(&row.status)
                .ok_or_else(|| ScoringError::Internal(format!("run status {:?}", row.status)))?,
            requested_by: row.requested_by,
            started_at: instant(row.started_at),
            finished_at: row.finished_at.map(instant),
            summary: row.summary.0,
            error: row.error,
            progress: crate::storage::tx::RunProgress {
                evaluated: row.members_evaluated,
                upgrades: row.upgrades,
                downgrades: row.downgrades,
            },
            counts_before: row.counts_before.map(|counts| counts.0),
            resumed: row.resumed,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct StateRow {
    earned_rank: i64,
    since: i64,
    last_qualified_at: Option<i64>,
    override_rank: Option<i64>,
    override_until: Option<i64>,
    override_reason: Option<String>,
    override_operator: Option<String>,
    override_set_at: Option<i64>,
    lapsed_at: Option<i64>,
    version: i64,
}

impl From<StateRow> for StoredState {
    fn from(row: StateRow) -> Self {
        let manual = match (row.override_rank, row.override_until, row.override_set_at) {
            (Some(override_rank), Some(until), Some(set_at)) => Some(Override {
                rank: rank(override_rank),
                until: instant(until),
                reason: row.override_reason.unwrap_or_default(),
                operator: row.override_operator.unwrap_or_default(),
                set_at: instant(set_at),
            }),
            _ => None,
        };
        Self {
            state: TierState {
                earned_rank: rank(row.earned_rank),
                since: instant(row.since),
                last_qualified_at: row.last_qualified_at.map(instant),
                lapsed_at: row.lapsed_at.map(instant),
                manual,
            },
            version: row.version,
        }
    }
}

/// One bucket row with its customer.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct BucketRow {
    pub(super) customer_id: Uuid,
    month: NaiveDate,
    net_spend_minor: i64,
    points: i64,
    purchases: i64,
}

impl From<BucketRow> for Bucket {
    fn from(row: BucketRow) -> Self {
        Self {
            month: Month::of_date(row.month),
            net_spend_minor: row.net_spend_minor,
            points: row.points,
            purchases: row.purchases,
        }
    }
}

pub(super) const BUCKET_COLUMNS: &str = "customer_id, month, net_spend_minor, points, purchases";
