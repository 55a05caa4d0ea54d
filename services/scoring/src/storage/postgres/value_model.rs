//! The value model's port in Postgres: purchase summaries computed by Postgres (a million
//! customers travel as four arrays in one row), and fitted models as versioned rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::PgScoringStore;
use crate::{
    ScoringError,
    domain::value::{
        ValueModel,
        store::ValueModelStore,
        summary::{PopulationSummary, PurchaseSummary},
    },
    storage::{VALUE_MODEL_PARAMETERS, ValueModelParameters, duration_micros, micros_duration},
};

/// Each customer's purchase days (`docs/SCORING.md`, "Customer value";
/// `domain::value::summary`): $1 program, $2 zone, $3 as of, and `{customers}` a further filter.
/// The first day's spend is the second element of the smallest (day, spend) pair.
fn summaries_sql(customers: &str) -> String {
    format!(
        "WITH days AS (
             SELECT customer_id, (occurred_at AT TIME ZONE $2)::date AS day,
                    sum(amount_minor - refunded_minor)::bigint AS spend
             FROM counted_purchases
             WHERE program_id = $1 AND refunded_minor < amount_minor AND occurred_at <= $3 {customers}
             GROUP BY customer_id, day)
         SELECT customer_id,
                (count(*) - 1)::int AS frequency,
                (max(day) - min(day))::int AS recency_days,
                (($3 AT TIME ZONE $2)::date - min(day))::int AS age_days,
                CASE WHEN count(*) > 1
                     THEN (sum(spend) - (min(ARRAY[day - DATE '2000-01-01', spend]))[2])::float8 / (count(*) - 1)
                     ELSE 0 END AS repeat_spend_minor
         FROM days GROUP BY customer_id"
    )
}

fn unsigned(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[derive(sqlx::FromRow)]
struct ModelRow {
    program_id: Uuid,
    version: i64,
    #[sqlx(flatten)]
    parameters: ValueModelParameters,
    customers: i64,
    repeat_customers: i64,
    as_of: DateTime<Utc>,
    summary_micros: i64,
    fit_micros: i64,
    evaluation_run_id: Option<Uuid>,
}

#[async_trait]
impl ValueModelStore for PgScoringStore {
    #[tracing::instrument(skip(self))]
    async fn population_summary(
        &self,
        program_id: Uuid,
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<PopulationSummary, ScoringError> {
        let sql = format!(
            "WITH summaries AS ({})
             SELECT COALESCE(array_agg(frequency), '{{}}'), COALESCE(array_agg(recency_days), '{{}}'),
                    COALESCE(array_agg(age_days), '{{}}'), COALESCE(array_agg(repeat_spend_minor), '{{}}')
             FROM summaries",
            summaries_sql("")
        );
        let (frequency, recency, age, spend): (Vec<i32>, Vec<i32>, Vec<i32>, Vec<f64>) =
            sqlx::query_as(&sql)
                .bind(program_id)
                .bind(zone.name())
                .bind(as_of)
                .fetch_one(&self.pool)
                .await?;
        Ok(PopulationSummary {
            frequency: frequency.into_iter().map(unsigned).collect(),
            recency_days: recency.into_iter().map(unsigned).collect(),
            age_days: age.into_iter().map(unsigned).collect(),
            repeat_spend_minor: spend,
        })
    }

    #[tracing::instrument(skip_all, fields(%program_id, customers = customer_ids.len()))]
    async fn purchase_summaries(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, PurchaseSummary)>, ScoringError> {
        let rows: Vec<(Uuid, i32, i32, i32, f64)> =
            sqlx::query_as(&summaries_sql("AND customer_id = ANY($4)"))
                .bind(program_id)
                .bind(zone.name())
                .bind(as_of)
                .bind(customer_ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(customer_id, frequency, recency, age, spend)| {
                (
                    customer_id,
                    PurchaseSummary {
                        frequency: unsigned(frequency),
                        recency_days: unsigned(recency),
                        age_days: unsigned(age),
                        repeat_spend_minor: spend,
                    },
                )
            })
            .collect())
    }

    #[tracing::instrument(skip_all, fields(program_id = %model.program_id))]
    async fn store_value_model(&self, model: &ValueModel) -> Result<i64, ScoringError> {
        let parameters = ValueModelParameters::from(&model.fitted);
        Ok(sqlx::query_scalar(&format!(
            "INSERT INTO value_models (program_id, version, {VALUE_MODEL_PARAMETERS}, customers, repeat_customers,
                                       as_of, summary_micros, fit_micros, evaluation_run_id)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
             FROM value_models WHERE program_id = $1
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
        .bind(model.as_of)
        .bind(duration_micros(model.summary_duration))
        .bind(duration_micros(model.fit_duration))
        .bind(model.evaluation_run_id)
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn value_model(&self, program_id: Uuid) -> Result<Option<ValueModel>, ScoringError> {
        let row: Option<ModelRow> = sqlx::query_as(
            &format!("SELECT program_id, version, {VALUE_MODEL_PARAMETERS}, customers, repeat_customers, as_of,
                    summary_micros, fit_micros, evaluation_run_id
             FROM value_models WHERE program_id = $1 ORDER BY version DESC LIMIT 1"),
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
            as_of: row.as_of,
            summary_duration: micros_duration(row.summary_micros),
            fit_duration: micros_duration(row.fit_micros),
            evaluation_run_id: row.evaluation_run_id,
        }))
    }
}
