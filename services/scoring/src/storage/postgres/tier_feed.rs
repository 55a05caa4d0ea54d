//! The tier-change feed: `tier_history` read in (xid, seq) order behind the transaction-id
//! watermark, as the customer service's activity feed is (docs/FEED.md).

use async_trait::async_trait;
use tierline_runtime::xid_feed::{FeedCursor, FeedPage, watermark};
use uuid::Uuid;

use super::{
    PgScoringStore,
    rows::{
        HISTORY_COLUMNS, LIFECYCLE_FEED_COLUMNS, LifecycleFeedRow, TierFeedRow, tier_feed_events,
    },
};
use crate::domain::ports::TierFeedSource;
use crate::{ScoringError, domain::state::TierFeedItem};

/// The channel the `notify_feed` trigger of `tier_history` signals on.
pub(super) const TIER_FEED_CHANNEL: &str = "scoring_feed";

#[async_trait]
impl TierFeedSource for PgScoringStore {
    #[tracing::instrument(skip(self), fields(after = %after))]
    async fn read_tier_feed(
        &self,
        after: FeedCursor,
        program_id: Option<Uuid>,
        limit: u32,
    ) -> Result<FeedPage<TierFeedItem>, ScoringError> {
        let watermark = watermark(&self.pool).await?.xid;
        let rows: Vec<TierFeedRow> = sqlx::query_as(&format!(
            "SELECT xid, seq, {HISTORY_COLUMNS}
             FROM tier_history
             WHERE (xid, seq) > ($1, $2) AND xid < $3 AND program_id = COALESCE($4, program_id)
               -- Audited operator acts that left the tier shown as it was are not changes.
               AND from_rank <> to_rank
             ORDER BY xid, seq LIMIT $5"
        ))
        .bind(after.xid)
        .bind(after.seq)
        .bind(watermark)
        .bind(program_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let lifecycle_rows: Vec<LifecycleFeedRow> = sqlx::query_as(&format!(
            "SELECT {LIFECYCLE_FEED_COLUMNS}
             FROM lifecycle_changes
             WHERE (xid, seq) > ($1, $2) AND xid < $3 AND program_id = COALESCE($4, program_id)
             ORDER BY xid, seq LIMIT $5"
        ))
        .bind(after.xid)
        .bind(after.seq)
        .bind(watermark)
        .bind(program_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let held_back = rows.len() + lifecycle_rows.len() < limit as usize
            && sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM tier_history WHERE xid >= $1)
                     OR EXISTS (SELECT 1 FROM lifecycle_changes WHERE xid >= $1)",
            )
            .bind(watermark)
            .fetch_one(&self.pool)
            .await?;
        let events = tier_feed_events(rows, lifecycle_rows, limit)?;
        Ok(FeedPage {
            events,
            held_back,
            caught_up_to: None,
        })
    }

    fn tier_feed_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tier_feed_signal.clone()
    }

    async fn tier_feed_origin(
        &self,
    ) -> Result<tierline_runtime::xid_feed::FeedOrigin, ScoringError> {
        Ok(tierline_runtime::xid_feed::origin(&self.pool).await?)
    }
}
