//! The activity feed of the customer service, converted for attribution and applied in batches.

use std::sync::Arc;
use tierline_proto::customer::v1::{
    self as customer, WatchActivitiesRequest, customer_service_client::CustomerServiceClient,
};

use tierline_runtime::{
    client::{ClientSettings, Outgoing, channel},
    follower::{Batching, Stopped},
};

use super::id;
use crate::{
    CampaignError,
    domain::attribution::{ActivityEvent, Attributor, Purchase, Refund},
    storage::CampaignStore,
};

fn unavailable(status: tonic::Status) -> CampaignError {
    CampaignError::Unavailable(format!("customer service: {status}"))
}

/// The consumer's name, for its lock, cursor and dead letters.
pub(super) const FEED: &str = "activities";

/// Follows the feed until it ends (`Ok`), fails, or its cursor is refused.
pub(super) async fn consume(
    attributor: &Attributor,
    store: &Arc<dyn CampaignStore>,
    settings: &ClientSettings,
    batching: Batching<'_>,
) -> Result<(), Stopped<CampaignError>> {
    let channel =
        channel(settings).map_err(|error| CampaignError::Unavailable(error.to_string()))?;
    let mut client = CustomerServiceClient::with_interceptor(channel, Outgoing::new(settings));
    let after_cursor = attributor.cursor().await?.unwrap_or_default();
    let stream = client
        .watch_activities(WatchActivitiesRequest { after_cursor })
        .await
        .map_err(|status| Stopped::opening(status, unavailable))?
        .into_inner();
    tierline_runtime::follower::apply_batches(
        stream,
        batching,
        unavailable,
        |event| event.cursor.clone(),
        convert,
        |letters| async move { store.park_dead_letters(FEED, &letters).await },
        |events, position| async move { attributor.apply(&events, &position).await },
    )
    .await?;
    Ok(())
}

/// The feed event as attribution sees it; customer events and checkpoints do not concern
/// attribution; the reason when it cannot be read.
fn convert(event: &customer::FeedEvent) -> Result<Option<ActivityEvent>, String> {
    let Some(customer::feed_event::Event::Activity(activity)) = &event.event else {
        return Ok(None);
    };
    let amount = activity.amount.clone().unwrap_or_default();
    match customer::ActivityKind::try_from(activity.kind) {
        Ok(customer::ActivityKind::Purchase) => {
            let occurred_at = activity
                .occurred_at
                .as_ref()
                .and_then(|t| {
                    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
                })
                .ok_or_else(|| "activity.occurred_at is missing or not a time".to_owned())?;
            Ok(Some(ActivityEvent::Purchase(Purchase {
                id: id("activity.id", &activity.id)?,
                customer_id: id("activity.customer_id", &activity.customer_id)?,
                amount_minor: amount.amount_minor,
                currency: amount.currency,
                occurred_at,
                brand: activity.brand.clone(),
                sales_channel: activity.sales_channel.clone(),
            })))
        }
        Ok(customer::ActivityKind::Refund) => Ok(Some(ActivityEvent::Refund(Refund {
            id: id("activity.id", &activity.id)?,
            purchase_id: id(
                "activity.refunded_purchase_id",
                &activity.refunded_purchase_id,
            )?,
            amount_minor: amount.amount_minor,
        }))),
        _ => Ok(None),
    }
}
