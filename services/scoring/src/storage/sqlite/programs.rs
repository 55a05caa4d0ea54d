//! Programs and policy versions in SQLite. The one writer makes "check, then write" safe inside a
//! writing transaction, which stands in for Postgres's row locks and unique-violation mapping.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, types::Json};
use tierline_runtime::instant::micros;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    rows::{POLICY_COLUMNS, PROGRAM_COLUMNS, PolicyRow, ProgramRow, RUN_COLUMNS, RunRow},
};
use crate::domain::ports::ProgramSignal;
use crate::domain::ports::{PolicyRecords, ProgramRecords};
use crate::{
    ScoringError,
    domain::{
        idempotency::{Claimed, IdempotentRequest},
        program::Program,
        versions::{EvaluationRun, PolicyStatus, PolicyVersion},
    },
    storage::{Activation, DraftChange, NewPolicy},
};

/// A version inside a transaction.
async fn select_policy_on(
    connection: &mut SqliteConnection,
    id: Uuid,
) -> Result<PolicyVersion, ScoringError> {
    let sql = format!("SELECT {POLICY_COLUMNS} FROM policy_versions WHERE id = ?1");
    let row: Option<PolicyRow> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    PolicyVersion::try_from(row.ok_or_else(|| ScoringError::not_found("policy version", id))?)
}

/// A run inside a transaction.
pub(super) async fn select_run_on(
    connection: &mut SqliteConnection,
    id: Uuid,
) -> Result<Option<EvaluationRun>, ScoringError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM evaluation_runs WHERE id = ?1");
    let row: Option<RunRow> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(TryInto::try_into).transpose()
}

/// The version `id`, checked to be a draft at the expected revision (the write lock is held).
async fn draft_at(
    connection: &mut SqliteConnection,
    id: Uuid,
    expected_revision: Option<i64>,
) -> Result<PolicyVersion, ScoringError> {
    select_policy_on(connection, id)
        .await?
        .into_draft_at(expected_revision)
}

#[async_trait]
impl ProgramRecords for SqliteScoringStore {
    #[tracing::instrument(skip_all, fields(program_code = %program.code))]
    async fn create_program(
        &self,
        program: &Program,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<()>, ScoringError> {
        let mut write = self.begin_write().await?;
        if let Some(request) = request
            && let Some(prior) =
                super::idempotency::claim(&mut write.tx, request, program.id).await?
        {
            return Ok(Claimed::Replay(prior));
        }
        let taken: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM programs WHERE code = ?1)")
                .bind(&program.code)
                .fetch_one(&mut *write.tx)
                .await?;
        if taken {
            return Err(ScoringError::AlreadyExists {
                entity: "program",
                field: "code",
            });
        }
        sqlx::query("INSERT INTO programs (id, code, name, currency, scope, tiers, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .bind(program.id)
            .bind(&program.code)
            .bind(&program.name)
            .bind(&program.currency)
            .bind(Json(&program.scope))
            .bind(Json(&program.tiers))
            .bind(micros(program.created_at))
            .execute(&mut *write.tx)
            .await?;
        write.tx.commit().await?;
        Ok(Claimed::Done(()))
    }

    #[tracing::instrument(skip(self))]
    async fn program(&self, id: Uuid) -> Result<Option<Program>, ScoringError> {
        let sql = format!("SELECT {PROGRAM_COLUMNS} FROM programs WHERE id = ?1");
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
        let sql = format!(
            "SELECT {PROGRAM_COLUMNS} FROM programs WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2"
        );
        let rows: Vec<ProgramRow> = sqlx::query_as(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Program::from).collect())
    }
}

#[async_trait]
impl PolicyRecords for SqliteScoringStore {
    #[tracing::instrument(skip_all, fields(program_id = %policy.program_id))]
    async fn create_policy(
        &self,
        policy: &NewPolicy,
        request: Option<&IdempotentRequest>,
    ) -> Result<Claimed<PolicyVersion>, ScoringError> {
        let mut write = self.begin_write().await?;
        if let Some(request) = request
            && let Some(prior) =
                super::idempotency::claim(&mut write.tx, request, policy.id).await?
        {
            return Ok(Claimed::Replay(prior));
        }
        // The one writer numbers drafts densely: nobody else can take the next number meanwhile.
        sqlx::query(
            "INSERT INTO policy_versions (id, program_id, version, status, rules, description, created_by, created_at, updated_at)
             SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, 'draft', ?3, ?4, ?5, ?6, ?6 FROM policy_versions WHERE program_id = ?2",
        )
        .bind(policy.id)
        .bind(policy.program_id)
        .bind(Json(&policy.document))
        .bind(&policy.description)
        .bind(&policy.created_by)
        .bind(micros(policy.now))
        .execute(&mut *write.tx)
        .await?;
        let created = select_policy_on(&mut write.tx, policy.id).await?;
        write.tx.commit().await?;
        Ok(Claimed::Done(created))
    }

