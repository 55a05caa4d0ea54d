//! `tierline tiers get` for a person: a short card instead of protobuf field paths. The tier
//! and since when (in the program's time zone), the window and its totals, what is missing for
//! the next tier, whether the tier is kept at the next evaluation and when that is, and the
//! benefits; money with the currency's minor unit and digit grouping. `--json` keeps the
//! protobuf JSON.

use chrono_tz::Tz;
use tierline_proto::scoring::v1 as pb;

use super::format::{grouped, local, metric_amount as value, money, word};

fn missing(gaps: &[pb::RequirementGap], currency: &str) -> Vec<String> {
    gaps.iter()
        .filter(|gap| gap.missing > 0)
        .filter_map(|gap| {
            let requirement = gap.requirement.as_ref()?;
            Some(value(requirement.metric, gap.missing, currency))
        })
        .collect()
}

fn code(tier: Option<&pb::TierRef>) -> String {
    tier.map_or_else(|| "-".to_owned(), |tier| tier.code.clone())
}

/// The card's lines for a customer's tier in a program of `currency` living in `zone`.
pub(super) fn card(
    tier: &pb::CustomerTier,
    customer: &str,
    currency: &str,
    zone: Tz,
) -> Vec<String> {
    let mut lines = vec![format!("{customer}: {}", code(tier.tier.as_ref()))];
    lines.push(format!("  since      {}", local(tier.since.as_ref(), zone)));
    if let Some(manual) = &tier.tier_override {
        lines.push(format!(
            "  override   {} until {} by {} ({}); computed tier {}",
            code(manual.tier.as_ref()),
            local(manual.expires_at.as_ref(), zone),
            manual.operator_name,
            manual.reason,
            code(manual.computed_tier.as_ref()),
        ));
    }
    let window = tier.window.as_ref();
    let metrics = tier.metrics.unwrap_or_default();
    lines.push(format!(
        "  window     {} to {}: {} net spend, {} purchases, {} points",
        local(window.and_then(|w| w.start.as_ref()), zone),
        local(window.and_then(|w| w.end.as_ref()), zone),
        money(metrics.net_spend_minor, currency),
        metrics.purchase_count,
        grouped(&metrics.points.to_string()),
    ));
    match &tier.next_tier {
        Some(next) => {
            let needs = missing(&next.gaps, currency);
            lines.push(if needs.is_empty() {
                format!(
                    "  next tier  {}: every requirement met",
                    code(next.tier.as_ref())
                )
            } else {
                format!(
                    "  next tier  {}: {} more",
                    code(next.tier.as_ref()),
                    needs.join(" and ")
                )
            });
        }
        None => lines.push("  next tier  none: the top of the ladder".to_owned()),
    }
    if let Some(retention) = &tier.retention {
        let when = local(retention.next_evaluation_at.as_ref(), zone);
        let kept = if retention.secured {
            match &retention.grace_until {
                Some(grace) => format!(
                    "kept at the next evaluation ({when}); grace until {}",
                    local(Some(grace), zone)
                ),
                None => format!("kept at the next evaluation ({when})"),
            }
        } else {
            let needs = missing(&retention.gaps, currency);
            format!(
                "at risk at the next evaluation ({when}): {} more to keep it, or down to {}",
                needs.join(" and "),
                code(retention.lowest_possible_tier.as_ref())
            )
        };
        lines.push(format!("  keeps      {kept}"));
    }
    let benefits: Vec<String> = tier
        .benefits
        .iter()
        .map(|benefit| format!("{} ({})", benefit.code, benefit.description))
        .collect();
    lines.push(format!(
        "  benefits   {}",
        if benefits.is_empty() {
            "none".to_owned()
        } else {
            benefits.join(", ")
        }
    ));
    lines
}

fn segment(value: Option<i32>) -> String {
    value
        .and_then(|v| pb::RfmSegment::try_from(v).ok())
        .map_or_else(
            || "-".to_owned(),
            |segment| word(segment.as_str_name(), "RFM_SEGMENT_"),
        )
}

