//! Policies: the versioned rules that turn a customer's metrics into a tier.

use std::collections::HashSet;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{program::Program, violations::Violations};
use crate::ScoringError;

/// What a requirement measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Purchases minus refunds, minor units of the program currency.
    NetSpend,
    /// Points: spend times the earn rate of the tier held when buying.
    Points,
    /// Purchases not fully refunded.
    PurchaseCount,
}

/// One threshold a tier requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The metric.
    pub metric: Metric,
    /// The least value that qualifies.
    pub threshold: i64,
}

/// The rules of one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRule {
    /// The tier.
    pub tier_code: String,
    /// All must hold to qualify; empty for the base tier.
    pub requirements: Vec<Requirement>,
    /// Points earned per unit of currency spent while holding this tier, in basis points of the
    /// amount in minor units (10,000 = one point per minor unit).
    pub points_earn_rate_bps: i64,
}

/// Which months count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowKind {
    /// The current month and the `n - 1` before it.
    RollingMonths(u32),
    /// January to the current month.
    CalendarYear,
    /// From the last anniversary month of the customer's join date.
    MembershipYear,
    /// Everything.
    Lifetime,
}

/// How often evaluations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frequency {
    /// Every month.
    Monthly,
    /// Every three months from `month_of_year`.
    Quarterly,
    /// Once a year in `month_of_year`.
    Yearly,
}

/// When evaluations are due, in the policy's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationSchedule {
    /// How often.
    pub frequency: Frequency,
    /// Day of the month, 1-28 (every month has it).
    pub day_of_month: u32,
    /// Anchor month for quarterly and yearly schedules, 1-12.
    pub month_of_year: u32,
    /// Local hour, 0-23.
    pub local_hour: u32,
    /// Local minute, 0-59.
    pub local_minute: u32,
}

/// Lifecycle thresholds in days since the last purchase (or since joining, for `new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// A member is new for this long after joining.
    pub new_days: u32,
    /// No purchase for this long: at risk.
    pub at_risk_days: u32,
    /// No purchase for this long: dormant.
    pub dormant_days: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            new_days: 90,
            at_risk_days: 180,
            dormant_days: 365,
        }
    }
}

/// How customer value is predicted (`domain::value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueModelSettings {
    /// Months of the predicted value.
    pub horizon_months: u32,
    /// Horizons, in days, of the expected purchase counts reported; ascending, distinct.
    pub expected_purchase_days: Vec<u32>,
    /// Monthly discount rate of the predicted value, in basis points.
    pub monthly_discount_bps: u32,
}

impl Default for ValueModelSettings {
    fn default() -> Self {
        Self {
            horizon_months: 12,
            expected_purchase_days: vec![90, 365],
            monthly_discount_bps: 0,
        }
    }
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRules {
    /// One rule per tier of the program, base tier first (index = rank).
    pub tiers: Vec<TierRule>,
    /// Which months count.
    pub window: WindowKind,
    /// The zone of months and schedules.
    pub time_zone: Tz,
    /// When evaluations are due.
    pub schedule: EvaluationSchedule,
    /// A reached tier is kept for this many months after the customer last qualified for it.
    pub grace_months: u32,
    /// Most levels one evaluation may drop; `None` drops straight to the qualified tier.
    pub max_levels_dropped: Option<u32>,
    /// Lifecycle thresholds.
    pub lifecycle: LifecycleSettings,
    /// Customer value settings.
    pub value_model: ValueModelSettings,
}

impl PolicyRules {
    /// The rule of the tier of `rank`.
    pub fn rule(&self, rank: u32) -> Option<&TierRule> {
        self.tiers.get(rank as usize)
    }
}

/// A tier rule as a caller sent it (`metric: None` when unspecified).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierRuleInput {
    /// Tier code.
    pub tier_code: String,
    /// Requirements.
    pub requirements: Vec<(Option<Metric>, i64)>,
    /// Earn rate in basis points.
    pub points_earn_rate_bps: i64,
}

