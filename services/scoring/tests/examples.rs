//! The example programs in `examples/programs` are valid programs and policies.

use serde_json::Value;
use tierline_scoring::domain::{
    policy::{Frequency, Metric, PolicyInput, TierRuleInput, WindowKind},
    program::{Benefit, ProgramInput, Scope, Tier},
};

fn load(path: &str) -> Value {
    let full = format!(
        "{}/../../examples/programs/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&full).expect("example file")).expect("JSON")
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn int(value: &Value, key: &str) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or_default()
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a CreateProgramRequest in protobuf JSON.
fn program(path: &str) -> ProgramInput {
    let request = load(path);
    let program = &request["program"];
    let scope = program.get("scope").cloned().unwrap_or(Value::Null);
    ProgramInput {
        code: text(program, "code"),
        name: text(program, "name"),
        currency: text(program, "currency"),
        scope: Scope {
            brands: strings(&scope, "brands"),
            sales_channels: strings(&scope, "sales_channels"),
        },
        tiers: program["tiers"]
            .as_array()
            .expect("tiers")
            .iter()
            .map(|tier| Tier {
                code: text(tier, "code"),
                name: text(tier, "name"),
                rank: u32::try_from(int(tier, "rank")).expect("rank"),
                benefits: tier["benefits"]
                    .as_array()
                    .map(|b| {
                        b.iter()
                            .map(|b| Benefit {
                                code: text(b, "code"),
                                description: text(b, "description"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

/// Reads PolicyRules in protobuf JSON.
fn policy(path: &str) -> PolicyInput {
    let rules = load(path);
    let metric = |name: &str| match name {
        "METRIC_KIND_NET_SPEND" => Some(Metric::NetSpend),
        "METRIC_KIND_POINTS" => Some(Metric::Points),
        "METRIC_KIND_PURCHASE_COUNT" => Some(Metric::PurchaseCount),
        _ => None,
    };
    let window = &rules["window"];
    let schedule = &rules["evaluation_schedule"];
    let lifecycle = &rules["lifecycle"];
    PolicyInput {
        tiers: rules["tiers"]
            .as_array()
            .expect("tiers")
            .iter()
            .map(|rule| TierRuleInput {
                tier_code: text(rule, "tier_code"),
                requirements: rule
                    .get("requirements")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .map(|r| (metric(&text(r, "metric")), int(r, "threshold")))
                            .collect()
                    })
                    .unwrap_or_default(),
                points_earn_rate_bps: int(rule, "points_earn_rate_bps"),
            })
            .collect(),
        window: match text(window, "kind").as_str() {
            "WINDOW_KIND_ROLLING_MONTHS" => Some(WindowKind::RollingMonths(
                u32::try_from(int(window, "rolling_months")).expect("months"),
            )),
            "WINDOW_KIND_CALENDAR_YEAR" => Some(WindowKind::CalendarYear),
            "WINDOW_KIND_MEMBERSHIP_YEAR" => Some(WindowKind::MembershipYear),
            "WINDOW_KIND_LIFETIME" => Some(WindowKind::Lifetime),
            _ => None,
        },
        time_zone: text(&rules, "time_zone"),
        frequency: match text(schedule, "frequency").as_str() {
            "EVALUATION_FREQUENCY_MONTHLY" => Some(Frequency::Monthly),
            "EVALUATION_FREQUENCY_QUARTERLY" => Some(Frequency::Quarterly),
            "EVALUATION_FREQUENCY_YEARLY" => Some(Frequency::Yearly),
            _ => None,
        },
        day_of_month: i32::try_from(int(schedule, "day_of_month")).expect("day"),
        month_of_year: i32::try_from(int(schedule, "month_of_year")).expect("month"),
        local_hour: i32::try_from(int(schedule, "local_hour")).expect("hour"),
        local_minute: i32::try_from(int(schedule, "local_minute")).expect("minute"),
        grace_months: i32::try_from(int(&rules, "grace_months")).expect("grace"),
        max_levels_dropped: rules
            .get("max_levels_dropped")
            .and_then(Value::as_i64)
            .map(|v| i32::try_from(v).expect("levels")),
        new_days: lifecycle
            .get("new_days")
            .and_then(Value::as_i64)
            .map(|v| i32::try_from(v).expect("days")),
        at_risk_days: lifecycle
            .get("at_risk_days")
            .and_then(Value::as_i64)
            .map(|v| i32::try_from(v).expect("days")),
        dormant_days: lifecycle
            .get("dormant_days")
            .and_then(Value::as_i64)
            .map(|v| i32::try_from(v).expect("days")),
        ..PolicyInput::default()
    }
}

#[test]
fn the_innisfree_example_is_valid() {
    let program = program("innisfree/program.json")
        .validate(chrono::Utc::now())
        .expect("valid program");
    let rules = policy("innisfree/policy.json")
        .validate(&program)
        .expect("valid policy");
    assert_eq!(rules.tiers.len(), 4);
    assert_eq!(rules.window, WindowKind::RollingMonths(12));
}

#[test]
fn the_starbucks_example_is_valid() {
    let program = program("starbucks/program.json")
        .validate(chrono::Utc::now())
        .expect("valid program");
    let rules = policy("starbucks/policy.json")
        .validate(&program)
        .expect("valid policy");
    assert_eq!(rules.window, WindowKind::MembershipYear);
    assert_eq!(rules.tiers[2].points_earn_rate_bps, 12);
}
