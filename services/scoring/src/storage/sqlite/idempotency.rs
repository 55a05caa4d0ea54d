//! Claiming idempotency keys inside the transaction of the write they guard.

use chrono::Utc;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::idempotency::{IdempotentRequest, PriorRequest},
};
use tierline_runtime::instant::micros;

/// Claims `request`'s key for `resource_id`, or returns the request that claimed it first.
pub(super) async fn claim(
    connection: &mut SqliteConnection,
    request: &IdempotentRequest,
    resource_id: Uuid,
) -> Result<Option<PriorRequest>, ScoringError> {
    let claimed = sqlx::query(
        "INSERT INTO idempotent_requests (operation, key, fingerprint, resource_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (operation, key) DO NOTHING",
    )
    .bind(request.operation.as_str())
    .bind(&request.key)
    .bind(&request.fingerprint)
    .bind(resource_id)
    .bind(micros(Utc::now()))
    .execute(&mut *connection)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(None);
    }
    let (fingerprint, resource_id): (Vec<u8>, Uuid) = sqlx::query_as(
        "SELECT fingerprint, resource_id FROM idempotent_requests WHERE operation = ?1 AND key = ?2",
    )
    .bind(request.operation.as_str())
    .bind(&request.key)
    .fetch_one(&mut *connection)
    .await?;
    Ok(Some(PriorRequest {
        fingerprint,
        resource_id,
    }))
}
