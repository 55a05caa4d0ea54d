//! The ports of the scoring domain: what it needs stored (`ScoringStore`, and the units of work
//! in [`tx`]) and the types they carry. The storage backends (`storage::postgres`,
//! `storage::sqlite`) implement them, and one conformance suite runs against each. Rules that
//! must hold under concurrency (one active policy per program, a scheduled run once per due
//! time, optimistic revisions) are enforced by the backend inside its transactions.

pub mod feed;
mod record;
pub mod tx;

pub use crate::domain::scores::RfmInput;
pub use record::CustomerRecord;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::{
        idempotency::{Claimed, IdempotentRequest},
        policy::PolicyInput,
        program::Program,
        state::HistoryRecord,
        versions::{EvaluationRun, PolicyStatus, PolicyVersion, RunStart, RunTrigger},
    },
};

/// One cell of a simulation: members who hold `current_rank` now and would hold
/// `simulated_rank`, with their net spend under each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulationCell {
    /// Tier shown now.
    pub current_rank: u32,
    /// Tier under the simulated rules.
    pub simulated_rank: u32,
    /// Members.
    pub customers: i64,
    /// Their net spend in the current policy's window.
    pub current_spend: i64,
    /// Their net spend in the simulated policy's window.
    pub simulated_spend: i64,
}

/// What the store announces about programs and their policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramSignal {
    /// From now on every change is announced.
    Listening,
    /// The program or one of its policy versions changed.
    Changed(Uuid),
    /// Announcements may be missed until the next [`ProgramSignal::Listening`].
    Lost,
}

/// Held while an evaluation runs on a program; dropping it lets the next run start.
pub type RunLock = tierline_runtime::lock::HeldLock;

/// How far a feed consumer has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedProgress {
    /// The cursor after the last event applied.
    pub position: String,
    /// Every event committed before this instant has been applied (the feed's last checkpoint);
    /// `None` before the first.
    pub caught_up_to: Option<DateTime<Utc>>,
}

/// An evaluation run to open.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Id to assign.
    pub id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// The policy it judges by.
    pub policy_version_id: Uuid,
    /// Why it runs.
    pub trigger: RunTrigger,
    /// For a scheduled run, the due time it is for.
    pub due_at: Option<DateTime<Utc>>,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub now: DateTime<Utc>,
}

/// A new draft policy.
#[derive(Debug, Clone)]
pub struct NewPolicy {
    /// Id to assign.
    pub id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// The rules.
    pub document: PolicyInput,
    /// Free text.
    pub description: String,
    /// Who.
    pub created_by: String,
    /// When.
    pub now: DateTime<Utc>,
}

/// A change to a draft.
#[derive(Debug, Clone)]
pub struct DraftChange {
    /// The draft.
    pub id: Uuid,
    /// New rules.
    pub document: PolicyInput,
    /// New description, when given.
    pub description: Option<String>,
    /// Fail with ABORTED unless the draft is at this revision.
    pub expected_revision: Option<i64>,
    /// When.
    pub now: DateTime<Utc>,
}

/// One chunk of a bucket rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuiltChunk {
    /// The customers whose buckets were rebuilt, in id order.
    pub customers: Vec<Uuid>,
    /// The cache repair queued for them, if one was asked for.
    pub repair: Option<i64>,
}

/// Cache writes that may have failed: the records of `customer_ids` in a program's cache
/// generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRepair {
    /// The queue's id.
    pub id: i64,
    /// The program.
    pub program_id: Uuid,
    /// Its cache generation when queued.
    pub generation: i32,
    /// The customers whose cached records to drop.
    pub customer_ids: Vec<Uuid>,
}

/// The result of an activation.
#[derive(Debug, Clone)]
pub struct Activation {
    /// The version now in force.
    pub policy: PolicyVersion,
    /// The version it replaced.
    pub retired: Option<Uuid>,
    /// The run that re-evaluates every member.
    pub run: EvaluationRun,
}

