//! Conversions between protobuf messages and domain types. No rules live here: inputs are
//! carried over as sent and validated by the domain.

use chrono::{DateTime, Utc};
use tierline_proto::{prost_types, scoring::v1 as pb};

use crate::domain::{
    policy::{Frequency, Metric, PolicyInput, TierRuleInput, WindowKind},
    program::{Benefit, Program, ProgramInput, Scope, Tier},
    versions::{EvaluationRun, PolicyStatus, PolicyVersion, RunStatus, RunTrigger},
};

pub(crate) fn timestamp(value: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: value.timestamp(),
        nanos: i32::try_from(value.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn program_input(program: pb::Program) -> ProgramInput {
    let scope = program.scope.unwrap_or_default();
    ProgramInput {
        code: program.code,
        name: program.name,
        currency: program.currency,
        scope: Scope {
            brands: scope.brands,
            sales_channels: scope.sales_channels,
        },
        tiers: program
            .tiers
            .into_iter()
            .map(|tier| Tier {
                code: tier.code,
                name: tier.name,
                rank: u32::try_from(tier.rank).unwrap_or(u32::MAX),
                benefits: tier
                    .benefits
                    .into_iter()
                    .map(|b| Benefit {
                        code: b.code,
                        description: b.description,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) fn program_to_proto(program: Program, active: Option<&PolicyVersion>) -> pb::Program {
    pb::Program {
        id: program.id.to_string(),
        code: program.code,
        name: program.name,
        currency: program.currency,
        scope: Some(pb::ProgramScope {
            brands: program.scope.brands,
            sales_channels: program.scope.sales_channels,
        }),
        tiers: program
            .tiers
            .into_iter()
            .map(|tier| pb::Tier {
                code: tier.code,
                name: tier.name,
                rank: i32::try_from(tier.rank).unwrap_or(i32::MAX),
                benefits: tier
                    .benefits
                    .into_iter()
                    .map(|b| pb::Benefit {
                        code: b.code,
                        description: b.description,
                    })
                    .collect(),
            })
            .collect(),
        active_policy_version_id: active.map(|policy| policy.id.to_string()),
        active_policy_version: active.map(|policy| policy.version),
        created_at: Some(timestamp(program.created_at)),
    }
}

fn metric_from_proto(value: i32) -> Option<Metric> {
    match pb::MetricKind::try_from(value).ok()? {
        pb::MetricKind::NetSpend => Some(Metric::NetSpend),
        pb::MetricKind::Points => Some(Metric::Points),
        pb::MetricKind::PurchaseCount => Some(Metric::PurchaseCount),
        pb::MetricKind::Unspecified => None,
    }
}

pub(crate) fn metric_to_proto(metric: Metric) -> pb::MetricKind {
    match metric {
        Metric::NetSpend => pb::MetricKind::NetSpend,
        Metric::Points => pb::MetricKind::Points,
        Metric::PurchaseCount => pb::MetricKind::PurchaseCount,
    }
}

pub(crate) fn policy_input(rules: pb::PolicyRules) -> PolicyInput {
    let window = rules.window.unwrap_or_default();
    let schedule = rules.evaluation_schedule.unwrap_or_default();
    let lifecycle = rules.lifecycle.unwrap_or_default();
    PolicyInput {
        tiers: rules
            .tiers
            .into_iter()
            .map(|rule| TierRuleInput {
                tier_code: rule.tier_code,
                requirements: rule
                    .requirements
                    .into_iter()
                    .map(|r| (metric_from_proto(r.metric), r.threshold))
                    .collect(),
                points_earn_rate_bps: rule.points_earn_rate_bps,
            })
            .collect(),
        window: match pb::WindowKind::try_from(window.kind).unwrap_or(pb::WindowKind::Unspecified) {
            pb::WindowKind::RollingMonths => Some(WindowKind::RollingMonths(
                u32::try_from(window.rolling_months).unwrap_or(0),
            )),
            pb::WindowKind::CalendarYear => Some(WindowKind::CalendarYear),
            pb::WindowKind::MembershipYear => Some(WindowKind::MembershipYear),
            pb::WindowKind::Lifetime => Some(WindowKind::Lifetime),
            pb::WindowKind::Unspecified => None,
        },
        time_zone: rules.time_zone,
        frequency: match pb::EvaluationFrequency::try_from(schedule.frequency)
            .unwrap_or(pb::EvaluationFrequency::Unspecified)
        {
            pb::EvaluationFrequency::Monthly => Some(Frequency::Monthly),
            pb::EvaluationFrequency::Quarterly => Some(Frequency::Quarterly),
            pb::EvaluationFrequency::Yearly => Some(Frequency::Yearly),
            pb::EvaluationFrequency::Unspecified => None,
        },
        day_of_month: schedule.day_of_month,
        month_of_year: schedule.month_of_year,
        local_hour: schedule.local_hour,
        local_minute: schedule.local_minute,
        grace_months: rules.grace_months,
        max_levels_dropped: rules.max_levels_dropped,
        new_days: lifecycle.new_days,
        at_risk_days: lifecycle.at_risk_days,
        dormant_days: lifecycle.dormant_days,
    }
}

fn policy_rules_to_proto(document: PolicyInput) -> pb::PolicyRules {
    let (kind, rolling_months) = match document.window {
        Some(WindowKind::RollingMonths(months)) => (
            pb::WindowKind::RollingMonths,
            i32::try_from(months).unwrap_or(0),
        ),
        Some(WindowKind::CalendarYear) => (pb::WindowKind::CalendarYear, 0),
        Some(WindowKind::MembershipYear) => (pb::WindowKind::MembershipYear, 0),
        Some(WindowKind::Lifetime) => (pb::WindowKind::Lifetime, 0),
        None => (pb::WindowKind::Unspecified, 0),
    };
    let frequency = match document.frequency {
        Some(Frequency::Monthly) => pb::EvaluationFrequency::Monthly,
        Some(Frequency::Quarterly) => pb::EvaluationFrequency::Quarterly,
        Some(Frequency::Yearly) => pb::EvaluationFrequency::Yearly,
        None => pb::EvaluationFrequency::Unspecified,
    };
    pb::PolicyRules {
        tiers: document
            .tiers
            .into_iter()
            .map(|rule| pb::TierRule {
                tier_code: rule.tier_code,
                requirements: rule
                    .requirements
                    .into_iter()
                    .map(|(metric, threshold)| pb::Requirement {
                        metric: metric
                            .map_or(pb::MetricKind::Unspecified, metric_to_proto)
                            .into(),
                        threshold,
                    })
                    .collect(),
                points_earn_rate_bps: rule.points_earn_rate_bps,
            })
            .collect(),
        window: Some(pb::QualificationWindow {
            kind: kind.into(),
            rolling_months,
        }),
        time_zone: document.time_zone,
        evaluation_schedule: Some(pb::EvaluationSchedule {
            frequency: frequency.into(),
            day_of_month: document.day_of_month,
            month_of_year: document.month_of_year,
            local_hour: document.local_hour,
            local_minute: document.local_minute,
        }),
        grace_months: document.grace_months,
        max_levels_dropped: document.max_levels_dropped,
        lifecycle: Some(pb::LifecycleSettings {
            new_days: document.new_days,
            at_risk_days: document.at_risk_days,
            dormant_days: document.dormant_days,
        }),
        rfm: None,
        value_model: None,
    }
}

pub(crate) fn status_from_proto(value: i32) -> Option<PolicyStatus> {
    match pb::PolicyStatus::try_from(value).ok()? {
        pb::PolicyStatus::Draft => Some(PolicyStatus::Draft),
        pb::PolicyStatus::Active => Some(PolicyStatus::Active),
        pb::PolicyStatus::Retired => Some(PolicyStatus::Retired),
        pb::PolicyStatus::Unspecified => None,
    }
}

pub(crate) fn policy_to_proto(policy: PolicyVersion) -> pb::PolicyVersion {
    pb::PolicyVersion {
        id: policy.id.to_string(),
        program_id: policy.program_id.to_string(),
        version: policy.version,
        status: match policy.status {
            PolicyStatus::Draft => pb::PolicyStatus::Draft,
            PolicyStatus::Active => pb::PolicyStatus::Active,
            PolicyStatus::Retired => pb::PolicyStatus::Retired,
        }
        .into(),
        rules: Some(policy_rules_to_proto(policy.document)),
        description: policy.description,
        revision: policy.revision,
        created_by: policy.created_by,
        created_at: Some(timestamp(policy.created_at)),
        updated_at: Some(timestamp(policy.updated_at)),
        activated_by: policy.activated_by,
        activated_at: policy.activated_at.map(timestamp),
        activation_run_id: None,
        retired_by: policy.retired_by,
        retired_at: policy.retired_at.map(timestamp),
    }
}

pub(crate) fn run_to_proto(run: EvaluationRun) -> pb::EvaluationRun {
    let duration = run.finished_at.map(|finished| {
        let elapsed = finished - run.started_at;
        prost_types::Duration {
            seconds: elapsed.num_seconds(),
            nanos: i32::try_from(elapsed.subsec_nanos()).unwrap_or(0),
        }
    });
    let count = |key: &str| {
        run.summary
            .get(key)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    pb::EvaluationRun {
        id: run.id.to_string(),
        program_id: run.program_id.to_string(),
        policy_version_id: run.policy_version_id.to_string(),
        policy_version: run.policy_version,
        trigger: match run.trigger {
            RunTrigger::Schedule => pb::EvaluationTrigger::Scheduled,
            RunTrigger::Manual => pb::EvaluationTrigger::Manual,
            RunTrigger::PolicyActivation => pb::EvaluationTrigger::PolicyActivation,
        }
        .into(),
        status: match run.status {
            RunStatus::Running => pb::EvaluationRunStatus::Running,
            RunStatus::Succeeded => pb::EvaluationRunStatus::Succeeded,
            RunStatus::Failed => pb::EvaluationRunStatus::Failed,
        }
        .into(),
        requested_by: run.requested_by.clone(),
        created_at: Some(timestamp(run.started_at)),
        started_at: Some(timestamp(run.started_at)),
        finished_at: run.finished_at.map(timestamp),
        duration,
        members_evaluated: count("members_evaluated"),
        counts_before: Vec::new(),
        counts_after: Vec::new(),
        upgrades: count("upgrades"),
        downgrades: count("downgrades"),
        error_message: run.error.unwrap_or_default(),
        cut_points_version: 0,
    }
}
