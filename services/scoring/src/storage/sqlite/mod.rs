//! The SQLite backend, for the all-in-one development mode: one process, one file (or memory).
//! It passes the same conformance suite as Postgres (`tests/conformance`).
//!
//! SQLite has one writer. Every writing transaction takes the write lock with its first
//! statement and draws its number from `write_gate`, so transactions commit in the order of
//! their numbers: the tier-change feed, ordered by (transaction number, seq), never skips a late
//! committer, and the row locks of the Postgres backend are implied. Run and feed-leader locks
//! are in-process; feed watchers are woken on a channel after each writing commit. Where Postgres
//! aggregates a population in SQL (cut points, simulation, lifecycle sweep, bucket rebuild), this
//! backend folds rows with the domain's own functions: the development mode's population is
//! thousands, not millions.

mod buckets;
mod cache_repairs;
mod evaluation_tx;
mod feed_batch;
mod idempotency;
mod lifecycle;
mod lookups;
mod population;
mod programs;
mod rows;
mod runs;
mod tier_feed;
mod tx;
mod value_model;

use std::sync::Arc;

pub use evaluation_tx::SqliteEvaluationTx;
pub use tx::SqliteScoringTx;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{broadcast, watch};
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

/// The schema migrations in SQLite's dialect, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sqlite");

/// Scoring storage in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteScoringStore {
    pool: SqlitePool,
    tier_feed_signal: Arc<watch::Sender<u64>>,
    /// Programs changed by this process, the only writer of its file.
    program_changes: Arc<broadcast::Sender<Uuid>>,
    locks: tierline_runtime::lock::LocalLocks,
}

/// A writing transaction, its number (the feed's `xid`), and whom to wake when it commits.
pub(super) struct Write {
    tx: Transaction<'static, Sqlite>,
    xid: i64,
    signal: Arc<watch::Sender<u64>>,
}

impl Write {
    /// The feed position of the next row this transaction writes.
    async fn next_seq(&mut self) -> Result<i64, ScoringError> {
        Ok(self.take_seqs(1).await?.unwrap_or_default())
    }

    /// Reserves the next `count` feed positions of this transaction in one statement; the first
    /// of them, or `None` for none.
    async fn take_seqs(&mut self, count: usize) -> Result<Option<i64>, ScoringError> {
        if count == 0 {
            return Ok(None);
        }
        let count = i64::try_from(count)
            .map_err(|_| ScoringError::Internal("too many feed positions at once".into()))?;
        let last: i64 = sqlx::query_scalar(
            "UPDATE write_gate SET feed_seq = feed_seq + ?1 WHERE id = 1 RETURNING feed_seq",
        )
        .bind(count)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Some(last - count + 1))
    }

    /// Makes every change durable, then wakes the tier feed's watchers.
    async fn commit(self) -> Result<(), ScoringError> {
        self.tx.commit().await?;
        self.signal.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

impl SqliteScoringStore {
    /// Opens (creating when missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, ScoringError> {
        let pool = tierline_runtime::sqlite::open(url, &MIGRATOR)
            .await
            .map_err(|error| ScoringError::Internal(format!("opening {url}: {error}")))?;
        Ok(Self {
            pool,
            tier_feed_signal: Arc::new(watch::channel(0).0),
            program_changes: Arc::new(broadcast::channel(1024).0),
            locks: tierline_runtime::lock::LocalLocks::default(),
        })
    }

    /// Announces a committed change of a program or its policies.
    fn program_changed(&self, program_id: Uuid) {
        // No receiver is not an error: nothing holds programs then.
        let _ = self.program_changes.send(program_id);
    }

    /// Starts a writing transaction: the write lock and a number, from its first statement.
    async fn begin_write(&self) -> Result<Write, ScoringError> {
        let mut tx = self.pool.begin().await?;
        let xid: i64 = sqlx::query_scalar(
            "UPDATE write_gate SET writes = writes + 1 WHERE id = 1 RETURNING writes",
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(Write {
            tx,
            xid,
            signal: self.tier_feed_signal.clone(),
        })
    }
}

#[async_trait]
impl ScoringStore for SqliteScoringStore {
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
        let activation = self
            .activate(id, by, expected_revision, run_id, now)
            .await?;
        self.program_changed(activation.policy.program_id);
        Ok(activation)
    }

    async fn retire_draft(
        &self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<PolicyVersion, ScoringError> {
        let retired = self.retire(id, by, now).await?;
        self.program_changed(retired.program_id);
        Ok(retired)
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
        Ok(self.lock_runs(program_id).await)
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
        Ok(self.try_lock_feed())
    }

    async fn try_lock_program_runs(
        &self,
        program_id: Uuid,
    ) -> Result<Option<crate::storage::RunLock>, ScoringError> {
        Ok(self.try_lock_runs(program_id))
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
        Ok(Box::new(SqliteEvaluationTx {
            write: self.begin_write().await?,
        }))
    }

    async fn begin(&self) -> Result<Box<dyn ScoringTx>, ScoringError> {
        Ok(Box::new(SqliteScoringTx {
            write: self.begin_write().await?,
        }))
    }

    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, ScoringError> {
        Ok(tierline_runtime::follower::park_in_sqlite(&self.pool, consumer, letters).await?)
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
        self.tier_feed_signal.subscribe()
    }

    async fn tier_feed_origin(
        &self,
    ) -> Result<tierline_runtime::xid_feed::FeedOrigin, ScoringError> {
        Ok(tierline_runtime::sqlite::feed_origin(&self.pool).await?)
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
        // This process is the file's only writer: its own announcements are all there are.
        let mut changes = self.program_changes.subscribe();
        let (sender, receiver) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            if sender.send(ProgramSignal::Listening).await.is_err() {
                return;
            }
            loop {
                let signal = tokio::select! {
                    () = shutdown.cancelled() => return,
                    change = changes.recv() => match change {
                        Ok(program_id) => ProgramSignal::Changed(program_id),
                        Err(broadcast::error::RecvError::Lagged(_)) => ProgramSignal::Lost,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                };
                let lost = signal == ProgramSignal::Lost;
                if sender.send(signal).await.is_err()
                    || (lost && sender.send(ProgramSignal::Listening).await.is_err())
                {
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
