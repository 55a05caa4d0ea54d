//! Deliveries: leases (the one writer makes them exclusive), acks (by the lease holder only; first
//! outcome wins) and withdrawal. Every change that can give a stream work signals it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tierline_runtime::instant::micros;
use uuid::Uuid;

use super::{SqliteCampaignStore, begin_write};
use crate::domain::ports::DeliveryRecords;
use crate::{
    CampaignError,
    domain::campaign::Channel,
    domain::ports::{Ack, AckOutcome, LeasedDelivery, unrecorded_ack},
    storage::rows::StoredLease,
};

#[async_trait]
impl DeliveryRecords for SqliteCampaignStore {
    async fn withdraw_leased(&self, ids: &[Uuid]) -> Result<u64, CampaignError> {
        let mut withdrawn = 0;
        for id in ids {
            withdrawn += sqlx::query(
                "UPDATE deliveries SET status = 'withdrawn' WHERE id = ? AND status = 'leased'",
            )
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(withdrawn)
    }

    fn delivery_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.signal.subscribe()
    }

    async fn lease(
        &self,
        channel: Channel,
        adapter_id: &str,
        limit: u32,
        lease: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeasedDelivery>, CampaignError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = begin_write(&self.pool).await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM deliveries
             WHERE channel = ?1 AND (status = 'pending' OR (status = 'leased' AND lease_expires_at <= ?2))
               AND campaign_id NOT IN (SELECT id FROM campaigns WHERE status = 'cancelled')
             ORDER BY created_at LIMIT ?3",
        )
        .bind(channel.as_str())
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut leased = Vec::with_capacity(ids.len());
        for id in ids {
            let row: StoredLease = sqlx::query_as(
                "UPDATE deliveries SET status = 'leased', leased_to = ?2, lease_expires_at = ?3, attempt = attempt + 1
                 WHERE id = ?1
                 RETURNING id, campaign_id, customer_id, lease_expires_at, attempt, created_at",
            )
            .bind(id)
            .bind(adapter_id)
            .bind(micros(now + lease))
            .fetch_one(&mut *tx)
            .await?;
            leased.push(LeasedDelivery::from(row));
        }
        tx.commit().await?;
        if !leased.is_empty() {
            self.signal();
        }
        Ok(leased)
    }

    async fn still_leased(
        &self,
        ids: &[Uuid],
        adapter_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, CampaignError> {
        let mut still = Vec::new();
        for id in ids {
            let leased: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM deliveries
                                WHERE id = ? AND status = 'leased' AND leased_to = ? AND lease_expires_at > ?)",
            )
            .bind(id)
            .bind(adapter_id)
            .bind(micros(now))
            .fetch_one(&self.pool)
            .await?;
            if leased {
                still.push(*id);
            }
        }
        Ok(still)
    }

    async fn ack(
        &self,
        adapter_id: &str,
        acks: &[Ack],
        now: DateTime<Utc>,
    ) -> Result<Vec<AckOutcome>, CampaignError> {
        let mut tx = begin_write(&self.pool).await?;
        let mut outcomes = Vec::with_capacity(acks.len());
        for ack in acks {
            let status = ack.stored_status();
            // A leased delivery takes the first outcome of the adapter holding its lease, also
            // after the lease expired (as long as it was not leased again).
            let recorded = sqlx::query(
                "UPDATE deliveries SET status = ?2, acked_at = ?3, occurred_at = ?4, failure_reason = ?5,
                     provider_message_id = NULLIF(?6, '')
                 WHERE id = ?1 AND status = 'leased' AND leased_to = ?7",
            )
            .bind(ack.delivery_id)
            .bind(status)
            .bind(micros(now))
            .bind(micros(ack.occurred_at))
            .bind(&ack.failure)
            .bind(&ack.provider_message_id)
            .bind(adapter_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let outcome = if recorded {
                AckOutcome::Accepted
            } else {
                let current: Option<(String, Option<String>)> =
                    sqlx::query_as("SELECT status, leased_to FROM deliveries WHERE id = ?")
                        .bind(ack.delivery_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                unrecorded_ack(current, status, adapter_id)
            };
            outcomes.push(outcome);
        }
        if outcomes.contains(&AckOutcome::NotLeaseHolder) {
            // All or nothing: the caller is refused and records nothing.
            tx.rollback().await?;
            return Ok(outcomes);
        }
        tx.commit().await?;
        // Acks make room in the adapters' in-flight windows.
        self.signal();
        Ok(outcomes)
    }

    async fn withdraw_pending(&self, campaign_id: Uuid) -> Result<u64, CampaignError> {
        Ok(sqlx::query(
            "UPDATE deliveries SET status = 'withdrawn' WHERE campaign_id = ? AND status = 'pending'",
        )
        .bind(campaign_id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
