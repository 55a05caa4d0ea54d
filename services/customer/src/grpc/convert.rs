//! Conversions between protobuf messages and domain types. No rules live here: inputs are
//! carried over as sent and validated by the domain.

use chrono::Datelike;
use tierline_proto::{
    common::v1::{Channel, Date, Money},
    customer::v1 as pb,
};

use crate::domain::{
    activity::{Activity, ActivityKind, LineItem, PurchaseInput, RefundInput},
    consent::{Consent, ConsentChange, ConsentChannel, ConsentInput, CustomerConsents},
    customer::{Customer, CustomerFilter, CustomerStatus, DateParts, ProfileInput},
    feed::{CustomerEventKind, FeedEvent, FeedPayload},
    import::{ImportInput, ImportOutcome},
    service::CustomerExport,
};

pub(crate) use tierline_proto::time::{datetime, timestamp};

fn money(amount_minor: i64, currency: &str) -> Money {
    Money {
        amount_minor,
        currency: currency.to_owned(),
    }
}

pub(crate) fn channel_from_proto(value: i32) -> Option<ConsentChannel> {
    match Channel::try_from(value).ok()? {
        Channel::Email => Some(ConsentChannel::Email),
        Channel::Sms => Some(ConsentChannel::Sms),
        Channel::Push => Some(ConsentChannel::Push),
        Channel::Unspecified => None,
    }
}

fn channel_to_proto(channel: ConsentChannel) -> Channel {
    match channel {
        ConsentChannel::Email => Channel::Email,
        ConsentChannel::Sms => Channel::Sms,
        ConsentChannel::Push => Channel::Push,
    }
}

fn status_to_proto(status: CustomerStatus) -> pb::CustomerStatus {
    match status {
        CustomerStatus::Active => pb::CustomerStatus::Active,
        CustomerStatus::Erased => pb::CustomerStatus::Erased,
    }
}

pub(crate) fn status_from_proto(value: i32) -> Option<CustomerStatus> {
    match pb::CustomerStatus::try_from(value).ok()? {
        pb::CustomerStatus::Active => Some(CustomerStatus::Active),
        pb::CustomerStatus::Erased => Some(CustomerStatus::Erased),
        pb::CustomerStatus::Unspecified => None,
    }
}

fn date_parts(date: &Date) -> DateParts {
    DateParts {
        year: date.year,
        month: date.month,
        day: date.day,
    }
}

pub(crate) fn customer_to_proto(customer: Customer) -> pb::Customer {
    pb::Customer {
        id: customer.id.to_string(),
        external_id: customer.external_id.unwrap_or_default(),
        name: customer.name,
        email: customer.email.unwrap_or_default(),
        phone: customer.phone.unwrap_or_default(),
        birth_date: customer.birth_date.map(|date| Date {
            year: date.year(),
            month: i32::try_from(date.month()).unwrap_or_default(),
            day: i32::try_from(date.day()).unwrap_or_default(),
        }),
        joined_at: Some(timestamp(customer.joined_at)),
        attributes: customer.attributes.into_iter().collect(),
        status: status_to_proto(customer.status).into(),
        created_at: Some(timestamp(customer.created_at)),
        updated_at: Some(timestamp(customer.updated_at)),
        erased_at: customer.erased_at.map(timestamp),
    }
}

pub(crate) fn profile_from_create(request: pb::CreateCustomerRequest) -> ProfileInput {
    ProfileInput {
        external_id: request.external_id,
        name: request.name,
        email: request.email,
        phone: request.phone,
        birth_date: request.birth_date.as_ref().map(date_parts),
        joined_at: request.joined_at.as_ref().and_then(datetime),
        attributes: request.attributes.into_iter().collect(),
    }
}

pub(crate) fn profile_from_customer(customer: pb::Customer) -> ProfileInput {
    ProfileInput {
        external_id: customer.external_id,
        name: customer.name,
        email: customer.email,
        phone: customer.phone,
        birth_date: customer.birth_date.as_ref().map(date_parts),
        joined_at: customer.joined_at.as_ref().and_then(datetime),
        attributes: customer.attributes.into_iter().collect(),
    }
}

pub(crate) fn filter_from_list(request: &pb::ListCustomersRequest) -> CustomerFilter {
    let joined = request.joined.as_ref();
    CustomerFilter {
        status: status_from_proto(request.status),
        joined_from: joined
            .and_then(|range| range.start.as_ref())
            .and_then(datetime),
        joined_until: joined
            .and_then(|range| range.end.as_ref())
            .and_then(datetime),
        attributes: request.attributes.clone().into_iter().collect(),
        // Negative values become 0, which the domain's validation names (not their absolute
        // value, which would filter on another month or day).
        birth_month: (request.birth_month != 0)
            .then(|| u32::try_from(request.birth_month).unwrap_or(0)),
        birth_day: (request.birth_day != 0).then(|| u32::try_from(request.birth_day).unwrap_or(0)),
        email: (!request.email.is_empty()).then(|| request.email.clone()),
        phone: (!request.phone.is_empty()).then(|| request.phone.clone()),
        external_id: (!request.external_id.is_empty()).then(|| request.external_id.clone()),
    }
}

