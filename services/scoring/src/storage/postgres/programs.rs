//! Programs and policy versions in Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tierline_runtime::notify::Notice;
use uuid::Uuid;

use super::{
    PgScoringStore,
    rows::{POLICY_COLUMNS, PROGRAM_COLUMNS, PolicyRow, ProgramRow, RUN_COLUMNS, RunRow},
};
use crate::domain::ports::ProgramSignal;
use crate::domain::ports::{PolicyRecords, ProgramRecords};
use crate::{
    ScoringError,
    domain::{
        idempotency::{Claimed, IdempotentRequest},
        program::Program,
        versions::{PolicyStatus, PolicyVersion},
    },
    storage::{Activation, DraftChange, NewPolicy},
};

impl PgScoringStore {
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
        PolicyVersion::try_from(row.ok_or_else(|| ScoringError::not_found("policy version", id))?)?
            .into_draft_at(expected_revision)
    }
}

/// The channel the triggers on programs and policy versions notify (migration
/// `20261126100009_tier_cache.sql`).
const PROGRAM_CHANNEL: &str = "scoring_programs";

#[async_trait]
impl ProgramRecords for PgScoringStore {
    #[tracing::instrument(skip_all, fields(program_code = %program.code))]
    async fn create_program(
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
    async fn program(&self, id: Uuid) -> Result<Option<Program>, ScoringError> {
        let sql = format!("SELECT {PROGRAM_COLUMNS} FROM programs WHERE id = $1");
        let row: Option<ProgramRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Program::from))
    }

    #[tracing::instrument(skip(self))]
    async fn list_programs(
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
}

#[async_trait]
impl PolicyRecords for PgScoringStore {
    #[tracing::instrument(skip_all, fields(program_id = %policy.program_id))]
    async fn create_policy(
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
    async fn policy(&self, id: Uuid) -> Result<Option<PolicyVersion>, ScoringError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policy_versions WHERE id = $1");
        let row: Option<PolicyRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(PolicyVersion::try_from).transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn active_policy(&self, program_id: Uuid) -> Result<Option<PolicyVersion>, ScoringError> {
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
    async fn list_policies(
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

    #[tracing::instrument(skip_all, fields(policy_id = %change.id))]
    async fn update_draft(&self, change: &DraftChange) -> Result<PolicyVersion, ScoringError> {
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
    async fn activate_policy(
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
    async fn retire_draft(
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

    fn program_signals(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::sync::mpsc::Receiver<ProgramSignal> {
        let mut notices =
            tierline_runtime::notify::listen(self.pool.clone(), PROGRAM_CHANNEL, shutdown);
        let (sender, receiver) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            while let Some(notice) = notices.recv().await {
                let signal = match notice {
                    Notice::Listening => ProgramSignal::Listening,
                    Notice::Lost => ProgramSignal::Lost,
                    Notice::Notified(payload) => match Uuid::parse_str(&payload) {
                        Ok(program_id) => ProgramSignal::Changed(program_id),
                        // Not ours to read: forget everything rather than miss a change.
                        Err(_) => ProgramSignal::Listening,
                    },
                };
                if sender.send(signal).await.is_err() {
                    return;
                }
            }
        });
        receiver
    }
}
