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
use super::rows;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