pub(crate) fn consent_to_proto(consent: Consent) -> pb::Consent {
    pb::Consent {
        customer_id: consent.customer_id.to_string(),
        channel: channel_to_proto(consent.channel).into(),
        granted: consent.granted,
        changed_at: consent.changed_at.map(timestamp),
        source: consent.source,
    }
}

pub(crate) fn consent_change_to_proto(change: ConsentChange) -> pb::ConsentChange {
    pb::ConsentChange {
        customer_id: change.customer_id.to_string(),
        channel: channel_to_proto(change.channel).into(),
        granted: change.granted,
        changed_at: Some(timestamp(change.changed_at)),
        source: change.source,
        recorded_at: Some(timestamp(change.recorded_at)),
    }
}

pub(crate) fn consent_input(
    request: pb::SetConsentRequest,
    customer_id: uuid::Uuid,
) -> ConsentInput {
    ConsentInput {
        customer_id,
        channel: channel_from_proto(request.channel),
        granted: request.granted,
        source: request.source,
        changed_at: request.changed_at.as_ref().and_then(datetime),
    }
}

pub(crate) fn customer_consents_to_proto(consents: CustomerConsents) -> pb::CustomerConsents {
    pb::CustomerConsents {
        customer_id: consents.customer_id.to_string(),
        erased: consents.erased,
        consents: consents
            .consents
            .into_iter()
            .map(consent_to_proto)
            .collect(),
    }
}

fn line_item_to_proto(item: LineItem) -> pb::LineItem {
    pb::LineItem {
        category: item.category,
        sku: item.sku,
        quantity: item.quantity,
        amount_minor: item.amount_minor,
    }
}

fn line_item_from_proto(item: pb::LineItem) -> LineItem {
    LineItem {
        category: item.category,
        sku: item.sku,
        quantity: item.quantity,
        amount_minor: item.amount_minor,
    }
}

pub(crate) fn activity_to_proto(activity: Activity) -> pb::Activity {
    pb::Activity {
        id: activity.id.to_string(),
        customer_id: activity.customer_id.to_string(),
        kind: match activity.kind {
            ActivityKind::Purchase => pb::ActivityKind::Purchase,
            ActivityKind::Refund => pb::ActivityKind::Refund,
        }
        .into(),
        idempotency_key: activity.idempotency_key,
        amount: Some(money(activity.amount_minor, &activity.currency)),
        occurred_at: Some(timestamp(activity.occurred_at)),
        recorded_at: Some(timestamp(activity.recorded_at)),
        brand: activity.brand,
        sales_channel: activity.sales_channel,
        store_id: activity.store_id,
        line_items: activity
            .line_items
            .into_iter()
            .map(line_item_to_proto)
            .collect(),
        refunded_purchase_id: activity
            .refunded_purchase_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        refunded_amount_minor: activity.refunded_amount_minor,
        purchase_occurred_at: Some(timestamp(activity.purchase_occurred_at)),
    }
}

pub(crate) fn purchase_input(request: pb::RecordPurchaseRequest) -> PurchaseInput {
    let amount = request.amount.unwrap_or_default();
    PurchaseInput {
        idempotency_key: request.idempotency_key,
        customer_id: request.customer_id,
        amount_minor: amount.amount_minor,
        currency: amount.currency,
        occurred_at: request.occurred_at.as_ref().and_then(datetime),
        brand: request.brand,
        sales_channel: request.sales_channel,
        store_id: request.store_id,
        line_items: request
            .line_items
            .into_iter()
            .map(line_item_from_proto)
            .collect(),
    }
}

pub(crate) fn refund_input(request: pb::RecordRefundRequest) -> RefundInput {
    let amount = request.amount.unwrap_or_default();
    RefundInput {
        idempotency_key: request.idempotency_key,
        customer_id: request.customer_id,
        purchase_id: request.purchase_id,
        amount_minor: amount.amount_minor,
        currency: amount.currency,
        occurred_at: request.occurred_at.as_ref().and_then(datetime),
    }
}

pub(crate) fn import_input(item: pb::ImportItem) -> ImportInput {
    match item.item {
        Some(pb::import_item::Item::Purchase(purchase)) => {
            ImportInput::Purchase(purchase_input(purchase))
        }
        Some(pb::import_item::Item::Refund(refund)) => ImportInput::Refund(refund_input(refund)),
        None => ImportInput::Empty,
    }
}

