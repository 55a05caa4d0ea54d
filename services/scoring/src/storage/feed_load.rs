//! What a feed batch's load reads, as both backends return it, and its one assembly into a
//! [`FeedLoad`]: each backend only says how it finds the rows the keys name (arrays unnested in
//! Postgres, a JSON parameter in SQLite) and how it locks them.

use std::collections::HashMap;

use chrono_tz::Tz;
use uuid::Uuid;

use super::rows::{BucketRow, CountedRow, MemberRow, StateRow};
use crate::domain::{
    feed_batch::{FeedKeys, FeedLoad, Pair},
    purchase_profile::PurchaseProfile,
    state::{Member, StoredState},
    window::Bucket,
};

/// A tier state with its (program, customer) pair: `program_id, customer_id, {STATE_COLUMNS}`.
#[derive(sqlx::FromRow)]
pub(super) struct KeyedState {
    program_id: Uuid,
    customer_id: Uuid,
    #[sqlx(flatten)]
    state: StateRow,
}

impl KeyedState {
    /// The state's (program, customer) pair.
    pub(super) fn pair(&self) -> Pair {
        (self.program_id, self.customer_id)
    }
}

/// A bucket with its program: `program_id, {BUCKET_COLUMNS}` (SQLite's buckets' table).
#[derive(sqlx::FromRow)]
pub(super) struct KeyedBucket {
    program_id: Uuid,
    #[sqlx(flatten)]
    bucket: BucketRow,
}

impl KeyedBucket {
    /// The bucket with its (program, customer) pair.
    pub(super) fn keyed(self) -> (Pair, Bucket) {
        (
            (self.program_id, self.bucket.customer_id),
            Bucket::from(self.bucket),
        )
    }
}

/// What the store holds of `keys`, from the rows the load read: each counted purchase's month in
/// the zone of its program (UTC for a program no longer among the keys, which no load returns).
pub(super) fn feed_load(
    keys: &FeedKeys,
    members: Vec<MemberRow>,
    states: Vec<KeyedState>,
    buckets: Vec<(Pair, Bucket)>,
    counted: Vec<CountedRow>,
    applied: Vec<Pair>,
    profiles: Vec<(Pair, PurchaseProfile)>,
) -> FeedLoad {
    let zones: HashMap<Uuid, Tz> = keys.programs.iter().copied().collect();
    FeedLoad {
        members: members.into_iter().map(Member::from).collect(),
        states: states
            .into_iter()
            .map(|row| {
                (
                    (row.program_id, row.customer_id),
                    StoredState::from(row.state),
                )
            })
            .collect(),
        buckets,
        counted: counted
            .into_iter()
            .map(|row| {
                let zone = zones.get(&row.program_id).copied().unwrap_or(Tz::UTC);
                (row.program_id, row.into_purchase(zone))
            })
            .collect(),
        applied_refunds: applied,
        profiles,
        known_purchase_days: None,
        open_months: Vec::new(),
    }
}
