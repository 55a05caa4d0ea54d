//! Writing changed records to the tier cache after their change commits, so that no cached
//! record outlives a change, whatever fails in between.
//!
//! 1. In the change's transaction, the change queues a repair naming the records it changed
//!    (only when a shared cache is configured: the near cache alone dies with its process).
//! 2. After commit, [`write_through`] writes the records to the cache and tells every replica;
//!    when that succeeded, the repair is removed.
//! 3. A repair left behind (Redis down or slow, the process killed between commit and write)
//!    is done by [`spawn_repairer`], running in every replica: once Redis answers, it deletes
//!    those keys from Redis and from every replica's near cache. The next lookup reads the store.
//!
//! The repairer reads the queue every [`REPAIR_EVERY`] for [`LOOK_HARD_FOR`] after its replica
//! starts, saw a write fail, or saw Redis come back, and otherwise once every [`SWEEP_EVERY`]:
//! a warm replica does not touch the database. What a killed replica left is repaired when a
//! replica starts (Kubernetes restarts the killed one at once), at the latest by the next sweep.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use uuid::Uuid;

use crate::{
    ScoringError,
    cache::{Keyspace, TierCache},
    domain::ports::{CustomerRecord, ScoringStore},
};

/// How often the repairer looks at the queue while it looks hard.
const REPAIR_EVERY: Duration = Duration::from_millis(500);

/// How long it looks hard after a failed write or a Redis outage.
const LOOK_HARD_FOR: Duration = Duration::from_secs(5);

/// How often it looks otherwise.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// A repair younger than this is left to the write it backs (which is most likely in flight).
const REPAIR_AFTER: chrono::Duration = chrono::Duration::seconds(1);

/// Repairs done per look.
const REPAIRS_PER_LOOK: u32 = 100;

/// Writes `records` of `space` after their change committed; removes the change's `repair`
/// when the cache took them. Failures are left to the repairer.
pub(crate) async fn write_through(
    store: &dyn ScoringStore,
    cache: &TierCache,
    space: Keyspace,
    records: &[CustomerRecord],
    repair: Option<i64>,
) {
    if !cache.put_many(space, records).await {
        return;
    }
    if let Some(id) = repair
        && let Err(error) = store.cache_repaired(&[id]).await
    {
        // The repairer will drop those keys: a few misses, nothing wrong.
        tracing::debug!(%error, "cannot remove a cache repair");
    }
}

/// Drops `customers` of `space` from every cache after a change to them committed that is
/// cheaper to read again than to write (a bucket rebuild); removes the change's `repair` when
/// the cache took it. Failures are left to the repairer.
pub(crate) async fn drop_after_commit(
    store: &dyn ScoringStore,
    cache: &TierCache,
    space: Keyspace,
    customers: &[Uuid],
    repair: Option<i64>,
) {
    if customers.is_empty() || !cache.drop_many(space, customers).await {
        return;
    }
    if let Some(id) = repair
        && let Err(error) = store.cache_repaired(&[id]).await
    {
        tracing::debug!(%error, "cannot remove a cache repair");
    }
}

/// Reads the records of `customers` after their change committed and writes them through, in a
/// task of its own: neither the caller going away (a cancelled RPC, a replica stopping between
/// two awaits) nor a failed read skips the write silently. A failed read wakes the repairer,
/// which drops those keys. Returns the records read, for the caller's answer.
pub(crate) fn after_commit(
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    space: Keyspace,
    customers: Vec<Uuid>,
    repair: Option<i64>,
) -> tokio::task::JoinHandle<Result<Vec<CustomerRecord>, ScoringError>> {
    tokio::spawn(async move {
        match store.customer_records(space.program_id, &customers).await {
            Ok(records) => {
                write_through(store.as_ref(), &cache, space, &records, repair).await;
                Ok(records)
            }
            Err(error) => {
                cache.note_write_failure();
                Err(error)
            }
        }
    })
}

/// The records [`after_commit`] read; an internal error if its task panicked.
pub(crate) async fn records_after_commit(
    task: tokio::task::JoinHandle<Result<Vec<CustomerRecord>, ScoringError>>,
) -> Result<Vec<CustomerRecord>, ScoringError> {
    task.await
        .map_err(|error| ScoringError::Internal(format!("cache write task: {error}")))?
}

/// Does the repairs left behind, in the background, until `shutdown`.
pub fn spawn_repairer(store: Arc<dyn ScoringStore>, cache: TierCache, shutdown: CancellationToken) {
    if !cache.shared() {
        return;
    }
    tokio::spawn(async move {
        let (mut seen_failures, mut was_away) = (cache.write_failures(), true);
        let (mut hard_until, mut next_sweep) = (Instant::now(), Instant::now() + SWEEP_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(REPAIR_EVERY) => {}
            }
            if !cache.redis_available() {
                was_away = true;
                continue;
            }
            let now = Instant::now();
            let failures = cache.write_failures();
            if failures != seen_failures || was_away {
                (seen_failures, was_away) = (failures, false);
                hard_until = now + LOOK_HARD_FOR;
            }
            if now >= hard_until && now < next_sweep {
                continue;
            }
            next_sweep = now + SWEEP_EVERY;
            if let Err(error) = repair_once(store.as_ref(), &cache).await {
                tracing::warn!(%error, "cache repairs failed; retrying");
                hard_until = now + LOOK_HARD_FOR;
            }
        }
    });
}

/// Does the repairs queued more than [`REPAIR_AFTER`] ago, a page at a time until none is
/// left or Redis fails; returns how many.
pub async fn repair_once(
    store: &dyn ScoringStore,
    cache: &TierCache,
) -> Result<usize, ScoringError> {
    let mut repaired = 0;
    loop {
        let (done, whole_page) = repair_page(store, cache).await?;
        repaired += done;
        if !whole_page {
            return Ok(repaired);
        }
    }
}

/// One page of repairs: how many were done, and whether the page was full and all done.
async fn repair_page(
    store: &dyn ScoringStore,
    cache: &TierCache,
) -> Result<(usize, bool), ScoringError> {
    let due = store
        .cache_repairs(Utc::now() - REPAIR_AFTER, REPAIRS_PER_LOOK)
        .await?;
    let mut done = Vec::with_capacity(due.len());
    for repair in due {
        let space = Keyspace {
            program_id: repair.program_id,
            generation: repair.generation,
        };
        if !cache.drop_many(space, &repair.customer_ids).await {
            break;
        }
        done.push(repair.id);
    }
    store.cache_repaired(&done).await?;
    if !done.is_empty() {
        tracing::info!(
            repairs = done.len(),
            "dropped cached records whose writes may have failed"
        );
    }
    Ok((done.len(), done.len() == REPAIRS_PER_LOOK as usize))
}
