//! Recording many purchases in one transaction: the path of bulk imports and of coalesced
//! single purchases, by the rules of `domain::purchase_batch`; the customers are locked
//! `FOR SHARE` against a concurrent erasure.

use std::collections::HashSet;

use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use super::{
    activities::replay,
    rows::{ACTIVITY_COLUMNS, ActivityRow, stored_under_keys},
};
use crate::{
    CustomerError,
    domain::{
        activity::NewPurchase,
        purchase_batch::{BatchResults, PurchaseBatch},
    },
};

/// Records `purchases` in one transaction; one result per purchase, in order. The outer error
/// is for the whole batch (database unavailable); the inner ones are each purchase's own.
pub(super) async fn record_purchase_batch(
    pool: &PgPool,
    purchases: &[&NewPurchase],
) -> BatchResults {
    let mut batch = PurchaseBatch::new(purchases);
    let mut tx = pool.begin().await?;
    let statuses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM customers WHERE id = ANY($1) ORDER BY id FOR SHARE")
            .bind(batch.customer_ids())
            .fetch_all(&mut *tx)
            .await?;
    let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE idempotency_key = ANY($1)");
    let existing: Vec<ActivityRow> = sqlx::query_as(&sql)
        .bind(batch.keys())
        .fetch_all(&mut *tx)
        .await?;

    let to_insert = batch.judge(statuses, stored_under_keys(existing)?);
    let rows: Vec<&NewPurchase> = to_insert.iter().map(|&i| batch.purchase(i)).collect();
    let inserted = insert_purchases(&mut tx, &rows).await?;
    for index in to_insert {
        let purchase = batch.purchase(index);
        if inserted.contains(purchase.idempotency_key.as_str()) {
            batch.inserted(index);
            continue;
        }
        // Another writer stored the key after our look-up and committed first.
        let result = match replay(&mut tx, &purchase.idempotency_key, &purchase.fingerprint).await {
            Ok(Some(recorded)) => Ok(recorded),
            Ok(None) => {
                return Err(CustomerError::Unavailable(
                    "idempotency key contended; retry".into(),
                ));
            }
            Err(error) => Err(error),
        };
        batch.settle(index, result);
    }
    tx.commit().await?;
    batch.finish()
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
