//! Programs, policies, evaluation runs and value models for a person: cards and aligned tables
//! instead of protobuf field paths, money in the currency's minor unit, instants in the
//! program's time zone. `--json` keeps the protobuf JSON.

use chrono_tz::Tz;
use tierline_proto::scoring::v1 as pb;

use super::format::{grouped, local, metric_amount, word};

/// A tier's requirements in words: `1,000,000 KRW net spend and 10 purchases`; `-` for none.
fn requirements(rule: &pb::TierRule, currency: &str) -> String {
    if rule.requirements.is_empty() {
        return "-".to_owned();
    }
    rule.requirements
        .iter()
        .map(|requirement| metric_amount(requirement.metric, requirement.threshold, currency))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The window, zone, schedule, grace and drop limit of `rules` in one sentence.
fn rules_summary(rules: &pb::PolicyRules) -> String {
    let window = rules.window.as_ref().map_or_else(
        || "no window".to_owned(),
        |window| match pb::WindowKind::try_from(window.kind) {
            Ok(pb::WindowKind::RollingMonths) => {
                format!("spend over the last {} months", window.rolling_months)
            }
            Ok(pb::WindowKind::CalendarYear) => "spend in the calendar year".to_owned(),
            Ok(pb::WindowKind::MembershipYear) => "spend in the membership year".to_owned(),
            Ok(pb::WindowKind::Lifetime) => "spend since joining".to_owned(),
            _ => "an unknown window".to_owned(),
        },
    );
    let schedule = rules.evaluation_schedule.as_ref().map_or_else(
        || "never evaluated on a schedule".to_owned(),
        |schedule| {
            let at = format!("{:02}:{:02}", schedule.local_hour, schedule.local_minute);
            match pb::EvaluationFrequency::try_from(schedule.frequency) {
                Ok(pb::EvaluationFrequency::Monthly) => {
                    format!("evaluated monthly on day {} at {at}", schedule.day_of_month)
                }
                Ok(pb::EvaluationFrequency::Quarterly) => {
                    format!(
                        "evaluated quarterly on day {} at {at}",
                        schedule.day_of_month
                    )
                }
                Ok(pb::EvaluationFrequency::Yearly) => format!(
                    "evaluated yearly on {}-{:02} at {at}",
                    schedule.month_of_year, schedule.day_of_month
                ),
                _ => "evaluated on an unknown schedule".to_owned(),
            }
        },
    );
    let drops = rules.max_levels_dropped.map_or_else(
        || "any number of levels".to_owned(),
        |levels| {
            format!(
                "at most {levels} level{}",
                if levels == 1 { "" } else { "s" }
            )
        },
    );
    format!(
        "{window} ({}); {schedule}; grace {} months; an evaluation drops {drops}",
        rules.time_zone, rules.grace_months
    )
}

/// Each tier of `program` with what qualifies for it under `rules` (when a policy is known),
/// the points it earns and its benefits.
fn tier_rows(program: &pb::Program, rules: Option<&pb::PolicyRules>) -> Vec<Vec<String>> {
    program
        .tiers
        .iter()
        .map(|tier| {
            let rule =
                rules.and_then(|rules| rules.tiers.iter().find(|r| r.tier_code == tier.code));
            vec![
                tier.rank.to_string(),
                tier.code.clone(),
                tier.name.clone(),
                rule.map_or_else(
                    || "-".to_owned(),
                    |rule| requirements(rule, &program.currency),
                ),
                rule.map_or_else(
                    || "-".to_owned(),
                    |rule| format!("{:.2} %", rule.points_earn_rate_bps as f64 / 100.0),
                ),
                tier.benefits
                    .iter()
                    .map(|benefit| benefit.code.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect()
}

/// The headers of [`program_card`]'s tier table.
pub(super) const TIER_HEADERS: [&str; 6] = [
    "RANK",
    "TIER",
    "NAME",
    "QUALIFIES WITH",
    "POINTS",
    "BENEFITS",
];

/// A program's card: its lines, then its tiers as a table (rows for [`TIER_HEADERS`]).
pub(super) fn program_card(
    program: &pb::Program,
    policy: Option<&pb::PolicyVersion>,
) -> (Vec<String>, Vec<Vec<String>>) {
    let rules = policy.and_then(|policy| policy.rules.as_ref());
    let zone: Tz = rules
        .and_then(|rules| rules.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let scope = program.scope.as_ref().map_or_else(
        || "every purchase".to_owned(),
        |scope| {
            let list = |items: &[String]| {
                if items.is_empty() {
                    "any".to_owned()
                } else {
                    items.join(", ")
                }
            };
            format!(
                "brands {}; channels {}",
                list(&scope.brands),
                list(&scope.sales_channels)
            )
        },
    );
    let mut lines = vec![
        format!(
            "{} ({}), in {}, since {}",
            program.code,
            program.name,
            program.currency,
            local(program.created_at.as_ref(), zone)
        ),
        format!("  id        {}", program.id),
        format!("  counts    {scope}"),
    ];
    match (policy, rules) {
        (Some(policy), Some(rules)) => {
            lines.push(format!(
                "  policy    v{}, active since {}",
                policy.version,
                local(policy.activated_at.as_ref(), zone)
            ));
            lines.push(format!("            {}", rules_summary(rules)));
        }
        _ => lines.push("  policy    none in force yet".to_owned()),
    }
    (lines, tier_rows(program, rules))
}

/// A policy version's card: its lines, then what each tier needs (rows for [`TIER_HEADERS`]).
pub(super) fn policy_card(
    policy: &pb::PolicyVersion,
    program: &pb::Program,
) -> (Vec<String>, Vec<Vec<String>>) {
    let rules = policy.rules.as_ref();
    let zone: Tz = rules
        .and_then(|rules| rules.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let status = pb::PolicyStatus::try_from(policy.status)
        .map(|status| word(status.as_str_name(), "POLICY_STATUS_"))
        .unwrap_or_default();
    let mut lines = vec![
        format!(
            "{} policy v{}: {status} (revision {})",
            program.code, policy.version, policy.revision
        ),
        format!("  id        {}", policy.id),
        format!(
            "  created   {} by {}",
            local(policy.created_at.as_ref(), zone),
            policy.created_by
        ),
    ];
    if let Some(activated_by) = &policy.activated_by {
        lines.push(format!(
            "  activated {} by {activated_by}",
            local(policy.activated_at.as_ref(), zone)
        ));
    }
    if !policy.description.is_empty() {
        lines.push(format!("  about     {}", policy.description));
    }
    if let Some(rules) = rules {
        lines.push(format!("  rules     {}", rules_summary(rules)));
    }
    (lines, tier_rows(program, rules))
}

/// An evaluation run's card: its lines, then the tier counts before and after as rows for
/// `TIER`, `BEFORE`, `AFTER`.
pub(super) fn run_card(run: &pb::EvaluationRun, zone: Tz) -> (Vec<String>, Vec<Vec<String>>) {
    let status = pb::EvaluationRunStatus::try_from(run.status)
        .map(|status| word(status.as_str_name(), "EVALUATION_RUN_STATUS_"))
        .unwrap_or_default();
    let trigger = pb::EvaluationTrigger::try_from(run.trigger)
        .map(|trigger| word(trigger.as_str_name(), "EVALUATION_TRIGGER_"))
        .unwrap_or_default();
    let seconds = |duration: Option<&tierline_proto::prost_types::Duration>| {
        duration.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.1} s", d.seconds as f64 + f64::from(d.nanos) / 1e9),
        )
    };
    let mut lines = vec![
        format!(
            "evaluation run {}: {status} ({trigger}, policy v{}, requested by {})",
            run.id, run.policy_version, run.requested_by
        ),
        format!(
            "  ran       {} to {} ({})",
            local(run.started_at.as_ref(), zone),
            local(run.finished_at.as_ref(), zone),
            seconds(run.duration.as_ref())
        ),
        format!(
            "  judged    {} members: {} up, {} down",
            grouped(&run.members_evaluated.to_string()),
            grouped(&run.upgrades.to_string()),
            grouped(&run.downgrades.to_string())
        ),
        format!(
            "  feed      {} up to {} (waited {})",
            if run.feed_complete {
                "complete"
            } else {
                "incomplete"
            },
            local(run.feed_caught_up_to.as_ref(), zone),
            seconds(run.feed_wait.as_ref())
        ),
    ];
    if run.value_model_version > 0 {
        lines.push(format!(
            "  models    RFM cut points v{}, value model v{}",
            run.cut_points_version, run.value_model_version
        ));
    }
    if run.resumed > 0 {
        lines.push(format!("  resumed   {} times", run.resumed));
    }
    if !run.error_message.is_empty() {
        lines.push(format!("  error     {}", run.error_message));
    }
    let mut tiers: Vec<&str> = run
        .counts_before
        .iter()
        .chain(&run.counts_after)
        .map(|count| count.tier_code.as_str())
        .collect();
    // In the order the run listed them, each once.
    let mut seen = std::collections::HashSet::new();
    tiers.retain(|tier| seen.insert(*tier));
    let count = |counts: &[pb::TierCount], tier: &str| {
        counts
            .iter()
            .find(|count| count.tier_code == tier)
            .map_or_else(
                || "-".to_owned(),
                |count| grouped(&count.customers.to_string()),
            )
    };
    let rows = tiers
        .into_iter()
        .map(|tier| {
            vec![
                tier.to_owned(),
                count(&run.counts_before, tier),
                count(&run.counts_after, tier),
            ]
        })
        .collect();
    (lines, rows)
}

/// A value model's card.
pub(super) fn value_model_card(model: &pb::ValueModel, program: &str, zone: Tz) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{program} value model v{}, fitted on purchases up to {}",
            model.version,
            local(model.as_of.as_ref(), zone)
        ),
        format!(
            "  customers {} ({} bought more than once); time in {}",
            grouped(&model.customers.to_string()),
            grouped(&model.repeat_customers.to_string()),
            model.time_unit
        ),
    ];
    match &model.bg_nbd {
        Some(p) => lines.push(format!(
            "  purchases BG/NBD r {:.4}, alpha {:.4}, a {:.4}, b {:.4} (log-likelihood {:.1})",
            p.r, p.alpha, p.a, p.b, model.bg_nbd_log_likelihood
        )),
        None => lines.push("  purchases none".to_owned()),
    }
    match &model.gamma_gamma {
        Some(p) => lines.push(format!(
            "  spend     Gamma-Gamma p {:.4}, q {:.4}, gamma {:.4} (log-likelihood {:.1})",
            p.p, p.q, p.gamma, model.gamma_gamma_log_likelihood
        )),
        None => lines.push(
            "  spend     none: the spend per purchase did not fit Gamma-Gamma, so no value is predicted"
                .to_owned(),
        ),
    }
    let millis = |duration: Option<&tierline_proto::prost_types::Duration>| {
        duration.map_or(0.0, |d| d.seconds as f64 * 1e3 + f64::from(d.nanos) / 1e6)
    };
    lines.push(format!(
        "  took      {:.0} ms to summarise, {:.0} ms to fit",
        millis(model.summary_duration.as_ref()),
        millis(model.fit_duration.as_ref())
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> pb::Program {
        let tier = |code: &str, rank| pb::Tier {
            code: code.into(),
            name: code.to_lowercase(),
            rank,
            benefits: vec![],
        };
        pb::Program {
            id: "p1".into(),
            code: "INNISFREE".into(),
            name: "Innisfree".into(),
            currency: "KRW".into(),
            tiers: vec![tier("WELCOME", 0), tier("VVIP", 1)],
            ..Default::default()
        }
    }

    fn rules() -> pb::PolicyRules {
        pb::PolicyRules {
            tiers: vec![
                pb::TierRule {
                    tier_code: "WELCOME".into(),
                    requirements: vec![],
                    points_earn_rate_bps: 0,
                },
                pb::TierRule {
                    tier_code: "VVIP".into(),
                    requirements: vec![
                        pb::Requirement {
                            metric: pb::MetricKind::NetSpend.into(),
                            threshold: 1_000_000,
                        },
                        pb::Requirement {
                            metric: pb::MetricKind::PurchaseCount.into(),
                            threshold: 10,
                        },
                    ],
                    points_earn_rate_bps: 300,
                },
            ],
            window: Some(pb::QualificationWindow {
                kind: pb::WindowKind::RollingMonths.into(),
                rolling_months: 12,
            }),
            time_zone: "Asia/Seoul".into(),
            evaluation_schedule: Some(pb::EvaluationSchedule {
                frequency: pb::EvaluationFrequency::Monthly.into(),
                day_of_month: 1,
                month_of_year: 0,
                local_hour: 3,
                local_minute: 0,
            }),
            grace_months: 3,
            max_levels_dropped: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn a_program_card_reads_its_policy_and_each_tiers_requirements_in_words() {
        let policy = pb::PolicyVersion {
            version: 2,
            rules: Some(rules()),
            activated_at: Some(tierline_proto::prost_types::Timestamp {
                seconds: 1_764_136_800, // 2025-11-26 06:00 UTC
                nanos: 0,
            }),
            ..Default::default()
        };
        let (lines, rows) = program_card(&program(), Some(&policy));
        assert_eq!(
            lines[3],
            "  policy    v2, active since 2025-11-26 15:00 KST"
        );
        assert_eq!(
            lines[4],
            "            spend over the last 12 months (Asia/Seoul); evaluated monthly on day 1 at \
             03:00; grace 3 months; an evaluation drops at most 1 level"
        );
        assert_eq!(
            rows[1],
            [
                "1",
                "VVIP",
                "vvip",
                "1,000,000 KRW net spend and 10 purchases",
                "3.00 %",
                ""
            ]
        );
        assert_eq!(rows[0][3], "-", "the base tier needs nothing");
        let (lines, rows) = program_card(&program(), None);
        assert_eq!(lines[3], "  policy    none in force yet");
        assert_eq!(rows[1][3], "-");
    }

    #[test]
    fn a_run_card_lists_each_tier_once_with_its_counts_before_and_after() {
        let count = |tier: &str, customers| pb::TierCount {
            tier_code: tier.into(),
            customers,
        };
        let run = pb::EvaluationRun {
            id: "r1".into(),
            policy_version: 1,
            trigger: pb::EvaluationTrigger::Manual.into(),
            status: pb::EvaluationRunStatus::Succeeded.into(),
            requested_by: "ops".into(),
            members_evaluated: 1_000_000,
            downgrades: 95_000,
            counts_before: vec![count("WELCOME", 10), count("VVIP", 5)],
            counts_after: vec![count("WELCOME", 12), count("VVIP", 3)],
            feed_complete: true,
            ..Default::default()
        };
        let (lines, rows) = run_card(&run, chrono_tz::Asia::Seoul);
        assert_eq!(
            lines[0],
            "evaluation run r1: succeeded (manual, policy v1, requested by ops)"
        );
        assert_eq!(lines[2], "  judged    1,000,000 members: 0 up, 95,000 down");
        assert_eq!(rows, [["WELCOME", "10", "12"], ["VVIP", "5", "3"]]);
    }

    #[test]
    fn a_value_model_card_says_when_the_spend_model_is_missing() {
        let model = pb::ValueModel {
            version: 3,
            time_unit: "days".into(),
            customers: 20_000,
            repeat_customers: 12_000,
            bg_nbd: Some(pb::BgNbdParameters {
                r: 0.243,
                alpha: 4.414,
                a: 0.793,
                b: 2.426,
            }),
            bg_nbd_log_likelihood: -9582.43,
            ..Default::default()
        };
        let lines = value_model_card(&model, "INNISFREE", chrono_tz::UTC);
        assert_eq!(
            lines[1],
            "  customers 20,000 (12,000 bought more than once); time in days"
        );
        assert!(lines[2].contains("r 0.2430, alpha 4.4140"), "{}", lines[2]);
        assert!(lines[3].starts_with("  spend     none"), "{}", lines[3]);
    }
}
