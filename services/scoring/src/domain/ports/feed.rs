//! What one batch of the activity feed reads and writes through the store: the keys it names,
//! what the store holds of them, and everything it changes (`domain::feed_batch` decides the
//! changes; each backend loads and writes them in a few statements).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::domain::{
    accrual::{BucketDelta, CountedPurchase},
    month::Month,
    ports::record::CustomerRecord,
    purchase_profile::PurchaseProfile,
    review::Review,
    state::{HistoryRecord, Member, StoredState},
    window::Bucket,
};

/// A (program, customer) pair.
pub type Pair = (Uuid, Uuid);

/// A day of a pair's purchase in the program's zone, with the instants it spans: whether the
/// pair has a counted purchase on it is what the feed asks the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PurchaseDay {
    /// The (program, customer) pair.
    pub pair: Pair,
    /// The day, in the program's zone.
    pub day: NaiveDate,
    /// Its first instant.
    pub starts_at: DateTime<Utc>,
    /// The next day's first instant.
    pub ends_at: DateTime<Utc>,
}

/// What a batch needs loaded, each list sorted and without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedKeys {
    /// Every customer the batch names.
    pub customers: Vec<Uuid>,
    /// The states the batch may change; those that exist are locked, in this order (the order
    /// every writer that locks several states uses, so that none can deadlock). Their buckets
    /// are loaded too: a purchase's upgrade is decided on them, and the records the batch
    /// leaves are written to the cache from memory, not read back after the commit.
    pub states: Vec<Pair>,
    /// The programs in force and the zone each counts months in.
    pub programs: Vec<(Uuid, Tz)>,
    /// The batch's purchases and the purchases its refunds name: those counted already are
    /// loaded and locked.
    pub purchases: Vec<Uuid>,
    /// The batch's refunds: those applied already are loaded.
    pub refunds: Vec<Uuid>,
}

/// What the store holds of a batch's keys, read inside the batch's transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedLoad {
    /// Members among the keys' customers.
    pub members: Vec<Member>,
    /// Existing states among the keys' pairs, locked until commit.
    pub states: Vec<(Pair, StoredState)>,
    /// Buckets of the keys' state pairs.
    pub buckets: Vec<(Pair, Bucket)>,
    /// Counted purchases among the keys' purchases, by program, locked until commit.
    pub counted: Vec<(Uuid, CountedPurchase)>,
    /// (program, refund) pairs among the keys' refunds that were applied already.
    pub applied_refunds: Vec<Pair>,
    /// Purchase profiles of the keys' state pairs (a pair without one has no purchase that
    /// counts).
    pub profiles: Vec<(Pair, PurchaseProfile)>,
    /// Of the batch's purchase days strictly between the first and the last purchase day of a
    /// loaded profile ([`PurchaseDay`]), those on which the pair has a counted purchase
    /// already: the applier adds them after the load
    /// ([`ScoringTx::known_purchase_days`](super::tx::ScoringTx::known_purchase_days)), and a
    /// purchase on such a day is then added to the profile in place. `None` when the store was
    /// not asked: such a purchase then has its profile counted again.
    pub known_purchase_days: Option<Vec<(Pair, NaiveDate)>>,
    /// Each program's first open month (`review::first_open_month`), from which the batch looks
    /// for reviews; the applier adds it from the runs, not the store's load. A program left out
    /// is looked at from the month before the current one, which is never later.
    pub open_months: Vec<(Uuid, Month)>,
}

/// A tier state to save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    /// The (program, customer) it belongs to.
    pub pair: Pair,
    /// The state after the batch.
    pub stored: StoredState,
    /// Whether no state existed: inserted at version 1 (and the batch fails when someone else
    /// created it meanwhile), else its version is raised by one.
    pub is_new: bool,
    /// When an evaluation must look at the member again, from the buckets the batch leaves;
    /// `None` without a policy in force.
    pub review: Option<Review>,
}

/// Everything a batch changes, each list in the order the store should write it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedWrites {
    /// Members to record: the join time only moves earlier and erasure is kept.
    pub members: Vec<Member>,
    /// New counted purchases, by program (with refunds of the same batch already netted).
    pub counted: Vec<(Uuid, CountedPurchase)>,
    /// (program, purchase, refunded total) of counted purchases loaded and refunded.
    pub refunded: Vec<(Uuid, Uuid, i64)>,
    /// (program, refund) pairs now applied.
    pub applied_refunds: Vec<Pair>,
    /// Changes to buckets the store held when the batch loaded, one per (program, customer,
    /// month). The state of every pair with a change to its buckets is among `states`.
    pub buckets: Vec<(Pair, BucketDelta)>,
    /// Buckets of months the store held none for when the batch loaded, one per (program,
    /// customer, month): inserted, not added to. Another writer that creates one meanwhile fails
    /// the batch (`Aborted`), as for a state.
    pub new_buckets: Vec<(Pair, BucketDelta)>,
    /// The states the batch changed: exactly the records whose lookups changed.
    pub states: Vec<StateWrite>,
    /// Changes of the tier shown, in feed order.
    pub history: Vec<HistoryRecord>,
    /// Stored purchase profiles (loaded with the batch) its purchases were added to in place,
    /// as they now are. The state of every pair here, in `new_profiles` and in
    /// `recounted_profiles` is among `states` (what changes a profile changes the record), so a
    /// store may keep the profile on the state's row.
    pub profiles: Vec<(Pair, PurchaseProfile)>,
    /// Purchase profiles of pairs that had none (their first purchase that counts is in the
    /// batch), as they now are.
    pub new_profiles: Vec<(Pair, PurchaseProfile)>,
    /// Purchase profiles to count again from the pair's purchases once the batch's purchases
    /// and refunds are written (a refund, or a purchase from before a first day whose spend is
    /// not kept), with the zone of the pair's program; none of these is among `profiles` or
    /// `new_profiles`.
    pub recounted_profiles: Vec<(Pair, Tz)>,
    /// The record of every state written, by program, as the batch's commit leaves it (the
    /// state at its new version, the member, every bucket): what the cache is written with.
    pub records: Vec<(Uuid, CustomerRecord)>,
}

impl FeedWrites {
    /// Whether the batch changed nothing but the cursor.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
            && self.counted.is_empty()
            && self.refunded.is_empty()
            && self.applied_refunds.is_empty()
            && self.buckets.is_empty()
            && self.new_buckets.is_empty()
            && self.states.is_empty()
            && self.history.is_empty()
            && self.profiles.is_empty()
            && self.recounted_profiles.is_empty()
    }
}

impl StateWrite {
    /// The state as the store holds it once the write commits: a new one at version 1, an
    /// existing one a version higher.
    pub fn saved(&self) -> StoredState {
        StoredState {
            state: self.stored.state.clone(),
            version: if self.is_new {
                1
            } else {
                self.stored.version + 1
            },
        }
    }
}
