//! Reading the feed: events after a cursor in (transaction number, seq) order. Every committed
//! transaction is visible and none can commit with a smaller number later (one writer), so no
//! event is held back.

use crate::storage::ActivityFeedSource;
use async_trait::async_trait;
use tierline_runtime::instant::from_micros;
use uuid::Uuid;

use super::{
    SqliteCustomerStore,
    rows::{ACTIVITY_COLUMNS, ActivityRow},
};
use crate::{
    CustomerError,
    domain::{
        activity::Activity,
        feed::{CustomerEvent, CustomerEventKind, FeedCursor, FeedEvent, FeedPage, FeedPayload},
    },
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
        let customer_events: Vec<(i64, i64, Uuid, String, i64, i64)> = sqlx::query_as(
            "SELECT e.xid, e.seq, e.customer_id, e.kind, e.occurred_at, c.joined_at
             FROM customer_events e JOIN customers c ON c.id = e.customer_id
             WHERE e.xid > ?1 OR (e.xid = ?1 AND e.seq > ?2)
             ORDER BY e.xid, e.seq LIMIT ?3",
        )
        .bind(after.xid)
        .bind(after.seq)
        .bind(limit_sql)
        .fetch_all(&mut *snapshot)
        .await?;
        snapshot.commit().await?;
        let mut events = Vec::with_capacity(activities.len() + customer_events.len());
        for row in activities {
            let cursor = FeedCursor {
                xid: row.xid,
                seq: row.seq,
            };
            events.push(FeedEvent {
                cursor,
                payload: FeedPayload::Activity(Box::new(Activity::try_from(row)?)),
            });
        }
        for (xid, seq, customer_id, kind, occurred_at, joined_at) in customer_events {
            let kind = CustomerEventKind::parse(&kind).ok_or_else(|| {
                CustomerError::Internal(format!("unknown customer event {kind:?}"))
            })?;
            events.push(FeedEvent {
                cursor: FeedCursor { xid, seq },
                payload: FeedPayload::Customer(CustomerEvent {
                    customer_id,
                    kind,
                    occurred_at: from_micros(occurred_at),
                    joined_at: from_micros(joined_at),
                }),
            });
        }
        // Each source returned its first `limit` rows after the cursor, so the first `limit` of
        // the merge are exactly the first `limit` of the feed.
        events.sort_by_key(|event| event.cursor);
        events.truncate(limit as usize);
        let full = events.len() == limit as usize;
        Ok(FeedPage {
            events,
            held_back: false,
            caught_up_to: (!full).then_some(read_at),
        })
    }
}
