//! What the scoring service keeps per customer: membership, tier state with its version, and the
//! history of changes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    decision::{Reason, TierState},
    window::Totals,
};

/// A customer as known from the activity feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// The customer.
    pub customer_id: Uuid,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Whether they were erased.
    pub erased: bool,
}

/// A tier state as stored, with its version (raised on every change).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredState {
    /// The state.
    pub state: TierState,
    /// Its version.
    pub version: i64,
}

/// One change of the tier shown, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    /// Id.
    pub id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// Rank before.
    pub from_rank: u32,
    /// Rank after.
    pub to_rank: u32,
    /// Why.
    pub reason: Reason,
    /// The policy in force, if any.
    pub policy_version_id: Option<Uuid>,
    /// Its version number.
    pub policy_version: Option<i32>,
    /// The totals that decided it.
    pub totals: Totals,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The window those totals were summed over; `None` on records written before it was kept
    /// (or with no policy in force).
    pub window: Option<HistoryWindow>,
    /// The evaluation run that decided it.
    pub evaluation_run_id: Option<Uuid>,
    /// The purchase that decided it (an upgrade at once).
    pub activity_id: Option<Uuid>,
    /// The operator who set, replaced or cleared an override.
    pub operator_name: Option<String>,
    /// Their reason.
    pub operator_reason: Option<String>,
    /// The override's end: the granted one's on a set or replace, the ended one's on a clear or
    /// expiry.
    pub override_expires_at: Option<DateTime<Utc>>,
}

/// The instants a history record's window covers, `[start, end)`; no start for a lifetime
/// window. Kept as instants, not months: a later policy may move the program's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryWindow {
    /// Start of the first month counted.
    pub start: Option<DateTime<Utc>>,
    /// Start of the month after the last one counted.
    pub end: DateTime<Utc>,
}

/// A change of lifecycle state found by a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleChange {
    /// Id.
    pub id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// The state before; `None` for a first classification.
    pub from: Option<super::scores::Lifecycle>,
    /// The state after.
    pub to: super::scores::Lifecycle,
    /// Days since the last purchase at the change.
    pub days_since_last_purchase: Option<i32>,
    /// When the sweep found it.
    pub occurred_at: DateTime<Utc>,
}

/// One event of the tier-change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierFeedItem {
    /// A change of the tier shown.
    Tier(HistoryRecord),
    /// A change of lifecycle state.
    Lifecycle(LifecycleChange),
}

impl TierFeedItem {
    /// The program it belongs to.
    pub fn program_id(&self) -> Uuid {
        match self {
            Self::Tier(record) => record.program_id,
            Self::Lifecycle(change) => change.program_id,
        }
    }
}
