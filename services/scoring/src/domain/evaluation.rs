//! Evaluation runs: every member with a tier state is judged once under the policy in force.
//!
//! - A scheduled run judges the window as it stood at the end of the month before its due time
//!   (`window::judged_at`); a manual run judges the window as of its first start, every chunk
//!   and every resume of it alike.
//! - Downgrades happen here only, honouring grace and the drop limit; expired overrides end here
//!   too.
//! - A run after a policy activation first rebuilds the buckets in the new policy's time zone,
//!   then raises whoever qualifies higher under the new rules (downgrades wait for the next
//!   scheduled evaluation).
//! - Members are read in chunks of about [`CHUNK`], without locks, each in one statement per
//!   connection (a store may read a chunk's parts on several at once), and of
//!   those only the ones whose review month has come (`domain::review`), who have lapsed or
//!   whose override has ended are sent, with their buckets; the window is summed here. Only the
//!   states a run changes are written (a member who keeps qualifying is left as is: the
//!   program's last evaluation is their last qualified time), in one transaction per chunk, each
//!   at the version it was judged at; a kept member's new review is saved without a new
//!   version; the cache is written after each commit, for the members changed. A chunk whose
//!   transaction a conflict with another writer rolled back (a deadlock) is written again.
//! - A run survives its replica: it holds the program's run lock while it goes on, so a run still
//!   marked running whose lock is free is an orphan, and a scheduler tick resumes it. Each state
//!   a run writes is marked with the run, and a resumed run skips those, so nobody is moved
//!   twice by one run; its counters live in the run row and grow with each chunk's commit.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use futures::future::BoxFuture;
use serde_json::json;
use uuid::Uuid;

use super::{
    backfill::ActivityHistory,
    cache_writes::{after_commit, drop_after_commit, records_after_commit},
    chunk_walk::{ChunkRead, walk_chunks, written_again_on_conflict},
    consumer::{ACTIVITY_FEED, state_or_new},
    decision::Decision,
    feed_batch::{Origin, history_record},
    in_force::ProgramInForce,
    month::Month,
    policy::PolicyRules,
    review::{Review, first_open_month},
    run_counts::{counts_json, moves_of, with_moves},
    state::{HistoryRecord, StoredState},
    versions::{EvaluationRun, RunStatus, RunTrigger},
    window::{Bucket, MonthRange, Totals, judged_at, months_at, reviews},
};
use crate::{
    ScoringError,
    cache::{Keyspace, TierCache},
    domain::ports::{
        RunLock, ScoringStore,
        tx::{
            ChunkEnd, ChunkSize, EvaluationCandidate, EvaluationChunk, EvaluationTx, FoundAt,
            RunProgress, StateRef,
        },
    },
};

/// A manual run reports its feed complete when the feed had brought everything up to this long
/// before it began (a feed that is caught up checks in every few seconds).
const FEED_LAG: chrono::Duration = chrono::Duration::seconds(10);

/// Members read per chunk and judged per transaction, and on how many connections at once a
/// chunk is read (a statement is one core's work in Postgres; the writes of the chunk before run
/// beside on another).
const CHUNK: ChunkSize = ChunkSize {
    members: 20_000,
    connections: 2,
};

/// Chunks judged and written at once, each in a transaction of its own, while the next is read
/// (`chunk_walk`): a chunk's writes are one core's work in Postgres.
const CHUNKS_WRITTEN_AT_ONCE: usize = 2;

/// How many times a chunk's transaction is run when a conflict with another writer rolls it back
/// (`chunk_walk::written_again_on_conflict`).
const CHUNK_WRITE_ATTEMPTS: u32 = 3;

/// Customers whose buckets are rebuilt per transaction.
const REBUILD_CHUNK: u32 = 10_000;

/// Ended overrides handled per scheduler tick.
const ENDED_OVERRIDES_PER_TICK: u32 = 200;

/// What kind of pass a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// On the policy's schedule, for the due time given.
    Scheduled(DateTime<Utc>),
    /// `EvaluateNow`.
    Manual,
    /// After a policy was activated.
    PolicyChange,
}

