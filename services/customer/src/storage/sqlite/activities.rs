//! Purchases and refunds in SQLite: idempotent recording (the key is checked first, inside the
//! writing transaction, so no race can slip between check and insert), the refund rule, reads
//! and bulk imports (one transaction per batch, items in order: a purchase precedes its refunds
//! in the feed).

use uuid::Uuid;

use super::{
    SqliteCustomerStore, Write,
    customers::ensure_active,
    rows::{ACTIVITY_COLUMNS, ActivityRow, instant, micros},
};
use crate::{
    CustomerError,
    domain::{
        activity::{Activity, ActivityKind, NewPurchase, NewRefund, Recorded, RefundTarget},
        import::{ImportCommand, ImportOutcome},
    },
    storage::ActivityPosition,
};

/// The activity recorded under `key` before: a replay when the content is the same.
async fn replay(
    write: &mut Write,
    key: &str,
    fingerprint: &[u8; 32],
) -> Result<Option<Recorded>, CustomerError> {
    let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE idempotency_key = ?");
    let existing: Option<ActivityRow> = sqlx::query_as(&sql)
        .bind(key)
        .fetch_optional(&mut *write.tx)
        .await?;
    match existing {
        None => Ok(None),
        Some(row) if row.fingerprint == fingerprint.as_slice() => Ok(Some(Recorded {
            activity: row.try_into()?,
            replayed: true,
        })),
        Some(_) => Err(CustomerError::IdempotencyKeyReused {
            key: key.to_owned(),
        }),
    }
}

async fn inserted(write: &mut Write, id: Uuid) -> Result<Recorded, CustomerError> {
    let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = ?");
    let row: ActivityRow = sqlx::query_as(&sql)
        .bind(id)
        .fetch_one(&mut *write.tx)
        .await?;
    Ok(Recorded {
        activity: row.try_into()?,
        replayed: false,
    })
}

/// Records a purchase in `write`, or replays the one recorded under its key.
pub(super) async fn purchase(
    write: &mut Write,
    purchase: &NewPurchase,
) -> Result<Recorded, CustomerError> {
    if let Some(recorded) = replay(write, &purchase.idempotency_key, &purchase.fingerprint).await? {
        return Ok(recorded);
    }
    ensure_active(&mut write.tx, purchase.customer_id).await?;
    let seq = write.next_seq().await?;
    sqlx::query(
        "INSERT INTO activities (id, seq, xid, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency,
                                 occurred_at, recorded_at, brand, sales_channel, store_id, line_items, purchase_occurred_at)
         VALUES (?1, ?2, ?3, ?4, 'purchase', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?9)",
    )
    .bind(purchase.id)
    .bind(seq)
    .bind(write.xid)
    .bind(purchase.customer_id)
    .bind(&purchase.idempotency_key)
    .bind(purchase.fingerprint.as_slice())
    .bind(purchase.amount_minor)
    .bind(&purchase.currency)
    .bind(micros(purchase.occurred_at))
    .bind(micros(purchase.recorded_at))
    .bind(&purchase.brand)
    .bind(&purchase.sales_channel)
    .bind(&purchase.store_id)
    .bind(sqlx::types::Json(&purchase.line_items))
    .execute(&mut *write.tx)
    .await?;
    // What was written, without reading it back (as Postgres does).
    Ok(Recorded {
        activity: purchase.as_stored(),
        replayed: false,
    })
}

