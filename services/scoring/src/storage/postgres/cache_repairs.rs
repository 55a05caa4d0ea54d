//! The queue of cache writes to repair (migration `20261126100009_tier_cache.sql` says why).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::PgScoringStore;
use crate::domain::ports::CacheRepairQueue;
use crate::{ScoringError, storage::CacheRepair};

/// Queues a repair in the transaction on `connection`; returns its id.
pub(super) async fn queue(
    connection: &mut PgConnection,
    program_id: Uuid,
    generation: i32,
    customer_ids: &[Uuid],
) -> Result<i64, ScoringError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO cache_repairs (program_id, cache_generation, customer_ids) VALUES ($1, $2, $3)
         RETURNING id",
    )
    .bind(program_id)
    .bind(generation)
    .bind(customer_ids)
    .fetch_one(connection)
    .await?)
}

#[async_trait]
impl CacheRepairQueue for PgScoringStore {
    #[tracing::instrument(skip(self))]
    async fn cache_repairs(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<CacheRepair>, ScoringError> {
        let rows: Vec<(i64, Uuid, i32, Vec<Uuid>)> = sqlx::query_as(
            "SELECT id, program_id, cache_generation, customer_ids FROM cache_repairs
             WHERE queued_at < $1 ORDER BY queued_at LIMIT $2",
        )
        .bind(queued_before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, program_id, generation, customer_ids)| CacheRepair {
                id,
                program_id,
                generation,
                customer_ids,
            })
            .collect())
    }

    #[tracing::instrument(skip(self))]
    async fn cache_repaired(&self, ids: &[i64]) -> Result<(), ScoringError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM cache_repairs WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
