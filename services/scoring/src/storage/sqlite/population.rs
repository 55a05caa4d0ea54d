//! Reads over a program's whole population in SQLite: RFM inputs and cut points, audiences,
//! policy simulation, tier counts. The development mode's population is small (thousands), so
//! where Postgres aggregates in SQL these fold rows here, with the domain's own window and rank
//! functions.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    rows::{BUCKET_COLUMNS, BucketRow, days_between, instant, micros, rank},
};
use crate::{
    ScoringError,
    domain::{
        decision::qualified_rank,
        policy::PolicyRules,
        scores::{CutPoints, RfmValues, quintile_boundaries},
        window::{Bucket, Totals, months_at},
    },
    storage::{RfmInput, SimulationCell},
};

/// A member's RFM inputs and the tier shown, as one row. Parameters: ?1 program, ?4 first month
/// (or NULL), ?5 last month, ?6 the instant; the caller adds the WHERE clause.
const RFM_SELECT: &str = "SELECT m.customer_id, m.joined_at,
        COALESCE(CASE WHEN s.override_until > ?6 THEN s.override_rank ELSE s.earned_rank END, 0) AS shown_rank,
        (SELECT max(c.occurred_at) FROM counted_purchases c
         WHERE c.program_id = ?1 AND c.customer_id = m.customer_id AND c.refunded_minor < c.amount_minor) AS last_purchase,
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
                joined_at: instant(self.joined_at),
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

impl SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    pub(super) async fn select_quintiles(
        &self,
        program_id: Uuid,
        from: Option<NaiveDate>,
        to: NaiveDate,
        as_of: DateTime<Utc>,
    ) -> Result<(CutPoints, i64), ScoringError> {
        let mut tx = self.pool.begin().await?;
        let buyers: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT customer_id, max(occurred_at) FROM counted_purchases
             WHERE program_id = ?1 AND refunded_minor < amount_minor GROUP BY customer_id",
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
    pub(super) async fn insert_cut_points(
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
    pub(super) async fn select_cut_points(
        &self,
        program_id: Uuid,
    ) -> Result<Option<(i64, CutPoints)>, ScoringError> {
        let row: Option<(i64, Json<CutPoints>)> = sqlx::query_as(
            "SELECT version, cut_points FROM rfm_cut_points WHERE program_id = ?1 ORDER BY version DESC LIMIT 1",
        )
        .bind(program_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(version, cuts)| (version, cuts.0)))
    }

    #[tracing::instrument(skip_all, fields(customers = customer_ids.len()))]
    pub(super) async fn select_rfm_inputs(
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
    pub(super) async fn select_audience_page(
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

    #[tracing::instrument(skip_all, fields(program_id = %program_id))]
    pub(super) async fn simulate_query(
        &self,
        program_id: Uuid,
        current: Option<&PolicyRules>,
        simulated: &PolicyRules,
        now: DateTime<Utc>,
    ) -> Result<Vec<SimulationCell>, ScoringError> {
        let mut tx = self.pool.begin().await?;
        let members: Vec<(Uuid, i64, i64)> = sqlx::query_as(
            "SELECT m.customer_id, m.joined_at,
                    COALESCE(CASE WHEN s.override_until > ?2 THEN s.override_rank ELSE s.earned_rank END, 0)
             FROM members m LEFT JOIN tier_states s ON s.program_id = ?1 AND s.customer_id = m.customer_id
             WHERE NOT m.erased",
        )
        .bind(program_id)
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await?;
        let sql = format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE program_id = ?1");
        let mut buckets: HashMap<Uuid, Vec<Bucket>> = HashMap::new();
        for row in sqlx::query_as::<_, BucketRow>(&sql)
            .bind(program_id)
            .fetch_all(&mut *tx)
            .await?
        {
            buckets
                .entry(row.customer_id)
                .or_default()
                .push(Bucket::from(row));
        }
        tx.commit().await?;
        let current = current.unwrap_or(simulated);
        let mut cells: BTreeMap<(u32, u32), SimulationCell> = BTreeMap::new();
        for (customer_id, joined_at, shown) in members {
            let joined_at = instant(joined_at);
            let own = buckets.get(&customer_id).map_or(&[][..], Vec::as_slice);
            let window = |rules: &PolicyRules| {
                Totals::over(
                    own,
                    months_at(rules.window, now, rules.time_zone, joined_at),
                )
            };
            let under_simulated = window(simulated);
            let (current_rank, simulated_rank) =
                (rank(shown), qualified_rank(simulated, &under_simulated));
            let cell = cells
                .entry((current_rank, simulated_rank))
                .or_insert(SimulationCell {
                    current_rank,
                    simulated_rank,
                    customers: 0,
                    current_spend: 0,
                    simulated_spend: 0,
                });
            cell.customers += 1;
            cell.current_spend += window(current).net_spend_minor;
            cell.simulated_spend += under_simulated.net_spend_minor;
        }
        Ok(cells.into_values().collect())
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_customers_with_state(
        &self,
        program_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM tier_states WHERE program_id = ?1 AND (?2 IS NULL OR customer_id > ?2)
             ORDER BY customer_id LIMIT ?3",
        )
        .bind(program_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_tier_counts(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<(u32, i64)>, ScoringError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT CASE WHEN override_until > ?2 THEN override_rank ELSE earned_rank END AS shown, count(*)
             FROM tier_states WHERE program_id = ?1 GROUP BY shown
             UNION ALL
             SELECT 0, count(*) FROM members m
             WHERE NOT EXISTS (SELECT 1 FROM tier_states s WHERE s.program_id = ?1 AND s.customer_id = m.customer_id)",
        )
        .bind(program_id)
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
        let mut counts: BTreeMap<u32, i64> = BTreeMap::new();
        for (shown, count) in rows {
            *counts.entry(rank(shown)).or_default() += count;
        }
        Ok(counts.into_iter().collect())
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn select_ended_overrides(
        &self,
        program_id: Uuid,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Uuid>, ScoringError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM tier_states WHERE program_id = ?1 AND override_until <= ?2 ORDER BY customer_id LIMIT ?3",
        )
        .bind(program_id)
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
