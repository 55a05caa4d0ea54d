//! Bulk onboarding in Postgres: a batch of customers in one transaction and a handful of
//! statements whatever its size (lock the known external ids, insert the new customers and
//! their CREATED events, update the changed profiles, record the changed consents), so that a
//! batch of 10,000 costs about what a COPY of it does.

use crate::storage::BulkOnboarding;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::{
    PgCustomerStore,
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

/// The stored customers with these external ids, locked until the batch commits (in id order,
/// so that concurrent imports cannot deadlock).
async fn lock_known(
    connection: &mut PgConnection,
    external_ids: &[&str],
) -> Result<HashMap<String, Customer>, CustomerError> {
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE external_id = ANY($1) ORDER BY id FOR UPDATE"
    );
    let rows: Vec<CustomerRow> = sqlx::query_as(&sql)
        .bind(external_ids)
        .fetch_all(&mut *connection)
        .await?;
    rows.into_iter()
        .map(|row| {
            let customer = Customer::try_from(row)?;
            Ok((customer.external_id.clone().unwrap_or_default(), customer))
        })
        .collect()
}

/// Inserts the new customers and their CREATED events; returns the external ids inserted
/// (another import may have taken one since the lock).
async fn insert_new(
    connection: &mut PgConnection,
    new: &[&Onboarding],
) -> Result<HashSet<String>, CustomerError> {
    if new.is_empty() {
        return Ok(HashSet::new());
    }
    let customers: Vec<_> = new.iter().map(|item| &item.customer).collect();
    let ids: Vec<Uuid> = customers.iter().map(|c| c.id).collect();
    let external_ids: Vec<&str> = new.iter().map(|item| item.external_id.as_str()).collect();
    let names: Vec<&str> = customers.iter().map(|c| c.name.as_str()).collect();
    let emails: Vec<Option<&str>> = customers.iter().map(|c| c.email.as_deref()).collect();
    let phones: Vec<Option<&str>> = customers.iter().map(|c| c.phone.as_deref()).collect();
    let births: Vec<Option<NaiveDate>> = customers.iter().map(|c| c.birth_date).collect();
    let joined: Vec<DateTime<Utc>> = customers.iter().map(|c| c.joined_at).collect();
    let attributes: Vec<Json<_>> = customers.iter().map(|c| Json(&c.attributes)).collect();
    let created: Vec<DateTime<Utc>> = customers.iter().map(|c| c.created_at).collect();
    let inserted: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO customers (id, external_id, name, email, phone, birth_date, joined_at, attributes, status,
                                created_at, updated_at)
         SELECT id, external_id, name, email, phone, birth_date, joined_at, attributes, 'active', created_at, created_at
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[], $7::timestamptz[],
                     $8::jsonb[], $9::timestamptz[])
              AS t(id, external_id, name, email, phone, birth_date, joined_at, attributes, created_at)
         ON CONFLICT (external_id) DO NOTHING
         RETURNING id, external_id, created_at",
    )
    .bind(&ids)
    .bind(&external_ids)
    .bind(&names)
    .bind(&emails)
    .bind(&phones)
    .bind(&births)
    .bind(&joined)
    .bind(&attributes)
    .bind(&created)
    .fetch_all(&mut *connection)
    .await?;
    let (event_ids, event_times): (Vec<Uuid>, Vec<DateTime<Utc>>) =
        inserted.iter().map(|(id, _, at)| (*id, *at)).unzip();
    sqlx::query(
        "INSERT INTO customer_events (customer_id, kind, occurred_at)
         SELECT id, 'created', at FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, at)",
    )
    .bind(&event_ids)
    .bind(&event_times)
    .execute(&mut *connection)
    .await?;
    Ok(inserted
        .into_iter()
        .map(|(_, external_id, _)| external_id)
        .collect())
}

/// Sets the imported profile on stored customers (`(stored id, item)`); the join time only
/// where one was given.
async fn update_profiles(
    connection: &mut PgConnection,
    changed: &[(Uuid, &Onboarding)],
    now: DateTime<Utc>,
) -> Result<(), CustomerError> {
    if changed.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
    let customers: Vec<_> = changed.iter().map(|(_, item)| &item.customer).collect();
    let names: Vec<&str> = customers.iter().map(|c| c.name.as_str()).collect();
    let emails: Vec<Option<&str>> = customers.iter().map(|c| c.email.as_deref()).collect();
    let phones: Vec<Option<&str>> = customers.iter().map(|c| c.phone.as_deref()).collect();
    let births: Vec<Option<NaiveDate>> = customers.iter().map(|c| c.birth_date).collect();
    let joined: Vec<Option<DateTime<Utc>>> = changed
        .iter()
        .map(|(_, item)| item.joined_at_given.then_some(item.customer.joined_at))
        .collect();
    let attributes: Vec<Json<_>> = customers.iter().map(|c| Json(&c.attributes)).collect();
    sqlx::query(
        "UPDATE customers c SET name = t.name, email = t.email, phone = t.phone, birth_date = t.birth_date,
                                joined_at = COALESCE(t.joined_at, c.joined_at), attributes = t.attributes,
                                updated_at = $8
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::date[], $6::timestamptz[], $7::jsonb[])
              AS t(id, name, email, phone, birth_date, joined_at, attributes)
         WHERE c.id = t.id",
    )
    .bind(&ids)
    .bind(&names)
    .bind(&emails)
    .bind(&phones)
    .bind(&births)
    .bind(&joined)
    .bind(&attributes)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Of `wanted` (each with its customer set), the changes whose channel's current state differs
