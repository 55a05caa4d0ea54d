//! The Postgres backend: the record of truth. Tables live in the `customer` schema; migrations
//! are in `services/customer/migrations`.

mod activities;
mod coalescer;
mod consents;
mod customers;
mod feed;
mod import;
mod onboarding;
mod purchases;
mod rows;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ActivityPosition, CustomerStore};
use crate::{
    CustomerError,
    domain::{
        activity::{Activity, NewPurchase, NewRefund, Recorded},
        consent::{Consent, ConsentChange, CustomerConsents, HistoryPage, RecordedConsentChange},
        customer::{Customer, CustomerFilter, CustomerPatch, NewCustomer},
        feed::{FeedCursor, FeedPage},
        import::{ImportCommand, ImportOutcome},
    },
};

/// The service's own schema.
pub const SCHEMA: &str = "customer";

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Customer storage in Postgres.
#[derive(Debug, Clone)]
pub struct PgCustomerStore {
    pool: PgPool,
    feed_signal: watch::Receiver<u64>,
    purchases: coalescer::PurchaseCoalescer,
}

impl PgCustomerStore {
    /// A store on `pool` (whose search path starts with [`SCHEMA`]); listens for feed
    /// notifications until `shutdown`; writes single purchases with `purchase_writers`
    /// coalescing writers.
    pub fn new(pool: PgPool, shutdown: CancellationToken, purchase_writers: usize) -> Self {
        let (sender, feed_signal) = watch::channel(0);
        tierline_runtime::xid_feed::spawn_listener(
            pool.clone(),
            feed::FEED_CHANNEL,
            sender,
            shutdown,
        );
        let purchases = coalescer::PurchaseCoalescer::start(pool.clone(), purchase_writers);
        Self {
            pool,
            feed_signal,
            purchases,
        }
    }

    /// The pool, for health checks and metrics.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl CustomerStore for PgCustomerStore {
    async fn create_customer(&self, customer: &NewCustomer) -> Result<Customer, CustomerError> {
        self.insert_customer(customer).await
    }

    async fn customer(&self, id: Uuid) -> Result<Option<Customer>, CustomerError> {
        self.select_customer(id).await
    }

    async fn customer_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Customer>, CustomerError> {
        self.select_customer_by_external_id(external_id).await
    }

    async fn customers(&self, ids: &[Uuid]) -> Result<Vec<Customer>, CustomerError> {
        self.select_customers(ids).await
    }

    async fn update_customer(
        &self,
        id: Uuid,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError> {
        self.patch_customer(id, patch, now).await
    }

    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Customer>, CustomerError> {
        self.select_customer_page(filter, after, limit).await
    }

    async fn erase_customer(
        &self,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError> {
        self.erase(id, reason, now).await
    }

    async fn set_consent(&self, change: &ConsentChange) -> Result<Consent, CustomerError> {
        self.upsert_consent(change).await
    }

    async fn consent_history(
        &self,
        customer_id: Uuid,
        page: HistoryPage,
    ) -> Result<Vec<RecordedConsentChange>, CustomerError> {
        self.select_consent_history(customer_id, page).await
    }

    async fn consents(&self, ids: &[Uuid]) -> Result<Vec<CustomerConsents>, CustomerError> {
        self.select_consents(ids).await
    }

    async fn record_purchase(&self, purchase: &NewPurchase) -> Result<Recorded, CustomerError> {
        self.purchases.record(purchase.clone()).await
    }

    async fn record_refund(&self, refund: &NewRefund) -> Result<Recorded, CustomerError> {
        self.insert_refund(refund).await
    }

    async fn activity(&self, id: Uuid) -> Result<Option<Activity>, CustomerError> {
        self.select_activity(id).await
    }

    async fn list_activities(
        &self,
        customer_id: Uuid,
        after: Option<ActivityPosition>,
        limit: u32,
    ) -> Result<Vec<Activity>, CustomerError> {
        self.select_activity_page(customer_id, after, limit).await
    }

    async fn import_batch(
        &self,
        commands: &[ImportCommand],
    ) -> Result<Vec<ImportOutcome>, CustomerError> {
        self.import(commands).await
    }

    async fn onboard(
        &self,
        batch: &[crate::domain::onboarding::Onboarding],
    ) -> Result<Vec<crate::domain::onboarding::OnboardingOutcome>, CustomerError> {
        self.onboard_batch(batch).await
    }

    async fn read_feed(&self, after: FeedCursor, limit: u32) -> Result<FeedPage, CustomerError> {
        self.select_feed(after, limit).await
    }

    fn feed_signal(&self) -> watch::Receiver<u64> {
        self.feed_signal.clone()
    }

    async fn feed_origin(&self) -> Result<tierline_runtime::xid_feed::FeedOrigin, CustomerError> {
        Ok(tierline_runtime::xid_feed::origin(&self.pool).await?)
    }
}
