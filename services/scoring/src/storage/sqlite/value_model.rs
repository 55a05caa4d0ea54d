//! The value model's port in SQLite: purchase profiles as rows, the purchases of those who
//! bought since a summary's instant, and fitted models as versioned rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tierline_runtime::{instant::micros, sqlite::rows_param};
use uuid::Uuid;

use super::SqliteScoringStore;
use crate::{
    ScoringError,
    domain::{
        purchase_profile::PurchaseProfile,
        value::{
            ValueModel,
            store::ValueModelStore,
            summary::{DatedPurchase, ProfilesAt},
        },
    },
    storage::{
        DatedRow, VALUE_MODEL_COLUMNS, ValueModelParameters, ValueModelRow, dated_purchases,
        duration_micros,
        rows::{PROFILE_COLUMNS, ProfileRow, customer_profiles},
    },
};

#[async_trait]
impl ValueModelStore for SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    async fn profiles_at(
        &self,
        program_id: Uuid,
        as_of: DateTime<Utc>,
    ) -> Result<ProfilesAt, ScoringError> {
        let rows: Vec<ProfileRow> = sqlx::query_as(&format!(
            "SELECT {PROFILE_COLUMNS} FROM purchase_profiles WHERE program_id = ?1"
        ))
        .bind(program_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(ProfilesAt::of(customer_profiles(rows), as_of))
    }

    #[tracing::instrument(skip_all, fields(%program_id, customers = customer_ids.len()))]
    async fn customer_profiles(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, PurchaseProfile)>, ScoringError> {
        let rows: Vec<ProfileRow> = sqlx::query_as(&format!(
            "SELECT {PROFILE_COLUMNS} FROM purchase_profiles
             WHERE program_id = ?1 AND customer_id IN (SELECT unhex(value, '-') FROM json_each(?2))"
        ))
        .bind(program_id)
        .bind(rows_param(customer_ids))
        .fetch_all(&self.pool)
        .await?;
        Ok(customer_profiles(rows))
    }

    #[tracing::instrument(skip_all, fields(%program_id, customers = customer_ids.len()))]
    async fn purchases_until(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        as_of: DateTime<Utc>,
    ) -> Result<Vec<DatedPurchase>, ScoringError> {
        let rows: Vec<DatedRow> = sqlx::query_as(
            "SELECT customer_id, occurred_at, amount_minor - refunded_minor FROM counted_purchases
             WHERE program_id = ?1 AND customer_id IN (SELECT unhex(value, '-') FROM json_each(?2))
               AND refunded_minor < amount_minor AND occurred_at <= ?3",
        )
        .bind(program_id)
        .bind(rows_param(customer_ids))
        .bind(micros(as_of))
        .fetch_all(&self.pool)
        .await?;
        Ok(dated_purchases(rows))
    }

    #[tracing::instrument(skip_all, fields(program_id = %model.program_id))]
    async fn store_value_model(&self, model: &ValueModel) -> Result<i64, ScoringError> {
        let mut write = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO value_models ({VALUE_MODEL_COLUMNS})
             SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16
             FROM value_models WHERE program_id = ?1
             RETURNING version"
        );
        let insert = sqlx::query_scalar(&sql).bind(model.program_id);
        let version: i64 = ValueModelParameters::from(&model.fitted)
            .bind(insert)
            .bind(model.customers)
            .bind(model.repeat_customers)
            .bind(micros(model.as_of))
            .bind(duration_micros(model.summary_duration))
            .bind(duration_micros(model.fit_duration))
            .bind(model.evaluation_run_id)
            .fetch_one(&mut *write.tx)
            .await?;
        write.tx.commit().await?;
        Ok(version)
    }

    #[tracing::instrument(skip(self))]
    async fn value_model(&self, program_id: Uuid) -> Result<Option<ValueModel>, ScoringError> {
        let row: Option<ValueModelRow> = sqlx::query_as(&format!(
            "SELECT {VALUE_MODEL_COLUMNS} FROM value_models WHERE program_id = ?1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(program_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ValueModel::from))
    }
}
