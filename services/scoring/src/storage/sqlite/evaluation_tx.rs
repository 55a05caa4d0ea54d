//! The SQLite side of an evaluation run: chunks read in a read transaction, changed states saved
//! under the one write lock, each only at the version it was judged at.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use tierline_runtime::{instant::micros, sqlite::rows_param};
use uuid::Uuid;

use super::{
    Write,
    rows::{BUCKET_COLUMNS, BucketRow, PageRow, STATE_COLUMNS, attach_buckets, db_rank},
};
use crate::{
    ScoringError,
    domain::{
        month::Month,
        review::Review,
        state::{HistoryRecord, StoredState},
    },
    storage::tx::{EvaluationMember, EvaluationTx, RunProgress, StateRef},
};

/// A transaction of an evaluation run.
pub struct SqliteEvaluationTx {
    pub(super) write: Write,
}

impl std::fmt::Debug for SqliteEvaluationTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEvaluationTx")
            .field("xid", &self.write.xid)
            .finish_non_exhaustive()
    }
}

/// The page's rows with their buckets (read between the first and last customer of the page).
pub(super) async fn with_buckets(
    connection: &mut SqliteConnection,
    program_id: Uuid,
    rows: Vec<PageRow>,
) -> Result<Vec<EvaluationMember>, ScoringError> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE program_id = ?1 AND customer_id BETWEEN ?2 AND ?3
         ORDER BY customer_id, month"
    );
    let buckets: Vec<BucketRow> = sqlx::query_as(&sql)
        .bind(program_id)
        .bind(first.customer_id())
        .bind(last.customer_id())
        .fetch_all(&mut *connection)
        .await?;
    Ok(attach_buckets(rows, buckets))
}

pub(super) const PAGE_COLUMNS: &str =
    "s.customer_id, COALESCE(m.joined_at, s.since) AS joined_at, COALESCE(m.erased, 0) AS erased";

#[async_trait]
impl EvaluationTx for SqliteEvaluationTx {
    #[tracing::instrument(skip(self, customer_ids), fields(customers = customer_ids.len()))]
    async fn lock_evaluation_members(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<EvaluationMember>, ScoringError> {
        // The write lock is held: nobody else changes a state until commit.
        let sql = format!(
            "SELECT {PAGE_COLUMNS}, {STATE_COLUMNS}
             FROM tier_states s LEFT JOIN members m ON m.customer_id = s.customer_id
             WHERE s.program_id = ?1 AND s.customer_id = ?2 AND s.changed_by_run IS NOT ?3"
        );
        let mut ids = customer_ids.to_vec();
        ids.sort_unstable();
        let mut members = Vec::with_capacity(ids.len());
        for customer_id in ids {
            let rows: Vec<PageRow> = sqlx::query_as(&sql)
                .bind(program_id)
                .bind(customer_id)
                .bind(run_id)
                .fetch_all(&mut *self.write.tx)
                .await?;
            members.extend(with_buckets(&mut self.write.tx, program_id, rows).await?);
        }
        Ok(members)
    }

    #[tracing::instrument(skip(self, states), fields(states = states.len()))]
    async fn save_judged_states(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        states: &[(StateRef, StoredState, Review)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<i64>>, ScoringError> {
        let mut versions = Vec::with_capacity(states.len());
        for (at, stored, review) in states {
            // Found by key: this store hands out no positions.
            let customer_id = at.customer_id;
            let state = &stored.state;
            let manual = state.manual.as_ref();
            // Saved only at the version it was judged at (see the trait).
            let version: Option<i64> = sqlx::query_scalar(
                "UPDATE tier_states SET earned_rank = ?3, since = ?4, last_qualified_at = ?5, override_rank = ?6,
                     override_until = ?7, override_reason = ?8, override_operator = ?9, override_set_at = ?10,
                     lapsed_at = ?13, review_month = ?15, reviewed_under = ?16, version = version + 1,
                     updated_at = ?11, changed_by_run = ?12
                 WHERE program_id = ?1 AND customer_id = ?2 AND version = ?14 RETURNING version",
            )
            .bind(program_id)
            .bind(customer_id)
            .bind(db_rank(state.earned_rank))
            .bind(micros(state.since))
            .bind(state.last_qualified_at.map(micros))
            .bind(manual.map(|m| db_rank(m.rank)))
            .bind(manual.map(|m| micros(m.until)))
            .bind(manual.map(|m| m.reason.clone()))
            .bind(manual.map(|m| m.operator.clone()))
            .bind(manual.map(|m| micros(m.set_at)))
            .bind(micros(now))
            .bind(run_id)
            .bind(state.lapsed_at.map(micros))
            .bind(stored.version)
            .bind(review.month.map(Month::first_day))
            .bind(review.policy_version_id)
            .fetch_optional(&mut *self.write.tx)
            .await?;
            versions.push(version);
        }
        Ok(versions)
    }

    #[tracing::instrument(skip(self, reviews), fields(reviews = reviews.len()))]
    async fn save_reviews(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        reviews: &[(StateRef, i64, Review)],
    ) -> Result<(), ScoringError> {
        for (at, version, review) in reviews {
            let customer_id = at.customer_id;
            sqlx::query(
                "UPDATE tier_states SET review_month = ?4, reviewed_under = ?5, changed_by_run = ?6
                 WHERE program_id = ?1 AND customer_id = ?2 AND version = ?3",
            )
            .bind(program_id)
            .bind(customer_id)
            .bind(version)
            .bind(review.month.map(Month::first_day))
            .bind(review.policy_version_id)
            .bind(run_id)
            .execute(&mut *self.write.tx)
            .await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(records = records.len()))]
    async fn record_many(&mut self, records: &[HistoryRecord]) -> Result<(), ScoringError> {
        super::history::insert(&mut self.write, records).await
    }

    #[tracing::instrument(skip(self))]
    async fn add_run_progress(
        &mut self,
        run_id: Uuid,
        progress: RunProgress,
    ) -> Result<(), ScoringError> {
        sqlx::query(
            "UPDATE evaluation_runs SET members_evaluated = members_evaluated + ?2, upgrades = upgrades + ?3,
                 downgrades = downgrades + ?4 WHERE id = ?1",
        )
        .bind(run_id)
        .bind(progress.evaluated)
        .bind(progress.upgrades)
        .bind(progress.downgrades)
        .execute(&mut *self.write.tx)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self, moves), fields(tiers = moves.len()))]
    async fn add_run_moves(
        &mut self,
        run_id: Uuid,
        moves: &[(String, i64)],
    ) -> Result<(), ScoringError> {
        // `WHERE true`: SQLite reads an upsert's ON CONFLICT after a SELECT only behind a WHERE.
        sqlx::query(
            "INSERT INTO evaluation_run_moves (run_id, tier_code, customers)
             SELECT ?1, value ->> 0, value ->> 1 FROM json_each(?2) WHERE true
             ON CONFLICT (run_id, tier_code) DO UPDATE SET customers = customers + excluded.customers",
        )
        .bind(run_id)
        .bind(rows_param(moves))
        .execute(&mut *self.write.tx)
        .await?;
        Ok(())
    }

    async fn queue_cache_repair(
        &mut self,
        program_id: Uuid,
        generation: i32,
        customer_ids: &[Uuid],
    ) -> Result<i64, ScoringError> {
        super::cache_repairs::queue(&mut self.write.tx, program_id, generation, customer_ids).await
    }

    async fn commit(self: Box<Self>) -> Result<(), ScoringError> {
        self.write.commit().await
    }
}
