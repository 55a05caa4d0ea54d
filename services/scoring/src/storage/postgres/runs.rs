//! Evaluation runs: the per-program run lock, and what lets a run resume after its replica died.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tierline_runtime::lock;
use uuid::Uuid;

use super::{
    PgScoringStore,
    rows::{RUN_COLUMNS, RunRow},
};
use crate::domain::idempotency::{Claimed, IdempotentRequest};
use crate::domain::ports::NewRun;
use crate::domain::ports::RunRecords;
use crate::{
    ScoringError,
    domain::versions::{EvaluationRun, RunStart},
    storage::{RunLock, tx::RunProgress},
};

/// The advisory lock key of a program's runs.
fn run_lock_key(program_id: Uuid) -> i64 {
    i64::from_be_bytes(program_id.as_bytes()[..8].try_into().unwrap_or([0; 8]))
        ^ 0x5275_6e4c_6f63_6b00
}

#[async_trait]
impl RunRecords for PgScoringStore {
    #[tracing::instrument(skip_all, fields(run_id = %run.id, program_id = %run.program_id))]
    async fn open_run(
        &self,
        run: &NewRun,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<Option<crate::domain::versions::EvaluationRun>>, ScoringError> {
        let mut tx = self.pool.begin().await?;
        if let Some(request) = request
            && let Some(prior) = super::idempotency::claim(&mut tx, request, run.id).await?
        {
            return Ok(Claimed::Replay(prior));
        }
        let sql = format!(
            "INSERT INTO evaluation_runs (id, program_id, policy_version_id, trigger, due_at, status, requested_by, started_at)
             VALUES ($1, $2, $3, $4, $5, 'running', $6, $7)
             ON CONFLICT (program_id, due_at) WHERE trigger = 'schedule' DO NOTHING
             RETURNING {RUN_COLUMNS}"
        );
        let row: Option<RunRow> = sqlx::query_as(&sql)
            .bind(run.id)
            .bind(run.program_id)
            .bind(run.policy_version_id)
            .bind(run.trigger.as_str())
            .bind(run.due_at)
            .bind(&run.requested_by)
            .bind(run.now)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Claimed::Done(row.map(TryInto::try_into).transpose()?))
    }

    #[tracing::instrument(skip(self, summary))]
    async fn close_run(
        &self,
        run_id: Uuid,
        summary: serde_json::Value,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        // A run that succeeded judged every member: the program records when it began.
        sqlx::query(
            "WITH closed AS (
                 UPDATE evaluation_runs SET status = CASE WHEN $3::text IS NULL THEN 'succeeded' ELSE 'failed' END,
                     summary = $2, error = $3, finished_at = $4 WHERE id = $1 AND status = 'running'
                 RETURNING program_id, started_at, status)
             UPDATE programs p SET last_evaluated_at = GREATEST(p.last_evaluated_at, c.started_at)
             FROM closed c WHERE p.id = c.program_id AND c.status = 'succeeded'",
        )
        .bind(run_id)
        .bind(Json(summary))
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn lock_program_runs(&self, program_id: Uuid) -> Result<RunLock, ScoringError> {
        Ok(lock::session_lock(&self.pool, run_lock_key(program_id)).await?)
    }

    #[tracing::instrument(skip(self))]
    async fn try_lock_program_runs(
        &self,
        program_id: Uuid,
    ) -> Result<Option<RunLock>, ScoringError> {
        Ok(lock::try_session_lock(&self.pool, run_lock_key(program_id)).await?)
    }