/// How long a scheduled run waits for the activity feed to bring the period it judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedWait {
    /// Added to the judged period's end: purchases may be recorded this much after they happened
    /// (the customer service's clock skew).
    pub margin: std::time::Duration,
    /// The longest wait; after it the run judges on what has arrived and says so.
    pub limit: std::time::Duration,
}

/// How often a waiting run looks at the feed's progress.
const FEED_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs evaluations.
#[derive(Debug, Clone)]
pub struct Evaluator {
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    feed_wait: FeedWait,
    /// Where a program's history is read from before its first run judges anyone; `None` when
    /// the service follows no activity feed.
    history: Option<Arc<dyn ActivityHistory>>,
}

impl Evaluator {
    /// An evaluator on `store`, keeping `cache` current; scheduled runs wait for the feed as
    /// `feed_wait` says.
    pub fn new(
        store: Arc<dyn ScoringStore>,
        cache: TierCache,
        feed_wait: FeedWait,
        history: Option<Arc<dyn ActivityHistory>>,
    ) -> Self {
        Self {
            store,
            cache,
            feed_wait,
            history,
        }
    }

    /// Counts the program's history if it has not been (`domain::backfill`); what the run
    /// reports of it.
    async fn backfill(
        &self,
        program_id: Uuid,
        run_id: Uuid,
    ) -> Result<serde_json::Value, ScoringError> {
        if super::backfill::complete(self.store.as_ref(), program_id).await? {
            return Ok(json!({ "complete": true, "events": 0 }));
        }
        let Some(history) = &self.history else {
            return Ok(
                json!({ "complete": false, "reason": "this service follows no activity feed" }),
            );
        };
        let outcome = history.count_history(program_id, run_id).await?;
        Ok(json!({ "complete": outcome.complete, "events": outcome.events }))
    }

    /// Waits, for a scheduled pass, until the activity feed has brought everything committed
    /// before the judged period's end plus the margin, at most the wait limit; returns what the
    /// run reports of the feed. A manual pass does not wait: it reports how far the feed was.
    /// A deployment that has never consumed the feed (no cursor) has nothing to wait for.
    async fn await_feed(
        &self,
        pass: Pass,
        rules: &PolicyRules,
    ) -> Result<serde_json::Value, ScoringError> {
        let needed = match pass {
            Pass::Scheduled(due) => Some(
                judged_at(due, rules.time_zone)
                    + chrono::Duration::from_std(self.feed_wait.margin)
                        .unwrap_or(chrono::Duration::zero()),
            ),
            Pass::Manual | Pass::PolicyChange => None,
        };
        let started = std::time::Instant::now();
        loop {
            let progress = self.store.feed_progress(ACTIVITY_FEED).await?;
            let caught_up_to = progress.as_ref().and_then(|p| p.caught_up_to);
            let complete = match (needed, &progress) {
                (_, None) => true,
                (Some(needed), Some(_)) => caught_up_to.is_some_and(|at| at >= needed),
                (None, Some(_)) => caught_up_to.is_some_and(|at| at >= Utc::now() - FEED_LAG),
            };
            let waited = started.elapsed();
            if needed.is_none() || complete || waited >= self.feed_wait.limit {
                if !complete {
                    tracing::warn!(
                        caught_up_to = ?caught_up_to,
                        needed = ?needed,
                        "judging before the activity feed brought the whole period"
                    );
                }
                return Ok(json!({
                    "caught_up_to": caught_up_to,
                    "needed": needed,
                    "waited_ms": u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    "complete": complete,
                }));
            }
            tokio::time::sleep(FEED_POLL).await;
        }
    }

    /// Runs `run` to the end and closes it with its summary (or its error). Waits while another
    /// run of the program goes on; does nothing when, after waiting, the run is no longer
    /// running (another replica resumed and finished it).
    #[tracing::instrument(skip_all, fields(run_id = %run.id, program = %program.program.code))]
    pub async fn execute(&self, program: &ProgramInForce, run: &EvaluationRun, pass: Pass) {
        let lock = match self.store.lock_program_runs(program.program.id).await {
            Ok(lock) => lock,
            Err(error) => {
                // The run stays "running" and is resumed by a scheduler tick.
                tracing::error!(%error, "cannot take the program's run lock");
                return;
            }
        };
        self.execute_locked(program, run, pass, lock).await;
    }

