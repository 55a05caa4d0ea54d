//! Feed messages of the customer service as the scoring domain takes them. A message that cannot
//! be read comes back as the reason, and the follower parks it (`tierline_runtime::follower`).

use chrono::{DateTime, Utc};
use tierline_proto::{
    customer::v1::{self as customer, feed_event::Event},
    prost_types::Timestamp,
};
use uuid::Uuid;

use crate::domain::accrual::{PurchaseEvent, UpstreamEvent};

/// What one message of the feed brings.
#[derive(Debug, Clone)]
pub(super) enum Received {
    /// An event the scoring service applies.
    Event(UpstreamEvent),
    /// A checkpoint: every event committed before this instant has been sent.
    CaughtUp(DateTime<Utc>),
}

fn id(field: &str, value: &str) -> Result<Uuid, String> {
    Uuid::parse_str(value).map_err(|_| format!("{field} is not an id: {value:?}"))
}

fn time(field: &str, value: Option<&Timestamp>) -> Result<DateTime<Utc>, String> {
    value
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .ok_or_else(|| format!("{field} is missing or not a time"))
}

/// What `message` brings; `None` for events the scoring service does not use; the reason when it
/// cannot be read.
pub(super) fn received(message: &customer::FeedEvent) -> Result<Option<Received>, String> {
    Ok(match &message.event {
        Some(Event::Checkpoint(checkpoint)) => Some(Received::CaughtUp(time(
            "checkpoint.caught_up_to",
            checkpoint.caught_up_to.as_ref(),
        )?)),
        Some(Event::Customer(event)) => match event.kind() {
            customer::CustomerEventKind::Created => {
                Some(Received::Event(UpstreamEvent::CustomerCreated {
                    customer_id: id("customer.customer_id", &event.customer_id)?,
                    joined_at: time("customer.joined_at", event.joined_at.as_ref())?,
                }))
            }
            customer::CustomerEventKind::Erased => {
                Some(Received::Event(UpstreamEvent::CustomerErased {
                    customer_id: id("customer.customer_id", &event.customer_id)?,
                }))
            }
            customer::CustomerEventKind::Unspecified => None,
        },
        Some(Event::Activity(activity)) => {
            let amount = activity.amount.clone().unwrap_or_default();
            match activity.kind() {
                customer::ActivityKind::Purchase => {
                    Some(Received::Event(UpstreamEvent::Purchase(PurchaseEvent {
                        activity_id: id("activity.id", &activity.id)?,
                        customer_id: id("activity.customer_id", &activity.customer_id)?,
                        amount_minor: amount.amount_minor,
                        currency: amount.currency,
                        brand: activity.brand.clone(),
                        sales_channel: activity.sales_channel.clone(),
                        occurred_at: time("activity.occurred_at", activity.occurred_at.as_ref())?,
                    })))
                }
                customer::ActivityKind::Refund => Some(Received::Event(UpstreamEvent::Refund {
                    activity_id: id("activity.id", &activity.id)?,
                    customer_id: id("activity.customer_id", &activity.customer_id)?,
                    purchase_id: id(
                        "activity.refunded_purchase_id",
                        &activity.refunded_purchase_id,
                    )?,
                    amount_minor: amount.amount_minor,
                })),
                customer::ActivityKind::Unspecified => None,
            }
        }
        None => None,
    })
}
