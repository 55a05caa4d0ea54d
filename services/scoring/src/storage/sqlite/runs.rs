//! Evaluation runs in SQLite: opened once per due time, closed, listed, and their counters. The
//! run and feed-leader locks are in-process, since every "replica" is this one process.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tierline_runtime::instant::{from_micros, micros};
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    programs::select_run_on,
    rows::{RUN_COLUMNS, RunRow},
};
use crate::domain::ports::RunRecords;
use crate::{
    ScoringError,
    domain::{
        idempotency::{Claimed, IdempotentRequest},
        versions::{EvaluationRun, RunStart, RunStatus},
    },
    storage::{NewRun, tx::RunProgress},
};

fn run_lock_name(program_id: Uuid) -> String {
    format!("runs:{program_id}")
}

#[async_trait]
impl RunRecords for SqliteScoringStore {
    #[tracing::instrument(skip_all, fields(run_id = %run.id, program_id = %run.program_id))]
    async fn open_run(
        &self,
        run: &NewRun,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<Option<EvaluationRun>>, ScoringError> {
        let mut write = self.begin_write().await?;
        if let Some(request) = request
            && let Some(prior) = super::idempotency::claim(&mut write.tx, request, run.id).await?
        {
            return Ok(Claimed::Replay(prior));
        }
        // A second scheduled run for the same due time hits the partial unique index and is
        // not opened.
        let opened = sqlx::query(
            "INSERT INTO evaluation_runs (id, program_id, policy_version_id, trigger, due_at, status, requested_by, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7)
             ON CONFLICT (program_id, due_at) WHERE trigger = 'schedule' DO NOTHING",
        )
        .bind(run.id)
        .bind(run.program_id)
        .bind(run.policy_version_id)
        .bind(run.trigger.as_str())
        .bind(run.due_at.map(micros))
        .bind(&run.requested_by)
        .bind(micros(run.now))
        .execute(&mut *write.tx)
        .await?
        .rows_affected()
            == 1;
        let opened_run = if opened {
            select_run_on(&mut write.tx, run.id).await?
        } else {
            None
        };
        write.tx.commit().await?;
        Ok(Claimed::Done(opened_run))
    }

    #[tracing::instrument(skip(self, summary))]
    async fn close_run(
        &self,
        run_id: Uuid,
        summary: serde_json::Value,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        let mut write = self.begin_write().await?;
        sqlx::query(
            "UPDATE evaluation_runs SET status = CASE WHEN ?3 IS NULL THEN 'succeeded' ELSE 'failed' END,
                 summary = ?2, error = ?3, finished_at = ?4 WHERE id = ?1 AND status = 'running'",
        )
        .bind(run_id)
        .bind(Json(summary))
        .bind(error)
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        // A run that succeeded judged every member: the program records when it began.
        sqlx::query(
            "UPDATE programs SET last_evaluated_at = max(COALESCE(last_evaluated_at, r.started_at), r.started_at)
             FROM (SELECT program_id, started_at FROM evaluation_runs WHERE id = ?1 AND status = 'succeeded') AS r
             WHERE programs.id = r.program_id",
        )
        .bind(run_id)
        .execute(&mut *write.tx)
        .await?;
        write.tx.commit().await?;
        Ok(())
    }

    async fn lock_program_runs(
        &self,
        program_id: Uuid,
    ) -> Result<crate::storage::RunLock, ScoringError> {
        Ok(self.locks.lock(&run_lock_name(program_id)).await)
    }

    async fn try_lock_program_runs(
        &self,
        program_id: Uuid,
    ) -> Result<Option<crate::storage::RunLock>, ScoringError> {
        Ok(self.locks.try_lock(&run_lock_name(program_id)))
    }

    #[tracing::instrument(skip(self))]
    async fn running_runs(&self, limit: u32) -> Result<Vec<EvaluationRun>, ScoringError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM evaluation_runs WHERE status = 'running' ORDER BY started_at LIMIT ?1"
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
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT max(due_at) FROM evaluation_runs
             WHERE program_id = ?1 AND trigger = 'schedule' AND status <> 'running'",
        )
        .bind(program_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(due.map(from_micros))
    }

