//! The Postgres unit of work of an evaluation run: a chunk's changed states saved in one
//! statement, each only at the version it was judged at, and the few that moved meanwhile
//! locked and read again for a second judgement.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::{
    feed_batch::StateColumns,
    months::{MonthColumns, month_columns},
    rows::{PageRow, STATE_COLUMNS},
};
use crate::{
    ScoringError,
    domain::{
        month::Month,
        review::Review,
        state::{HistoryRecord, StoredState},
    },
    storage::tx::{EvaluationMember, EvaluationTx, FoundAt, RunProgress, StateRef},
};

/// The condition that finds each row (`n.p`) at its position, when every state of a save came
/// with one (`FoundAt`, read as `evaluation::FOUND_AT` wrote it); else nothing, and the rows are
/// found by key. The key and version are checked either way: a position whose row was rewritten,
/// or reused by another row after a vacuum, finds nothing, and the state counts as moved.
/// Returns the condition and the positions to bind.
fn found_at<'a>(saving: impl Iterator<Item = &'a StateRef>) -> (&'static str, Vec<Option<i64>>) {
    let positions: Vec<Option<i64>> = saving
        .map(|at| at.found_at.map(|FoundAt(position)| position))
        .collect();
    let found = if positions.iter().all(Option::is_some) {
        "s.ctid = format('(%s,%s)', n.p / 65536, n.p % 65536)::tid AND"
    } else {
        ""
    };
    (found, positions)
}

/// A member of a locked page with their state and its months.
#[derive(sqlx::FromRow)]
struct PageWithMonths {
    #[sqlx(flatten)]
    page: PageRow,
    #[sqlx(flatten)]
    months: MonthColumns,
}

/// A transaction of an evaluation run.
#[derive(Debug)]
pub struct PgEvaluationTx {
    pub(super) tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl EvaluationTx for PgEvaluationTx {
    #[tracing::instrument(skip(self, customer_ids), fields(customers = customer_ids.len()))]
    async fn lock_evaluation_members(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<EvaluationMember>, ScoringError> {
        // Locked in customer order, as every writer that locks several states does; the months
        // come with the state.
        let sql = format!(
            "SELECT s.customer_id, COALESCE(m.joined_at, s.since) AS joined_at, COALESCE(m.erased, false) AS erased,
                    {STATE_COLUMNS}, {months}
             FROM unnest($2::uuid[]) AS k(customer_id)
                  JOIN tier_states s ON s.program_id = $1 AND s.customer_id = k.customer_id
                  LEFT JOIN members m ON m.customer_id = s.customer_id
             WHERE s.changed_by_run IS DISTINCT FROM $3
             ORDER BY s.customer_id FOR UPDATE OF s",
            months = month_columns("s"),
        );
        let rows: Vec<PageWithMonths> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(customer_ids)
            .bind(run_id)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| row.page.with_buckets(row.months.buckets()))
            .collect())
    }

