//! What an evaluation run reads (its chunks of members, the tier counts, ended overrides), and
//! the chunked bucket rebuild a policy change needs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PgEvaluationTx;
use super::{PgScoringStore, chunk_reads::ChunkQuery};
use crate::domain::ports::{BucketRebuilds, EvaluationReads, TierCountsSnapshot};
use crate::{
    ScoringError,
    domain::{month::Month, policy::PolicyRules},
    storage::{
        RebuiltChunk,
        tx::{ChunkEnd, ChunkSize, EvaluationChunk},
    },
};

#[async_trait]
impl EvaluationReads for PgScoringStore {
    async fn begin_evaluation(
        &self,
    ) -> Result<Box<dyn crate::storage::tx::EvaluationTx>, ScoringError> {
        let tx = super::tx::begin_by_key(&self.pool).await?;
        Ok(Box::new(PgEvaluationTx { tx }))
    }

    #[tracing::instrument(skip(self))]
    async fn customers_with_state(
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

    /// Read by one of two walks, chosen at the pass's first chunk: by block when few states are
    /// candidates, by customer when most are (`chunk_reads`). Of each chunk only the candidates
    /// leave Postgres, each with its buckets.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(skip(self, policy))]
    async fn evaluation_chunk(
        &self,
        program_id: Uuid,
        run_id: Uuid,
        after: Option<ChunkEnd>,
        size: ChunkSize,
        policy: (Uuid, &PolicyRules),
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<EvaluationChunk, ScoringError> {
        let query = ChunkQuery {
            program_id,
            run_id,
            size,
            policy,
            judged_month: Month::of(as_of, policy.1.time_zone).first_day(),
            judged_at: as_of,
            now,
        };
        self.read_chunk(&query, after).await
    }

    /// A read-only repeatable-read transaction whose snapshot is taken before this returns (by
    /// its first statement); the counting runs in it later.
    #[tracing::instrument(skip(self))]
    async fn tier_counts_snapshot(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Box<dyn TierCountsSnapshot>, ScoringError> {
        let mut tx = self.begin_snapshot().await?;
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
        Ok(Box::new(PgTierCountsSnapshot {
            tx,
            program_id,
            now,
        }))
    }

    #[tracing::instrument(skip(self))]
    async fn ended_overrides(
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
}

/// Tier counts in a snapshot taken when they were asked for.
struct PgTierCountsSnapshot {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    program_id: Uuid,
    now: DateTime<Utc>,
}

#[async_trait]
impl TierCountsSnapshot for PgTierCountsSnapshot {
    #[tracing::instrument(skip(self), fields(program_id = %self.program_id))]
    async fn count(mut self: Box<Self>) -> Result<Vec<(u32, i64)>, ScoringError> {
        let counts = count_tiers(&mut self.tx, self.program_id, self.now).await?;
        self.tx.commit().await?;
        Ok(counts)
    }
}

/// How many members hold each shown rank at `now`, read on `connection`.
async fn count_tiers(
    connection: &mut sqlx::PgConnection,
    program_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(u32, i64)>, ScoringError> {
    // Every state belongs to a member (each writer that creates a state records its member
    // first), so the members without one are the members less the states: two scans, where
    // finding them by an anti-join took five times as long at a million.
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "WITH shown AS (
             SELECT CASE WHEN override_until > $2 THEN override_rank ELSE earned_rank END AS rank
             FROM tier_states WHERE program_id = $1)
         SELECT rank, count(*) FROM shown GROUP BY rank
         UNION ALL
         SELECT -1, count(*) FROM members",
    )
    .bind(program_id)
    .bind(now)
    .fetch_all(&mut *connection)
    .await?;
    let members: i64 = rows
        .iter()
        .filter(|(rank, _)| *rank < 0)
        .map(|(_, count)| count)
        .sum();
    let with_state: i64 = rows
        .iter()
        .filter(|(rank, _)| *rank >= 0)
        .map(|(_, count)| count)
        .sum();
    let mut counts: Vec<(u32, i64)> = Vec::new();
    let without_state = std::iter::once((0, (members - with_state).max(0)));
    for (rank, count) in rows
        .into_iter()
        .filter(|(rank, _)| *rank >= 0)
        .map(|(rank, count)| (u32::try_from(rank).unwrap_or(0), count))
        .chain(without_state)
    {
        match counts.iter_mut().find(|(r, _)| *r == rank) {
            Some((_, total)) => *total += count,
            None => counts.push((rank, count)),
        }
    }
    counts.sort_unstable();
    Ok(counts)
}

#[async_trait]
impl BucketRebuilds for PgScoringStore {
    #[tracing::instrument(skip(self))]
    async fn start_bucket_rebuild(&self, program_id: Uuid) -> Result<i32, ScoringError> {
        // The trigger on programs tells every replica at commit.
        Ok(sqlx::query_scalar(
            "UPDATE programs SET cache_generation = cache_generation + 1 WHERE id = $1
             RETURNING cache_generation",
        )
        .bind(program_id)
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn rebuild_bucket_chunk(
        &self,
        program_id: Uuid,
        zone: chrono_tz::Tz,
        after: Option<Uuid>,
        limit: u32,
        repair_generation: Option<i32>,
    ) -> Result<RebuiltChunk, ScoringError> {
        let mut tx = self.pool.begin().await?;
        let after = after.unwrap_or(Uuid::nil());
        let customers =
            super::buyer_chunks::lock_next_buyers(&mut tx, program_id, after, limit).await?;
        // The last chunk reaches to the end of the id space.
        let through = match customers.last() {
            Some(last) if customers.len() == limit as usize => *last,
            _ => Uuid::max(),
        };
        // The chunk's states locked in customer order first, as every writer that locks several
        // states does (an evaluation's page among them): the statements below would otherwise
        // lock them in whatever order their plans meet them.
        sqlx::query(
            "SELECT FROM tier_states WHERE program_id = $1 AND customer_id > $2 AND customer_id <= $3
             ORDER BY customer_id FOR UPDATE",
        )
        .bind(program_id)
        .bind(after)
        .bind(through)
        .execute(&mut *tx)
        .await?;
        // Each buyer's months counted again onto their state (a buyer without one gets the base
        // state since joining, as the feed would have given them), in one statement; then the
        // states of the chunk left with no purchase lose theirs.
        sqlx::query(
            "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, version, updated_at, months,
                                     spend_through, points_through, purchases_through)
             SELECT $1, t.customer_id, 0, COALESCE(m.joined_at, t.first_month::timestamptz), 1, now(), t.months,
                    t.spend, t.points, t.purchases
             FROM (SELECT customer_id, min(month) AS first_month, array_agg(month ORDER BY month) AS months,
                          array_agg(spend ORDER BY month) AS spend, array_agg(points ORDER BY month) AS points,
                          array_agg(purchases ORDER BY month) AS purchases
                   FROM (SELECT customer_id, month, sum(s) OVER running AS spend, sum(p) OVER running AS points,
                                sum(n) OVER running AS purchases
                         FROM (SELECT customer_id, date_trunc('month', occurred_at AT TIME ZONE $4)::date AS month,
                                      sum(amount_minor - refunded_minor) AS s,
                                      sum(points - points * refunded_minor / amount_minor) AS p,
                                      count(*) FILTER (WHERE refunded_minor < amount_minor) AS n
                               FROM counted_purchases WHERE program_id = $1 AND customer_id > $2 AND customer_id <= $3
                               GROUP BY 1, 2) by_month
                         WINDOW running AS (PARTITION BY customer_id ORDER BY month)) totals
                   GROUP BY customer_id) t
                  LEFT JOIN members m ON m.customer_id = t.customer_id
             ON CONFLICT (program_id, customer_id) DO UPDATE SET
                 months = EXCLUDED.months, spend_through = EXCLUDED.spend_through,
                 points_through = EXCLUDED.points_through, purchases_through = EXCLUDED.purchases_through,
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(program_id)
        .bind(after)
        .bind(through)
        .bind(zone.name())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tier_states s SET months = '{}', spend_through = '{}', points_through = '{}',
                 purchases_through = '{}', updated_at = now()
             WHERE s.program_id = $1 AND s.customer_id > $2 AND s.customer_id <= $3 AND cardinality(s.months) > 0
               AND NOT EXISTS (SELECT FROM counted_purchases c WHERE c.program_id = $1 AND c.customer_id = s.customer_id)",
        )
        .bind(program_id)
        .bind(after)
        .bind(through)
        .execute(&mut *tx)
        .await?;
        // Purchase days move with the zone too; the months' guard holds off the feed's profile
        // writes as it does its writes of months.
        let pairs: Vec<_> = customers
            .iter()
            .map(|customer| ((program_id, *customer), zone))
            .collect();
        super::purchase_profiles::recount(&mut tx, &pairs).await?;
        let repair = match repair_generation {
            Some(generation) if !customers.is_empty() => Some(
                super::cache_repairs::queue(&mut tx, program_id, generation, &customers).await?,
            ),
            _ => None,
        };
        tx.commit().await?;
        Ok(RebuiltChunk { customers, repair })
    }
}
