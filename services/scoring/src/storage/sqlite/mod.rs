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

use super::rows;

mod buckets;
mod cache_repairs;
mod evaluation;
mod evaluation_tx;
mod feed_batch;
mod history;
mod idempotency;
mod lifecycle;
mod lookups;
mod programs;
mod purchase_profiles;
mod runs;
mod scores;
mod simulation;
mod tier_feed;
mod tx;
mod value_model;

use std::sync::Arc;

pub use evaluation_tx::SqliteEvaluationTx;
pub use tx::SqliteScoringTx;

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::ScoringError;

/// The schema migrations in SQLite's dialect, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sqlite");

/// Whole days from `earlier` to `later`, rounded down (as Postgres's `floor` of the epoch
/// difference).
pub(super) fn days_between(earlier: i64, later: chrono::DateTime<chrono::Utc>) -> i64 {
    (tierline_runtime::instant::micros(later) - earlier).div_euclid(86_400_000_000)
}

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
        let mut tx = pool.begin().await?;
        purchase_profiles::count_missing(&mut tx).await?;
        tx.commit().await?;
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
