//! Policy simulation in SQLite: every member's tier now against the tier the simulated rules
//! would give, folded here with the domain's own window and rank functions (the development
//! mode's population is thousands, not millions).

use std::collections::{BTreeMap, HashMap};
use tierline_runtime::instant::{from_micros, micros};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    rows::{BUCKET_COLUMNS, BucketRow, rank},
};
use crate::{
    ScoringError,
    domain::{
        decision::qualified_rank,
        policy::PolicyRules,
        ports::{SimulationCell, Simulations},
        window::{Bucket, Totals, months_at},
    },
};

#[async_trait]
impl Simulations for SqliteScoringStore {
    #[tracing::instrument(skip_all, fields(program_id = %program_id))]
    async fn simulate(
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
            let joined_at = from_micros(joined_at);
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
}
