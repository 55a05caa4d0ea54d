//! The SQLite backend, for the all-in-one development mode: one process, one file (or memory).
//! It passes the same conformance suite as Postgres. SQLite has one writer, and every writing
//! transaction here takes the write lock with its first statement and draws its number from
//! `write_gate`: transactions commit in the order of their numbers, so the feed, ordered by
//! (transaction number, seq), can never skip a late committer — the guarantee Postgres gets
//! from its transaction-id watermark (docs/FEED.md). Feed watchers are woken on a channel.

mod activities;
mod consents;
mod customers;
mod feed;
mod onboarding;
use super::rows;

use std::sync::Arc;

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::watch;

use crate::CustomerError;

/// The schema migrations in SQLite's dialect, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sqlite");

/// Customer storage in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteCustomerStore {
    pool: SqlitePool,
    feed_signal: Arc<watch::Sender<u64>>,
}

/// A writing transaction and its number (the feed's `xid`).
struct Write {
    tx: Transaction<'static, Sqlite>,
    xid: i64,
    /// The last feed position this transaction handed out: positions are counted here and
    /// stored once at commit (the transaction holds the write lock, so nobody else counts).
    last_seq: Option<i64>,
}

impl Write {
    /// The feed position of the next row this transaction writes.
    async fn next_seq(&mut self) -> Result<i64, CustomerError> {
        let last = match self.last_seq {
            Some(last) => last,
            None => {
                sqlx::query_scalar("SELECT feed_seq FROM write_gate WHERE id = 1")
                    .fetch_one(&mut *self.tx)
                    .await?
            }
        };
        self.last_seq = Some(last + 1);
        Ok(last + 1)
    }
}

impl SqliteCustomerStore {
    /// Opens (creating when missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, CustomerError> {
        let pool = tierline_runtime::sqlite::open(url, &MIGRATOR)
            .await
            .map_err(|error| CustomerError::Internal(format!("opening {url}: {error}")))?;
        Ok(Self {
            pool,
            feed_signal: Arc::new(watch::channel(0).0),
        })
    }

    /// Starts a writing transaction: the write lock and a number, from its first statement.
    async fn begin_write(&self) -> Result<Write, CustomerError> {
        let mut tx = self.pool.begin().await?;
        let xid: i64 = sqlx::query_scalar(
            "UPDATE write_gate SET writes = writes + 1 WHERE id = 1 RETURNING writes",
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(Write {
            tx,
            xid,
            last_seq: None,
        })
    }

    /// Commits a transaction that wrote feed events, then wakes the feed's watchers.
    async fn commit_feed(&self, mut write: Write) -> Result<(), CustomerError> {
        if let Some(last) = write.last_seq {
            sqlx::query("UPDATE write_gate SET feed_seq = ? WHERE id = 1")
                .bind(last)
                .execute(&mut *write.tx)
                .await?;
        }
        write.tx.commit().await?;
        self.feed_signal.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}
