//! The tier-change feed in SQLite: tier_history and lifecycle_changes merged in (xid, seq) order.
//! Writing transactions commit in the order of their numbers (one writer), so a reader never
//! needs a watermark, and both tables are read in one snapshot so neither runs ahead of the
//! other.

use async_trait::async_trait;
use tierline_runtime::instant::from_micros;
use tierline_runtime::xid_feed::{FeedCursor, FeedPage};
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    rows::{HISTORY_COLUMNS, HistoryRow},
};
use crate::domain::ports::TierFeedSource;
use crate::{
    ScoringError,
    domain::{
        scores::Lifecycle,
        state::{LifecycleChange, TierFeedItem},
    },
};

#[derive(sqlx::FromRow)]
struct TierRow {
    xid: i64,
    seq: i64,
    #[sqlx(flatten)]
    record: HistoryRow,
}

#[derive(sqlx::FromRow)]
struct LifecycleRow {
    xid: i64,
    seq: i64,
    id: Uuid,
    program_id: Uuid,
    customer_id: Uuid,
    from_state: Option<String>,
    to_state: String,
    days_since_last_purchase: Option<i32>,
    occurred_at: i64,
}

fn lifecycle(value: &str) -> Result<Lifecycle, ScoringError> {
    Lifecycle::parse(value).ok_or_else(|| ScoringError::Internal(format!("lifecycle {value:?}")))
}

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
        let tiers: Vec<TierRow> = sqlx::query_as(&format!(
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
        let lifecycles: Vec<LifecycleRow> = sqlx::query_as(
            "SELECT xid, seq, id, program_id, customer_id, from_state, to_state, days_since_last_purchase, occurred_at
             FROM lifecycle_changes
             WHERE (xid, seq) > (?1, ?2) AND (?3 IS NULL OR program_id = ?3)
             ORDER BY xid, seq LIMIT ?4",
        )
        .bind(after.xid)
        .bind(after.seq)
        .bind(program_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *snapshot)
        .await?;
        snapshot.commit().await?;
        let mut events = Vec::with_capacity(tiers.len() + lifecycles.len());
        for row in tiers {
            events.push((
                FeedCursor {
                    xid: row.xid,
                    seq: row.seq,
                },
                TierFeedItem::Tier(row.record.into_record()?),
            ));
        }
        for row in lifecycles {
            events.push((
                FeedCursor {
                    xid: row.xid,
                    seq: row.seq,
                },
                TierFeedItem::Lifecycle(LifecycleChange {
                    id: row.id,
                    program_id: row.program_id,
                    customer_id: row.customer_id,
                    from: row.from_state.as_deref().map(lifecycle).transpose()?,
                    to: lifecycle(&row.to_state)?,
                    days_since_last_purchase: row.days_since_last_purchase,
                    occurred_at: from_micros(row.occurred_at),
                }),
            ));
        }
        // Each table gave its first `limit` rows after the cursor: the first `limit` of the merge
        // are the first `limit` of the feed.
        events.sort_by_key(|(cursor, _)| *cursor);
        events.truncate(limit as usize);
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
