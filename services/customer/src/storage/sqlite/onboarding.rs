//! Bulk onboarding in SQLite: the batch in one write transaction, customer by customer (one
//! writer, no round trips: statements cost microseconds here).

use crate::storage::BulkOnboarding;
use async_trait::async_trait;
use chrono::Utc;
use sqlx::types::Json;
use tierline_runtime::instant::micros;

use super::{
    SqliteCustomerStore,
    consents::record_consent,
    customers::add_event,
    rows::{CUSTOMER_COLUMNS, CustomerRow},
};
use crate::{
    CustomerError,
    domain::{
        consent::ConsentChange,
        customer::Customer,
        onboarding::{Onboarding, OnboardingOutcome},
    },
};

#[async_trait]
impl BulkOnboarding for SqliteCustomerStore {
    async fn onboard(&self, batch: &[Onboarding]) -> Result<Vec<OnboardingOutcome>, CustomerError> {
        let now = Utc::now();
        let mut write = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let select = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE external_id = ?");
        for item in batch {
            let stored: Option<CustomerRow> = sqlx::query_as(&select)
                .bind(&item.external_id)
                .fetch_optional(&mut *write.tx)
                .await?;
            let stored = stored.map(Customer::try_from).transpose()?;
            let new = &item.customer;
            let (customer_id, mut changed) = match &stored {
                None => {
                    sqlx::query(
                        "INSERT INTO customers (id, external_id, name, email, phone, birth_date, joined_at, attributes,
                                                status, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?9)",
                    )
                    .bind(new.id)
                    .bind(&item.external_id)
                    .bind(&new.name)
                    .bind(&new.email)
                    .bind(&new.phone)
                    .bind(new.birth_date)
                    .bind(micros(new.joined_at))
                    .bind(Json(&new.attributes))
                    .bind(micros(new.created_at))
                    .execute(&mut *write.tx)
                    .await?;
                    add_event(&mut write, new.id, "created", new.created_at).await?;
                    (new.id, false)
                }
                Some(customer) if item.profile_matches(customer) => (customer.id, false),
                Some(customer) => {
                    sqlx::query(
                        "UPDATE customers SET name = ?2, email = ?3, phone = ?4, birth_date = ?5,
                                              joined_at = COALESCE(?6, joined_at), attributes = ?7, updated_at = ?8
                         WHERE id = ?1",
                    )
                    .bind(customer.id)
                    .bind(&new.name)
                    .bind(&new.email)
                    .bind(&new.phone)
                    .bind(new.birth_date)
                    .bind(item.joined_at_given.then_some(micros(new.joined_at)))
                    .bind(Json(&new.attributes))
                    .bind(micros(now))
                    .execute(&mut *write.tx)
                    .await?;
                    (customer.id, true)
                }
            };
            for consent in &item.consents {
                let current: Option<bool> = sqlx::query_scalar(
                    "SELECT granted FROM consents WHERE customer_id = ? AND channel = ?",
                )
                .bind(customer_id)
                .bind(consent.channel.as_str())
                .fetch_optional(&mut *write.tx)
                .await?;
                if current == Some(consent.granted) {
                    continue;
                }
                record_consent(
                    &mut write.tx,
                    &ConsentChange {
                        customer_id,
                        ..consent.clone()
                    },
                )
                .await?;
                changed = true;
            }
            outcomes.push(match (&stored, changed) {
                (None, _) => OnboardingOutcome::Created { customer_id },
                (Some(_), true) => OnboardingOutcome::Updated { customer_id },
                (Some(_), false) => OnboardingOutcome::Unchanged { customer_id },
            });
        }
        self.commit_feed(write).await?;
        Ok(outcomes)
    }
}
