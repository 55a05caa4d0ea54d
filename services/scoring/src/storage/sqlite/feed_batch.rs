//! A feed batch's loads and writes on SQLite. The embedded store is in-process, so a statement
//! costs no round trip and a row at a time is as fast as a set; the transaction holds SQLite's
//! write lock, so the locks Postgres takes row by row are implied.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Write,
    buckets::add_to_bucket,
    rows::{BUCKET_COLUMNS, BucketRow, STATE_COLUMNS, StateRow, instant, micros},
    tx::{insert_history, upsert_member, upsert_state},
};
use crate::{
    ScoringError,
    domain::{
        accrual::CountedPurchase,
        feed_batch::{FeedKeys, FeedLoad, FeedWrites},
        month::Month,
        state::{Member, StoredState},
        window::Bucket,
    },
};

/// Loads what `keys` name.
pub(super) async fn load(write: &mut Write, keys: &FeedKeys) -> Result<FeedLoad, ScoringError> {
    let mut load = FeedLoad::default();
    for customer_id in &keys.customers {
        let row: Option<(i64, bool)> =
            sqlx::query_as("SELECT joined_at, erased FROM members WHERE customer_id = ?1")
                .bind(customer_id)
                .fetch_optional(&mut *write.tx)
                .await?;
        if let Some((joined_at, erased)) = row {
            load.members.push(Member {
                customer_id: *customer_id,
                joined_at: instant(joined_at),
                erased,
            });
        }
    }
    let state_sql = format!(
        "SELECT {STATE_COLUMNS} FROM tier_states WHERE program_id = ?1 AND customer_id = ?2"
    );
    for &(program_id, customer_id) in &keys.states {
        let row: Option<StateRow> = sqlx::query_as(&state_sql)
            .bind(program_id)
            .bind(customer_id)
            .fetch_optional(&mut *write.tx)
            .await?;
        if let Some(row) = row {
            load.states
                .push(((program_id, customer_id), StoredState::from(row)));
        }
    }
    let bucket_sql = format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE program_id = ?1 AND customer_id = ?2 ORDER BY month"
    );
    for &(program_id, customer_id) in &keys.states {
        let rows: Vec<BucketRow> = sqlx::query_as(&bucket_sql)
            .bind(program_id)
            .bind(customer_id)
            .fetch_all(&mut *write.tx)
            .await?;
        load.buckets.extend(
            rows.into_iter()
                .map(|row| ((program_id, customer_id), Bucket::from(row))),
        );
    }
    for &(program_id, zone) in &keys.programs {
        for activity_id in &keys.purchases {
            let row: Option<(Uuid, i64, i64, i64, i64, String, String)> = sqlx::query_as(
                "SELECT customer_id, occurred_at, amount_minor, refunded_minor, points, brand, sales_channel
                 FROM counted_purchases WHERE program_id = ?1 AND activity_id = ?2",
            )
            .bind(program_id)
            .bind(activity_id)
            .fetch_optional(&mut *write.tx)
            .await?;
            if let Some((
                customer_id,
                occurred_at,
                amount_minor,
                refunded_minor,
                points,
                brand,
                sales_channel,
            )) = row
            {
                let occurred_at = instant(occurred_at);
                load.counted.push((
                    program_id,
                    CountedPurchase {
                        activity_id: *activity_id,
                        customer_id,
                        occurred_at,
                        month: Month::of(occurred_at, zone),
                        amount_minor,
                        refunded_minor,
                        points,
                        brand,
                        sales_channel,
                    },
                ));
            }
        }
        for refund_id in &keys.refunds {
            let applied: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM applied_refunds WHERE program_id = ?1 AND activity_id = ?2",
            )
            .bind(program_id)
            .bind(refund_id)
            .fetch_optional(&mut *write.tx)
            .await?;
            if applied.is_some() {
                load.applied_refunds.push((program_id, *refund_id));
            }
        }
    }
    Ok(load)
}

/// Writes what a batch changed.
pub(super) async fn write(
    write: &mut Write,
    writes: &FeedWrites,
    now: DateTime<Utc>,
) -> Result<(), ScoringError> {
    for member in &writes.members {
        upsert_member(write, *member).await?;
    }
    for (program_id, purchase) in &writes.counted {
        let inserted = sqlx::query(
            "INSERT INTO counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, refunded_minor, points,
                                            brand, sales_channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
        )
        .bind(program_id)
        .bind(purchase.activity_id)
        .bind(purchase.customer_id)
        .bind(micros(purchase.occurred_at))
        .bind(purchase.amount_minor)
        .bind(purchase.refunded_minor)
        .bind(purchase.points)
        .bind(&purchase.brand)
        .bind(&purchase.sales_channel)
        .execute(&mut *write.tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            return Err(ScoringError::Aborted(
                "purchases of the batch were counted by another writer meanwhile".into(),
            ));
        }
    }
    for (program_id, activity_id, refunded_minor) in &writes.refunded {
        sqlx::query(
            "UPDATE counted_purchases SET refunded_minor = ?3 WHERE program_id = ?1 AND activity_id = ?2",
        )
        .bind(program_id)
        .bind(activity_id)
        .bind(refunded_minor)
        .execute(&mut *write.tx)
        .await?;
    }
    for (program_id, refund_id) in &writes.applied_refunds {
        let inserted = sqlx::query(
            "INSERT INTO applied_refunds (program_id, activity_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(program_id)
        .bind(refund_id)
        .execute(&mut *write.tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            return Err(ScoringError::Aborted(
                "refunds of the batch were applied by another writer meanwhile".into(),
            ));
        }
    }
    for ((program_id, customer_id), delta) in &writes.buckets {
        add_to_bucket(&mut write.tx, *program_id, *customer_id, delta).await?;
    }
    for state in &writes.states {
        let (program_id, customer_id) = state.pair;
        if state.is_new {
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM tier_states WHERE program_id = ?1 AND customer_id = ?2",
            )
            .bind(program_id)
            .bind(customer_id)
            .fetch_optional(&mut *write.tx)
            .await?;
            if exists.is_some() {
                return Err(ScoringError::Aborted(
                    "a tier state of the batch was created by another writer meanwhile".into(),
                ));
            }
        }
        upsert_state(write, program_id, customer_id, &state.stored, now, None).await?;
        sqlx::query(
            "UPDATE tier_states SET review_month = ?3, reviewed_under = ?4
             WHERE program_id = ?1 AND customer_id = ?2",
        )
        .bind(program_id)
        .bind(customer_id)
        .bind(
            state
                .review
                .and_then(|review| review.month)
                .map(crate::domain::month::Month::first_day),
        )
        .bind(state.review.map(|review| review.policy_version_id))
        .execute(&mut *write.tx)
        .await?;
    }
    for record in &writes.history {
        insert_history(write, record).await?;
    }
    Ok(())
}
