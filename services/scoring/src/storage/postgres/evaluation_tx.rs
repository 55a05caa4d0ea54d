//! The Postgres unit of work of an evaluation run: one page of members read, locked and saved in
//! a handful of set-based statements, whatever the page size.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{
    feed_batch::StateColumns,
    tx::{STATE_COLUMNS, StateRow},
};
use crate::{
    ScoringError,
    domain::{
        month::Month,
        state::{HistoryRecord, Member, StoredState},
        window::Bucket,
    },
    storage::tx::{EvaluationMember, EvaluationTx, RunProgress},
};

/// A transaction of an evaluation run.
#[derive(Debug)]
pub struct PgEvaluationTx {
    pub(super) tx: Transaction<'static, Postgres>,
}

#[derive(sqlx::FromRow)]
struct PageRow {
    customer_id: Uuid,
    joined_at: DateTime<Utc>,
    erased: bool,
    #[sqlx(flatten)]
    state: StateRow,
}

#[async_trait]
impl EvaluationTx for PgEvaluationTx {
    #[tracing::instrument(skip(self))]
    async fn lock_evaluation_page(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<EvaluationMember>, ScoringError> {
        // Locked in customer order, as every writer that locks several states does.
        let sql = format!(
            "SELECT s.customer_id, COALESCE(m.joined_at, s.since) AS joined_at, COALESCE(m.erased, false) AS erased, {STATE_COLUMNS}
             FROM tier_states s LEFT JOIN members m ON m.customer_id = s.customer_id
             WHERE s.program_id = $1 AND s.customer_id > COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid)
               AND s.changed_by_run IS DISTINCT FROM $3
             ORDER BY s.customer_id LIMIT $4 FOR UPDATE OF s"
        );
        let rows: Vec<PageRow> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(after)
            .bind(run_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.customer_id).collect();
        let bucket_rows: Vec<(Uuid, NaiveDate, i64, i64, i64)> = sqlx::query_as(
            "SELECT customer_id, month, net_spend_minor, points, purchases FROM buckets
             WHERE program_id = $1 AND customer_id = ANY($2) ORDER BY customer_id, month",
        )
        .bind(program_id)
        .bind(&ids)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut buckets = bucket_rows.into_iter().peekable();
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut own = Vec::new();
                // Both lists are in customer order: take this customer's run of buckets.
                while let Some((_, month, net_spend_minor, points, purchases)) =
                    buckets.next_if(|(customer_id, ..)| *customer_id == row.customer_id)
                {
                    own.push(Bucket {
                        month: Month::of_date(month),
                        net_spend_minor,
                        points,
                        purchases,
                    });
                }
                EvaluationMember {
                    member: Member {
                        customer_id: row.customer_id,
                        joined_at: row.joined_at,
                        erased: row.erased,
                    },
                    stored: StoredState::from(row.state),
                    buckets: own,
                }
            })
            .collect())
    }

    #[tracing::instrument(skip(self, states), fields(states = states.len()))]
    async fn save_judged_states(
        &mut self,
        program_id: Uuid,
        run_id: Uuid,
        states: &[(Uuid, StoredState)],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, ScoringError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = states.iter().map(|(id, _)| *id).collect();
        let columns = StateColumns::of(states.iter().map(|(_, stored)| stored));
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "UPDATE tier_states s SET earned_rank = u.earned_rank, since = u.since, last_qualified_at = u.last_qualified_at,
                 override_rank = u.override_rank, override_until = u.override_until, override_reason = u.override_reason,
                 override_operator = u.override_operator, override_set_at = u.override_set_at,
                 version = s.version + 1, updated_at = $3, changed_by_run = $2
             FROM unnest($4::uuid[], $5::int[], $6::timestamptz[], $7::timestamptz[], $8::int[], $9::timestamptz[],
                         $10::text[], $11::text[], $12::timestamptz[])
                  AS u(customer_id, earned_rank, since, last_qualified_at, override_rank, override_until,
                       override_reason, override_operator, override_set_at)
             WHERE s.program_id = $1 AND s.customer_id = u.customer_id
             RETURNING s.customer_id, s.version",
        )
        .bind(program_id)
        .bind(run_id)
        .bind(now)
        .bind(&ids)
        .bind(&columns.earned_rank)
        .bind(&columns.since)
        .bind(&columns.last_qualified_at)
        .bind(&columns.override_rank)
        .bind(&columns.override_until)
        .bind(&columns.override_reason)
        .bind(&columns.override_operator)
        .bind(&columns.override_set_at)
        .fetch_all(&mut *self.tx)
        .await?;
        ids.iter()
            .map(|id| {
                rows.iter()
                    .find_map(|(customer_id, version)| (customer_id == id).then_some(*version))
                    .ok_or_else(|| {
                        ScoringError::Internal(format!(
                            "tier state of {id} vanished under its lock"
                        ))
                    })
            })
            .collect()
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
