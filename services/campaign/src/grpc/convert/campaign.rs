//! The campaign itself: request messages into domain input, stored campaigns into messages.

use tierline_proto::{campaign::v1 as pb, common::v1 as common, scoring::v1 as scoring};
use tierline_runtime::status::FieldViolation;
use uuid::Uuid;

use super::{channel_from_proto, channel_to_proto, checked_datetime, money, timestamp};
use crate::{
    CampaignError,
    domain::{
        campaign::{
            Audience, Benefit, Campaign, Definition, Kind, Offer, ProbabilityRange, Range,
            ScoringRule, Status, Trigger,
        },
        input::{Amount, CampaignInput, DefinitionPatch},
        preview::PreviewTarget,
    },
};

fn kind_from_proto(value: i32) -> Option<Kind> {
    match pb::CampaignKind::try_from(value).ok()? {
        pb::CampaignKind::OneShot => Some(Kind::OneShot),
        pb::CampaignKind::Triggered => Some(Kind::Triggered),
        pb::CampaignKind::Unspecified => None,
    }
}

fn kind_to_proto(kind: Kind) -> i32 {
    match kind {
        Kind::OneShot => pb::CampaignKind::OneShot,
        Kind::Triggered => pb::CampaignKind::Triggered,
    }
    .into()
}

pub(crate) fn status_to_proto(status: Status) -> i32 {
    match status {
        Status::Draft => pb::CampaignStatus::Draft,
        Status::Scheduled => pb::CampaignStatus::Scheduled,
        Status::Running => pb::CampaignStatus::Running,
        Status::Completed => pb::CampaignStatus::Completed,
        Status::Cancelled => pb::CampaignStatus::Cancelled,
    }
    .into()
}

pub(crate) fn status_from_proto(value: i32) -> Option<Status> {
    match pb::CampaignStatus::try_from(value).ok()? {
        pb::CampaignStatus::Draft => Some(Status::Draft),
        pb::CampaignStatus::Scheduled => Some(Status::Scheduled),
        pb::CampaignStatus::Running => Some(Status::Running),
        pb::CampaignStatus::Completed => Some(Status::Completed),
        pb::CampaignStatus::Cancelled => Some(Status::Cancelled),
        pb::CampaignStatus::Unspecified => None,
    }
}

pub(crate) fn kind_filter(value: i32) -> Option<Kind> {
    kind_from_proto(value)
}

fn range32(range: Option<scoring::ScoreRange>) -> Option<Range> {
    range.map(|r| Range {
        min: r.min.map(i64::from),
        max: r.max.map(i64::from),
    })
}

fn range64(range: Option<scoring::Int64Range>) -> Option<Range> {
    range.map(|r| Range {
        min: r.min,
        max: r.max,
    })
}

fn audience_from_proto(
    audience: pb::CampaignAudience,
    field: &str,
    program_id: Option<Uuid>,
    violations: &mut Vec<FieldViolation>,
) -> Audience {
    let rule = audience.scoring_rule.unwrap_or_default();
    if !rule.program_id.is_empty()
        && program_id.is_some_and(|id| Uuid::parse_str(&rule.program_id).ok() != Some(id))
    {
        violations.push(FieldViolation::new(
            format!("{field}.scoring_rule.program_id"),
            "must be empty or the campaign's program_id",
        ));
    }
    Audience {
        scoring: ScoringRule {
            tier_codes: rule.tier_codes,
            segments: rule.segments,
            lifecycle_states: rule.lifecycle_states,
            r_score: range32(rule.r_score),
            f_score: range32(rule.f_score),
            m_score: range32(rule.m_score),
            net_spend_minor: range64(rule.net_spend_minor),
            days_since_last_purchase: range64(rule.days_since_last_purchase),
            probability_alive: rule.probability_alive.map(|r| ProbabilityRange {
                min: r.min,
                max: r.max,
            }),
            predicted_value_minor: range64(rule.predicted_value_minor),
        },
        attributes: audience.attributes.into_iter().collect(),
        birthday_months: audience
            .birthday_months
            .into_iter()
            // Out-of-range months become 0, which the domain's validation names.
            .map(|m| u32::try_from(m).unwrap_or(0))
            .collect(),
    }
}

