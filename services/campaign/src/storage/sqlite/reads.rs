//! Reads for listings and the report: members and suppressions in order, counts, and the per-arm
//! aggregates.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tierline_runtime::instant::micros;
use uuid::Uuid;

use super::SqliteCampaignStore;
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
impl MembershipReads for SqliteCampaignStore {
    async fn membership_counts(&self, id: Uuid) -> Result<MembershipCounts, CampaignError> {
        let arms: Vec<(String, i64)> =
            sqlx::query_as("SELECT arm, count(*) FROM members WHERE campaign_id = ? GROUP BY arm")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let reasons: Vec<(String, i64)> = sqlx::query_as(
            "SELECT reason, count(*) FROM suppressions WHERE campaign_id = ? GROUP BY reason",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::storage::tallies::membership_counts(&arms, reasons))
    }

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
             WHERE m.campaign_id = ?1 AND (?2 IS NULL OR m.arm = ?2) AND m.seq > COALESCE(?3, 0)
             ORDER BY m.seq LIMIT ?4"
        ))
        .bind(id)
        .bind(arm.map(Arm::as_str))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(MemberRow::try_from).collect()
    }

    async fn suppressions(
        &self,
        id: Uuid,
        reason: Option<SuppressionReason>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<SuppressionRow>, CampaignError> {
        let rows: Vec<StoredSuppression> = sqlx::query_as(&format!(
            "SELECT {SUPPRESSION_COLUMNS} FROM suppressions
             WHERE campaign_id = ?1 AND (?2 IS NULL OR reason = ?2) AND seq > COALESCE(?3, 0)
             ORDER BY seq LIMIT ?4"
        ))
        .bind(id)
        .bind(reason.map(SuppressionReason::as_str))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(SuppressionRow::try_from).collect()
    }

    async fn arm_aggregates(
        &self,
        id: Uuid,
    ) -> Result<(ArmAggregate, ArmAggregate), CampaignError> {
        // One observation per customer and arm: their entries counted, each attributed purchase
        // once however many of their entries' windows it fell into. The variance in two passes:
        // the arm's mean first, then Σ (x − mean)² less (Σ (x − mean))² / n, the correction for
        // the rounding of the mean (the corrected two-pass algorithm); Σx² − n·x̄² in floating
        // point loses every digit when amounts are large and alike.
        let rows: Vec<crate::storage::tallies::ArmRow> = sqlx::query_as(
            "WITH entries AS (
                 SELECT arm, customer_id, count(*) AS entries
                 FROM members WHERE campaign_id = ?1 GROUP BY arm, customer_id),
             purchases AS (
                 SELECT m.arm, a.customer_id, a.activity_id,
                        max(a.amount_minor - a.refunded_minor) AS net,
                        max(a.refunded_minor < a.amount_minor) AS live
                 FROM attributed_purchases a
                 JOIN members m
                     ON m.campaign_id = a.campaign_id AND m.customer_id = a.customer_id AND m.entry = a.entry
                 WHERE a.campaign_id = ?1
                 GROUP BY m.arm, a.customer_id, a.activity_id),
             customers AS (
                 SELECT e.arm, e.customer_id, e.entries,
                        COALESCE(max(p.live), 0) AS converted,
                        COALESCE(sum(p.net), 0) AS revenue
                 FROM entries e LEFT JOIN purchases p ON p.arm = e.arm AND p.customer_id = e.customer_id
                 GROUP BY e.arm, e.customer_id, e.entries),
             means AS (SELECT arm, avg(revenue) AS mean FROM customers GROUP BY arm)
             SELECT c.arm, count(*), sum(c.entries), sum(c.converted), sum(c.revenue),
                    sum((c.revenue - a.mean) * (c.revenue - a.mean))
                        - sum(c.revenue - a.mean) * sum(c.revenue - a.mean) / count(*)
             FROM customers c JOIN means a ON a.arm = c.arm
             GROUP BY c.arm",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::storage::tallies::arm_aggregates(&rows))
    }

    async fn contacts_and_open_windows(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool), CampaignError> {
        let contacts: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND status = 'sent'",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let open: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM members WHERE campaign_id = ? AND attribution_ends_at > ?)",
        )
        .bind(id)
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?;
        Ok((contacts, open))
    }
}
