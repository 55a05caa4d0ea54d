//! The activity feed of the customer service, converted for attribution and applied in batches.

use tierline_proto::customer::v1::{
    self as customer, WatchActivitiesRequest, customer_service_client::CustomerServiceClient,
};
use tierline_runtime::client::{ClientSettings, Outgoing, channel};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    CampaignError,
    domain::attribution::{ActivityEvent, Attributor, Purchase, Refund},
};

fn unavailable(status: tonic::Status) -> CampaignError {
    CampaignError::Unavailable(format!("customer service: {status}"))
}

/// Follows the feed until it ends (`Ok`) or fails.
pub(super) async fn consume(
    attributor: &Attributor,
    settings: &ClientSettings,
    batch_size: usize,
    shutdown: &CancellationToken,
) -> Result<(), CampaignError> {
    let channel =
        channel(settings).map_err(|error| CampaignError::Unavailable(error.to_string()))?;
    let mut client = CustomerServiceClient::with_interceptor(channel, Outgoing::new(settings));
    let after_cursor = attributor.cursor().await?.unwrap_or_default();
    let stream = client
        .watch_activities(WatchActivitiesRequest { after_cursor })
        .await
        .map_err(unavailable)?
        .into_inner();
    super::apply_batches(
        stream,
        "customer service",
        batch_size,
        shutdown,
        |event| event.cursor.clone(),
        convert,
        |events, position| async move { attributor.apply(&events, &position).await },
    )
    .await
}

fn id(text: &str) -> Result<Uuid, CampaignError> {
    Uuid::parse_str(text)
        .map_err(|_| CampaignError::Internal(format!("activity feed sent a malformed id {text:?}")))
}

/// The feed event as attribution sees it; customer events do not concern attribution.
fn convert(event: customer::FeedEvent) -> Result<Option<ActivityEvent>, CampaignError> {
    let Some(customer::feed_event::Event::Activity(activity)) = event.event else {
        return Ok(None);
    };
    let amount = activity.amount.unwrap_or_default();
    match customer::ActivityKind::try_from(activity.kind) {
        Ok(customer::ActivityKind::Purchase) => {
            let occurred_at = activity
                .occurred_at
                .as_ref()
                .and_then(|t| {
                    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
                })
                .ok_or_else(|| CampaignError::Internal("activity without a time".into()))?;
            Ok(Some(ActivityEvent::Purchase(Purchase {
                id: id(&activity.id)?,
                customer_id: id(&activity.customer_id)?,
                amount_minor: amount.amount_minor,
                currency: amount.currency,
                occurred_at,
                brand: activity.brand,
                sales_channel: activity.sales_channel,
            })))
        }
        Ok(customer::ActivityKind::Refund) => Ok(Some(ActivityEvent::Refund(Refund {
            id: id(&activity.id)?,
            purchase_id: id(&activity.refunded_purchase_id)?,
            amount_minor: amount.amount_minor,
        }))),
        _ => Ok(None),
    }
}
