//! `tierline tiers explain` for a person: the decision trail as sentences ("upgraded from GREEN
//! to VVIP on 2026-11-26 14:30 KST: net spend 1,082,400 KRW ≥ 1,000,000 KRW and 11 purchases ≥
//! 10, policy v1, on a purchase"), then a table of the activities that counted. `--json` keeps
//! the protobuf JSON.

use std::collections::HashMap;

use chrono_tz::Tz;
use tierline_proto::scoring::v1 as pb;

use super::format::{local, money};

/// The requirements of each tier code under one policy version.
pub(super) type Ladder = HashMap<String, Vec<pb::Requirement>>;

/// The ladder of a policy's rules.
pub(super) fn ladder(rules: &pb::PolicyRules) -> Ladder {
    rules
        .tiers
        .iter()
        .map(|rule| (rule.tier_code.clone(), rule.requirements.clone()))
        .collect()
}

fn code(tier: Option<&pb::TierRef>) -> String {
    tier.map_or_else(|| "-".to_owned(), |tier| tier.code.clone())
}

/// One requirement against the value the record kept: `net spend 1,082,400 KRW ≥ 1,000,000 KRW`.
fn compared(requirement: &pb::Requirement, metrics: &pb::MetricValues, currency: &str) -> String {
    let (name, value, threshold) = match pb::MetricKind::try_from(requirement.metric) {
        Ok(pb::MetricKind::NetSpend) => (
            "net spend",
            money(metrics.net_spend_minor, currency),
            money(requirement.threshold, currency),
        ),
        Ok(pb::MetricKind::Points) => (
            "points",
            metrics.points.to_string(),
            requirement.threshold.to_string(),
        ),
        _ => (
            "purchases",
            metrics.purchase_count.to_string(),
            requirement.threshold.to_string(),
        ),
    };
    let actual = match pb::MetricKind::try_from(requirement.metric) {
        Ok(pb::MetricKind::NetSpend) => metrics.net_spend_minor,
        Ok(pb::MetricKind::Points) => metrics.points,
        _ => metrics.purchase_count,
    };
    let sign = if actual >= requirement.threshold {
        "≥"
    } else {
        "<"
    };
    format!("{name} {value} {sign} {threshold}")
}

/// The sentence of one history record; `ladders` by policy version id.
pub(super) fn sentence(
    record: &pb::TierHistoryRecord,
    ladders: &HashMap<String, Ladder>,
    currency: &str,
    zone: Tz,
) -> String {
    let (from, to) = (
        code(record.from_tier.as_ref()),
        code(record.to_tier.as_ref()),
    );
    let when = local(record.occurred_at.as_ref(), zone);
    let up = record.direction == pb::TierChangeDirection::Upgrade as i32;
    let moved = if up { "upgraded" } else { "downgraded" };
    let metrics = record.metrics.unwrap_or_default();
    let ladder = ladders.get(&record.policy_version_id);
    // Upgrades cite the requirements of the tier reached; downgrades those of the tier left.
    let cited = if up { &to } else { &from };
    let because: Vec<String> = ladder
        .and_then(|ladder| ladder.get(cited))
        .map(|requirements| {
            requirements
                .iter()
                .filter(|r| up || !compared(r, &metrics, currency).contains(" ≥ "))
                .map(|r| compared(r, &metrics, currency))
                .collect()
        })
        .unwrap_or_default();
    let policy = format!("policy v{}", record.policy_version);
    let with_reasons = |head: String| {
        if because.is_empty() {
            format!("{head} ({policy})")
        } else {
            format!("{head}: {}, {policy}", because.join(" and "))
        }
    };
    match pb::TierChangeReason::try_from(record.reason) {
        Ok(pb::TierChangeReason::Qualified) => {
            with_reasons(format!("{moved} from {from} to {to} on {when}")) + ", on a purchase"
        }
        Ok(pb::TierChangeReason::Evaluation) => with_reasons(format!(
            "{moved} from {from} to {to} at the evaluation of {when}"
        )),
        Ok(pb::TierChangeReason::GraceExpired) => with_reasons(format!(
            "{moved} from {from} to {to} at the evaluation of {when}, when the grace ended"
        )),
        Ok(pb::TierChangeReason::PolicyChange) => with_reasons(format!(
            "{moved} from {from} to {to} on {when}, when policy v{} came into force",
            record.policy_version
        )),
        Ok(pb::TierChangeReason::Override) => format!(
            "set to {to} by {} on {when} until {}: {}",
            record.operator_name.as_deref().unwrap_or("an operator"),
            local(record.override_expires_at.as_ref(), zone),
            record.operator_reason.as_deref().unwrap_or(""),
        ),
        Ok(pb::TierChangeReason::OverrideExpired) => match &record.operator_name {
            Some(operator) => format!(
                "override cleared by {operator} on {when}, back to {to}: {}",
                record.operator_reason.as_deref().unwrap_or("")
            ),
            None => format!("override ended on {when}, back to {to}"),
        },
        _ => format!("{moved} from {from} to {to} on {when}"),
    }
}

