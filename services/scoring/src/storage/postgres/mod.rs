//! The Postgres backend: the record of truth. Tables live in the `scoring` schema; migrations
//! are in `services/scoring/migrations`.

mod cache_repairs;
mod evaluation;
mod evaluation_tx;
mod feed_batch;
mod history;
mod idempotency;
mod lifecycle;
mod lookups;
mod programs;
mod rows;
mod rules_sql;
mod runs;
mod scores;
mod simulation;
mod tier_feed;
mod tx;
mod value_model;

pub use evaluation_tx::PgEvaluationTx;
pub use tx::PgScoringTx;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tierline_runtime::notify::Notice;
use uuid::Uuid;

use super::{
    Activation, CustomerRecord, DraftChange, FeedProgress, NewPolicy, NewRun, ScoringStore,
    tx::ScoringTx,
};
use crate::{
    ScoringError,
    domain::{
        idempotency::{Claimed, IdempotentRequest},
        in_force::ProgramSignal,
        program::Program,
        state::HistoryRecord,
        versions::{EvaluationRun, PolicyStatus, PolicyVersion},
    },
};

/// The service's own schema.
pub const SCHEMA: &str = "scoring";

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Scoring storage in Postgres.
#[derive(Debug, Clone)]
pub struct PgScoringStore {
    pool: PgPool,
    tier_feed_signal: tokio::sync::watch::Receiver<u64>,
    /// From how many members (the planner's estimate) a simulation runs in parts.
    simulation_in_parts_from: f32,
}

impl PgScoringStore {
    /// A store on `pool`, whose search path starts with [`SCHEMA`]; listens for tier-change
    /// notifications until `shutdown`.
    pub fn new(pool: PgPool, shutdown: tokio_util::sync::CancellationToken) -> Self {
        let (sender, tier_feed_signal) = tokio::sync::watch::channel(0);
        tierline_runtime::xid_feed::spawn_listener(
            pool.clone(),
            tier_feed::TIER_FEED_CHANNEL,
            sender,
            shutdown,
        );
        Self {
            pool,
            tier_feed_signal,
            simulation_in_parts_from: simulation::PARTS_FROM_MEMBERS,
        }
    }

    /// The store, running simulations in parts from `members` members on (the conformance
    /// suite forces the parts on a small population, where one statement is the default).
    #[must_use]
    pub fn with_simulation_in_parts_from(mut self, members: f32) -> Self {
        self.simulation_in_parts_from = members;
        self
    }
}

/// The channel the triggers on programs and policy versions notify (migration
/// `20261126100009_tier_cache.sql`).
const PROGRAM_CHANNEL: &str = "scoring_programs";

/// The advisory lock key of the activity-feed leader ("tierline" "feed" in ASCII).
const FEED_LEADER_LOCK: i64 = 0x7469_6572_6c66_6565;