fn audience_to_proto(audience: &Audience, program_id: Uuid) -> pb::CampaignAudience {
    pb::CampaignAudience {
        scoring_rule: Some(crate::upstream::audience_rule(
            program_id,
            &audience.scoring,
        )),
        attributes: audience.attributes.clone().into_iter().collect(),
        birthday_months: audience
            .birthday_months
            .iter()
            .map(|m| i32::try_from(*m).unwrap_or(0))
            .collect(),
    }
}

fn offer_from_proto(offer: pb::Offer) -> Offer {
    Offer {
        text: offer.text,
        benefit: offer.benefit.map(|benefit| match benefit {
            pb::offer::Benefit::Code(code) => Benefit::Code(code),
            pb::offer::Benefit::Value(value) => Benefit::Value(value.amount_minor, value.currency),
        }),
    }
}

pub(crate) fn offer_to_proto(offer: &Offer) -> pb::Offer {
    pb::Offer {
        text: offer.text.clone(),
        benefit: offer.benefit.as_ref().map(|benefit| match benefit {
            Benefit::Code(code) => pb::offer::Benefit::Code(code.clone()),
            Benefit::Value(amount, currency) => pb::offer::Benefit::Value(money(*amount, currency)),
        }),
    }
}

fn trigger_from_proto(
    trigger: pb::CampaignTrigger,
    field: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<Trigger> {
    match trigger.event {
        Some(pb::campaign_trigger::Event::TierUpgrade(t)) => Some(Trigger::TierUpgrade {
            to_tier_code: t.to_tier_code,
        }),
        Some(pb::campaign_trigger::Event::TierDowngrade(t)) => Some(Trigger::TierDowngrade {
            from_tier_code: t.from_tier_code,
        }),
        Some(pb::campaign_trigger::Event::Lifecycle(t)) => {
            Some(Trigger::Lifecycle { became: t.became })
        }
        Some(pb::campaign_trigger::Event::Birthday(t)) => Some(Trigger::Birthday {
            // Negative values become 31, which the domain's validation names.
            days_before: u32::try_from(t.days_before).unwrap_or(31),
            time_zone: t.time_zone,
        }),
        None => {
            violations.push(FieldViolation::new(field, "must name exactly one event"));
            None
        }
    }
}

fn trigger_to_proto(trigger: &Trigger) -> pb::CampaignTrigger {
    use pb::campaign_trigger::Event;
    let event = match trigger {
        Trigger::TierUpgrade { to_tier_code } => Event::TierUpgrade(pb::TierUpgradeTrigger {
            to_tier_code: to_tier_code.clone(),
        }),
        Trigger::TierDowngrade { from_tier_code } => {
            Event::TierDowngrade(pb::TierDowngradeTrigger {
                from_tier_code: from_tier_code.clone(),
            })
        }
        Trigger::Lifecycle { became } => Event::Lifecycle(pb::LifecycleTrigger { became: *became }),
        Trigger::Birthday {
            days_before,
            time_zone,
        } => Event::Birthday(pb::BirthdayTrigger {
            days_before: i32::try_from(*days_before).unwrap_or(0),
            time_zone: time_zone.clone(),
        }),
    };
    pb::CampaignTrigger { event: Some(event) }
}

fn amount(money: common::Money) -> Amount {
    Amount {
        minor: money.amount_minor,
        currency: money.currency,
    }
}

fn nonnegative(value: i32, field: &str, violations: &mut Vec<FieldViolation>) -> u32 {
    u32::try_from(value).unwrap_or_else(|_| {
        violations.push(FieldViolation::new(field, "must not be negative"));
        0
    })
}

fn program_id(text: &str, field: &str, violations: &mut Vec<FieldViolation>) -> Option<Uuid> {
    let parsed = Uuid::parse_str(text).ok();
    if parsed.is_none() {
        violations.push(FieldViolation::new(
            field,
            "is required, a program id (UUID)",
        ));
    }
    parsed
}

fn done<T>(value: T, violations: Vec<FieldViolation>) -> Result<T, CampaignError> {
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(CampaignError::InvalidArgument(violations))
    }
}