/// A policy as a caller sent it.
/// Stored as the policy document (and validated again against its program when loaded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    /// Tier rules, any order.
    pub tiers: Vec<TierRuleInput>,
    /// Window kind; `None` when unspecified.
    pub window: Option<WindowKind>,
    /// IANA time zone name, e.g. `Asia/Seoul`.
    pub time_zone: String,
    /// Schedule; `frequency: None` when unspecified.
    pub frequency: Option<Frequency>,
    /// Day of month.
    pub day_of_month: i32,
    /// Anchor month.
    pub month_of_year: i32,
    /// Local hour.
    pub local_hour: i32,
    /// Local minute.
    pub local_minute: i32,
    /// Grace months.
    pub grace_months: i32,
    /// Drop limit.
    pub max_levels_dropped: Option<i32>,
    /// Lifecycle thresholds; absent ones take the defaults (90, 180, 365 days).
    pub new_days: Option<i32>,
    /// At-risk threshold.
    pub at_risk_days: Option<i32>,
    /// Dormant threshold.
    pub dormant_days: Option<i32>,
    /// `window.rolling_months` as sent with a window kind that takes none (it must be 0 then).
    /// Checked, never stored: a document carrying one is refused.
    #[serde(skip)]
    pub stray_rolling_months: i32,
    /// `rfm.window_months` as sent. Checked, not stored (the RFM window follows the policy's).
    #[serde(skip)]
    pub rfm_window_months: Option<i32>,
    /// `rfm.min_population` as sent. Checked, not stored.
    #[serde(skip)]
    pub rfm_min_population: Option<i32>,
    /// `value_model.horizon_months`; absent takes the default (12).
    #[serde(default)]
    pub value_horizon_months: Option<i32>,
    /// `value_model.expected_purchase_days`; empty takes the defaults (90 and 365).
    #[serde(default)]
    pub value_purchase_days: Vec<i32>,
    /// `value_model.monthly_discount_bps`; absent means 0.
    #[serde(default)]
    pub value_discount_bps: Option<i32>,
}

fn in_range(
    violations: &mut Violations,
    field: &str,
    value: i32,
    range: std::ops::RangeInclusive<i32>,
) -> u32 {
    if !range.contains(&value) {
        violations.add(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        );
    }
    u32::try_from(value).unwrap_or(0)
}

/// The rule of one tier as sent at `field`, for the tier of `rank`.
fn tier_rule(
    input: &TierRuleInput,
    rank: u32,
    field: &str,
    violations: &mut Violations,
) -> TierRule {
    if rank == 0 && !input.requirements.is_empty() {
        violations.add(
            format!("{field}.requirements"),
            "the base tier is held without requirements",
        );
    }
    if rank > 0 && input.requirements.is_empty() {
        violations.add(
            format!("{field}.requirements"),
            "a tier above the base needs at least one requirement",
        );
    }
    if !(0..=1_000_000).contains(&input.points_earn_rate_bps) {
        violations.add(
            format!("{field}.points_earn_rate_bps"),
            "must be between 0 and 1000000",
        );
    }
    let mut metrics = HashSet::new();
    let mut requirements = Vec::new();
    for (r, (metric, threshold)) in input.requirements.iter().enumerate() {
        let field = format!("{field}.requirements[{r}]");
        match metric {
            None => violations.add(
                format!("{field}.metric"),
                "must be NET_SPEND, POINTS or PURCHASE_COUNT",
            ),
            Some(metric) => {
                if !metrics.insert(*metric) {
                    violations.add(
                        format!("{field}.metric"),
                        "each metric at most once per tier",
                    );
                }
                requirements.push(Requirement {
                    metric: *metric,
                    threshold: *threshold,
                });
            }
        }
        if *threshold <= 0 {
            violations.add(format!("{field}.threshold"), "must be positive");
        }
    }
    TierRule {
        tier_code: input.tier_code.clone(),
        requirements,
        points_earn_rate_bps: input.points_earn_rate_bps,
    }
}

/// Thresholds must rise with the `ladder` (each rule with where it stood in the request, lowest
/// rank first): a metric a tier shares with a lower tier needs more than there. And POINTS
/// requirements need some tier to earn points.
fn check_ladder(ladder: &[(usize, &TierRule)], violations: &mut Violations) {
    for (upper_index, (position, upper)) in ladder.iter().enumerate() {
        for (_, lower) in &ladder[..upper_index] {
            for requirement in &upper.requirements {
                if let Some(lower_requirement) = lower
                    .requirements
                    .iter()
                    .find(|r| r.metric == requirement.metric)
                    && requirement.threshold <= lower_requirement.threshold
                {
                    violations.add(
                        format!("rules.tiers[{position}].requirements"),
                        format!(
                            "{:?} threshold must be above {}'s ({})",
                            requirement.metric, lower.tier_code, lower_requirement.threshold
                        ),
                    );
                }
            }
        }
    }
    let uses_points = ladder.iter().any(|(_, rule)| {
        rule.requirements
            .iter()
            .any(|requirement| requirement.metric == Metric::Points)
    });
    if uses_points
        && ladder
            .iter()
            .all(|(_, rule)| rule.points_earn_rate_bps == 0)
    {
        violations.add(
            "rules.tiers",
            "POINTS requirements need a positive earn rate on some tier",
        );
    }
}

