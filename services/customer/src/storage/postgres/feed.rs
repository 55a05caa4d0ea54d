//! Reading the feed from Postgres behind the transaction-id watermark (the runtime's `xid_feed`
//! serves it and wakes watchers on the channel below).

use crate::storage::ActivityFeedSource;
use async_trait::async_trait;

use super::{
    PgCustomerStore,
    rows::{ACTIVITY_COLUMNS, ActivityRow, CUSTOMER_EVENT_COLUMNS, CustomerEventRow, feed_events},
};
use crate::{
    CustomerError,
    domain::feed::{FeedCursor, FeedPage},
};

/// The channel the `notify_feed` trigger signals on.
pub(super) const FEED_CHANNEL: &str = "customer_feed";

#[async_trait]
impl ActivityFeedSource for PgCustomerStore {
    fn feed_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.feed_signal.clone()
    }

    async fn feed_origin(&self) -> Result<tierline_runtime::xid_feed::FeedOrigin, CustomerError> {
        Ok(tierline_runtime::xid_feed::origin(&self.pool).await?)
    }

    #[tracing::instrument(skip(self), fields(after = %after))]
    async fn read_feed(&self, after: FeedCursor, limit: u32) -> Result<FeedPage, CustomerError> {
        // Every transaction older than the watermark has ended: rows below it can no longer appear.
        let watermark = tierline_runtime::xid_feed::watermark(&self.pool).await?;
        let limit_sql = i64::from(limit);
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities
             WHERE (xid, seq) > ($1, $2) AND xid < $3
             ORDER BY xid, seq LIMIT $4"
        );
        let activities: Vec<ActivityRow> = sqlx::query_as(&sql)
            .bind(after.xid)
            .bind(after.seq)
            .bind(watermark.xid)
            .bind(limit_sql)
            .fetch_all(&self.pool)
            .await?;
        let customer_events: Vec<CustomerEventRow> = sqlx::query_as(&format!(
            "SELECT {CUSTOMER_EVENT_COLUMNS}
             FROM customer_events e JOIN customers c ON c.id = e.customer_id
             WHERE (e.xid, e.seq) > ($1, $2) AND e.xid < $3
             ORDER BY e.xid, e.seq LIMIT $4"
        ))
        .bind(after.xid)
        .bind(after.seq)
        .bind(watermark.xid)
        .bind(limit_sql)
        .fetch_all(&self.pool)
        .await?;

        let events = feed_events(activities, customer_events, limit)?;

        let full = events.len() == limit as usize;
        let held_back = !full
            && sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM activities WHERE xid >= $1)
                     OR EXISTS (SELECT 1 FROM customer_events WHERE xid >= $1)",
            )
            .bind(watermark.xid)
            .fetch_one(&self.pool)
            .await?;
        Ok(FeedPage {
            events,
            held_back,
            caught_up_to: watermark.caught_up_to(full, held_back),
        })
    }
}
