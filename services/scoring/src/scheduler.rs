//! The evaluation scheduler, in every replica: each tick it ends overrides whose date passed and
//! starts the scheduled evaluation of every program whose due time has come. A due time runs
//! exactly once per program, whichever replicas race for it: the run is keyed by (program, due
//! time) in Postgres and only the replica whose insert wins runs it. Each tick also resumes runs
//! whose replica died mid-run (see `domain::evaluation`).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::ports::{NewRun, ScoringStore},
    domain::{
        evaluation::{Evaluator, Pass},
        idempotency::Claimed,
        in_force::{ProgramInForce, programs_in_force},
        schedule::{last_due, next_due},
        versions::RunTrigger,
    },
};

/// Longest sleep between ticks (new policies and overrides are noticed within it).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Sleep between ticks while a running run's lock is held by someone: it costs one lock attempt
/// per run, and a run orphaned while a sweep held its lock is resumed this soon.
const RECHECK_HELD_RUNS: Duration = Duration::from_secs(2);

/// The due time a program should have run by `now`, if its policy was already in force then.
pub fn due_to_run(program: &ProgramInForce, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (version, rules) = program.policy.as_ref()?;
    let due = last_due(&rules.schedule, rules.time_zone, now)?;
    version
        .activated_at
        .is_some_and(|activated| due > activated)
        .then_some(due)
}

/// Starts the scheduler; it stops at `shutdown`.
pub fn spawn(store: Arc<dyn ScoringStore>, evaluator: Evaluator, shutdown: CancellationToken) {
    tokio::spawn(async move {
        while !shutdown.is_cancelled() {
            let sleep = match tick(store.as_ref(), &evaluator).await {
                Ok(sleep) => sleep,
                Err(error) => {
                    tracing::warn!(%error, "evaluation scheduler tick failed");
                    MAX_SLEEP
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(sleep) => {}
            }
        }
    });
}

async fn tick(store: &dyn ScoringStore, evaluator: &Evaluator) -> Result<Duration, ScoringError> {
    let programs = programs_in_force(store).await?;
    let mut sleep = MAX_SLEEP;
    match evaluator.resume_orphans(&programs).await {
        // A run whose lock was held may be orphaned as soon as a sweep lets go: look again soon.
        Ok((_, held)) if held > 0 => sleep = RECHECK_HELD_RUNS,
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot resume orphaned evaluation runs"),
    }
    let now = Utc::now();
    for program in &programs {
        let Some((version, rules)) = &program.policy else {
            continue;
        };
        // One program's trouble must not hold up the others.
        if let Err(error) = evaluator.end_overrides(program).await {
            tracing::warn!(%error, program = %program.program.code, "cannot end overrides");
        }
        if let Some(due) = due_to_run(program, now) {
            let opened = store
                .open_run(
                    &NewRun {
                        id: Uuid::now_v7(),
                        program_id: program.program.id,
                        policy_version_id: version.id,
                        trigger: RunTrigger::Schedule,
                        due_at: Some(due),
                        requested_by: "scheduler".into(),
                        now,
                    },
                    None,
                )
                .await;
            match opened {
                Ok(Claimed::Done(Some(run))) => {
                    tracing::info!(program = %program.program.code, %due, "starting the scheduled evaluation");
                    // A run can take minutes: it goes on beside the ticks.
                    let (evaluator, program) = (evaluator.clone(), program.clone());
                    tokio::spawn(async move {
                        evaluator
                            .execute(&program, &run, Pass::Scheduled(due))
                            .await
                    });
                }
                Ok(Claimed::Done(None) | Claimed::Replay(_)) => {}
                Err(error) => {
                    tracing::warn!(%error, program = %program.program.code, "cannot open the scheduled run")
                }
            }
        }
        let until_next = (next_due(&rules.schedule, rules.time_zone, now) - now)
            .to_std()
            .unwrap_or(Duration::ZERO);
        sleep = sleep.min(until_next + Duration::from_millis(10));
    }
    Ok(sleep)
}

/// Starts the lifecycle sweep: every `interval`, each program's members are classified (new,
/// active, at risk, dormant) and the changes join the tier-change feed. Sweeps of one program
/// never overlap (they hold the program's run lock), so several replicas record each change once.
pub fn spawn_lifecycle_sweep(
    store: Arc<dyn ScoringStore>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        while !shutdown.is_cancelled() {
            match programs_in_force(store.as_ref()).await {
                Ok(programs) => {
                    for program in &programs {
                        let Some((_, rules)) = &program.policy else {
                            continue;
                        };
                        let swept = async {
                            let _lock = store.lock_program_runs(program.program.id).await?;
                            store
                                .sweep_lifecycles(program.program.id, rules.lifecycle, Utc::now())
                                .await
                        };
                        match swept.await {
                            Ok(0) => {}
                            Ok(changed) => {
                                tracing::info!(program = %program.program.code, changed, "lifecycle sweep")
                            }
                            Err(error) => {
                                tracing::warn!(%error, program = %program.program.code, "lifecycle sweep failed")
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "lifecycle sweep cannot read the programs"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    });
}
