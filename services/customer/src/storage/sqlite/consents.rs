//! Consents and their history in SQLite.

use crate::storage::ConsentRecords;
use async_trait::async_trait;
use std::collections::HashMap;
use tierline_runtime::instant::{from_micros, micros};

use uuid::Uuid;

use super::{SqliteCustomerStore, customers::ensure_active};
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

/// A customer's status and one of its current consents, if any.
type CurrentRow = (
    String,
    Option<String>,
    Option<bool>,
    Option<i64>,
    Option<String>,
);

fn channel(value: &str) -> Result<ConsentChannel, CustomerError> {
    ConsentChannel::parse(value)
        .ok_or_else(|| CustomerError::Internal(format!("unknown channel {value:?}")))
}

#[async_trait]
impl ConsentRecords for SqliteCustomerStore {
    async fn set_consent(&self, change: &ConsentChange) -> Result<Consent, CustomerError> {
        let mut write = self.begin_write().await?;
        ensure_active(&mut write.tx, change.customer_id).await?;
        record_consent(&mut write.tx, change).await?;
        let (granted, changed_at, source): (bool, i64, String) = sqlx::query_as(
            "SELECT granted, changed_at, source FROM consents WHERE customer_id = ? AND channel = ?",
        )
        .bind(change.customer_id)
        .bind(change.channel.as_str())
        .fetch_one(&mut *write.tx)
        .await?;
        write.tx.commit().await?;
        Ok(Consent {
            customer_id: change.customer_id,
            channel: change.channel,
            granted,
            changed_at: Some(from_micros(changed_at)),
            source,
        })
    }

    async fn consent_history(
        &self,
        customer_id: Uuid,
        page: HistoryPage,
    ) -> Result<Vec<RecordedConsentChange>, CustomerError> {
        let rows: Vec<(i64, String, bool, i64, String, i64)> = sqlx::query_as(
            "SELECT position, channel, granted, changed_at, source, recorded_at FROM consent_changes
             WHERE customer_id = ?1 AND (?2 IS NULL OR position < ?2)
             ORDER BY position DESC LIMIT ?3",
        )
        .bind(customer_id)
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(position, name, granted, changed_at, source, recorded_at)| {
                    Ok(RecordedConsentChange {
                        position,
                        change: ConsentChange {
                            customer_id,
                            channel: channel(&name)?,
                            granted,
                            changed_at: from_micros(changed_at),
                            source,
                            recorded_at: from_micros(recorded_at),
                        },
                    })
                },
            )
            .collect()
    }

    async fn consents(&self, ids: &[Uuid]) -> Result<Vec<CustomerConsents>, CustomerError> {
        let mut by_customer: HashMap<Uuid, CustomerConsents> = HashMap::new();
        for id in ids {
            let rows: Vec<CurrentRow> = sqlx::query_as(
                "SELECT c.status, s.channel, s.granted, s.changed_at, s.source
                     FROM customers c LEFT JOIN consents s ON s.customer_id = c.id
                     WHERE c.id = ?",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            for (status, name, granted, changed_at, source) in rows {
                let entry = by_customer.entry(*id).or_insert_with(|| CustomerConsents {
                    customer_id: *id,
                    erased: status == CustomerStatus::Erased.as_str(),
                    consents: ConsentChannel::ALL
                        .iter()
                        .map(|channel| Consent::never_given(*id, *channel))
                        .collect(),
                });
                if let (Some(name), Some(granted), Some(changed_at)) = (name, granted, changed_at) {
                    let channel = channel(&name)?;
                    if let Some(slot) = entry
                        .consents
                        .iter_mut()
                        .find(|consent| consent.channel == channel)
                    {
                        *slot = Consent {
                            customer_id: *id,
                            channel,
                            granted,
                            changed_at: Some(from_micros(changed_at)),
                            source: source.unwrap_or_default(),
                        };
                    }
                }
            }
        }
        Ok(by_customer.into_values().collect())
    }
}

/// Records one consent change: the history, and the current state unless it is newer.
pub(super) async fn record_consent(
    connection: &mut sqlx::SqliteConnection,
    change: &ConsentChange,
) -> Result<(), CustomerError> {
    sqlx::query(
        "INSERT INTO consent_changes (customer_id, channel, granted, changed_at, source, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(change.customer_id)
    .bind(change.channel.as_str())
    .bind(change.granted)
    .bind(micros(change.changed_at))
    .bind(&change.source)
    .bind(micros(change.recorded_at))
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO consents (customer_id, channel, granted, changed_at, source) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (customer_id, channel) DO UPDATE
             SET granted = excluded.granted, changed_at = excluded.changed_at, source = excluded.source
             WHERE consents.changed_at <= excluded.changed_at",
    )
    .bind(change.customer_id)
    .bind(change.channel.as_str())
    .bind(change.granted)
    .bind(micros(change.changed_at))
    .bind(&change.source)
    .execute(&mut *connection)
    .await?;
    Ok(())
}
