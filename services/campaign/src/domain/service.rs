//! The campaign service's use cases, one method per RPC family: the campaign's life (create,
//! update, schedule, launch, cancel, complete) here; members, reports, previews and deliveries
//! in their own files. Every method takes checked domain values and returns domain values; the
//! gRPC adapter converts.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use tierline_runtime::paging;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    campaign::{Campaign, Kind, Status},
    enrolment::Enroller,
    input::{CampaignInput, DefinitionPatch, apply_amounts},
    launch::Launcher,
};
use crate::{
    CampaignError,
    domain::ports::{CampaignFilter, CampaignStore, MembershipCounts},
    upstream::Upstream,
};

/// Settings of the use cases.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The smallest arm for a measurable report.
    pub min_arm_size: i64,
    /// How long `LaunchCampaign` waits for a launch before answering with its progress.
    pub launch_wait: Duration,
}

/// Counts of a launch, or of a triggered campaign's entries so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchSummary {
    /// Customers matching the audience.
    pub matched: i64,
    /// Members per arm and suppressions per reason.
    pub counts: MembershipCounts,
    /// Whether the launch finished.
    pub complete: bool,
}

/// The campaign service's use cases.
#[derive(Debug, Clone)]
pub struct Campaigns {
    pub(super) store: Arc<dyn CampaignStore>,
    pub(super) enroller: Enroller,
    launcher: Launcher,
    pub(super) settings: Settings,
    shutdown: CancellationToken,
}

/// Parses a required id field.
pub(super) fn parse_id(text: &str, field: &str) -> Result<Uuid, CampaignError> {
    Uuid::parse_str(text).map_err(|_| CampaignError::invalid(field, "must be a UUID"))
}

fn invalid(violation: tierline_runtime::status::FieldViolation) -> CampaignError {
    CampaignError::InvalidArgument(vec![violation])
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), CampaignError> {
    let chars = value.chars().count();
    if value.trim().is_empty() || chars > max {
        return Err(CampaignError::invalid(
            field,
            format!("is required, 1 to {max} characters"),
        ));
    }
    Ok(())
}

fn check_idempotency_key(key: &str) -> Result<(), CampaignError> {
    if key.len() > 128 || key.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
        return Err(CampaignError::invalid(
            "idempotency_key",
            "1 to 128 printable ASCII characters",
        ));
    }
    Ok(())
}

