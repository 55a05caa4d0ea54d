//! The customer service's operations: validate input, apply the rules, call storage. The gRPC
//! adapter converts messages and calls these; nothing here knows about protobuf or SQL.

use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, Utc};
use tierline_runtime::xid_feed::{CursorRefusal, FeedIdentity};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    activity::{Activity, PurchaseInput, Recorded, RefundInput, parse_id},
    consent::{Consent, ConsentInput, CustomerConsents, HistoryPage, RecordedConsentChange},
    customer::{Customer, CustomerFilter, ProfileField, ProfileInput},
    feed::FeedCursor,
    import::{ImportCommand, ImportInput, ImportOutcome, MAX_BATCH_ITEMS},
    paging,
    validate::Violations,
};
use crate::{CustomerError, domain::ports::CustomerStore, feed_server::FeedWatcher};

/// Most ids in one batch read.
pub const MAX_BATCH_IDS: usize = 1000;

/// Everything held about one customer.
#[derive(Debug, Clone)]
pub struct CustomerExport {
    /// The profile.
    pub customer: Customer,
    /// Current consents.
    pub consents: Vec<Consent>,
    /// Consent history, newest first.
    pub consent_history: Vec<RecordedConsentChange>,
    /// Activities, newest first.
    pub activities: Vec<Activity>,
    /// When taken.
    pub exported_at: DateTime<Utc>,
}

pub use super::rules::Rules;

/// The customer service's domain API.
#[derive(Debug, Clone)]
pub struct Customers {
    store: Arc<dyn CustomerStore>,
    rules: Rules,
    feed: FeedWatcher,
}

fn parse_customer_id(field: &str, value: &str) -> Result<Uuid, CustomerError> {
    let mut violations = Violations::default();
    let id = parse_id(&mut violations, field, value);
    violations.into_result().map(|()| id)
}

fn parse_ids(field: &str, values: &[String]) -> Result<Vec<Uuid>, CustomerError> {
    if values.is_empty() || values.len() > MAX_BATCH_IDS {
        return Err(CustomerError::invalid(
            field,
            format!("must hold 1 to {MAX_BATCH_IDS} ids"),
        ));
    }
    let mut violations = Violations::default();
    let ids = values
        .iter()
        .enumerate()
        .map(|(i, value)| parse_id(&mut violations, &format!("{field}[{i}]"), value))
        .collect();
    violations.into_result().map(|()| ids)
}

fn missing(requested: &[Uuid], found: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let found: HashSet<Uuid> = found.collect();
    let mut seen = HashSet::new();
    requested
        .iter()
        .copied()
        .filter(|id| !found.contains(id) && seen.insert(*id))
        .collect()
}

impl Customers {
    /// The service over `store`.
    pub fn new(store: Arc<dyn CustomerStore>, rules: Rules, feed: FeedWatcher) -> Self {
        Self { store, rules, feed }
    }