/// Programs: the loyalty schemes members belong to.
#[async_trait]
pub trait ProgramRecords: Send + Sync {
    /// Stores a program (claiming `request`'s key in the same transaction); a taken code is
    /// `AlreadyExists`.
    async fn create_program(
        &self,
        program: &Program,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<()>, ScoringError>;
    /// One program.
    async fn program(&self, id: Uuid) -> Result<Option<Program>, ScoringError>;
    /// Programs in id order after `after`.
    async fn list_programs(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Program>, ScoringError>;
}

/// Policy versions of a program (drafts, the one in force, retired ones) and the signal of
/// their changes.
#[async_trait]
pub trait PolicyRecords: Send + Sync {
    /// Stores a draft with the next version number of its program (claiming `request`'s key in
    /// the same transaction).
    async fn create_policy(
        &self,
        policy: &NewPolicy,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<PolicyVersion>, ScoringError>;
    /// One version.
    async fn policy(&self, id: Uuid) -> Result<Option<PolicyVersion>, ScoringError>;
    /// The version in force for a program.
    async fn active_policy(&self, program_id: Uuid) -> Result<Option<PolicyVersion>, ScoringError>;
    /// A program's versions, newest first, below `before_version`.
    async fn list_policies(
        &self,
        program_id: Uuid,
        status: Option<PolicyStatus>,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<PolicyVersion>, ScoringError>;
    /// Changes a draft (`FailedPrecondition` unless a draft, `Aborted` on a stale revision).
    async fn update_draft(&self, change: &DraftChange) -> Result<PolicyVersion, ScoringError>;
    /// Puts a draft in force, retiring the version it replaces, and opens the run that
    /// re-evaluates every member, all in one transaction.
    async fn activate_policy(
        &self,
        id: Uuid,
        by: &str,
        expected_revision: Option<i64>,
        run_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Activation, ScoringError>;
    /// Retires a draft.
    async fn retire_draft(
        &self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<PolicyVersion, ScoringError>;
    /// Announcements of every committed change of a program or its policies, by any replica,
    /// until `shutdown`: `Listening` first (and again after any gap), `Lost` when some may be
    /// missed.
    fn program_signals(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::sync::mpsc::Receiver<ProgramSignal>;
}

/// Evaluation runs: opening (once per due time), progress, closing, listing, and the lock that
/// keeps two runs of a program apart.
#[async_trait]
pub trait RunRecords: Send + Sync {
    /// Opens a run (claiming `request`'s key in the same transaction); for a scheduled run,
    /// `None` when another replica already opened one for the same due time.
    async fn open_run(
        &self,
        run: &NewRun,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<Option<EvaluationRun>>, ScoringError>;
    /// Closes a run with its summary, or its error.
    async fn close_run(
        &self,
        run_id: Uuid,
        summary: serde_json::Value,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError>;
    /// One run.
    async fn run(&self, id: Uuid) -> Result<Option<EvaluationRun>, ScoringError>;
    /// Waits until no other evaluation runs on `program_id` (in any replica) and holds that
    /// until the returned lock is dropped.
    async fn lock_program_runs(&self, program_id: Uuid) -> Result<RunLock, ScoringError>;
    /// Holds the program's run lock if no other evaluation holds it now; `None` otherwise.
    async fn try_lock_program_runs(
        &self,
        program_id: Uuid,
    ) -> Result<Option<RunLock>, ScoringError>;
    /// Runs still marked running (in any program), oldest first.
    async fn running_runs(&self, limit: u32) -> Result<Vec<EvaluationRun>, ScoringError>;
    /// The due time of the program's latest scheduled run that has ended (succeeded or failed).
    async fn last_closed_scheduled_due(
        &self,
        program_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, ScoringError>;
    /// Marks a run as judging from `now` (a resumed run keeps its first start, counts one more
    /// resume, and counts the members it already changed as judged); returns its first start,
    /// the counts before it if they are stored, and how many times the run resumed.
    async fn start_run(&self, run_id: Uuid, now: DateTime<Utc>) -> Result<RunStart, ScoringError>;
    /// Stores the tier counts before a run unless they are already stored (a resumed run keeps
    /// those of its first start); returns the stored counts.
    async fn store_counts_before(
        &self,
        run_id: Uuid,
        counts_before: serde_json::Value,
    ) -> Result<serde_json::Value, ScoringError>;
    /// A run's counters so far.
    async fn run_progress(&self, run_id: Uuid) -> Result<tx::RunProgress, ScoringError>;
    /// What a run has moved so far: customers into (+) or out of (-) each tier shown, by tier
    /// code (`EvaluationTx::add_run_moves`).
    async fn run_moves(&self, run_id: Uuid) -> Result<Vec<(String, i64)>, ScoringError>;
    /// Adds `events` to the history events a run has read (its summary's `backfill`, shown while
    /// it runs); returns the run's total.
    async fn add_run_history_events(&self, run_id: Uuid, events: i64) -> Result<i64, ScoringError>;
    /// A program's runs (of one status when given), newest first, started before `before`.
    async fn list_runs(
        &self,
        program_id: Uuid,
        status: Option<crate::domain::versions::RunStatus>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<EvaluationRun>, ScoringError>;
}

/// What an evaluation run reads (its chunks of members, the tier counts, ended overrides) and
/// its unit of work.
#[async_trait]
pub trait EvaluationReads: Send + Sync {
    /// Starts a unit of work of an evaluation run.
    async fn begin_evaluation(&self) -> Result<Box<dyn tx::EvaluationTx>, ScoringError>;
    /// Customers with a tier state in a program, in id order after `after`.
    async fn customers_with_state(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError>;
    /// The next chunk of an evaluation: about `size.members` members of `program_id` with a tier
    /// state, after `after` (`None`: from the start), leaving out those run `run_id` already
    /// changed; the candidates among them (see [`tx::EvaluationChunk`]: reviews due under
    /// `policy`, the version in force and its rules, for the month of `as_of`; overrides ended by
    /// `now`) with their buckets. Not locked; read in one snapshot per connection, on at most
    /// `size.connections` at once (each state is saved only at the version read).
    #[allow(clippy::too_many_arguments)]
    async fn evaluation_chunk(
        &self,
        program_id: Uuid,
        run_id: Uuid,
        after: Option<crate::domain::ports::tx::ChunkEnd>,
        size: tx::ChunkSize,
        policy: (Uuid, &crate::domain::policy::PolicyRules),
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<tx::EvaluationChunk, ScoringError>;
    /// How many members hold each shown rank at `now` (members without a state hold rank 0),
    /// as the store stands when this returns, counted when asked: a run counts its tiers before
    /// its first write while its first chunks are read and judged.
    async fn tier_counts_snapshot(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Box<dyn TierCountsSnapshot>, ScoringError>;
    /// Customers whose override in a program ended at or before `now`.
    async fn ended_overrides(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError>;
}

/// Tier counts fixed at the moment they were asked for, counted later
/// ([`EvaluationReads::tier_counts_snapshot`]).
#[async_trait]
pub trait TierCountsSnapshot: Send {
    /// How many members held each shown rank when the snapshot was taken.
    async fn count(self: Box<Self>) -> Result<Vec<(u32, i64)>, ScoringError>;
}

/// The chunked rebuild of a program's monthly buckets when a new policy counts months in another
/// time zone.
#[async_trait]
pub trait BucketRebuilds: Send + Sync {
    /// Begins rebuilding a program's monthly buckets (a new policy may count months in another
    /// time zone): raises the program's cache generation, so no record cached before is read
    /// again, and returns it. The buckets are then rebuilt a chunk of customers at a time.
    async fn start_bucket_rebuild(&self, program_id: Uuid) -> Result<i32, ScoringError>;
    /// Rebuilds, from their counted purchases with months in `zone`, the buckets of the next
    /// `limit` customers with counted purchases in the program (in id order after `after`), in
    /// one transaction during which bucket writers wait. The last chunk (fewer than `limit`
    /// customers) also removes any bucket after its customers. With `repair_generation`, queues
    /// in the same transaction the cache repair of those customers' records of that generation.
    async fn rebuild_bucket_chunk(
        &self,
        program_id: Uuid,
        zone: chrono_tz::Tz,
        after: Option<Uuid>,
        limit: u32,
        repair_generation: Option<i32>,
    ) -> Result<RebuiltChunk, ScoringError>;
}

/// The lifecycle sweep (new, active, lapsing, dormant) of a program's members.
#[async_trait]
pub trait Lifecycles: Send + Sync {
    /// Classifies every member's lifecycle at `now`, records the changes since the last sweep
    /// (first classifications included) in the tier-change feed, and returns how many changed.
    async fn sweep_lifecycles(
        &self,
        program_id: Uuid,
        settings: crate::domain::policy::LifecycleSettings,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError>;
}

/// What the activity-feed consumer needs: its leader lock, its unit of work, its progress and a
/// place for events it cannot read.
#[async_trait]
pub trait ActivityConsumption: Send + Sync {
    /// Holds the lock of the feed consumer: at most one replica applies the activity feed.
    /// `None` when another holds it.
    async fn try_lock_feed_consumer(&self) -> Result<Option<RunLock>, ScoringError>;
    /// Starts a unit of work.
    async fn begin(&self) -> Result<Box<dyn tx::ScoringTx>, ScoringError>;
    /// Parks feed events the consumer could not read; returns how many were not parked before.
    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, ScoringError>;
    /// How far a feed consumer has come; `None` before it applied anything.
    async fn feed_progress(&self, consumer: &str) -> Result<Option<FeedProgress>, ScoringError>;
}

/// One customer's record, history and counted purchases, as the lookup RPCs read them.
#[async_trait]
pub trait Lookups: Send + Sync {
    /// Members, their tier state in `program_id` and their buckets, for the known ids among
    /// `customer_ids`.
    async fn customer_records(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<CustomerRecord>, ScoringError>;
    /// A page of one customer's history in a program, newest first, before `before`.
    async fn history(
        &self,
        program_id: Uuid,
        customer_id: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<HistoryRecord>, ScoringError>;
    /// A customer's counted purchases in a program that occurred in [`from`, `until`), newest
    /// first, at most `limit`, and how many there are in all.
    async fn counted_purchases(
        &self,
        program_id: Uuid,
        customer_id: Uuid,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<(Vec<crate::domain::accrual::CountedPurchase>, i64), ScoringError>;
}

/// The tier-change feed this service serves.
#[async_trait]
pub trait TierFeedSource: Send + Sync {
    /// Tier changes after `after` (of one program when given), at most `limit`, behind the
    /// transaction-id watermark.
    async fn read_tier_feed(
        &self,
        after: tierline_runtime::xid_feed::FeedCursor,
        program_id: Option<Uuid>,
        limit: u32,
    ) -> Result<
        tierline_runtime::xid_feed::FeedPage<crate::domain::state::TierFeedItem>,
        ScoringError,
    >;
    /// Ticks whenever tier changes may have committed.
    fn tier_feed_signal(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Whose transaction ids the tier-change feed orders by, and the next one.
    async fn tier_feed_origin(
        &self,
    ) -> Result<tierline_runtime::xid_feed::FeedOrigin, ScoringError>;
}

/// Cache writes that may have failed, queued with the change they follow and repaired later.
#[async_trait]
pub trait CacheRepairQueue: Send + Sync {
    /// Repairs queued before `queued_before` and still there, oldest first.
    async fn cache_repairs(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<CacheRepair>, ScoringError>;
    /// Removes repairs that were done (or whose writes succeeded).
    async fn cache_repaired(&self, ids: &[i64]) -> Result<(), ScoringError>;
}

/// RFM scoring: cut points over the population, and the inputs of members and audiences.
#[async_trait]
pub trait ScoreRecords: Send + Sync {
    /// The population's RFM quintile boundaries over the months [`from`, `to`] at `as_of`, and
    /// how many buyers they cover.
    async fn compute_cut_points(
        &self,
        program_id: Uuid,
        from: Option<chrono::NaiveDate>,
        to: chrono::NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<(crate::domain::scores::CutPoints, i64), ScoringError>;
    /// Stores cut points as the program's next version; returns it.
    async fn store_cut_points(
        &self,
        program_id: Uuid,
        cuts: &crate::domain::scores::CutPoints,
        population: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError>;
    /// The latest cut points of a program and their version.
    async fn cut_points(
        &self,
        program_id: Uuid,
    ) -> Result<Option<(i64, crate::domain::scores::CutPoints)>, ScoringError>;
    /// RFM inputs of the members among `customer_ids`.
    async fn rfm_inputs(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        from: Option<chrono::NaiveDate>,
        to: chrono::NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<RfmInput>, ScoringError>;
    /// A page of non-erased members after `after` (id order) with their RFM inputs (historic
    /// value left 0) and the rank of the tier shown at `as_of`.
    async fn audience_page(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
        from: Option<chrono::NaiveDate>,
        to: chrono::NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(RfmInput, u32)>, ScoringError>;
}

/// What a policy would change, computed without changing anything.
#[async_trait]
pub trait Simulations: Send + Sync {
    /// Every non-erased member's tier now against the tier `simulated` would give them, grouped.
    async fn simulate(
        &self,
        program_id: Uuid,
        current: Option<&crate::domain::policy::PolicyRules>,
        simulated: &crate::domain::policy::PolicyRules,
        now: DateTime<Utc>,
    ) -> Result<Vec<SimulationCell>, ScoringError>;
}

/// Everything the scoring service stores: every backend that implements all the ports.
pub trait ScoringStore:
    ProgramRecords
    + PolicyRecords
    + RunRecords
    + EvaluationReads
    + BucketRebuilds
    + Lifecycles
    + ActivityConsumption
    + Lookups
    + TierFeedSource
    + CacheRepairQueue
    + ScoreRecords
    + Simulations
    + crate::domain::value::store::ValueModelStore
    + std::fmt::Debug
    + 'static
{
}

impl<T> ScoringStore for T where
    T: ProgramRecords
        + PolicyRecords
        + RunRecords
        + EvaluationReads
        + BucketRebuilds
        + Lifecycles
        + ActivityConsumption
        + Lookups
        + TierFeedSource
        + CacheRepairQueue
        + ScoreRecords
        + Simulations
        + crate::domain::value::store::ValueModelStore
        + std::fmt::Debug
        + 'static
{
}
