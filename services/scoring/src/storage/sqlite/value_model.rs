//! The value model's port in SQLite: purchases summarised by the domain's [`summarise`], and
//! fitted models as versioned rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tierline_runtime::instant::{from_micros, micros};
use uuid::Uuid;

use super::SqliteScoringStore;
use crate::{
    ScoringError,
    domain::value::{
        ValueModel,
        store::ValueModelStore,
        summary::{DatedPurchase, PopulationSummary, PurchaseSummary, summarise},
    },
    storage::{VALUE_MODEL_PARAMETERS, ValueModelParameters, duration_micros, micros_duration},
};

/// Counted purchases not refunded in full up to an instant: `(customer, micros, net)`.
const PURCHASES: &str =
    "SELECT customer_id, occurred_at, amount_minor - refunded_minor FROM counted_purchases
     WHERE program_id = ?1 AND refunded_minor < amount_minor AND occurred_at <= ?2";

fn dated(rows: Vec<(Uuid, i64, i64)>) -> Vec<DatedPurchase> {
    rows.into_iter()
        .map(|(customer_id, occurred_at, net_minor)| DatedPurchase {
            customer_id,
            occurred_at: from_micros(occurred_at),
            net_minor,
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct ModelRow {
    program_id: Uuid,
    version: i64,
    #[sqlx(flatten)]
    parameters: ValueModelParameters,
    customers: i64,
    repeat_customers: i64,
    as_of: i64,
    summary_micros: i64,
    fit_micros: i64,
    evaluation_run_id: Option<Uuid>,
}

#[async_trait]
impl ValueModelStore for SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    async fn population_summary(
        &self,
        program_id: Uuid,
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<PopulationSummary, ScoringError> {
        let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(PURCHASES)
            .bind(program_id)
            .bind(micros(as_of))
            .fetch_all(&self.pool)
            .await?;
        Ok(PopulationSummary::of(summarise(
            &mut dated(rows),
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
            let found: Vec<(Uuid, i64, i64)> = sqlx::query_as(&sql)
                .bind(program_id)
                .bind(micros(as_of))
                .bind(customer_id)
                .fetch_all(&self.pool)
                .await?;
            rows.extend(found);
        }
        Ok(summarise(&mut dated(rows), zone, as_of))
    }

    #[tracing::instrument(skip_all, fields(program_id = %model.program_id))]
    async fn store_value_model(&self, model: &ValueModel) -> Result<i64, ScoringError> {
        let parameters = ValueModelParameters::from(&model.fitted);
        let mut write = self.begin_write().await?;
        let version: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO value_models (program_id, version, {VALUE_MODEL_PARAMETERS}, customers, repeat_customers,
                                       as_of, summary_micros, fit_micros, evaluation_run_id)
             SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16
             FROM value_models WHERE program_id = ?1
             RETURNING version"
        ))
        .bind(model.program_id)
        .bind(parameters.bg_r)
        .bind(parameters.bg_alpha)
        .bind(parameters.bg_a)
        .bind(parameters.bg_b)
        .bind(parameters.bg_log_likelihood)
        .bind(parameters.gg_p)
        .bind(parameters.gg_q)
        .bind(parameters.gg_gamma)
        .bind(parameters.gg_log_likelihood)
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
        let row: Option<ModelRow> = sqlx::query_as(
            &format!("SELECT program_id, version, {VALUE_MODEL_PARAMETERS}, customers, repeat_customers, as_of,
                    summary_micros, fit_micros, evaluation_run_id
             FROM value_models WHERE program_id = ?1 ORDER BY version DESC LIMIT 1"),
        )
        .bind(program_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| ValueModel {
            program_id: row.program_id,
            version: row.version,
            fitted: row.parameters.into(),
            customers: row.customers,
            repeat_customers: row.repeat_customers,
            as_of: from_micros(row.as_of),
            summary_duration: micros_duration(row.summary_micros),
            fit_duration: micros_duration(row.fit_micros),
            evaluation_run_id: row.evaluation_run_id,
        }))
    }
}
