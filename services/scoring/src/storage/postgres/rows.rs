//! Rows as Postgres returns them, and their conversion into domain records.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::{
        accrual::CountedPurchase,
        decision::Reason,
        month::Month,
        policy::PolicyInput,
        program::{Program, Scope, Tier},
        state::{HistoryRecord, HistoryWindow},
        versions::{EvaluationRun, PolicyStatus, PolicyVersion, RunStatus, RunTrigger},
        window::Totals,
    },
};

pub(super) use crate::storage::HISTORY_COLUMNS;

/// A tier history record as stored ([`HISTORY_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct HistoryRow {
    id: Uuid,
    program_id: Uuid,
    customer_id: Uuid,
    from_rank: i32,
    to_rank: i32,
    reason: String,
    policy_version_id: Option<Uuid>,
    policy_version: Option<i32>,
    totals: Json<Totals>,
    occurred_at: DateTime<Utc>,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
    evaluation_run_id: Option<Uuid>,
    activity_id: Option<Uuid>,
    operator_name: Option<String>,
    operator_reason: Option<String>,
    override_expires_at: Option<DateTime<Utc>>,
}

impl HistoryRow {
    /// The record; a reason this build does not know is an internal error.
    pub(super) fn into_record(self) -> Result<HistoryRecord, ScoringError> {
        Ok(HistoryRecord {
            id: self.id,
            program_id: self.program_id,
            customer_id: self.customer_id,
            from_rank: u32::try_from(self.from_rank).unwrap_or(0),
            to_rank: u32::try_from(self.to_rank).unwrap_or(0),
            reason: Reason::parse(&self.reason)
                .ok_or_else(|| ScoringError::Internal(format!("reason {:?}", self.reason)))?,
            policy_version_id: self.policy_version_id,
            policy_version: self.policy_version,
            totals: self.totals.0,
            occurred_at: self.occurred_at,
            window: self.window_end.map(|end| HistoryWindow {
                start: self.window_start,
                end,
            }),
            evaluation_run_id: self.evaluation_run_id,
            activity_id: self.activity_id,
            operator_name: self.operator_name,
            operator_reason: self.operator_reason,
            override_expires_at: self.override_expires_at,
        })
    }
}

pub(super) const COUNTED_COLUMNS: &str = "program_id, activity_id, customer_id, occurred_at, amount_minor, \
     refunded_minor, points, brand, sales_channel";

/// A counted purchase as stored ([`COUNTED_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CountedRow {
    pub(super) program_id: Uuid,
    activity_id: Uuid,
    customer_id: Uuid,
    occurred_at: DateTime<Utc>,
    amount_minor: i64,
    refunded_minor: i64,
    points: i64,
    brand: String,
    sales_channel: String,
}

impl CountedRow {
    /// The purchase, its month counted in `zone`.
    pub(super) fn into_purchase(self, zone: chrono_tz::Tz) -> CountedPurchase {
        CountedPurchase {
            activity_id: self.activity_id,
            customer_id: self.customer_id,
            occurred_at: self.occurred_at,
            month: Month::of(self.occurred_at, zone),
            amount_minor: self.amount_minor,
            refunded_minor: self.refunded_minor,
            points: self.points,
            brand: self.brand,
            sales_channel: self.sales_channel,
        }
    }
}

pub(super) const PROGRAM_COLUMNS: &str =
    "id, code, name, currency, scope, tiers, created_at, cache_generation, last_evaluated_at";

pub(super) const POLICY_COLUMNS: &str = "id, program_id, version, status, rules, description, revision, created_by, \
     created_at, updated_at, activated_by, activated_at, retired_by, retired_at";

pub(super) const RUN_COLUMNS: &str = "id, program_id, policy_version_id, \
     (SELECT version FROM policy_versions p WHERE p.id = policy_version_id) AS policy_version, trigger, due_at, status, \
     requested_by, started_at, finished_at, summary, error, members_evaluated, upgrades, downgrades, counts_before, resumed";

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ProgramRow {
    id: Uuid,
    code: String,
    name: String,
    currency: String,
    scope: Json<Scope>,
    tiers: Json<Vec<Tier>>,
    created_at: DateTime<Utc>,
    cache_generation: i32,
    last_evaluated_at: Option<DateTime<Utc>>,
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
            created_at: row.created_at,
            cache_generation: row.cache_generation,
            last_evaluated_at: row.last_evaluated_at,
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
    pub(super) revision: i64,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    activated_by: Option<String>,
    activated_at: Option<DateTime<Utc>>,
    retired_by: Option<String>,
    retired_at: Option<DateTime<Utc>>,
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
            created_at: row.created_at,
            updated_at: row.updated_at,
            activated_by: row.activated_by,
            activated_at: row.activated_at,
            retired_by: row.retired_by,
            retired_at: row.retired_at,
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
    due_at: Option<DateTime<Utc>>,
    status: String,
    requested_by: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
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
            due_at: row.due_at,
            status: RunStatus::parse(&row.status)
                .ok_or_else(|| ScoringError::Internal(format!("run status {:?}", row.status)))?,
            requested_by: row.requested_by,
            started_at: row.started_at,
            finished_at: row.finished_at,
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

/// A customer's buckets as the arrays `array_agg(… ORDER BY month)` returns them (`None` for a
/// customer without any), oldest first.
pub(super) fn buckets_from_arrays(
    months: Option<Vec<chrono::NaiveDate>>,
    spend: Option<Vec<i64>>,
    points: Option<Vec<i64>>,
    purchases: Option<Vec<i64>>,
) -> Vec<crate::domain::window::Bucket> {
    let (spend, points, purchases) = (
        spend.unwrap_or_default(),
        points.unwrap_or_default(),
        purchases.unwrap_or_default(),
    );
    months
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, month)| crate::domain::window::Bucket {
            month: crate::domain::month::Month::of_date(*month),
            net_spend_minor: spend.get(index).copied().unwrap_or(0),
            points: points.get(index).copied().unwrap_or(0),
            purchases: purchases.get(index).copied().unwrap_or(0),
        })
        .collect()
}

/// The columns `buckets_from_arrays` reads, aggregated from the buckets of `$1`'s customer
/// `{customer}` (a lateral subquery: `LEFT JOIN LATERAL (…) b ON true`).
pub(super) fn bucket_arrays(customer: &str) -> String {
    format!(
        "SELECT array_agg(month ORDER BY month) AS months, array_agg(net_spend_minor ORDER BY month) AS spend,
                array_agg(points ORDER BY month) AS points, array_agg(purchases ORDER BY month) AS purchases
         FROM buckets WHERE program_id = $1 AND customer_id = {customer}"
    )
}
