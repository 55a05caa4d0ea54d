//! The consumer's batches applied in partitions by customer: one leader, several transactions
//! at once. A batch is one transaction on one backend, its statements one after another, so a
//! single transaction leaves most of a multi-core Postgres idle (docs/BENCHMARKS.md, the feed).
//! Each batch is split by a hash of the customer; each part is applied in its own transaction on
//! its own connection, all at once.
//!
//! Exactly once still holds, with one cursor: every part commits on its own, and only once all
//! of them have, a small transaction of its own stores the cursor after the batch. So the stored
//! cursor never passes an event whose effects are not committed, and after any failure the feed
//! is read again from it: what a part had committed is then met again and changes nothing
//! (counted purchases and applied refunds are keyed by activity id; members are upserts), as
//! after any crash. No part holds its locks while it waits for another: the parts cannot make a
//! wait cycle with each other or with another writer (an evaluation, a backfill), which Postgres
//! could not see. Nor can they wait for each other's rows: everything an event changes belongs to
//! its customer, and a customer is always in the same part, so one customer's events are still
//! applied in feed order. With one partition, the batch and its cursor are one transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{accrual::UpstreamEvent, consumer::FeedApplier};
use crate::{
    ScoringError,
    cache::TierCache,
    domain::ports::{FeedProgress, ScoringStore},
};

/// The consumer's appliers, one per partition; the first also stores the cursor.
#[derive(Debug)]
pub struct PartitionedApplier {
    appliers: Vec<Arc<FeedApplier>>,
}

impl PartitionedApplier {
    /// `partitions` appliers (at least one) on `store`.
    pub fn new(store: Arc<dyn ScoringStore>, cache: TierCache, partitions: usize) -> Self {
        Self {
            appliers: (0..partitions.max(1))
                .map(|_| Arc::new(FeedApplier::new(store.clone(), cache.clone())))
                .collect(),
        }
    }

    /// Where to resume, and how far the feed had come.
    pub async fn progress(&self) -> Result<Option<FeedProgress>, ScoringError> {
        self.appliers[0].progress().await
    }

    /// Applies `events` and stores `position` and the checkpoint, as `FeedApplier::apply` does
    /// in one transaction; with several partitions, the cursor only once every part committed.
    #[tracing::instrument(skip_all, fields(events = events.len(), partitions = self.appliers.len()))]
    pub async fn apply(
        &self,
        events: Vec<UpstreamEvent>,
        position: &str,
        caught_up_to: Option<DateTime<Utc>>,
    ) -> Result<(), ScoringError> {
        if self.appliers.len() == 1 {
            return self.appliers[0]
                .apply(&events, position, caught_up_to)
                .await;
        }
        let parts: Vec<tokio::task::JoinHandle<Result<(), ScoringError>>> =
            split(events, self.appliers.len())
                .into_iter()
                .zip(&self.appliers)
                .filter(|(events, _)| !events.is_empty())
                .map(|(events, applier)| {
                    let applier = applier.clone();
                    tokio::spawn(async move { applier.apply_with_cursor(&events, None).await })
                })
                .collect();
        // Every part is awaited, failed or not, so that none still runs when the batch is
        // applied again.
        let mut failure = None;
        for part in parts {
            let outcome = part.await.unwrap_or_else(|error| {
                Err(ScoringError::Internal(format!(
                    "feed partition task: {error}"
                )))
            });
            if let Err(error) = outcome {
                failure.get_or_insert(error);
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        self.appliers[0]
            .apply_with_cursor(&[], Some((position, caught_up_to)))
            .await
    }
}

/// The partition of `customer_id` among `partitions`.
fn partition_of(customer_id: Uuid, partitions: usize) -> usize {
    // The low bits of a UUID (v4 or v7) are random; the count is small.
    (customer_id.as_u128() % partitions.max(1) as u128) as usize
}

/// `events` in `partitions` parts by customer, each in feed order.
fn split(events: Vec<UpstreamEvent>, partitions: usize) -> Vec<Vec<UpstreamEvent>> {
    let mut parts: Vec<Vec<UpstreamEvent>> = vec![Vec::new(); partitions.max(1)];
    for event in events {
        parts[partition_of(event.customer_id(), partitions)].push(event);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erased(customer_id: Uuid) -> UpstreamEvent {
        UpstreamEvent::CustomerErased { customer_id }
    }

    fn created(customer_id: Uuid, joined_at: DateTime<Utc>) -> UpstreamEvent {
        UpstreamEvent::CustomerCreated {
            customer_id,
            joined_at,
        }
    }

    #[test]
    fn a_customer_is_always_in_one_partition_and_keeps_the_feed_order() {
        let (first, second) = (DateTime::UNIX_EPOCH, Utc::now());
        let customers: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
        // Each customer twice: once in a first pass, once in a second pass in reverse.
        let events: Vec<UpstreamEvent> = customers
            .iter()
            .map(|customer| created(*customer, first))
            .chain(
                customers
                    .iter()
                    .rev()
                    .map(|customer| created(*customer, second)),
            )
            .collect();
        let parts = split(events, 3);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 400);
        for (index, part) in parts.iter().enumerate() {
            for event in part {
                assert_eq!(partition_of(event.customer_id(), 3), index);
            }
        }
        // Every partition gets a share: the hash spreads v7 ids.
        assert!(
            parts.iter().all(|part| part.len() > 60),
            "{:?}",
            parts.iter().map(Vec::len).collect::<Vec<_>>()
        );
        for customer in customers {
            let seen: Vec<DateTime<Utc>> = parts[partition_of(customer, 3)]
                .iter()
                .filter_map(|event| match event {
                    UpstreamEvent::CustomerCreated {
                        customer_id,
                        joined_at,
                    } if *customer_id == customer => Some(*joined_at),
                    _ => None,
                })
                .collect();
            assert_eq!(seen, [first, second]);
        }
    }

    #[test]
    fn one_partition_is_the_whole_batch() {
        let events: Vec<UpstreamEvent> = (0..10).map(|_| erased(Uuid::now_v7())).collect();
        let parts = split(events, 1);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].len(), 10);
    }
}
