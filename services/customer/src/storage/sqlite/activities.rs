//! Purchases and refunds in SQLite: idempotent recording (the key is checked first, inside the
//! writing transaction, so no race can slip between check and insert), purchases many at a time
//! by the rules of `domain::purchase_batch`, the refund rule, reads and bulk imports (one
//! transaction per batch: a purchase precedes its refunds in the feed).

use async_trait::async_trait;
use tierline_runtime::instant::micros;
use tierline_runtime::sqlite::rows_param;
use uuid::Uuid;

use super::{
    SqliteCustomerStore, Write,
    customers::ensure_active,
    rows::{
        ACTIVITY_COLUMNS, ActivityRow, REFUND_TARGET_COLUMNS, RefundTargetRow, stored_under_keys,
    },
};
use crate::{
    CustomerError,
    domain::{
        activity::{Activity, NewPurchase, NewRefund, Recorded},
        import::{ImportCommand, ImportOutcome},
        purchase_batch::{BatchResults, PurchaseBatch},
    },
    storage::{ActivityImports, ActivityPosition, ActivityRecords},
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
    existing
        .map(|row| row.into_replay(key, fingerprint))
        .transpose()
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

/// Records `purchases` in `write` by the rules of `domain::purchase_batch`, in three statements
/// whatever their number; one result per purchase, in order. The write lock is held, so no
/// other writer can store a key between the look-up and the insert.
pub(super) async fn purchase_batch(write: &mut Write, purchases: &[&NewPurchase]) -> BatchResults {
    let mut batch = PurchaseBatch::new(purchases);
    let statuses: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, status FROM customers WHERE id IN (SELECT unhex(value, '-') FROM json_each(?1))",
    )
    .bind(rows_param(&batch.customer_ids()))
    .fetch_all(&mut *write.tx)
    .await?;
    let sql = format!(
        "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE idempotency_key IN (SELECT value FROM json_each(?1))"
    );
    let existing: Vec<ActivityRow> = sqlx::query_as(&sql)
        .bind(rows_param(&batch.keys()))
        .fetch_all(&mut *write.tx)
        .await?;
    let to_insert = batch.judge(statuses, stored_under_keys(existing)?);
    if to_insert.is_empty() {
        return batch.finish();
    }
    let mut rows = Vec::with_capacity(to_insert.len());
    for &index in &to_insert {
        let p = batch.purchase(index);
        rows.push((
            p.id,
            write.next_seq().await?,
            p.customer_id,
            &p.idempotency_key,
            hex::encode(p.fingerprint),
            p.amount_minor,
            &p.currency,
            micros(p.occurred_at),
            micros(p.recorded_at),
            &p.brand,
            &p.sales_channel,
            &p.store_id,
            serde_json::to_string(&p.line_items)
                .map_err(|error| CustomerError::Internal(format!("line items: {error}")))?,
        ));
    }
    sqlx::query(
        "INSERT INTO activities (id, seq, xid, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency,
                                 occurred_at, recorded_at, brand, sales_channel, store_id, line_items, purchase_occurred_at)
         SELECT unhex(value ->> 0, '-'), value ->> 1, ?2, unhex(value ->> 2, '-'), 'purchase', value ->> 3, unhex(value ->> 4),
                value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12,
                value ->> 7
         FROM json_each(?1)",
    )
    .bind(rows_param(&rows))
    .bind(write.xid)
    .execute(&mut *write.tx)
    .await?;
    for index in to_insert {
        batch.inserted(index);
    }
    batch.finish()
}

/// Records a refund in `write` after checking it against its purchase, or replays one.
pub(super) async fn refund(
    write: &mut Write,
    refund: &NewRefund,
) -> Result<Recorded, CustomerError> {
    let target: Option<RefundTargetRow> = sqlx::query_as(&format!(
        "SELECT {REFUND_TARGET_COLUMNS} FROM activities WHERE id = ?"
    ))
    .bind(refund.purchase_id)
    .fetch_optional(&mut *write.tx)
    .await?;
    let Some(target) = target else {
        return Err(CustomerError::NotFound {
            entity: "purchase",
            id: refund.purchase_id.to_string(),
        });
    };
    if let Some(recorded) = replay(write, &refund.idempotency_key, &refund.fingerprint).await? {
        return Ok(recorded);
    }
    ensure_active(&mut write.tx, refund.customer_id).await?;
    refund.check_against(&target.target()?)?;
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
    .bind(&target.brand)
    .bind(&target.sales_channel)
    .bind(&target.store_id)
    .bind(refund.purchase_id)
    .bind(micros(target.occurred_at()))
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
}

#[async_trait]
impl ActivityRecords for SqliteCustomerStore {
    async fn record_purchase(&self, purchase: &NewPurchase) -> Result<Recorded, CustomerError> {
        let mut write = self.begin_write().await?;
        let recorded = purchase_batch(&mut write, &[purchase])
            .await?
            .pop()
            .unwrap_or_else(|| Err(CustomerError::Internal("a purchase got no result".into())))?;
        self.finish(write, &recorded).await?;
        Ok(recorded)
    }

    async fn record_refund(&self, refund: &NewRefund) -> Result<Recorded, CustomerError> {
        let mut write = self.begin_write().await?;
        let recorded = self::refund(&mut write, refund).await?;
        self.finish(write, &recorded).await?;
        Ok(recorded)
    }

    async fn activity(&self, id: Uuid) -> Result<Option<Activity>, CustomerError> {
        let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = ?");
        let row: Option<ActivityRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Activity::try_from).transpose()
    }

    async fn list_activities(
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
}

#[async_trait]
impl ActivityImports for SqliteCustomerStore {
    /// Imports a batch in one transaction: its purchases together, then its refunds one by one,
    /// each checked against its purchase as the batch leaves it, so that a purchase precedes its
    /// refunds in the feed (as on Postgres).
    async fn import_batch(
        &self,
        commands: &[ImportCommand],
    ) -> Result<Vec<ImportOutcome>, CustomerError> {
        let mut write = self.begin_write().await?;
        let mut outcomes: Vec<Option<ImportOutcome>> = vec![None; commands.len()];
        let mut wrote = false;
        let (positions, purchases) = ImportCommand::purchases(commands);
        if !purchases.is_empty() {
            let results = purchase_batch(&mut write, &purchases).await?;
            for (index, result) in positions.into_iter().zip(results) {
                wrote |= matches!(&result, Ok(recorded) if !recorded.replayed);
                outcomes[index] = Some(ImportOutcome::of(result)?);
            }
        }
        for (index, command) in commands.iter().enumerate() {
            let ImportCommand::Refund(r) = command else {
                continue;
            };
            // Every item check runs before its first write: a refused item wrote nothing.
            let result = refund(&mut write, r).await;
            wrote |= matches!(&result, Ok(recorded) if !recorded.replayed);
            outcomes[index] = Some(ImportOutcome::of(result)?);
        }
        if wrote {
            self.commit_feed(write).await?;
        } else {
            write.tx.rollback().await?;
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
