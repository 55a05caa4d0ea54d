//! One transaction of the scoring service's writes: the domain decides inside it (the tier state
//! row is locked while it does), the backend only loads and saves.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::{
        decision::TierState,
        idempotency::{IdempotentRequest, PriorRequest},
        ports::feed::{FeedKeys, FeedLoad, FeedWrites, Pair, PurchaseDay},
        review::Review,
        state::{HistoryRecord, Member, StoredState},
        window::Bucket,
    },
};

/// A unit of work; dropped without [`ScoringTx::commit`], it changes nothing.
#[async_trait]
pub trait ScoringTx: Send {
    /// Records or updates a member.
    async fn upsert_member(&mut self, member: Member) -> Result<(), ScoringError>;
    /// A member.
    async fn member(&mut self, customer_id: Uuid) -> Result<Option<Member>, ScoringError>;
    /// The customer's tier state in a program, locked until commit; created from `initial` (at
    /// version 0) when there is none, under the same lock.
    async fn lock_or_create_state(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
        initial: &TierState,
    ) -> Result<StoredState, ScoringError>;
    /// Waits for any bucket rebuild to finish and keeps one from starting until commit (each
    /// chunk of a rebuild holds off the feed's writes of months while it counts them). Call it
    /// before reading the programs in force, so their time zones match the buckets.
    async fn guard_buckets(&mut self) -> Result<(), ScoringError>;
    /// Saves a state: inserts at version 1, or raises the version by one.
    async fn save_state(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
        state: &StoredState,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError>;
    /// Appends a history record.
    async fn record(&mut self, record: &HistoryRecord) -> Result<(), ScoringError>;
    /// Loads what a feed batch names (members, states, buckets, counted purchases, applied
    /// refunds); the existing states and counted purchases among them stay locked until commit,
    /// the states taken in the keys' order.
    async fn load_feed_batch(&mut self, keys: &FeedKeys) -> Result<FeedLoad, ScoringError>;
    /// Those of `days` on which their pair has a counted purchase not refunded in full (one
    /// index probe each); read after the load, whose locks keep the pairs' purchases as they
    /// are.
    async fn known_purchase_days(
        &mut self,
        days: &[PurchaseDay],
    ) -> Result<Vec<(Pair, NaiveDate)>, ScoringError>;
    /// Writes what a feed batch changed, a handful of statements whatever its size. ABORTED
    /// when another writer created a state, counted a purchase or applied a refund of the batch
    /// after it was loaded: the batch must then be applied again.
    async fn write_feed_batch(
        &mut self,
        writes: &FeedWrites,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError>;
    /// All of a customer's buckets in a program.
    async fn buckets(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
    ) -> Result<Vec<Bucket>, ScoringError>;
    /// Stores a consumer's cursor and, when the batch carried a checkpoint, the instant the feed
    /// is complete up to (kept as it was otherwise).
    async fn save_cursor(
        &mut self,
        consumer: &str,
        position: &str,
        caught_up_to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError>;
    /// Claims `request`'s key for `resource_id`; when the key was used before, nothing is
    /// claimed and the first request is returned.
    async fn claim(
        &mut self,
        request: &IdempotentRequest,
        resource_id: Uuid,
    ) -> Result<Option<PriorRequest>, ScoringError>;
    /// Queues the repair of the cache writes this change will make after commit (kept only if
    /// they fail); returns its id.
    async fn queue_cache_repair(
        &mut self,
        program_id: Uuid,
        generation: i32,
        customer_ids: &[Uuid],
    ) -> Result<i64, ScoringError>;
    /// Makes every change durable.
    async fn commit(self: Box<Self>) -> Result<(), ScoringError>;
}

/// A member as an evaluation judges them under lock: state, membership and buckets.
#[derive(Debug, Clone)]
pub struct EvaluationMember {
    /// Membership (joined at the state's start when the member row is missing).
    pub member: Member,
    /// The tier state.
    pub stored: StoredState,
    /// Monthly buckets, oldest first.
    pub buckets: Vec<Bucket>,
}

/// A member as an evaluation reads them, unlocked, in one snapshot: state and the totals of the
/// window judged.
#[derive(Debug, Clone)]
pub struct EvaluationCandidate {
    /// The customer.
    pub customer_id: Uuid,
    /// The tier state as read; its version tells whether it moved before the save.
    pub stored: StoredState,
    /// The state's review month as stored, if any.
    pub review: Option<Review>,
    /// Monthly buckets, oldest first.
    pub buckets: Vec<Bucket>,
    /// When the member joined, where the window depends on it (a membership year); a store may
    /// leave it out for other windows.
    pub joined_at: Option<DateTime<Utc>>,
    /// Where the store found the state, if it can tell.
    pub found_at: Option<FoundAt>,
}

/// Where a store found a state when a run read it (Postgres: the row's tuple position), handed
/// back with the save so that the store goes straight to the row rather than through its key
/// (a rewrite by position took 16–25 ms for a chunk's 6,000 states against 31–44 ms by key,
/// docs/BENCHMARKS.md). A state rewritten since lies elsewhere and counts as moved, as a newer
/// version does. Opaque to the domain, which only hands it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundAt(pub i64);

/// A state a run saves: whose it is, and where the run found it when the store said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRef {
    /// The customer.
    pub customer_id: Uuid,
    /// Where the run read it ([`FoundAt`]); `None`: found by key.
    pub found_at: Option<FoundAt>,
}

/// Where an evaluation chunk ended, so the next begins after it; how the store walks its states
/// (by customer id, or by the blocks of its table) is its own business: the domain hands it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEnd {
    /// After this customer.
    Customer(Uuid),
    /// From block `next` of the states' table on, up to `end` (where the table ended when the
    /// pass began: what is written after that is read by the pass over what moved).
    Block {
        /// The next chunk's first block.
        next: u32,
        /// The pass's last block, excluded.
        end: u32,
    },
}

/// How much of an evaluation pass one chunk read covers, and on how many connections at once a
/// store may read it (its parts side by side: a statement is one core's work in Postgres).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSize {
    /// About how many members.
    pub members: u32,
    /// The most connections the read may take at once (at least one).
    pub connections: u32,
}

