//! The queue of cache writes to repair, in SQLite (the Postgres migration
//! `20261126100009_tier_cache.sql` says why).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::SqliteScoringStore;
use crate::domain::ports::CacheRepairQueue;
use crate::{ScoringError, storage::CacheRepair};
use tierline_runtime::instant::micros;

/// Queues a repair in the transaction on `connection`; returns its id.
pub(super) async fn queue(
    connection: &mut SqliteConnection,
    program_id: Uuid,
    generation: i32,
    customer_ids: &[Uuid],
) -> Result<i64, ScoringError> {
    let ids: Vec<u8> = customer_ids.iter().flat_map(|id| *id.as_bytes()).collect();
    Ok(sqlx::query_scalar(
        "INSERT INTO cache_repairs (program_id, cache_generation, customer_ids, queued_at)
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )
    .bind(program_id)
    .bind(generation)
    .bind(ids)
    .bind(micros(Utc::now()))
    .fetch_one(connection)
    .await?)
}

#[async_trait]
impl CacheRepairQueue for SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    async fn cache_repairs(
        &self,
        queued_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<CacheRepair>, ScoringError> {
        let rows: Vec<(i64, Uuid, i32, Vec<u8>)> = sqlx::query_as(
            "SELECT id, program_id, cache_generation, customer_ids FROM cache_repairs
             WHERE queued_at < ?1 ORDER BY queued_at LIMIT ?2",
        )
        .bind(micros(queued_before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, program_id, generation, ids)| CacheRepair {
                id,
                program_id,
                generation,
                customer_ids: ids
                    .chunks_exact(16)
                    .filter_map(|id| Uuid::from_slice(id).ok())
                    .collect(),
            })
            .collect())
    }

    #[tracing::instrument(skip(self))]
    async fn cache_repaired(&self, ids: &[i64]) -> Result<(), ScoringError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut write = self.begin_write().await?;
        for id in ids {
            sqlx::query("DELETE FROM cache_repairs WHERE id = ?1")
                .bind(id)
                .execute(&mut *write.tx)
                .await?;
        }
        write.commit().await
    }
}