    /// Creates a customer.
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, input: ProfileInput) -> Result<Customer, CustomerError> {
        let customer = input.into_new_customer(Utc::now(), &self.rules)?;
        self.store.create_customer(&customer).await
    }

    /// A customer by id.
    #[tracing::instrument(skip(self))]
    pub async fn get(&self, id: &str) -> Result<Customer, CustomerError> {
        let id = parse_customer_id("id", id)?;
        self.store
            .customer(id)
            .await?
            .ok_or_else(|| CustomerError::customer_not_found(id))
    }

    /// A customer by external id.
    #[tracing::instrument(skip(self))]
    pub async fn get_by_external_id(&self, external_id: &str) -> Result<Customer, CustomerError> {
        if external_id.is_empty() {
            return Err(CustomerError::invalid(
                "lookup",
                "give an id or an external_id",
            ));
        }
        let mut violations = Violations::default();
        violations.token("external_id", external_id, 1, 128);
        violations.into_result()?;
        self.store
            .customer_by_external_id(external_id)
            .await?
            .ok_or_else(|| CustomerError::NotFound {
                entity: "customer",
                id: format!("with external id {external_id}"),
            })
    }

    /// Up to [`MAX_BATCH_IDS`] customers, and the ids that do not exist.
    #[tracing::instrument(skip_all, fields(count = ids.len()))]
    pub async fn batch_get(
        &self,
        ids: &[String],
    ) -> Result<(Vec<Customer>, Vec<Uuid>), CustomerError> {
        let ids = parse_ids("ids", ids)?;
        let customers = self.store.customers(&ids).await?;
        let missing = missing(&ids, customers.iter().map(|c| c.id));
        Ok((customers, missing))
    }

    /// Changes the masked fields of a customer.
    #[tracing::instrument(skip(self, input))]
    pub async fn update(
        &self,
        id: &str,
        input: ProfileInput,
        mask: &[String],
    ) -> Result<Customer, CustomerError> {
        let id = parse_customer_id("id", id)?;
        if mask.is_empty() {
            return Err(CustomerError::invalid(
                "update_mask",
                "name at least one field to change",
            ));
        }
        let mut fields = Vec::with_capacity(mask.len());
        let mut violations = Violations::default();
        for path in mask {
            match ProfileField::parse(path) {
                Some(field) if !fields.contains(&field) => fields.push(field),
                Some(_) => {}
                None => {
                    violations.add("update_mask", format!("{path:?} is not an updatable field"))
                }
            }
        }
        violations.into_result()?;
        let now = Utc::now();
        let patch = input.into_patch(&fields, now, &self.rules)?;
        self.store.update_customer(id, &patch, now).await
    }

    /// One page of customers.
    #[tracing::instrument(skip(self))]
    pub async fn list(
        &self,
        mut filter: CustomerFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Customer>, String), CustomerError> {
        let limit = paging::page_size(page_size)?;
        let after = paging::parse_customer_token(page_token)?;
        let mut violations = Violations::default();
        // Looked up as stored: e-mail lower-cased, phone in E.164.
        filter.email = filter.email.map(|email| email.trim().to_lowercase());
        if let Some(typed) = filter.phone.take() {
            match super::validate::phone_in_e164(typed.trim(), self.rules.phone_region) {
                Some(e164) => filter.phone = Some(e164),
                None => violations.add("phone", "is not a valid phone number"),
            }
        }
        if filter
            .birth_month
            .is_some_and(|month| !(1..=12).contains(&month))
        {
            violations.add("birth_month", "must be 1 to 12");
        }
        if filter.birth_day.is_some_and(|day| !(1..=31).contains(&day)) {
            violations.add("birth_day", "must be 1 to 31");
        }
        if filter.birth_day.is_some() && filter.birth_month.is_none() {
            violations.add("birth_day", "needs birth_month");
        }
        for (key, value) in &filter.attributes {
            if !super::validate::is_attribute_key(key)
                || value.chars().count() > 256
                || value.chars().any(char::is_control)
            {
                violations.add(
                    format!("attributes[{key}]"),
                    "is not a valid attribute filter",
                );
            }
        }
        if let (Some(from), Some(until)) = (filter.joined_from, filter.joined_until)
            && from > until
        {
            violations.add("joined", "start must not be after end");
        }
        violations.into_result()?;
        let customers = self.store.list_customers(&filter, after, limit).await?;
        let next = match customers.last() {
            Some(last) if customers.len() == limit as usize => paging::customer_token(last.id),
            _ => String::new(),
        };
        Ok((customers, next))
    }

    /// Erases a customer's personal data.
    #[tracing::instrument(skip(self, reason))]
    pub async fn erase(&self, id: &str, reason: &str) -> Result<Customer, CustomerError> {
        let id = parse_customer_id("id", id)?;
        let mut violations = Violations::default();
        if !reason.is_empty() {
            violations.text("reason", reason, 1, 200);
        }
        violations.into_result()?;
        self.store
            .erase_customer(id, reason.trim(), Utc::now())
            .await
    }

    /// Everything held about one customer.
    #[tracing::instrument(skip(self))]
    pub async fn export(&self, id: &str) -> Result<CustomerExport, CustomerError> {
        let customer = self.get(id).await?;
        let consents = self
            .store
            .consents(&[customer.id])
            .await?
            .into_iter()
            .flat_map(|c| c.consents)
            .collect();
        let mut consent_history = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .store
                .consent_history(
                    customer.id,
                    HistoryPage {
                        before,
                        limit: paging::MAX_PAGE_SIZE,
                    },
                )
                .await?;
            let full = page.len() == paging::MAX_PAGE_SIZE as usize;
            before = page.last().map(|change| change.position);
            consent_history.extend(page);
            if !full {
                break;
            }
        }
        let mut activities = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_activities(customer.id, after, paging::MAX_PAGE_SIZE)
                .await?;
            let full = page.len() == paging::MAX_PAGE_SIZE as usize;
            after = page.last().map(|a| crate::domain::ports::ActivityPosition {
                occurred_at: a.occurred_at,
                id: a.id,
            });
            activities.extend(page);
            if !full {
                break;
            }
        }
        Ok(CustomerExport {
            customer,
            consents,
            consent_history,
            activities,
            exported_at: Utc::now(),
        })
    }

    /// Grants or revokes one channel.
    #[tracing::instrument(skip_all)]
    pub async fn set_consent(&self, input: ConsentInput) -> Result<Consent, CustomerError> {
        let change = input.validate(Utc::now(), self.rules.clock_skew)?;
        self.store.set_consent(&change).await
    }

    /// Onboards a batch of customers with their consents (`domain::onboarding`): one outcome
    /// per item, in order, once the batch has committed.
    #[tracing::instrument(skip_all, fields(items = items.len()))]
    pub async fn onboard_batch(
        &self,
        items: Vec<super::onboarding::OnboardingInput>,
    ) -> Result<Vec<super::onboarding::OnboardingOutcome>, CustomerError> {
        let (valid, mut outcomes) =
            super::onboarding::validate_batch(items, Utc::now(), &self.rules)?;
        if !valid.is_empty() {
            let (positions, batch): (Vec<usize>, Vec<_>) = valid.into_iter().unzip();
            let stored = self.store.onboard(&batch).await?;
            for (position, outcome) in positions.into_iter().zip(stored) {
                outcomes[position] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.ok_or_else(|| {
                    CustomerError::Internal("an onboarded item got no outcome".into())
                })
            })
            .collect()
    }

    /// Parses a customer id given as text, naming `field` when it is bad.
    pub fn customer_id(field: &str, value: &str) -> Result<Uuid, CustomerError> {
        parse_customer_id(field, value)
    }

    /// A page of one customer's consent history.
    #[tracing::instrument(skip(self))]
    pub async fn consent_history(
        &self,
        customer_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<RecordedConsentChange>, String), CustomerError> {
        let customer = self.get(customer_id).await?;
        let limit = paging::page_size(page_size)?;
        let before = paging::parse_history_token(page_token)?;
        let changes = self
            .store
            .consent_history(customer.id, HistoryPage { before, limit })
            .await?;
        let next = match changes.last() {
            Some(last) if changes.len() == limit as usize => paging::history_token(last.position),
            _ => String::new(),
        };
        Ok((changes, next))
    }

    /// Current consents of many customers, and the ids that do not exist.
    #[tracing::instrument(skip_all, fields(count = ids.len()))]
    pub async fn batch_consents(
        &self,
        ids: &[String],
    ) -> Result<(Vec<CustomerConsents>, Vec<Uuid>), CustomerError> {
        let ids = parse_ids("customer_ids", ids)?;
        let consents = self.store.consents(&ids).await?;
        let missing = missing(&ids, consents.iter().map(|c| c.customer_id));
        Ok((consents, missing))
    }

    /// Records a purchase (idempotent by key).
    #[tracing::instrument(skip_all, fields(idempotency_key = %input.idempotency_key))]
    pub async fn record_purchase(&self, input: PurchaseInput) -> Result<Recorded, CustomerError> {
        let purchase = input.validate(Utc::now(), self.rules.clock_skew)?;
        self.store.record_purchase(&purchase).await
    }

    /// Records a refund (idempotent by key).
    #[tracing::instrument(skip_all, fields(idempotency_key = %input.idempotency_key))]
    pub async fn record_refund(&self, input: RefundInput) -> Result<Recorded, CustomerError> {
        let refund = input.validate(Utc::now(), self.rules.clock_skew)?;
        self.store.record_refund(&refund).await
    }

    /// One activity.
    #[tracing::instrument(skip(self))]
    pub async fn activity(&self, id: &str) -> Result<Activity, CustomerError> {
        let id = parse_customer_id("id", id)?;
        self.store
            .activity(id)
            .await?
            .ok_or_else(|| CustomerError::NotFound {
                entity: "activity",
                id: id.to_string(),
            })
    }

    /// A page of one customer's activities.
    #[tracing::instrument(skip(self))]
    pub async fn list_activities(
        &self,
        customer_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Activity>, String), CustomerError> {
        let customer = self.get(customer_id).await?;
        let limit = paging::page_size(page_size)?;
        let after = paging::parse_activity_token(page_token)?;
        let activities = self
            .store
            .list_activities(customer.id, after, limit)
            .await?;
        let next = match activities.last() {
            Some(last) if activities.len() == limit as usize => {
                paging::activity_token(crate::domain::ports::ActivityPosition {
                    occurred_at: last.occurred_at,
                    id: last.id,
                })
            }
            _ => String::new(),
        };
        Ok((activities, next))
    }

    /// Validates and records one batch of a bulk import; one outcome per item, in order.
    #[tracing::instrument(skip_all, fields(items = items.len()))]
    pub async fn import_batch(
        &self,
        items: Vec<ImportInput>,
    ) -> Result<Vec<ImportOutcome>, CustomerError> {
        if items.is_empty() || items.len() > MAX_BATCH_ITEMS {
            return Err(CustomerError::invalid(
                "items",
                format!("a batch holds 1 to {MAX_BATCH_ITEMS} items"),
            ));
        }
        let now = Utc::now();
        let mut outcomes: Vec<Option<ImportOutcome>> = Vec::with_capacity(items.len());
        let mut commands = Vec::with_capacity(items.len());
        let mut positions = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let command = match item {
                ImportInput::Purchase(purchase) => purchase
                    .validate(now, self.rules.clock_skew)
                    .map(ImportCommand::Purchase),
                ImportInput::Refund(refund) => refund
                    .validate(now, self.rules.clock_skew)
                    .map(ImportCommand::Refund),
                ImportInput::Empty => Err(CustomerError::invalid("item", "set purchase or refund")),
            };
            match command {
                Ok(command) => {
                    commands.push(command);
                    positions.push(index);
                    outcomes.push(None);
                }
                Err(error @ CustomerError::InvalidArgument(_)) => {
                    outcomes.push(Some(ImportOutcome::from_item_error(error)?));
                }
                Err(other) => return Err(other),
            }
        }
        if !commands.is_empty() {
            let stored = self.store.import_batch(&commands).await?;
            for (position, outcome) in positions.into_iter().zip(stored) {
                outcomes[position] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome
                    .ok_or_else(|| CustomerError::Internal("an import item got no outcome".into()))
            })
            .collect()
    }

    /// The feed after `after_cursor`, live until the caller goes away or the server shuts down,
    /// with the feed's identity (which every cursor it serves names). A cursor from another
    /// database cluster, or beyond the feed, is refused rather than followed past every event.
    pub async fn watch(
        &self,
        after_cursor: &str,
        shutdown: CancellationToken,
    ) -> Result<(FeedIdentity, crate::feed_server::FeedStream), CustomerError> {
        let origin = self.store.feed_origin().await?;
        let cursor = FeedCursor::resume(after_cursor, origin).map_err(|refusal| match refusal {
            CursorRefusal::Malformed => CustomerError::invalid("after_cursor", refusal.to_string()),
            CursorRefusal::OtherCluster { .. } | CursorRefusal::Ahead { .. } => {
                tracing::error!(%refusal, after_cursor, "a watcher's cursor was refused");
                CustomerError::CursorRefused(refusal)
            }
        })?;
        Ok((
            origin.identity,
            self.feed.watch(self.store.clone(), cursor, shutdown),
        ))
    }
}
