//! Reading the feed: events after a cursor in (transaction number, seq) order. Every committed
//! transaction is visible and none can commit with a smaller number later (one writer), so no
//! event is held back.

use crate::storage::ActivityFeedSource;
use async_trait::async_trait;

use super::{
    SqliteCustomerStore,
    rows::{ACTIVITY_COLUMNS, ActivityRow, CUSTOMER_EVENT_COLUMNS, CustomerEventRow, feed_events},
};
use crate::{
    CustomerError,
    domain::feed::{FeedCursor, FeedPage},
};

#[async_trait]
impl ActivityFeedSource for SqliteCustomerStore {
    fn feed_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.feed_signal.subscribe()
    }

    async fn feed_origin(&self) -> Result<tierline_runtime::xid_feed::FeedOrigin, CustomerError> {
        Ok(tierline_runtime::sqlite::feed_origin(&self.pool).await?)
    }

    async fn read_feed(&self, after: FeedCursor, limit: u32) -> Result<FeedPage, CustomerError> {
        let limit_sql = i64::from(limit);
        // Both tables are read in one snapshot: read apart, a transaction committing between
        // the two reads could show its customer event but not an earlier transaction's
        // purchase, and the cursor would move past that purchase for good.
        // One writer at a time, so everything committed before the read began is in its snapshot.
        let read_at = chrono::Utc::now();
        let mut snapshot = self.pool.begin().await?;
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities
             WHERE xid > ?1 OR (xid = ?1 AND seq > ?2)
             ORDER BY xid, seq LIMIT ?3"
        );
        let activities: Vec<ActivityRow> = sqlx::query_as(&sql)
            .bind(after.xid)
            .bind(after.seq)
            .bind(limit_sql)
            .fetch_all(&mut *snapshot)
            .await?;
        let customer_events: Vec<CustomerEventRow> = sqlx::query_as(&format!(
            "SELECT {CUSTOMER_EVENT_COLUMNS}
             FROM customer_events e JOIN customers c ON c.id = e.customer_id
             WHERE e.xid > ?1 OR (e.xid = ?1 AND e.seq > ?2)
             ORDER BY e.xid, e.seq LIMIT ?3"
        ))
        .bind(after.xid)
        .bind(after.seq)
        .bind(limit_sql)
        .fetch_all(&mut *snapshot)
        .await?;
        snapshot.commit().await?;
        let events = feed_events(activities, customer_events, limit)?;
        let full = events.len() == limit as usize;
        Ok(FeedPage {
            events,
            held_back: false,
            caught_up_to: (!full).then_some(read_at),
        })
    }
}
