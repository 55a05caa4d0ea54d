//! The consumer of the customer service's activity feed: one leader among the replicas applies
//! it (the store's feed-consumer lock, held as long as it leads), resuming from the cursor stored
//! with the effects; on any failure it backs off and reconnects. docs/SCORING.md explains the
//! choice: even two appliers at once could not apply an activity twice, because counted purchases
//! and applied refunds are keyed by activity id — the lock only avoids wasted work.

mod backfill;
mod convert;

pub use backfill::FeedHistory;

use std::sync::Arc;

use convert::Received;
use tierline_proto::customer::v1::{
    WatchActivitiesRequest, customer_service_client::CustomerServiceClient,
};
use tierline_runtime::{
    client::{ClientSettings, Outgoing, channel},
    follower::{Batching, FeedCounters, Stopped},
};
use tokio_util::sync::CancellationToken;

use crate::{
    ScoringError,
    cache::TierCache,
    domain::ports::ScoringStore,
    domain::{consumer::ACTIVITY_FEED, partitions::PartitionedApplier},
};

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Where the customer service is, and the token to present (scope feed:read).
    pub customer: ClientSettings,
    /// Most events applied in one batch.
    pub batch_size: usize,
    /// Transactions a batch is applied in at once, split by customer (`domain::partitions`).
    pub partitions: usize,
}

/// Starts the consumer; it stops at `shutdown`. One replica leads at a time
/// (`tierline_runtime::follower`).
pub fn spawn(
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    settings: ConsumerSettings,
    counters: FeedCounters,
    shutdown: CancellationToken,
) {
    let applier = Arc::new(PartitionedApplier::new(
        store.clone(),
        cache,
        settings.partitions,
    ));
    let leader_store = store.clone();
    tierline_runtime::follower::lead(
        ACTIVITY_FEED,
        shutdown,
        counters.clone(),
        move || {
            let store = leader_store.clone();
            async move { store.try_lock_feed_consumer().await }
        },
        move |shutdown| {
            let (store, applier, settings, counters) = (
                store.clone(),
                applier.clone(),
                settings.clone(),
                counters.clone(),
            );
            async move { consume(&store, &applier, &settings, &counters, &shutdown).await }
        },
    );
}

/// Follows the feed until it ends (`Ok`), fails, is refused, or the service shuts down.
async fn consume(
    store: &Arc<dyn ScoringStore>,
    applier: &PartitionedApplier,
    settings: &ConsumerSettings,
    counters: &FeedCounters,
    shutdown: &CancellationToken,
) -> Result<(), Stopped<ScoringError>> {
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
        .map_err(|status| {
            Stopped::opening(status, |status| {
                ScoringError::Unavailable(format!("customer service: {status}"))
            })
        })?
        .into_inner();
    tierline_runtime::follower::apply_batches(
        stream,
        Batching {
            feed: ACTIVITY_FEED,
            batch_size: settings.batch_size,
            shutdown,
            counters,
        },
        |status| ScoringError::Unavailable(format!("customer service: {status}")),
        |message| message.cursor.clone(),
        convert::received,
        |letters| async move { store.park_dead_letters(ACTIVITY_FEED, &letters).await },
        |received, position| async move {
            let mut events = Vec::with_capacity(received.len());
            let mut caught_up_to = None;
            for item in received {
                match item {
                    Received::Event(event) => events.push(event),
                    Received::CaughtUp(at) => caught_up_to = Some(at),
                }
            }
            applier.apply(events, &position, caught_up_to).await
        },
    )
    .await?;
    Ok(())
}