    /// Resumes runs left running by a replica that died or stopped (their run lock is free,
    /// so nobody executes them); returns how many it resumed. Members a run already changed
    /// are skipped, so nobody is moved twice by one run. Each resumed run goes on in a task of its
    /// own. Returns how many runs it resumed and how many it left to whoever holds their lock
    /// (a live run, or a lifecycle sweep for a moment).
    pub async fn resume_orphans(
        &self,
        programs: &[ProgramInForce],
    ) -> Result<(usize, usize), ScoringError> {
        let (mut resumed, mut held) = (0, 0);
        for run in self.store.running_runs(100).await? {
            let Some(program) = programs.iter().find(|p| p.program.id == run.program_id) else {
                continue;
            };
            let Some(lock) = self.store.try_lock_program_runs(run.program_id).await? else {
                // Someone runs (or is about to run) an evaluation of this program.
                held += 1;
                continue;
            };
            let pass = match (run.trigger, run.due_at) {
                (RunTrigger::Schedule, Some(due)) => Pass::Scheduled(due),
                (RunTrigger::PolicyActivation, _) => Pass::PolicyChange,
                (RunTrigger::Schedule | RunTrigger::Manual, _) => Pass::Manual,
            };
            tracing::warn!(run_id = %run.id, program = %program.program.code, "resuming an orphaned evaluation run");
            let (evaluator, program) = (self.clone(), program.clone());
            tokio::spawn(async move { evaluator.execute_locked(&program, &run, pass, lock).await });
            resumed += 1;
        }
        Ok((resumed, held))
    }

    async fn execute_locked(
        &self,
        program: &ProgramInForce,
        run: &EvaluationRun,
        pass: Pass,
        _lock: RunLock,
    ) {
        let outcome = match self.store.run(run.id).await {
            Ok(Some(current)) if current.status == RunStatus::Running => {
                self.evaluate(program, run, pass).await
            }
            Ok(_) => return,
            Err(error) => Err(error),
        };
        let now = Utc::now().trunc_subsecs(6);
        let closed = match outcome {
            Ok(summary) => {
                tracing::info!(%summary, "evaluation run finished");
                self.store.close_run(run.id, summary, None, now).await
            }
            Err(error) => {
                tracing::error!(%error, "evaluation run failed");
                self.store
                    .close_run(run.id, json!({}), Some(error.to_string()), now)
                    .await
            }
        };
        if let Err(error) = closed {
            tracing::error!(%error, "cannot record the end of an evaluation run");
        }
    }

