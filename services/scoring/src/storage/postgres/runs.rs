//! Evaluation runs: the per-program run lock, and what lets a run resume after its replica died.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tierline_runtime::lock;
use uuid::Uuid;

use super::{
    PgScoringStore,
    rows::{RUN_COLUMNS, RunRow},
};
use crate::{
    ScoringError,
    domain::versions::EvaluationRun,
    storage::{RunLock, tx::RunProgress},
};

/// The advisory lock key of a program's runs.
fn run_lock_key(program_id: Uuid) -> i64 {
    i64::from_be_bytes(program_id.as_bytes()[..8].try_into().unwrap_or([0; 8]))
        ^ 0x5275_6e4c_6f63_6b00
}

impl PgScoringStore {
    #[tracing::instrument(skip(self))]
    pub(super) async fn lock_runs(&self, program_id: Uuid) -> Result<RunLock, ScoringError> {
        Ok(lock::session_lock(&self.pool, run_lock_key(program_id)).await?)
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn try_lock_runs(
        &self,
        program_id: Uuid,
    ) -> Result<Option<RunLock>, ScoringError> {
        Ok(lock::try_session_lock(&self.pool, run_lock_key(program_id)).await?)
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_running_runs(
        &self,
        limit: u32,
    ) -> Result<Vec<EvaluationRun>, ScoringError> {
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
    pub(super) async fn select_last_closed_scheduled_due(
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

    #[tracing::instrument(skip(self, counts_before))]
    pub(super) async fn keep_first_counts(
        &self,
        run_id: Uuid,
        counts_before: serde_json::Value,
    ) -> Result<(serde_json::Value, i32), ScoringError> {
        let (counts, resumed): (Json<serde_json::Value>, i32) = sqlx::query_as(
            // On a resume, the members the run already changed are skipped: they count as judged
            // from the start, and the others are judged (and counted) again.
            "UPDATE evaluation_runs SET resumed = resumed + (counts_before IS NOT NULL)::int,
                 members_evaluated = CASE WHEN counts_before IS NULL THEN 0
                     ELSE (SELECT count(*) FROM tier_states WHERE program_id = evaluation_runs.program_id AND changed_by_run = $1) END,
                 counts_before = COALESCE(counts_before, $2)
             WHERE id = $1 RETURNING counts_before, resumed",
        )
        .bind(run_id)
        .bind(Json(counts_before))
        .fetch_one(&self.pool)
        .await?;
        Ok((counts.0, resumed))
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn add_history_events(
        &self,
        run_id: Uuid,
        events: i64,
    ) -> Result<i64, ScoringError> {
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
    pub(super) async fn select_run_progress(
        &self,
        run_id: Uuid,
    ) -> Result<RunProgress, ScoringError> {
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
}