    #[tracing::instrument(skip(self))]
    async fn policy(&self, id: Uuid) -> Result<Option<PolicyVersion>, ScoringError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policy_versions WHERE id = ?1");
        let row: Option<PolicyRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(PolicyVersion::try_from).transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn active_policy(&self, program_id: Uuid) -> Result<Option<PolicyVersion>, ScoringError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM policy_versions WHERE program_id = ?1 AND status = 'active'"
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
             WHERE program_id = ?1 AND status = COALESCE(?2, status) AND version < COALESCE(?3, 2147483647)
             ORDER BY version DESC LIMIT ?4"
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
        let mut write = self.begin_write().await?;
        draft_at(&mut write.tx, change.id, change.expected_revision).await?;
        sqlx::query(
            "UPDATE policy_versions SET rules = ?2, description = COALESCE(?3, description), revision = revision + 1, updated_at = ?4
             WHERE id = ?1",
        )
        .bind(change.id)
        .bind(Json(&change.document))
        .bind(&change.description)
        .bind(micros(change.now))
        .execute(&mut *write.tx)
        .await?;
        let changed = select_policy_on(&mut write.tx, change.id).await?;
        write.tx.commit().await?;
        Ok(changed)
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
        let mut write = self.begin_write().await?;
        let draft = draft_at(&mut write.tx, id, expected_revision).await?;
        let retired: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM policy_versions WHERE program_id = ?1 AND status = 'active'",
        )
        .bind(draft.program_id)
        .fetch_optional(&mut *write.tx)
        .await?;
        sqlx::query(
            "UPDATE policy_versions SET status = 'retired', retired_by = ?2, retired_at = ?3, revision = revision + 1, updated_at = ?3
             WHERE program_id = ?1 AND status = 'active'",
        )
        .bind(draft.program_id)
        .bind(by)
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        sqlx::query(
            "UPDATE policy_versions SET status = 'active', activated_by = ?2, activated_at = ?3, revision = revision + 1, updated_at = ?3
             WHERE id = ?1",
        )
        .bind(id)
        .bind(by)
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        sqlx::query(
            "INSERT INTO evaluation_runs (id, program_id, policy_version_id, trigger, status, requested_by, started_at)
             VALUES (?1, ?2, ?3, 'policy_activation', 'running', ?4, ?5)",
        )
        .bind(run_id)
        .bind(draft.program_id)
        .bind(id)
        .bind(by)
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        let policy = select_policy_on(&mut write.tx, id).await?;
        let run = select_run_on(&mut write.tx, run_id)
            .await?
            .ok_or_else(|| ScoringError::Internal(format!("run {run_id} vanished")))?;
        write.tx.commit().await?;
        self.program_changed(policy.program_id);
        Ok(Activation {
            policy,
            retired,
            run,
        })
    }

    #[tracing::instrument(skip(self))]
    async fn retire_draft(
        &self,
        id: Uuid,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<PolicyVersion, ScoringError> {
        let mut write = self.begin_write().await?;
        draft_at(&mut write.tx, id, None).await?;
        sqlx::query(
            "UPDATE policy_versions SET status = 'retired', retired_by = ?2, retired_at = ?3, revision = revision + 1, updated_at = ?3
             WHERE id = ?1",
        )
        .bind(id)
        .bind(by)
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        let retired = select_policy_on(&mut write.tx, id).await?;
        write.tx.commit().await?;
        self.program_changed(retired.program_id);
        Ok(retired)
    }

    fn program_signals(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::sync::mpsc::Receiver<ProgramSignal> {
        // This process is the file's only writer: its own announcements are all there are.
        let mut changes = self.program_changes.subscribe();
        let (sender, receiver) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            if sender.send(ProgramSignal::Listening).await.is_err() {
                return;
            }
            loop {
                let signal = tokio::select! {
                    () = shutdown.cancelled() => return,
                    change = changes.recv() => match change {
                        Ok(program_id) => ProgramSignal::Changed(program_id),
                        Err(broadcast::error::RecvError::Lagged(_)) => ProgramSignal::Lost,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                };
                let lost = signal == ProgramSignal::Lost;
                if sender.send(signal).await.is_err()
                    || (lost && sender.send(ProgramSignal::Listening).await.is_err())
                {
                    return;
                }
            }
        });
        receiver
    }
}
