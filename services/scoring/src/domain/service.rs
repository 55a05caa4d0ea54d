//! The scoring service's operations on programs, policies and evaluation runs: validate input,
//! apply the rules, call storage. The gRPC adapter converts messages and calls these.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use tierline_runtime::{paging, status::FieldViolation};
use uuid::Uuid;

use super::{
    cache_writes::{after_commit, records_after_commit},
    consumer::state_or_new,
    decision::Override,
    evaluation::{Evaluator, FeedWait, Pass},
    feed_batch::Origin,
    idempotency::{Claimed, IdempotentRequest, Operation, replayed},
    in_force::ProgramInForce,
    in_force::ProgramRegistry,
    lookup::{TierView, view},
    policy::{PolicyInput, PolicyRules},
    program::{Program, ProgramInput},
    state::HistoryRecord,
    value::{ValueModel, summary::PurchaseSummary},
    versions::{EvaluationRun, PolicyStatus, PolicyVersion},
};
use tierline_runtime::xid_feed::{CursorRefusal, FeedCursor, FeedIdentity};

use crate::{
    ScoringError,
    cache::{Keyspace, TierCache},
    domain::ports::{Activation, DraftChange, NewPolicy, NewRun, ScoringStore},
};

/// The current time at the precision Postgres stores (microseconds), so that what an RPC returns
/// equals what a later read returns.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The program in force, the views found, and the ids that are not members.
pub type TierLookup = (Arc<ProgramInForce>, Vec<TierView>, Vec<Uuid>);

/// How a caller picks a policy version.
#[derive(Debug, Clone)]
pub enum PolicySelector {
    /// By version id.
    Version(String),
    /// The version in force for a program.
    ActiveFor(String),
}

/// The scoring service's domain API.
#[derive(Debug, Clone)]
pub struct Scoring {
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    programs: ProgramRegistry,
    evaluator: Evaluator,
}

fn invalid(violation: FieldViolation) -> ScoringError {
    ScoringError::InvalidArgument(vec![violation])
}

/// Parses an id field.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, ScoringError> {
    if value.is_empty() {
        return Err(ScoringError::invalid(field, "is required"));
    }
    Uuid::parse_str(value).map_err(|_| ScoringError::invalid(field, "is not a valid id"))
}

/// 1 to 1,000 customer ids, each named by its position when bad.
fn parse_customer_ids(values: &[String]) -> Result<Vec<Uuid>, ScoringError> {
    if values.is_empty() || values.len() > 1000 {
        return Err(ScoringError::invalid(
            "customer_ids",
            "must hold 1 to 1000 ids",
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(index, id)| parse_id(&format!("customer_ids[{index}]"), id))
        .collect()
}

/// The longest operator name the contract allows.
const ACTOR_CHARS: usize = 128;

/// The longest override the contract allows: five years.
const OVERRIDE_MONTHS: u32 = 60;

/// An operator's reason for an override or its end: required, at most 500 characters, trimmed.
fn operator_reason(reason: &str) -> Result<String, FieldViolation> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(FieldViolation::new(
            "reason",
            "is required (at most 500 characters)",
        ));
    }
    Ok(reason.to_owned())
}

fn actor(field: &str, value: &str) -> Result<String, ScoringError> {
    let value = value.trim();
    if value.is_empty()
        || value.chars().count() > ACTOR_CHARS
        || value.chars().any(char::is_control)
    {
        return Err(ScoringError::invalid(
            field,
            format!("is required: who does this (1 to {ACTOR_CHARS} characters)"),
        ));
    }
    Ok(value.to_owned())
}

