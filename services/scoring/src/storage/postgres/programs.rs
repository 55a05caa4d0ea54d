//! Programs and policy versions in Postgres.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    PgScoringStore,
    rows::{POLICY_COLUMNS, PROGRAM_COLUMNS, PolicyRow, ProgramRow, RUN_COLUMNS, RunRow},
};
use crate::{
    ScoringError,
    domain::{
        idempotency::{Claimed, IdempotentRequest},
        program::Program,
        versions::{PolicyStatus, PolicyVersion},
    },
    storage::{Activation, DraftChange, NewPolicy, NewRun},
};

impl PgScoringStore {
    #[tracing::instrument(skip_all, fields(program_code = %program.code))]
    pub(super) async fn insert_program(
        &self,
        program: &Program,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<()>, ScoringError> {
        let mut tx = self.pool.begin().await?;
        if let Some(request) = request
            && let Some(prior) = super::idempotency::claim(&mut tx, request, program.id).await?
        {
            return Ok(Claimed::Replay(prior));
        }
        sqlx::query("INSERT INTO programs (id, code, name, currency, scope, tiers, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(program.id)
            .bind(&program.code)
            .bind(&program.name)
            .bind(&program.currency)
            .bind(Json(&program.scope))
            .bind(Json(&program.tiers))
            .bind(program.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Claimed::Done(()))
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_program(&self, id: Uuid) -> Result<Option<Program>, ScoringError> {
        let sql = format!("SELECT {PROGRAM_COLUMNS} FROM programs WHERE id = $1");
        let row: Option<ProgramRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Program::from))
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_programs(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Program>, ScoringError> {
        let rows: Vec<ProgramRow> = match after {
            None => {
                let sql = format!("SELECT {PROGRAM_COLUMNS} FROM programs ORDER BY id LIMIT $1");
                sqlx::query_as(&sql)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(after) => {
                let sql = format!(
                    "SELECT {PROGRAM_COLUMNS} FROM programs WHERE id > $1 ORDER BY id LIMIT $2"
                );
                sqlx::query_as(&sql)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(Program::from).collect())
    }

    #[tracing::instrument(skip_all, fields(program_id = %policy.program_id))]
    pub(super) async fn insert_policy(
        &self,
        policy: &NewPolicy,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<PolicyVersion>, ScoringError> {
        let mut tx = self.pool.begin().await?;
        if let Some(request) = request
            && let Some(prior) = super::idempotency::claim(&mut tx, request, policy.id).await?
        {
            return Ok(Claimed::Replay(prior));
        }
        // Serialises draft creation per program, so version numbers are dense and unique.
        sqlx::query("SELECT id FROM programs WHERE id = $1 FOR UPDATE")
            .bind(policy.program_id)
            .fetch_optional(&mut *tx)
            .await?;
        let sql = format!(
            "INSERT INTO policy_versions (id, program_id, version, status, rules, description, created_by, created_at, updated_at)
             SELECT $1, $2, COALESCE(MAX(version), 0) + 1, 'draft', $3, $4, $5, $6, $6 FROM policy_versions WHERE program_id = $2
             RETURNING {POLICY_COLUMNS}"
        );
        let row: PolicyRow = sqlx::query_as(&sql)
            .bind(policy.id)
            .bind(policy.program_id)
            .bind(Json(&policy.document))
            .bind(&policy.description)
            .bind(&policy.created_by)
            .bind(policy.now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into().map(Claimed::Done)
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_policy(
        &self,
        id: Uuid,
    ) -> Result<Option<PolicyVersion>, ScoringError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policy_versions WHERE id = $1");
        let row: Option<PolicyRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(PolicyVersion::try_from).transpose()
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_active_policy(
        &self,
        program_id: Uuid,
    ) -> Result<Option<PolicyVersion>, ScoringError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM policy_versions WHERE program_id = $1 AND status = 'active'"
        );
        let row: Option<PolicyRow> = sqlx::query_as(&sql)
            .bind(program_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(PolicyVersion::try_from).transpose()
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_policies(
        &self,
        program_id: Uuid,
        status: Option<PolicyStatus>,
        before_version: Option<i32>,
        limit: u32,
    ) -> Result<Vec<PolicyVersion>, ScoringError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM policy_versions
             WHERE program_id = $1 AND status = COALESCE($2, status) AND version < COALESCE($3, 2147483647)
             ORDER BY version DESC LIMIT $4"
        );
        let rows: Vec<PolicyRow> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(status.map(PolicyStatus::as_str))
            .bind(before_version)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(PolicyVersion::try_from).collect()
    }

    /// Locks a version and checks it is a draft at the expected revision.
    async fn lock_draft(
        tx: &mut sqlx::PgConnection,
        id: Uuid,
        expected_revision: Option<i64>,
    ) -> Result<PolicyVersion, ScoringError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policy_versions WHERE id = $1 FOR UPDATE");
        let row: Option<PolicyRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let policy = PolicyVersion::try_from(
            row.ok_or_else(|| ScoringError::not_found("policy version", id))?,
        )?;
        if policy.status != PolicyStatus::Draft {
            return Err(ScoringError::FailedPrecondition(format!(
                "policy version {id} is {}, not a draft",
                policy.status.as_str()
            )));
        }
        if expected_revision.is_some_and(|expected| expected != policy.revision) {
            return Err(ScoringError::Aborted(format!(
                "policy version {id} is at revision {}; reload and retry",
                policy.revision
            )));
        }
        Ok(policy)
    }

    #[tracing::instrument(skip_all, fields(policy_id = %change.id))]
    pub(super) async fn change_draft(
        &self,
        change: &DraftChange,
    ) -> Result<PolicyVersion, ScoringError> {
        let mut tx = self.pool.begin().await?;
        Self::lock_draft(&mut tx, change.id, change.expected_revision).await?;
        let sql = format!(
            "UPDATE policy_versions SET rules = $2, description = COALESCE($3, description), revision = revision + 1, updated_at = $4
             WHERE id = $1 RETURNING {POLICY_COLUMNS}"
        );
        let row: PolicyRow = sqlx::query_as(&sql)
            .bind(change.id)
            .bind(Json(&change.document))
            .bind(&change.description)
            .bind(change.now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn activate(
        &self,
        id: Uuid,
        by: &str,
        expected_revision: Option<i64>,
        run_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Activation, ScoringError> {
        let mut tx = self.pool.begin().await?;
        let draft = Self::lock_draft(&mut tx, id, expected_revision).await?;
        let retired: Option<Uuid> = sqlx::query_scalar(
            "UPDATE policy_versions SET status = 'retired', retired_by = $2, retired_at = $3, revision = revision + 1, updated_at = $3
             WHERE program_id = $1 AND status = 'active' RETURNING id",
        )
        .bind(draft.program_id)
        .bind(by)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let sql = format!(
            "UPDATE policy_versions SET status = 'active', activated_by = $2, activated_at = $3, revision = revision + 1, updated_at = $3
             WHERE id = $1 RETURNING {POLICY_COLUMNS}"
        );
        let row: PolicyRow = sqlx::query_as(&sql)
            .bind(id)
            .bind(by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let run_sql = format!(
            "INSERT INTO evaluation_runs (id, program_id, policy_version_id, trigger, status, requested_by, started_at)
             VALUES ($1, $2, $3, 'policy_activation', 'running', $4, $5) RETURNING {RUN_COLUMNS}"
        );
        let run: RunRow = sqlx::query_as(&run_sql)
            .bind(run_id)
            .bind(draft.program_id)
            .bind(id)
            .bind(by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Activation {
            policy: row.try_into()?,
            retired,
            run: run.try_into()?,
        })
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn retire(
        &self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<PolicyVersion, ScoringError> {
        let mut tx = self.pool.begin().await?;
        Self::lock_draft(&mut tx, id, None).await?;
        let sql = format!(
            "UPDATE policy_versions SET status = 'retired', retired_by = $2, retired_at = $3, revision = revision + 1, updated_at = $3
             WHERE id = $1 RETURNING {POLICY_COLUMNS}"
        );
        let row: PolicyRow = sqlx::query_as(&sql)
            .bind(id)
            .bind(by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    #[tracing::instrument(skip_all, fields(run_id = %run.id, program_id = %run.program_id))]
    pub(super) async fn insert_run(
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
    pub(super) async fn finish_run(
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
    pub(super) async fn select_run(
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
    pub(super) async fn select_runs(
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
