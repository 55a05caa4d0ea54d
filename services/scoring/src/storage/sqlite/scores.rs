//! RFM scoring in SQLite: cut points over the population, the inputs of members and audiences.
//! The development mode's population is small (thousands), so where Postgres aggregates in SQL
//! these fold rows here, with the domain's own functions.

use async_trait::async_trait;
use std::collections::HashMap;
use tierline_runtime::instant::{from_micros, micros};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{SqliteScoringStore, days_between, rows::rank};
use crate::domain::ports::ScoreRecords;
use crate::{
    ScoringError,
    domain::scores::{CutPoints, RfmValues, quintile_boundaries},
    storage::RfmInput,
};

/// A member's RFM inputs and the tier shown, as one row. Parameters: ?1 program, ?4 first month
/// (or NULL), ?5 last month, ?6 the instant; the caller adds the WHERE clause.
const RFM_SELECT: &str = "SELECT m.customer_id, m.joined_at,
        COALESCE(CASE WHEN s.override_until > ?6 THEN s.override_rank ELSE s.earned_rank END, 0) AS shown_rank,
        (SELECT f.last_purchase_at FROM purchase_profiles f
         WHERE f.program_id = ?1 AND f.customer_id = m.customer_id) AS last_purchase,
        (SELECT COALESCE(sum(b.purchases), 0) FROM buckets b WHERE b.program_id = ?1 AND b.customer_id = m.customer_id
         AND (?4 IS NULL OR b.month >= ?4) AND b.month <= ?5) AS frequency,
        (SELECT COALESCE(sum(b.net_spend_minor), 0) FROM buckets b WHERE b.program_id = ?1 AND b.customer_id = m.customer_id
         AND (?4 IS NULL OR b.month >= ?4) AND b.month <= ?5) AS monetary,
        (SELECT COALESCE(sum(b.net_spend_minor), 0) FROM buckets b
         WHERE b.program_id = ?1 AND b.customer_id = m.customer_id) AS lifetime
    FROM members m LEFT JOIN tier_states s ON s.program_id = ?1 AND s.customer_id = m.customer_id";

#[derive(sqlx::FromRow)]
struct RfmRow {
    customer_id: Uuid,
    joined_at: i64,
    shown_rank: i64,
    last_purchase: Option<i64>,
    frequency: i64,
    monetary: i64,
    lifetime: i64,
}

impl RfmRow {
    fn input(self, as_of: DateTime<Utc>) -> (RfmInput, u32) {
        (
            RfmInput {
                customer_id: self.customer_id,
                joined_at: from_micros(self.joined_at),
                values: RfmValues {
                    recency_days: self.last_purchase.map(|last| days_between(last, as_of)),
                    frequency: self.frequency,
                    monetary: self.monetary,
                },
                historic_value: self.lifetime,
            },
            rank(self.shown_rank),
        )
    }
}

#[async_trait]
impl ScoreRecords for SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    async fn compute_cut_points(
        &self,
        program_id: Uuid,
        from: Option<NaiveDate>,
        to: NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<(CutPoints, i64), ScoringError> {
        let mut tx = self.pool.begin().await?;
        let buyers: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT customer_id, last_purchase_at FROM purchase_profiles WHERE program_id = ?1",
        )
        .bind(program_id)
        .fetch_all(&mut *tx)
        .await?;
        let windows: HashMap<Uuid, (i64, i64)> = sqlx::query_as::<_, (Uuid, i64, i64)>(
            "SELECT customer_id, sum(purchases), sum(net_spend_minor) FROM buckets
             WHERE program_id = ?1 AND (?2 IS NULL OR month >= ?2) AND month <= ?3 GROUP BY customer_id",
        )
        .bind(program_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(customer_id, frequency, monetary)| (customer_id, (frequency, monetary)))
        .collect();
        tx.commit().await?;
        // Only buyers count, as in Postgres's query (recency joined to the window totals).
        let mut recency = Vec::with_capacity(buyers.len());
        let mut frequency = Vec::with_capacity(buyers.len());
        let mut monetary = Vec::with_capacity(buyers.len());
        for (customer_id, last) in &buyers {
            let (f, m) = windows.get(customer_id).copied().unwrap_or_default();
            recency.push(days_between(*last, as_of));
            frequency.push(f);
            monetary.push(m);
        }
        let cuts = CutPoints {
            recency: quintile_boundaries(&mut recency),
            frequency: quintile_boundaries(&mut frequency),
            monetary: quintile_boundaries(&mut monetary),
        };
        Ok((cuts, i64::try_from(buyers.len()).unwrap_or(i64::MAX)))
    }

    #[tracing::instrument(skip(self, cuts))]
    async fn store_cut_points(
        &self,
        program_id: Uuid,
        cuts: &CutPoints,
        population: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        let mut write = self.begin_write().await?;
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO rfm_cut_points (program_id, version, cut_points, population, computed_at)
             SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3, ?4 FROM rfm_cut_points WHERE program_id = ?1
             RETURNING version",
        )
        .bind(program_id)
        .bind(Json(cuts))
        .bind(population)
        .bind(micros(now))
        .fetch_one(&mut *write.tx)
        .await?;
        write.tx.commit().await?;
        Ok(version)
    }

    #[tracing::instrument(skip(self))]
    async fn cut_points(&self, program_id: Uuid) -> Result<Option<(i64, CutPoints)>, ScoringError> {
        let row: Option<(i64, Json<CutPoints>)> = sqlx::query_as(
            "SELECT version, cut_points FROM rfm_cut_points WHERE program_id = ?1 ORDER BY version DESC LIMIT 1",
        )
        .bind(program_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(version, cuts)| (version, cuts.0)))
    }

    #[tracing::instrument(skip_all, fields(customers = customer_ids.len()))]
    async fn rfm_inputs(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        from: Option<NaiveDate>,
        to: NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<RfmInput>, ScoringError> {
        let sql = format!("{RFM_SELECT} WHERE m.customer_id = ?2 LIMIT ?3");
        let mut tx = self.pool.begin().await?;
        let mut inputs = Vec::with_capacity(customer_ids.len());
        for &customer_id in customer_ids {
            let row: Option<RfmRow> = sqlx::query_as(&sql)
                .bind(program_id)
                .bind(customer_id)
                .bind(1_i64)
                .bind(from)
                .bind(to)
                .bind(micros(as_of))
                .fetch_optional(&mut *tx)
                .await?;
            inputs.extend(row.map(|row| row.input(as_of).0));
        }
        tx.commit().await?;
        Ok(inputs)
    }

    /// One page of non-erased members after `after`, with their tier shown and RFM inputs.
    #[tracing::instrument(skip(self))]
    async fn audience_page(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
        from: Option<NaiveDate>,
        to: NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(RfmInput, u32)>, ScoringError> {
        let sql = format!(
            "{RFM_SELECT} WHERE NOT m.erased AND (?2 IS NULL OR m.customer_id > ?2) ORDER BY m.customer_id LIMIT ?3"
        );
        let rows: Vec<RfmRow> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(after)
            .bind(i64::from(limit))
            .bind(from)
            .bind(to)
            .bind(micros(as_of))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (mut input, shown) = row.input(as_of);
                // As the Postgres page: the lifetime value is not part of an audience.
                input.historic_value = 0;
                (input, shown)
            })
            .collect())
    }
}
