//! What an evaluation run reads (its chunks of members, the tier counts, ended overrides), and
//! the chunked bucket rebuild a policy change needs.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::PgEvaluationTx;
use super::{
    PgScoringStore,
    rows::{JoinedStateRow, STATE_COLUMNS},
};
use crate::domain::ports::{BucketRebuilds, EvaluationReads, TierCountsSnapshot};
use crate::{
    ScoringError,
    domain::{
        month::Month,
        policy::{PolicyRules, WindowKind},
        review::Review,
    },
    storage::{
        RebuiltChunk,
        tx::{ChunkEnd, ChunkSize, EvaluationCandidate, EvaluationChunk, FoundAt},
    },
};

#[derive(sqlx::FromRow)]
struct ChunkRow {
    members: i64,
    customer_id: Option<Uuid>,
    joined_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    state: JoinedStateRow,
    review_month: Option<NaiveDate>,
    reviewed_under: Option<Uuid>,
    found_at: Option<i64>,
    months: Option<Vec<NaiveDate>>,
    spend: Option<Vec<i64>>,
    points: Option<Vec<i64>>,
    purchases: Option<Vec<i64>>,
}

/// States per block assumed before the table was ever analysed.
const STATES_PER_BLOCK: f32 = 50.0;

/// A row's tuple position as one number (`FoundAt`): its block times 65,536 plus its line
/// (a line number is 16 bits); `evaluation_tx::found_at` turns it back into a `ctid`.
const FOUND_AT: &str = "((ctid::text::point)[0]::bigint * 65536 + (ctid::text::point)[1]::bigint)";

