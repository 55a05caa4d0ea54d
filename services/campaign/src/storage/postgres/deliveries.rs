//! Deliveries: leases to channel adapters (skip-locked, so adapters never share one), acks
//! (by the lease holder only; first outcome wins) and withdrawal.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgCampaignStore;
use crate::domain::ports::DeliveryRecords;
use crate::{
    CampaignError,
    domain::campaign::Channel,
    domain::ports::{Ack, AckOutcome, LeasedDelivery, unrecorded_ack},
    storage::rows::StoredLease,
};

#[async_trait]
impl DeliveryRecords for PgCampaignStore {
    async fn withdraw_leased(&self, ids: &[Uuid]) -> Result<u64, CampaignError> {
        Ok(sqlx::query(
            "UPDATE deliveries SET status = 'withdrawn' WHERE id = ANY($1) AND status = 'leased'",
        )
        .bind(ids)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    fn delivery_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.delivery_signal.clone()
    }

    #[tracing::instrument(skip(self))]
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
        let rows: Vec<StoredLease> = sqlx::query_as(
            "UPDATE deliveries d SET status = 'leased', leased_to = $2, lease_expires_at = $4, attempt = d.attempt + 1
             FROM (SELECT id FROM deliveries
                   WHERE channel = $1 AND (status = 'pending' OR (status = 'leased' AND lease_expires_at <= $3))
                     AND campaign_id NOT IN (SELECT id FROM campaigns WHERE status = 'cancelled')
                   ORDER BY created_at LIMIT $5 FOR UPDATE SKIP LOCKED) picked
             WHERE d.id = picked.id
             RETURNING d.id, d.campaign_id, d.customer_id, d.lease_expires_at, d.attempt, d.created_at",
        )
        .bind(channel.as_str())
        .bind(adapter_id)
        .bind(now)
        .bind(now + lease)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(LeasedDelivery::from).collect())
    }

    #[tracing::instrument(skip_all, fields(ids = ids.len()))]
    async fn still_leased(
        &self,
        ids: &[Uuid],
        adapter_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, CampaignError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM deliveries WHERE id = ANY($1) AND status = 'leased' AND leased_to = $2 AND lease_expires_at > $3",
        )
        .bind(ids)
        .bind(adapter_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip_all, fields(adapter_id = %adapter_id, acks = acks.len()))]
    async fn ack(
        &self,
        adapter_id: &str,
        acks: &[Ack],
        now: DateTime<Utc>,
    ) -> Result<Vec<AckOutcome>, CampaignError> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(acks.len());
        for ack in acks {
            let status = ack.stored_status();
            // A leased delivery takes the first outcome of the adapter holding its lease, also
            // after the lease expired (as long as it was not leased again).
            let recorded = sqlx::query(
                "UPDATE deliveries SET status = $2, acked_at = $3, occurred_at = $4, failure_reason = $5,
                     provider_message_id = NULLIF($6, '')
                 WHERE id = $1 AND status = 'leased' AND leased_to = $7",
            )
            .bind(ack.delivery_id)
            .bind(status)
            .bind(now)
            .bind(ack.occurred_at)
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
                    sqlx::query_as("SELECT status, leased_to FROM deliveries WHERE id = $1")
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
        } else {
            tx.commit().await?;
        }
        Ok(outcomes)
    }

    #[tracing::instrument(skip(self))]
    async fn withdraw_pending(&self, campaign_id: Uuid) -> Result<u64, CampaignError> {
        Ok(sqlx::query("UPDATE deliveries SET status = 'withdrawn' WHERE campaign_id = $1 AND status = 'pending'")
            .bind(campaign_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
