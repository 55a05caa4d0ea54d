//! Tier history in SQLite: records appended at the feed positions of the writing transaction,
//! so the tier-change feed serves them in commit order.

use tierline_runtime::{instant::micros, sqlite::rows_param};

use super::{Write, rows::db_rank};
use crate::{ScoringError, domain::state::HistoryRecord};

/// Appends history records at the next feed positions of this transaction, in their order, in
/// one statement.
pub(super) async fn insert(
    write: &mut Write,
    records: &[HistoryRecord],
) -> Result<(), ScoringError> {
    let Some(first) = write.take_seqs(records.len()).await? else {
        return Ok(());
    };
    let rows: Vec<serde_json::Value> = records
        .iter()
        .zip(first..)
        .map(|(record, seq)| {
            serde_json::json!([
                record.id,
                seq,
                record.program_id,
                record.customer_id,
                db_rank(record.from_rank),
                db_rank(record.to_rank),
                record.reason.as_str(),
                record.policy_version_id,
                record.policy_version,
                // Stored as the JSON text Postgres keeps as jsonb.
                serde_json::to_string(&record.totals).unwrap_or_default(),
                micros(record.occurred_at),
                record.window.and_then(|window| window.start).map(micros),
                record.window.map(|window| micros(window.end)),
                record.evaluation_run_id,
                record.activity_id,
                record.operator_name,
                record.operator_reason,
                record.override_expires_at.map(micros),
            ])
        })
        .collect();
    sqlx::query(
        "INSERT INTO tier_history (id, seq, xid, program_id, customer_id, from_rank, to_rank, reason, policy_version_id,
                                   policy_version, totals, occurred_at, window_start, window_end, evaluation_run_id,
                                   activity_id, operator_name, operator_reason, override_expires_at)
         SELECT unhex(value ->> 0, '-'), value ->> 1, ?2, unhex(value ->> 2, '-'), unhex(value ->> 3, '-'), value ->> 4,
                value ->> 5, value ->> 6, unhex(value ->> 7, '-'), value ->> 8, value ->> 9, value ->> 10, value ->> 11,
                value ->> 12, unhex(value ->> 13, '-'), unhex(value ->> 14, '-'), value ->> 15, value ->> 16, value ->> 17
         FROM json_each(?1)",
    )
    .bind(rows_param(&rows))
    .bind(write.xid)
    .execute(&mut *write.tx)
    .await?;
    Ok(())
}