impl PolicyInput {
    /// Validates the policy against `program`; every bad field is reported.
    pub fn validate(self, program: &Program) -> Result<PolicyRules, ScoringError> {
        let mut violations = Violations::default();
        let tiers = self.tier_rules(program, &mut violations);
        let window = self.window(&mut violations);
        let time_zone = self.time_zone.parse::<Tz>().unwrap_or_else(|_| {
            violations.add(
                "rules.time_zone",
                "must be an IANA time zone such as Asia/Seoul or UTC",
            );
            Tz::UTC
        });
        let schedule = self.schedule(&mut violations);
        let grace_months = in_range(
            &mut violations,
            "rules.grace_months",
            self.grace_months,
            0..=36,
        );
        let max_levels_dropped = self
            .max_levels_dropped
            .map(|levels| in_range(&mut violations, "rules.max_levels_dropped", levels, 1..=20));
        judgeable(window, &schedule, grace_months, &mut violations);
        let lifecycle = self.lifecycle(&mut violations);
        self.check_rfm(&mut violations);
        let value_model = self.value_model(&mut violations);
        violations.into_result()?;
        Ok(PolicyRules {
            tiers,
            window,
            time_zone,
            schedule,
            grace_months,
            max_levels_dropped,
            lifecycle,
            value_model,
        })
    }

    /// One rule per tier of `program`, in rank order, each with its requirements; thresholds
    /// rising with the ladder.
    fn tier_rules(&self, program: &Program, violations: &mut Violations) -> Vec<TierRule> {
        let mut rules: Vec<Option<TierRule>> = vec![None; program.tiers.len()];
        // Where each rank's rule stood in the request, to name fields as the caller sent them.
        let mut positions: Vec<usize> = vec![0; program.tiers.len()];
        for (index, input) in self.tiers.iter().enumerate() {
            let field = format!("rules.tiers[{index}]");
            let Some(rank) = program.rank_of(&input.tier_code) else {
                violations.add(
                    format!("{field}.tier_code"),
                    format!(
                        "{:?} is not a tier of program {}",
                        input.tier_code, program.code
                    ),
                );
                continue;
            };
            if rules[rank as usize].is_some() {
                violations.add(format!("{field}.tier_code"), "each tier has one rule");
                continue;
            }
            positions[rank as usize] = index;
            rules[rank as usize] = Some(tier_rule(input, rank, &field, violations));
        }
        for (rank, rule) in rules.iter().enumerate() {
            if rule.is_none() {
                violations.add(
                    "rules.tiers",
                    format!("tier {} has no rule", program.tiers[rank].code),
                );
            }
        }
        let ladder: Vec<(usize, &TierRule)> = rules
            .iter()
            .enumerate()
            .filter_map(|(rank, rule)| rule.as_ref().map(|rule| (positions[rank], rule)))
            .collect();
        check_ladder(&ladder, violations);
        rules.into_iter().flatten().collect()
    }

    /// The window of months that counts.
    fn window(&self, violations: &mut Violations) -> WindowKind {
        let window = match self.window {
            Some(WindowKind::RollingMonths(months)) if !(1..=120).contains(&months) => {
                violations.add("rules.window.rolling_months", "must be between 1 and 120");
                WindowKind::Lifetime
            }
            Some(window) => window,
            None => {
                violations.add(
                    "rules.window.kind",
                    "must be ROLLING_MONTHS, CALENDAR_YEAR, MEMBERSHIP_YEAR or LIFETIME",
                );
                WindowKind::Lifetime
            }
        };
        if self.stray_rolling_months != 0 {
            violations.add(
                "rules.window.rolling_months",
                "must be 0 unless the window kind is ROLLING_MONTHS",
            );
        }
        window
    }

