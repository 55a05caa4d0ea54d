//! The lifecycle sweep in SQLite: every member classified with the domain's own thresholds,
//! the changes recorded in the tier-change feed and the new states stored, in one transaction.

use async_trait::async_trait;
use std::collections::HashMap;
use tierline_runtime::instant::{from_micros, micros};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{SqliteScoringStore, days_between};
use crate::domain::ports::Lifecycles;
use crate::{
    ScoringError,
    domain::{policy::LifecycleSettings, scores::lifecycle},
};

#[async_trait]
impl Lifecycles for SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    async fn sweep_lifecycles(
        &self,
        program_id: Uuid,
        settings: LifecycleSettings,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        let mut write = self.begin_write().await?;
        let members: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT customer_id, joined_at FROM members WHERE NOT erased")
                .fetch_all(&mut *write.tx)
                .await?;
        let last_purchases: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT customer_id, last_purchase_at FROM purchase_profiles WHERE program_id = ?1",
        )
        .bind(program_id)
        .fetch_all(&mut *write.tx)
        .await?
        .into_iter()
        .collect();
        let stored: HashMap<Uuid, String> = sqlx::query_as::<_, (Uuid, String)>(
            "SELECT customer_id, state FROM lifecycle_states WHERE program_id = ?1",
        )
        .bind(program_id)
        .fetch_all(&mut *write.tx)
        .await?
        .into_iter()
        .collect();
        let mut changed = 0_i64;
        for (customer_id, joined_at) in members {
            let days = last_purchases
                .get(&customer_id)
                .map(|last| days_between(*last, now));
            let state =
                lifecycle((now - from_micros(joined_at)).num_days(), days, &settings).as_str();
            let from = stored.get(&customer_id).map(String::as_str);
            if from == Some(state) {
                continue;
            }
            let seq = write.next_seq().await?;
            sqlx::query(
                "INSERT INTO lifecycle_changes (id, seq, xid, program_id, customer_id, from_state, to_state,
                                                days_since_last_purchase, occurred_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .bind(Uuid::now_v7())
            .bind(seq)
            .bind(write.xid)
            .bind(program_id)
            .bind(customer_id)
            .bind(from)
            .bind(state)
            .bind(days.map(|days| i32::try_from(days).unwrap_or(i32::MAX)))
            .bind(micros(now))
            .execute(&mut *write.tx)
            .await?;
            sqlx::query(
                "INSERT INTO lifecycle_states (program_id, customer_id, state, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (program_id, customer_id) DO UPDATE SET state = excluded.state, since = excluded.since",
            )
            .bind(program_id)
            .bind(customer_id)
            .bind(state)
            .bind(micros(now))
            .execute(&mut *write.tx)
            .await?;
            changed += 1;
        }
        write.commit().await?;
        Ok(changed)
    }
}
