//! The feeds the campaign service follows, each led by one replica at a time (a lock held as
//! long as the leader lives) and resumed from the cursor stored with its effects:
//!
//! - [`activities`]: the customer service's activity feed, for attribution;
//! - [`tier_changes`]: the scoring service's tier-change feed, for triggered campaigns.
//!
//! On any failure the leader lets go, backs off and tries again; the cursor makes that safe.

mod activities;
mod tier_changes;

use std::{future::Future, sync::Arc};

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::{
    CampaignError,
    domain::{attribution::Attributor, enrolment::Enroller, triggers::TriggerApplier},
    storage::CampaignStore,
    upstream::UpstreamSettings,
};

/// Starts both consumers; they stop at `shutdown`.
pub fn spawn(
    store: Arc<dyn CampaignStore>,
    enroller: Enroller,
    upstream: &UpstreamSettings,
    batch_size: usize,
    shutdown: CancellationToken,
) {
    let attributor = Attributor::new(store.clone());
    let customer = upstream.customer.clone();
    lead(
        "activities",
        store.clone(),
        shutdown.clone(),
        move |shutdown| {
            let attributor = attributor.clone();
            let customer = customer.clone();
            async move { activities::consume(&attributor, &customer, batch_size, &shutdown).await }
        },
    );
    let applier = TriggerApplier::new(store.clone(), enroller);
    let scoring = upstream.scoring.clone();
    lead("tier_changes", store, shutdown, move |shutdown| {
        let applier = applier.clone();
        let scoring = scoring.clone();
        async move { tier_changes::consume(&applier, &scoring, batch_size, &shutdown).await }
    });
}

/// Runs `consume` whenever this replica leads `name` (`tierline_runtime::follower`).
fn lead<F, Fut>(
    name: &'static str,
    store: Arc<dyn CampaignStore>,
    shutdown: CancellationToken,
    consume: F,
) where
    F: Fn(CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), CampaignError>> + Send,
{
    tierline_runtime::follower::lead(
        name,
        shutdown,
        move || {
            let store = store.clone();
            async move { store.try_lock_consumer(name).await }
        },
        consume,
    );
}

/// Reads a feed in batches of at most `batch_size` events, converts each event (dropping those
/// that do not concern this service) and applies each batch with the cursor of its last event,
/// until the stream ends (`Ok`), fails, or the service shuts down.
async fn apply_batches<E, T, A, Fut>(
    feed: impl Stream<Item = Result<E, tonic::Status>>,
    upstream: &str,
    batch_size: usize,
    shutdown: &CancellationToken,
    cursor_of: impl Fn(&E) -> String,
    convert: impl Fn(E) -> Result<Option<T>, CampaignError>,
    mut apply: A,
) -> Result<(), CampaignError>
where
    A: FnMut(Vec<T>, String) -> Fut,
    Fut: Future<Output = Result<(), CampaignError>>,
{
    let mut batches = std::pin::pin!(feed.ready_chunks(batch_size.max(1)));
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
        for item in batch {
            let event =
                item.map_err(|status| CampaignError::Unavailable(format!("{upstream}: {status}")))?;
            position = Some(cursor_of(&event));
            match convert(event) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {}
                // A malformed event would fail every retry; one must not stop the feed.
                Err(error) => tracing::error!(%error, upstream, "feed event skipped"),
            }
        }
        if let Some(position) = position {
            apply(events, position).await?;
        }
    }
}