    #[tracing::instrument(skip(self))]
    async fn start_run(&self, run_id: Uuid, now: DateTime<Utc>) -> Result<RunStart, ScoringError> {
        let mut write = self.begin_write().await?;
        // On a resume, the members the run already changed are skipped: they count as judged
        // from the start, and the others are judged (and counted) again.
        let (judging_started_at, counts, resumed): (i64, Option<Json<serde_json::Value>>, i32) =
            sqlx::query_as(
            "UPDATE evaluation_runs SET resumed = resumed + (judging_started_at IS NOT NULL),
                 members_evaluated = CASE WHEN judging_started_at IS NULL THEN 0
                     ELSE (SELECT count(*) FROM tier_states s
                           WHERE s.program_id = evaluation_runs.program_id AND s.changed_by_run = ?1) END,
                 judging_started_at = COALESCE(judging_started_at, ?2)
             WHERE id = ?1 RETURNING judging_started_at, counts_before, resumed",
        )
        .bind(run_id)
        .bind(micros(now))
        .fetch_one(&mut *write.tx)
        .await?;
        write.tx.commit().await?;
        Ok(RunStart {
            judging_started_at: from_micros(judging_started_at),
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
        let mut write = self.begin_write().await?;
        let counts: Json<serde_json::Value> = sqlx::query_scalar(
            "UPDATE evaluation_runs SET counts_before = COALESCE(counts_before, ?2) WHERE id = ?1
             RETURNING counts_before",
        )
        .bind(run_id)
        .bind(Json(counts_before))
        .fetch_one(&mut *write.tx)
        .await?;
        write.tx.commit().await?;
        Ok(counts.0)
    }

    #[tracing::instrument(skip(self))]
    async fn add_run_history_events(&self, run_id: Uuid, events: i64) -> Result<i64, ScoringError> {
        let mut write = self.begin_write().await?;
        let total: i64 = sqlx::query_scalar(
            "UPDATE evaluation_runs SET summary = json_set(summary, '$.backfill', json_object(
                 'complete', json('false'),
                 'events', COALESCE(json_extract(summary, '$.backfill.events'), 0) + ?2))
             WHERE id = ?1 RETURNING json_extract(summary, '$.backfill.events')",
        )
        .bind(run_id)
        .bind(events)
        .fetch_one(&mut *write.tx)
        .await?;
        write.tx.commit().await?;
        Ok(total)
    }

    #[tracing::instrument(skip(self))]
    async fn run_moves(&self, run_id: Uuid) -> Result<Vec<(String, i64)>, ScoringError> {
        Ok(sqlx::query_as(
            "SELECT tier_code, customers FROM evaluation_run_moves WHERE run_id = ?1 ORDER BY tier_code",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn run_progress(&self, run_id: Uuid) -> Result<RunProgress, ScoringError> {
        let (evaluated, upgrades, downgrades): (i64, i64, i64) = sqlx::query_as(
            "SELECT members_evaluated, upgrades, downgrades FROM evaluation_runs WHERE id = ?1",
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
    async fn run(&self, id: Uuid) -> Result<Option<EvaluationRun>, ScoringError> {
        let mut connection = self.pool.acquire().await?;
        select_run_on(&mut connection, id).await
    }

    #[tracing::instrument(skip(self))]
    async fn list_runs(
        &self,
        program_id: Uuid,
        status: Option<RunStatus>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<EvaluationRun>, ScoringError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM evaluation_runs
             WHERE program_id = ?1 AND status = COALESCE(?2, status) AND (?3 IS NULL OR (started_at, id) < (?3, ?4))
             ORDER BY started_at DESC, id DESC LIMIT ?5"
        );
        let rows: Vec<RunRow> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(status.map(RunStatus::as_str))
            .bind(before.map(|(started_at, _)| micros(started_at)))
            .bind(before.map(|(_, id)| id))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
