//! Attribution: the entries a batch's purchases may count for, and applying purchases, refunds
//! and the feed cursor in one transaction (each purchase and refund exactly once).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};
use tierline_runtime::instant::micros;
use uuid::Uuid;

use super::{SqliteCampaignStore, begin_write};
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
impl AttributionRecords for SqliteCampaignStore {
    async fn cursor(&self, consumer: &str) -> Result<Option<String>, CampaignError> {
        Ok(
            sqlx::query_scalar("SELECT position FROM feed_cursors WHERE consumer = ?")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn attribution_targets(
        &self,
        customers: &[Uuid],
        from: DateTime<Utc>,
    ) -> Result<Vec<(AttributionTarget, ProgramFacts)>, CampaignError> {
        let mut targets = Vec::new();
        for customer in customers {
            let rows: Vec<StoredTarget> = sqlx::query_as(&format!(
                "SELECT {TARGET_COLUMNS}
                 FROM members m JOIN campaigns c ON c.id = m.campaign_id
                 WHERE m.customer_id = ? AND m.attribution_ends_at > ?"
            ))
            .bind(customer)
            .bind(micros(from))
            .fetch_all(&self.pool)
            .await?;
            targets.extend(
                rows.into_iter()
                    .map(<(AttributionTarget, ProgramFacts)>::from),
            );
        }
        Ok(targets)
    }

    async fn apply_attribution(
        &self,
        purchases: &[(Uuid, AttributionTarget, i64)],
        refunds: &[(Uuid, Uuid, i64)],
        consumer: &str,
        position: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let mut tx = begin_write(&self.pool).await?;
        for (activity, target, amount) in purchases {
            let fresh = sqlx::query(
                "INSERT INTO attributed_purchases (activity_id, campaign_id, customer_id, entry, amount_minor)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(activity)
            .bind(target.campaign_id)
            .bind(target.customer_id)
            .bind(target.entry)
            .bind(amount)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if fresh {
                sqlx::query(
                    "UPDATE members SET conversions = conversions + 1, revenue_minor = revenue_minor + ?4
                     WHERE campaign_id = ?1 AND customer_id = ?2 AND entry = ?3",
                )
                .bind(target.campaign_id)
                .bind(target.customer_id)
                .bind(target.entry)
                .bind(amount)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (refund, purchase, amount) in refunds {
            let fresh = sqlx::query(
                "INSERT INTO applied_refunds (activity_id) VALUES (?) ON CONFLICT DO NOTHING",
            )
            .bind(refund)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !fresh {
                continue;
            }
            let attributed: Vec<(Uuid, Uuid, i32, i64, i64)> = sqlx::query_as(
                "SELECT campaign_id, customer_id, entry, amount_minor, refunded_minor
                 FROM attributed_purchases WHERE activity_id = ?",
            )
            .bind(purchase)
            .fetch_all(&mut *tx)
            .await?;
            for (campaign_id, customer_id, entry, total, before) in attributed {
                let after = total.min(before + amount);
                sqlx::query(
                    "UPDATE attributed_purchases SET refunded_minor = ?5
                     WHERE activity_id = ?1 AND campaign_id = ?2 AND customer_id = ?3 AND entry = ?4",
                )
                .bind(purchase)
                .bind(campaign_id)
                .bind(customer_id)
                .bind(entry)
                .bind(after)
                .execute(&mut *tx)
                .await?;
                // A purchase refunded in full no longer converts.
                let unconverts = i32::from(after == total && before < total);
                sqlx::query(
                    "UPDATE members SET revenue_minor = revenue_minor - ?4, conversions = conversions - ?5
                     WHERE campaign_id = ?1 AND customer_id = ?2 AND entry = ?3",
                )
                .bind(campaign_id)
                .bind(customer_id)
                .bind(entry)
                .bind(after - before)
                .bind(unconverts)
                .execute(&mut *tx)
                .await?;
            }
        }
        save_cursor(&mut tx, consumer, position, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Stores a consumer's position inside the transaction of its effects.
pub(super) async fn save_cursor(
    tx: &mut Transaction<'static, Sqlite>,
    consumer: &str,
    position: &str,
    now: DateTime<Utc>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "INSERT INTO feed_cursors (consumer, position, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (consumer) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
    )
    .bind(consumer)
    .bind(position)
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