/// The campaign of a `CreateCampaign` request.
pub(crate) fn campaign_input(campaign: pb::Campaign) -> Result<CampaignInput, CampaignError> {
    let mut v = Vec::new();
    let program = program_id(&campaign.program_id, "campaign.program_id", &mut v);
    let kind = kind_from_proto(campaign.kind);
    if kind.is_none() {
        v.push(FieldViolation::new(
            "campaign.kind",
            "must be ONE_SHOT or TRIGGERED",
        ));
    }
    let channel = channel_from_proto(campaign.channel);
    if channel.is_none() {
        v.push(FieldViolation::new(
            "campaign.channel",
            "must be EMAIL, SMS or PUSH",
        ));
    }
    let audience = audience_from_proto(
        campaign.audience.unwrap_or_default(),
        "campaign.audience",
        program,
        &mut v,
    );
    let schedule = campaign.schedule.unwrap_or_default();
    let start_at = checked_datetime(
        schedule.start_at.as_ref(),
        "campaign.schedule.start_at",
        &mut v,
    );
    let end_at = checked_datetime(schedule.end_at.as_ref(), "campaign.schedule.end_at", &mut v);
    let trigger = campaign
        .trigger
        .and_then(|trigger| trigger_from_proto(trigger, "campaign.trigger", &mut v));
    let definition = Definition {
        name: campaign.name,
        description: campaign.description,
        program_id: program.unwrap_or_default(),
        kind: kind.unwrap_or(Kind::OneShot),
        channel: channel.unwrap_or(crate::domain::campaign::Channel::Email),
        audience,
        holdout_bps: nonnegative(campaign.holdout_bps, "campaign.holdout_bps", &mut v),
        offer: campaign.offer.map(offer_from_proto),
        cost_per_contact_minor: 0,
        fixed_cost_minor: 0,
        start_at,
        end_at,
        attribution_window_days: nonnegative(
            campaign.attribution_window_days,
            "campaign.attribution_window_days",
            &mut v,
        ),
        re_entry_period_days: nonnegative(
            campaign.re_entry_period_days,
            "campaign.re_entry_period_days",
            &mut v,
        ),
        trigger,
    };
    done(
        CampaignInput {
            definition,
            cost_per_contact: campaign.cost_per_contact.map(amount),
            fixed_cost: campaign.fixed_cost.map(amount),
        },
        v,
    )
}

/// The patch of an `UpdateCampaign` request.
pub(crate) fn patch(request: pb::UpdateCampaignRequest) -> Result<DefinitionPatch, CampaignError> {
    let mut v = Vec::new();
    let program = request
        .program_id
        .as_deref()
        .and_then(|id| program_id(id, "program_id", &mut v));
    let kind = request.kind.and_then(|value| {
        let kind = kind_from_proto(value);
        if kind.is_none() {
            v.push(FieldViolation::new("kind", "must be ONE_SHOT or TRIGGERED"));
        }
        kind
    });
    let channel = request.channel.and_then(|value| {
        let channel = channel_from_proto(value);
        if channel.is_none() {
            v.push(FieldViolation::new("channel", "must be EMAIL, SMS or PUSH"));
        }
        channel
    });
    let audience = request
        .audience
        .map(|audience| audience_from_proto(audience, "audience", program, &mut v));
    let schedule = request.schedule.map(|schedule| {
        (
            checked_datetime(schedule.start_at.as_ref(), "schedule.start_at", &mut v),
            checked_datetime(schedule.end_at.as_ref(), "schedule.end_at", &mut v),
        )
    });
    let trigger = request
        .trigger
        .and_then(|trigger| trigger_from_proto(trigger, "trigger", &mut v));
    let patch = DefinitionPatch {
        name: request.name,
        description: request.description,
        program_id: program,
        kind,
        channel,
        audience,
        holdout_bps: request
            .holdout_bps
            .map(|value| nonnegative(value, "holdout_bps", &mut v)),
        offer: request.offer.map(offer_from_proto),
        cost_per_contact: request.cost_per_contact.map(amount),
        fixed_cost: request.fixed_cost.map(amount),
        schedule,
        attribution_window_days: request.attribution_window_days.map(|value| {
            // Set in an update means a new window: 0 would silently unset it.
            if value == 0 {
                v.push(FieldViolation::new(
                    "attribution_window_days",
                    "must be 1 to 365",
                ));
            }
            nonnegative(value, "attribution_window_days", &mut v)
        }),
        re_entry_period_days: request
            .re_entry_period_days
            .map(|value| nonnegative(value, "re_entry_period_days", &mut v)),
        trigger,
        clear_trigger: request.clear_trigger,
    };
    done(patch, v)
}

