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
mod time;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{RwLock, watch};
use uuid::Uuid;

use super::{
    Ack, AckOutcome, ArmAggregate, AttributionTarget, CampaignFilter, CampaignStore, EnrolmentTx,
    LaunchLock, LeasedDelivery, MemberRow, MembershipCounts, SuppressionReason, SuppressionRow,
};
use crate::{
    CampaignError,
    domain::{
        campaign::{Campaign, Channel, ProgramFacts},
        holdout::Arm,
    },
};

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
impl CampaignStore for SqliteCampaignStore {
    async fn create(
        &self,
        campaign: &Campaign,
        idempotency: Option<(&str, &[u8])>,
    ) -> Result<Option<(Uuid, Vec<u8>)>, CampaignError> {
        self.insert_campaign(campaign, idempotency).await
    }

    async fn campaign(&self, id: Uuid) -> Result<Option<Campaign>, CampaignError> {
        self.select_campaign(id).await
    }

    async fn list(
        &self,
        filter: &CampaignFilter,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Campaign>, CampaignError> {
        self.select_campaigns(filter, before, limit).await
    }

    async fn save(&self, campaign: &Campaign) -> Result<(), CampaignError> {
        self.update_campaign(campaign).await
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, CampaignError> {
        self.select_due(now).await
    }

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

    async fn complete_launch(&self, id: Uuid) -> Result<(), CampaignError> {
        self.mark_launch_complete(id).await
    }

    async fn begin_enrolment(&self) -> Result<Box<dyn EnrolmentTx>, CampaignError> {
        Ok(Box::new(enrolment::SqliteEnrolmentTx::new(self.clone())))
    }

    async fn membership_counts(&self, id: Uuid) -> Result<MembershipCounts, CampaignError> {
        self.counts(id).await
    }

    async fn members(
        &self,
        id: Uuid,
        arm: Option<Arm>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MemberRow>, CampaignError> {
        self.select_members(id, arm, after_seq, limit).await
    }

    async fn suppressions(
        &self,
        id: Uuid,
        reason: Option<SuppressionReason>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<SuppressionRow>, CampaignError> {
        self.select_suppressions(id, reason, after_seq, limit).await
    }

    async fn withdraw_pending(&self, id: Uuid) -> Result<u64, CampaignError> {
        self.withdraw(id).await
    }

    async fn lease(
        &self,
        channel: Channel,
        adapter_id: &str,
        limit: u32,
        lease: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeasedDelivery>, CampaignError> {
        self.lease_deliveries(channel, adapter_id, limit, lease, now)
            .await
    }

    async fn withdraw_leased(&self, ids: &[Uuid]) -> Result<u64, CampaignError> {
        let mut withdrawn = 0;
        for id in ids {
            withdrawn += sqlx::query(
                "UPDATE deliveries SET status = 'withdrawn' WHERE id = ? AND status = 'leased'",
            )
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(withdrawn)
    }

    async fn still_leased(
        &self,
        ids: &[Uuid],
        adapter_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, CampaignError> {
        self.select_still_leased(ids, adapter_id, now).await
    }

    async fn ack(
        &self,
        adapter_id: &str,
        acks: &[Ack],
        now: DateTime<Utc>,
    ) -> Result<Vec<AckOutcome>, CampaignError> {
        self.record_acks(adapter_id, acks, now).await
    }

    fn delivery_signal(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }

    async fn arm_aggregates(
        &self,
        id: Uuid,
    ) -> Result<(ArmAggregate, ArmAggregate), CampaignError> {
        self.aggregates(id).await
    }

    async fn contacts_and_open_windows(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool), CampaignError> {
        self.contacts(id, now).await
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<String>, CampaignError> {
        Ok(
            sqlx::query_scalar("SELECT position FROM feed_cursors WHERE consumer = ?")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn attribution_targets(
        &self,
        customers: &[Uuid],
        from: DateTime<Utc>,
    ) -> Result<Vec<(AttributionTarget, ProgramFacts)>, CampaignError> {
        self.select_targets(customers, from).await
    }

    async fn apply_attribution(
        &self,
        purchases: &[(Uuid, AttributionTarget, i64)],
        refunds: &[(Uuid, Uuid, i64)],
        consumer: &str,
        position: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        self.apply(purchases, refunds, consumer, position, now)
            .await
    }
}