    async fn evaluate(
        &self,
        program: &ProgramInForce,
        run: &EvaluationRun,
        pass: Pass,
    ) -> Result<serde_json::Value, ScoringError> {
        let Some((version, rules)) = &program.policy else {
            return Err(ScoringError::FailedPrecondition(
                "no policy in force".into(),
            ));
        };
        // The program was read before the run lock was taken: the policy may have changed since.
        let in_force = self
            .store
            .active_policy(program.program.id)
            .await?
            .map(|version| version.id);
        if in_force != Some(run.policy_version_id) || version.id != run.policy_version_id {
            return Err(ScoringError::FailedPrecondition(
                "another policy was activated before this run could go on".into(),
            ));
        }
        let started = Utc::now().trunc_subsecs(6);
        let start = self.store.start_run(run.id, started).await?;
        let resumed = start.resumed;
        // One instant's window for the whole run: a scheduled run judges the period before its
        // due time; a run by hand the moment it first started, so that a run crossing a month's
        // end (or resumed after one) judges all its members on the same window.
        let judged_at_time = match pass {
            Pass::Scheduled(due) => judged_at(due, rules.time_zone),
            Pass::Manual | Pass::PolicyChange => start.judging_started_at,
        };
        // The tiers before the run are counted in a snapshot taken now, before its first write,
        // beside the waiting and the first chunks (a full pass over the states); stored when
        // counted, which `GetEvaluationRun` then shows. A resumed run keeps its first start's.
        let counts_before = match start.counts_before {
            Some(counts) => tokio::spawn(async move { Ok(counts) }),
            None => {
                let snapshot = self
                    .store
                    .tier_counts_snapshot(program.program.id, started)
                    .await?;
                let (store, program, run_id) = (self.store.clone(), program.clone(), run.id);
                tokio::spawn(async move {
                    let counts = snapshot.count().await?;
                    store
                        .store_counts_before(run_id, counts_json(&program.program, &counts))
                        .await
                })
            }
        };
        // Started, and now waits for the feed when it must.
        let feed = self.await_feed(pass, rules).await?;
        // Purchases from before the program existed count before anyone is judged.
        let backfill = self.backfill(program.program.id, run.id).await?;
        // RFM cut points are recomputed at every evaluation (lookups between runs use these),
        // beside the judging: an RFM-sized query that does not touch the tier states.
        let cut_points = {
            let (store, program, rules) =
                (self.store.clone(), program.program.clone(), rules.clone());
            tokio::spawn(async move {
                super::cut_points::refresh_cut_points(store.as_ref(), &program, &rules, started)
                    .await
            })
        };
        // Customer value is refitted at every evaluation too, beside the judging (the fit is
        // mostly the service's CPU, the judging mostly Postgres's). A program too small to fit,
        // or a fit that fails, leaves the last model in use and does not stop the run.
        let value_fit = {
            let (store, program_id, zone, run_id) = (
                self.store.clone(),
                program.program.id,
                rules.time_zone,
                run.id,
            );
            tokio::spawn(async move {
                super::value::refit(store.as_ref(), program_id, zone, started, Some(run_id)).await
            })
        };
        let mut space = Keyspace::of(&program.program);
        if pass == Pass::PolicyChange {
            space.generation = self
                .rebuild_buckets(program.program.id, rules.time_zone)
                .await?;
        }
        // Grace counts from the last evaluation that finished, for members it left untouched:
        // read from the store, not the program in memory, which may predate that run's end.
        let last_evaluated_at = self
            .store
            .program(program.program.id)
            .await?
            .and_then(|program| program.last_evaluated_at);
        // Reviews are found from the earliest month a run still to come may judge (this run's
        // own, if it is the scheduled one).
        let last_closed_due = self
            .store
            .last_closed_scheduled_due(program.program.id)
            .await?;
        let open_month = first_open_month(rules, version.activated_at, last_closed_due, started);
        let judging = Judging {
            program,
            rules,
            policy_version_id: version.id,
            open_month,
            pass,
            judged_at: judged_at_time,
            last_evaluated_at,
            space,
            run_id: run.id,
        };
        // Chunks are read one after another while those before are judged and written, several
        // at once: the reads and the writes share the time rather than add up
        // (`chunk_walk`).
        let read = chunk_reader(self.store.clone(), &judging);
        walk_chunks(
            read,
            |read: ChunkRead| self.judge_chunk(&judging, read.chunk, read.now),
            CHUNKS_WRITTEN_AT_ONCE,
        )
        .await?;
        let (cut_points_version, _) = cut_points
            .await
            .map_err(|error| ScoringError::Internal(format!("RFM cut points task: {error}")))??;
        let value_model_version = match value_fit.await {
            Ok(Ok(model)) => model.version,
            Ok(Err(ScoringError::FailedPrecondition(reason))) => {
                tracing::info!(%reason, "value model not fitted");
                0
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "value model not fitted");
                0
            }
            Err(error) => {
                tracing::warn!(%error, "value model fit task failed");
                0
            }
        };
        let counts_before = counts_before
            .await
            .map_err(|error| ScoringError::Internal(format!("tier counts task: {error}")))??;
        let progress = self.store.run_progress(run.id).await?;
        let counts_after = with_moves(&counts_before, &self.store.run_moves(run.id).await?);
        Ok(json!({
            "members_evaluated": progress.evaluated,
            "upgrades": progress.upgrades,
            "downgrades": progress.downgrades,
            "resumed": resumed,
            "cut_points_version": cut_points_version,
            "value_model_version": value_model_version,
            "counts_before": counts_before,
            "counts_after": counts_after,
            "feed": feed,
            "backfill": backfill,
        }))
    }
}

