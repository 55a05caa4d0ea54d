//! Attribution: the member entries a batch of activity may count for, and applying what counted
//! (purchases added, refunds netted) with the feed cursor in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgCampaignStore;
use crate::domain::ports::AttributionRecords;
use crate::{
    CampaignError,
    domain::campaign::ProgramFacts,
    storage::{
        AttributionTarget,
        rows::{StoredTarget, TARGET_COLUMNS},
    },
};

#[async_trait]
impl AttributionRecords for PgCampaignStore {
    #[tracing::instrument(skip_all, fields(customers = customers.len()))]
    async fn attribution_targets(
        &self,
        customers: &[Uuid],
        from: DateTime<Utc>,
    ) -> Result<Vec<(AttributionTarget, ProgramFacts)>, CampaignError> {
        let rows: Vec<StoredTarget> = sqlx::query_as(&format!(
            "SELECT {TARGET_COLUMNS}
             FROM members m JOIN campaigns c ON c.id = m.campaign_id
             WHERE m.customer_id = ANY($1) AND m.attribution_ends_at > $2"
        ))
        .bind(customers)
        .bind(from)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(skip_all, fields(purchases = purchases.len(), refunds = refunds.len()))]
    async fn apply_attribution(
        &self,
        purchases: &[(Uuid, AttributionTarget, i64)],
        refunds: &[(Uuid, Uuid, i64)],
        consumer: &str,
        position: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let mut tx = self.pool.begin().await?;
        if !purchases.is_empty() {
            let activity: Vec<Uuid> = purchases.iter().map(|p| p.0).collect();
            let campaign: Vec<Uuid> = purchases.iter().map(|p| p.1.campaign_id).collect();
            let customer: Vec<Uuid> = purchases.iter().map(|p| p.1.customer_id).collect();
            let entry: Vec<i32> = purchases.iter().map(|p| p.1.entry).collect();
            let amount: Vec<i64> = purchases.iter().map(|p| p.2).collect();
            // Only purchases attributed now move the members: a replay adds nothing.
            sqlx::query(
                "WITH added AS (
                     INSERT INTO attributed_purchases (activity_id, campaign_id, customer_id, entry, amount_minor)
                     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::bigint[])
                     ON CONFLICT DO NOTHING
                     RETURNING campaign_id, customer_id, entry, amount_minor),
                 totals AS (
                     SELECT campaign_id, customer_id, entry, count(*) AS purchases, sum(amount_minor) AS amount
                     FROM added GROUP BY 1, 2, 3)
                 UPDATE members m SET conversions = m.conversions + t.purchases, revenue_minor = m.revenue_minor + t.amount
                 FROM totals t
                 WHERE m.campaign_id = t.campaign_id AND m.customer_id = t.customer_id AND m.entry = t.entry",
            )
            .bind(&activity)
            .bind(&campaign)
            .bind(&customer)
            .bind(&entry)
            .bind(&amount)
            .execute(&mut *tx)
            .await?;
        }
        for (refund_id, purchase_id, amount) in refunds {
            let fresh = sqlx::query(
                "INSERT INTO applied_refunds (activity_id) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(refund_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !fresh {
                continue;
            }
            // Netted in every entry the purchase counted for; a refund never takes more than the
            // purchase, and a fully refunded purchase no longer converts.
            sqlx::query(
                "WITH changed AS (
                     UPDATE attributed_purchases a SET refunded_minor = LEAST(a.amount_minor, a.refunded_minor + $2)
                     FROM attributed_purchases old
                     WHERE a.activity_id = $1 AND old.activity_id = a.activity_id AND old.campaign_id = a.campaign_id
                       AND old.customer_id = a.customer_id AND old.entry = a.entry
                     RETURNING a.campaign_id, a.customer_id, a.entry, a.amount_minor,
                               old.refunded_minor AS before, a.refunded_minor AS after)
                 UPDATE members m SET revenue_minor = m.revenue_minor - (c.after - c.before),
                     conversions = m.conversions - (c.after = c.amount_minor AND c.before < c.amount_minor)::int
                 FROM changed c
                 WHERE m.campaign_id = c.campaign_id AND m.customer_id = c.customer_id AND m.entry = c.entry",
            )
            .bind(purchase_id)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
        }
        save_cursor(&mut tx, consumer, position, now).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn cursor(&self, consumer: &str) -> Result<Option<String>, CampaignError> {
        Ok(
            sqlx::query_scalar("SELECT position FROM feed_cursors WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// Stores a consumer's position inside the transaction of its effects.
pub(super) async fn save_cursor(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    consumer: &str,
    position: &str,
    now: DateTime<Utc>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO feed_cursors (consumer, position, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (consumer) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at",
    )
    .bind(consumer)
    .bind(position)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