/// Stored costs are minor units of the program's currency: moving to a program of another
/// currency needs them sent again (a zero cost needs nothing).
fn check_costs_survive(
    campaign: &Campaign,
    program: &super::campaign::ProgramFacts,
    sent: &[(&'static str, super::input::Amount)],
) -> Result<(), CampaignError> {
    if program.currency == campaign.program.currency {
        return Ok(());
    }
    let stale: Vec<_> = [
        (
            "campaign.cost_per_contact",
            campaign.definition.cost_per_contact_minor,
        ),
        ("campaign.fixed_cost", campaign.definition.fixed_cost_minor),
    ]
    .into_iter()
    .filter(|(field, minor)| *minor != 0 && !sent.iter().any(|(f, _)| f == field))
    .map(|(field, _)| {
        tierline_runtime::status::FieldViolation::new(
            format!("{field}.currency"),
            format!(
                "is {}, not the new program's {}: send the amount again",
                campaign.program.currency, program.currency
            ),
        )
    })
    .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(CampaignError::InvalidArgument(stale))
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `UpdateCampaign` carries the campaign's fields at the top of its request: a violation found in
/// the updated campaign is named as that request spells it (`holdout_bps`, not
/// `campaign.holdout_bps`), as the request's own checks name it.
fn as_update_fields(error: CampaignError) -> CampaignError {
    match error {
        CampaignError::InvalidArgument(violations) => CampaignError::InvalidArgument(
            violations
                .into_iter()
                .map(|mut violation| {
                    if let Some(field) = violation.field.strip_prefix("campaign.") {
                        violation.field = field.to_owned();
                    }
                    violation
                })
                .collect(),
        ),
        other => other,
    }
}

impl Campaigns {
    /// The use cases over `store`, reading the other services through `upstream`.
    pub fn new(
        store: Arc<dyn CampaignStore>,
        enroller: Enroller,
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            launcher: Launcher::new(store.clone(), enroller.clone()),
            store,
            enroller,
            settings,
            shutdown,
        }
    }

    /// The upstream clients.
    pub fn upstream(&self) -> &Upstream {
        self.enroller.upstream()
    }

    /// The enroller.
    pub fn enroller(&self) -> &Enroller {
        &self.enroller
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn CampaignStore> {
        &self.store
    }

    pub(super) async fn load(&self, id: Uuid) -> Result<Campaign, CampaignError> {
        self.store
            .campaign(id)
            .await?
            .ok_or_else(|| CampaignError::not_found("campaign", id))
    }

    /// Creates a draft; a retry with the same idempotency key returns the first result.
    #[tracing::instrument(skip(self, input), fields(program_id = %input.definition.program_id))]
    pub async fn create(
        &self,
        input: CampaignInput,
        created_by: &str,
        idempotency_key: &str,
    ) -> Result<Campaign, CampaignError> {
        check_text("created_by", created_by, 128)?;
        check_idempotency_key(idempotency_key)?;
        let CampaignInput {
            mut definition,
            cost_per_contact,
            fixed_cost,
        } = input;
        let program = self.upstream().program(definition.program_id).await?;
        let amounts = [
            ("campaign.cost_per_contact", cost_per_contact),
            ("campaign.fixed_cost", fixed_cost),
        ]
        .into_iter()
        .filter_map(|(field, amount)| amount.map(|a| (field, a)))
        .collect();
        apply_amounts(&mut definition, amounts, &program)?;
        definition.validate(&program)?;
        let fingerprint = Sha256::digest(
            serde_json::json!({ "definition": &definition, "created_by": created_by }).to_string(),
        )
        .to_vec();
        let campaign = Campaign::draft(Uuid::now_v7(), definition, program, created_by, now());
        let key =
            (!idempotency_key.is_empty()).then_some((idempotency_key, fingerprint.as_slice()));
        match self.store.create(&campaign, key).await? {
            None => Ok(campaign),
            Some((first_id, first_fingerprint)) if first_fingerprint == fingerprint => {
                self.load(first_id).await
            }
            Some(_) => Err(CampaignError::invalid(
                "idempotency_key",
                "was already used for a different campaign",
            )),
        }
    }

    /// One campaign.
    #[tracing::instrument(skip(self))]
    pub async fn get(&self, id: &str) -> Result<Campaign, CampaignError> {
        self.load(parse_id(id, "campaign_id")?).await
    }

    /// A page of campaigns, newest first, and the next page's token.
    #[tracing::instrument(skip(self))]
    pub async fn list(
        &self,
        filter: CampaignFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<Campaign>, String), CampaignError> {
        let limit = paging::page_size(page_size).map_err(invalid)?;
        let before = match paging::decode(page_token, 'c').map_err(invalid)? {
            None => None,
            Some(body) => {
                let bad = || {
                    invalid(tierline_runtime::status::FieldViolation::new(
                        "page_token",
                        "is not a token from a previous page of this list",
                    ))
                };
                let (at, id) = body.split_once('/').ok_or_else(bad)?;
                Some((
                    DateTime::parse_from_rfc3339(at)
                        .map_err(|_| bad())?
                        .with_timezone(&Utc),
                    Uuid::parse_str(id).map_err(|_| bad())?,
                ))
            }
        };
        let campaigns = self.store.list(&filter, before, limit).await?;
        let next = match campaigns.last() {
            Some(last) if campaigns.len() == limit as usize => paging::encode(
                'c',
                &format!(
                    "{}/{}",
                    last.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    last.id
                ),
            ),
            _ => String::new(),
        };
        Ok((campaigns, next))
    }

    /// Changes a draft.
    #[tracing::instrument(skip(self, patch))]
    pub async fn update(
        &self,
        id: &str,
        expected_revision: Option<i64>,
        patch: DefinitionPatch,
    ) -> Result<Campaign, CampaignError> {
        let mut campaign = self.load(parse_id(id, "campaign_id")?).await?;
        if let Some(expected) = expected_revision
            && expected != campaign.revision
        {
            return Err(CampaignError::Aborted(format!(
                "campaign is at revision {}, not {expected}",
                campaign.revision
            )));
        }
        campaign.ensure_editable()?;
        let program_changed = patch
            .program_id
            .is_some_and(|program| program != campaign.definition.program_id);
        let amounts = patch.apply(&mut campaign.definition)?;
        if program_changed {
            let program = self
                .upstream()
                .program(campaign.definition.program_id)
                .await?;
            check_costs_survive(&campaign, &program, &amounts).map_err(as_update_fields)?;
            campaign.program = program;
        }
        apply_amounts(&mut campaign.definition, amounts, &campaign.program)
            .map_err(as_update_fields)?;
        campaign
            .definition
            .validate(&campaign.program)
            .map_err(as_update_fields)?;
        self.save(campaign).await
    }

    async fn save(&self, mut campaign: Campaign) -> Result<Campaign, CampaignError> {
        campaign.revision += 1;
        campaign.updated_at = now();
        self.store.save(&campaign).await?;
        Ok(campaign)
    }

    /// Draft → scheduled: it launches by itself at its start.
    #[tracing::instrument(skip(self))]
    pub async fn schedule(
        &self,
        id: &str,
        start_at: Option<DateTime<Utc>>,
    ) -> Result<Campaign, CampaignError> {
        let mut campaign = self.load(parse_id(id, "campaign_id")?).await?;
        let start = start_at.or(campaign.definition.start_at);
        if campaign.status == Status::Scheduled && start == campaign.definition.start_at {
            return Ok(campaign);
        }
        campaign.ensure_editable()?;
        campaign.ensure_launchable()?;
        let Some(start) = start else {
            return Err(CampaignError::FailedPrecondition {
                message: "campaign is incomplete".into(),
                fields: vec![tierline_runtime::status::FieldViolation::new(
                    "campaign.schedule.start_at",
                    "is required to schedule",
                )],
            });
        };
        if start <= Utc::now() {
            return Err(CampaignError::invalid("start_at", "must be in the future"));
        }
        campaign.definition.start_at = Some(start);
        campaign.definition.validate(&campaign.program)?;
        campaign.status = Status::Scheduled;
        self.save(campaign).await
    }

    /// Draft or scheduled → running now; a one-shot launch runs (or resumes) and is awaited for
    /// at most the configured wait.
    #[tracing::instrument(skip(self))]
    pub async fn launch(&self, id: &str) -> Result<(Campaign, LaunchSummary), CampaignError> {
        let id = parse_id(id, "campaign_id")?;
        let campaign = self.start_running(id).await?;
        if campaign.status == Status::Running
            && campaign.definition.kind == Kind::OneShot
            && !campaign.launch.complete
        {
            self.drive_launch(id, Some(self.settings.launch_wait))
                .await?;
        }
        let campaign = self.load(id).await?;
        let summary = self.summary(&campaign).await?;
        Ok((campaign, summary))
    }

    /// Moves a launchable campaign to running (once, whoever races).
    pub(crate) async fn start_running(&self, id: Uuid) -> Result<Campaign, CampaignError> {
        loop {
            let mut campaign = self.load(id).await?;
            campaign.ensure_launchable()?;
            if !matches!(campaign.status, Status::Draft | Status::Scheduled) {
                return Ok(campaign);
            }
            let now = now();
            campaign.status = Status::Running;
            campaign.launched_at = Some(now);
            if campaign.definition.start_at.is_none_or(|start| start > now) {
                campaign.definition.start_at = Some(now);
            }
            match self.save(campaign).await {
                Ok(campaign) => {
                    if campaign.definition.kind == Kind::Triggered {
                        // Triggers start following their feeds now; there is no audience to take.
                        self.store.complete_launch(id).await?;
                    }
                    tracing::info!(campaign_id = %id, "campaign launched");
                    return self.load(id).await;
                }
                // Someone else changed it first (maybe launched it): look again.
                Err(CampaignError::Aborted(_)) => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Runs the launch of `id` if no replica runs it; waits for it at most `wait` (forever when
    /// `None`). Returns whether this call found the launch lock free.
    pub(crate) async fn drive_launch(
        &self,
        id: Uuid,
        wait: Option<Duration>,
    ) -> Result<bool, CampaignError> {
        let Some(lock) = self.store.try_lock_launch(id).await? else {
            return Ok(false);
        };
        let launcher = self.launcher.clone();
        let shutdown = self.shutdown.clone();
        let task = tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => Ok(()),
                result = launcher.run(id, lock) => result,
            }
        });
        let joined = match wait {
            Some(wait) => match tokio::time::timeout(wait, task).await {
                Ok(joined) => joined,
                // Still going: it goes on in the background and the answer shows the progress.
                Err(_) => return Ok(true),
            },
            None => task.await,
        };
        joined.map_err(|error| CampaignError::Internal(format!("launch task: {error}")))??;
        Ok(true)
    }

    /// The counts of a launch (or of a triggered campaign's entries).
    pub async fn summary(&self, campaign: &Campaign) -> Result<LaunchSummary, CampaignError> {
        Ok(LaunchSummary {
            matched: campaign.launch.matched,
            counts: self.store.membership_counts(campaign.id).await?,
            complete: campaign.launch.complete,
        })
    }

    /// → cancelled: no new members; deliveries not yet leased are withdrawn.
    #[tracing::instrument(skip(self))]
    pub async fn cancel(&self, id: &str, reason: &str) -> Result<Campaign, CampaignError> {
        let id = parse_id(id, "campaign_id")?;
        check_text("reason", reason, 500)?;
        let campaign = self
            .transition(id, |campaign| {
                if !campaign.cancellable()? {
                    return Ok(false);
                }
                campaign.status = Status::Cancelled;
                campaign.cancelled_at = Some(now());
                campaign.cancel_reason = reason.to_owned();
                Ok(true)
            })
            .await?;
        // Also on a repeated cancel: withdrawing is idempotent, and it finishes the job of a
        // first cancel that died between its two steps.
        let withdrawn = self.store.withdraw_pending(id).await?;
        tracing::info!(campaign_id = %id, withdrawn, "campaign cancelled");
        Ok(campaign)
    }

    /// Running → completed.
    #[tracing::instrument(skip(self))]
    pub async fn complete(&self, id: &str) -> Result<Campaign, CampaignError> {
        self.complete_id(parse_id(id, "campaign_id")?).await
    }

    pub(crate) async fn complete_id(&self, id: Uuid) -> Result<Campaign, CampaignError> {
        self.transition(id, |campaign| {
            if !campaign.completable()? {
                return Ok(false);
            }
            campaign.status = Status::Completed;
            campaign.completed_at = Some(now());
            Ok(true)
        })
        .await
    }

    /// Applies `change` to the stored campaign and saves it when it says so; when another
    /// replica (the scheduler, say) changed the campaign first, reads it again and retries, so a
    /// caller who sent no revision never sees ABORTED.
    async fn transition(
        &self,
        id: Uuid,
        change: impl Fn(&mut Campaign) -> Result<bool, CampaignError>,
    ) -> Result<Campaign, CampaignError> {
        loop {
            let mut campaign = self.load(id).await?;
            if !change(&mut campaign)? {
                return Ok(campaign);
            }
            match self.save(campaign).await {
                Err(CampaignError::Aborted(_)) => continue,
                saved => return saved,
            }
        }
    }
}