/// What reads the chunks of the run `judging` describes, each after the end it is given, all
/// judged at the run's one instant.
fn chunk_reader(
    store: Arc<dyn ScoringStore>,
    judging: &Judging<'_>,
) -> impl FnMut(Option<ChunkEnd>) -> BoxFuture<'static, Result<ChunkRead, ScoringError>> + Send + 'static
{
    let (program_id, run_id, policy_version_id) = (
        judging.program.program.id,
        judging.run_id,
        judging.policy_version_id,
    );
    let (rules, judged_at_time, open_month) =
        (judging.rules.clone(), judging.judged_at, judging.open_month);
    move |after| {
        let (store, rules) = (store.clone(), rules.clone());
        Box::pin(async move {
            let now = Utc::now().trunc_subsecs(6);
            // A scheduled run overdue by more than the open month (the scheduler was down)
            // reads everyone: reviews were found from later months.
            let overdue = Month::of(judged_at_time, rules.time_zone) < open_month;
            let reviewed_under = if overdue {
                Uuid::nil()
            } else {
                policy_version_id
            };
            let chunk = store
                .evaluation_chunk(
                    program_id,
                    run_id,
                    after,
                    CHUNK,
                    (reviewed_under, &rules),
                    judged_at_time,
                    now,
                )
                .await?;
            Ok(ChunkRead { chunk, now })
        })
    }
}

/// What every chunk of one run is judged with.
struct Judging<'a> {
    program: &'a ProgramInForce,
    rules: &'a PolicyRules,
    /// The policy version in force, whose reviews the run finds.
    policy_version_id: Uuid,
    /// The earliest month a run still to come may judge (`review::first_open_month`).
    open_month: Month,
    pass: Pass,
    /// The instant whose window every member of the run is judged on.
    judged_at: DateTime<Utc>,
    last_evaluated_at: Option<DateTime<Utc>>,
    space: Keyspace,
    run_id: Uuid,
}

/// A member to judge: the state as read, their buckets and, where the window needs it, when
/// they joined.
struct JudgedMember<'a> {
    customer_id: Uuid,
    /// Where the store found the state, if it said.
    found_at: Option<FoundAt>,
    stored: StoredState,
    buckets: &'a [Bucket],
    joined_at: Option<DateTime<Utc>>,
}

/// What judging a member came to.
enum Outcome {
    /// The state changed: save it.
    Changed(Judgement),
    /// The state stays as it was; its review, from the buckets it holds now.
    Kept(Review),
}

/// One member's judgement in a chunk: the state to save, with its review, and the decisions it
/// records.
struct Judgement {
    customer_id: Uuid,
    found_at: Option<FoundAt>,
    stored: StoredState,
    review: Review,
    decisions: Vec<Decision>,
    /// The window the decisions' totals were summed over.
    window: MonthRange,
}

impl Judgement {
    /// The state to save, where it was found, and its review.
    fn to_save(&self) -> (StateRef, StoredState, Review) {
        let at = StateRef {
            customer_id: self.customer_id,
            found_at: self.found_at,
        };
        (at, self.stored.clone(), self.review)
    }
}

/// What a chunk's committed transaction changed: the members whose records the caches must drop,
/// and the cache repair queued for them, if any.
struct WrittenChunk {
    changed: Vec<Uuid>,
    repair: Option<i64>,
}

