//! Campaign rows: create (with its idempotency key), read, list, save with a revision check.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tierline_runtime::instant::micros;
use uuid::Uuid;

use super::{SqliteCampaignStore, begin_write};
use crate::domain::ports::CampaignRecords;
use crate::{
    CampaignError,
    domain::campaign::{Campaign, Status},
    storage::{
        CampaignFilter,
        campaign_row::{COLUMNS, CampaignRow, kind_str},
    },
};

#[async_trait]
impl CampaignRecords for SqliteCampaignStore {
    #[tracing::instrument(skip_all, fields(campaign_id = %campaign.id))]
    async fn create(
        &self,
        campaign: &Campaign,
        idempotency: Option<(&str, &[u8])>,
    ) -> Result<Option<(Uuid, Vec<u8>)>, CampaignError> {
        let mut tx = begin_write(&self.pool).await?;
        if let Some((key, fingerprint)) = idempotency {
            let prior: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
                "SELECT campaign_id, fingerprint FROM idempotent_requests WHERE key = ?",
            )
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if prior.is_some() {
                return Ok(prior);
            }
            sqlx::query(
                "INSERT INTO idempotent_requests (key, fingerprint, campaign_id) VALUES (?, ?, ?)",
            )
            .bind(key)
            .bind(fingerprint)
            .bind(campaign.id)
            .execute(&mut *tx)
            .await?;
        }
        let definition = &campaign.definition;
        sqlx::query(
            "INSERT INTO campaigns (id, program_id, kind, status, definition, program, start_at, end_at, revision,
                                    created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        )
        .bind(campaign.id)
        .bind(definition.program_id)
        .bind(kind_str(definition.kind))
        .bind(campaign.status.as_str())
        .bind(Json(definition))
        .bind(Json(&campaign.program))
        .bind(definition.start_at.map(micros))
        .bind(definition.end_at.map(micros))
        .bind(campaign.revision)
        .bind(&campaign.created_by)
        .bind(micros(campaign.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn campaign(&self, id: Uuid) -> Result<Option<Campaign>, CampaignError> {
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = ?");
        let row: Option<CampaignRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list(
        &self,
        filter: &CampaignFilter,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Campaign>, CampaignError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM campaigns
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR program_id = ?2) AND (?3 IS NULL OR kind = ?3)
               AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5))
             ORDER BY created_at DESC, id DESC LIMIT ?6"
        );
        let (before_at, before_id) = before.unzip();
        let rows: Vec<CampaignRow> = sqlx::query_as(&sql)
            .bind(filter.status.map(Status::as_str))
            .bind(filter.program_id)
            .bind(filter.kind.map(kind_str))
            .bind(before_at.map(micros))
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn save(&self, campaign: &Campaign) -> Result<(), CampaignError> {
        let definition = &campaign.definition;
        let updated = sqlx::query(
            "UPDATE campaigns SET program_id = ?2, kind = ?3, status = ?4, definition = ?5, program = ?6, start_at = ?7,
                 end_at = ?8, revision = ?9, updated_at = ?10, launched_at = ?11, completed_at = ?12, cancelled_at = ?13,
                 cancel_reason = ?14
             WHERE id = ?1 AND revision = ?9 - 1",
        )
        .bind(campaign.id)
        .bind(definition.program_id)
        .bind(kind_str(definition.kind))
        .bind(campaign.status.as_str())
        .bind(Json(definition))
        .bind(Json(&campaign.program))
        .bind(definition.start_at.map(micros))
        .bind(definition.end_at.map(micros))
        .bind(campaign.revision)
        .bind(micros(campaign.updated_at))
        .bind(campaign.launched_at.map(micros))
        .bind(campaign.completed_at.map(micros))
        .bind(campaign.cancelled_at.map(micros))
        .bind(&campaign.cancel_reason)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            Ok(())
        } else {
            Err(CampaignError::Aborted(
                "the campaign was changed at the same time; read it again and retry".into(),
            ))
        }
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, CampaignError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM campaigns WHERE status = 'scheduled' AND start_at <= ?1
             UNION SELECT id FROM campaigns WHERE status = 'running' AND end_at <= ?1
             UNION SELECT id FROM campaigns WHERE status = 'running' AND NOT launch_complete",
        )
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn complete_launch(&self, id: Uuid) -> Result<(), CampaignError> {
        sqlx::query("UPDATE campaigns SET launch_complete = 1 WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
