//! Policy simulation as one aggregate query: each member's totals under the simulated window
//! (subscripts of their state's running totals, `months.rs`), their qualified tier under the
//! simulated rules (a CASE ladder built from the validated thresholds), against the tier shown
//! now, grouped by (current, simulated). A million members
//! never leave Postgres. A large membership is split into parts of the customer-id space that
//! run at once on connections of their own, over one snapshot, and their cells are added up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    PgScoringStore,
    months::window_sum,
    rows::rank,
    rules_sql::{ladder, window_months},
};
use crate::domain::ports::Simulations;
use crate::{
    ScoringError,
    domain::policy::{Metric, PolicyRules},
    storage::SimulationCell,
};

/// The simulation's column of each metric's total.
fn column(metric: Metric) -> &'static str {
    match metric {
        Metric::NetSpend => "sim_net",
        Metric::Points => "sim_points",
        Metric::PurchaseCount => "sim_count",
    }
}

/// How many parts of the customer-id space a simulation sums at once, each on a connection of
/// its own: Postgres runs one statement on one core, and a million members took 4.0 s in one
/// statement against 2.0 to 2.3 s in two on this 2-core machine (docs/BENCHMARKS.md).
const PARTS: usize = 2;

/// Below this many members (the planner's estimate) one statement is quicker than finding the
/// parts and opening more transactions.
pub(super) const PARTS_FROM_MEMBERS: f32 = 200_000.0;

/// About how many members the sample that places the splits reads.
const SPLIT_SAMPLE: f32 = 20_000.0;

/// What every part's transaction sets before its statement.
const PART_SETTINGS: [&str; 3] = [
    // Compiling this one-off plan costs more than it saves (0.2 to 0.5 s measured).
    "SET LOCAL jit = off",
    // The members and the tier states (their keys in customer order) are walked side by side
    // (a merge join) rather than hashed half a million at a time.
    "SET LOCAL enable_hashjoin = off",
    // One part per connection is the parallelism; workers inside a part only compete with the
    // other parts for the same cores.
    "SET LOCAL max_parallel_workers_per_gather = 0",
];

impl PgScoringStore {
    /// Where the parts of a simulation split the customer-id space: `PARTS - 1` ids, in order,
    /// from a sample of about [`SPLIT_SAMPLE`] members' pages (customer ids are time-ordered,
    /// so halving the id space would not halve the members); none for a small membership.
    async fn simulation_splits(&self) -> Result<Vec<Uuid>, ScoringError> {
        let members: f32 =
            sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = to_regclass('members')")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0.0);
        if members < self.simulation_in_parts_from {
            return Ok(Vec::new());
        }
        let fractions: Vec<f64> = (1..PARTS).map(|part| part as f64 / PARTS as f64).collect();
        // A never-analysed table estimates -1 members: read it all.
        let percent = (100.0 * SPLIT_SAMPLE / members.max(1.0)).clamp(0.1, 100.0);
        let splits: Option<Vec<Uuid>> = sqlx::query_scalar(
            "SELECT percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY customer_id)
             FROM members TABLESAMPLE SYSTEM ($2)",
        )
        .bind(&fractions)
        .bind(percent)
        .fetch_one(&self.pool)
        .await?;
        let mut splits = splits.unwrap_or_default();
        splits.dedup();
        Ok(splits)
    }
}

