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

use tierline_runtime::follower::{Batching, FeedCounters, Stopped};
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
    counters: FeedCounters,
    shutdown: CancellationToken,
) {
    let attributor = Attributor::new(
        store.clone(),
        chrono::Duration::from_std(upstream.clock_skew).unwrap_or(chrono::Duration::minutes(5)),
    );
    let customer = upstream.customer.clone();
    let (feed_store, counter) = (store.clone(), counters.clone());
    lead(
        activities::FEED,
        store.clone(),
        shutdown.clone(),
        counters.clone(),
        move |shutdown| {
            let (attributor, customer) = (attributor.clone(), customer.clone());
            let (store, counter) = (feed_store.clone(), counter.clone());
            async move {
                let batching = Batching {
                    feed: activities::FEED,
                    batch_size,
                    shutdown: &shutdown,
                    counters: &counter,
                };
                activities::consume(&attributor, &store, &customer, batching).await
            }
        },
    );
    let applier = TriggerApplier::new(store.clone(), enroller);
    let scoring = upstream.scoring.clone();
    let feed_store = store.clone();
    let counter = counters.clone();
    lead(
        tier_changes::FEED,
        store,
        shutdown,
        counters,
        move |shutdown| {
            let (applier, scoring) = (applier.clone(), scoring.clone());
            let (store, counter) = (feed_store.clone(), counter.clone());
            async move {
                let batching = Batching {
                    feed: tier_changes::FEED,
                    batch_size,
                    shutdown: &shutdown,
                    counters: &counter,
                };
                tier_changes::consume(&applier, &store, &scoring, batching).await
            }
        },
    );
}

/// Runs `consume` whenever this replica leads `name` (`tierline_runtime::follower`).
fn lead<F, Fut>(
    name: &'static str,
    store: Arc<dyn CampaignStore>,
    shutdown: CancellationToken,
    counters: FeedCounters,
    consume: F,
) where
    F: Fn(CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Stopped<CampaignError>>> + Send,
{
    tierline_runtime::follower::lead(
        name,
        shutdown,
        counters,
        move || {
            let store = store.clone();
            async move { store.try_lock_consumer(name).await }
        },
        consume,
    );
}

/// An id field of an upstream event; the reason, naming the field, when it is not one.
fn id(field: &str, text: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(text).map_err(|_| format!("{field} is not an id: {text:?}"))
}