impl Judging<'_> {
    /// The month reviews are looked for from: the judged month, or the earliest a run still to
    /// come may judge, whichever is earlier.
    fn review_from(&self) -> Month {
        Month::of(self.judged_at, self.rules.time_zone).min(self.open_month)
    }

    /// Judges a chunk's candidates: the judgements of those whose state changes, and the new
    /// review of each who keeps their state where it differs from the one stored.
    fn judge_candidates(
        &self,
        candidates: Vec<EvaluationCandidate>,
        now: DateTime<Utc>,
    ) -> (Vec<Judgement>, Vec<(StateRef, i64, Review)>) {
        let mut judged: Vec<Judgement> = Vec::new();
        let mut reviews: Vec<(StateRef, i64, Review)> = Vec::new();
        for candidate in candidates {
            let (customer_id, version) = (candidate.customer_id, candidate.stored.version);
            let at = StateRef {
                customer_id,
                found_at: candidate.found_at,
            };
            let member = JudgedMember {
                customer_id,
                found_at: candidate.found_at,
                stored: candidate.stored,
                buckets: &candidate.buckets,
                joined_at: candidate.joined_at,
            };
            match self.judge(member, now) {
                Outcome::Changed(judgement) => judged.push(judgement),
                Outcome::Kept(review) if candidate.review != Some(review) => {
                    reviews.push((at, version, review));
                }
                Outcome::Kept(_) => {}
            }
        }
        (judged, reviews)
    }

    /// Judges one member with their window totals; `Some` when the state changed. A year window
    /// still in progress at the judged instant is not judged (only an ended override is).
    fn judge(&self, member: JudgedMember<'_>, now: DateTime<Utc>) -> Outcome {
        let JudgedMember {
            customer_id,
            found_at,
            mut stored,
            buckets,
            joined_at,
        } = member;
        let (rules, judged_at_time) = (self.rules, self.judged_at);
        // Only a membership year reads the join time, and stores read it for one.
        let joined_at = joined_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let window = months_at(rules.window, judged_at_time, rules.time_zone, joined_at);
        let totals = Totals::over(buckets, window);
        let before = stored.state.clone();
        let state = &mut stored.state;
        let mut decisions: Vec<Decision> = state.expire_override(totals, now).into_iter().collect();
        let judged_decision = match self.pass {
            Pass::PolicyChange => {
                state.after_policy_change(self.rules, totals, now, self.last_evaluated_at)
            }
            Pass::Scheduled(_) | Pass::Manual
                if !reviews(rules.window, judged_at_time, rules.time_zone, joined_at) =>
            {
                None
            }
            // Someone who qualified after the judged window closed (a purchase between the
            // month's end and this run) is not judged on the older window.
            Pass::Scheduled(_)
                if state
                    .last_qualified_at
                    .is_some_and(|at| at > judged_at_time) =>
            {
                None
            }
            Pass::Scheduled(_) | Pass::Manual => {
                state.at_evaluation(self.rules, totals, now, self.last_evaluated_at)
            }
        };
        decisions.extend(judged_decision);
        let review = Review::of(
            rules,
            self.policy_version_id,
            stored.state.earned_rank,
            buckets,
            joined_at,
            self.review_from(),
        );
        if stored.state == before && decisions.is_empty() {
            return Outcome::Kept(review);
        }
        Outcome::Changed(Judgement {
            customer_id,
            found_at,
            stored,
            review,
            decisions,
            window,
        })
    }
}

impl Evaluator {
    /// Rebuilds a program's buckets with months in `zone`, a chunk of customers per
    /// transaction (bucket writers wait for one chunk at a time, never for the whole program);
    /// returns the new cache generation. Records cached in the new generation before their
    /// chunk was rebuilt are dropped after it commits.
    async fn rebuild_buckets(
        &self,
        program_id: Uuid,
        zone: chrono_tz::Tz,
    ) -> Result<i32, ScoringError> {
        let generation = self.store.start_bucket_rebuild(program_id).await?;
        let space = Keyspace {
            program_id,
            generation,
        };
        let mut after = None;
        loop {
            let chunk = self
                .store
                .rebuild_bucket_chunk(
                    program_id,
                    zone,
                    after,
                    REBUILD_CHUNK,
                    self.cache.shared().then_some(generation),
                )
                .await?;
            drop_after_commit(
                self.store.as_ref(),
                &self.cache,
                space,
                &chunk.customers,
                chunk.repair,
            )
            .await;
            match chunk.customers.last() {
                Some(last) if chunk.customers.len() == REBUILD_CHUNK as usize => {
                    after = Some(*last);
                }
                _ => return Ok(generation),
            }
        }
    }

