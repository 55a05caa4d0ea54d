//! Bulk ingestion: a batch of purchases and refunds, committed batch by batch.
//!
//! Purchases go in with one multi-row `INSERT … SELECT FROM unnest(…)` (one round trip for the
//! whole batch, in one transaction); refunds follow one by one, each in its own transaction,
//! through the same code as single refunds. A purchase and a refund of it may share a batch.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{PgCustomerStore, activities::replay};
use crate::{
    CustomerError,
    domain::{
        activity::NewPurchase,
        customer::CustomerStatus,
        import::{ImportCommand, ImportOutcome},
    },
};

/// The outcome of a single-item error, when the error is about the item and not the database.
fn item_outcome(error: CustomerError) -> Result<ImportOutcome, CustomerError> {
    Ok(match error {
        CustomerError::InvalidArgument(violations) => {
            let field = violations
                .first()
                .map(|v| v.field.clone())
                .unwrap_or_default();
            let reason = violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            ImportOutcome::rejected(field, reason)
        }
        error @ CustomerError::IdempotencyKeyReused { .. } => {
            ImportOutcome::rejected("idempotency_key", error.to_string())
        }
        CustomerError::NotFound { entity, id } => {
            let field = if entity == "purchase" {
                "purchase_id"
            } else {
                "customer_id"
            };
            ImportOutcome::rejected(field, format!("{entity} {id} not found"))
        }
        error @ CustomerError::CustomerErased { .. } => {
            ImportOutcome::rejected("customer_id", error.to_string())
        }
        error @ CustomerError::RefundExceedsPurchase { .. } => {
            ImportOutcome::rejected("amount.amount_minor", error.to_string())
        }
        error @ CustomerError::AlreadyExists { .. } => {
            ImportOutcome::rejected("", error.to_string())
        }
        error @ (CustomerError::Unavailable(_)
        | CustomerError::ShuttingDown
        | CustomerError::Internal(_)) => return Err(error),
    })
}

impl PgCustomerStore {
    #[tracing::instrument(skip_all, fields(items = commands.len()))]
    pub(super) async fn import(
        &self,
        commands: &[ImportCommand],
    ) -> Result<Vec<ImportOutcome>, CustomerError> {
        let mut outcomes: Vec<Option<ImportOutcome>> = vec![None; commands.len()];
        let mut tx = self.pool.begin().await?;

        // Purchases: repeated keys inside the batch resolve against the first occurrence.
        let mut first_by_key: HashMap<&str, usize> = HashMap::new();
        let mut purchases: Vec<(usize, &NewPurchase)> = Vec::new();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (index, command) in commands.iter().enumerate() {
            if let ImportCommand::Purchase(purchase) = command {
                match first_by_key.get(purchase.idempotency_key.as_str()) {
                    Some(&first) => repeats.push((index, first)),
                    None => {
                        first_by_key.insert(&purchase.idempotency_key, index);
                        purchases.push((index, purchase));
                    }
                }
            }
        }

        if !purchases.is_empty() {
            let customer_ids: Vec<Uuid> = purchases
                .iter()
                .map(|(_, p)| p.customer_id)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let statuses: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT id, status FROM customers WHERE id = ANY($1) ORDER BY id FOR SHARE",
            )
            .bind(&customer_ids)
            .fetch_all(&mut *tx)
            .await?;
            let status_of: HashMap<Uuid, Option<CustomerStatus>> = statuses
                .into_iter()
                .map(|(id, status)| (id, CustomerStatus::parse(&status)))
                .collect();

            // Keys stored before this batch: replays or conflicts.
            let keys: Vec<&str> = purchases
                .iter()
                .map(|(_, p)| p.idempotency_key.as_str())
                .collect();
            let existing: Vec<(String, Uuid, Vec<u8>)> =
                sqlx::query_as("SELECT idempotency_key, id, fingerprint FROM activities WHERE idempotency_key = ANY($1)")
                    .bind(&keys)
                    .fetch_all(&mut *tx)
                    .await?;
            let existing: HashMap<String, (Uuid, Vec<u8>)> = existing
                .into_iter()
                .map(|(key, id, fingerprint)| (key, (id, fingerprint)))
                .collect();

            let mut to_insert: Vec<(usize, &NewPurchase)> = Vec::with_capacity(purchases.len());
            for &(index, purchase) in &purchases {
                outcomes[index] =
                    if let Some((id, fingerprint)) = existing.get(&purchase.idempotency_key) {
                        Some(
                            if fingerprint.as_slice() == purchase.fingerprint.as_slice() {
                                ImportOutcome::Duplicate { activity_id: *id }
                            } else {
                                item_outcome(CustomerError::IdempotencyKeyReused {
                                    key: purchase.idempotency_key.clone(),
                                })?
                            },
                        )
                    } else {
                        match status_of.get(&purchase.customer_id) {
                            None => Some(item_outcome(CustomerError::customer_not_found(
                                purchase.customer_id,
                            ))?),
                            Some(Some(CustomerStatus::Active)) => {
                                to_insert.push((index, purchase));
                                None
                            }
                            Some(_) => Some(item_outcome(CustomerError::CustomerErased {
                                id: purchase.customer_id.to_string(),
                            })?),
                        }
                    };
            }
            let inserted = insert_purchases(&mut tx, &to_insert).await?;
            for (index, purchase) in to_insert {
                outcomes[index] = Some(if inserted.contains(purchase.idempotency_key.as_str()) {
                    ImportOutcome::Accepted {
                        activity_id: purchase.id,
                    }
                } else {
                    // Another writer stored the key after our look-up and committed first.
                    match replay(&mut tx, &purchase.idempotency_key, &purchase.fingerprint).await {
                        Ok(Some(recorded)) => ImportOutcome::Duplicate {
                            activity_id: recorded.activity.id,
                        },
                        Ok(None) => {
                            return Err(CustomerError::Unavailable(
                                "idempotency key contended; retry the batch".into(),
                            ));
                        }
                        Err(error) => item_outcome(error)?,
                    }
                });
            }
        }