/// or was never recorded.
async fn differing_consents(
    connection: &mut PgConnection,
    wanted: Vec<ConsentChange>,
) -> Result<Vec<ConsentChange>, CustomerError> {
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let customers: Vec<Uuid> = wanted
        .iter()
        .map(|change| change.customer_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let current: HashMap<(Uuid, String), bool> = sqlx::query_as::<_, (Uuid, String, bool)>(
        "SELECT customer_id, channel, granted FROM consents WHERE customer_id = ANY($1)",
    )
    .bind(&customers)
    .fetch_all(&mut *connection)
    .await?
    .into_iter()
    .map(|(customer, channel, granted)| ((customer, channel), granted))
    .collect();
    Ok(wanted
        .into_iter()
        .filter(|change| {
            current.get(&(change.customer_id, change.channel.as_str().to_owned()))
                != Some(&change.granted)
        })
        .collect())
}

/// Records consent changes: the history, and the current state where the change is not older
/// than it (as `SetConsent` does).
async fn record_consents(
    connection: &mut PgConnection,
    changes: &[ConsentChange],
) -> Result<(), CustomerError> {
    if changes.is_empty() {
        return Ok(());
    }
    let customers: Vec<Uuid> = changes.iter().map(|c| c.customer_id).collect();
    let channels: Vec<&str> = changes.iter().map(|c| c.channel.as_str()).collect();
    let granted: Vec<bool> = changes.iter().map(|c| c.granted).collect();
    let changed_at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.changed_at).collect();
    let sources: Vec<&str> = changes.iter().map(|c| c.source.as_str()).collect();
    let recorded_at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.recorded_at).collect();
    sqlx::query(
        "WITH changes AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bool[], $4::timestamptz[], $5::text[], $6::timestamptz[])
                 AS t(customer_id, channel, granted, changed_at, source, recorded_at)),
         history AS (
             INSERT INTO consent_changes (customer_id, channel, granted, changed_at, source, recorded_at)
             SELECT customer_id, channel, granted, changed_at, source, recorded_at FROM changes)
         INSERT INTO consents (customer_id, channel, granted, changed_at, source)
         SELECT customer_id, channel, granted, changed_at, source FROM changes
         ON CONFLICT (customer_id, channel) DO UPDATE
             SET granted = excluded.granted, changed_at = excluded.changed_at, source = excluded.source
             WHERE consents.changed_at <= excluded.changed_at",
    )
    .bind(&customers)
    .bind(&channels)
    .bind(&granted)
    .bind(&changed_at)
    .bind(&sources)
    .bind(&recorded_at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

#[async_trait]
impl BulkOnboarding for PgCustomerStore {
    #[tracing::instrument(skip_all, fields(customers = batch.len()))]
    async fn onboard(&self, batch: &[Onboarding]) -> Result<Vec<OnboardingOutcome>, CustomerError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let external_ids: Vec<&str> = batch.iter().map(|item| item.external_id.as_str()).collect();
        let mut known = lock_known(&mut tx, &external_ids).await?;
        let new: Vec<&Onboarding> = batch
            .iter()
            .filter(|item| !known.contains_key(&item.external_id))
            .collect();
        let inserted = insert_new(&mut tx, &new).await?;
        // Taken by a concurrent import since the lock: stored customers like the others.
        let raced: Vec<&str> = new
            .iter()
            .map(|item| item.external_id.as_str())
            .filter(|external_id| !inserted.contains(*external_id))
            .collect();
        if !raced.is_empty() {
            known.extend(lock_known(&mut tx, &raced).await?);
        }

        let mut outcomes = Vec::with_capacity(batch.len());
        let mut changed_profiles: Vec<(Uuid, &Onboarding)> = Vec::new();
        let mut wanted_consents: Vec<ConsentChange> = Vec::new();
        for item in batch {
            let (customer_id, outcome) = match known.get(&item.external_id) {
                Some(stored) if !inserted.contains(&item.external_id) => {
                    if !item.profile_matches(stored) {
                        changed_profiles.push((stored.id, item));
                    }
                    (stored.id, None)
                }
                _ => (
                    item.customer.id,
                    Some(OnboardingOutcome::Created {
                        customer_id: item.customer.id,
                    }),
                ),
            };
            wanted_consents.extend(item.consents.iter().map(|consent| ConsentChange {
                customer_id,
                ..consent.clone()
            }));
            outcomes.push((customer_id, outcome));
        }
        update_profiles(&mut tx, &changed_profiles, now).await?;
        let recorded = differing_consents(&mut tx, wanted_consents).await?;
        record_consents(&mut tx, &recorded).await?;
        tx.commit().await?;

        let profile_changed: HashSet<Uuid> = changed_profiles.iter().map(|(id, _)| *id).collect();
        let consent_changed: HashSet<Uuid> = recorded.iter().map(|c| c.customer_id).collect();
        Ok(outcomes
            .into_iter()
            .map(|(customer_id, outcome)| {
                outcome.unwrap_or(
                    if profile_changed.contains(&customer_id)
                        || consent_changed.contains(&customer_id)
                    {
                        OnboardingOutcome::Updated { customer_id }
                    } else {
                        OnboardingOutcome::Unchanged { customer_id }
                    },
                )
            })
            .collect())
    }
}
