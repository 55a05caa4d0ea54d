//! The SQLite backend, for the all-in-one development mode: one process, one file (or memory).
//! It passes the same conformance suite as Postgres. What Postgres does across replicas is done
//! here in the process: the launch and consumer locks are in-process mutexes, the contacts lock
//! an in-process read-write lock (attribution reads, enrolments write), and delivery changes are
//! signalled on a channel instead of LISTEN/NOTIFY. SQLite's single writer replaces
//! `SKIP LOCKED`: every writing transaction takes the write lock first (`write_gate`).

mod attribution;
mod campaigns;
mod deliveries;
mod enrolment;
mod reads;

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{RwLock, watch};
use uuid::Uuid;

use super::{EnrolmentTx, LaunchLock};
use crate::CampaignError;
use crate::domain::ports::Coordination;

/// The schema migrations in SQLite's dialect, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sqlite");

/// Campaign storage in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteCampaignStore {
    pool: SqlitePool,
    signal: Arc<watch::Sender<u64>>,
    locks: tierline_runtime::lock::LocalLocks,
    enrolments: Arc<RwLock<()>>,
}

impl SqliteCampaignStore {
    /// Opens (creating when missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, CampaignError> {
        let pool = tierline_runtime::sqlite::open(url, &MIGRATOR)
            .await
            .map_err(|error| CampaignError::Internal(format!("opening {url}: {error}")))?;
        Ok(Self {
            pool,
            signal: Arc::new(watch::channel(0).0),
            locks: tierline_runtime::lock::LocalLocks::default(),
            enrolments: Arc::new(RwLock::new(())),
        })
    }

    fn try_lock(&self, name: String) -> Option<LaunchLock> {
        self.locks.try_lock(&name)
    }

    /// Deliveries changed: wake the streams.
    fn signal(&self) {
        self.signal.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Starts a writing transaction holding SQLite's write lock from its first statement.
async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, CampaignError> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE write_gate SET writes = writes + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

#[async_trait]
impl Coordination for SqliteCampaignStore {
    async fn try_lock_launch(&self, id: Uuid) -> Result<Option<LaunchLock>, CampaignError> {
        Ok(self.try_lock(format!("launch:{id}")))
    }

    async fn hold_enrolments(&self) -> Result<LaunchLock, CampaignError> {
        Ok(LaunchLock::new(self.enrolments.clone().read_owned().await))
    }

    async fn try_lock_consumer(&self, consumer: &str) -> Result<Option<LaunchLock>, CampaignError> {
        Ok(self.try_lock(format!("consumer:{consumer}")))
    }

    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, CampaignError> {
        Ok(tierline_runtime::follower::park_in_sqlite(&self.pool, consumer, letters).await?)
    }

    async fn begin_enrolment(&self) -> Result<Box<dyn EnrolmentTx>, CampaignError> {
        Ok(Box::new(enrolment::SqliteEnrolmentTx::new(self.clone())))
    }
}