        for (index, first) in repeats {
            let (ImportCommand::Purchase(repeat), ImportCommand::Purchase(original)) =
                (&commands[index], &commands[first])
            else {
                continue;
            };
            outcomes[index] = Some(match &outcomes[first] {
                Some(
                    ImportOutcome::Accepted { activity_id }
                    | ImportOutcome::Duplicate { activity_id },
                ) if repeat.fingerprint == original.fingerprint => ImportOutcome::Duplicate {
                    activity_id: *activity_id,
                },
                Some(ImportOutcome::Rejected { field, reason })
                    if repeat.fingerprint == original.fingerprint =>
                {
                    ImportOutcome::rejected(field.clone(), reason.clone())
                }
                _ => item_outcome(CustomerError::IdempotencyKeyReused {
                    key: repeat.idempotency_key.clone(),
                })?,
            });
        }

        tx.commit().await?;

        // Each refund in its own transaction, after the purchases committed: its transaction id
        // is then taken after its purchase committed, so the feed (ordered by transaction id)
        // always delivers a purchase before its refunds. Refunds are the rarer kind in a backfill.
        for (index, command) in commands.iter().enumerate() {
            let ImportCommand::Refund(refund) = command else {
                continue;
            };
            outcomes[index] = Some(match self.insert_refund(refund).await {
                Ok(recorded) if recorded.replayed => ImportOutcome::Duplicate {
                    activity_id: recorded.activity.id,
                },
                Ok(recorded) => ImportOutcome::Accepted {
                    activity_id: recorded.activity.id,
                },
                Err(error) => item_outcome(error)?,
            });
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome
                    .ok_or_else(|| CustomerError::Internal("an import item got no outcome".into()))
            })
            .collect()
    }
}

/// Inserts the purchases in one statement; returns the keys actually inserted.
async fn insert_purchases(
    connection: &mut sqlx::PgConnection,
    purchases: &[(usize, &NewPurchase)],
) -> Result<HashSet<String>, CustomerError> {
    if purchases.is_empty() {
        return Ok(HashSet::new());
    }
    let n = purchases.len();
    let (mut ids, mut customers, mut keys, mut fingerprints) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut amounts, mut currencies, mut occurred, mut recorded) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut brands, mut channels, mut stores, mut line_items) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (_, purchase) in purchases {
        ids.push(purchase.id);
        customers.push(purchase.customer_id);
        keys.push(purchase.idempotency_key.as_str());
        fingerprints.push(purchase.fingerprint.to_vec());
        amounts.push(purchase.amount_minor);
        currencies.push(purchase.currency.as_str());
        occurred.push(purchase.occurred_at);
        recorded.push(purchase.recorded_at);
        brands.push(purchase.brand.as_str());
        channels.push(purchase.sales_channel.as_str());
        stores.push(purchase.store_id.as_str());
        line_items.push(
            serde_json::to_string(&purchase.line_items)
                .map_err(|e| CustomerError::Internal(e.to_string()))?,
        );
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO activities (id, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency, occurred_at,
                                 recorded_at, brand, sales_channel, store_id, line_items, purchase_occurred_at)
         SELECT id, customer_id, 'purchase', key, fingerprint, amount, currency, occurred_at, recorded_at, brand,
                sales_channel, store_id, line_items::jsonb, occurred_at
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::int8[], $6::text[], $7::timestamptz[],
                     $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[])
              AS t(id, customer_id, key, fingerprint, amount, currency, occurred_at, recorded_at, brand, sales_channel,
                   store_id, line_items)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING idempotency_key",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&keys)
    .bind(&fingerprints)
    .bind(&amounts)
    .bind(&currencies)
    .bind(&occurred)
    .bind(&recorded)
    .bind(&brands)
    .bind(&channels)
    .bind(&stores)
    .bind(&line_items)
    .fetch_all(&mut *connection)
    .await?;
    Ok(inserted.into_iter().collect())
}
