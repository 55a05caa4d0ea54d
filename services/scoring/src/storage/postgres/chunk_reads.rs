//! How an evaluation run reads its chunks of tier states from Postgres, by one of two walks,
//! chosen at the pass's first chunk from a sample of the states:
//!
//! - **by block**, when few states are candidates (a monthly run: most reviews lie ahead): each
//!   chunk is a range of the states table's blocks (a TID range scan, the heap in its own order),
//!   and only the candidates are kept. A state rewritten during the run may move to a block
//!   already passed, so after the last block one more chunk reads the states written since the
//!   run started;
//! - **by customer**, when most are (the first run under a policy, an overdue run): each chunk
//!   is a range of customer ids, its states read through the key. A key never moves, so this
//!   walk needs no pass over what moved.
//!
//! Each state's months are columns of its row (`months.rs`), read with it.
//!
//! Either way each chunk is read in parts, one per connection the run allows (a statement is one
//! core's work), without locks; the candidates are the same: a review under the policy in force
//! whose month has come, no review under it and a judged window that gives another tier than the
//! one earned (two subscripts of the state's running totals per requirement), a lapse, or an
//! ended override (`Review::must_judge`).

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{
    PgScoringStore,
    blocks::in_blocks,
    months::{MonthColumns, month_columns},
    rows::{JoinedStateRow, STATE_COLUMNS},
    rules_sql::judged_rank,
};
use crate::{
    ScoringError,
    domain::{
        month::Month,
        policy::{PolicyRules, WindowKind},
        review::Review,
    },
    storage::tx::{ChunkEnd, ChunkSize, EvaluationCandidate, EvaluationChunk, FoundAt},
};

/// What every chunk of a pass is read for.
pub(super) struct ChunkQuery<'a> {
    pub program_id: Uuid,
    pub run_id: Uuid,
    pub size: ChunkSize,
    /// The policy in force (reviews found under another are unknown) and its rules.
    pub policy: (Uuid, &'a PolicyRules),
    /// The first day of the judged month: a review in or before it has come.
    pub judged_month: NaiveDate,
    /// The instant the run judges (its window ends with the month before it).
    pub judged_at: DateTime<Utc>,
    /// Overrides ended by then are candidates.
    pub now: DateTime<Utc>,
}

impl ChunkQuery<'_> {
    /// Whether the state aliased `{states}` is a candidate, in SQL (`$1` program, `$2` now, `$3`
    /// run, `$4` policy in force, `$5` judged month): what `Review::must_judge` says.
    fn candidate(&self, states: &str) -> String {
        let rules = self.policy.1;
        let judged_rank = judged_rank(rules, self.judged_at, states, &joined_at(rules, states));
        format!(
            "(CASE WHEN {states}.reviewed_under = $4 THEN {states}.review_month <= $5
                   ELSE {judged_rank} <> {states}.earned_rank END
              OR {states}.lapsed_at IS NOT NULL OR {states}.override_until <= $2)"
        )
    }
}

/// The tuple position of a row of `table` as one number (`FoundAt`): its block times 65,536
/// plus its line (a line number is 16 bits); `evaluation_tx::found_at` turns it back into a
/// `ctid`.
fn found_at(table: &str) -> String {
    format!(
        "(({table}.ctid::text::point)[0]::bigint * 65536 + ({table}.ctid::text::point)[1]::bigint)"
    )
}

/// States per block assumed before the table was ever analysed.
const STATES_PER_BLOCK: f32 = 50.0;

/// A block number past every block a table can have (the largest valid one is 2^32 - 2).
const BEYOND_EVERY_BLOCK: i64 = 4_294_967_294;

/// About how many of the states table's blocks the sample that chooses the walk reads.
const SAMPLED_BLOCKS: f64 = 100.0;

/// The share of candidates from which a pass walks by customer.
const MOST: f64 = 0.5;

/// The lowest and highest customer ids, the open ends of a walk by customer.
const FIRST_ID: &str = "'00000000-0000-0000-0000-000000000000'::uuid";
const LAST_ID: &str = "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid";

#[derive(sqlx::FromRow)]
struct ChunkRow {
    members: i64,
    candidate: Option<bool>,
    customer_id: Option<Uuid>,
    joined_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    state: JoinedStateRow,
    review_month: Option<NaiveDate>,
    reviewed_under: Option<Uuid>,
    found_at: Option<i64>,
    // NULL on the row that only counts a chunk's members (no candidate in it).
    months: Option<Vec<NaiveDate>>,
    spend_through: Option<Vec<i64>>,
    points_through: Option<Vec<i64>>,
    purchases_through: Option<Vec<i64>>,
}