/// Records a refund in `write` after checking it against its purchase, or replays one.
pub(super) async fn refund(
    write: &mut Write,
    refund: &NewRefund,
) -> Result<Recorded, CustomerError> {
    type Target = (String, Uuid, i64, i64, String, i64, String, String, String);
    let target: Option<Target> = sqlx::query_as(
        "SELECT kind, customer_id, amount_minor, refunded_amount_minor, currency, occurred_at, brand, sales_channel,
                store_id
         FROM activities WHERE id = ?",
    )
    .bind(refund.purchase_id)
    .fetch_optional(&mut *write.tx)
    .await?;
    let Some((kind, customer_id, amount, refunded, currency, occurred_at, brand, channel, store)) =
        target
    else {
        return Err(CustomerError::NotFound {
            entity: "purchase",
            id: refund.purchase_id.to_string(),
        });
    };
    if let Some(recorded) = replay(write, &refund.idempotency_key, &refund.fingerprint).await? {
        return Ok(recorded);
    }
    ensure_active(&mut write.tx, refund.customer_id).await?;
    let kind = ActivityKind::parse(&kind)
        .ok_or_else(|| CustomerError::Internal(format!("unknown kind {kind:?}")))?;
    refund.check_against(&RefundTarget {
        kind,
        customer_id,
        amount_minor: amount,
        refunded_amount_minor: refunded,
        currency: currency.clone(),
        occurred_at: instant(occurred_at),
    })?;
    sqlx::query(
        "UPDATE activities SET refunded_amount_minor = refunded_amount_minor + ? WHERE id = ?",
    )
    .bind(refund.amount_minor)
    .bind(refund.purchase_id)
    .execute(&mut *write.tx)
    .await?;
    let seq = write.next_seq().await?;
    sqlx::query(
        "INSERT INTO activities (id, seq, xid, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency,
                                 occurred_at, recorded_at, brand, sales_channel, store_id, refunded_purchase_id,
                                 purchase_occurred_at)
         VALUES (?, ?, ?, ?, 'refund', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(refund.id)
    .bind(seq)
    .bind(write.xid)
    .bind(refund.customer_id)
    .bind(&refund.idempotency_key)
    .bind(refund.fingerprint.as_slice())
    .bind(refund.amount_minor)
    .bind(&refund.currency)
    .bind(micros(refund.occurred_at))
    .bind(micros(refund.recorded_at))
    .bind(&brand)
    .bind(&channel)
    .bind(&store)
    .bind(refund.purchase_id)
    .bind(occurred_at)
    .execute(&mut *write.tx)
    .await?;
    inserted(write, refund.id).await
}

impl SqliteCustomerStore {
    /// Commits what `recorded` wrote (a replay wrote nothing).
    pub(super) async fn finish(
        &self,
        write: Write,
        recorded: &Recorded,
    ) -> Result<(), CustomerError> {
        if recorded.replayed {
            write.tx.rollback().await?;
            Ok(())
        } else {
            self.commit_feed(write).await
        }
    }

    pub(super) async fn select_activity(
        &self,
        id: Uuid,
    ) -> Result<Option<Activity>, CustomerError> {
        let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = ?");
        let row: Option<ActivityRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Activity::try_from).transpose()
    }

    pub(super) async fn select_activity_page(
        &self,
        customer_id: Uuid,
        after: Option<ActivityPosition>,
        limit: u32,
    ) -> Result<Vec<Activity>, CustomerError> {
        let sql = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities
             WHERE customer_id = ?1 AND (?2 IS NULL OR occurred_at < ?2 OR (occurred_at = ?2 AND id < ?3))
             ORDER BY occurred_at DESC, id DESC LIMIT ?4"
        );
        let rows: Vec<ActivityRow> = sqlx::query_as(&sql)
            .bind(customer_id)
            .bind(after.map(|p| micros(p.occurred_at)))
            .bind(after.map(|p| p.id))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Activity::try_from).collect()
    }

    pub(super) async fn import(
        &self,
        commands: &[ImportCommand],
    ) -> Result<Vec<ImportOutcome>, CustomerError> {
        let mut write = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(commands.len());
        let mut wrote = false;
        for command in commands {
            let result = match command {
                ImportCommand::Purchase(p) => purchase(&mut write, p).await,
                ImportCommand::Refund(r) => refund(&mut write, r).await,
            };
            outcomes.push(match result {
                Ok(recorded) if recorded.replayed => ImportOutcome::Duplicate {
                    activity_id: recorded.activity.id,
                },
                Ok(recorded) => {
                    wrote = true;
                    ImportOutcome::Accepted {
                        activity_id: recorded.activity.id,
                    }
                }
                // Every item check runs before its first write: a refused item wrote nothing.
                Err(error) => ImportOutcome::from_item_error(error)?,
            });
        }
        if wrote {
            self.commit_feed(write).await?;
        } else {
            write.tx.rollback().await?;
        }
        Ok(outcomes)
    }
}