/// A block number past every block a table can have (the largest valid one is 2^32 - 2).
const BEYOND_EVERY_BLOCK: i64 = 4_294_967_294;

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

    /// A chunk is a range of the states table's blocks, read without locks in one statement per
    /// part (a TID range scan: the heap in its own order, where walking the primary key visited
    /// a page at random per state; the parts split the range, one per connection allowed); the
    /// blocks hold about `size.members` states. Of the program's states
    /// there, only the candidates leave Postgres, each with its buckets: a review not known
    /// under the policy in force, or whose month has come (`Review::due`), a lapse, or an ended
    /// override (`Review::must_judge`). A member whose review lies ahead, the most of a
    /// population, is counted and neither read further nor sent.
    ///
    /// A state rewritten during the run may move to a block already passed; so after the last
    /// block one more chunk reads, by the same rule, the states written since the run started
    /// (a member met twice is judged twice: the second finds nothing to change, and the run
    /// never changes a state twice). Not JIT-compiled: compiling costs more than the chunk.
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
        let (policy_version_id, rules) = policy;
        let (blocks, pages, tuples): (i64, i32, f32) = sqlx::query_as(
            "SELECT pg_relation_size('tier_states') / current_setting('block_size')::int, relpages, reltuples
             FROM pg_class WHERE oid = 'tier_states'::regclass",
        )
        .fetch_one(&self.pool)
        .await?;
        let per_block = if tuples > 0.0 && pages > 0 {
            tuples / pages as f32
        } else {
            STATES_PER_BLOCK
        };
        // The pass ends where the table ended when it began.
        let (from, end) = match after {
            None => (0, blocks),
            Some(ChunkEnd::Block { next, end }) => (i64::from(next), i64::from(end)),
            // This store walks its states by block.
            Some(ChunkEnd::Customer(_)) => return Ok(EvaluationChunk::default()),
        };
        let span = ((size.members as f32 / per_block.max(1.0)).ceil() as i64).max(1);
        let until = (from + span).min(end);
        let moved_pass = from >= end;
        // Only a membership year needs each member's join time.
        let joined_at = if rules.window == WindowKind::MembershipYear {
            "(SELECT m.joined_at FROM members m WHERE m.customer_id = tier_states.customer_id)"
        } else {
            "NULL::timestamptz"
        };
        // The pass over what moved reads the whole table in parts too, the last part to its
        // end, wherever that is by then.
        let range = if moved_pass {
            "updated_at >= (SELECT started_at FROM evaluation_runs WHERE id = $3)
             AND ctid >= format('(%s,0)', $6::bigint)::tid AND ctid < format('(%s,0)', $7::bigint)::tid"
        } else {
            "ctid >= format('(%s,0)', $6::bigint)::tid AND ctid < format('(%s,0)', $7::bigint)::tid"
        };
        // The members are counted in a scan of their own, and the candidates picked in another:
        // one scan whose rows both used was kept whole in memory first (a CTE read twice), which
        // took 0.74 s for a million states against 0.23–0.25 s for the two scans (psql, 1 % of
        // them candidates).
        // The pass over what moved counts nobody again, so it does not scan for a count.
        let chunk = format!("{range} AND program_id = $1 AND changed_by_run IS DISTINCT FROM $3");
        let members = if moved_pass {
            "SELECT 0::bigint AS members".to_owned()
        } else {
            format!("SELECT count(*) AS members FROM tier_states WHERE {chunk}")
        };
        let sql = format!(
            "WITH bounds AS ({members}),
             candidates AS (
                 SELECT customer_id, {joined_at} AS joined_at, review_month, reviewed_under,
                        {FOUND_AT} AS found_at, {STATE_COLUMNS}
                 FROM tier_states
                 WHERE {chunk} AND (reviewed_under IS DISTINCT FROM $4 OR review_month <= $5
                                    OR lapsed_at IS NOT NULL OR override_until <= $2))
             SELECT bounds.members, c.*, b.months, b.spend, b.points, b.purchases
             FROM bounds LEFT JOIN candidates c ON true
                  LEFT JOIN LATERAL ({buckets}) b ON c.customer_id IS NOT NULL
             ORDER BY c.customer_id",
            buckets = super::bucket_arrays::bucket_arrays("c.customer_id"),
        );
        let judged_month = Month::of(as_of, rules.time_zone).first_day();
        let read = |blocks: (i64, i64)| {
            let sql = &sql;
            async move {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
                let query = sqlx::query_as(sql)
                    .bind(program_id)
                    .bind(now)
                    .bind(run_id)
                    .bind(policy_version_id)
                    .bind(judged_month);
                let (from, until) = blocks;
                let query = query.bind(from).bind(until);
                let rows: Vec<ChunkRow> = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, ScoringError>(rows)
            }
        };
        // The blocks are read in as many parts at once as the run allows, each on a connection
        // of its own: a statement is Postgres's work on one core (docs/BENCHMARKS.md).
        let (first, last) = if moved_pass {
            (0, blocks.max(1))
        } else {
            (from, until)
        };
        let parts = i64::from(size.connections.max(1));
        let edge = |part: i64| match part {
            part if part == parts && moved_pass => BEYOND_EVERY_BLOCK,
            part => first + (last - first) * part / parts,
        };
        let bounds = (0..parts)
            .map(|part| (edge(part), edge(part + 1)))
            .filter(|(start, stop)| start < stop);
        let parts: Vec<Vec<ChunkRow>> = futures::future::try_join_all(bounds.map(read)).await?;
        let mut chunk = EvaluationChunk {
            // The pass over what moved counts nobody again.
            members: 0,
            last: (!moved_pass).then(|| ChunkEnd::Block {
                next: u32::try_from(until).unwrap_or(u32::MAX),
                end: u32::try_from(end).unwrap_or(u32::MAX),
            }),
            candidates: Vec::new(),
        };
        // Each part's rows come in customer order; the chunk's candidates do too.
        let mut members = 0;
        let mut rows: Vec<ChunkRow> = Vec::new();
        for part in parts {
            members += part.first().map_or(0, |row| row.members);
            rows.extend(part);
        }
        rows.sort_by_key(|row| row.customer_id);
        if !moved_pass {
            chunk.members = members;
        }
        for row in rows {
            let (Some(customer_id), Some(stored)) = (row.customer_id, row.state.into_state())
            else {
                continue;
            };
            chunk.candidates.push(EvaluationCandidate {
                customer_id,
                joined_at: row.joined_at,
                stored,
                found_at: row.found_at.map(FoundAt),
                review: row.reviewed_under.map(|policy_version_id| Review {
                    policy_version_id,
                    month: row.review_month.map(Month::of_date),
                }),
                buckets: super::bucket_arrays::buckets_from_arrays(
                    row.months,
                    row.spend,
                    row.points,
                    row.purchases,
                ),
            });
        }
        Ok(chunk)
    }

    /// A read-only repeatable-read transaction whose snapshot is taken before this returns (by
    /// its first statement); the counting runs in it later.
    #[tracing::instrument(skip(self))]
    async fn tier_counts_snapshot(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Box<dyn TierCountsSnapshot>, ScoringError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
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
        // Holds off the feed consumer's bucket writes until the chunk commits; its purchases
        // then add to the rebuilt rows (a purchase not yet committed is not in the rebuild).
        sqlx::query("LOCK TABLE buckets IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let after = after.unwrap_or(Uuid::nil());
        let customers: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT customer_id FROM counted_purchases WHERE program_id = $1 AND customer_id > $2
             ORDER BY customer_id LIMIT $3",
        )
        .bind(program_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        // The last chunk reaches to the end of the id space.
        let through = match customers.last() {
            Some(last) if customers.len() == limit as usize => *last,
            _ => Uuid::max(),
        };
        sqlx::query(
            "DELETE FROM buckets WHERE program_id = $1 AND customer_id > $2 AND customer_id <= $3",
        )
        .bind(program_id)
        .bind(after)
        .bind(through)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO buckets (program_id, customer_id, month, net_spend_minor, points, purchases)
             SELECT program_id, customer_id, date_trunc('month', occurred_at AT TIME ZONE $4)::date,
                    sum(amount_minor - refunded_minor),
                    sum(points - points * refunded_minor / amount_minor),
                    count(*) FILTER (WHERE refunded_minor < amount_minor)
             FROM counted_purchases WHERE program_id = $1 AND customer_id > $2 AND customer_id <= $3
             GROUP BY 1, 2, 3",
        )
        .bind(program_id)
        .bind(after)
        .bind(through)
        .bind(zone.name())
        .execute(&mut *tx)
        .await?;
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