    /// Judges a chunk's candidates, read without locks, and saves what changed in one
    /// transaction: each state only at the version it was judged at. The few that moved
    /// meanwhile (a purchase, an operator) are locked, read again with their buckets and judged
    /// once more. After the commit, the changed members' records are dropped from every cache.
    async fn judge_chunk(
        &self,
        judging: &Judging<'_>,
        chunk: EvaluationChunk,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        // Nobody in it (a walk's last chunk, found empty): nothing to write.
        if chunk.members == 0 && chunk.candidates.is_empty() {
            return Ok(());
        }
        let (judged, reviews) = judging.judge_candidates(chunk.candidates, now);
        let written = written_again_on_conflict(CHUNK_WRITE_ATTEMPTS, || {
            self.write_chunk(judging, chunk.members, (&judged, &reviews), now)
        })
        .await?;
        // Dropped rather than written through: reading a chunk's changed records back costs
        // more than the one miss each of them takes at its next lookup.
        drop_after_commit(
            self.store.as_ref(),
            &self.cache,
            judging.space,
            &written.changed,
            written.repair,
        )
        .await;
        Ok(())
    }

    /// Writes a judged chunk of `members` in one transaction: the `judged` states that changed,
    /// each at the version it was judged at (those that moved since are judged again under
    /// lock), the new `reviews` of those kept, the history, the run's counters and moves, and
    /// the queued cache repair. Nothing is kept unless it commits.
    async fn write_chunk(
        &self,
        judging: &Judging<'_>,
        members: i64,
        (judged, reviews): (&[Judgement], &[(StateRef, i64, Review)]),
        now: DateTime<Utc>,
    ) -> Result<WrittenChunk, ScoringError> {
        let program_id = judging.program.program.id;
        let mut tx = self.store.begin_evaluation().await?;
        tx.save_reviews(program_id, judging.run_id, reviews).await?;
        let states: Vec<(StateRef, StoredState, Review)> =
            judged.iter().map(Judgement::to_save).collect();
        let saved = tx
            .save_judged_states(program_id, judging.run_id, &states, now)
            .await?;
        let moved: Vec<Uuid> = states
            .iter()
            .zip(&saved)
            .filter_map(|((at, ..), version)| version.is_none().then_some(at.customer_id))
            .collect();
        let again = if moved.is_empty() {
            Vec::new()
        } else {
            self.judge_locked(judging, tx.as_mut(), &moved, now).await?
        };
        let saved_judgements: Vec<&Judgement> = judged
            .iter()
            .filter(|judgement| !moved.contains(&judgement.customer_id))
            .chain(&again)
            .collect();
        let mut progress = RunProgress {
            evaluated: members,
            ..RunProgress::default()
        };
        let mut records: Vec<HistoryRecord> = Vec::new();
        for judgement in &saved_judgements {
            for decision in &judgement.decisions {
                if decision.to_rank > decision.from_rank {
                    progress.upgrades += 1;
                } else {
                    progress.downgrades += 1;
                }
                let origin = Origin {
                    window: Some(judgement.window),
                    evaluation_run_id: Some(judging.run_id),
                    activity_id: None,
                };
                records.push(history_record(
                    judging.program,
                    judgement.customer_id,
                    decision.clone(),
                    origin,
                ));
            }
        }
        tx.record_many(&records).await?;
        tx.add_run_progress(judging.run_id, progress).await?;
        let moves = moves_of(
            &judging.program.program,
            saved_judgements
                .iter()
                .flat_map(|judgement| &judgement.decisions),
        );
        if !moves.is_empty() {
            tx.add_run_moves(judging.run_id, &moves).await?;
        }
        let changed: Vec<Uuid> = saved_judgements
            .iter()
            .map(|judgement| judgement.customer_id)
            .collect();
        let repair = if self.cache.shared() && !changed.is_empty() {
            Some(
                tx.queue_cache_repair(program_id, judging.space.generation, &changed)
                    .await?,
            )
        } else {
            None
        };
        tx.commit().await?;
        Ok(WrittenChunk { changed, repair })
    }

