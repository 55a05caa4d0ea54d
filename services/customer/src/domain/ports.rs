//! The ports of the customer domain: what it needs stored, split by aggregate, and the types
//! they carry. The storage backends (`storage::postgres`, `storage::sqlite`) implement each one
//! where its SQL lives; [`CustomerStore`] is all of them, which every complete backend is.
//!
//! Rules that must hold under concurrency (a refund never exceeding its purchase, one activity
//! per idempotency key, a feed that never skips) are enforced by the backend inside its
//! transactions; the domain validates everything else before calling it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    CustomerError,
    domain::{
        activity::{Activity, NewPurchase, NewRefund, Recorded},
        consent::{Consent, ConsentChange, CustomerConsents, HistoryPage, RecordedConsentChange},
        customer::{Customer, CustomerFilter, CustomerPatch, NewCustomer},
        feed::{FeedCursor, FeedPage},
        import::{ImportCommand, ImportOutcome},
        onboarding::{Onboarding, OnboardingOutcome},
    },
};

/// A position in a customer's activity list (newest occurred_at first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityPosition {
    /// The occurred_at of the last activity seen.
    pub occurred_at: DateTime<Utc>,
    /// Its id (breaks ties).
    pub id: Uuid,
}

/// Customer records.
#[async_trait]
pub trait CustomerRecords: Send + Sync {
    /// Stores a new customer and its CREATED feed event. A taken external id is `AlreadyExists`.
    async fn create_customer(&self, customer: &NewCustomer) -> Result<Customer, CustomerError>;
    /// One customer by id.
    async fn customer(&self, id: Uuid) -> Result<Option<Customer>, CustomerError>;
    /// One customer by external id.
    async fn customer_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Customer>, CustomerError>;
    /// The customers among `ids` that exist.
    async fn customers(&self, ids: &[Uuid]) -> Result<Vec<Customer>, CustomerError>;
    /// Applies a patch to an active customer (`NotFound`, `CustomerErased`, `AlreadyExists`).
    async fn update_customer(
        &self,
        id: Uuid,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError>;
    /// Customers matching `filter` with ids after `after`, in id order, at most `limit`.
    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Customer>, CustomerError>;
    /// Erases personal data, revokes consents and records the ERASED feed event; erasing an
    /// erased customer changes nothing.
    async fn erase_customer(
        &self,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError>;
}

/// Channel consents and their history.
#[async_trait]
pub trait ConsentRecords: Send + Sync {
    /// Records a consent change for an active customer and returns the current consent.
    async fn set_consent(&self, change: &ConsentChange) -> Result<Consent, CustomerError>;
    /// A page of one customer's consent history, newest first.
    async fn consent_history(
        &self,
        customer_id: Uuid,
        page: HistoryPage,
    ) -> Result<Vec<RecordedConsentChange>, CustomerError>;
    /// Current consents of the customers among `ids` that exist.
    async fn consents(&self, ids: &[Uuid]) -> Result<Vec<CustomerConsents>, CustomerError>;
}

/// Purchases and refunds, one at a time.
#[async_trait]
pub trait ActivityRecords: Send + Sync {
    /// Records a purchase, or replays the one recorded under its key.
    async fn record_purchase(&self, purchase: &NewPurchase) -> Result<Recorded, CustomerError>;
    /// Records a refund, checking it against its purchase under a lock, or replays one.
    async fn record_refund(&self, refund: &NewRefund) -> Result<Recorded, CustomerError>;
    /// One activity.
    async fn activity(&self, id: Uuid) -> Result<Option<Activity>, CustomerError>;
    /// A page of one customer's activities, newest occurred_at first.
    async fn list_activities(
        &self,
        customer_id: Uuid,
        after: Option<ActivityPosition>,
        limit: u32,
    ) -> Result<Vec<Activity>, CustomerError>;
}

/// Purchases and refunds in bulk.
#[async_trait]
pub trait ActivityImports: Send + Sync {
    /// Records a batch in one transaction; one outcome per command, in order.
    async fn import_batch(
        &self,
        commands: &[ImportCommand],
    ) -> Result<Vec<ImportOutcome>, CustomerError>;
}

/// Customers in bulk.
#[async_trait]
pub trait BulkOnboarding: Send + Sync {
    /// Onboards customers in one transaction (`domain::onboarding`): creates the unknown ones
    /// with their CREATED events, updates those whose profile differs, records the consents
    /// whose state differs; one outcome per item, in order.
    async fn onboard(&self, batch: &[Onboarding]) -> Result<Vec<OnboardingOutcome>, CustomerError>;
}

/// The activity feed, as the store holds it.
#[async_trait]
pub trait ActivityFeedSource: Send + Sync {
    /// Feed events after `after`, at most `limit`.
    async fn read_feed(&self, after: FeedCursor, limit: u32) -> Result<FeedPage, CustomerError>;
    /// Ticks whenever new feed events may have committed.
    fn feed_signal(&self) -> watch::Receiver<u64>;
    /// Whose transaction ids the feed orders by, and the next one.
    async fn feed_origin(&self) -> Result<tierline_runtime::xid_feed::FeedOrigin, CustomerError>;
}

/// Everything the customer service stores: every backend that implements all the ports.
pub trait CustomerStore:
    CustomerRecords
    + ConsentRecords
    + ActivityRecords
    + ActivityImports
    + BulkOnboarding
    + ActivityFeedSource
    + std::fmt::Debug
    + 'static
{
}

impl<T> CustomerStore for T where
    T: CustomerRecords
        + ConsentRecords
        + ActivityRecords
        + ActivityImports
        + BulkOnboarding
        + ActivityFeedSource
        + std::fmt::Debug
        + 'static
{
}
