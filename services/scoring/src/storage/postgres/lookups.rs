//! Reads of tier state for lookups and history, outside any unit of work.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{
    PgScoringStore,
    rows::{COUNTED_COLUMNS, CountedRow, HISTORY_COLUMNS, HistoryRow},
    rows::{JoinedStateRow, MemberRow, STATE_COLUMNS},
};
use crate::domain::ports::Lookups;
use crate::{
    ScoringError,
    domain::state::{HistoryRecord, Member},
    storage::CustomerRecord,
};

#[async_trait]
impl Lookups for PgScoringStore {
    #[tracing::instrument(skip_all, fields(customers = customer_ids.len()))]
    async fn customer_records(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<CustomerRecord>, ScoringError> {
        // One row: the months are columns of the state, so a record's state and buckets are
        // always of the same commit.
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            member: MemberRow,
            #[sqlx(flatten)]
            state: JoinedStateRow,
            // NULL for a member without a state.
            months: Option<Vec<NaiveDate>>,
            spend_through: Option<Vec<i64>>,
            points_through: Option<Vec<i64>>,
            purchases_through: Option<Vec<i64>>,
        }
        let sql = format!(
            "SELECT m.customer_id, m.joined_at, m.erased, {STATE_COLUMNS}, {months}
             FROM members m
             LEFT JOIN tier_states s ON s.program_id = $1 AND s.customer_id = m.customer_id
             WHERE m.customer_id = ANY($2)",
            months = super::months::month_columns("s"),
        );
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(customer_ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let buckets = super::months::MonthColumns::from_nullable(
                    row.months,
                    row.spend_through,
                    row.points_through,
                    row.purchases_through,
                )
                .buckets();
                CustomerRecord {
                    member: Member::from(row.member),
                    state: row.state.into_state(),
                    buckets,
                }
            })
            .collect())
    }

    #[tracing::instrument(skip(self))]
    async fn history(
        &self,
        program_id: Uuid,
        customer_id: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<HistoryRecord>, ScoringError> {
        let columns = HISTORY_COLUMNS;
        let rows: Vec<HistoryRow> = match before {
            None => {
                let sql = format!(
                    "SELECT {columns} FROM tier_history WHERE program_id = $1 AND customer_id = $2
                     ORDER BY occurred_at DESC, id DESC LIMIT $3"
                );
                sqlx::query_as(&sql)
                    .bind(program_id)
                    .bind(customer_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some((occurred_at, id)) => {
                let sql = format!(
                    "SELECT {columns} FROM tier_history WHERE program_id = $1 AND customer_id = $2 AND (occurred_at, id) < ($3, $4)
                     ORDER BY occurred_at DESC, id DESC LIMIT $5"
                );
                sqlx::query_as(&sql)
                    .bind(program_id)
                    .bind(customer_id)
                    .bind(occurred_at)
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
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
    ) -> Result<(Vec<crate::domain::accrual::CountedPurchase>, i64), ScoringError> {
        // No start (a lifetime window) is no lower bound; chrono's minimum instant lies outside
        // Postgres's timestamp range, so it cannot stand in for one.
        let rows: Vec<CountedRow> = sqlx::query_as(&format!(
            "SELECT {COUNTED_COLUMNS} FROM counted_purchases
             WHERE program_id = $1 AND customer_id = $2 AND ($3::timestamptz IS NULL OR occurred_at >= $3)
               AND occurred_at < $4
             ORDER BY occurred_at DESC LIMIT $5"
        ))
        .bind(program_id)
        .bind(customer_id)
        .bind(from)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM counted_purchases
             WHERE program_id = $1 AND customer_id = $2 AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND occurred_at < $4",
        )
        .bind(program_id)
        .bind(customer_id)
        .bind(from)
        .bind(until)
        .fetch_one(&self.pool)
        .await?;
        // Months are not needed for explanations.
        let purchases = rows
            .into_iter()
            .map(|row| row.into_purchase(chrono_tz::Tz::UTC))
            .collect();
        Ok((purchases, total))
    }
}
