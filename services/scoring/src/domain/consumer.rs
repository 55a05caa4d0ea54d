//! Applying the customer service's activity feed, exactly once: each batch of events is applied
//! in one transaction together with the cursor after its last event, so a crash replays only what
//! was not committed, and a replayed event finds its effects already there (counted purchases and
//! applied refunds are keyed by activity id) and changes nothing.
//!
//! Per program whose scope and currency the activity matches: a purchase is counted and added to
//! its month's bucket; a refund of a counted purchase takes back its share in the purchase's
//! month. Then the customer's window totals are computed from the buckets and the tier is raised
//! at once if they qualify higher. Refunds never lower a tier: downgrades wait for evaluations.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use super::{
    accrual::UpstreamEvent,
    cache_writes::write_through,
    decision::{Decision, TierState},
    feed_batch::{self, FeedKeys, FeedLoad, Origin, history_record},
    in_force::{ProgramInForce, programs_in_force},
    policy::PolicyRules,
    review::first_open_month,
    state::{Member, StoredState},
    window::{MonthRange, Totals, months_at},
};
use crate::{
    ScoringError,
    cache::{Keyspace, TierCache},
    domain::ports::{CustomerRecord, FeedProgress, ScoringStore, tx::ScoringTx},
};

/// Whether a batch's purchases may have been counted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replays {
    /// Any may have been: each is looked up, and one found is not counted again.
    Possible,
    /// None was, as for every batch of the consumer but the first after a failure: their
    /// counted rows are not read (a lookup per purchase that finds nothing), and if one was
    /// after all, the write refuses the batch (`Aborted`) and the applier applies it again with
    /// `Possible`. (A backfill re-reads a feed the consumer has mostly counted for its program
    /// already: it always applies with `Possible`.)
    Unexpected,
}

/// What the store holds of what `events` name under `programs`, locked until `tx` commits, and
/// which of the batch's purchase days between a profile's first and last are purchase days
/// already (all but each program's open month, which the applier adds from the runs).
pub async fn load_batch(
    tx: &mut dyn ScoringTx,
    events: &[UpstreamEvent],
    programs: &[ProgramInForce],
    replays: Replays,
) -> Result<FeedLoad, ScoringError> {
    let keys = FeedKeys::of(events, programs);
    let keys = match replays {
        Replays::Possible => keys,
        Replays::Unexpected => keys.without_purchases_counted_before(events),
    };
    let mut loaded = tx.load_feed_batch(&keys).await?;
    let between = feed_batch::days_between(events, programs, &loaded);
    loaded.known_purchase_days = Some(if between.is_empty() {
        Vec::new()
    } else {
        tx.known_purchase_days(&between).await?
    });
    Ok(loaded)
}

/// The consumer's name in `feed_cursors`.
pub const ACTIVITY_FEED: &str = "customer-activity-feed";

/// The state a customer holds in a program, locked until commit; a new member gets the base tier
/// since joining, created under the lock so that two writers of a first state cannot overwrite
/// each other. A customer the feed has not introduced yet (no member row) becomes a provisional
/// member who joined at `seen_at`; the Created event corrects the join time later.
pub(crate) async fn state_or_new(
    tx: &mut dyn ScoringTx,
    program_id: Uuid,
    customer_id: Uuid,
    seen_at: DateTime<Utc>,
) -> Result<(StoredState, Member), ScoringError> {
    let member = match tx.member(customer_id).await? {
        Some(member) => member,
        None => {
            let member = Member {
                customer_id,
                joined_at: seen_at,
                erased: false,
            };
            tx.upsert_member(member).await?;
            member
        }
    };
    let stored = tx
        .lock_or_create_state(
            program_id,
            customer_id,
            &TierState::new_member(member.joined_at),
        )
        .await?;
    Ok((stored, member))
}

/// Saves the state and records the decision, if any, with what caused it.
pub(crate) async fn save(
    tx: &mut dyn ScoringTx,
    program: &ProgramInForce,
    customer_id: Uuid,
    stored: &StoredState,
    decision: Option<(Decision, Origin)>,
    now: DateTime<Utc>,
) -> Result<(), ScoringError> {
    tx.save_state(program.program.id, customer_id, stored, now)
        .await?;
    if let Some((decision, origin)) = decision {
        tx.record(&history_record(program, customer_id, decision, origin))
            .await?;
    }
    Ok(())
}

/// The cache writes of a committed batch, still running.
type CacheWrites = Vec<tokio::task::JoinHandle<()>>;

/// Applies feed batches.
#[derive(Debug)]
pub struct FeedApplier {
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    /// Whose cursor the batches move: the consumer's, or a program's backfill.
    consumer: String,
    /// The one program a backfill applies the feed for; every program for the consumer.
    only: Option<Uuid>,
    /// What its batches are first applied assuming.
    replays: Replays,
    /// The previous batch's cache writes: they run while the next batch is applied, and are
    /// awaited once it has committed, so at most two batches' writes are in flight.
    in_flight: std::sync::Mutex<CacheWrites>,
}