    /// The lifecycle thresholds, defaults for what is absent; at risk before dormant.
    fn lifecycle(&self, violations: &mut Violations) -> LifecycleSettings {
        let defaults = LifecycleSettings::default();
        let lifecycle = LifecycleSettings {
            new_days: in_range(
                violations,
                "rules.lifecycle.new_days",
                self.new_days.unwrap_or(defaults.new_days as i32),
                1..=3650,
            ),
            at_risk_days: in_range(
                violations,
                "rules.lifecycle.at_risk_days",
                self.at_risk_days.unwrap_or(defaults.at_risk_days as i32),
                1..=3650,
            ),
            dormant_days: in_range(
                violations,
                "rules.lifecycle.dormant_days",
                self.dormant_days.unwrap_or(defaults.dormant_days as i32),
                1..=3650,
            ),
        };
        // Compared only when both are in range, so that one bad value is named once.
        let in_days = |days: u32| (1..=3650).contains(&days);
        if in_days(lifecycle.at_risk_days)
            && in_days(lifecycle.dormant_days)
            && lifecycle.at_risk_days >= lifecycle.dormant_days
        {
            violations.add(
                "rules.lifecycle.at_risk_days",
                "must be less than dormant_days",
            );
        }
        lifecycle
    }

    /// The RFM settings as sent: checked, not stored.
    fn check_rfm(&self, violations: &mut Violations) {
        if let Some(months) = self.rfm_window_months {
            in_range(violations, "rules.rfm.window_months", months, 1..=120);
        }
        if let Some(population) = self.rfm_min_population {
            in_range(
                violations,
                "rules.rfm.min_population",
                population,
                5..=1_000_000,
            );
        }
    }

    /// The value model settings, defaults for what is absent.
    fn value_model(&self, violations: &mut Violations) -> ValueModelSettings {
        let defaults = ValueModelSettings::default();
        let horizon_months = self
            .value_horizon_months
            .map_or(defaults.horizon_months, |months| {
                in_range(
                    violations,
                    "rules.value_model.horizon_months",
                    months,
                    1..=60,
                )
            });
        let monthly_discount_bps = self.value_discount_bps.map_or(0, |bps| {
            in_range(
                violations,
                "rules.value_model.monthly_discount_bps",
                bps,
                0..=10_000,
            )
        });
        const DAYS: &str = "rules.value_model.expected_purchase_days";
        let mut expected_purchase_days = if self.value_purchase_days.is_empty() {
            defaults.expected_purchase_days
        } else {
            if self.value_purchase_days.len() > 5 {
                violations.add(DAYS, "must have at most 5 values");
            }
            self.value_purchase_days
                .iter()
                .map(|days| in_range(violations, DAYS, *days, 1..=3650))
                .collect()
        };
        expected_purchase_days.sort_unstable();
        let given = expected_purchase_days.len();
        expected_purchase_days.dedup();
        if expected_purchase_days.len() != given {
            violations.add(DAYS, "must not repeat a value");
        }
        ValueModelSettings {
            horizon_months,
            expected_purchase_days,
            monthly_discount_bps,
        }
    }

    /// The evaluation schedule. `month_of_year` anchors a yearly schedule only: monthly runs
    /// are every month and quarterly ones in January, April, July and October, so it must be 0
    /// for them.
    fn schedule(&self, violations: &mut Violations) -> EvaluationSchedule {
        const FIELD: &str = "rules.evaluation_schedule.month_of_year";
        let frequency = self.frequency.unwrap_or_else(|| {
            violations.add(
                "rules.evaluation_schedule.frequency",
                "must be MONTHLY, QUARTERLY or YEARLY",
            );
            Frequency::Monthly
        });
        let month_of_year = match frequency {
            Frequency::Yearly => in_range(violations, FIELD, self.month_of_year, 1..=12),
            Frequency::Monthly | Frequency::Quarterly => {
                if self.month_of_year != 0 {
                    violations.add(FIELD, "must be 0 unless the frequency is YEARLY");
                }
                1
            }
        };
        EvaluationSchedule {
            frequency,
            day_of_month: in_range(
                violations,
                "rules.evaluation_schedule.day_of_month",
                self.day_of_month,
                1..=28,
            ),
            month_of_year,
            local_hour: in_range(
                violations,
                "rules.evaluation_schedule.local_hour",
                self.local_hour,
                0..=23,
            ),
            local_minute: in_range(
                violations,
                "rules.evaluation_schedule.local_minute",
                self.local_minute,
                0..=59,
            ),
        }
    }
}

