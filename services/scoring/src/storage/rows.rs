//! Rows as both backends return them, and their conversion into domain records: instants as
//! [`StoredInstant`] (`timestamptz` in Postgres, microseconds in SQLite), documents as JSON,
//! ranks as integers. The SQL that selects them is each backend's own.

use chrono::NaiveDate;
use sqlx::types::Json;
use tierline_runtime::{
    instant::StoredInstant,
    xid_feed::{FeedCursor, first_of_merge},
};
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::{
        accrual::CountedPurchase,
        decision::{Override, Reason, TierState},
        month::Month,
        policy::PolicyInput,
        ports::tx::EvaluationMember,
        program::{Program, Scope, Tier},
        purchase_profile::PurchaseProfile,
        scores::Lifecycle,
        state::{HistoryRecord, HistoryWindow, LifecycleChange, Member, StoredState, TierFeedItem},
        versions::{EvaluationRun, PolicyStatus, PolicyVersion, RunStatus, RunTrigger},
        window::{Bucket, Totals},
    },
};

pub(crate) use super::HISTORY_COLUMNS;

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
    occurred_at: StoredInstant,
    window_start: Option<StoredInstant>,
    window_end: Option<StoredInstant>,
    evaluation_run_id: Option<Uuid>,
    activity_id: Option<Uuid>,
    operator_name: Option<String>,
    operator_reason: Option<String>,
    override_expires_at: Option<StoredInstant>,
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
            occurred_at: self.occurred_at.into(),
            window: self.window_end.map(|end| HistoryWindow {
                start: self.window_start.map(Into::into),
                end: end.into(),
            }),
            evaluation_run_id: self.evaluation_run_id,
            activity_id: self.activity_id,
            operator_name: self.operator_name,
            operator_reason: self.operator_reason,
            override_expires_at: self.override_expires_at.map(Into::into),
        })
    }
}

/// A tier history record at its feed position: `xid, seq, {HISTORY_COLUMNS}`.
#[derive(sqlx::FromRow)]
pub(super) struct TierFeedRow {
    xid: i64,
    seq: i64,
    #[sqlx(flatten)]
    record: HistoryRow,
}

/// The columns of [`LifecycleFeedRow`].
pub(super) const LIFECYCLE_FEED_COLUMNS: &str = "xid, seq, id, program_id, customer_id, from_state, to_state, \
     days_since_last_purchase, occurred_at";

/// A lifecycle change at its feed position ([`LIFECYCLE_FEED_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct LifecycleFeedRow {
    xid: i64,
    seq: i64,
    id: Uuid,
    program_id: Uuid,
    customer_id: Uuid,
    from_state: Option<String>,
    to_state: String,
    days_since_last_purchase: Option<i32>,
    occurred_at: StoredInstant,
}

impl TryFrom<LifecycleFeedRow> for LifecycleChange {
    type Error = ScoringError;

    fn try_from(row: LifecycleFeedRow) -> Result<Self, Self::Error> {
        let parse = |value: &str| {
            Lifecycle::parse(value)
                .ok_or_else(|| ScoringError::Internal(format!("lifecycle {value:?}")))
        };
        Ok(Self {
            id: row.id,
            program_id: row.program_id,
            customer_id: row.customer_id,
            from: row.from_state.as_deref().map(parse).transpose()?,
            to: parse(&row.to_state)?,
            days_since_last_purchase: row.days_since_last_purchase,
            occurred_at: row.occurred_at.into(),
        })
    }
}

/// A page of the tier-change feed from each table's first `limit` rows after the cursor.
pub(super) fn tier_feed_events(
    tiers: Vec<TierFeedRow>,
    lifecycles: Vec<LifecycleFeedRow>,
    limit: u32,
) -> Result<Vec<(FeedCursor, TierFeedItem)>, ScoringError> {
    let mut events = Vec::with_capacity(tiers.len() + lifecycles.len());
    for row in tiers {
        let cursor = FeedCursor {
            xid: row.xid,
            seq: row.seq,
        };
        events.push((cursor, TierFeedItem::Tier(row.record.into_record()?)));
    }
    for row in lifecycles {
        let cursor = FeedCursor {
            xid: row.xid,
            seq: row.seq,
        };
        events.push((cursor, TierFeedItem::Lifecycle(row.try_into()?)));
    }
    Ok(first_of_merge(events, |(cursor, _)| *cursor, limit))
}