    /// Judges again, under lock, the members whose state moved since their chunk was read, and
    /// saves those that change.
    async fn judge_locked(
        &self,
        judging: &Judging<'_>,
        tx: &mut dyn EvaluationTx,
        moved: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<Vec<Judgement>, ScoringError> {
        let mut again: Vec<Judgement> = Vec::new();
        let mut reviews: Vec<(StateRef, i64, Review)> = Vec::new();
        for member in tx
            .lock_evaluation_members(judging.program.program.id, judging.run_id, moved)
            .await?
        {
            let (customer_id, version) = (member.member.customer_id, member.stored.version);
            // Read under lock by key: no position to hand back.
            let judged = JudgedMember {
                customer_id,
                found_at: None,
                stored: member.stored,
                buckets: &member.buckets,
                joined_at: Some(member.member.joined_at),
            };
            match judging.judge(judged, now) {
                Outcome::Changed(judgement) => again.push(judgement),
                Outcome::Kept(review) => reviews.push((
                    StateRef {
                        customer_id,
                        found_at: None,
                    },
                    version,
                    review,
                )),
            }
        }
        tx.save_reviews(judging.program.program.id, judging.run_id, &reviews)
            .await?;
        let states: Vec<(StateRef, StoredState, Review)> =
            again.iter().map(Judgement::to_save).collect();
        let saved = tx
            .save_judged_states(judging.program.program.id, judging.run_id, &states, now)
            .await?;
        if saved.iter().any(Option::is_none) {
            return Err(ScoringError::Internal(
                "a tier state moved under its lock".into(),
            ));
        }
        Ok(again)
    }
}

impl Evaluator {
    /// Ends the overrides of `program` whose date has passed, recording each change; returns how
    /// many ended. The lookups already show the earned tier from the override's end: this makes
    /// the state and the history say so too.
    pub async fn end_overrides(&self, program: &ProgramInForce) -> Result<usize, ScoringError> {
        let now = Utc::now().trunc_subsecs(6);
        let ended = self
            .store
            .ended_overrides(program.program.id, now, ENDED_OVERRIDES_PER_TICK)
            .await?;
        if ended.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        // The program as the store has it now, with no rebuild committing before this does (the
        // one passed in was read at the scheduler's tick): its generation keys the cache writes.
        tx.guard_buckets().await?;
        let program = &ProgramInForce::load(self.store.as_ref(), program.program.id).await?;
        for customer_id in &ended {
            let (mut stored, member) =
                state_or_new(tx.as_mut(), program.program.id, *customer_id, now).await?;
            let (totals, window) = match &program.policy {
                Some((_, rules)) => {
                    let buckets = tx.buckets(program.program.id, *customer_id).await?;
                    let window = months_at(rules.window, now, rules.time_zone, member.joined_at);
                    (Totals::over(&buckets, window), Some(window))
                }
                None => (Totals::default(), None),
            };
            let origin = Origin {
                window,
                ..Origin::default()
            };
            let decision = stored
                .state
                .expire_override(totals, now)
                .map(|decision| (decision, origin));
            super::consumer::save(tx.as_mut(), program, *customer_id, &stored, decision, now)
                .await?;
        }
        let space = Keyspace::of(&program.program);
        let repair = if self.cache.shared() {
            Some(
                tx.queue_cache_repair(space.program_id, space.generation, &ended)
                    .await?,
            )
        } else {
            None
        };
        tx.commit().await?;
        records_after_commit(after_commit(
            self.store.clone(),
            self.cache.clone(),
            space,
            ended.clone(),
            repair,
        ))
        .await?;
        Ok(ended.len())
    }
}
