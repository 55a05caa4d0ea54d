//! Conversions between protobuf messages and domain types. No rules live here: inputs are
//! carried over as sent and validated by the domain.

use chrono::{DateTime, Utc};
use tierline_proto::{common::v1 as common, prost_types, scoring::v1 as pb};

use crate::domain::{
    decision::{Reason, RequirementGap},
    lookup::{TierView, range_bounds},
    policy::PolicyRules,
    policy::{Frequency, Metric, PolicyInput, TierRuleInput, WindowKind},
    program::{Benefit, Program, ProgramInput, Scope, Tier},
    service::Explanation,
    state::HistoryRecord,
    versions::{EvaluationRun, PolicyStatus, PolicyVersion, RunStatus, RunTrigger},
    window::{MonthRange, Totals},
};

pub(crate) use tierline_proto::time::{datetime, timestamp};

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
    let window_kind = pb::WindowKind::try_from(window.kind).unwrap_or(pb::WindowKind::Unspecified);
    let schedule = rules.evaluation_schedule.unwrap_or_default();
    let lifecycle = rules.lifecycle.unwrap_or_default();
    let rfm = rules.rfm.unwrap_or_default();
    let value_model = rules.value_model.unwrap_or_default();
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
        window: match window_kind {
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
        stray_rolling_months: match window_kind {
            pb::WindowKind::RollingMonths | pb::WindowKind::Unspecified => 0,
            _ => window.rolling_months,
        },
        rfm_window_months: rfm.window_months,
        rfm_min_population: rfm.min_population,
        value_horizon_months: value_model.horizon_months,
        value_purchase_days: value_model.expected_purchase_days,
        value_discount_bps: value_model.monthly_discount_bps,
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
        value_model: Some(pb::ValueModelSettings {
            horizon_months: document.value_horizon_months,
            expected_purchase_days: document.value_purchase_days,
            monthly_discount_bps: document.value_discount_bps,
        }),
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

fn tier_counts(value: Option<&serde_json::Value>) -> Vec<pb::TierCount> {
    value
        .and_then(serde_json::Value::as_array)
        .map(|counts| {
            counts
                .iter()
                .map(|count| pb::TierCount {
                    tier_code: count
                        .get("tier_code")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    customers: count
                        .get("customers")
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn run_to_proto(run: EvaluationRun) -> pb::EvaluationRun {
    let duration = run.finished_at.map(|finished| {
        let elapsed = finished - run.started_at;
        prost_types::Duration {
            seconds: elapsed.num_seconds(),
            nanos: elapsed.subsec_nanos(),
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
        members_evaluated: run.progress.evaluated,
        counts_before: tier_counts(run.counts_before.as_ref()),
        counts_after: tier_counts(run.summary.get("counts_after")),
        upgrades: run.progress.upgrades,
        downgrades: run.progress.downgrades,
        resumed: run.resumed,
        error_message: run.error.unwrap_or_default(),
        cut_points_version: count("cut_points_version"),
        value_model_version: count("value_model_version"),
        feed_caught_up_to: run
            .summary
            .pointer("/feed/caught_up_to")
            .and_then(|value| serde_json::from_value::<DateTime<Utc>>(value.clone()).ok())
            .map(timestamp),
        feed_wait: run
            .summary
            .pointer("/feed/waited_ms")
            .and_then(serde_json::Value::as_u64)
            .map(|millis| prost_types::Duration {
                seconds: i64::try_from(millis / 1000).unwrap_or(i64::MAX),
                nanos: i32::try_from((millis % 1000) * 1_000_000).unwrap_or(0),
            }),
        feed_complete: run
            .summary
            .pointer("/feed/complete")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        history_complete: run
            .summary
            .pointer("/backfill/complete")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        history_events: run
            .summary
            .pointer("/backfill/events")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
    }
}

fn tier_ref(program: &Program, rank: u32) -> pb::TierRef {
    let tier = program.tier(rank);
    pb::TierRef {
        code: tier.map(|t| t.code.clone()).unwrap_or_default(),
        name: tier.map(|t| t.name.clone()).unwrap_or_default(),
        rank: i32::try_from(rank).unwrap_or(i32::MAX),
    }
}

fn metrics(totals: &Totals) -> pb::MetricValues {
    pb::MetricValues {
        net_spend_minor: totals.net_spend_minor,
        points: totals.points,
        purchase_count: totals.purchases,
    }
}

fn gaps(gaps: &[RequirementGap]) -> Vec<pb::RequirementGap> {
    gaps.iter()
        .map(|gap| pb::RequirementGap {
            requirement: Some(pb::Requirement {
                metric: metric_to_proto(gap.metric).into(),
                threshold: gap.threshold,
            }),
            current: gap.current,
            missing: gap.missing,
        })
        .collect()
}

fn time_range(range: MonthRange, rules: &PolicyRules) -> common::TimeRange {
    let (start, end) = range_bounds(range, rules);
    common::TimeRange {
        start: start.map(timestamp),
        end: Some(timestamp(end)),
    }
}

pub(crate) fn tier_to_proto(
    program: &Program,
    rules: &PolicyRules,
    view: TierView,
) -> pb::CustomerTier {
    let benefits = program
        .tier(view.rank)
        .map(|tier| {
            tier.benefits
                .iter()
                .map(|b| pb::Benefit {
                    code: b.code.clone(),
                    description: b.description.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let retention = &view.retention;
    let retention = Some(pb::TierRetention {
        next_evaluation_at: Some(timestamp(retention.evaluation_at)),
        window_at_next_evaluation: Some(time_range(retention.window, rules)),
        gaps: gaps(&retention.requirements),
        secured: retention.secured,
        grace_until: retention.grace_until.map(timestamp),
        lowest_possible_tier: retention
            .lowest_possible_rank
            .map(|rank| tier_ref(program, rank)),
    });
    pb::CustomerTier {
        customer_id: view.customer_id.to_string(),
        program_id: program.id.to_string(),
        tier: Some(tier_ref(program, view.rank)),
        since: Some(timestamp(view.since)),
        benefits,
        window: Some(time_range(view.window, rules)),
        metrics: Some(metrics(&view.totals)),
        next_tier: view
            .next
            .as_ref()
            .map(|(rank, requirement_gaps)| pb::NextTierGap {
                tier: Some(tier_ref(program, *rank)),
                gaps: gaps(requirement_gaps),
            }),
        retention,
        tier_override: view.manual.as_ref().map(|manual| pb::TierOverride {
            tier: Some(tier_ref(program, manual.rank)),
            expires_at: Some(timestamp(manual.until)),
            reason: manual.reason.clone(),
            operator_name: manual.operator.clone(),
            set_at: Some(timestamp(manual.set_at)),
            computed_tier: Some(tier_ref(program, view.earned_rank)),
        }),
        policy_version: view.policy_version,
        version: view.version,
    }
}

/// Up, down, or neither (an audited override that left the tier shown as it was).
fn direction(from_rank: u32, to_rank: u32) -> pb::TierChangeDirection {
    match to_rank.cmp(&from_rank) {
        std::cmp::Ordering::Greater => pb::TierChangeDirection::Upgrade,
        std::cmp::Ordering::Less => pb::TierChangeDirection::Downgrade,
        std::cmp::Ordering::Equal => pb::TierChangeDirection::Unspecified,
    }
}

fn reason_to_proto(reason: Reason) -> pb::TierChangeReason {
    match reason {
        Reason::Qualified => pb::TierChangeReason::Qualified,
        Reason::Evaluation => pb::TierChangeReason::Evaluation,
        Reason::GraceExpired => pb::TierChangeReason::GraceExpired,
        Reason::Override => pb::TierChangeReason::Override,
        Reason::OverrideExpired => pb::TierChangeReason::OverrideExpired,
        Reason::PolicyChange => pb::TierChangeReason::PolicyChange,
    }
}

pub(crate) fn history_to_proto(program: &Program, record: HistoryRecord) -> pb::TierHistoryRecord {
    pb::TierHistoryRecord {
        id: record.id.to_string(),
        customer_id: record.customer_id.to_string(),
        program_id: record.program_id.to_string(),
        from_tier: Some(tier_ref(program, record.from_rank)),
        to_tier: Some(tier_ref(program, record.to_rank)),
        direction: direction(record.from_rank, record.to_rank).into(),
        reason: reason_to_proto(record.reason).into(),
        occurred_at: Some(timestamp(record.occurred_at)),
        policy_version_id: record
            .policy_version_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        policy_version: record.policy_version.unwrap_or_default(),
        window: record.window.map(|window| common::TimeRange {
            start: window.start.map(timestamp),
            end: Some(timestamp(window.end)),
        }),
        metrics: Some(metrics(&record.totals)),
        evaluation_run_id: record.evaluation_run_id.map(|id| id.to_string()),
        activity_id: record.activity_id.map(|id| id.to_string()),
        operator_name: record.operator_name,
        operator_reason: record.operator_reason,
        override_expires_at: record.override_expires_at.map(timestamp),
    }
}

pub(crate) fn explanation_to_proto(explanation: Explanation) -> pb::ExplainTierResponse {
    let Explanation {
        program,
        rules,
        view,
        trail,
        activities,
        activities_total,
    } = explanation;
    let currency = program.currency.clone();
    pb::ExplainTierResponse {
        decision_trail: trail
            .into_iter()
            .map(|record| history_to_proto(&program, record))
            .collect(),
        activities: activities
            .into_iter()
            .map(|purchase| {
                let (net_spend, points, count) = purchase.contribution();
                pb::CountedActivity {
                    activity_id: purchase.activity_id.to_string(),
                    kind: pb::ActivityKind::Purchase.into(),
                    occurred_at: Some(timestamp(purchase.occurred_at)),
                    amount: Some(common::Money {
                        amount_minor: purchase.amount_minor,
                        currency: currency.clone(),
                    }),
                    brand: purchase.brand,
                    sales_channel: purchase.sales_channel,
                    refunded_purchase_id: String::new(),
                    net_spend_delta_minor: net_spend,
                    points_delta: points,
                    purchase_count_delta: count,
                }
            })
            .collect(),
        activities_total,
        current: Some(tier_to_proto(&program, &rules, view)),
    }
}

pub(crate) fn tier_change_to_proto(
    cursor: String,
    change: crate::domain::tier_feed::TierChange,
) -> pb::TierFeedEvent {
    let program = change.program;
    match change.item {
        crate::domain::state::TierFeedItem::Tier(record) => pb::TierFeedEvent {
            cursor,
            customer_id: record.customer_id.to_string(),
            program_id: record.program_id.to_string(),
            occurred_at: Some(timestamp(record.occurred_at)),
            change: Some(pb::tier_feed_event::Change::TierChanged(pb::TierChanged {
                from_tier: Some(tier_ref(&program, record.from_rank)),
                to_tier: Some(tier_ref(&program, record.to_rank)),
                direction: direction(record.from_rank, record.to_rank).into(),
                reason: reason_to_proto(record.reason).into(),
                history_record_id: record.id.to_string(),
            })),
        },
        crate::domain::state::TierFeedItem::Lifecycle(change) => pb::TierFeedEvent {
            cursor,
            customer_id: change.customer_id.to_string(),
            program_id: change.program_id.to_string(),
            occurred_at: Some(timestamp(change.occurred_at)),
            change: Some(pb::tier_feed_event::Change::LifecycleChanged(
                pb::LifecycleChanged {
                    from_state: change
                        .from
                        .map_or(pb::LifecycleState::Unspecified, lifecycle_to_proto)
                        .into(),
                    to_state: lifecycle_to_proto(change.to).into(),
                    days_since_last_purchase: change.days_since_last_purchase,
                },
            )),
        },
    }
}

fn segment_to_proto(segment: crate::domain::scores::Segment) -> pb::RfmSegment {
    use crate::domain::scores::Segment;
    match segment {
        Segment::Champions => pb::RfmSegment::Champions,
        Segment::Loyal => pb::RfmSegment::Loyal,
        Segment::PotentialLoyalist => pb::RfmSegment::PotentialLoyalist,
        Segment::New => pb::RfmSegment::New,
        Segment::Promising => pb::RfmSegment::Promising,
        Segment::NeedAttention => pb::RfmSegment::NeedAttention,
        Segment::AboutToSleep => pb::RfmSegment::AboutToSleep,
        Segment::AtRisk => pb::RfmSegment::AtRisk,
        Segment::CannotLose => pb::RfmSegment::CannotLose,
        Segment::Hibernating => pb::RfmSegment::Hibernating,
        Segment::Lost => pb::RfmSegment::Lost,
    }
}

fn lifecycle_to_proto(lifecycle: crate::domain::scores::Lifecycle) -> pb::LifecycleState {
    use crate::domain::scores::Lifecycle;
    match lifecycle {
        Lifecycle::New => pb::LifecycleState::New,
        Lifecycle::Active => pb::LifecycleState::Active,
        Lifecycle::AtRisk => pb::LifecycleState::AtRisk,
        Lifecycle::Dormant => pb::LifecycleState::Dormant,
    }
}

fn proto_duration(duration: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(duration).unwrap_or_default()
}

pub(crate) fn scores_response(scores: crate::domain::service::Scores) -> pb::GetScoresResponse {
    let crate::domain::service::Scores {
        program,
        value_settings,
        value_model_version,
        customers,
        missing,
    } = scores;
    pb::GetScoresResponse {
        scores: customers
            .into_iter()
            .map(|(view, value)| {
                scores_to_proto(&program, &value_settings, value_model_version, view, value)
            })
            .collect(),
        not_found_customer_ids: missing.into_iter().map(|id| id.to_string()).collect(),
    }
}

fn scores_to_proto(
    program: &Program,
    value_settings: &crate::domain::policy::ValueModelSettings,
    value_model_version: i64,
    view: crate::domain::scores::ScoreView,
    value: Option<crate::domain::value::CustomerValue>,
) -> pb::CustomerScores {
    let bought = view.values.recency_days.is_some();
    let money = |amount_minor: i64| common::Money {
        amount_minor,
        currency: program.currency.clone(),
    };
    pb::CustomerScores {
        customer_id: view.customer_id.to_string(),
        program_id: program.id.to_string(),
        recency_days: view
            .values
            .recency_days
            .map(|days| i32::try_from(days).unwrap_or(i32::MAX)),
        frequency: view.values.frequency,
        monetary: Some(money(view.values.monetary)),
        r_score: bought.then_some(i32::from(view.scores.0)),
        f_score: bought.then_some(i32::from(view.scores.1)),
        m_score: bought.then_some(i32::from(view.scores.2)),
        segment: view.segment.map(|segment| segment_to_proto(segment).into()),
        lifecycle: lifecycle_to_proto(view.lifecycle).into(),
        historic_value: Some(money(view.historic_value)),
        predicted_value: value
            .as_ref()
            .and_then(|value| value.predicted_value_minor)
            .map(money),
        predicted_purchases: value.as_ref().map(|value| value.horizon_purchases),
        probability_alive: value.as_ref().map(|value| value.probability_alive),
        prediction_horizon_months: i32::try_from(value_settings.horizon_months).unwrap_or(0),
        cut_points_version: view.cut_points_version,
        computed_at: Some(timestamp(view.computed_at)),
        expected_purchases: value
            .as_ref()
            .map(|value| {
                value
                    .expected_purchases
                    .iter()
                    .map(|(days, purchases)| pb::ExpectedPurchases {
                        days: i32::try_from(*days).unwrap_or(i32::MAX),
                        purchases: *purchases,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        expected_spend_per_purchase: value
            .as_ref()
            .and_then(|value| value.expected_spend_minor)
            .map(|spend| money(spend.round() as i64)),
        value_model_version,
    }
}

pub(crate) fn value_model_to_proto(model: crate::domain::value::ValueModel) -> pb::ValueModel {
    let fitted = model.fitted;
    pb::ValueModel {
        program_id: model.program_id.to_string(),
        version: model.version,
        time_unit: "days".into(),
        bg_nbd: Some(pb::BgNbdParameters {
            r: fitted.bg_nbd.r,
            alpha: fitted.bg_nbd.alpha,
            a: fitted.bg_nbd.a,
            b: fitted.bg_nbd.b,
        }),
        bg_nbd_log_likelihood: fitted.bg_nbd_log_likelihood,
        customers: model.customers,
        gamma_gamma: fitted.gamma_gamma.map(|spend| pb::GammaGammaParameters {
            p: spend.p,
            q: spend.q,
            gamma: spend.gamma,
        }),
        gamma_gamma_log_likelihood: fitted.gamma_gamma_log_likelihood,
        repeat_customers: model.repeat_customers,
        as_of: Some(timestamp(model.as_of)),
        summary_duration: Some(proto_duration(model.summary_duration)),
        fit_duration: Some(proto_duration(model.fit_duration)),
        evaluation_run_id: model
            .evaluation_run_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    }
}

fn range(min: Option<i64>, max: Option<i64>) -> crate::domain::audience::Range {
    crate::domain::audience::Range { min, max }
}

fn score_range(value: Option<pb::ScoreRange>) -> crate::domain::audience::Range {
    value.map_or_else(Default::default, |r| {
        range(r.min.map(i64::from), r.max.map(i64::from))
    })
}

fn segment_from_proto(value: i32) -> Option<crate::domain::scores::Segment> {
    use crate::domain::scores::Segment;
    Some(match pb::RfmSegment::try_from(value).ok()? {
        pb::RfmSegment::Champions => Segment::Champions,
        pb::RfmSegment::Loyal => Segment::Loyal,
        pb::RfmSegment::PotentialLoyalist => Segment::PotentialLoyalist,
        pb::RfmSegment::New => Segment::New,
        pb::RfmSegment::Promising => Segment::Promising,
        pb::RfmSegment::NeedAttention => Segment::NeedAttention,
        pb::RfmSegment::AboutToSleep => Segment::AboutToSleep,
        pb::RfmSegment::AtRisk => Segment::AtRisk,
        pb::RfmSegment::CannotLose => Segment::CannotLose,
        pb::RfmSegment::Hibernating => Segment::Hibernating,
        pb::RfmSegment::Lost => Segment::Lost,
        pb::RfmSegment::Unspecified => return None,
    })
}

fn lifecycle_from_proto(value: i32) -> Option<crate::domain::scores::Lifecycle> {
    use crate::domain::scores::Lifecycle;
    Some(match pb::LifecycleState::try_from(value).ok()? {
        pb::LifecycleState::New => Lifecycle::New,
        pb::LifecycleState::Active => Lifecycle::Active,
        pb::LifecycleState::AtRisk => Lifecycle::AtRisk,
        pb::LifecycleState::Dormant => Lifecycle::Dormant,
        pb::LifecycleState::Unspecified => return None,
    })
}

pub(crate) fn audience_rule(rule: pb::AudienceRule) -> crate::domain::audience::AudienceRuleInput {
    let net_spend = rule
        .net_spend_minor
        .map_or_else(Default::default, |r| range(r.min, r.max));
    let days = rule
        .days_since_last_purchase
        .map_or_else(Default::default, |r| range(r.min, r.max));
    crate::domain::audience::AudienceRuleInput {
        tier_codes: rule.tier_codes,
        segments: rule.segments.into_iter().map(segment_from_proto).collect(),
        lifecycles: rule
            .lifecycle_states
            .into_iter()
            .map(lifecycle_from_proto)
            .collect(),
        scores: [
            score_range(rule.r_score),
            score_range(rule.f_score),
            score_range(rule.m_score),
        ],
        net_spend,
        days_since_last_purchase: days,
        probability_alive: rule.probability_alive.map_or_else(Default::default, |r| {
            crate::domain::audience::FractionRange {
                min: r.min,
                max: r.max,
            }
        }),
        predicted_value: rule
            .predicted_value_minor
            .map_or_else(Default::default, |r| range(r.min, r.max)),
    }
}

pub(crate) fn audience_member_to_proto(
    program: &Program,
    member: crate::domain::audience::AudienceMember,
) -> pb::AudienceMember {
    pb::AudienceMember {
        customer_id: member.customer_id.to_string(),
        tier_code: program
            .tier(member.rank)
            .map(|t| t.code.clone())
            .unwrap_or_default(),
        tier_rank: i32::try_from(member.rank).unwrap_or(0),
        segment: member
            .segment
            .map(|segment| segment_to_proto(segment).into()),
        lifecycle: lifecycle_to_proto(member.lifecycle).into(),
    }
}

fn share_bps(part: i64, total: i64) -> i32 {
    if total <= 0 {
        return 0;
    }
    i32::try_from(i128::from(part.max(0)) * 10_000 / i128::from(total)).unwrap_or(10_000)
}

pub(crate) fn simulation_to_proto(
    simulation: crate::domain::service::Simulation,
) -> pb::SimulatePolicyResponse {
    let program = &simulation.program;
    let cells = &simulation.cells;
    let total_current: i64 = cells.iter().map(|c| c.current_spend).sum();
    let total_simulated: i64 = cells.iter().map(|c| c.simulated_spend).sum();
    let tiers = program
        .tiers
        .iter()
        .map(|tier| {
            let current: Vec<_> = cells
                .iter()
                .filter(|c| c.current_rank == tier.rank)
                .collect();
            let simulated: Vec<_> = cells
                .iter()
                .filter(|c| c.simulated_rank == tier.rank)
                .collect();
            pb::TierSimulation {
                tier: Some(tier_ref(program, tier.rank)),
                current_customers: current.iter().map(|c| c.customers).sum(),
                simulated_customers: simulated.iter().map(|c| c.customers).sum(),
                current_spend_share_bps: share_bps(
                    current.iter().map(|c| c.current_spend).sum(),
                    total_current,
                ),
                simulated_spend_share_bps: share_bps(
                    simulated.iter().map(|c| c.simulated_spend).sum(),
                    total_simulated,
                ),
            }
        })
        .collect();
    let mut migrations: Vec<&crate::domain::ports::SimulationCell> =
        cells.iter().filter(|c| c.customers > 0).collect();
    migrations.sort_by_key(|c| (c.current_rank, c.simulated_rank));
    pb::SimulatePolicyResponse {
        members: cells.iter().map(|c| c.customers).sum(),
        tiers,
        migrations: migrations
            .into_iter()
            .map(|c| pb::TierMigration {
                from_tier_code: tier_ref(program, c.current_rank).code,
                to_tier_code: tier_ref(program, c.simulated_rank).code,
                customers: c.customers,
            })
            .collect(),
        upgrades: cells
            .iter()
            .filter(|c| c.simulated_rank > c.current_rank)
            .map(|c| c.customers)
            .sum(),
        downgrades: cells
            .iter()
            .filter(|c| c.simulated_rank < c.current_rank)
            .map(|c| c.customers)
            .sum(),
        as_of: Some(timestamp(simulation.as_of)),
        active_policy_version: simulation.active_version.unwrap_or(0),
    }
}

pub(crate) fn run_status_from_proto(value: i32) -> Option<RunStatus> {
    match pb::EvaluationRunStatus::try_from(value).ok()? {
        pb::EvaluationRunStatus::Running | pb::EvaluationRunStatus::Pending => {
            Some(RunStatus::Running)
        }
        pb::EvaluationRunStatus::Succeeded => Some(RunStatus::Succeeded),
        pb::EvaluationRunStatus::Failed => Some(RunStatus::Failed),
        pb::EvaluationRunStatus::Unspecified => None,
    }
}