impl FeedApplier {
    /// The consumer's applier on `store`: every program, the consumer's cursor.
    pub fn new(store: Arc<dyn ScoringStore>, cache: TierCache) -> Self {
        Self {
            store,
            cache,
            consumer: ACTIVITY_FEED.to_owned(),
            only: None,
            replays: Replays::Unexpected,
            in_flight: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A backfill's applier: the feed applied for `program_id` alone, with the backfill's cursor
    /// (`backfill::consumer_of`).
    pub fn for_backfill(store: Arc<dyn ScoringStore>, cache: TierCache, program_id: Uuid) -> Self {
        Self {
            consumer: super::backfill::consumer_of(program_id),
            only: Some(program_id),
            replays: Replays::Possible,
            ..Self::new(store, cache)
        }
    }

    /// Where to resume, and how far the feed had come.
    pub async fn progress(&self) -> Result<Option<FeedProgress>, ScoringError> {
        self.store.feed_progress(&self.consumer).await
    }

    /// Applies `events` and stores `position` (the cursor after the last of them) and the
    /// batch's checkpoint, if it carried one, atomically.
    pub async fn apply(
        &self,
        events: &[UpstreamEvent],
        position: &str,
        caught_up_to: Option<DateTime<Utc>>,
    ) -> Result<(), ScoringError> {
        self.apply_with_cursor(events, Some((position, caught_up_to)))
            .await
    }

    /// Applies `events` and stores `cursor` (position and checkpoint) if given, in one
    /// transaction. A part of a batch is applied without the cursor (`super::partitions`).
    ///
    /// The consumer's batch is first applied as if none of its purchases had been counted
    /// before; if one had (a replay after a failure, or a backfill counting beside the
    /// consumer), or another writer got in the way, it is applied once more looking each
    /// purchase up. A backfill's batch is applied looking them up from the start.
    #[tracing::instrument(skip_all, fields(events = events.len(), cursor = cursor.is_some()))]
    pub(crate) async fn apply_with_cursor(
        &self,
        events: &[UpstreamEvent],
        cursor: Option<(&str, Option<DateTime<Utc>>)>,
    ) -> Result<(), ScoringError> {
        match self.apply_once(events, cursor, self.replays).await {
            Err(ScoringError::Aborted(reason)) if self.replays == Replays::Unexpected => {
                tracing::info!(%reason, "feed batch applied again, looking its purchases up");
                self.apply_once(events, cursor, Replays::Possible).await
            }
            applied => applied,
        }
    }

    async fn apply_once(
        &self,
        events: &[UpstreamEvent],
        cursor: Option<(&str, Option<DateTime<Utc>>)>,
        replays: Replays,
    ) -> Result<(), ScoringError> {
        let now = Utc::now().trunc_subsecs(6);
        let mut tx = self.store.begin().await?;
        // A batch of nothing but a checkpoint (an idle feed checks in every few seconds) moves
        // the cursor and the checkpoint only.
        if events.is_empty() {
            if let Some((position, caught_up_to)) = cursor {
                tx.save_cursor(&self.consumer, position, caught_up_to, now)
                    .await?;
            }
            return tx.commit().await;
        }
        // Programs are read once no bucket rebuild can run (a rebuild follows a policy
        // activation and counts months in the new policy's time zone).
        tx.guard_buckets().await?;
        let mut programs = programs_in_force(self.store.as_ref()).await?;
        if let Some(only) = self.only {
            programs.retain(|program| program.program.id == only);
        }
        let programs = &programs;
        let mut loaded = load_batch(tx.as_mut(), events, programs, replays).await?;
        for program in programs {
            if let Some((version, rules)) = &program.policy {
                let closed = self
                    .store
                    .last_closed_scheduled_due(program.program.id)
                    .await?;
                loaded.open_months.push((
                    program.program.id,
                    first_open_month(rules, version.activated_at, closed, now),
                ));
            }
        }
        let mut writes = feed_batch::apply(events, programs, loaded, now);
        tx.write_feed_batch(&writes, now).await?;
        let mut records: HashMap<Uuid, Vec<CustomerRecord>> = HashMap::new();
        for (program_id, record) in std::mem::take(&mut writes.records) {
            records.entry(program_id).or_default().push(record);
        }
        // The records each program's cache will be written with after commit, with their
        // repairs.
        let mut cache_writes = Vec::new();
        for program in programs {
            let Some(records) = records.remove(&program.program.id) else {
                continue;
            };
            let space = Keyspace::of(&program.program);
            let repair = if self.cache.shared() {
                let customers: Vec<Uuid> = records
                    .iter()
                    .map(|record| record.member.customer_id)
                    .collect();
                Some(
                    tx.queue_cache_repair(space.program_id, space.generation, &customers)
                        .await?,
                )
            } else {
                None
            };
            cache_writes.push((space, records, repair));
        }
        if let Some((position, caught_up_to)) = cursor {
            tx.save_cursor(&self.consumer, position, caught_up_to, now)
                .await?;
        }
        tx.commit().await?;
        // Write-through, after the commit: the cache never holds what the store may roll back.
        // The batch knows every record it left (it held the states locked and loaded their
        // buckets), so nothing is read back. A write that cannot be made is left to the
        // repairer: the batch is applied either way. Two batches' writes of one record may race;
        // the record's version keeps the newer.
        let tasks: CacheWrites = cache_writes
            .into_iter()
            .map(|(space, records, repair)| {
                let (store, cache) = (self.store.clone(), self.cache.clone());
                tokio::spawn(async move {
                    write_through(store.as_ref(), &cache, space, &records, repair).await;
                })
            })
            .collect();
        let previous = std::mem::replace(
            &mut *self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            tasks,
        );
        for task in previous {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a cache write task of a feed batch panicked; the repairer will drop those records");
            }
        }
        Ok(())
    }
}

/// The customer's totals in the window that counts now, and that window.
pub(crate) async fn totals_now(
    tx: &mut dyn ScoringTx,
    program: &ProgramInForce,
    rules: &PolicyRules,
    customer_id: Uuid,
    joined_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(Totals, MonthRange), ScoringError> {
    let buckets = tx.buckets(program.program.id, customer_id).await?;
    let window = months_at(rules.window, now, rules.time_zone, joined_at);
    Ok((Totals::over(&buckets, window), window))
}
