//! The unit of work of an enrolment chunk: the frequency-cap lock and counts, members with their
//! deliveries, suppressions and the launch's progress, in one transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    CampaignError,
    domain::{
        campaign::{Channel, Status},
        holdout::Arm,
    },
    storage::{EnrolmentTx, NewMember, SuppressionReason},
};

/// The advisory lock key of the frequency cap ("contacts" in ASCII).
pub(super) const CONTACTS_LOCK: i64 = 0x636f_6e74_6163_7473;

/// A transaction of enrolments.
#[derive(Debug)]
pub struct PgEnrolmentTx {
    pub(super) tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl EnrolmentTx for PgEnrolmentTx {
    async fn lock_contacts(&mut self) -> Result<(), CampaignError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CONTACTS_LOCK)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn campaign_running(&mut self, campaign_id: Uuid) -> Result<bool, CampaignError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1 FOR SHARE")
                .bind(campaign_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(status.as_deref().and_then(Status::parse) == Some(Status::Running))
    }

    #[tracing::instrument(skip_all, fields(customers = customers.len()))]
    async fn recent_contacts(
        &mut self,
        customers: &[Uuid],
        since: DateTime<Utc>,
        excluding: Option<Uuid>,
    ) -> Result<HashMap<Uuid, i64>, CampaignError> {
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT customer_id, count(*) FROM deliveries
             WHERE customer_id = ANY($1) AND created_at > $2 AND status IN ('pending', 'leased', 'sent')
               AND ($3::uuid IS NULL OR campaign_id <> $3)
             GROUP BY customer_id",
        )
        .bind(customers)
        .bind(since)
        .bind(excluding)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows.into_iter().collect())
    }

    #[tracing::instrument(skip_all, fields(customers = customers.len()))]
    async fn latest_entries(
        &mut self,
        campaign_id: Uuid,
        customers: &[Uuid],
    ) -> Result<HashMap<Uuid, (i32, DateTime<Utc>)>, CampaignError> {
        let rows: Vec<(Uuid, i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT DISTINCT ON (customer_id) customer_id, entry, entered_at FROM members
             WHERE campaign_id = $1 AND customer_id = ANY($2) ORDER BY customer_id, entry DESC",
        )
        .bind(campaign_id)
        .bind(customers)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(customer, entry, at)| (customer, (entry, at)))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(campaign_id = %campaign_id, members = members.len()))]
    async fn add_members(
        &mut self,
        campaign_id: Uuid,
        channel: Channel,
        members: &[NewMember],
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        if members.is_empty() {
            return Ok(());
        }
        let customers: Vec<Uuid> = members.iter().map(|m| m.customer_id).collect();
        let entries: Vec<i32> = members.iter().map(|m| m.entry).collect();
        let arms: Vec<&str> = members.iter().map(|m| m.arm.as_str()).collect();
        let entered: Vec<DateTime<Utc>> = members.iter().map(|m| m.entered_at).collect();
        let ends: Vec<DateTime<Utc>> = members.iter().map(|m| m.attribution_ends_at).collect();
        // Only entries inserted now get a delivery: a replayed chunk creates nothing twice.
        sqlx::query(
            "WITH added AS (
                 INSERT INTO members (campaign_id, customer_id, entry, arm, entered_at, attribution_ends_at)
                 SELECT $1, * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::timestamptz[], $6::timestamptz[])
                 ON CONFLICT DO NOTHING
                 RETURNING customer_id, entry, arm)
             INSERT INTO deliveries (id, campaign_id, customer_id, entry, channel, status, created_at)
             SELECT gen_random_uuid(), $1, customer_id, entry, $7, 'pending', $8 FROM added WHERE arm = 'treatment'
             ON CONFLICT DO NOTHING",
        )
        .bind(campaign_id)
        .bind(&customers)
        .bind(&entries)
        .bind(&arms)
        .bind(&entered)
        .bind(&ends)
        .bind(channel.as_str())
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(campaign_id = %campaign_id, suppressed = suppressed.len()))]
    async fn suppress(
        &mut self,
        campaign_id: Uuid,
        occasion: &str,
        suppressed: &[(Uuid, SuppressionReason)],
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        if suppressed.is_empty() {
            return Ok(());
        }
        let customers: Vec<Uuid> = suppressed.iter().map(|(c, _)| *c).collect();
        let reasons: Vec<&str> = suppressed.iter().map(|(_, r)| r.as_str()).collect();
        sqlx::query(
            "INSERT INTO suppressions (campaign_id, customer_id, occasion, reason, suppressed_at)
             SELECT $1, customer_id, $2, reason, $3 FROM unnest($4::uuid[], $5::text[]) AS t(customer_id, reason)
             ON CONFLICT DO NOTHING",
        )
        .bind(campaign_id)
        .bind(occasion)
        .bind(now)
        .bind(&customers)
        .bind(&reasons)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn advance_launch(
        &mut self,
        campaign_id: Uuid,
        matched: i64,
        cursor: Uuid,
    ) -> Result<(), CampaignError> {
        sqlx::query(
            "UPDATE campaigns SET launch_matched = launch_matched + $2, launch_cursor = $3 WHERE id = $1",
        )
        .bind(campaign_id)
        .bind(matched)
        .bind(cursor)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn add_matched(&mut self, campaign_id: Uuid, matched: i64) -> Result<(), CampaignError> {
        sqlx::query("UPDATE campaigns SET launch_matched = launch_matched + $2 WHERE id = $1")
            .bind(campaign_id)
            .bind(matched)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn save_cursor(&mut self, consumer: &str, position: &str) -> Result<(), CampaignError> {
        super::attribution::save_cursor(&mut self.tx, consumer, position, Utc::now()).await
    }

    async fn commit(self: Box<Self>) -> Result<(), CampaignError> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// The stored form of an arm, for queries.
pub(super) fn arm_filter(arm: Option<Arm>) -> Option<&'static str> {
    arm.map(Arm::as_str)
}
