//! Monthly buckets in SQLite: adding a purchase's delta, and rebuilding a program's buckets from
//! its counted purchases (months in a policy's time zone, computed here rather than in SQL).

use std::collections::BTreeMap;

use chrono_tz::Tz;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::{SqliteScoringStore, rows::instant};
use crate::{
    ScoringError,
    domain::{accrual::BucketDelta, month::Month},
    storage::RebuiltChunk,
};

/// Adds `delta` to a customer's bucket of its month.
pub(super) async fn add_to_bucket(
    connection: &mut SqliteConnection,
    program_id: Uuid,
    customer_id: Uuid,
    delta: &BucketDelta,
) -> Result<(), ScoringError> {
    sqlx::query(
        "INSERT INTO buckets (program_id, customer_id, month, net_spend_minor, points, purchases) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (program_id, customer_id, month) DO UPDATE SET
             net_spend_minor = buckets.net_spend_minor + excluded.net_spend_minor,
             points = buckets.points + excluded.points,
             purchases = buckets.purchases + excluded.purchases",
    )
    .bind(program_id)
    .bind(customer_id)
    .bind(delta.month.first_day())
    .bind(delta.net_spend_minor)
    .bind(delta.points)
    .bind(delta.purchases)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

impl SqliteScoringStore {
    #[tracing::instrument(skip(self))]
    pub(super) async fn start_rebuild(&self, program_id: Uuid) -> Result<i32, ScoringError> {
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
    pub(super) async fn rebuild_chunk(
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
            let month = Month::of(instant(occurred_at), zone);
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
        for ((customer_id, _), delta) in &totals {
            add_to_bucket(&mut write.tx, program_id, *customer_id, delta).await?;
        }
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
