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
}
