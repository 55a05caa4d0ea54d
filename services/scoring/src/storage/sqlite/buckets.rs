//! Monthly buckets in SQLite: adding purchases' deltas, and rebuilding a program's buckets from
//! its counted purchases (months in a policy's time zone, computed here rather than in SQL).

use async_trait::async_trait;
use std::collections::BTreeMap;
use tierline_runtime::instant::from_micros;

use chrono_tz::Tz;
use sqlx::SqliteConnection;
use uuid::Uuid;

use tierline_runtime::sqlite::rows_param;

use super::SqliteScoringStore;
use crate::domain::ports::BucketRebuilds;
use crate::{
    ScoringError,
    domain::{accrual::BucketDelta, feed_batch::Pair, month::Month},
    storage::RebuiltChunk,
};

/// Adds each delta to its customer's bucket of its month, in one statement.
pub(super) async fn add_to_buckets(
    connection: &mut SqliteConnection,
    deltas: &[(Pair, BucketDelta)],
) -> Result<(), ScoringError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = deltas
        .iter()
        .map(|((program_id, customer_id), delta)| {
            (
                program_id,
                customer_id,
                delta.month.first_day(),
                delta.net_spend_minor,
                delta.points,
                delta.purchases,
            )
        })
        .collect();
    sqlx::query(
        "INSERT INTO buckets (program_id, customer_id, month, net_spend_minor, points, purchases)
         SELECT unhex(value ->> 0, '-'), unhex(value ->> 1, '-'), value ->> 2, value ->> 3, value ->> 4, value ->> 5
         FROM json_each(?1) WHERE true
         ON CONFLICT (program_id, customer_id, month) DO UPDATE SET
             net_spend_minor = buckets.net_spend_minor + excluded.net_spend_minor,
             points = buckets.points + excluded.points,
             purchases = buckets.purchases + excluded.purchases",
    )
    .bind(rows_param(&rows))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

#[async_trait]
impl BucketRebuilds for SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    async fn start_bucket_rebuild(&self, program_id: Uuid) -> Result<i32, ScoringError> {
        let mut write = self.begin_write().await?;
        let generation: i32 = sqlx::query_scalar(
            "UPDATE programs SET cache_generation = cache_generation + 1 WHERE id = ?1
             RETURNING cache_generation",
        )
        .bind(program_id)
        .fetch_one(&mut *write.tx)
        .await?;
        write.commit().await?;
        self.program_changed(program_id);
        Ok(generation)
    }

    #[tracing::instrument(skip(self))]
    async fn rebuild_bucket_chunk(
        &self,
        program_id: Uuid,
        zone: Tz,
        after: Option<Uuid>,
        limit: u32,
        repair_generation: Option<i32>,
    ) -> Result<RebuiltChunk, ScoringError> {
        // The write lock holds off the feed consumer's bucket writes until the chunk commits.
        let mut write = self.begin_write().await?;
        let after = after.unwrap_or(Uuid::nil());
        let customers: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT customer_id FROM counted_purchases WHERE program_id = ?1 AND customer_id > ?2
             ORDER BY customer_id LIMIT ?3",
        )
        .bind(program_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *write.tx)
        .await?;
        // The last chunk reaches to the end of the id space.
        let through = match customers.last() {
            Some(last) if customers.len() == limit as usize => *last,
            _ => Uuid::max(),
        };
        let purchases: Vec<(Uuid, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT customer_id, occurred_at, amount_minor, refunded_minor, points FROM counted_purchases
             WHERE program_id = ?1 AND customer_id > ?2 AND customer_id <= ?3",
        )
        .bind(program_id)
        .bind(after)
        .bind(through)
        .fetch_all(&mut *write.tx)
        .await?;
        // The same arithmetic as the Postgres rebuild: refunded points in proportion, rounded
        // toward zero; a purchase counts unless fully refunded.
        let mut totals: BTreeMap<(Uuid, Month), BucketDelta> = BTreeMap::new();
        for (customer_id, occurred_at, amount, refunded, points) in purchases {
            let month = Month::of(from_micros(occurred_at), zone);
            let bucket = totals.entry((customer_id, month)).or_insert(BucketDelta {
                month,
                net_spend_minor: 0,
                points: 0,
                purchases: 0,
            });
            bucket.net_spend_minor += amount - refunded;
            bucket.points += points - points * refunded / amount.max(1);
            bucket.purchases += i64::from(refunded < amount);
        }
        sqlx::query(
            "DELETE FROM buckets WHERE program_id = ?1 AND customer_id > ?2 AND customer_id <= ?3",
        )
        .bind(program_id)
        .bind(after)
        .bind(through)
        .execute(&mut *write.tx)
        .await?;
        let deltas: Vec<(Pair, BucketDelta)> = totals
            .into_iter()
            .map(|((customer_id, _), delta)| ((program_id, customer_id), delta))
            .collect();
        add_to_buckets(&mut write.tx, &deltas).await?;
        // Purchase days move with the zone too.
        let pairs: Vec<_> = customers
            .iter()
            .map(|customer| ((program_id, *customer), zone))
            .collect();
        super::purchase_profiles::recount(&mut write.tx, &pairs).await?;
        let repair = match repair_generation {
            Some(generation) if !customers.is_empty() => Some(
                super::cache_repairs::queue(&mut write.tx, program_id, generation, &customers)
                    .await?,
            ),
            _ => None,
        };
        write.commit().await?;
        Ok(RebuiltChunk { customers, repair })
    }
}
