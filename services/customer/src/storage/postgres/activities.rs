//! Purchases and refunds in Postgres: idempotent recording and the refund rule under a row lock.

use crate::storage::ActivityRecords;
use async_trait::async_trait;
use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use super::{
    PgCustomerStore,
    customers::{lock_active, why_not_active},
    rows::{ACTIVITY_COLUMNS, ActivityRow, REFUND_TARGET_COLUMNS, RefundTargetRow},
};
use crate::{
    CustomerError,
    domain::activity::{Activity, NewPurchase, NewRefund, Recorded},
    storage::ActivityPosition,
};

/// How often recording is retried when the row that conflicted with ours vanished (its
/// transaction rolled back) between our insert and our look-up.
const CONFLICT_RETRIES: usize = 3;

/// The activity already stored under `key`, as a replay of a request with `fingerprint`, or the
/// error for a key reused with other content. `None` when nothing is stored under `key`.
pub(super) async fn replay(
    connection: &mut PgConnection,
    key: &str,
    fingerprint: &[u8; 32],
) -> Result<Option<Recorded>, CustomerError> {
    let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE idempotency_key = $1");
    let existing: Option<ActivityRow> = sqlx::query_as(&sql)
        .bind(key)
        .fetch_optional(&mut *connection)
        .await?;
    existing
        .map(|row| row.into_replay(key, fingerprint))
        .transpose()
}