/// The columns of [`MemberRow`].
pub(super) const MEMBER_COLUMNS: &str = "customer_id, joined_at, erased";

/// A member as stored ([`MEMBER_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct MemberRow {
    pub(super) customer_id: Uuid,
    joined_at: StoredInstant,
    erased: bool,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Self {
            customer_id: row.customer_id,
            joined_at: row.joined_at.into(),
            erased: row.erased,
        }
    }
}

/// A member of an evaluation page with their state: the member's columns (`customer_id`, and
/// `joined_at`, `erased` as Postgres and SQLite each fill them in for a state without a member
/// row) and [`STATE_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(super) struct PageRow {
    #[sqlx(flatten)]
    member: MemberRow,
    #[sqlx(flatten)]
    state: StateRow,
}

impl PageRow {
    /// The member's customer.
    pub(super) fn customer_id(&self) -> Uuid {
        self.member.customer_id
    }

    /// The member with their state and `buckets` (oldest first).
    pub(super) fn with_buckets(self, buckets: Vec<Bucket>) -> EvaluationMember {
        EvaluationMember {
            member: Member::from(self.member),
            stored: StoredState::from(self.state),
            buckets,
        }
    }
}

/// The page's members with their buckets: `pages` and `buckets` both in customer order (each
/// customer's buckets by month); buckets of customers not on the page are passed over.
pub(super) fn attach_buckets(
    pages: Vec<PageRow>,
    buckets: Vec<BucketRow>,
) -> Vec<EvaluationMember> {
    let mut buckets = buckets.into_iter().peekable();
    pages
        .into_iter()
        .map(|row| {
            let customer_id = row.customer_id();
            while buckets
                .next_if(|bucket| bucket.customer_id < customer_id)
                .is_some()
            {}
            let mut own = Vec::new();
            while let Some(bucket) = buckets.next_if(|bucket| bucket.customer_id == customer_id) {
                own.push(Bucket::from(bucket));
            }
            row.with_buckets(own)
        })
        .collect()
}

/// A stored rank (never negative) as the domain counts it.
pub(super) fn rank(value: impl TryInto<u32>) -> u32 {
    value.try_into().unwrap_or(0)
}

/// A rank as both backends store it: an `int` (a program has at most 20 tiers, so no rank is
/// ever clamped).
pub(super) fn db_rank(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
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
    created_at: StoredInstant,
    cache_generation: i32,
    last_evaluated_at: Option<StoredInstant>,
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
            created_at: row.created_at.into(),
            cache_generation: row.cache_generation,
            last_evaluated_at: row.last_evaluated_at.map(Into::into),
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
    created_at: StoredInstant,
    updated_at: StoredInstant,
    activated_by: Option<String>,
    activated_at: Option<StoredInstant>,
    retired_by: Option<String>,
    retired_at: Option<StoredInstant>,
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
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
            activated_by: row.activated_by,
            activated_at: row.activated_at.map(Into::into),
            retired_by: row.retired_by,
            retired_at: row.retired_at.map(Into::into),
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
    due_at: Option<StoredInstant>,
    status: String,
    requested_by: String,
    started_at: StoredInstant,
    finished_at: Option<StoredInstant>,
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
            due_at: row.due_at.map(Into::into),
            status: RunStatus::parse(&row.status)
                .ok_or_else(|| ScoringError::Internal(format!("run status {:?}", row.status)))?,
            requested_by: row.requested_by,
            started_at: row.started_at.into(),
            finished_at: row.finished_at.map(Into::into),
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
    earned_rank: i32,
    since: StoredInstant,
    last_qualified_at: Option<StoredInstant>,
    override_rank: Option<i32>,
    override_until: Option<StoredInstant>,
    override_reason: Option<String>,
    override_operator: Option<String>,
    override_set_at: Option<StoredInstant>,
    lapsed_at: Option<StoredInstant>,
    version: i64,
}