impl PgScoringStore {
    /// The chunk after `after` (`None`: a pass's first, whose walk is chosen here).
    pub(super) async fn read_chunk(
        &self,
        query: &ChunkQuery<'_>,
        after: Option<ChunkEnd>,
    ) -> Result<EvaluationChunk, ScoringError> {
        // A walk by customer needs the table's size only to choose itself.
        let blocks = match after {
            Some(ChunkEnd::Customer(last)) => {
                return self.chunk_by_customer(query, Some(last)).await;
            }
            _ => self.states_table_size().await?,
        };
        let (blocks, per_block) = blocks;
        match after {
            None if self.most_are_candidates(query, blocks).await? => {
                self.chunk_by_customer(query, None).await
            }
            Some(ChunkEnd::Block { next, end }) => {
                self.chunk_by_block(query, (i64::from(next), i64::from(end)), per_block)
                    .await
            }
            _ => self.chunk_by_block(query, (0, blocks), per_block).await,
        }
    }

    /// The states table's blocks now, and its states per block as last analysed.
    async fn states_table_size(&self) -> Result<(i64, f32), ScoringError> {
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
        Ok((blocks, per_block))
    }

    /// Whether most of the program's states the run has yet to judge are candidates, from a
    /// sample of about [`SAMPLED_BLOCKS`] of the table's `blocks` (all of a small table).
    async fn most_are_candidates(
        &self,
        query: &ChunkQuery<'_>,
        blocks: i64,
    ) -> Result<bool, ScoringError> {
        let percent = if blocks as f64 <= SAMPLED_BLOCKS {
            100.0
        } else {
            100.0 * SAMPLED_BLOCKS / blocks as f64
        };
        let (candidates, sampled): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*) FILTER (WHERE {candidate}), count(*)
             FROM tier_states TABLESAMPLE SYSTEM ($6)
             WHERE program_id = $1 AND changed_by_run IS DISTINCT FROM $3",
            candidate = query.candidate("tier_states"),
        ))
        .bind(query.program_id)
        .bind(query.now)
        .bind(query.run_id)
        .bind(query.policy.0)
        .bind(query.judged_month)
        .bind(percent)
        .fetch_one(&self.pool)
        .await?;
        Ok(sampled > 0 && candidates as f64 >= MOST * sampled as f64)
    }

    /// A chunk of blocks from `from` on, in a pass that ends at block `end` (where the table
    /// ended when it began), and past that the pass over what moved.
    async fn chunk_by_block(
        &self,
        query: &ChunkQuery<'_>,
        (from, end): (i64, i64),
        per_block: f32,
    ) -> Result<EvaluationChunk, ScoringError> {
        let span = ((query.size.members as f32 / per_block.max(1.0)).ceil() as i64).max(1);
        let until = (from + span).min(end);
        let moved_pass = from >= end;
        // The pass over what moved reads the whole table in parts too, the last part to its
        // end, wherever that is by then.
        let blocks = in_blocks("$6", "$7");
        let range = if moved_pass {
            format!(
                "updated_at >= (SELECT started_at FROM evaluation_runs WHERE id = $3) AND {blocks}"
            )
        } else {
            blocks
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
                 SELECT true AS candidate, customer_id, {joined_at} AS joined_at, review_month,
                        reviewed_under, {found_at} AS found_at, {STATE_COLUMNS}, {months}
                 FROM tier_states
                 WHERE {chunk} AND {candidate})
             SELECT bounds.members, c.*
             FROM bounds LEFT JOIN candidates c ON true
             ORDER BY c.customer_id",
            joined_at = joined_at(query.policy.1, "tier_states"),
            found_at = found_at("tier_states"),
            months = month_columns("tier_states"),
            candidate = query.candidate("tier_states"),
        );
        let (first, last) = if moved_pass {
            (0, end.max(1))
        } else {
            (from, until)
        };
        let parts = i64::from(query.size.connections.max(1));
        let edge = |part: i64| match part {
            part if part == parts && moved_pass => BEYOND_EVERY_BLOCK,
            part => first + (last - first) * part / parts,
        };
        let ranges = (0..parts)
            .map(|part| (edge(part), edge(part + 1)))
            .filter(|(start, stop)| start < stop);
        let rows = self.read_parts(query, &sql, ranges).await?;
        let mut chunk = into_chunk(rows, |part| part.first().map_or(0, |row| row.members));
        if moved_pass {
            // The pass over what moved counts nobody again.
            chunk.members = 0;
        } else {
            chunk.last = Some(ChunkEnd::Block {
                next: u32::try_from(until).unwrap_or(u32::MAX),
                end: u32::try_from(end).unwrap_or(u32::MAX),
            });
        }
        Ok(chunk)
    }

    /// A chunk of about `size.members` customers after `after` (from the first when `None`):
    /// every state in the range; each row says whether it is a candidate, and only those are
    /// kept.
    async fn chunk_by_customer(
        &self,
        query: &ChunkQuery<'_>,
        after: Option<Uuid>,
    ) -> Result<EvaluationChunk, ScoringError> {
        let parts = i64::from(query.size.connections.max(1));
        let step = (i64::from(query.size.members.max(1)) + parts - 1) / parts;
        let per_chunk = step * parts;
        // The ids that end each part: every `step`-th after `after`, and one past the chunk,
        // which says whether the walk goes on.
        let edges: Vec<(Uuid, i64)> = sqlx::query_as(&format!(
            "SELECT customer_id, n FROM (
                 SELECT customer_id, row_number() OVER (ORDER BY customer_id) AS n
                 FROM tier_states WHERE program_id = $1 AND customer_id > COALESCE($2, {FIRST_ID})
                 ORDER BY customer_id LIMIT $3 + 1) k
             WHERE n % $4 = 0 OR n = $3 + 1 ORDER BY n"
        ))
        .bind(query.program_id)
        .bind(after)
        .bind(per_chunk)
        .bind(step)
        .fetch_all(&self.pool)
        .await?;
        let goes_on = edges.last().is_some_and(|(_, n)| *n > per_chunk);
        let mut ends: Vec<Option<Uuid>> = edges
            .iter()
            .filter(|(_, n)| *n <= per_chunk)
            .map(|(id, _)| Some(*id))
            .collect();
        if !goes_on {
            // The last chunk reads to the end of the ids, wherever that is by then.
            ends.push(None);
        }
        let starts = std::iter::once(after).chain(ends.iter().copied().flatten().map(Some));
        let ranges = starts.zip(ends.iter().copied());
        let sql = format!(
            "SELECT 0::bigint AS members, {candidate} AS candidate, s.customer_id,
                    {joined_at} AS joined_at, s.review_month, s.reviewed_under,
                    {found_at} AS found_at, {STATE_COLUMNS}, {months}
             FROM tier_states s
             WHERE s.program_id = $1 AND s.customer_id > COALESCE($6, {FIRST_ID})
               AND s.customer_id <= COALESCE($7, {LAST_ID}) AND s.changed_by_run IS DISTINCT FROM $3
             ORDER BY s.customer_id",
            joined_at = joined_at(query.policy.1, "s"),
            found_at = found_at("s"),
            months = month_columns("s"),
            candidate = query.candidate("s"),
        );
        let rows = self.read_parts(query, &sql, ranges).await?;
        let mut chunk = into_chunk(rows, |part| part.len() as i64);
        chunk.last = goes_on
            .then(|| ends.last().copied().flatten())
            .flatten()
            .map(ChunkEnd::Customer);
        Ok(chunk)
    }

    /// Reads the parts of a chunk at once, each on a connection of its own, with `sql` bound
    /// to the query's parameters `$1` to `$5` and the part's range as `$6` and `$7`.
    async fn read_parts<T>(
        &self,
        query: &ChunkQuery<'_>,
        sql: &str,
        ranges: impl Iterator<Item = (T, T)>,
    ) -> Result<Vec<Vec<ChunkRow>>, ScoringError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        let read = |(start, stop): (T, T)| {
            let query = sqlx::query_as(sql)
                .bind(query.program_id)
                .bind(query.now)
                .bind(query.run_id)
                .bind(query.policy.0)
                .bind(query.judged_month)
                .bind(start)
                .bind(stop);
            async move {
                // Not JIT-compiled: compiling costs more than the chunk.
                let mut tx = self.pool.begin().await?;
                sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
                let rows: Vec<ChunkRow> = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, ScoringError>(rows)
            }
        };
        futures::future::try_join_all(ranges.map(read)).await
    }
}