/// The card of a customer's scores: RFM, segment, lifecycle, and the value model's figures.
pub(super) fn scores_card(scores: &pb::CustomerScores, customer: &str, zone: Tz) -> Vec<String> {
    let shown_money = |money: Option<&tierline_proto::common::v1::Money>| {
        money.map_or_else(
            || "-".to_owned(),
            |money| self::money(money.amount_minor, &money.currency),
        )
    };
    let score = |value: Option<i32>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut lines = vec![
        format!(
            "{customer}: {} ({})",
            segment(scores.segment),
            pb::LifecycleState::try_from(scores.lifecycle)
                .map(|state| word(state.as_str_name(), "LIFECYCLE_STATE_"))
                .unwrap_or_default()
        ),
        format!(
            "  RFM        R {} F {} M {}: last bought {} days ago, {} purchases and {} in the window",
            score(scores.r_score),
            score(scores.f_score),
            score(scores.m_score),
            scores
                .recency_days
                .map_or_else(|| "-".to_owned(), |d| d.to_string()),
            scores.frequency,
            shown_money(scores.monetary.as_ref()),
        ),
        format!(
            "  history    {} spent in all",
            shown_money(scores.historic_value.as_ref())
        ),
    ];
    match scores.probability_alive {
        Some(alive) => {
            let purchases: Vec<String> = scores
                .expected_purchases
                .iter()
                .map(|e| format!("{:.1} in {} days", e.purchases, e.days))
                .collect();
            lines.push(format!(
                "  value      {:.0} % likely still a customer; expected purchases {}",
                alive * 100.0,
                purchases.join(", ")
            ));
            lines.push(format!(
                "             {} a purchase, {} over {} months (model v{})",
                shown_money(scores.expected_spend_per_purchase.as_ref()),
                shown_money(scores.predicted_value.as_ref()),
                scores.prediction_horizon_months,
                scores.value_model_version
            ));
        }
        None => {
            lines.push("  value      none yet (no purchase, or no value model fitted)".to_owned())
        }
    }
    lines.push(format!(
        "  computed   {}",
        local(scores.computed_at.as_ref(), zone)
    ));
    lines
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use tierline_proto::prost_types::Timestamp;

    use super::*;

    #[test]
    fn a_card_says_the_tier_the_gap_and_what_keeps_it_in_the_programs_zone() {
        let seoul: Tz = "Asia/Seoul".parse().expect("zone");
        let at = |text: &str| {
            let instant = DateTime::parse_from_rfc3339(text).expect("time");
            Some(Timestamp {
                seconds: instant.timestamp(),
                nanos: 0,
            })
        };
        let tier_ref = |code: &str| pb::TierRef {
            code: code.into(),
            ..Default::default()
        };
        let gap = |metric: pb::MetricKind, missing| pb::RequirementGap {
            requirement: Some(pb::Requirement {
                metric: metric.into(),
                threshold: 0,
            }),
            current: 0,
            missing,
        };
        let tier = pb::CustomerTier {
            tier: Some(tier_ref("VIP")),
            since: at("2026-11-26T05:30:00Z"),
            window: Some(tierline_proto::common::v1::TimeRange {
                start: at("2025-11-30T15:00:00Z"),
                end: at("2026-11-30T15:00:00Z"),
            }),
            metrics: Some(pb::MetricValues {
                net_spend_minor: 1_082_400,
                points: 0,
                purchase_count: 9,
            }),
            next_tier: Some(pb::NextTierGap {
                tier: Some(tier_ref("VVIP")),
                gaps: vec![
                    gap(pb::MetricKind::NetSpend, 917_600),
                    gap(pb::MetricKind::PurchaseCount, 1),
                ],
            }),
            retention: Some(pb::TierRetention {
                next_evaluation_at: at("2026-11-30T18:00:00Z"),
                secured: true,
                ..Default::default()
            }),
            benefits: vec![pb::Benefit {
                code: "VIP_GIFT".into(),
                description: "a VIP gift".into(),
            }],
            ..Default::default()
        };
        let lines = card(&tier, "demo-00042", "KRW", seoul);
        assert_eq!(
            lines,
            [
                "demo-00042: VIP",
                "  since      2026-11-26 14:30 KST",
                "  window     2025-12-01 00:00 KST to 2026-12-01 00:00 KST: 1,082,400 KRW net spend, 9 purchases, 0 points",
                "  next tier  VVIP: 917,600 KRW net spend and 1 purchases more",
                "  keeps      kept at the next evaluation (2026-12-01 03:00 KST)",
                "  benefits   VIP_GIFT (a VIP gift)",
            ]
        );
    }
}
