//! The Postgres backend: the record of truth. Tables live in the `campaign` schema; migrations
//! are in `services/campaign/migrations`.

mod attribution;
mod campaigns;
mod deliveries;
mod enrolment;
mod reads;

pub use enrolment::PgEnrolmentTx;

use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use super::{EnrolmentTx, LaunchLock};
use crate::CampaignError;
use crate::domain::ports::Coordination;

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
impl Coordination for PgCampaignStore {
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

    async fn begin_enrolment(&self) -> Result<Box<dyn EnrolmentTx>, CampaignError> {
        Ok(Box::new(PgEnrolmentTx {
            tx: self.pool.begin().await?,
        }))
    }
}
