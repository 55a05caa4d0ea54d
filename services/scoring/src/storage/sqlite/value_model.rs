//! The value model's port in SQLite: purchases summarised by the domain's [`summarise`], and
//! fitted models as versioned rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tierline_runtime::instant::micros;
use uuid::Uuid;

use super::SqliteScoringStore;
use crate::{
    ScoringError,
    domain::value::{
        ValueModel,
        store::ValueModelStore,
        summary::{PopulationSummary, PurchaseSummary, summarise},
    },
    storage::{
        DatedRow, VALUE_MODEL_COLUMNS, ValueModelParameters, ValueModelRow, dated_purchases,
        duration_micros,
    },
};

/// Counted purchases not refunded in full up to an instant: `(customer, micros, net)`.
const PURCHASES: &str =
    "SELECT customer_id, occurred_at, amount_minor - refunded_minor FROM counted_purchases
     WHERE program_id = ?1 AND refunded_minor < amount_minor AND occurred_at <= ?2";

#[async_trait]
impl ValueModelStore for SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    async fn population_summary(
        &self,
        program_id: Uuid,
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<PopulationSummary, ScoringError> {
        let rows: Vec<DatedRow> = sqlx::query_as(PURCHASES)
            .bind(program_id)
            .bind(micros(as_of))
            .fetch_all(&self.pool)
            .await?;
        Ok(PopulationSummary::of(summarise(
            &mut dated_purchases(rows),
            zone,
            as_of,
        )))
    }

    #[tracing::instrument(skip_all, fields(%program_id, customers = customer_ids.len()))]
    async fn purchase_summaries(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, PurchaseSummary)>, ScoringError> {
        let sql = format!("{PURCHASES} AND customer_id = ?3");
        let mut rows = Vec::new();
        for &customer_id in customer_ids {
            let found: Vec<DatedRow> = sqlx::query_as(&sql)
                .bind(program_id)
                .bind(micros(as_of))
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await?;
            rows.extend(found);
        }
        Ok(summarise(&mut dated_purchases(rows), zone, as_of))
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
