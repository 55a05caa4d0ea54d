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
mod rows;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::watch;
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

#[async_trait]
impl CustomerStore for SqliteCustomerStore {
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
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(customer) = self.select_customer(*id).await? {
                found.push(customer);
            }
        }
        Ok(found)
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
        let mut write = self.begin_write().await?;
        let recorded = activities::purchase(&mut write, purchase).await?;
        self.finish(write, &recorded).await?;
        Ok(recorded)
    }

    async fn record_refund(&self, refund: &NewRefund) -> Result<Recorded, CustomerError> {
        let mut write = self.begin_write().await?;
        let recorded = activities::refund(&mut write, refund).await?;
        self.finish(write, &recorded).await?;
        Ok(recorded)
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
        self.feed_signal.subscribe()
    }

    async fn feed_origin(&self) -> Result<tierline_runtime::xid_feed::FeedOrigin, CustomerError> {
        Ok(tierline_runtime::sqlite::feed_origin(&self.pool).await?)
    }
}
