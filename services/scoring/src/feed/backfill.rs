//! A program's backfill read from the customer service's activity feed (`domain::backfill`): the
//! consumer's reading and batching, for one program and with the backfill's own cursor, ending
//! at the feed's first checkpoint (its live end).

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use async_trait::async_trait;
use tierline_proto::customer::v1::{
    WatchActivitiesRequest, customer_service_client::CustomerServiceClient,
};
use tierline_runtime::{
    client::{Outgoing, channel},
    follower::{Batching, FeedCounters},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    ConsumerSettings,
    convert::{self, Received},
};
use crate::{
    ScoringError,
    cache::TierCache,
    domain::{
        backfill::{ActivityHistory, BackfillOutcome, consumer_of},
        consumer::FeedApplier,
    },
    storage::ScoringStore,
};

/// The feed name of backfills in logs and counters.
const BACKFILL_FEED: &str = "backfill";

/// Reads programs' history from the customer service.
#[derive(Debug, Clone)]
pub struct FeedHistory {
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    settings: ConsumerSettings,
    counters: FeedCounters,
    shutdown: CancellationToken,
}

impl FeedHistory {
    /// Reads with the consumer's `settings`; stops at `shutdown`.
    pub fn new(
        store: Arc<dyn ScoringStore>,
        cache: TierCache,
        settings: ConsumerSettings,
        counters: FeedCounters,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            cache,
            settings,
            counters,
            shutdown,
        }
    }
}

#[async_trait]
impl ActivityHistory for FeedHistory {
    #[tracing::instrument(skip(self))]
    async fn count_history(&self, program_id: Uuid) -> Result<BackfillOutcome, ScoringError> {
        let unavailable = |status: tonic::Status| {
            ScoringError::Unavailable(format!("customer service: {status}"))
        };
        let applier = FeedApplier::for_backfill(self.store.clone(), self.cache.clone(), program_id);
        let after_cursor = applier
            .progress()
            .await?
            .map(|progress| progress.position)
            .unwrap_or_default();
        let channel = channel(&self.settings.customer)
            .map_err(|error| ScoringError::Unavailable(error.to_string()))?;
        let mut client = CustomerServiceClient::with_interceptor(
            channel,
            Outgoing::new(&self.settings.customer),
        );
        let stream = client
            .watch_activities(WatchActivitiesRequest { after_cursor })
            .await
            .map_err(unavailable)?
            .into_inner();
        // The read ends after the batch that carries the feed's first checkpoint: everything
        // committed before it has been applied, and the consumer counts what comes after.
        let end = self.shutdown.child_token();
        let (events, complete) = (AtomicU64::new(0), AtomicBool::new(false));
        let consumer = consumer_of(program_id);
        tierline_runtime::follower::apply_batches(
            stream,
            Batching {
                feed: BACKFILL_FEED,
                batch_size: self.settings.batch_size,
                shutdown: &end,
                counters: &self.counters,
            },
            unavailable,
            |message| message.cursor.clone(),
            convert::received,
            |letters| {
                let (store, consumer) = (self.store.clone(), consumer.clone());
                async move { store.park_dead_letters(&consumer, &letters).await }
            },
            |received, position| {
                let (applier, events, complete, end) = (&applier, &events, &complete, &end);
                async move {
                    let mut applied = Vec::with_capacity(received.len());
                    let mut caught_up_to = None;
                    for item in received {
                        match item {
                            Received::Event(event) => applied.push(event),
                            Received::CaughtUp(at) => caught_up_to = Some(at),
                        }
                    }
                    applier.apply(&applied, &position, caught_up_to).await?;
                    events.fetch_add(applied.len() as u64, Ordering::Relaxed);
                    if caught_up_to.is_some() {
                        complete.store(true, Ordering::Relaxed);
                        end.cancel();
                    }
                    Ok(())
                }
            },
        )
        .await?;
        // Cut short (a shutdown, the stream ended by the upstream): the run stops here and the
        // next attempt resumes from the cursor saved with the last batch.
        if !complete.load(Ordering::Relaxed) {
            return Err(ScoringError::Unavailable(
                "the activity feed ended before the program's history was read".into(),
            ));
        }
        Ok(BackfillOutcome {
            events: events.load(Ordering::Relaxed),
            complete: true,
        })
    }
}
