//! Recording many purchases in one transaction: the path of bulk imports and of coalesced
//! single purchases. The rules are those of a single purchase: the customer must exist and be
//! active (locked `FOR SHARE` against a concurrent erasure), a stored key with the same content
//! is a replay, with other content a conflict; a key repeated inside the batch resolves against
//! its first occurrence.

use std::collections::{HashMap, HashSet};

use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use super::{
    activities::replay,
    rows::{ACTIVITY_COLUMNS, ActivityRow},
};
use crate::{
    CustomerError,
    domain::{
        activity::{NewPurchase, Recorded},
        customer::CustomerStatus,
    },
};

/// Records `purchases` in one transaction; one result per purchase, in order. The outer error
/// is for the whole batch (database unavailable); the inner ones are each purchase's own.
pub(super) async fn record_purchase_batch(
    pool: &PgPool,
    purchases: &[&NewPurchase],
) -> Result<Vec<Result<Recorded, CustomerError>>, CustomerError> {
    let mut results: Vec<Option<Result<Recorded, CustomerError>>> =
        (0..purchases.len()).map(|_| None).collect();
    let mut first_by_key: HashMap<&str, usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    for (index, purchase) in purchases.iter().enumerate() {
        match first_by_key.get(purchase.idempotency_key.as_str()) {
            Some(&first) => repeats.push((index, first)),
            None => {
                first_by_key.insert(&purchase.idempotency_key, index);
            }
        }
    }
    let firsts: Vec<usize> = {
        let mut firsts: Vec<usize> = first_by_key.values().copied().collect();
        firsts.sort_unstable();
        firsts
    };

    let mut tx = pool.begin().await?;
    // Sorted, so that concurrent batches lock customers in the same order and cannot deadlock.
    let mut customer_ids: Vec<Uuid> = firsts
        .iter()
        .map(|&i| purchases[i].customer_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    customer_ids.sort_unstable();
    let statuses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM customers WHERE id = ANY($1) ORDER BY id FOR SHARE")
            .bind(&customer_ids)
            .fetch_all(&mut *tx)
            .await?;
    let status_of: HashMap<Uuid, Option<CustomerStatus>> = statuses
        .into_iter()
        .map(|(id, status)| (id, CustomerStatus::parse(&status)))
        .collect();

    let keys: Vec<&str> = firsts
        .iter()
        .map(|&i| purchases[i].idempotency_key.as_str())
        .collect();
    let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE idempotency_key = ANY($1)");
    let existing: Vec<ActivityRow> = sqlx::query_as(&sql).bind(&keys).fetch_all(&mut *tx).await?;
    let mut existing: HashMap<String, ActivityRow> = existing
        .into_iter()
        .map(|row| (row.idempotency_key().to_owned(), row))
        .collect();

    let mut to_insert: Vec<usize> = Vec::with_capacity(firsts.len());
    for &index in &firsts {
        let purchase = purchases[index];
        results[index] = if let Some(row) = existing.remove(&purchase.idempotency_key) {
            Some(if row.fingerprint == purchase.fingerprint.as_slice() {
                row.try_into().map(|activity| Recorded {
                    activity,
                    replayed: true,
                })
            } else {
                Err(CustomerError::IdempotencyKeyReused {
                    key: purchase.idempotency_key.clone(),
                })
            })
        } else {
            match status_of.get(&purchase.customer_id) {
                None => Some(Err(CustomerError::customer_not_found(purchase.customer_id))),
                Some(Some(CustomerStatus::Active)) => {
                    to_insert.push(index);
                    None
                }
                Some(_) => Some(Err(CustomerError::CustomerErased {
                    id: purchase.customer_id.to_string(),
                })),
            }
        };
    }
    let batch: Vec<&NewPurchase> = to_insert.iter().map(|&i| purchases[i]).collect();
    let inserted = insert_purchases(&mut tx, &batch).await?;
    for index in to_insert {
        let purchase = purchases[index];
        results[index] = Some(if inserted.contains(purchase.idempotency_key.as_str()) {
            Ok(Recorded {
                activity: purchase.as_stored(),
                replayed: false,
            })
        } else {
            // Another writer stored the key after our look-up and committed first.
            match replay(&mut tx, &purchase.idempotency_key, &purchase.fingerprint).await {
                Ok(Some(recorded)) => Ok(recorded),
                Ok(None) => {
                    return Err(CustomerError::Unavailable(
                        "idempotency key contended; retry".into(),
                    ));
                }
                Err(error) => Err(error),
            }
        });
    }
    tx.commit().await?;

    for (index, first) in repeats {
        results[index] = Some(match &results[first] {
            Some(Ok(recorded)) if purchases[index].fingerprint == purchases[first].fingerprint => {
                Ok(Recorded {
                    activity: recorded.activity.clone(),
                    replayed: true,
                })
            }
            Some(Err(error)) if purchases[index].fingerprint == purchases[first].fingerprint => {
                Err(error.clone())
            }
            _ => Err(CustomerError::IdempotencyKeyReused {
                key: purchases[index].idempotency_key.clone(),
            }),
        });
    }
    results
        .into_iter()
        .map(|result| {
            result.ok_or_else(|| CustomerError::Internal("a purchase got no result".into()))
        })
        .collect()
}

/// Inserts the purchases in one statement; returns the keys actually inserted.
async fn insert_purchases(
    connection: &mut PgConnection,
    purchases: &[&NewPurchase],
) -> Result<HashSet<String>, CustomerError> {
    if purchases.is_empty() {
        return Ok(HashSet::new());
    }
    let column = |f: &dyn Fn(&NewPurchase) -> String| {
        purchases.iter().map(|p| f(p)).collect::<Vec<String>>()
    };
    let ids: Vec<Uuid> = purchases.iter().map(|p| p.id).collect();
    let customers: Vec<Uuid> = purchases.iter().map(|p| p.customer_id).collect();
    let fingerprints: Vec<Vec<u8>> = purchases.iter().map(|p| p.fingerprint.to_vec()).collect();
    let amounts: Vec<i64> = purchases.iter().map(|p| p.amount_minor).collect();
    let occurred: Vec<_> = purchases.iter().map(|p| p.occurred_at).collect();
    let recorded: Vec<_> = purchases.iter().map(|p| p.recorded_at).collect();
    let line_items: Vec<Json<&[crate::domain::activity::LineItem]>> = purchases
        .iter()
        .map(|p| Json(p.line_items.as_slice()))
        .collect();
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO activities (id, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency, occurred_at,
                                 recorded_at, brand, sales_channel, store_id, line_items, purchase_occurred_at)
         SELECT id, customer_id, 'purchase', key, fingerprint, amount, currency, occurred_at, recorded_at, brand,
                sales_channel, store_id, line_items, occurred_at
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::int8[], $6::text[], $7::timestamptz[],
                     $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::jsonb[])
              AS t(id, customer_id, key, fingerprint, amount, currency, occurred_at, recorded_at, brand, sales_channel,
                   store_id, line_items)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING idempotency_key",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(column(&|p| p.idempotency_key.clone()))
    .bind(&fingerprints)
    .bind(&amounts)
    .bind(column(&|p| p.currency.clone()))
    .bind(&occurred)
    .bind(&recorded)
    .bind(column(&|p| p.brand.clone()))
    .bind(column(&|p| p.sales_channel.clone()))
    .bind(column(&|p| p.store_id.clone()))
    .bind(&line_items)
    .fetch_all(&mut *connection)
    .await?;
    Ok(inserted.into_iter().collect())
}
