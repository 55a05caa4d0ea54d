//! A program's backfill read from the customer service's activity feed (`domain::backfill`): the
//! consumer's reading and batching, for one program and with the backfill's own cursor, ending
//! where the consumer stood when the backfill began (or, before the consumer's first event, at
//! the feed's live end).

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use async_trait::async_trait;
use chrono::Utc;
use tierline_proto::customer::v1::{
    WatchActivitiesRequest, customer_service_client::CustomerServiceClient,
};
use tierline_runtime::{
    client::{Outgoing, channel},
    follower::{Batching, FeedCounters},
    xid_feed::FeedCursor,
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
    domain::ports::ScoringStore,
    domain::{
        backfill::{ActivityHistory, BackfillOutcome, consumer_of},
        consumer::{ACTIVITY_FEED, FeedApplier},
    },
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

/// Where a cursor stands in the feed, to compare two (`None` for text that is not a cursor).
fn position(cursor: &str) -> Option<FeedCursor> {
    FeedCursor::parse(cursor).map(|(_, position)| position)
}

#[async_trait]
impl ActivityHistory for FeedHistory {
    #[tracing::instrument(skip(self))]
    async fn count_history(
        &self,
        program_id: Uuid,
        run_id: Uuid,
    ) -> Result<BackfillOutcome, ScoringError> {
        let unavailable = |status: tonic::Status| {
            ScoringError::Unavailable(format!("customer service: {status}"))
        };
        // The consumer counts this program from wherever it stands now: the history ends there.
        // Reading no further keeps the two from applying the same events at once (which would
        // make one of them roll back and retry). With no consumer position yet, the history
        // ends at the feed's live end.
        let until = self
            .store
            .feed_progress(ACTIVITY_FEED)
            .await?
            .and_then(|progress| position(&progress.position));
        let applier = FeedApplier::for_backfill(self.store.clone(), self.cache.clone(), program_id);
        let after_cursor = applier
            .progress()
            .await?
            .map(|progress| progress.position)
            .unwrap_or_default();
        if let (Some(until), Some(after)) = (until, position(&after_cursor))
            && after >= until
        {
            applier.apply(&[], &after_cursor, Some(Utc::now())).await?;
            return Ok(BackfillOutcome {
                events: 0,
                complete: true,
            });
        }
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
            // Each item with its own position, so a batch is cut where the history ends.
            |message| {
                convert::received(message)
                    .map(|item| item.map(|item| (position(&message.cursor), item)))
            },
            |letters| {
                let (store, consumer) = (self.store.clone(), consumer.clone());
                async move { store.park_dead_letters(&consumer, &letters).await }
            },
            |received, last| {
                let (applier, events, complete, end) = (&applier, &events, &complete, &end);
                let store = self.store.clone();
                async move {
                    let mut applied = Vec::with_capacity(received.len());
                    let mut through = last;
                    let mut ended = false;
                    for (at, item) in received {
                        if let (Some(until), Some(at)) = (until, at)
                            && at > until
                        {
                            // The consumer's from here on.
                            ended = true;
                            through = until.to_string();
                            break;
                        }
                        match item {
                            Received::Event(event) => applied.push(event),
                            Received::CaughtUp(_) => {
                                ended = true;
                                break;
                            }
                        }
                    }
                    // The backfill's cursor carries a checkpoint once the history is read.
                    let done = ended.then(Utc::now);
                    applier.apply(&applied, &through, done).await?;
                    // Shown by GetEvaluationRun while the run reads.
                    let read = i64::try_from(applied.len()).unwrap_or(i64::MAX);
                    let total = store.add_run_history_events(run_id, read).await?;
                    events.store(u64::try_from(total).unwrap_or(0), Ordering::Relaxed);
                    if ended {
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
