//! What an evaluation run reads in SQLite: its chunks of members (in one read snapshot), the
//! members with a state, the tier counts and the ended overrides; and its unit of work.

use std::collections::BTreeMap;
use tierline_runtime::instant::micros;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    evaluation_tx::{PAGE_COLUMNS, SqliteEvaluationTx, with_buckets},
    rows::{PageRow, STATE_COLUMNS, rank},
};
use crate::{
    ScoringError,
    domain::{
        decision::qualified_rank,
        month::Month,
        policy::PolicyRules,
        ports::{
            EvaluationReads, TierCountsSnapshot,
            tx::{ChunkEnd, ChunkSize, EvaluationCandidate, EvaluationChunk},
        },
        review::Review,
        window::{Totals, months_at},
    },
};

#[async_trait]
impl EvaluationReads for SqliteScoringStore {
    async fn begin_evaluation(
        &self,
    ) -> Result<Box<dyn crate::storage::tx::EvaluationTx>, ScoringError> {
        Ok(Box::new(SqliteEvaluationTx {
            write: self.begin_write().await?,
        }))
    }

    #[tracing::instrument(skip(self))]
    async fn customers_with_state(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM tier_states WHERE program_id = ?1 AND (?2 IS NULL OR customer_id > ?2)
             ORDER BY customer_id LIMIT ?3",
        )
        .bind(program_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// An evaluation chunk: the page's states, reviews and buckets in one read transaction; the
    /// candidates are those the domain says must be judged (`Review::must_judge`).
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
        // This store walks its states in customer order, on one connection (SQLite has one
        // writer, and the embedded memberships are small).
        let after = match after {
            None => None,
            Some(ChunkEnd::Customer(customer_id)) => Some(customer_id),
            Some(ChunkEnd::Block { .. }) => return Ok(EvaluationChunk::default()),
        };
        #[derive(sqlx::FromRow)]
        struct ChunkRow {
            #[sqlx(flatten)]
            page: PageRow,
            review_month: Option<NaiveDate>,
            reviewed_under: Option<Uuid>,
        }
        let mut snapshot = self.pool.begin().await?;
        let sql = format!(
            "SELECT {PAGE_COLUMNS}, s.review_month, s.reviewed_under, {STATE_COLUMNS}
             FROM tier_states s LEFT JOIN members m ON m.customer_id = s.customer_id
             WHERE s.program_id = ?1 AND (?2 IS NULL OR s.customer_id > ?2) AND s.changed_by_run IS NOT ?3
             ORDER BY s.customer_id LIMIT ?4"
        );
        let rows: Vec<ChunkRow> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(after)
            .bind(run_id)
            .bind(i64::from(size.members))
            .fetch_all(&mut *snapshot)
            .await?;
        let members = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let last = rows
            .last()
            .map(|row| ChunkEnd::Customer(row.page.customer_id()));
        let mut reviews = std::collections::HashMap::new();
        let pages: Vec<PageRow> = rows
            .into_iter()
            .map(|row| {
                if let Some(policy_version_id) = row.reviewed_under {
                    reviews.insert(
                        row.page.customer_id(),
                        Review {
                            policy_version_id,
                            month: row.review_month.map(Month::of_date),
                        },
                    );
                }
                row.page
            })
            .collect();
        let judged = with_buckets(&mut snapshot, program_id, pages).await?;
        snapshot.commit().await?;
        let judged_month = Month::of(as_of, rules.time_zone);
        let candidates = judged
            .into_iter()
            .filter_map(|member| {
                let review = reviews.get(&member.member.customer_id).copied();
                let judged_rank = || {
                    let window = months_at(
                        rules.window,
                        as_of,
                        rules.time_zone,
                        member.member.joined_at,
                    );
                    qualified_rank(rules, &Totals::over(&member.buckets, window))
                };
                Review::must_judge(
                    &member.stored,
                    review.as_ref(),
                    policy_version_id,
                    judged_month,
                    now,
                    judged_rank,
                )
                .then_some(EvaluationCandidate {
                    customer_id: member.member.customer_id,
                    joined_at: Some(member.member.joined_at),
                    stored: member.stored,
                    review,
                    buckets: member.buckets,
                    found_at: None,
                })
            })
            .collect();
        Ok(EvaluationChunk {
            members,
            last,
            candidates,
        })
    }

    /// Counted at once: the count is one statement, and a later one would see this store's
    /// writes since.
    #[tracing::instrument(skip(self))]
    async fn tier_counts_snapshot(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Box<dyn TierCountsSnapshot>, ScoringError> {
        Ok(Box::new(CountedTiers(
            count_tiers(self, program_id, now).await?,
        )))
    }

    #[tracing::instrument(skip(self))]
    async fn ended_overrides(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM tier_states WHERE program_id = ?1 AND override_until <= ?2 ORDER BY customer_id LIMIT ?3",
        )
        .bind(program_id)
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Tier counts already counted.
struct CountedTiers(Vec<(u32, i64)>);

#[async_trait]
impl TierCountsSnapshot for CountedTiers {
    async fn count(self: Box<Self>) -> Result<Vec<(u32, i64)>, ScoringError> {
        Ok(self.0)
    }
}

/// How many members hold each shown rank at `now` (members without a state hold rank 0).
#[tracing::instrument(skip(store))]
async fn count_tiers(
    store: &SqliteScoringStore,
    program_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(u32, i64)>, ScoringError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT CASE WHEN override_until > ?2 THEN override_rank ELSE earned_rank END AS shown, count(*)
         FROM tier_states WHERE program_id = ?1 GROUP BY shown
         UNION ALL
         SELECT 0, count(*) FROM members m
         WHERE NOT EXISTS (SELECT 1 FROM tier_states s WHERE s.program_id = ?1 AND s.customer_id = m.customer_id)",
    )
    .bind(program_id)
    .bind(micros(now))
    .fetch_all(&store.pool)
    .await?;
    let mut counts: BTreeMap<u32, i64> = BTreeMap::new();
    for (shown, count) in rows {
        *counts.entry(rank(shown)).or_default() += count;
    }
    Ok(counts.into_iter().collect())
}