/// Each member's join time where the window needs it (a membership year), in SQL, for the
/// states read as `states`.
fn joined_at(rules: &PolicyRules, states: &str) -> String {
    if rules.window == WindowKind::MembershipYear {
        format!("(SELECT m.joined_at FROM members m WHERE m.customer_id = {states}.customer_id)")
    } else {
        "NULL::timestamptz".to_owned()
    }
}

/// A chunk of the parts read, its members counted by `members` per part, its candidates in
/// customer order; its end is left to the walk.
fn into_chunk(parts: Vec<Vec<ChunkRow>>, members: impl Fn(&[ChunkRow]) -> i64) -> EvaluationChunk {
    let mut chunk = EvaluationChunk::default();
    // Sized at once: a chunk of a first run is 20,000 rows of a few hundred bytes each.
    let mut rows: Vec<ChunkRow> = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        chunk.members += members(&part);
        rows.extend(part);
    }
    rows.sort_by_key(|row| row.customer_id);
    chunk.candidates.reserve(rows.len());
    for row in rows {
        let (Some(customer_id), Some(true), Some(stored)) =
            (row.customer_id, row.candidate, row.state.into_state())
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
            buckets: MonthColumns::from_nullable(
                row.months,
                row.spend_through,
                row.points_through,
                row.purchases_through,
            )
            .buckets(),
        });
    }
    chunk
}