/// Refuses a window that the schedule cannot judge when it closes (docs/SCORING.md, "Year
/// windows"). A year window is reviewed only when it is complete: a membership year at each
/// member's anniversary, which any month can be, so only a monthly schedule reaches everyone on
/// time; a calendar year by a run in January. Between reviews nobody is judged on a year in
/// progress, so grace is counted in whole reviews: 0, 12, 24 or 36 months.
fn judgeable(
    window: WindowKind,
    schedule: &EvaluationSchedule,
    grace_months: u32,
    violations: &mut Violations,
) {
    let year_window = match window {
        WindowKind::MembershipYear => {
            if schedule.frequency != Frequency::Monthly {
                violations.add(
                    "rules.evaluation_schedule.frequency",
                    "must be MONTHLY for a MEMBERSHIP_YEAR window: members' anniversaries fall in every month",
                );
            }
            true
        }
        WindowKind::CalendarYear => {
            if schedule.frequency == Frequency::Yearly && schedule.month_of_year != 1 {
                violations.add(
                    "rules.evaluation_schedule.month_of_year",
                    "must be 1 for a yearly CALENDAR_YEAR review: the year is complete when January begins",
                );
            }
            true
        }
        WindowKind::RollingMonths(_) | WindowKind::Lifetime => false,
    };
    if year_window && !grace_months.is_multiple_of(12) {
        violations.add(
            "rules.grace_months",
            "must be 0, 12, 24 or 36 for a year window, which is reviewed once a year",
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::program::tests::innisfree;

    pub(crate) fn rule(code: &str, requirements: &[(Metric, i64)]) -> TierRuleInput {
        TierRuleInput {
            tier_code: code.to_owned(),
            requirements: requirements
                .iter()
                .map(|(metric, threshold)| (Some(*metric), *threshold))
                .collect(),
            points_earn_rate_bps: 0,
        }
    }

    /// Innisfree-like: 12 rolling months of spend; VVIP also needs 10 purchases; monthly evaluation
    /// on the 1st at 03:00 Seoul time; 3 months of grace; at most one level down per evaluation.
    pub(crate) fn innisfree_policy() -> PolicyInput {
        PolicyInput {
            tiers: vec![
                rule("WELCOME", &[]),
                rule("GREEN", &[(Metric::NetSpend, 100_000)]),
                rule("VIP", &[(Metric::NetSpend, 300_000)]),
                rule(
                    "VVIP",
                    &[(Metric::NetSpend, 1_000_000), (Metric::PurchaseCount, 10)],
                ),
            ],
            window: Some(WindowKind::RollingMonths(12)),
            time_zone: "Asia/Seoul".into(),
            frequency: Some(Frequency::Monthly),
            day_of_month: 1,
            local_hour: 3,
            grace_months: 3,
            max_levels_dropped: Some(1),
            ..PolicyInput::default()
        }
    }

    fn fields(error: ScoringError) -> Vec<String> {
        match error {
            ScoringError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_policy_is_ordered_by_the_ladder() {
        let mut input = innisfree_policy();
        input.tiers.reverse();
        let rules = input.validate(&innisfree()).expect("valid");
        let codes: Vec<&str> = rules.tiers.iter().map(|r| r.tier_code.as_str()).collect();
        assert_eq!(codes, ["WELCOME", "GREEN", "VIP", "VVIP"]);
        assert_eq!(rules.time_zone, chrono_tz::Asia::Seoul);
        assert_eq!(
            rules.schedule.month_of_year, 1,
            "monthly schedules need no anchor month"
        );
        assert_eq!(rules.lifecycle, LifecycleSettings::default());
    }

    #[test]
    fn each_window_is_accepted_only_with_schedules_that_review_it_when_it_closes() {
        use Frequency::{Monthly, Quarterly, Yearly};
        use WindowKind::{CalendarYear, Lifetime, MembershipYear, RollingMonths};
        // (window, frequency, month_of_year, grace) and the fields refused, if any.
        let cases: [(WindowKind, Frequency, i32, i32, &[&str]); 17] = [
            (RollingMonths(12), Monthly, 0, 3, &[]),
            (RollingMonths(12), Quarterly, 0, 3, &[]),
            (RollingMonths(12), Yearly, 7, 3, &[]),
            (Lifetime, Yearly, 1, 5, &[]),
            (MembershipYear, Monthly, 0, 12, &[]),
            (MembershipYear, Monthly, 0, 0, &[]),
            (
                MembershipYear,
                Quarterly,
                0,
                12,
                &["rules.evaluation_schedule.frequency"],
            ),
            (
                MembershipYear,
                Yearly,
                1,
                12,
                &["rules.evaluation_schedule.frequency"],
            ),
            (MembershipYear, Monthly, 0, 3, &["rules.grace_months"]),
            (CalendarYear, Monthly, 0, 12, &[]),
            (CalendarYear, Quarterly, 0, 24, &[]),
            (CalendarYear, Yearly, 1, 0, &[]),
            (
                CalendarYear,
                Yearly,
                7,
                0,
                &["rules.evaluation_schedule.month_of_year"],
            ),
            (CalendarYear, Monthly, 0, 6, &["rules.grace_months"]),
            // month_of_year anchors a yearly schedule only, as the proto says.
            (
                RollingMonths(12),
                Monthly,
                3,
                3,
                &["rules.evaluation_schedule.month_of_year"],
            ),
            (
                RollingMonths(12),
                Quarterly,
                1,
                3,
                &["rules.evaluation_schedule.month_of_year"],
            ),
            (
                RollingMonths(12),
                Yearly,
                0,
                3,
                &["rules.evaluation_schedule.month_of_year"],
            ),
        ];
        for (window, frequency, month_of_year, grace_months, refused) in cases {
            let input = PolicyInput {
                window: Some(window),
                frequency: Some(frequency),
                month_of_year,
                grace_months,
                ..innisfree_policy()
            };
            let outcome = input.validate(&innisfree()).map_err(fields);
            let case =
                format!("{window:?} {frequency:?} month {month_of_year} grace {grace_months}");
            match outcome {
                Ok(rules) => {
                    assert!(refused.is_empty(), "{case}: accepted, expected {refused:?}");
                    if frequency == Quarterly {
                        assert_eq!(
                            rules.schedule.month_of_year, 1,
                            "January, April, July, October"
                        );
                    }
                }
                Err(fields) => assert_eq!(fields, refused, "{case}"),
            }
        }
    }

    #[test]
    fn thresholds_must_rise_with_the_ladder() {
        let mut input = innisfree_policy();
        input.tiers[2] = rule("VIP", &[(Metric::NetSpend, 100_000)]);
        let fields = fields(input.validate(&innisfree()).expect_err("invalid"));
        assert_eq!(fields, ["rules.tiers[2].requirements"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let input = PolicyInput {
            tiers: vec![
                rule("WELCOME", &[(Metric::NetSpend, 1)]),
                rule("GREEN", &[]),
                TierRuleInput {
                    tier_code: "VIP".into(),
                    requirements: vec![(None, 0)],
                    points_earn_rate_bps: -1,
                },
                rule("GOLD", &[(Metric::NetSpend, 1)]),
            ],
            window: Some(WindowKind::RollingMonths(0)),
            time_zone: "Mars/Olympus".into(),
            frequency: None,
            day_of_month: 31,
            local_hour: 24,
            grace_months: -1,
            max_levels_dropped: Some(0),
            at_risk_days: Some(400),
            ..PolicyInput::default()
        };
        assert_eq!(
            fields(input.validate(&innisfree()).expect_err("invalid")),
            [
                "rules.tiers[0].requirements",
                "rules.tiers[1].requirements",
                "rules.tiers[2].points_earn_rate_bps",
                "rules.tiers[2].requirements[0].metric",
                "rules.tiers[2].requirements[0].threshold",
                "rules.tiers[3].tier_code",
                "rules.tiers",
                "rules.window.rolling_months",
                "rules.time_zone",
                "rules.evaluation_schedule.frequency",
                "rules.evaluation_schedule.day_of_month",
                "rules.evaluation_schedule.local_hour",
                "rules.grace_months",
                "rules.max_levels_dropped",
                "rules.lifecycle.at_risk_days"
            ]
        );
    }

    #[test]
    fn points_need_an_earn_rate() {
        let mut input = innisfree_policy();
        input.tiers[1] = rule("GREEN", &[(Metric::Points, 100)]);
        input.tiers[2] = rule("VIP", &[(Metric::Points, 300)]);
        assert_eq!(
            fields(input.clone().validate(&innisfree()).expect_err("no rate")),
            ["rules.tiers"]
        );
        input.tiers[0].points_earn_rate_bps = 10;
        assert!(input.validate(&innisfree()).is_ok());
    }
}