/// A chunk of an evaluation: how many members it covers, where it ends, and those whose state
/// the rules may change.
#[derive(Debug, Clone, Default)]
pub struct EvaluationChunk {
    /// Members with a state in the chunk (judged, whether read or not).
    pub members: i64,
    /// Where the chunk ended: the next chunk begins after it. `None`: this is the walk's last
    /// chunk (it may still hold candidates, as the pass over what moved does).
    pub last: Option<ChunkEnd>,
    /// The members to judge (`Review::must_judge`): those whose review under the policy in
    /// force is due, those not reviewed under it whom the judged window gives another tier than
    /// the one they earned, those who have lapsed, and those whose override has ended.
    pub candidates: Vec<EvaluationCandidate>,
}

pub use crate::domain::versions::RunProgress;

/// The writes of an evaluation run, a page of members per transaction.
#[async_trait]
pub trait EvaluationTx: Send {
    /// The members of `customer_ids` with a tier state in `program_id`, in customer order, their
    /// states locked until commit; leaving out those run `run_id` changed already (a chunk that
    /// read one before that change met an older version: judged once by the run, it is not
    /// judged again, so nobody moves twice in one run).
    async fn lock_evaluation_members(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<EvaluationMember>, ScoringError>;
    /// Saves the states run `run_id` changed, with their reviews, each only if its version is
    /// still the one it was judged at (`StoredState::version`): raised by one and marked as
    /// changed by the run. Returns, in the order given, the new version, or `None` for a state
    /// that moved meanwhile.
    async fn save_judged_states(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        states: &[(StateRef, StoredState, Review)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<i64>>, ScoringError>;
    /// Saves the reviews of states run `run_id` judged and left as they were, each only if its
    /// version is still `version` (one that moved was reviewed by whoever moved it); the version
    /// stays, as lookups do not show a review. Each is marked with the run as a changed state
    /// is, so the run (resumed or not) does not read it again.
    async fn save_reviews(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        reviews: &[(StateRef, i64, Review)],
    ) -> Result<(), ScoringError>;
    /// Appends history records.
    async fn record_many(&mut self, records: &[HistoryRecord]) -> Result<(), ScoringError>;
    /// Adds a page's progress to the run's counters.
    async fn add_run_progress(
        &mut self,
        run_id: Uuid,
        progress: RunProgress,
    ) -> Result<(), ScoringError>;
    /// Adds a page's moves (customers into or out of each tier shown, by tier code) to the
    /// run's.
    async fn add_run_moves(
        &mut self,
        run_id: Uuid,
        moves: &[(String, i64)],
    ) -> Result<(), ScoringError>;
    /// Queues the repair of the cache writes this change will make after commit (kept only if
    /// they fail); returns its id.
    async fn queue_cache_repair(
        &mut self,
        program_id: Uuid,
        generation: i32,
        customer_ids: &[Uuid],
    ) -> Result<i64, ScoringError>;
    /// Makes every change durable.
    async fn commit(self: Box<Self>) -> Result<(), ScoringError>;
}
