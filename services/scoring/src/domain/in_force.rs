//! Programs and their validated policies in force, held in each replica's memory so that a tier
//! lookup reads no database.
//!
//! - Filled on first use, one program at a time; a program that does not exist or has no policy
//!   in force is not held (those answers are errors, and cheap to ask again).
//! - Kept right by [`ProgramSignal`]s from the store: every replica hears every change of a
//!   program or its policies (Postgres `LISTEN`/`NOTIFY`, sent by triggers in the writing
//!   transaction, so a change is announced exactly when it commits). A change makes every
//!   replica forget that program; the next lookup loads it again.
//! - While the signals are not heard (before the first `Listening`, after `Lost`), nothing new
//!   is held, and what is held is used until its [`SAFETY_TTL`]; every (re)start of listening
//!   forgets everything, since changes may have been missed meanwhile.
//! - When the store cannot answer (a Postgres outage), the program last held is used and
//!   trusted for another [`SAFETY_TTL`], so that lookups the cache can answer keep being
//!   answered, without each waiting for the store first.
//! - A load that raced with a change never stores what it read (a generation counter), and every
//!   entry is trusted at most [`SAFETY_TTL`], a net for what no signal can catch.
//!
//! The bound this gives (docs/SCORING.md): once `ActivatePolicy` has returned, every replica's
//! lookups use the new policy as soon as its notification arrives, in practice within
//! milliseconds and at most [`SAFETY_TTL`].

use super::{policy::PolicyRules, ports::ProgramSignal, program::Program, versions::PolicyVersion};
use chrono_tz::Tz;
use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{ScoringError, domain::ports::ScoringStore};

/// The longest a replica keeps a program without hearing of it. Notifications are delivered to
/// every connected listener, and a lost connection forgets everything, so this only bounds what
/// no signal can catch (a change written with the triggers disabled).
pub const SAFETY_TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Held {
    program: Arc<ProgramInForce>,
    loaded_at: Instant,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ScoringStore>,
    held: RwLock<HashMap<Uuid, Held>>,
    /// Raised by every forgetting, so that a load that began before it is not stored.
    generation: AtomicU64,
    /// Whether signals are heard now.
    listening: AtomicBool,
}

/// The programs in force, shared by clones.
#[derive(Debug, Clone)]
pub struct ProgramRegistry {
    inner: Arc<Inner>,
}

impl ProgramRegistry {
    /// A registry over `store`, following its signals in the background.
    pub fn start(
        store: Arc<dyn ScoringStore>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        let signals = store.program_signals(shutdown);
        let registry = Self {
            inner: Arc::new(Inner {
                store,
                held: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                listening: AtomicBool::new(false),
            }),
        };
        tokio::spawn(registry.clone().follow(signals));
        registry
    }

    async fn follow(self, mut signals: mpsc::Receiver<ProgramSignal>) {
        while let Some(signal) = signals.recv().await {
            self.heard(signal);
        }
        self.heard(ProgramSignal::Lost);
    }

    /// Applies one signal.
    fn heard(&self, signal: ProgramSignal) {
        match signal {
            ProgramSignal::Listening => {
                self.forget_all();
                self.inner.listening.store(true, Ordering::SeqCst);
            }
            // What is held stays, for a store that cannot answer either; it is not trusted.
            ProgramSignal::Lost => self.inner.listening.store(false, Ordering::SeqCst),
            ProgramSignal::Changed(program_id) => self.forget(program_id),
        }
    }