/// Records `refund` on `connection`, which must be inside a transaction: locks the purchase,
/// replays a stored refund with the same key, checks the customer and the refund rules, then
/// raises the purchase's refunded amount and stores the refund.
async fn apply_refund(
    connection: &mut PgConnection,
    refund: &NewRefund,
) -> Result<Recorded, CustomerError> {
    // The lock serialises every refund of this purchase, so two racing refunds see each other.
    let target: Option<RefundTargetRow> = sqlx::query_as(&format!(
        "SELECT {REFUND_TARGET_COLUMNS} FROM activities WHERE id = $1 FOR UPDATE"
    ))
    .bind(refund.purchase_id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(target) = target else {
        return Err(CustomerError::NotFound {
            entity: "purchase",
            id: refund.purchase_id.to_string(),
        });
    };
    if let Some(recorded) = replay(connection, &refund.idempotency_key, &refund.fingerprint).await?
    {
        return Ok(recorded);
    }
    lock_active(connection, refund.customer_id).await?;
    refund.check_against(&target.target()?)?;
    sqlx::query(
        "UPDATE activities SET refunded_amount_minor = refunded_amount_minor + $2 WHERE id = $1",
    )
    .bind(refund.purchase_id)
    .bind(refund.amount_minor)
    .execute(&mut *connection)
    .await?;
    let sql = format!(
        "INSERT INTO activities (id, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency, occurred_at,
                                 recorded_at, brand, sales_channel, store_id, refunded_purchase_id, purchase_occurred_at)
         VALUES ($1, $2, 'refund', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING {ACTIVITY_COLUMNS}"
    );
    let row: ActivityRow = sqlx::query_as(&sql)
        .bind(refund.id)
        .bind(refund.customer_id)
        .bind(&refund.idempotency_key)
        .bind(refund.fingerprint.as_slice())
        .bind(refund.amount_minor)
        .bind(&refund.currency)
        .bind(refund.occurred_at)
        .bind(refund.recorded_at)
        .bind(&target.brand)
        .bind(&target.sales_channel)
        .bind(&target.store_id)
        .bind(refund.purchase_id)
        .bind(target.occurred_at())
        .fetch_one(&mut *connection)
        .await?;
    Ok(Recorded {
        activity: row.try_into()?,
        replayed: false,
    })
}

#[async_trait]
impl ActivityRecords for PgCustomerStore {
    /// Through the coalescer: purchases that arrive together are written together.
    async fn record_purchase(&self, purchase: &NewPurchase) -> Result<Recorded, CustomerError> {
        self.purchases.record(purchase.clone()).await
    }

    #[tracing::instrument(skip_all, fields(customer_id = %refund.customer_id, purchase_id = %refund.purchase_id))]
    async fn record_refund(&self, refund: &NewRefund) -> Result<Recorded, CustomerError> {
        let mut tx = self.pool.begin().await?;
        match apply_refund(&mut tx, refund).await {
            Ok(recorded) => {
                tx.commit().await?;
                Ok(recorded)
            }
            // A concurrent refund with the same key committed between our check and our insert:
            // answer as a replay.
            Err(CustomerError::AlreadyExists {
                field: "idempotency_key",
                ..
            }) => {
                tx.rollback().await?;
                let mut connection = self.pool.acquire().await?;
                replay(
                    &mut connection,
                    &refund.idempotency_key,
                    &refund.fingerprint,
                )
                .await?
                .ok_or_else(|| {
                    CustomerError::Unavailable("idempotency key contended; retry".into())
                })
            }
            Err(error) => Err(error),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn activity(&self, id: Uuid) -> Result<Option<Activity>, CustomerError> {
        let sql = format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE id = $1");
        let row: Option<ActivityRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Activity::try_from).transpose()
    }

    /// Two statements, with and without a position, so that each keeps an index range scan on
    /// `(customer_id, occurred_at DESC, id DESC)` under a generic plan.
    #[tracing::instrument(skip(self))]
    async fn list_activities(
        &self,
        customer_id: Uuid,
        after: Option<ActivityPosition>,
        limit: u32,
    ) -> Result<Vec<Activity>, CustomerError> {
        let rows: Vec<ActivityRow> = match after {
            None => {
                let sql = format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM activities WHERE customer_id = $1
                     ORDER BY occurred_at DESC, id DESC LIMIT $2"
                );
                sqlx::query_as(&sql)
                    .bind(customer_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(position) => {
                let sql = format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM activities
                     WHERE customer_id = $1 AND (occurred_at, id) < ($2, $3)
                     ORDER BY occurred_at DESC, id DESC LIMIT $4"
                );
                sqlx::query_as(&sql)
                    .bind(customer_id)
                    .bind(position.occurred_at)
                    .bind(position.id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.into_iter().map(Activity::try_from).collect()
    }
}

/// One statement on the happy path: insert if the customer is active and the key is new.
#[tracing::instrument(skip_all, fields(customer_id = %purchase.customer_id, idempotency_key = %purchase.idempotency_key))]
pub(super) async fn record_one_purchase(
    pool: &PgPool,
    purchase: &NewPurchase,
) -> Result<Recorded, CustomerError> {
    let sql = format!(
        "INSERT INTO activities (id, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency,
                                 occurred_at, recorded_at, brand, sales_channel, store_id, line_items, purchase_occurred_at)
         SELECT $1, c.id, 'purchase', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $7
         FROM (SELECT id FROM customers WHERE id = $2 AND status = 'active' FOR SHARE) c
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING {ACTIVITY_COLUMNS}"
    );
    for _ in 0..CONFLICT_RETRIES {
        let inserted: Option<ActivityRow> = sqlx::query_as(&sql)
            .bind(purchase.id)
            .bind(purchase.customer_id)
            .bind(&purchase.idempotency_key)
            .bind(purchase.fingerprint.as_slice())
            .bind(purchase.amount_minor)
            .bind(&purchase.currency)
            .bind(purchase.occurred_at)
            .bind(purchase.recorded_at)
            .bind(&purchase.brand)
            .bind(&purchase.sales_channel)
            .bind(&purchase.store_id)
            .bind(Json(&purchase.line_items))
            .fetch_optional(pool)
            .await?;
        if let Some(row) = inserted {
            return Ok(Recorded {
                activity: row.try_into()?,
                replayed: false,
            });
        }
        let mut connection = pool.acquire().await?;
        let replayed = replay(
            &mut connection,
            &purchase.idempotency_key,
            &purchase.fingerprint,
        )
        .await?;
        // Give the connection back before taking another: N retries must not hold 2N.
        drop(connection);
        if let Some(recorded) = replayed {
            return Ok(recorded);
        }
        match why_not_active(pool, purchase.customer_id).await? {
            // The customer is active and the key is free again: the conflicting insert rolled back.
            CustomerError::Unavailable(_) => continue,
            refusal => return Err(refusal),
        }
    }
    Err(CustomerError::Unavailable(
        "idempotency key contended; retry".into(),
    ))
}
