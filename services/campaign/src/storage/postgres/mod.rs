//! The Postgres backend: the record of truth. Tables live in the `campaign` schema; migrations
//! are in `services/campaign/migrations`.

mod attribution;
mod campaigns;
mod deliveries;
mod enrolment;
mod reads;

pub use enrolment::PgEnrolmentTx;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
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

/// The service's own schema.
pub const SCHEMA: &str = "campaign";

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The NOTIFY channel of delivery changes.
const DELIVERY_CHANNEL: &str = "campaign_deliveries";

/// Campaign storage in Postgres.
#[derive(Debug, Clone)]
pub struct PgCampaignStore {
    pool: PgPool,
    delivery_signal: tokio::sync::watch::Receiver<u64>,
}

impl PgCampaignStore {
    /// A store on `pool` (search path starting with [`SCHEMA`]); listens for delivery changes
    /// until `shutdown`.
    pub fn new(pool: PgPool, shutdown: tokio_util::sync::CancellationToken) -> Self {
        let (sender, delivery_signal) = tokio::sync::watch::channel(0);
        tierline_runtime::xid_feed::spawn_listener(
            pool.clone(),
            DELIVERY_CHANNEL,
            sender,
            shutdown,
        );
        Self {
            pool,
            delivery_signal,
        }
    }
}

/// The advisory lock key of a campaign's launch.
fn launch_key(id: Uuid) -> i64 {
    i64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap_or([0; 8])) ^ 0x4c61_756e_6368_0000
}

/// The advisory lock key of a background consumer: the first 8 bytes of SHA-256 of its name, so
/// names never need a registry of numbers.
fn consumer_key(consumer: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("tierline-campaign/{consumer}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

#[async_trait]
impl CampaignStore for PgCampaignStore {
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
        // Ends with its connection, also when this replica dies; another launcher may then
        // resume.
        Ok(tierline_runtime::lock::try_session_lock(&self.pool, launch_key(id)).await?)
    }

    async fn hold_enrolments(&self) -> Result<LaunchLock, CampaignError> {
        Ok(
            tierline_runtime::lock::session_lock_shared(&self.pool, enrolment::CONTACTS_LOCK)
                .await?,
        )
    }

    async fn try_lock_consumer(&self, consumer: &str) -> Result<Option<LaunchLock>, CampaignError> {
        Ok(tierline_runtime::lock::try_session_lock(&self.pool, consumer_key(consumer)).await?)
    }

    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, CampaignError> {
        Ok(tierline_runtime::follower::park_in_postgres(&self.pool, consumer, letters).await?)
    }

    async fn complete_launch(&self, id: Uuid) -> Result<(), CampaignError> {
        self.mark_launch_complete(id).await
    }

    async fn begin_enrolment(&self) -> Result<Box<dyn EnrolmentTx>, CampaignError> {
        Ok(Box::new(PgEnrolmentTx {
            tx: self.pool.begin().await?,
        }))
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
        Ok(sqlx::query(
            "UPDATE deliveries SET status = 'withdrawn' WHERE id = ANY($1) AND status = 'leased'",
        )
        .bind(ids)
        .execute(&self.pool)
        .await?
        .rows_affected())
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

    fn delivery_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.delivery_signal.clone()
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
        self.select_cursor(consumer).await
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