fn description(value: &str) -> Result<String, ScoringError> {
    if value.chars().count() > 2000 || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ScoringError::invalid(
            "description",
            "at most 2000 characters, no control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A program and its policy in force, if one is.
pub type ProgramWithPolicy = (Program, Option<PolicyVersion>);
impl Scoring {
    /// The service over `store`, with programs in force held by `programs`.
    pub fn new(
        store: Arc<dyn ScoringStore>,
        cache: TierCache,
        programs: ProgramRegistry,
        feed_wait: FeedWait,
        history: Option<Arc<dyn super::backfill::ActivityHistory>>,
    ) -> Self {
        let evaluator = Evaluator::new(store.clone(), cache.clone(), feed_wait, history);
        Self {
            store,
            cache,
            programs,
            evaluator,
        }
    }

    async fn load_program(&self, id: Uuid) -> Result<Program, ScoringError> {
        self.store
            .program(id)
            .await?
            .ok_or_else(|| ScoringError::not_found("program", id))
    }

    async fn load_policy(&self, id: Uuid) -> Result<PolicyVersion, ScoringError> {
        self.store
            .policy(id)
            .await?
            .ok_or_else(|| ScoringError::not_found("policy version", id))
    }

    /// Creates a program.
    #[tracing::instrument(skip_all)]
    pub async fn create_program(
        &self,
        input: ProgramInput,
        idempotency_key: &str,
    ) -> Result<Program, ScoringError> {
        let program = input.validate(now())?;
        let request = IdempotentRequest::new(
            Operation::CreateProgram,
            idempotency_key,
            &json!({
                "code": program.code, "name": program.name, "currency": program.currency,
                "scope": program.scope, "tiers": program.tiers,
            }),
        )?;
        match self
            .store
            .create_program(&program, request.as_ref())
            .await?
        {
            Claimed::Done(()) => Ok(program),
            Claimed::Replay(prior) => self.load_program(replayed(request.as_ref(), &prior)?).await,
        }
    }

    /// A program and the version in force, if any.
    #[tracing::instrument(skip(self))]
    pub async fn program(
        &self,
        id: &str,
    ) -> Result<(Program, Option<PolicyVersion>), ScoringError> {
        let program = self.load_program(parse_id("program_id", id)?).await?;
        let active = self.store.active_policy(program.id).await?;
        Ok((program, active))
    }

    /// A page of programs with their versions in force.
    #[tracing::instrument(skip(self))]
    pub async fn list_programs(
        &self,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<ProgramWithPolicy>, String), ScoringError> {
        let limit = paging::page_size(page_size).map_err(invalid)?;
        let after = paging::decode_parsed::<Uuid>(page_token, 'p').map_err(invalid)?;
        let programs = self.store.list_programs(after, limit).await?;
        let next = match programs.last() {
            Some(last) if programs.len() == limit as usize => {
                paging::encode('p', &last.id.to_string())
            }
            _ => String::new(),
        };
        let mut listed = Vec::with_capacity(programs.len());
        for program in programs {
            let active = self.store.active_policy(program.id).await?;
            listed.push((program, active));
        }
        Ok((listed, next))
    }

    /// Creates a draft policy version, validated against its program.
    #[tracing::instrument(skip(self, document))]
    pub async fn create_policy(
        &self,
        program_id: &str,
        document: PolicyInput,
        description_text: &str,
        created_by: &str,
        idempotency_key: &str,
    ) -> Result<PolicyVersion, ScoringError> {
        let program = self
            .load_program(parse_id("program_id", program_id)?)
            .await?;
        document.clone().validate(&program)?;
        let policy = NewPolicy {
            id: Uuid::now_v7(),
            program_id: program.id,
            document,
            description: description(description_text)?,
            created_by: actor("created_by", created_by)?,
            now: now(),
        };
        let request = IdempotentRequest::new(
            Operation::CreatePolicyVersion,
            idempotency_key,
            &json!({
                "program_id": policy.program_id, "rules": policy.document,
                "description": policy.description, "created_by": policy.created_by,
            }),
        )?;
        match self.store.create_policy(&policy, request.as_ref()).await? {
            Claimed::Done(version) => Ok(version),
            Claimed::Replay(prior) => self.load_policy(replayed(request.as_ref(), &prior)?).await,
        }
    }

    /// One version, by id or as the one in force for a program.
    #[tracing::instrument(skip(self))]
    pub async fn policy(&self, selector: PolicySelector) -> Result<PolicyVersion, ScoringError> {
        match selector {
            PolicySelector::Version(id) => {
                self.load_policy(parse_id("policy_version_id", &id)?).await
            }
            PolicySelector::ActiveFor(program_id) => {
                let program = self
                    .load_program(parse_id("active_for_program_id", &program_id)?)
                    .await?;
                self.store.active_policy(program.id).await?.ok_or_else(|| {
                    ScoringError::FailedPrecondition(format!(
                        "program {} has no policy in force yet",
                        program.code
                    ))
                })
            }
        }
    }

    /// A page of a program's versions, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_policies(
        &self,
        program_id: &str,
        status: Option<PolicyStatus>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<PolicyVersion>, String), ScoringError> {
        let program = self
            .load_program(parse_id("program_id", program_id)?)
            .await?;
        let limit = paging::page_size(page_size).map_err(invalid)?;
        let before = paging::decode_parsed::<i32>(page_token, 'v').map_err(invalid)?;
        let versions = self
            .store
            .list_policies(program.id, status, before, limit)
            .await?;
        let next = match versions.last() {
            Some(last) if versions.len() == limit as usize => {
                paging::encode('v', &last.version.to_string())
            }
            _ => String::new(),
        };
        Ok((versions, next))
    }

    /// Replaces a draft's rules (and description).
    #[tracing::instrument(skip(self, document))]
    pub async fn update_draft(
        &self,
        id: &str,
        document: PolicyInput,
        description_text: Option<&str>,
        expected_revision: Option<i64>,
    ) -> Result<PolicyVersion, ScoringError> {
        let current = self.load_policy(parse_id("policy_version_id", id)?).await?;
        let program = self.load_program(current.program_id).await?;
        document.clone().validate(&program)?;
        let change = DraftChange {
            id: current.id,
            document,
            description: description_text.map(description).transpose()?,
            expected_revision,
            now: now(),
        };
        self.store.update_draft(&change).await
    }

    /// Puts a draft in force. The draft is validated again against its program, the activation
    /// is recorded with who and when, and a run re-evaluates every member.
    #[tracing::instrument(skip(self))]
    pub async fn activate(
        &self,
        id: &str,
        by: &str,
        expected_revision: Option<i64>,
    ) -> Result<Activation, ScoringError> {
        let by = actor("activated_by", by)?;
        let draft = self.load_policy(parse_id("policy_version_id", id)?).await?;
        let program = self.load_program(draft.program_id).await?;
        draft.document.clone().validate(&program)?;
        let now = now();
        let activation = self
            .store
            .activate_policy(draft.id, &by, expected_revision, Uuid::now_v7(), now)
            .await?;
        // This replica's next lookup already sees it; the others hear the store's signal.
        self.programs.forget(program.id);
        // Re-evaluating every member can take long: the run goes on in the background and
        // reports through GetEvaluationRun.
        let rules = activation.policy.document.clone().validate(&program)?;
        let in_force = ProgramInForce {
            program,
            policy: Some((activation.policy.clone(), rules)),
        };
        let (evaluator, run) = (self.evaluator.clone(), activation.run.clone());
        tokio::spawn(async move { evaluator.execute(&in_force, &run, Pass::PolicyChange).await });
        Ok(activation)
    }

    /// Retires a draft.
    #[tracing::instrument(skip(self))]
    pub async fn retire(&self, id: &str, by: &str) -> Result<PolicyVersion, ScoringError> {
        let by = actor("retired_by", by)?;
        let retired = self
            .store
            .retire_draft(parse_id("policy_version_id", id)?, &by, now())
            .await?;
        self.programs.forget(retired.program_id);
        Ok(retired)
    }

    /// One evaluation run; while it runs, with its counts after so far (its counts before
    /// plus what it has moved, `domain::run_counts`).
    #[tracing::instrument(skip(self))]
    pub async fn run(&self, id: &str) -> Result<EvaluationRun, ScoringError> {
        let id = parse_id("evaluation_run_id", id)?;
        let mut run = self
            .store
            .run(id)
            .await?
            .ok_or_else(|| ScoringError::not_found("evaluation run", id))?;
        if let (super::versions::RunStatus::Running, Some(before)) =
            (run.status, &run.counts_before)
        {
            let after = super::run_counts::with_moves(before, &self.store.run_moves(id).await?);
            if let Some(summary) = run.summary.as_object_mut() {
                summary.insert("counts_after".to_owned(), after);
            } else {
                run.summary = serde_json::json!({ "counts_after": after });
            }
        }
        Ok(run)
    }

    /// A page of a program's runs, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn list_runs(
        &self,
        program_id: &str,
        status: Option<super::versions::RunStatus>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<EvaluationRun>, String), ScoringError> {
        let program = self
            .load_program(parse_id("program_id", program_id)?)
            .await?;
        let limit = paging::page_size(page_size).map_err(invalid)?;
        let before = paging::decode(page_token, 'r')
            .map_err(invalid)?
            .map(|body| {
                let (micros, id) = body.split_once('/').ok_or_else(|| {
                    ScoringError::invalid("page_token", "is not a token of this list")
                })?;
                let started = micros
                    .parse()
                    .ok()
                    .and_then(DateTime::<Utc>::from_timestamp_micros)
                    .ok_or_else(|| {
                        ScoringError::invalid("page_token", "is not a token of this list")
                    })?;
                Ok::<_, ScoringError>((started, parse_id("page_token", id)?))
            })
            .transpose()?;
        let runs = self
            .store
            .list_runs(program.id, status, before, limit)
            .await?;
        let next = match runs.last() {
            Some(last) if runs.len() == limit as usize => paging::encode(
                'r',
                &format!("{}/{}", last.started_at.timestamp_micros(), last.id),
            ),
            _ => String::new(),
        };
        Ok((runs, next))
    }

    /// The program with its policy in force, from this replica's memory; FAILED_PRECONDITION
    /// without a policy.
    async fn in_force(&self, program_id: &str) -> Result<Arc<ProgramInForce>, ScoringError> {
        let in_force = self
            .programs
            .get(parse_id("program_id", program_id)?)
            .await?;
        in_force.active()?;
        Ok(in_force)
    }

    /// The program and its validated policy in force, owned; FAILED_PRECONDITION without one.
    async fn program_in_force(
        &self,
        program_id: &str,
    ) -> Result<(Program, PolicyVersion, PolicyRules), ScoringError> {
        let in_force = self.in_force(program_id).await?;
        let (policy, rules) = in_force.active()?;
        Ok((in_force.program.clone(), policy.clone(), rules.clone()))
    }

    /// The tiers of up to 1,000 customers in a program, and the ids that are not members.
    ///
    /// The hot path: the program comes from this replica's memory, the records from the near
    /// cache, then Redis, then the store for what neither has (filled back without waiting).
    #[tracing::instrument(skip(self, customer_ids), fields(customers = customer_ids.len()))]
    pub async fn tiers(
        &self,
        program_id: &str,
        customer_ids: &[String],
    ) -> Result<TierLookup, ScoringError> {
        let ids = parse_customer_ids(customer_ids)?;
        let in_force = self.in_force(program_id).await?;
        let (views, missing) = self.views(&in_force, &ids).await?;
        Ok((in_force, views, missing))
    }

    /// The views of `ids` (in their order, duplicates once) and the ids that are not members.
    async fn views(
        &self,
        in_force: &ProgramInForce,
        ids: &[Uuid],
    ) -> Result<(Vec<TierView>, Vec<Uuid>), ScoringError> {
        let (policy, rules) = in_force.active()?;
        let space = Keyspace::of(&in_force.program);
        let mut read = self.cache.get_many(space, ids).await;
        let missed = read.missed();
        let loaded = if missed.is_empty() {
            Vec::new()
        } else {
            self.store
                .customer_records(in_force.program.id, &missed)
                .await?
        };
        let mut records = std::mem::take(&mut read.found);
        // The fill goes on in the background: this lookup does not wait for it.
        drop(self.cache.fill(space, read, &loaded));
        records.extend(
            loaded
                .into_iter()
                .map(|record| (record.member.customer_id, record)),
        );
        let now = now();
        let mut views = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match records.remove(id) {
                Some(record) => views.push(view(&in_force.program, rules, policy, &record, now)),
                // Not a member, or a duplicate already answered.
                None if !views.iter().any(|view: &TierView| view.customer_id == *id) => {
                    missing.push(*id);
                }
                None => {}
            }
        }
        missing.dedup();
        Ok((views, missing))
    }

    /// One customer's tier; NOT_FOUND for a customer the feed has not brought yet.
    #[tracing::instrument(skip(self))]
    pub async fn tier(
        &self,
        program_id: &str,
        customer_id: &str,
    ) -> Result<(Arc<ProgramInForce>, TierView), ScoringError> {
        let id = parse_id("customer_id", customer_id)?;
        let in_force = self.in_force(program_id).await?;
        let (mut views, _) = self.views(&in_force, &[id]).await?;
        let view = views
            .pop()
            .ok_or_else(|| ScoringError::not_found("customer", id))?;
        Ok((in_force, view))
    }

    /// A page of one customer's tier history, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn history(
        &self,
        program_id: &str,
        customer_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Program, Vec<HistoryRecord>, String), ScoringError> {
        let program = self
            .load_program(parse_id("program_id", program_id)?)
            .await?;
        let customer_id = parse_id("customer_id", customer_id)?;
        let limit = paging::page_size(page_size).map_err(invalid)?;
        let before = paging::decode(page_token, 'h')
            .map_err(invalid)?
            .map(|body| {
                let bad = || ScoringError::invalid("page_token", "is not a token of this list");
                let (micros, id) = body.split_once('/').ok_or_else(bad)?;
                let at = micros
                    .parse()
                    .ok()
                    .and_then(DateTime::<Utc>::from_timestamp_micros)
                    .ok_or_else(bad)?;
                Ok::<_, ScoringError>((at, Uuid::parse_str(id).map_err(|_| bad())?))
            })
            .transpose()?;
        let records = self
            .store
            .history(program.id, customer_id, before, limit)
            .await?;
        let next = match records.last() {
            Some(last) if records.len() == limit as usize => paging::encode(
                'h',
                &format!("{}/{}", last.occurred_at.timestamp_micros(), last.id),
            ),
            _ => String::new(),
        };
        Ok((program, records, next))
    }

    /// Starts an evaluation of a program now; it runs in the background and reports through
    /// `GetEvaluationRun`. A retry with the same idempotency key returns the run the first
    /// request opened, as it stands, and opens nothing.
    #[tracing::instrument(skip(self))]
    pub async fn evaluate_now(
        &self,
        program_id: &str,
        requested_by: &str,
        idempotency_key: &str,
    ) -> Result<EvaluationRun, ScoringError> {
        let requested_by = actor("requested_by", requested_by)?;
        let (program, policy, rules) = self.program_in_force(program_id).await?;
        let request = IdempotentRequest::new(
            Operation::EvaluateNow,
            idempotency_key,
            &json!({ "program_id": program.id, "requested_by": requested_by }),
        )?;
        let opened = self
            .store
            .open_run(
                &NewRun {
                    id: Uuid::now_v7(),
                    program_id: program.id,
                    policy_version_id: policy.id,
                    trigger: super::versions::RunTrigger::Manual,
                    due_at: None,
                    requested_by,
                    now: now(),
                },
                request.as_ref(),
            )
            .await?;
        let run = match opened {
            Claimed::Done(Some(run)) => run,
            Claimed::Done(None) => {
                return Err(ScoringError::Internal("a manual run was not opened".into()));
            }
            Claimed::Replay(prior) => {
                let run_id = replayed(request.as_ref(), &prior)?;
                return self
                    .store
                    .run(run_id)
                    .await?
                    .ok_or_else(|| ScoringError::not_found("evaluation run", run_id));
            }
        };
        let in_force = ProgramInForce {
            program,
            policy: Some((policy, rules)),
        };
        let (evaluator, started) = (self.evaluator.clone(), run.clone());
        tokio::spawn(async move { evaluator.execute(&in_force, &started, Pass::Manual).await });
        Ok(run)
    }

    /// Grants a tier until a date, with a reason and the operator, audited in the history.
    #[tracing::instrument(skip_all, fields(program_id = request.program_id, customer_id = request.customer_id))]
    pub async fn set_override(
        &self,
        request: OverrideRequest<'_>,
    ) -> Result<(Program, PolicyRules, TierView), ScoringError> {
        let OverrideRequest {
            program_id,
            customer_id,
            tier_code: tier,
            until,
            reason,
            operator,
            idempotency_key,
        } = request;
        let in_force = self.in_force(program_id).await?;
        let (policy, _) = in_force.active()?;
        let program = &in_force.program;
        let customer = parse_id("customer_id", customer_id)?;
        let now = now();
        let mut violations = Vec::new();
        let rank = program.rank_of(tier);
        if rank.is_none() {
            violations.push(FieldViolation::new(
                "tier_code",
                format!("{tier:?} is not a tier of program {}", program.code),
            ));
        }
        let latest = now
            .checked_add_months(chrono::Months::new(OVERRIDE_MONTHS))
            .unwrap_or(now);
        match until {
            Some(until) if until > now && until <= latest => {}
            _ => violations.push(FieldViolation::new(
                "expires_at",
                "is required: in the future, at most 5 years ahead",
            )),
        }
        let reason = operator_reason(reason).map_err(|violation| violations.push(violation));
        let operator = actor("operator_name", operator).inspect_err(|_| {
            violations.push(FieldViolation::new("operator_name", "is required"));
        });
        if !violations.is_empty() {
            return Err(ScoringError::InvalidArgument(violations));
        }
        let manual = Override {
            rank: rank.unwrap_or(0),
            until: until.unwrap_or(now),
            reason: reason.unwrap_or_default(),
            operator: operator?,
            set_at: now,
        };
        let request = IdempotentRequest::new(
            Operation::SetTierOverride,
            idempotency_key,
            &json!({
                "program_id": program.id, "customer_id": customer, "rank": manual.rank,
                "until": manual.until, "reason": manual.reason, "operator": manual.operator,
            }),
        )?;
        self.change_state(
            program.id,
            policy.id,
            customer,
            request,
            move |state, totals| Some(state.set_override(manual, totals, now)),
        )
        .await
    }

    /// Ends an override now. A retry with the same idempotency key changes nothing and
    /// returns the customer's tier.
    #[tracing::instrument(skip(self))]
    pub async fn clear_override(
        &self,
        program_id: &str,
        customer_id: &str,
        reason: &str,
        operator: &str,
        idempotency_key: &str,
    ) -> Result<(Program, PolicyRules, TierView), ScoringError> {
        let mut violations = Vec::new();
        let reason = operator_reason(reason).map_err(|violation| violations.push(violation));
        let operator = actor("operator_name", operator).map_err(|_| {
            violations.push(FieldViolation::new("operator_name", "is required"));
        });
        let (Ok(reason), Ok(operator)) = (reason, operator) else {
            return Err(ScoringError::InvalidArgument(violations));
        };
        let in_force = self.in_force(program_id).await?;
        let (policy, _) = in_force.active()?;
        let program = &in_force.program;
        let customer = parse_id("customer_id", customer_id)?;
        // The reason joined the digest when it became required: a key first used without one
        // cannot be replayed with one.
        let request = IdempotentRequest::new(
            Operation::ClearTierOverride,
            idempotency_key,
            &json!({
                "program_id": program.id, "customer_id": customer, "operator": operator,
                "reason": reason,
            }),
        )?;
        let now = now();
        self.change_state(
            program.id,
            policy.id,
            customer,
            request,
            move |state, totals| Some(state.clear_override(operator, reason, totals, now)),
        )
        .await
    }

    /// Applies an operator's change to one member's state in one transaction, records it, writes
    /// the cache, and returns the new view. A retry of an idempotent `request` changes nothing
    /// and returns the current view.
    async fn change_state(
        &self,
        program_id: Uuid,
        policy_id: Uuid,
        customer_id: Uuid,
        request: Option<IdempotentRequest>,
        change: impl FnOnce(
            &mut super::decision::TierState,
            super::window::Totals,
        ) -> Option<super::decision::Decision>,
    ) -> Result<(Program, PolicyRules, TierView), ScoringError> {
        let now = now();
        let mut tx = self.store.begin().await?;
        // No bucket rebuild commits before this change does, and the program is read after any
        // that did: the decision and the cache keys (the generation) are the store's, not a
        // replica's memory's, which may lag.
        tx.guard_buckets().await?;
        let in_force = ProgramInForce::load(self.store.as_ref(), program_id).await?;
        if in_force.policy.as_ref().map(|(version, _)| version.id) != Some(policy_id) {
            return Err(ScoringError::Aborted(
                "the program's policy changed meanwhile; retry".into(),
            ));
        }
        if tx.member(customer_id).await?.is_none() {
            return Err(ScoringError::not_found("customer", customer_id));
        }
        let replay = match &request {
            Some(request) => tx.claim(request, customer_id).await?,
            None => None,
        };
        if let Some(prior) = replay {
            replayed(request.as_ref(), &prior)?;
            drop(tx);
            return self.current_view(in_force, customer_id, now, None).await;
        }
        let (mut stored, member) =
            state_or_new(tx.as_mut(), in_force.program.id, customer_id, now).await?;
        let Some((_, rules)) = &in_force.policy else {
            return Err(ScoringError::Internal("no policy".into()));
        };
        let (totals, window) = super::consumer::totals_now(
            tx.as_mut(),
            &in_force,
            rules,
            customer_id,
            member.joined_at,
            now,
        )
        .await?;
        let decision = change(&mut stored.state, totals).map(|decision| {
            let origin = Origin {
                window: Some(window),
                ..Origin::default()
            };
            (decision, origin)
        });
        super::consumer::save(tx.as_mut(), &in_force, customer_id, &stored, decision, now).await?;
        let space = Keyspace::of(&in_force.program);
        let repair = if self.cache.shared() {
            Some(
                tx.queue_cache_repair(space.program_id, space.generation, &[customer_id])
                    .await?,
            )
        } else {
            None
        };
        tx.commit().await?;
        self.current_view(in_force, customer_id, now, repair).await
    }

    /// A member's view after a change, written to the cache.
    async fn current_view(
        &self,
        in_force: ProgramInForce,
        customer_id: Uuid,
        now: DateTime<Utc>,
        repair: Option<i64>,
    ) -> Result<(Program, PolicyRules, TierView), ScoringError> {
        let Some((policy, rules)) = &in_force.policy else {
            return Err(ScoringError::Internal("no policy".into()));
        };
        let records = records_after_commit(after_commit(
            self.store.clone(),
            self.cache.clone(),
            Keyspace::of(&in_force.program),
            vec![customer_id],
            repair,
        ))
        .await?;
        let record = records
            .first()
            .ok_or_else(|| ScoringError::not_found("customer", customer_id))?;
        let tier = view(&in_force.program, rules, policy, record, now);
        let rules = rules.clone();
        Ok((in_force.program, rules, tier))
    }

    /// The evaluator, for the scheduler.
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// Why a customer holds their tier: the current view, the decisions that led to it (newest
    /// first) and the purchases counted in the current window (refunds netted in), newest first.
    #[tracing::instrument(skip(self))]
    pub async fn explain(
        &self,
        program_id: &str,
        customer_id: &str,
        max_history: Option<i32>,
        max_activities: Option<i32>,
    ) -> Result<Explanation, ScoringError> {
        let history_limit = match max_history {
            None => 10,
            Some(n @ 1..=100) => n.unsigned_abs(),
            Some(_) => {
                return Err(ScoringError::invalid(
                    "max_history",
                    "must be between 1 and 100",
                ));
            }
        };
        let activity_limit = match max_activities {
            None => 100,
            Some(n @ 1..=1000) => n.unsigned_abs(),
            Some(_) => {
                return Err(ScoringError::invalid(
                    "max_activities",
                    "must be between 1 and 1000",
                ));
            }
        };
        let (in_force, view) = self.tier(program_id, customer_id).await?;
        let program = in_force.program.clone();
        let (_, rules) = in_force.active()?;
        let rules = rules.clone();
        let trail = self
            .store
            .history(program.id, view.customer_id, None, history_limit)
            .await?;
        let (from, until) = super::lookup::range_bounds(view.window, &rules);
        let (activities, activities_total) = self
            .store
            .counted_purchases(program.id, view.customer_id, from, until, activity_limit)
            .await?;
        Ok(Explanation {
            program,
            rules,
            view,
            trail,
            activities,
            activities_total,
        })
    }

    /// The tier-change feed after `after_cursor`, of one program when `program_id` is not empty,
    /// with the feed's identity (which every cursor it serves names). A cursor from another
    /// database cluster, or beyond the feed, is refused rather than followed past every event.
    pub async fn watch_tier_changes(
        &self,
        after_cursor: &str,
        program_id: &str,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<(FeedIdentity, super::tier_feed::TierChangeStream), ScoringError> {
        let origin = self.store.tier_feed_origin().await?;
        let cursor = FeedCursor::resume(after_cursor, origin).map_err(|refusal| match refusal {
            CursorRefusal::Malformed => ScoringError::invalid("after_cursor", refusal.to_string()),
            CursorRefusal::OtherCluster { .. } | CursorRefusal::Ahead { .. } => {
                tracing::error!(%refusal, after_cursor, "a watcher's cursor was refused");
                ScoringError::FailedPrecondition(format!("after_cursor {refusal}"))
            }
        })?;
        let program = if program_id.is_empty() {
            None
        } else {
            Some(parse_id("program_id", program_id)?)
        };
        Ok((
            origin.identity,
            super::tier_feed::watch_tier_changes(self.store.clone(), cursor, program, shutdown),
        ))
    }

    /// The scores of up to 1,000 customers, with the latest cut points (computed now when no
    /// evaluation has computed any yet) and the latest value model (none until one was
    /// fitted), and the ids that are not members.
    #[tracing::instrument(skip(self, customer_ids), fields(customers = customer_ids.len()))]
    pub async fn scores(
        &self,
        program_id: &str,
        customer_ids: &[String],
    ) -> Result<Scores, ScoringError> {
        let ids = parse_customer_ids(customer_ids)?;
        let (program, _, rules) = self.program_in_force(program_id).await?;
        let now = now();
        let (version, cuts) = match self.store.cut_points(program.id).await? {
            Some(latest) => latest,
            None => {
                super::cut_points::refresh_cut_points(self.store.as_ref(), &program, &rules, now)
                    .await?
            }
        };
        let (from, to) = super::scores::rfm_months(rules.window, now, rules.time_zone);
        let inputs = self
            .store
            .rfm_inputs(program.id, &ids, from, to, now)
            .await?;
        let model = self.store.value_model(program.id).await?;
        let summaries: HashMap<Uuid, PurchaseSummary> = match &model {
            Some(_) => super::value::purchase_summaries(
                self.store.as_ref(),
                program.id,
                &ids,
                rules.time_zone,
                now,
            )
            .await?
            .into_iter()
            .collect(),
            None => HashMap::new(),
        };
        let customers: Vec<_> = inputs
            .iter()
            .map(|input| {
                let view = super::scores::score(input, &cuts, version, &rules.lifecycle, now);
                let value = model.as_ref().zip(summaries.get(&input.customer_id)).map(
                    |(model, summary)| {
                        super::value::customer_value(&model.fitted, summary, &rules.value_model)
                    },
                );
                (view, value)
            })
            .collect();
        let found: std::collections::HashSet<Uuid> =
            customers.iter().map(|(view, _)| view.customer_id).collect();
        let missing = ids.into_iter().filter(|id| !found.contains(id)).collect();
        Ok(Scores {
            program,
            value_settings: rules.value_model,
            value_model_version: model.map_or(0, |model| model.version),
            customers,
            missing,
        })
    }

    /// The program's latest value model; NOT_FOUND before the first fit.
    #[tracing::instrument(skip(self))]
    pub async fn value_model(&self, program_id: &str) -> Result<ValueModel, ScoringError> {
        let program = self
            .load_program(parse_id("program_id", program_id)?)
            .await?;
        self.store
            .value_model(program.id)
            .await?
            // "value model of program <id> not found": none has been fitted yet.
            .ok_or_else(|| ScoringError::not_found("value model of program", program.id))
    }

    /// Fits the program's value model now, on its whole population.
    #[tracing::instrument(skip(self))]
    pub async fn fit_value_model(&self, program_id: &str) -> Result<ValueModel, ScoringError> {
        let (program, _, rules) = self.program_in_force(program_id).await?;
        super::value::refit(
            self.store.as_ref(),
            program.id,
            rules.time_zone,
            now(),
            None,
        )
        .await
    }

    /// Streams the members of a program matching `rule` (ascending customer id), after
    /// `after_customer_id`, at most `limit`.
    #[tracing::instrument(skip(self, rule))]
    pub async fn query_audience(
        &self,
        program_id: &str,
        rule: super::audience::AudienceRuleInput,
        after_customer_id: &str,
        limit: Option<i64>,
    ) -> Result<(Program, super::audience::AudienceStream), ScoringError> {
        // The program is named inside the rule.
        parse_id("rule.program_id", program_id)?;
        let (program, _, rules) = self.program_in_force(program_id).await?;
        let rule = rule.validate(&program)?;
        let after = if after_customer_id.is_empty() {
            None
        } else {
            Some(parse_id("after_customer_id", after_customer_id)?)
        };
        let limit = match limit {
            None => None,
            Some(n) if n >= 1 => Some(n.unsigned_abs()),
            Some(_) => return Err(ScoringError::invalid("limit", "must be 1 or more")),
        };
        let (_, cuts) = match self.store.cut_points(program.id).await? {
            Some(latest) => latest,
            None => {
                super::cut_points::refresh_cut_points(self.store.as_ref(), &program, &rules, now())
                    .await?
            }
        };
        let model = if rule.needs_value() {
            self.store
                .value_model(program.id)
                .await?
                .map(|model| model.fitted)
        } else {
            None
        };
        let stream = super::audience::query(
            self.store.clone(),
            program.clone(),
            rules,
            cuts,
            model,
            rule,
            after,
            limit,
        );
        Ok((program, stream))
    }

    /// Simulates a policy (a stored version or unsaved rules) over the current population without
    /// changing anything: for every member, the tier shown now against the tier the simulated
    /// rules' qualification gives on the current data.
    #[tracing::instrument(skip(self, source))]
    pub async fn simulate(
        &self,
        program_id: &str,
        source: SimulationSource,
    ) -> Result<Simulation, ScoringError> {
        let program = self
            .load_program(parse_id("program_id", program_id)?)
            .await?;
        let document = match source {
            SimulationSource::Version(id) => {
                let version = self
                    .load_policy(parse_id("policy_version_id", &id)?)
                    .await?;
                if version.program_id != program.id {
                    return Err(ScoringError::invalid(
                        "policy_version_id",
                        "belongs to another program",
                    ));
                }
                version.document
            }
            SimulationSource::Rules(document) => document,
            SimulationSource::Missing => {
                return Err(ScoringError::invalid(
                    "policy",
                    "give policy_version_id or rules",
                ));
            }
        };
        let simulated = document.validate(&program)?;
        let active = self.store.active_policy(program.id).await?;
        let current = match &active {
            Some(version) => Some(version.document.clone().validate(&program)?),
            None => None,
        };
        let as_of = now();
        let cells = self
            .store
            .simulate(program.id, current.as_ref(), &simulated, as_of)
            .await?;
        Ok(Simulation {
            program,
            active_version: active.map(|v| v.version),
            cells,
            as_of,
        })
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub enum SimulationSource {
    /// A stored version.
    Version(String),
    /// Unsaved rules.
    Rules(PolicyInput),
    /// Neither was given.
    Missing,
}

/// The result of a simulation.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The program.
    pub program: Program,
    /// The version in force compared against.
    pub active_version: Option<i32>,
    /// (current, simulated) cells.
    pub cells: Vec<crate::domain::ports::SimulationCell>,
    /// Data as of.
    pub as_of: DateTime<Utc>,
}

/// The scores of some customers of a program.
#[derive(Debug, Clone)]
pub struct Scores {
    /// The program.
    pub program: Program,
    /// The policy's value settings the values follow.
    pub value_settings: super::policy::ValueModelSettings,
    /// The value model used; 0 without one.
    pub value_model_version: i64,
    /// Each known customer's scores and, when a model is fitted and they have bought, value.
    pub customers: Vec<(
        super::scores::ScoreView,
        Option<super::value::CustomerValue>,
    )>,
    /// Requested ids that are not members.
    pub missing: Vec<Uuid>,
}

/// The answer to "why does this customer hold this tier?".
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The program.
    pub program: Program,
    /// Its rules in force.
    pub rules: PolicyRules,
    /// The current view.
    pub view: TierView,
    /// The decisions, newest first.
    pub trail: Vec<HistoryRecord>,
    /// Purchases counted in the current window, newest first.
    pub activities: Vec<super::accrual::CountedPurchase>,
    /// How many count in all.
    pub activities_total: i64,
}

/// An operator's override, as `SetTierOverride` asks for it.
#[derive(Debug, Clone, Copy)]
pub struct OverrideRequest<'a> {
    /// The program.
    pub program_id: &'a str,
    /// The customer.
    pub customer_id: &'a str,
    /// The tier to show.
    pub tier_code: &'a str,
    /// Until when.
    pub until: Option<DateTime<Utc>>,
    /// Why.
    pub reason: &'a str,
    /// Who.
    pub operator: &'a str,
    /// Makes a retry return the first result; empty for none.
    pub idempotency_key: &'a str,
}