#[async_trait]
impl ScoringStore for PgScoringStore {
    async fn create_program(
        &self,
        program: &Program,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<()>, ScoringError> {
        self.insert_program(program, request).await
    }

    async fn program(&self, id: Uuid) -> Result<Option<Program>, ScoringError> {
        self.select_program(id).await
    }

    async fn list_programs(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Program>, ScoringError> {
        self.select_programs(after, limit).await
    }

    async fn create_policy(
        &self,
        policy: &NewPolicy,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<PolicyVersion>, ScoringError> {
        self.insert_policy(policy, request).await
    }

    async fn policy(&self, id: Uuid) -> Result<Option<PolicyVersion>, ScoringError> {
        self.select_policy(id).await
    }

    async fn active_policy(&self, program_id: Uuid) -> Result<Option<PolicyVersion>, ScoringError> {
        self.select_active_policy(program_id).await
    }

    async fn list_policies(
        &self,
        program_id: Uuid,
        status: Option<PolicyStatus>,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<PolicyVersion>, ScoringError> {
        self.select_policies(program_id, status, before_version, limit)
            .await
    }

    async fn update_draft(&self, change: &DraftChange) -> Result<PolicyVersion, ScoringError> {
        self.change_draft(change).await
    }

    async fn activate_policy(
        &self,
        id: Uuid,
        by: &str,
        expected_revision: Option<i64>,
        run_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Activation, ScoringError> {
        self.activate(id, by, expected_revision, run_id, now).await
    }

    async fn retire_draft(
        &self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<PolicyVersion, ScoringError> {
        self.retire(id, by, now).await
    }

    async fn open_run(
        &self,
        run: &NewRun,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<Option<EvaluationRun>>, ScoringError> {
        self.insert_run(run, request).await
    }

    async fn close_run(
        &self,
        run_id: Uuid,
        summary: serde_json::Value,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        self.finish_run(run_id, summary, error, now).await
    }

    async fn lock_program_runs(
        &self,
        program_id: Uuid,
    ) -> Result<crate::storage::RunLock, ScoringError> {
        self.lock_runs(program_id).await
    }

    async fn sweep_lifecycles(
        &self,
        program_id: Uuid,
        settings: crate::domain::policy::LifecycleSettings,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        self.sweep(program_id, settings, now).await
    }

    async fn try_lock_feed_consumer(
        &self,
    ) -> Result<Option<crate::storage::RunLock>, ScoringError> {
        // Ends with its connection, also when this replica dies: another replica then leads.
        Ok(tierline_runtime::lock::try_session_lock(&self.pool, FEED_LEADER_LOCK).await?)
    }

    async fn try_lock_program_runs(
        &self,
        program_id: Uuid,
    ) -> Result<Option<crate::storage::RunLock>, ScoringError> {
        self.try_lock_runs(program_id).await
    }

    async fn running_runs(&self, limit: u32) -> Result<Vec<EvaluationRun>, ScoringError> {
        self.select_running_runs(limit).await
    }

    async fn last_closed_scheduled_due(
        &self,
        program_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, ScoringError> {
        self.select_last_closed_scheduled_due(program_id).await
    }

    async fn start_run_counts(
        &self,
        run_id: Uuid,
        counts_before: serde_json::Value,
    ) -> Result<(serde_json::Value, i32), ScoringError> {
        self.keep_first_counts(run_id, counts_before).await
    }

    async fn add_run_history_events(&self, run_id: Uuid, events: i64) -> Result<i64, ScoringError> {
        self.add_history_events(run_id, events).await
    }

    async fn run_progress(
        &self,
        run_id: Uuid,
    ) -> Result<crate::storage::tx::RunProgress, ScoringError> {
        self.select_run_progress(run_id).await
    }

    async fn begin_evaluation(
        &self,
    ) -> Result<Box<dyn crate::storage::tx::EvaluationTx>, ScoringError> {
        Ok(Box::new(PgEvaluationTx {
            tx: self.pool.begin().await?,
        }))
    }

    async fn begin(&self) -> Result<Box<dyn ScoringTx>, ScoringError> {
        Ok(Box::new(PgScoringTx {
            tx: self.pool.begin().await?,
        }))
    }

    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, ScoringError> {
        Ok(tierline_runtime::follower::park_in_postgres(&self.pool, consumer, letters).await?)
    }

    async fn feed_progress(&self, consumer: &str) -> Result<Option<FeedProgress>, ScoringError> {
        self.select_feed_progress(consumer).await
    }

    async fn customer_records(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<CustomerRecord>, ScoringError> {
        self.select_customer_records(program_id, customer_ids).await
    }

    async fn history(
        &self,
        program_id: Uuid,
        customer_id: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<HistoryRecord>, ScoringError> {
        self.select_history(program_id, customer_id, before, limit)
            .await
    }

    async fn counted_purchases(
        &self,
        program_id: Uuid,
        customer_id: Uuid,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<(Vec<crate::domain::accrual::CountedPurchase>, i64), ScoringError> {
        self.select_counted_purchases(program_id, customer_id, from, until, limit)
            .await
    }

    async fn read_tier_feed(
        &self,
        after: tierline_runtime::xid_feed::FeedCursor,
        program_id: Option<Uuid>,
        limit: u32,
    ) -> Result<
        tierline_runtime::xid_feed::FeedPage<crate::domain::state::TierFeedItem>,
        ScoringError,
    > {
        self.select_tier_feed(after, program_id, limit).await
    }

    fn tier_feed_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tier_feed_signal.clone()
    }

    async fn tier_feed_origin(
        &self,
    ) -> Result<tierline_runtime::xid_feed::FeedOrigin, ScoringError> {
        Ok(tierline_runtime::xid_feed::origin(&self.pool).await?)
    }

    async fn cache_repairs(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<super::CacheRepair>, ScoringError> {
        self.select_cache_repairs(queued_before, limit).await
    }

    async fn cache_repaired(&self, ids: &[i64]) -> Result<(), ScoringError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.delete_cache_repairs(ids).await
    }

    fn program_signals(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::sync::mpsc::Receiver<ProgramSignal> {
        let mut notices =
            tierline_runtime::notify::listen(self.pool.clone(), PROGRAM_CHANNEL, shutdown);
        let (sender, receiver) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(notice) = notices.recv().await {
                let signal = match notice {
                    Notice::Listening => ProgramSignal::Listening,
                    Notice::Lost => ProgramSignal::Lost,
                    Notice::Notified(payload) => match Uuid::parse_str(&payload) {
                        Ok(program_id) => ProgramSignal::Changed(program_id),
                        // Not ours to read: forget everything rather than miss a change.
                        Err(_) => ProgramSignal::Listening,
                    },
                };
                if sender.send(signal).await.is_err() {
                    return;
                }
            }
        });
        receiver
    }

    async fn compute_cut_points(
        &self,
        program_id: Uuid,
        from: Option<chrono::NaiveDate>,
        to: chrono::NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<(crate::domain::scores::CutPoints, i64), ScoringError> {
        self.select_quintiles(program_id, from, to, as_of).await
    }

    async fn store_cut_points(
        &self,
        program_id: Uuid,
        cuts: &crate::domain::scores::CutPoints,
        population: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        self.insert_cut_points(program_id, cuts, population, now)
            .await
    }

    async fn cut_points(
        &self,
        program_id: Uuid,
    ) -> Result<Option<(i64, crate::domain::scores::CutPoints)>, ScoringError> {
        self.select_cut_points(program_id).await
    }

    async fn rfm_inputs(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        from: Option<chrono::NaiveDate>,
        to: chrono::NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<crate::storage::RfmInput>, ScoringError> {
        self.select_rfm_inputs(program_id, customer_ids, from, to, as_of)
            .await
    }

    async fn audience_page(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
        from: Option<chrono::NaiveDate>,
        to: chrono::NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(crate::storage::RfmInput, u32)>, ScoringError> {
        self.select_audience_page(program_id, after, limit, from, to, as_of)
            .await
    }

    async fn simulate(
        &self,
        program_id: Uuid,
        current: Option<&crate::domain::policy::PolicyRules>,
        simulated: &crate::domain::policy::PolicyRules,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::storage::SimulationCell>, ScoringError> {
        self.simulate_query(program_id, current, simulated, now)
            .await
    }

    async fn customers_with_state(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        self.select_customers_with_state(program_id, after, limit)
            .await
    }

    async fn evaluation_chunk(
        &self,
        program_id: Uuid,
        run_id: Uuid,
        after: Option<crate::storage::tx::ChunkEnd>,
        limit: u32,
        policy: (Uuid, &crate::domain::policy::PolicyRules),
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<crate::storage::tx::EvaluationChunk, ScoringError> {
        self.select_evaluation_chunk(program_id, run_id, after, limit, policy, as_of, now)
            .await
    }

    async fn tier_counts(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<(u32, i64)>, ScoringError> {
        self.select_tier_counts(program_id, now).await
    }

    async fn ended_overrides(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        self.select_ended_overrides(program_id, now, limit).await
    }

    async fn start_bucket_rebuild(&self, program_id: Uuid) -> Result<i32, ScoringError> {
        self.start_rebuild(program_id).await
    }

    async fn rebuild_bucket_chunk(
        &self,
        program_id: Uuid,
        zone: chrono_tz::Tz,
        after: Option<Uuid>,
        limit: u32,
        repair_generation: Option<i32>,
    ) -> Result<crate::storage::RebuiltChunk, ScoringError> {
        self.rebuild_chunk(program_id, zone, after, limit, repair_generation)
            .await
    }

    async fn run(&self, id: Uuid) -> Result<Option<EvaluationRun>, ScoringError> {
        self.select_run(id).await
    }

    async fn list_runs(
        &self,
        program_id: Uuid,
        status: Option<crate::domain::versions::RunStatus>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<EvaluationRun>, ScoringError> {
        self.select_runs(program_id, status, before, limit).await
    }
}
