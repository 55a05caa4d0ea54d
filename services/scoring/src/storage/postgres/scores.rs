//! RFM inputs and cut points in Postgres. Quintiles of the whole population are computed by
//! Postgres (`percentile_disc`), so a million customers never travel to the service; recency
//! counts from each buyer's purchase profile, one row per customer, not from every purchase.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{PgScoringStore, months::window_sum, rows::rank};
use crate::domain::ports::ScoreRecords;
use crate::{
    ScoringError,
    domain::scores::{CutPoints, RfmValues},
    storage::RfmInput,
};

fn boundaries(values: Option<Vec<i64>>) -> [i64; 4] {
    let values = values.unwrap_or_default();
    [0, 1, 2, 3].map(|i| values.get(i).copied().unwrap_or(0))
}

#[async_trait]
impl ScoreRecords for PgScoringStore {
    #[tracing::instrument(skip(self))]
    async fn compute_cut_points(
        &self,
        program_id: Uuid,
        from: Option<NaiveDate>,
        to: NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<(CutPoints, i64), ScoringError> {
        // The three sets of boundaries (recency, frequency, monetary) and the population.
        type Quintiles = (Option<Vec<i64>>, Option<Vec<i64>>, Option<Vec<i64>>, i64);
        // The population is every buyer (a purchase profile); `percentile_disc` of a quintile q
        // over n values is the value ranked ceil(q * n) (float8, as Postgres and the domain's
        // `quintile_boundaries` count it). Buyers without a purchase in the window are zeros
        // at the bottom of frequency and monetary, so those are ranked among the window's
        // buyers alone, from the top: n - ceil(q * n) + 1, zero past the last (a purchase that
        // counts has a positive amount, as the customer service takes no other). Recency days
        // fall as the last purchase rises: their quintiles are those of the last purchase
        // instants in descending order, converted after, not a million conversions. Each
        // state's window totals are two subscripts of its running totals (`months.rs`), on the
        // same row as its last purchase: one pass over the states gives all three, where a
        // pass for the population and another for the window cost 10-20 % more
        // (docs/BENCHMARKS.md).
        let row: Quintiles = sqlx::query_as(&format!(
            "WITH buyers AS (
                 SELECT count(*) AS n,
                        percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY last_purchase_at DESC) AS last,
                        array_agg(frequency ORDER BY frequency DESC) FILTER (WHERE frequency > 0) AS frequency,
                        array_agg(monetary ORDER BY monetary DESC) FILTER (WHERE frequency > 0) AS monetary
                 FROM (SELECT s.last_purchase_at, {frequency} AS frequency, {monetary} AS monetary
                       FROM tier_states s WHERE s.program_id = $1 AND s.last_purchase_at IS NOT NULL) w),
             ranks AS (
                 SELECT q.i, (b.n - ceil(q.fraction * b.n) + 1)::int AS from_top, b.last[q.i] AS last
                 FROM buyers b, unnest(ARRAY[0.2, 0.4, 0.6, 0.8]::float8[]) WITH ORDINALITY AS q(fraction, i))
             SELECT (SELECT array_agg(floor(extract(epoch FROM $4 - r.last) / 86400)::bigint ORDER BY r.i)
                     FROM ranks r WHERE r.last IS NOT NULL),
                    (SELECT array_agg(COALESCE(b.frequency[r.from_top], 0) ORDER BY r.i) FROM ranks r),
                    (SELECT array_agg(COALESCE(b.monetary[r.from_top], 0) ORDER BY r.i) FROM ranks r),
                    b.n
             FROM buyers b",
            frequency = window_sum("s", "purchases_through", "$2", "$3"),
            monetary = window_sum("s", "spend_through", "$2", "$3"),
        ))
        .bind(program_id)
        .bind(from)
        .bind(to)
        .bind(as_of)
        .fetch_one(&self.pool)
        .await?;
        let cuts = CutPoints {
            recency: boundaries(row.0),
            frequency: boundaries(row.1),
            monetary: boundaries(row.2),
        };
        Ok((cuts, row.3))
    }

    #[tracing::instrument(skip(self, cuts))]
    async fn store_cut_points(
        &self,
        program_id: Uuid,
        cuts: &CutPoints,
        population: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO rfm_cut_points (program_id, version, cut_points, population, computed_at)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4 FROM rfm_cut_points WHERE program_id = $1
             RETURNING version",
        )
        .bind(program_id)
        .bind(Json(cuts))
        .bind(population)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn cut_points(&self, program_id: Uuid) -> Result<Option<(i64, CutPoints)>, ScoringError> {
        let row: Option<(i64, Json<CutPoints>)> = sqlx::query_as(
            "SELECT version, cut_points FROM rfm_cut_points WHERE program_id = $1 ORDER BY version DESC LIMIT 1",
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
        #[derive(sqlx::FromRow)]
        struct Row {
            customer_id: Uuid,
            joined_at: DateTime<Utc>,
            recency_days: Option<i64>,
            frequency: i64,
            monetary: i64,
            lifetime: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT m.customer_id, m.joined_at,
                    floor(extract(epoch FROM $5 - s.last_purchase_at) / 86400)::bigint AS recency_days,
                    COALESCE({frequency}, 0)::bigint AS frequency, COALESCE({monetary}, 0)::bigint AS monetary,
                    COALESCE({lifetime}, 0)::bigint AS lifetime
             FROM members m LEFT JOIN tier_states s ON s.program_id = $1 AND s.customer_id = m.customer_id
             WHERE m.customer_id = ANY($2)",
            frequency = window_sum("s", "purchases_through", "$3", "$4"),
            monetary = window_sum("s", "spend_through", "$3", "$4"),
            lifetime = window_sum("s", "spend_through", "NULL", "'infinity'"),
        ))
        .bind(program_id)
        .bind(customer_ids)
        .bind(from)
        .bind(to)
        .bind(as_of)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| RfmInput {
                customer_id: row.customer_id,
                joined_at: row.joined_at,
                values: RfmValues {
                    recency_days: row.recency_days,
                    frequency: row.frequency,
                    monetary: row.monetary,
                },
                historic_value: row.lifetime,
            })
            .collect())
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
        #[derive(sqlx::FromRow)]
        struct Row {
            customer_id: Uuid,
            joined_at: DateTime<Utc>,
            shown_rank: i32,
            recency_days: Option<i64>,
            frequency: i64,
            monetary: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT m.customer_id, m.joined_at,
                    COALESCE(CASE WHEN s.override_until > $6 THEN s.override_rank ELSE s.earned_rank END, 0) AS shown_rank,
                    floor(extract(epoch FROM $6 - s.last_purchase_at) / 86400)::bigint AS recency_days,
                    COALESCE({frequency}, 0)::bigint AS frequency, COALESCE({monetary}, 0)::bigint AS monetary
             FROM members m
             LEFT JOIN tier_states s ON s.program_id = $1 AND s.customer_id = m.customer_id
             WHERE NOT m.erased AND m.customer_id > COALESCE($2, '00000000-0000-0000-0000-000000000000'::uuid)
             ORDER BY m.customer_id LIMIT $3",
            frequency = window_sum("s", "purchases_through", "$4", "$5"),
            monetary = window_sum("s", "spend_through", "$4", "$5"),
        ))
        .bind(program_id)
        .bind(after)
        .bind(i64::from(limit))
        .bind(from)
        .bind(to)
        .bind(as_of)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                (
                    RfmInput {
                        customer_id: row.customer_id,
                        joined_at: row.joined_at,
                        values: RfmValues {
                            recency_days: row.recency_days,
                            frequency: row.frequency,
                            monetary: row.monetary,
                        },
                        historic_value: 0,
                    },
                    rank(row.shown_rank),
                )
            })
            .collect())
    }
}