pub(crate) fn import_response(
    batch: i64,
    outcomes: Vec<ImportOutcome>,
) -> pb::ImportActivitiesResponse {
    let mut response = pb::ImportActivitiesResponse {
        batch,
        ..Default::default()
    };
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        let result = match outcome {
            ImportOutcome::Accepted { activity_id } => {
                response.accepted += 1;
                pb::ImportItemResult {
                    index,
                    outcome: pb::ImportOutcome::Accepted.into(),
                    activity_id: activity_id.to_string(),
                    ..Default::default()
                }
            }
            ImportOutcome::Duplicate { activity_id } => {
                response.duplicates += 1;
                pb::ImportItemResult {
                    index,
                    outcome: pb::ImportOutcome::Duplicate.into(),
                    activity_id: activity_id.to_string(),
                    ..Default::default()
                }
            }
            ImportOutcome::Rejected { field, reason } => {
                response.rejected += 1;
                pb::ImportItemResult {
                    index,
                    outcome: pb::ImportOutcome::Rejected.into(),
                    activity_id: String::new(),
                    field,
                    reason,
                }
            }
        };
        response.results.push(result);
    }
    response
}

pub(crate) fn onboarding_input(
    item: pb::ImportCustomerItem,
) -> crate::domain::onboarding::OnboardingInput {
    crate::domain::onboarding::OnboardingInput {
        profile: profile_from_create(item.customer.unwrap_or_default()),
        consents: item
            .consents
            .into_iter()
            .map(|consent| ConsentInput {
                // Set by the store, which knows whose consents they are.
                customer_id: uuid::Uuid::nil(),
                channel: channel_from_proto(consent.channel),
                granted: consent.granted,
                source: consent.source,
                changed_at: consent.changed_at.as_ref().and_then(datetime),
            })
            .collect(),
    }
}

pub(crate) fn onboarding_response(
    batch: i64,
    outcomes: Vec<crate::domain::onboarding::OnboardingOutcome>,
) -> pb::ImportCustomersResponse {
    use crate::domain::onboarding::OnboardingOutcome;
    let mut response = pb::ImportCustomersResponse {
        batch,
        ..Default::default()
    };
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        let (outcome, customer_id, field, reason) = match outcome {
            OnboardingOutcome::Created { customer_id } => {
                response.created += 1;
                (
                    pb::ImportCustomerOutcome::Created,
                    customer_id.to_string(),
                    String::new(),
                    String::new(),
                )
            }
            OnboardingOutcome::Unchanged { customer_id } => {
                response.unchanged += 1;
                (
                    pb::ImportCustomerOutcome::Unchanged,
                    customer_id.to_string(),
                    String::new(),
                    String::new(),
                )
            }
            OnboardingOutcome::Updated { customer_id } => {
                response.updated += 1;
                (
                    pb::ImportCustomerOutcome::Updated,
                    customer_id.to_string(),
                    String::new(),
                    String::new(),
                )
            }
            OnboardingOutcome::Rejected { field, reason } => {
                response.rejected += 1;
                (
                    pb::ImportCustomerOutcome::Rejected,
                    String::new(),
                    field,
                    reason,
                )
            }
        };
        response.results.push(pb::ImportCustomerResult {
            index,
            outcome: outcome.into(),
            customer_id,
            field,
            reason,
        });
    }
    response
}

pub(crate) fn feed_event_to_proto(
    event: FeedEvent,
    identity: tierline_runtime::xid_feed::FeedIdentity,
) -> pb::FeedEvent {
    let payload = match event.payload {
        FeedPayload::Activity(activity) => {
            pb::feed_event::Event::Activity(activity_to_proto(*activity))
        }
        FeedPayload::Customer(customer) => pb::feed_event::Event::Customer(pb::CustomerEvent {
            customer_id: customer.customer_id.to_string(),
            kind: match customer.kind {
                CustomerEventKind::Created => pb::CustomerEventKind::Created,
                CustomerEventKind::Erased => pb::CustomerEventKind::Erased,
            }
            .into(),
            occurred_at: Some(timestamp(customer.occurred_at)),
            joined_at: Some(timestamp(customer.joined_at)),
        }),
        FeedPayload::CaughtUp(at) => pb::feed_event::Event::Checkpoint(pb::FeedCheckpoint {
            caught_up_to: Some(timestamp(at)),
        }),
    };
    pb::FeedEvent {
        cursor: event.cursor.served(identity),
        event: Some(payload),
    }
}

pub(crate) fn export_to_proto(export: CustomerExport) -> pb::CustomerExport {
    pb::CustomerExport {
        customer: Some(customer_to_proto(export.customer)),
        consents: export.consents.into_iter().map(consent_to_proto).collect(),
        consent_history: export
            .consent_history
            .into_iter()
            .map(|recorded| consent_change_to_proto(recorded.change))
            .collect(),
        activities: export
            .activities
            .into_iter()
            .map(activity_to_proto)
            .collect(),
        exported_at: Some(timestamp(export.exported_at)),
    }
}