    #[tracing::instrument(skip(self))]
    async fn running_runs(&self, limit: u32) -> Result<Vec<EvaluationRun>, ScoringError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM evaluation_runs WHERE status = 'running' ORDER BY started_at LIMIT $1"
        );
        let rows: Vec<RunRow> = sqlx::query_as(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    #[tracing::instrument(skip(self))]
    async fn last_closed_scheduled_due(
        &self,
        program_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, ScoringError> {
        Ok(sqlx::query_scalar(
            "SELECT max(due_at) FROM evaluation_runs
             WHERE program_id = $1 AND trigger = 'schedule' AND status <> 'running'",
        )
        .bind(program_id)
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn start_run(&self, run_id: Uuid, now: DateTime<Utc>) -> Result<RunStart, ScoringError> {
        let (judging_started_at, counts, resumed): (
            DateTime<Utc>,
            Option<Json<serde_json::Value>>,
            i32,
        ) = sqlx::query_as(
            // On a resume, the members the run already changed are skipped: they count as judged
            // from the start, and the others are judged (and counted) again.
            "UPDATE evaluation_runs SET resumed = resumed + (judging_started_at IS NOT NULL)::int,
                 members_evaluated = CASE WHEN judging_started_at IS NULL THEN 0
                     ELSE (SELECT count(*) FROM tier_states WHERE program_id = evaluation_runs.program_id AND changed_by_run = $1) END,
                 judging_started_at = COALESCE(judging_started_at, $2)
             WHERE id = $1 RETURNING judging_started_at, counts_before, resumed",
        )
        .bind(run_id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(RunStart {
            judging_started_at,
            counts_before: counts.map(|counts| counts.0),
            resumed,
        })
    }

    #[tracing::instrument(skip(self, counts_before))]
    async fn store_counts_before(
        &self,
        run_id: Uuid,
        counts_before: serde_json::Value,
    ) -> Result<serde_json::Value, ScoringError> {
        let counts: Json<serde_json::Value> = sqlx::query_scalar(
            "UPDATE evaluation_runs SET counts_before = COALESCE(counts_before, $2) WHERE id = $1
             RETURNING counts_before",
        )
        .bind(run_id)
        .bind(Json(counts_before))
        .fetch_one(&self.pool)
        .await?;
        Ok(counts.0)
    }

    #[tracing::instrument(skip(self))]
    async fn add_run_history_events(&self, run_id: Uuid, events: i64) -> Result<i64, ScoringError> {
        Ok(sqlx::query_scalar(
            "UPDATE evaluation_runs SET summary = jsonb_set(summary, '{backfill}', jsonb_build_object(
                 'complete', false,
                 'events', COALESCE((summary #>> '{backfill,events}')::bigint, 0) + $2))
             WHERE id = $1 RETURNING (summary #>> '{backfill,events}')::bigint",
        )
        .bind(run_id)
        .bind(events)
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn run_moves(&self, run_id: Uuid) -> Result<Vec<(String, i64)>, ScoringError> {
        Ok(sqlx::query_as(
            "SELECT tier_code, customers FROM evaluation_run_moves WHERE run_id = $1 ORDER BY tier_code",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn run_progress(&self, run_id: Uuid) -> Result<RunProgress, ScoringError> {
        let (evaluated, upgrades, downgrades): (i64, i64, i64) = sqlx::query_as(
            "SELECT members_evaluated, upgrades, downgrades FROM evaluation_runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(RunProgress {
            evaluated,
            upgrades,
            downgrades,
        })
    }

    #[tracing::instrument(skip(self))]
    async fn run(
        &self,
        id: Uuid,
    ) -> Result<Option<crate::domain::versions::EvaluationRun>, ScoringError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM evaluation_runs WHERE id = $1");
        let row: Option<RunRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn list_runs(
        &self,
        program_id: Uuid,
        status: Option<crate::domain::versions::RunStatus>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<crate::domain::versions::EvaluationRun>, ScoringError> {
        let rows: Vec<RunRow> = match before {
            None => {
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM evaluation_runs WHERE program_id = $1 AND status = COALESCE($3, status)
                     ORDER BY started_at DESC, id DESC LIMIT $2"
                );
                sqlx::query_as(&sql)
                    .bind(program_id)
                    .bind(i64::from(limit))
                    .bind(status.map(crate::domain::versions::RunStatus::as_str))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some((started_at, id)) => {
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM evaluation_runs
                     WHERE program_id = $1 AND (started_at, id) < ($2, $3) AND status = COALESCE($5, status)
                     ORDER BY started_at DESC, id DESC LIMIT $4"
                );
                sqlx::query_as(&sql)
                    .bind(program_id)
                    .bind(started_at)
                    .bind(id)
                    .bind(i64::from(limit))
                    .bind(status.map(crate::domain::versions::RunStatus::as_str))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
