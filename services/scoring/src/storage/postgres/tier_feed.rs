//! The tier-change feed: `tier_history` read in (xid, seq) order behind the transaction-id
//! watermark, as the customer service's activity feed is (docs/FEED.md).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tierline_runtime::xid_feed::{FeedCursor, FeedPage, watermark};
use uuid::Uuid;

use super::{
    PgScoringStore,
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

/// The channel the `notify_feed` trigger of `tier_history` signals on.
pub(super) const TIER_FEED_CHANNEL: &str = "scoring_feed";

#[derive(sqlx::FromRow)]
struct Row {
    xid: i64,
    seq: i64,
    #[sqlx(flatten)]
    record: HistoryRow,
}

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
        let rows: Vec<Row> = sqlx::query_as(&format!(
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
            occurred_at: DateTime<Utc>,
        }
        let lifecycle_rows: Vec<LifecycleRow> = sqlx::query_as(
            "SELECT xid, seq, id, program_id, customer_id, from_state, to_state, days_since_last_purchase, occurred_at
             FROM lifecycle_changes
             WHERE (xid, seq) > ($1, $2) AND xid < $3 AND program_id = COALESCE($4, program_id)
             ORDER BY xid, seq LIMIT $5",
        )
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
        let events = rows
            .into_iter()
            .map(|row| {
                Ok((
                    FeedCursor {
                        xid: row.xid,
                        seq: row.seq,
                    },
                    TierFeedItem::Tier(row.record.into_record()?),
                ))
            })
            .collect::<Result<Vec<_>, ScoringError>>()?;
        let mut events = events;
        for row in lifecycle_rows {
            let parse = |value: &str| {
                Lifecycle::parse(value)
                    .ok_or_else(|| ScoringError::Internal(format!("lifecycle {value:?}")))
            };
            events.push((
                FeedCursor {
                    xid: row.xid,
                    seq: row.seq,
                },
                TierFeedItem::Lifecycle(LifecycleChange {
                    id: row.id,
                    program_id: row.program_id,
                    customer_id: row.customer_id,
                    from: row.from_state.as_deref().map(parse).transpose()?,
                    to: parse(&row.to_state)?,
                    days_since_last_purchase: row.days_since_last_purchase,
                    occurred_at: row.occurred_at,
                }),
            ));
        }
        // Each table gave its first `limit` rows after the cursor: the first `limit` of the merge
        // are the first `limit` of the feed.
        events.sort_by_key(|(cursor, _)| *cursor);
        events.truncate(limit as usize);
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
