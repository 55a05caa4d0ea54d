//! Feed events of the customer service as the scoring domain takes them.

use chrono::{DateTime, Utc};
use tierline_proto::{
    customer::v1::{self as customer, feed_event::Event},
    prost_types::Timestamp,
};
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::{accrual::PurchaseEvent, consumer::UpstreamEvent},
};

fn id(value: &str) -> Result<Uuid, ScoringError> {
    Uuid::parse_str(value).map_err(|_| {
        ScoringError::Internal(format!("the activity feed sent an invalid id {value:?}"))
    })
}

fn time(value: Option<&Timestamp>) -> Result<DateTime<Utc>, ScoringError> {
    value
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .ok_or_else(|| ScoringError::Internal("the activity feed sent an invalid timestamp".into()))
}

/// The instant a checkpoint says the feed is complete up to; `None` for an event.
pub(super) fn checkpoint(
    event: &customer::FeedEvent,
) -> Option<Result<DateTime<Utc>, ScoringError>> {
    match &event.event {
        Some(Event::Checkpoint(checkpoint)) => Some(time(checkpoint.caught_up_to.as_ref())),
        _ => None,
    }
}

/// The domain event of a feed event; `None` for events the scoring service does not use.
pub(super) fn upstream(event: customer::FeedEvent) -> Result<Option<UpstreamEvent>, ScoringError> {
    Ok(match event.event {
        Some(Event::Customer(customer)) => match customer.kind() {
            customer::CustomerEventKind::Created => Some(UpstreamEvent::CustomerCreated {
                customer_id: id(&customer.customer_id)?,
                joined_at: time(customer.joined_at.as_ref())?,
            }),
            customer::CustomerEventKind::Erased => Some(UpstreamEvent::CustomerErased {
                customer_id: id(&customer.customer_id)?,
            }),
            customer::CustomerEventKind::Unspecified => None,
        },
        Some(Event::Activity(activity)) => {
            let amount = activity.amount.clone().unwrap_or_default();
            match activity.kind() {
                customer::ActivityKind::Purchase => Some(UpstreamEvent::Purchase(PurchaseEvent {
                    activity_id: id(&activity.id)?,
                    customer_id: id(&activity.customer_id)?,
                    amount_minor: amount.amount_minor,
                    currency: amount.currency,
                    brand: activity.brand,
                    sales_channel: activity.sales_channel,
                    occurred_at: time(activity.occurred_at.as_ref())?,
                })),
                customer::ActivityKind::Refund => Some(UpstreamEvent::Refund {
                    activity_id: id(&activity.id)?,
                    customer_id: id(&activity.customer_id)?,
                    purchase_id: id(&activity.refunded_purchase_id)?,
                    amount_minor: amount.amount_minor,
                }),
                customer::ActivityKind::Unspecified => None,
            }
        }
        Some(Event::Checkpoint(_)) | None => None,
    })
}