/// The simulation of the members whose id is in `($3, $4]`, grouped by (current, simulated)
/// tier; `$1` the program, `$2` the instant the tier shown is read at.
fn simulation_sql(
    current: Option<&PolicyRules>,
    simulated: &PolicyRules,
    now: DateTime<Utc>,
) -> String {
    let (simulated_first, simulated_last) = window_months(simulated, now, "m.joined_at");
    let (current_first, current_last) = current.map_or_else(
        || (simulated_first.clone(), simulated_last.clone()),
        |rules| window_months(rules, now, "m.joined_at"),
    );
    let simulated_sum = |through: &str| window_sum("s", through, &simulated_first, &simulated_last);
    // The part's range is repeated on the tier states, though the join implies it: the planner
    // reads them in a sort it does not bound by the join's other side, and each part read and
    // sorted every state of the program (1.78–1.80 s against 1.65–1.67 s for half of a million
    // members in `psql`, docs/BENCHMARKS.md). A member without a state has no months: every
    // sum is 0.
    format!(
        "WITH totals AS (
             SELECT COALESCE({sim_net}, 0) AS sim_net, COALESCE({sim_points}, 0) AS sim_points,
                    COALESCE({sim_count}, 0) AS sim_count, COALESCE({cur_net}, 0) AS cur_net,
                    COALESCE(CASE WHEN s.override_until > $2 THEN s.override_rank ELSE s.earned_rank END, 0) AS current
             FROM members m LEFT JOIN tier_states s ON s.program_id = $1 AND s.customer_id = m.customer_id
                                                   AND s.customer_id > $3 AND s.customer_id <= $4
             WHERE NOT m.erased AND m.customer_id > $3 AND m.customer_id <= $4)
         SELECT current, {ladder} AS simulated, count(*)::bigint AS customers, sum(cur_net)::bigint AS current_spend,
                sum(sim_net)::bigint AS simulated_spend
         FROM totals GROUP BY 1, 2",
        sim_net = simulated_sum("spend_through"),
        sim_points = simulated_sum("points_through"),
        sim_count = simulated_sum("purchases_through"),
        cur_net = window_sum("s", "spend_through", &current_first, &current_last),
        ladder = ladder(simulated, |metric| column(metric).to_owned()),
    )
}

#[async_trait]
impl Simulations for PgScoringStore {
    #[tracing::instrument(skip_all, fields(program_id = %program_id))]
    async fn simulate(
        &self,
        program_id: Uuid,
        current: Option<&PolicyRules>,
        simulated: &PolicyRules,
        now: DateTime<Utc>,
    ) -> Result<Vec<SimulationCell>, ScoringError> {
        let sql = simulation_sql(current, simulated, now);
        let splits = self.simulation_splits().await?;
        // Each part covers (after, through]; no customer id is nil or the greatest.
        let bounds: Vec<(Uuid, Uuid)> = std::iter::once(Uuid::nil())
            .chain(splits.iter().copied())
            .zip(splits.iter().copied().chain(std::iter::once(Uuid::max())))
            .collect();
        // The first part's transaction exports its snapshot and the others import it, so every
        // part reads the same committed state, as one statement would (pg_dump's parallel mode
        // does the same).
        let mut first = self.begin_snapshot().await?;
        let snapshot: Option<String> = if bounds.len() > 1 {
            Some(
                sqlx::query_scalar("SELECT pg_export_snapshot()")
                    .fetch_one(&mut *first)
                    .await?,
            )
        } else {
            None
        };
        // Every part's transaction is ready (the snapshot imported) before any statement runs,
        // so the exporting one is still open whatever finishes first.
        let mut parts = vec![first];
        for _ in 1..bounds.len() {
            let mut tx = self.begin_snapshot().await?;
            let snapshot = snapshot.as_deref().unwrap_or_default();
            // An id Postgres made (hex digits and dashes), written in: SET takes no parameters.
            if !snapshot.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(ScoringError::Internal(format!(
                    "unexpected snapshot id {snapshot:?}"
                )));
            }
            sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
                .execute(&mut *tx)
                .await?;
            parts.push(tx);
        }
        let sql = &sql;
        let rows = futures::future::try_join_all(parts.into_iter().zip(bounds).map(
            |(mut tx, (after, through))| async move {
                for setting in PART_SETTINGS {
                    sqlx::query(setting).execute(&mut *tx).await?;
                }
                let rows: Vec<(i32, i32, i64, i64, i64)> = sqlx::query_as(sql)
                    .bind(program_id)
                    .bind(now)
                    .bind(after)
                    .bind(through)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, ScoringError>(rows)
            },
        ))
        .await?;
        let mut cells: Vec<SimulationCell> = Vec::new();
        for (current, simulated, customers, current_spend, simulated_spend) in
            rows.into_iter().flatten()
        {
            let (current_rank, simulated_rank) = (rank(current), rank(simulated));
            match cells.iter_mut().find(|cell| {
                (cell.current_rank, cell.simulated_rank) == (current_rank, simulated_rank)
            }) {
                Some(cell) => {
                    cell.customers += customers;
                    cell.current_spend += current_spend;
                    cell.simulated_spend += simulated_spend;
                }
                None => cells.push(SimulationCell {
                    current_rank,
                    simulated_rank,
                    customers,
                    current_spend,
                    simulated_spend,
                }),
            }
        }
        Ok(cells)
    }
}
