//! Evaluation runs: every member with a tier state is judged once under the policy in force.
//!
//! - A scheduled run judges the window as it stood at the end of the month before its due time
//!   (`window::judged_at`); a manual run judges the window as of now.
//! - Downgrades happen here only, honouring grace and the drop limit; expired overrides end here
//!   too.
//! - A run after a policy activation first rebuilds the buckets in the new policy's time zone,
//!   then raises whoever qualifies higher under the new rules (downgrades wait for the next
//!   scheduled evaluation).
//! - Each page of members is one transaction; the cache is written after each commit.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{
    consumer::{ProgramInForce, state_or_new},
    decision::Decision,
    lookup::tier_code,
    state::HistoryRecord,
    versions::EvaluationRun,
    window::{Totals, judged_at, months_at},
};
use crate::{ScoringError, cache::TierCache, storage::ScoringStore};

/// Members judged per transaction.
const PAGE: u32 = 200;

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

/// Runs evaluations.
#[derive(Debug, Clone)]
pub struct Evaluator {
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
}

fn counts_json(program: &ProgramInForce, counts: &[(u32, i64)]) -> serde_json::Value {
    counts
        .iter()
        .map(|(rank, customers)| json!({ "tier_code": tier_code(&program.program, *rank), "customers": customers }))
        .collect()
}

impl Evaluator {
    /// An evaluator on `store`, keeping `cache` current.
    pub fn new(store: Arc<dyn ScoringStore>, cache: TierCache) -> Self {
        Self { store, cache }
    }

    /// Runs `run` to the end and closes it with its summary (or its error).
    #[tracing::instrument(skip_all, fields(run_id = %run.id, program = %program.program.code))]
    pub async fn execute(&self, program: &ProgramInForce, run: &EvaluationRun, pass: Pass) {
        let outcome = self.evaluate(program, pass).await;
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
        pass: Pass,
    ) -> Result<serde_json::Value, ScoringError> {
        let Some((_, rules)) = &program.policy else {
            return Err(ScoringError::FailedPrecondition(
                "no policy in force".into(),
            ));
        };
        // One run at a time per program; after waiting, the policy may have changed.
        let _run_lock = self.store.lock_program_runs(program.program.id).await?;
        let in_force = self
            .store
            .active_policy(program.program.id)
            .await?
            .map(|version| version.id);
        if in_force != program.policy.as_ref().map(|(version, _)| version.id) {
            return Err(ScoringError::FailedPrecondition(
                "another policy was activated while this run waited".into(),
            ));
        }
        let started = Utc::now().trunc_subsecs(6);
        let before = self.store.tier_counts(program.program.id, started).await?;
        // RFM cut points are recomputed at every evaluation; lookups between runs use these.
        let (cut_points_version, _) = super::service::refresh_cut_points(
            self.store.as_ref(),
            &program.program,
            rules,
            started,
        )
        .await?;
        if pass == Pass::PolicyChange {
            self.store
                .rebuild_buckets(program.program.id, rules.time_zone)
                .await?;
        }
        let (mut evaluated, mut upgrades, mut downgrades) = (0_i64, 0_i64, 0_i64);
        let mut after_id: Option<Uuid> = None;
        loop {
            let page = self
                .store
                .customers_with_state(program.program.id, after_id, PAGE)
                .await?;
            let Some(last) = page.last().copied() else {
                break;
            };
            after_id = Some(last);
            let now = Utc::now().trunc_subsecs(6);
            let judged = match pass {
                Pass::Scheduled(due) => judged_at(due, rules.time_zone),
                Pass::Manual | Pass::PolicyChange => now,
            };
            let mut tx = self.store.begin().await?;
            for customer_id in &page {
                let (mut stored, member) =
                    state_or_new(tx.as_mut(), program.program.id, *customer_id, now).await?;
                let buckets = tx.buckets(program.program.id, *customer_id).await?;
                let totals = Totals::over(
                    &buckets,
                    months_at(rules.window, judged, rules.time_zone, member.joined_at),
                );
                let mut decisions: Vec<Decision> = stored
                    .state
                    .expire_override(totals, now)
                    .into_iter()
                    .collect();
                let judged_decision = match pass {
                    Pass::PolicyChange => stored.state.after_policy_change(rules, totals, now),
                    // Someone who qualified after the judged window closed (a purchase between
                    // the month's end and this run) is not judged on the older window.
                    Pass::Scheduled(_)
                        if stored.state.last_qualified_at.is_some_and(|at| at > judged) =>
                    {
                        None
                    }
                    Pass::Scheduled(_) | Pass::Manual => {
                        stored.state.at_evaluation(rules, totals, now)
                    }
                };
                decisions.extend(judged_decision);
                for decision in &decisions {
                    if decision.to_rank > decision.from_rank {
                        upgrades += 1;
                    } else {
                        downgrades += 1;
                    }
                }
                tx.save_state(program.program.id, *customer_id, &stored, now)
                    .await?;
                for decision in decisions {
                    let (policy_version_id, policy_version) = program
                        .policy
                        .as_ref()
                        .map(|(v, _)| (v.id, v.version))
                        .unzip();
                    tx.record(&HistoryRecord {
                        id: Uuid::now_v7(),
                        program_id: program.program.id,
                        customer_id: *customer_id,
                        from_rank: decision.from_rank,
                        to_rank: decision.to_rank,
                        reason: decision.reason,
                        policy_version_id,
                        policy_version,
                        totals: decision.totals,
                        occurred_at: decision.at,
                    })
                    .await?;
                }
                evaluated += 1;
            }
            tx.commit().await?;
            let records = self
                .store
                .customer_records(program.program.id, &page)
                .await?;
            self.cache.put_many(program.program.id, &records).await;
        }
        let after = self
            .store
            .tier_counts(program.program.id, Utc::now().trunc_subsecs(6))
            .await?;
        Ok(json!({
            "members_evaluated": evaluated,
            "upgrades": upgrades,
            "downgrades": downgrades,
            "cut_points_version": cut_points_version,
            "counts_before": counts_json(program, &before),
            "counts_after": counts_json(program, &after),
        }))
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
            .ended_overrides(program.program.id, now, PAGE)
            .await?;
        if ended.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        for customer_id in &ended {
            let (mut stored, member) =
                state_or_new(tx.as_mut(), program.program.id, *customer_id, now).await?;
            let totals = match &program.policy {
                Some((_, rules)) => {
                    let buckets = tx.buckets(program.program.id, *customer_id).await?;
                    Totals::over(
                        &buckets,
                        months_at(rules.window, now, rules.time_zone, member.joined_at),
                    )
                }
                None => Totals::default(),
            };
            let decision = stored.state.expire_override(totals, now);
            super::consumer::save(tx.as_mut(), program, *customer_id, &stored, decision, now)
                .await?;
        }
        tx.commit().await?;
        let records = self
            .store
            .customer_records(program.program.id, &ended)
            .await?;
        self.cache.put_many(program.program.id, &records).await;
        Ok(ended.len())
    }
}
