//! The value model's port in Postgres: purchase profiles read from the tier states (one per
//! buyer; the feed keeps them), the purchases of the few who bought since a summary's instant, and fitted
//! models as versioned rows.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{PgScoringStore, blocks::in_blocks};
use crate::{
    ScoringError,
    domain::{
        purchase_profile::PurchaseProfile,
        value::{
            ValueModel,
            store::ValueModelStore,
            summary::{DatedPurchase, ProfileDays, ProfilesAt},
        },
    },
    storage::{
        DatedRow, VALUE_MODEL_COLUMNS, ValueModelParameters, ValueModelRow, dated_purchases,
        duration_micros,
        rows::{PROFILE_COLUMNS, ProfileRow, customer_profiles},
    },
};

/// How many of the tier states table's blocks one statement of `profiles_at` reads: about
/// 45,000 states (some 18 a block at the table's fill factor since each row carries its months;
/// 5,500 blocks, about 100,000 states, summed no faster), each array far below the 1 GB a value
/// may take.
pub(super) const PROFILE_BLOCKS_PER_READ: i64 = 2_500;

/// One range of blocks' profiles as arrays, the same index for one customer.
#[derive(sqlx::FromRow)]
struct ProfileArrays {
    first_day: Option<Vec<NaiveDate>>,
    last_day: Option<Vec<NaiveDate>>,
    purchase_days: Option<Vec<i32>>,
    repeat_spend_minor: Option<Vec<i64>>,
    bought_since: Option<Vec<Uuid>>,
}

impl From<ProfileArrays> for ProfileDays {
    fn from(arrays: ProfileArrays) -> Self {
        Self {
            first_day: arrays.first_day.unwrap_or_default(),
            last_day: arrays.last_day.unwrap_or_default(),
            purchase_days: arrays
                .purchase_days
                .unwrap_or_default()
                .into_iter()
                .map(|days| u32::try_from(days).unwrap_or(u32::MAX))
                .collect(),
            repeat_spend_minor: arrays.repeat_spend_minor.unwrap_or_default(),
        }
    }
}

#[async_trait]
impl ValueModelStore for PgScoringStore {
    /// Reads the table by ranges of its blocks ([`PROFILE_BLOCKS_PER_READ`] a statement by
    /// default), each
    /// range's profiles as one row of arrays, all in one snapshot: a million profiles as rows
    /// cost the service more to take in than Postgres to send.
    #[tracing::instrument(skip(self))]
    async fn profiles_at(
        &self,
        program_id: Uuid,
        as_of: DateTime<Utc>,
    ) -> Result<ProfilesAt, ScoringError> {
        let mut tx = self.begin_snapshot().await?;
        // The snapshot's first statement: every profile it sees lies in a block below this.
        let blocks: i64 = sqlx::query_scalar(
            "SELECT pg_relation_size('tier_states') / current_setting('block_size')::int",
        )
        .fetch_one(&mut *tx)
        .await?;
        let sql = format!(
            "SELECT array_agg(first_day) FILTER (WHERE last_purchase_at <= $2) AS first_day,
                    array_agg(last_day) FILTER (WHERE last_purchase_at <= $2) AS last_day,
                    array_agg(purchase_days) FILTER (WHERE last_purchase_at <= $2) AS purchase_days,
                    array_agg(repeat_spend_minor) FILTER (WHERE last_purchase_at <= $2) AS repeat_spend_minor,
                    array_agg(customer_id) FILTER (WHERE last_purchase_at > $2) AS bought_since
             FROM tier_states WHERE program_id = $1 AND last_purchase_at IS NOT NULL AND {}",
            in_blocks("$3", "$4")
        );
        let mut profiles = ProfilesAt::default();
        let mut from = 0;
        while from < blocks {
            let until = from + self.profile_blocks_per_read;
            let mut arrays: ProfileArrays = sqlx::query_as(&sql)
                .bind(program_id)
                .bind(as_of)
                .bind(from)
                .bind(until)
                .fetch_one(&mut *tx)
                .await?;
            profiles
                .bought_since
                .extend(arrays.bought_since.take().unwrap_or_default());
            profiles.settled.append(arrays.into());
            from = until;
        }
        tx.commit().await?;
        Ok(profiles)
    }

    #[tracing::instrument(skip_all, fields(%program_id, customers = customer_ids.len()))]
    async fn customer_profiles(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, PurchaseProfile)>, ScoringError> {
        let rows: Vec<ProfileRow> = sqlx::query_as(&format!(
            "SELECT {PROFILE_COLUMNS} FROM tier_states
             WHERE program_id = $1 AND customer_id = ANY($2) AND last_purchase_at IS NOT NULL"
        ))
        .bind(program_id)
        .bind(customer_ids)
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
             WHERE program_id = $1 AND customer_id = ANY($2) AND refunded_minor < amount_minor AND occurred_at <= $3",
        )
        .bind(program_id)
        .bind(customer_ids)
        .bind(as_of)
        .fetch_all(&self.pool)
        .await?;
        Ok(dated_purchases(rows))
    }

    #[tracing::instrument(skip_all, fields(program_id = %model.program_id))]
    async fn store_value_model(&self, model: &ValueModel) -> Result<i64, ScoringError> {
        let sql = format!(
            "INSERT INTO value_models ({VALUE_MODEL_COLUMNS})
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
             FROM value_models WHERE program_id = $1
             RETURNING version"
        );
        let insert = sqlx::query_scalar(&sql).bind(model.program_id);
        Ok(ValueModelParameters::from(&model.fitted)
            .bind(insert)
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
        let row: Option<ValueModelRow> = sqlx::query_as(&format!(
            "SELECT {VALUE_MODEL_COLUMNS} FROM value_models WHERE program_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(program_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ValueModel::from))
    }
}
