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

use tierline_runtime::follower::{Batching, DeadLetterCounter};
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
    dead_letters: DeadLetterCounter,
    shutdown: CancellationToken,
) {
    let attributor = Attributor::new(store.clone());
    let customer = upstream.customer.clone();
    let (feed_store, counter) = (store.clone(), dead_letters.clone());
    lead(
        activities::FEED,
        store.clone(),
        shutdown.clone(),
        move |shutdown| {
            let (attributor, customer) = (attributor.clone(), customer.clone());
            let (store, counter) = (feed_store.clone(), counter.clone());
            async move {
                let batching = Batching {
                    feed: activities::FEED,
                    batch_size,
                    shutdown: &shutdown,
                    dead_letters: &counter,
                };
                activities::consume(&attributor, &store, &customer, batching).await
            }
        },
    );
    let applier = TriggerApplier::new(store.clone(), enroller);
    let scoring = upstream.scoring.clone();
    let feed_store = store.clone();
    lead(tier_changes::FEED, store, shutdown, move |shutdown| {
        let (applier, scoring) = (applier.clone(), scoring.clone());
        let (store, counter) = (feed_store.clone(), dead_letters.clone());
        async move {
            let batching = Batching {
                feed: tier_changes::FEED,
                batch_size,
                shutdown: &shutdown,
                dead_letters: &counter,
            };
            tier_changes::consume(&applier, &store, &scoring, batching).await
        }
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
