//! The tier-change feed in SQLite: tier_history and lifecycle_changes merged in (xid, seq) order.
//! Writing transactions commit in the order of their numbers (one writer), so a reader never
//! needs a watermark, and both tables are read in one snapshot so neither runs ahead of the
//! other.

use async_trait::async_trait;
use tierline_runtime::xid_feed::{FeedCursor, FeedPage};
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    rows::{
        HISTORY_COLUMNS, LIFECYCLE_FEED_COLUMNS, LifecycleFeedRow, TierFeedRow, tier_feed_events,
    },
};
use crate::domain::ports::TierFeedSource;
use crate::{ScoringError, domain::state::TierFeedItem};

#[async_trait]
impl TierFeedSource for SqliteScoringStore {
    #[tracing::instrument(skip(self), fields(after = %after))]
    async fn read_tier_feed(
        &self,
        after: FeedCursor,
        program_id: Option<Uuid>,
        limit: u32,
    ) -> Result<FeedPage<TierFeedItem>, ScoringError> {
        let mut snapshot = self.pool.begin().await?;
        let tiers: Vec<TierFeedRow> = sqlx::query_as(&format!(
            "SELECT xid, seq, {HISTORY_COLUMNS}
             FROM tier_history
             WHERE (xid, seq) > (?1, ?2) AND (?3 IS NULL OR program_id = ?3)
               -- Audited operator acts that left the tier shown as it was are not changes.
               AND from_rank <> to_rank
             ORDER BY xid, seq LIMIT ?4"
        ))
        .bind(after.xid)
        .bind(after.seq)
        .bind(program_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *snapshot)
        .await?;
        let lifecycles: Vec<LifecycleFeedRow> = sqlx::query_as(&format!(
            "SELECT {LIFECYCLE_FEED_COLUMNS}
             FROM lifecycle_changes
             WHERE (xid, seq) > (?1, ?2) AND (?3 IS NULL OR program_id = ?3)
             ORDER BY xid, seq LIMIT ?4"
        ))
        .bind(after.xid)
        .bind(after.seq)
        .bind(program_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *snapshot)
        .await?;
        snapshot.commit().await?;
        let events = tier_feed_events(tiers, lifecycles, limit)?;
        Ok(FeedPage {
            events,
            held_back: false,
            caught_up_to: None,
        })
    }

    fn tier_feed_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tier_feed_signal.subscribe()
    }

    async fn tier_feed_origin(
        &self,
    ) -> Result<tierline_runtime::xid_feed::FeedOrigin, ScoringError> {
        Ok(tierline_runtime::sqlite::feed_origin(&self.pool).await?)
    }
}