    /// Forgets one program (this replica changed it, or heard that another did).
    pub fn forget(&self, program_id: Uuid) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut held) = self.inner.held.write() {
            held.remove(&program_id);
        }
    }

    fn forget_all(&self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut held) = self.inner.held.write() {
            held.clear();
        }
    }

    /// The program and its policy in force (none yet is not an error here); NOT_FOUND for an
    /// unknown program.
    pub async fn get(&self, program_id: Uuid) -> Result<Arc<ProgramInForce>, ScoringError> {
        if let Some(program) = self.held(program_id) {
            return Ok(program);
        }
        let generation = self.inner.generation.load(Ordering::SeqCst);
        let program = match ProgramInForce::load(self.inner.store.as_ref(), program_id).await {
            Ok(program) => Arc::new(program),
            // The store is away: the program last held is better than no answer.
            Err(error @ ScoringError::Unavailable(_)) => {
                return self.held_again(program_id).ok_or(error);
            }
            Err(error) => return Err(error),
        };
        if program.policy.is_some()
            && self.inner.listening.load(Ordering::SeqCst)
            && let Ok(mut held) = self.inner.held.write()
            // Checked under the lock that forgetting takes, so no change slips in between.
            && self.inner.generation.load(Ordering::SeqCst) == generation
        {
            held.insert(
                program_id,
                Held {
                    program: program.clone(),
                    loaded_at: Instant::now(),
                },
            );
        }
        Ok(program)
    }

    /// The program held, if loaded less than [`SAFETY_TTL`] ago.
    fn held(&self, program_id: Uuid) -> Option<Arc<ProgramInForce>> {
        let held = self.inner.held.read().ok()?;
        held.get(&program_id)
            .filter(|held| held.loaded_at.elapsed() < SAFETY_TTL)
            .map(|held| held.program.clone())
    }

    /// The program held, however old, trusted again for [`SAFETY_TTL`].
    fn held_again(&self, program_id: Uuid) -> Option<Arc<ProgramInForce>> {
        let mut held = self.inner.held.write().ok()?;
        let entry = held.get_mut(&program_id)?;
        entry.loaded_at = Instant::now();
        Some(entry.program.clone())
    }
}

/// A program and the policy in force (validated), as the consumer applies them.
#[derive(Debug, Clone)]
pub struct ProgramInForce {
    /// The program.
    pub program: Program,
    /// The policy in force and its rules, if one is.
    pub policy: Option<(PolicyVersion, PolicyRules)>,
}

impl ProgramInForce {
    /// The zone months are counted in: the policy's, UTC before any policy is in force.
    pub fn zone(&self) -> Tz {
        self.policy
            .as_ref()
            .map_or(Tz::UTC, |(_, rules)| rules.time_zone)
    }
}

impl ProgramInForce {
    /// A program with its validated policy in force (if one is); NOT_FOUND for an unknown
    /// program.
    pub async fn load(store: &dyn ScoringStore, program_id: Uuid) -> Result<Self, ScoringError> {
        let program = store
            .program(program_id)
            .await?
            .ok_or_else(|| ScoringError::not_found("program", program_id))?;
        Self::with_policy(store, program).await
    }

    async fn with_policy(store: &dyn ScoringStore, program: Program) -> Result<Self, ScoringError> {
        let policy = match store.active_policy(program.id).await? {
            Some(version) => {
                let rules = version.document.clone().validate(&program)?;
                Some((version, rules))
            }
            None => None,
        };
        Ok(Self { program, policy })
    }

    /// The policy in force and its rules; FAILED_PRECONDITION without one.
    pub fn active(&self) -> Result<(&PolicyVersion, &PolicyRules), ScoringError> {
        self.policy
            .as_ref()
            .map(|(version, rules)| (version, rules))
            .ok_or_else(|| {
                ScoringError::FailedPrecondition(format!(
                    "program {} has no policy in force yet",
                    self.program.code
                ))
            })
    }
}

/// Loads every program with its validated policy in force.
pub async fn programs_in_force(
    store: &dyn ScoringStore,
) -> Result<Vec<ProgramInForce>, ScoringError> {
    let mut programs = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_programs(after, 1000).await?;
        let full = page.len() == 1000;
        after = page.last().map(|program| program.id);
        for program in page {
            programs.push(ProgramInForce::with_policy(store, program).await?);
        }
        if !full {
            return Ok(programs);
        }
    }
}
