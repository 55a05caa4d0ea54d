//! Reads and rebuilds that evaluations need.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgScoringStore;
use crate::ScoringError;

impl PgScoringStore {
    #[tracing::instrument(skip(self))]
    pub(super) async fn select_customers_with_state(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM tier_states WHERE program_id = $1 AND customer_id > COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid)
             ORDER BY customer_id LIMIT $3",
        )
        .bind(program_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_tier_counts(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<(u32, i64)>, ScoringError> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "WITH shown AS (
                 SELECT CASE WHEN override_until > $2 THEN override_rank ELSE earned_rank END AS rank
                 FROM tier_states WHERE program_id = $1)
             SELECT rank, count(*) FROM shown GROUP BY rank
             UNION ALL
             SELECT 0, count(*) FROM members m
             WHERE NOT EXISTS (SELECT 1 FROM tier_states s WHERE s.program_id = $1 AND s.customer_id = m.customer_id)",
        )
        .bind(program_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut counts: Vec<(u32, i64)> = Vec::new();
        for (rank, count) in rows {
            let rank = u32::try_from(rank).unwrap_or(0);
            match counts.iter_mut().find(|(r, _)| *r == rank) {
                Some((_, total)) => *total += count,
                None => counts.push((rank, count)),
            }
        }
        counts.sort_unstable();
        Ok(counts)
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_ended_overrides(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM tier_states WHERE program_id = $1 AND override_until <= $2 ORDER BY customer_id LIMIT $3",
        )
        .bind(program_id)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn rebuild(
        &self,
        program_id: Uuid,
        zone: chrono_tz::Tz,
    ) -> Result<i32, ScoringError> {
        let mut tx = self.pool.begin().await?;
        // Holds off the feed consumer's bucket writes until the rebuild commits; its purchases
        // then add to the rebuilt rows (a purchase not yet committed is not in the rebuild).
        sqlx::query("LOCK TABLE buckets IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM buckets WHERE program_id = $1")
            .bind(program_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO buckets (program_id, customer_id, month, net_spend_minor, points, purchases)
             SELECT program_id, customer_id, date_trunc('month', occurred_at AT TIME ZONE $2)::date,
                    sum(amount_minor - refunded_minor),
                    sum(points - points * refunded_minor / amount_minor),
                    count(*) FILTER (WHERE refunded_minor < amount_minor)
             FROM counted_purchases WHERE program_id = $1
             GROUP BY 1, 2, 3",
        )
        .bind(program_id)
        .bind(zone.name())
        .execute(&mut *tx)
        .await?;
        // Every record changed: cached ones are of the generation before (the trigger on
        // programs tells every replica at commit).
        let generation: i32 = sqlx::query_scalar(
            "UPDATE programs SET cache_generation = cache_generation + 1 WHERE id = $1
             RETURNING cache_generation",
        )
        .bind(program_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(generation)
    }
}
