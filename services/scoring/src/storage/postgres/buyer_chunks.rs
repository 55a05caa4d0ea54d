//! The chunks a walk over a program's buyers takes, shared by the bucket rebuild of a policy
//! change (`evaluation.rs`) and the recount of purchase profiles (`purchase_profiles.rs`).

use uuid::Uuid;

use crate::ScoringError;

/// Holds off the feed consumer's writes of months and profiles until `tx` commits (what it writes
/// meanwhile then adds to the rebuilt rows; a purchase not yet committed is in no chunk), and
/// reads the next `limit` customers after `after` who have a counted purchase: one chunk of a
/// rebuild or a recount.
pub(super) async fn lock_next_buyers(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    program_id: Uuid,
    after: Uuid,
    limit: u32,
) -> Result<Vec<Uuid>, ScoringError> {
    super::months::guard_months(tx, true).await?;
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT customer_id FROM counted_purchases WHERE program_id = $1 AND customer_id > $2
         ORDER BY customer_id LIMIT $3",
    )
    .bind(program_id)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut **tx)
    .await?)
}
