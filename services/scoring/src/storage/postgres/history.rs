//! Appending to the tier history: one statement for any number of records. The rows' feed
//! position (xid, seq) is taken by the table's defaults.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction, types::Json};
use uuid::Uuid;

use super::rows::db_rank;
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
        records.iter().map(|r| db_rank(f(r))).collect()
    };
    let reasons: Vec<&str> = records.iter().map(|r| r.reason.as_str()).collect();
    let policy_ids: Vec<Option<Uuid>> = records.iter().map(|r| r.policy_version_id).collect();
    let policy_versions: Vec<Option<i32>> = records.iter().map(|r| r.policy_version).collect();
    let totals: Vec<Json<_>> = records.iter().map(|r| Json(r.totals)).collect();
    let occurred: Vec<DateTime<Utc>> = records.iter().map(|r| r.occurred_at).collect();
    let instants =
        |f: &dyn Fn(&HistoryRecord) -> Option<DateTime<Utc>>| -> Vec<Option<DateTime<Utc>>> {
            records.iter().map(f).collect()
        };
    let ids = |f: &dyn Fn(&HistoryRecord) -> Option<Uuid>| -> Vec<Option<Uuid>> {
        records.iter().map(f).collect()
    };
    let texts = |f: &dyn Fn(&HistoryRecord) -> Option<&str>| -> Vec<Option<&str>> {
        records.iter().map(f).collect()
    };
    sqlx::query(
        "INSERT INTO tier_history (id, program_id, customer_id, from_rank, to_rank, reason, policy_version_id, policy_version,
                                   totals, occurred_at, window_start, window_end, evaluation_run_id, activity_id,
                                   operator_name, operator_reason, override_expires_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::int[], $6::text[], $7::uuid[], $8::int[],
                              $9::jsonb[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::uuid[],
                              $14::uuid[], $15::text[], $16::text[], $17::timestamptz[])",
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
    .bind(instants(&|r| r.window.and_then(|w| w.start)))
    .bind(instants(&|r| r.window.map(|w| w.end)))
    .bind(ids(&|r| r.evaluation_run_id))
    .bind(ids(&|r| r.activity_id))
    .bind(texts(&|r| r.operator_name.as_deref()))
    .bind(texts(&|r| r.operator_reason.as_deref()))
    .bind(instants(&|r| r.override_expires_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