    #[tracing::instrument(skip(self, states), fields(states = states.len()))]
    async fn save_judged_states(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        states: &[(StateRef, StoredState, Review)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<i64>>, ScoringError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = states.iter().map(|(at, ..)| at.customer_id).collect();
        let (found, positions) = found_at(states.iter().map(|(at, ..)| at));
        let judged_versions: Vec<i64> =
            states.iter().map(|(_, stored, _)| stored.version).collect();
        let columns = StateColumns::of(
            states
                .iter()
                .map(|(_, stored, review)| (stored, Some(review))),
        );
        // A state is saved only at the version it was judged at: one the feed or an operator
        // changed since is left for the caller to judge again under lock.
        let sql = format!(
            "UPDATE tier_states s SET earned_rank = n.e, since = n.s, last_qualified_at = n.q, override_rank = n.r,
                 override_until = n.u, override_reason = n.why, override_operator = n.who, override_set_at = n.at,
                 lapsed_at = n.l, review_month = n.rm, reviewed_under = n.ru, version = s.version + 1,
                 updated_at = $3, changed_by_run = $2
             FROM unnest($4::uuid[], $5::bigint[], $17::bigint[], $6::int[], $7::timestamptz[], $8::timestamptz[],
                         $9::int[], $10::timestamptz[], $11::text[], $12::text[], $13::timestamptz[],
                         $14::timestamptz[], $15::date[], $16::uuid[])
                  AS n(c, v, p, e, s, q, r, u, why, who, at, l, rm, ru)
             WHERE {found} s.program_id = $1 AND s.customer_id = n.c AND s.version = n.v
             RETURNING s.customer_id, s.version"
        );
        let update = sqlx::query(&sql)
            .bind(program_id)
            .bind(run_id)
            .bind(now)
            .bind(&ids)
            .bind(&judged_versions);
        let saved: HashMap<Uuid, i64> = columns
            .bind(update)
            .bind(&positions)
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("customer_id")?, row.try_get("version")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(ids.iter().map(|id| saved.get(id).copied()).collect())
    }

    #[tracing::instrument(skip(self, reviews), fields(reviews = reviews.len()))]
    async fn save_reviews(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        reviews: &[(StateRef, i64, Review)],
    ) -> Result<(), ScoringError> {
        if reviews.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = reviews.iter().map(|(at, ..)| at.customer_id).collect();
        let (found, positions) = found_at(reviews.iter().map(|(at, ..)| at));
        let versions: Vec<i64> = reviews.iter().map(|(_, version, _)| *version).collect();
        let months: Vec<Option<NaiveDate>> = reviews
            .iter()
            .map(|(.., review)| review.month.map(Month::first_day))
            .collect();
        let policies: Vec<Uuid> = reviews
            .iter()
            .map(|(.., review)| review.policy_version_id)
            .collect();
        sqlx::query(&format!(
            "UPDATE tier_states s SET review_month = n.rm, reviewed_under = n.ru, changed_by_run = $6
             FROM unnest($2::uuid[], $3::bigint[], $7::bigint[], $4::date[], $5::uuid[]) AS n(c, v, p, rm, ru)
             WHERE {found} s.program_id = $1 AND s.customer_id = n.c AND s.version = n.v"
        ))
        .bind(program_id)
        .bind(&ids)
        .bind(&versions)
        .bind(&months)
        .bind(&policies)
        .bind(run_id)
        .bind(&positions)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn record_many(&mut self, records: &[HistoryRecord]) -> Result<(), ScoringError> {
        super::history::insert(&mut self.tx, records).await
    }

    #[tracing::instrument(skip(self))]
    async fn add_run_progress(
        &mut self,
        run_id: Uuid,
        progress: RunProgress,
    ) -> Result<(), ScoringError> {
        sqlx::query(
            "UPDATE evaluation_runs SET members_evaluated = members_evaluated + $2, upgrades = upgrades + $3,
                 downgrades = downgrades + $4 WHERE id = $1",
        )
        .bind(run_id)
        .bind(progress.evaluated)
        .bind(progress.upgrades)
        .bind(progress.downgrades)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self, moves), fields(tiers = moves.len()))]
    async fn add_run_moves(
        &mut self,
        run_id: Uuid,
        moves: &[(String, i64)],
    ) -> Result<(), ScoringError> {
        let codes: Vec<&str> = moves.iter().map(|(code, _)| code.as_str()).collect();
        let customers: Vec<i64> = moves.iter().map(|(_, customers)| *customers).collect();
        sqlx::query(
            "INSERT INTO evaluation_run_moves (run_id, tier_code, customers)
             SELECT $1, * FROM unnest($2::text[], $3::bigint[])
             ON CONFLICT (run_id, tier_code) DO UPDATE SET customers = evaluation_run_moves.customers + excluded.customers",
        )
        .bind(run_id)
        .bind(&codes)
        .bind(&customers)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn queue_cache_repair(
        &mut self,
        program_id: Uuid,
        generation: i32,
        customer_ids: &[Uuid],
    ) -> Result<i64, ScoringError> {
        super::cache_repairs::queue(&mut self.tx, program_id, generation, customer_ids).await
    }

    async fn commit(self: Box<Self>) -> Result<(), ScoringError> {
        self.tx.commit().await?;
        Ok(())
    }
}
