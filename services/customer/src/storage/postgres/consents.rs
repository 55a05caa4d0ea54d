//! Consents and their history in Postgres.

use crate::storage::ConsentRecords;
use async_trait::async_trait;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PgCustomerStore, customers::lock_active};
use crate::{
    CustomerError,
    domain::{
        consent::{
            Consent, ConsentChange, ConsentChannel, CustomerConsents, HistoryPage,
            RecordedConsentChange,
        },
        customer::CustomerStatus,
    },
};

#[derive(sqlx::FromRow)]
struct ConsentRow {
    customer_id: Uuid,
    channel: String,
    granted: bool,
    changed_at: DateTime<Utc>,
    source: String,
}

fn channel(value: &str) -> Result<ConsentChannel, CustomerError> {
    ConsentChannel::parse(value)
        .ok_or_else(|| CustomerError::Internal(format!("unknown channel {value:?}")))
}

impl TryFrom<ConsentRow> for Consent {
    type Error = CustomerError;

    fn try_from(row: ConsentRow) -> Result<Self, Self::Error> {
        Ok(Self {
            customer_id: row.customer_id,
            channel: channel(&row.channel)?,
            granted: row.granted,
            changed_at: Some(row.changed_at),
            source: row.source,
        })
    }
}

#[async_trait]
impl ConsentRecords for PgCustomerStore {
    #[tracing::instrument(skip_all, fields(customer_id = %change.customer_id, channel = change.channel.as_str()))]
    async fn set_consent(&self, change: &ConsentChange) -> Result<Consent, CustomerError> {
        let mut tx = self.pool.begin().await?;
        lock_active(&mut tx, change.customer_id).await?;
        sqlx::query(
            "INSERT INTO consent_changes (customer_id, channel, granted, changed_at, source, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(change.customer_id)
        .bind(change.channel.as_str())
        .bind(change.granted)
        .bind(change.changed_at)
        .bind(&change.source)
        .bind(change.recorded_at)
        .execute(&mut *tx)
        .await?;
        // A change that arrives late (older changed_at than the current state) joins the history
        // but does not overwrite the newer current state.
        sqlx::query(
            "INSERT INTO consents (customer_id, channel, granted, changed_at, source) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (customer_id, channel) DO UPDATE
                 SET granted = EXCLUDED.granted, changed_at = EXCLUDED.changed_at, source = EXCLUDED.source
                 WHERE consents.changed_at <= EXCLUDED.changed_at",
        )
        .bind(change.customer_id)
        .bind(change.channel.as_str())
        .bind(change.granted)
        .bind(change.changed_at)
        .bind(&change.source)
        .execute(&mut *tx)
        .await?;
        let current: ConsentRow = sqlx::query_as(
            "SELECT customer_id, channel, granted, changed_at, source FROM consents WHERE customer_id = $1 AND channel = $2",
        )
        .bind(change.customer_id)
        .bind(change.channel.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        current.try_into()
    }

    #[tracing::instrument(skip(self))]
    async fn consent_history(
        &self,
        customer_id: Uuid,
        page: HistoryPage,
    ) -> Result<Vec<RecordedConsentChange>, CustomerError> {
        #[derive(sqlx::FromRow)]
        struct ChangeRow {
            position: i64,
            channel: String,
            granted: bool,
            changed_at: DateTime<Utc>,
            source: String,
            recorded_at: DateTime<Utc>,
        }
        let rows: Vec<ChangeRow> = sqlx::query_as(
            "SELECT position, channel, granted, changed_at, source, recorded_at FROM consent_changes
             WHERE customer_id = $1 AND ($2::bigint IS NULL OR position < $2)
             ORDER BY position DESC LIMIT $3",
        )
        .bind(customer_id)
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(RecordedConsentChange {
                    position: row.position,
                    change: ConsentChange {
                        customer_id,
                        channel: channel(&row.channel)?,
                        granted: row.granted,
                        changed_at: row.changed_at,
                        source: row.source,
                        recorded_at: row.recorded_at,
                    },
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(count = ids.len()))]
    async fn consents(&self, ids: &[Uuid]) -> Result<Vec<CustomerConsents>, CustomerError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            status: String,
            channel: Option<String>,
            granted: Option<bool>,
            changed_at: Option<DateTime<Utc>>,
            source: Option<String>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT c.id, c.status, s.channel, s.granted, s.changed_at, s.source
             FROM customers c LEFT JOIN consents s ON s.customer_id = c.id
             WHERE c.id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut by_customer: HashMap<Uuid, CustomerConsents> = HashMap::new();
        for row in rows {
            let entry = by_customer
                .entry(row.id)
                .or_insert_with(|| CustomerConsents {
                    customer_id: row.id,
                    erased: row.status == CustomerStatus::Erased.as_str(),
                    consents: ConsentChannel::ALL
                        .iter()
                        .map(|channel| Consent::never_given(row.id, *channel))
                        .collect(),
                });
            if let (Some(name), Some(granted), Some(changed_at)) =
                (row.channel, row.granted, row.changed_at)
            {
                let channel = channel(&name)?;
                if let Some(slot) = entry
                    .consents
                    .iter_mut()
                    .find(|consent| consent.channel == channel)
                {
                    *slot = Consent {
                        customer_id: row.id,
                        channel,
                        granted,
                        changed_at: Some(changed_at),
                        source: row.source.unwrap_or_default(),
                    };
                }
            }
        }
        Ok(by_customer.into_values().collect())
    }
}
