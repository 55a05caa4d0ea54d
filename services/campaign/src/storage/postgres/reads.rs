//! Reads for listings and the report: members and suppressions in order, counts, and the per-arm
//! aggregates (one scan of a campaign's members).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PgCampaignStore, enrolment::arm_filter};
use crate::domain::ports::MembershipReads;
use crate::{
    CampaignError,
    domain::holdout::Arm,
    storage::{
        ArmAggregate, MemberRow, MembershipCounts, SuppressionReason, SuppressionRow,
        rows::{MEMBER_COLUMNS, SUPPRESSION_COLUMNS, StoredMember, StoredSuppression},
    },
};

#[async_trait]
impl MembershipReads for PgCampaignStore {
    #[tracing::instrument(skip(self))]
    async fn membership_counts(&self, id: Uuid) -> Result<MembershipCounts, CampaignError> {
        let arms: Vec<(String, i64)> =
            sqlx::query_as("SELECT arm, count(*) FROM members WHERE campaign_id = $1 GROUP BY arm")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let reasons: Vec<(String, i64)> = sqlx::query_as(
            "SELECT reason, count(*) FROM suppressions WHERE campaign_id = $1 GROUP BY reason ORDER BY reason",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::storage::tallies::membership_counts(&arms, reasons))
    }

    #[tracing::instrument(skip(self))]
    async fn members(
        &self,
        id: Uuid,
        arm: Option<Arm>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MemberRow>, CampaignError> {
        let rows: Vec<StoredMember> = sqlx::query_as(&format!(
            "SELECT {MEMBER_COLUMNS}
             FROM members m LEFT JOIN deliveries d
                 ON d.campaign_id = m.campaign_id AND d.customer_id = m.customer_id AND d.entry = m.entry
             WHERE m.campaign_id = $1 AND ($2::text IS NULL OR m.arm = $2) AND m.seq > COALESCE($3, 0)
             ORDER BY m.seq LIMIT $4"
        ))
        .bind(id)
        .bind(arm_filter(arm))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(MemberRow::try_from).collect()
    }

    #[tracing::instrument(skip(self))]
    async fn suppressions(
        &self,
        id: Uuid,
        reason: Option<SuppressionReason>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<SuppressionRow>, CampaignError> {
        let rows: Vec<StoredSuppression> = sqlx::query_as(&format!(
            "SELECT {SUPPRESSION_COLUMNS} FROM suppressions
             WHERE campaign_id = $1 AND ($2::text IS NULL OR reason = $2) AND seq > COALESCE($3, 0)
             ORDER BY seq LIMIT $4"
        ))
        .bind(id)
        .bind(reason.map(SuppressionReason::as_str))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(SuppressionRow::try_from).collect()
    }

    #[tracing::instrument(skip(self))]
    async fn arm_aggregates(
        &self,
        id: Uuid,
    ) -> Result<(ArmAggregate, ArmAggregate), CampaignError> {
        // One observation per customer and arm: their entries counted, each attributed purchase
        // once however many of their entries' windows it fell into. var_pop of the customers'
        // revenue is computed in numeric from exact sums, so n · var_pop is Σ (x − x̄)² without
        // the cancellation of Σx² − n·x̄² in floating point.
        let rows: Vec<crate::storage::tallies::ArmRow> = sqlx::query_as(
            "WITH entries AS (
                 SELECT arm, customer_id, count(*) AS entries
                 FROM members WHERE campaign_id = $1 GROUP BY arm, customer_id),
             purchases AS (
                 SELECT m.arm, a.customer_id, a.activity_id,
                        max(a.amount_minor - a.refunded_minor) AS net,
                        bool_or(a.refunded_minor < a.amount_minor) AS live
                 FROM attributed_purchases a
                 JOIN members m
                     ON m.campaign_id = a.campaign_id AND m.customer_id = a.customer_id AND m.entry = a.entry
                 WHERE a.campaign_id = $1
                 GROUP BY m.arm, a.customer_id, a.activity_id),
             customers AS (
                 SELECT e.arm, e.customer_id, e.entries,
                        COALESCE(bool_or(p.live), false) AS converted,
                        COALESCE(sum(p.net), 0) AS revenue
                 FROM entries e LEFT JOIN purchases p ON p.arm = e.arm AND p.customer_id = e.customer_id
                 GROUP BY e.arm, e.customer_id, e.entries)
             SELECT arm, count(*), sum(entries)::bigint, count(*) FILTER (WHERE converted),
                    sum(revenue)::bigint, (var_pop(revenue) * count(*))::float8
             FROM customers GROUP BY arm",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::storage::tallies::arm_aggregates(&rows))
    }

    #[tracing::instrument(skip(self))]
    async fn contacts_and_open_windows(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool), CampaignError> {
        let contacts: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND status = 'sent'",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let open: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM members WHERE campaign_id = $1 AND attribution_ends_at > $2)",
        )
        .bind(id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok((contacts, open))
    }
}