impl From<StateRow> for StoredState {
    fn from(row: StateRow) -> Self {
        let manual = match (row.override_rank, row.override_until, row.override_set_at) {
            (Some(override_rank), Some(until), Some(set_at)) => Some(Override {
                rank: rank(override_rank),
                until: until.into(),
                reason: row.override_reason.unwrap_or_default(),
                operator: row.override_operator.unwrap_or_default(),
                set_at: set_at.into(),
            }),
            _ => None,
        };
        Self {
            state: TierState {
                earned_rank: rank(row.earned_rank),
                since: row.since.into(),
                last_qualified_at: row.last_qualified_at.map(Into::into),
                lapsed_at: row.lapsed_at.map(Into::into),
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

pub(super) const COUNTED_COLUMNS: &str = "program_id, activity_id, customer_id, occurred_at, amount_minor, \
     refunded_minor, points, brand, sales_channel";

/// A counted purchase as stored ([`COUNTED_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CountedRow {
    pub(super) program_id: Uuid,
    activity_id: Uuid,
    customer_id: Uuid,
    occurred_at: StoredInstant,
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
            occurred_at: self.occurred_at.into(),
            month: Month::of(self.occurred_at.into(), zone),
            amount_minor: self.amount_minor,
            refunded_minor: self.refunded_minor,
            points: self.points,
            brand: self.brand,
            sales_channel: self.sales_channel,
        }
    }
}

/// A state's columns read through an outer join: all empty when there is no state.
#[derive(sqlx::FromRow)]
pub(super) struct JoinedStateRow {
    earned_rank: Option<i32>,
    since: Option<StoredInstant>,
    last_qualified_at: Option<StoredInstant>,
    override_rank: Option<i32>,
    override_until: Option<StoredInstant>,
    override_reason: Option<String>,
    override_operator: Option<String>,
    override_set_at: Option<StoredInstant>,
    lapsed_at: Option<StoredInstant>,
    version: Option<i64>,
}

impl JoinedStateRow {
    /// The state, when the join found one.
    pub(super) fn into_state(self) -> Option<StoredState> {
        Some(StoredState::from(StateRow {
            earned_rank: self.earned_rank?,
            since: self.since?,
            last_qualified_at: self.last_qualified_at,
            override_rank: self.override_rank,
            override_until: self.override_until,
            override_reason: self.override_reason,
            override_operator: self.override_operator,
            override_set_at: self.override_set_at,
            lapsed_at: self.lapsed_at,
            version: self.version?,
        }))
    }
}

pub(super) const PROFILE_COLUMNS: &str = "program_id, customer_id, last_purchase_at, first_day, last_day, purchase_days, repeat_spend_minor, first_day_spend_minor";

/// A purchase profile as stored ([`PROFILE_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ProfileRow {
    pub(super) program_id: Uuid,
    pub(super) customer_id: Uuid,
    last_purchase_at: StoredInstant,
    first_day: NaiveDate,
    last_day: NaiveDate,
    purchase_days: i32,
    repeat_spend_minor: i64,
    first_day_spend_minor: Option<i64>,
}

impl ProfileRow {
    /// The row's pair and profile.
    pub(super) fn keyed(self) -> (crate::domain::feed_batch::Pair, PurchaseProfile) {
        (
            (self.program_id, self.customer_id),
            PurchaseProfile {
                last_purchase_at: self.last_purchase_at.into(),
                first_day: self.first_day,
                last_day: self.last_day,
                purchase_days: u32::try_from(self.purchase_days).unwrap_or(u32::MAX),
                repeat_spend_minor: self.repeat_spend_minor,
                first_day_spend_minor: self.first_day_spend_minor,
            },
        )
    }
}

/// The customers' profiles of `rows` (all of one program).
pub(super) fn customer_profiles(rows: Vec<ProfileRow>) -> Vec<(Uuid, PurchaseProfile)> {
    rows.into_iter()
        .map(|row| {
            let ((_, customer_id), profile) = row.keyed();
            (customer_id, profile)
        })
        .collect()
}
