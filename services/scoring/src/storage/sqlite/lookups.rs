//! Reads of tier state for lookups, history and explanations, outside any unit of work. Each
//! runs in one read transaction, so it sees one snapshot.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tierline_runtime::instant::micros;
use uuid::Uuid;

use super::{
    SqliteScoringStore,
    rows::{BUCKET_COLUMNS, BucketRow, HISTORY_COLUMNS, HistoryRow, STATE_COLUMNS, StateRow},
    rows::{COUNTED_COLUMNS, CountedRow, MEMBER_COLUMNS, MemberRow},
};
use crate::domain::ports::Lookups;
use crate::{
    ScoringError,
    domain::{
        accrual::CountedPurchase,
        state::{HistoryRecord, Member, StoredState},
        window::Bucket,
    },
    storage::CustomerRecord,
};

#[async_trait]
impl Lookups for SqliteScoringStore {
    #[tracing::instrument(skip_all, fields(customers = customer_ids.len()))]
    async fn customer_records(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<CustomerRecord>, ScoringError> {
        let mut tx = self.pool.begin().await?;
        let member_sql = format!("SELECT {MEMBER_COLUMNS} FROM members WHERE customer_id = ?1");
        let state_sql = format!(
            "SELECT {STATE_COLUMNS} FROM tier_states WHERE program_id = ?1 AND customer_id = ?2"
        );
        let bucket_sql = format!(
            "SELECT {BUCKET_COLUMNS} FROM buckets WHERE program_id = ?1 AND customer_id = ?2 ORDER BY month"
        );
        let mut records = Vec::with_capacity(customer_ids.len());
        for &customer_id in customer_ids {
            let member: Option<MemberRow> = sqlx::query_as(&member_sql)
                .bind(customer_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(member) = member else {
                continue;
            };
            let state: Option<StateRow> = sqlx::query_as(&state_sql)
                .bind(program_id)
                .bind(customer_id)
                .fetch_optional(&mut *tx)
                .await?;
            let buckets: Vec<BucketRow> = sqlx::query_as(&bucket_sql)
                .bind(program_id)
                .bind(customer_id)
                .fetch_all(&mut *tx)
                .await?;
            records.push(CustomerRecord {
                member: Member::from(member),
                state: state.map(StoredState::from),
                buckets: buckets.into_iter().map(Bucket::from).collect(),
            });
        }
        tx.commit().await?;
        Ok(records)
    }

    #[tracing::instrument(skip(self))]
    async fn history(
        &self,
        program_id: Uuid,
        customer_id: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<HistoryRecord>, ScoringError> {
        let rows: Vec<HistoryRow> = sqlx::query_as(&format!(
            "SELECT {HISTORY_COLUMNS} FROM tier_history
             WHERE program_id = ?1 AND customer_id = ?2 AND (?3 IS NULL OR (occurred_at, id) < (?3, ?4))
             ORDER BY occurred_at DESC, id DESC LIMIT ?5"
        ))
        .bind(program_id)
        .bind(customer_id)
        .bind(before.map(|(occurred_at, _)| micros(occurred_at)))
        .bind(before.map(|(_, id)| id))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(HistoryRow::into_record).collect()
    }

    #[tracing::instrument(skip(self))]
    async fn counted_purchases(
        &self,
        program_id: Uuid,
        customer_id: Uuid,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<(Vec<CountedPurchase>, i64), ScoringError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<CountedRow> = sqlx::query_as(&format!(
            "SELECT {COUNTED_COLUMNS} FROM counted_purchases
             WHERE program_id = ?1 AND customer_id = ?2 AND (?3 IS NULL OR occurred_at >= ?3) AND occurred_at < ?4
             ORDER BY occurred_at DESC LIMIT ?5"
        ))
        .bind(program_id)
        .bind(customer_id)
        .bind(from.map(micros))
        .bind(micros(until))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM counted_purchases
             WHERE program_id = ?1 AND customer_id = ?2 AND (?3 IS NULL OR occurred_at >= ?3) AND occurred_at < ?4",
        )
        .bind(program_id)
        .bind(customer_id)
        .bind(from.map(micros))
        .bind(micros(until))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        // Months are not needed for explanations.
        let purchases = rows
            .into_iter()
            .map(|row| row.into_purchase(chrono_tz::Tz::UTC))
            .collect();
        Ok((purchases, total))
    }
}