/// The rows of the activities table: when, kind, amount, net spend counted, brand, channel.
pub(super) fn activity_rows(
    activities: &[pb::CountedActivity],
    currency: &str,
    zone: Tz,
) -> Vec<Vec<String>> {
    activities
        .iter()
        .map(|activity| {
            vec![
                local(activity.occurred_at.as_ref(), zone),
                pb::ActivityKind::try_from(activity.kind)
                    .map(|kind| {
                        kind.as_str_name()
                            .trim_start_matches("ACTIVITY_KIND_")
                            .to_lowercase()
                    })
                    .unwrap_or_default(),
                activity
                    .amount
                    .as_ref()
                    .map(|amount| money(amount.amount_minor, &amount.currency))
                    .unwrap_or_default(),
                money(activity.net_spend_delta_minor, currency),
                activity.brand.clone(),
                activity.sales_channel.clone(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierline_proto::prost_types::Timestamp;

    #[test]
    fn each_decision_reads_as_a_sentence_with_its_thresholds() {
        let seoul: Tz = "Asia/Seoul".parse().expect("zone");
        let requirement = |metric: pb::MetricKind, threshold| pb::Requirement {
            metric: metric.into(),
            threshold,
        };
        let ladders = HashMap::from([(
            "v1".to_owned(),
            Ladder::from([
                (
                    "VVIP".to_owned(),
                    vec![
                        requirement(pb::MetricKind::NetSpend, 1_000_000),
                        requirement(pb::MetricKind::PurchaseCount, 10),
                    ],
                ),
                (
                    "VIP".to_owned(),
                    vec![requirement(pb::MetricKind::NetSpend, 600_000)],
                ),
            ]),
        )]);
        let tier = |code: &str| pb::TierRef {
            code: code.into(),
            ..Default::default()
        };
        let record = |from: &str, to: &str, up: bool, reason: pb::TierChangeReason, spend| {
            pb::TierHistoryRecord {
                from_tier: Some(tier(from)),
                to_tier: Some(tier(to)),
                direction: if up {
                    pb::TierChangeDirection::Upgrade
                } else {
                    pb::TierChangeDirection::Downgrade
                }
                .into(),
                reason: reason.into(),
                occurred_at: Some(Timestamp {
                    seconds: 1_795_671_000, // 2026-11-26 05:30 UTC
                    nanos: 0,
                }),
                policy_version_id: "v1".into(),
                policy_version: 1,
                metrics: Some(pb::MetricValues {
                    net_spend_minor: spend,
                    points: 0,
                    purchase_count: 11,
                }),
                ..Default::default()
            }
        };
        assert_eq!(
            sentence(
                &record(
                    "VIP",
                    "VVIP",
                    true,
                    pb::TierChangeReason::Qualified,
                    1_082_400
                ),
                &ladders,
                "KRW",
                seoul
            ),
            "upgraded from VIP to VVIP on 2026-11-26 14:30 KST: net spend 1,082,400 KRW ≥ 1,000,000 KRW \
             and purchases 11 ≥ 10, policy v1, on a purchase"
        );
        assert_eq!(
            sentence(
                &record(
                    "VIP",
                    "GREEN",
                    false,
                    pb::TierChangeReason::Evaluation,
                    412_000
                ),
                &ladders,
                "KRW",
                seoul
            ),
            "downgraded from VIP to GREEN at the evaluation of 2026-11-26 14:30 KST: net spend \
             412,000 KRW < 600,000 KRW, policy v1"
        );
    }
}