/// The target of a `PreviewAudience` request.
pub(crate) fn preview_target(
    target: Option<pb::preview_audience_request::Target>,
) -> Result<PreviewTarget, CampaignError> {
    match target {
        Some(pb::preview_audience_request::Target::CampaignId(id)) => {
            Ok(PreviewTarget::Campaign(id))
        }
        Some(pb::preview_audience_request::Target::Definition(definition)) => {
            let mut v = Vec::new();
            let program = program_id(&definition.program_id, "definition.program_id", &mut v);
            let channel = channel_from_proto(definition.channel);
            if channel.is_none() {
                v.push(FieldViolation::new(
                    "definition.channel",
                    "must be EMAIL, SMS or PUSH",
                ));
            }
            let audience = audience_from_proto(
                definition.audience.unwrap_or_default(),
                "definition.audience",
                program,
                &mut v,
            );
            let holdout_bps = nonnegative(definition.holdout_bps, "definition.holdout_bps", &mut v);
            done(
                PreviewTarget::Definition {
                    program_id: program.unwrap_or_default(),
                    channel: channel.unwrap_or(crate::domain::campaign::Channel::Email),
                    audience: Box::new(audience),
                    holdout_bps,
                },
                v,
            )
        }
        None => Err(CampaignError::invalid(
            "target",
            "give campaign_id or definition",
        )),
    }
}

/// A stored campaign as a message, with its launch counts when launched.
pub(crate) fn campaign_to_proto(
    campaign: Campaign,
    summary: Option<pb::LaunchSummary>,
) -> pb::Campaign {
    let d = &campaign.definition;
    let currency = &campaign.program.currency;
    pb::Campaign {
        id: campaign.id.to_string(),
        name: d.name.clone(),
        description: d.description.clone(),
        program_id: d.program_id.to_string(),
        kind: kind_to_proto(d.kind),
        channel: channel_to_proto(d.channel),
        audience: Some(audience_to_proto(&d.audience, d.program_id)),
        holdout_bps: i32::try_from(d.holdout_bps).unwrap_or(0),
        offer: d.offer.as_ref().map(offer_to_proto),
        cost_per_contact: Some(money(d.cost_per_contact_minor, currency)),
        fixed_cost: Some(money(d.fixed_cost_minor, currency)),
        schedule: Some(pb::CampaignSchedule {
            start_at: d.start_at.map(timestamp),
            end_at: d.end_at.map(timestamp),
        }),
        attribution_window_days: i32::try_from(d.attribution_window_days).unwrap_or(0),
        re_entry_period_days: i32::try_from(d.re_entry_period_days).unwrap_or(0),
        trigger: d.trigger.as_ref().map(trigger_to_proto),
        status: status_to_proto(campaign.status),
        revision: campaign.revision,
        created_by: campaign.created_by,
        created_at: Some(timestamp(campaign.created_at)),
        updated_at: Some(timestamp(campaign.updated_at)),
        launched_at: campaign.launched_at.map(timestamp),
        completed_at: campaign.completed_at.map(timestamp),
        cancelled_at: campaign.cancelled_at.map(timestamp),
        cancel_reason: campaign.cancel_reason,
        launch_summary: summary,
    }
}
