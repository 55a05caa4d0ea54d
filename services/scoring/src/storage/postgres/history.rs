//! Appending to the tier history: one statement for any number of records. The rows' feed
//! position (xid, seq) is taken by the table's defaults.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction, types::Json};
use uuid::Uuid;

use crate::{ScoringError, domain::state::HistoryRecord};

/// Appends `records`.
#[tracing::instrument(skip_all, fields(records = records.len()))]
pub(super) async fn insert(
    tx: &mut Transaction<'static, Postgres>,
    records: &[HistoryRecord],
) -> Result<(), ScoringError> {
    if records.is_empty() {
        return Ok(());
    }
    let list =
        |f: &dyn Fn(&HistoryRecord) -> Uuid| -> Vec<Uuid> { records.iter().map(f).collect() };
    let ranks = |f: &dyn Fn(&HistoryRecord) -> u32| -> Vec<i32> {
        records
            .iter()
            .map(|r| i32::try_from(f(r)).unwrap_or(i32::MAX))
            .collect()
    };
    let reasons: Vec<&str> = records.iter().map(|r| r.reason.as_str()).collect();
    let policy_ids: Vec<Option<Uuid>> = records.iter().map(|r| r.policy_version_id).collect();
    let policy_versions: Vec<Option<i32>> = records.iter().map(|r| r.policy_version).collect();
    let totals: Vec<Json<_>> = records.iter().map(|r| Json(r.totals)).collect();
    let occurred: Vec<DateTime<Utc>> = records.iter().map(|r| r.occurred_at).collect();
    sqlx::query(
        "INSERT INTO tier_history (id, program_id, customer_id, from_rank, to_rank, reason, policy_version_id, policy_version,
                                   totals, occurred_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::int[], $6::text[], $7::uuid[], $8::int[],
                              $9::jsonb[], $10::timestamptz[])",
    )
    .bind(list(&|r| r.id))
    .bind(list(&|r| r.program_id))
    .bind(list(&|r| r.customer_id))
    .bind(ranks(&|r| r.from_rank))
    .bind(ranks(&|r| r.to_rank))
    .bind(&reasons)
    .bind(&policy_ids)
    .bind(&policy_versions)
    .bind(&totals)
    .bind(&occurred)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
