//! The consumer of the customer service's activity feed: one leader among the replicas applies
//! it (the store's feed-consumer lock, held as long as it leads), resuming from the cursor stored
//! with the effects; on any failure it backs off and reconnects. docs/SCORING.md explains the
//! choice: even two appliers at once could not apply an activity twice, because counted purchases
//! and applied refunds are keyed by activity id — the lock only avoids wasted work.

mod convert;

use std::sync::Arc;

use futures::StreamExt;
use tierline_proto::customer::v1::{
    WatchActivitiesRequest, customer_service_client::CustomerServiceClient,
};
use tierline_runtime::client::{ClientSettings, Outgoing, channel};
use tokio_util::sync::CancellationToken;

use crate::{ScoringError, cache::TierCache, domain::consumer::FeedApplier, storage::ScoringStore};

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Where the customer service is, and the token to present (scope feed:read).
    pub customer: ClientSettings,
    /// Most events applied in one transaction.
    pub batch_size: usize,
}

/// Starts the consumer; it stops at `shutdown`. One replica leads at a time
/// (`tierline_runtime::follower`).
pub fn spawn(
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) {
    let applier = Arc::new(FeedApplier::new(store.clone(), cache));
    tierline_runtime::follower::lead(
        "customer-activity-feed",
        shutdown,
        move || {
            let store = store.clone();
            async move { store.try_lock_feed_consumer().await }
        },
        move |shutdown| {
            let (applier, settings) = (applier.clone(), settings.clone());
            async move { consume(&applier, &settings, &shutdown).await }
        },
    );
}

/// Follows the feed until it ends (`Ok`), fails, or the service shuts down.
async fn consume(
    applier: &FeedApplier,
    settings: &ConsumerSettings,
    shutdown: &CancellationToken,
) -> Result<(), ScoringError> {
    let channel = channel(&settings.customer)
        .map_err(|error| ScoringError::Unavailable(error.to_string()))?;
    let mut client =
        CustomerServiceClient::with_interceptor(channel, Outgoing::new(&settings.customer));
    let after_cursor = applier
        .progress()
        .await?
        .map(|progress| progress.position)
        .unwrap_or_default();
    let stream = client
        .watch_activities(WatchActivitiesRequest { after_cursor })
        .await
        .map_err(|status| ScoringError::Unavailable(format!("customer service: {status}")))?
        .into_inner();
    let mut batches = stream.ready_chunks(settings.batch_size.max(1));
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            batch = batches.next() => batch,
        };
        let Some(batch) = batch else {
            return Ok(());
        };
        let mut events = Vec::with_capacity(batch.len());
        let mut position = None;
        let mut caught_up_to = None;
        for item in batch {
            let event = item.map_err(|status| {
                ScoringError::Unavailable(format!("customer service: {status}"))
            })?;
            position = Some(event.cursor.clone());
            if let Some(at) = convert::checkpoint(&event) {
                caught_up_to = Some(at?);
            } else if let Some(upstream) = convert::upstream(event)? {
                events.push(upstream);
            }
        }
        let Some(position) = position else { continue };
        applier.apply(&events, &position, caught_up_to).await?;
    }
}
