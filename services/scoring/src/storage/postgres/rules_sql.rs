//! Policy rules as SQL, for the simulation's set-based statement and an evaluation's choice of
//! candidates: the qualification window as its first and last month, keeping the months the
//! domain's `window::months_at` counts (a membership year needs the member's join time), the
//! domain's `decision::qualified_rank` as a `CASE` ladder, and the two together over a state's
//! running totals ([`judged_rank`]). Thresholds are validated integers and zones validated names,
//! so they are written into the SQL text.

use chrono::{DateTime, Utc};

use crate::domain::{
    policy::{Metric, PolicyRules, WindowKind},
    scores::rfm_months,
};

/// `CASE WHEN <top tier's requirements> THEN <rank> … ELSE 0 END`: the highest rank whose
/// requirements all hold, with each metric's total the SQL `total` gives.
pub(super) fn ladder(rules: &PolicyRules, total: impl Fn(Metric) -> String) -> String {
    let mut sql = String::from("CASE");
    for (rank, rule) in rules.tiers.iter().enumerate().rev() {
        if rank == 0 {
            continue;
        }
        let conditions: Vec<String> = rule
            .requirements
            .iter()
            .map(|r| format!("{} >= {}", total(r.metric), r.threshold))
            .collect();
        let all = if conditions.is_empty() {
            "TRUE".to_owned()
        } else {
            conditions.join(" AND ")
        };
        sql.push_str(&format!(" WHEN {all} THEN {rank}"));
    }
    sql.push_str(" ELSE 0 END");
    sql
}

/// The first and last month (SQL dates) of the window at `now`, for [`super::months::window_sum`]:
/// a global range, or per member for a membership year (from the last anniversary month of the
/// join time the SQL `joined_at` gives); no first month (`NULL`) for a lifetime.
pub(super) fn window_months(
    rules: &PolicyRules,
    now: DateTime<Utc>,
    joined_at: &str,
) -> (String, String) {
    let zone = rules.time_zone.name().replace('\'', "");
    let current = crate::domain::month::Month::of(now, rules.time_zone).first_day();
    // Months after `now`'s (a scheduled run judges as of an earlier month's end) never count.
    let last = format!("DATE '{current}'");
    let first = match rules.window {
        WindowKind::Lifetime => "NULL".to_owned(),
        WindowKind::MembershipYear => format!(
            "(date_trunc('month', {joined_at} AT TIME ZONE '{zone}')::date
              + make_interval(months => (floor(greatest(0,
                  (extract(year FROM DATE '{current}') - extract(year FROM {joined_at} AT TIME ZONE '{zone}')) * 12
                  + extract(month FROM DATE '{current}') - extract(month FROM {joined_at} AT TIME ZONE '{zone}')) / 12) * 12)::int))::date"
        ),
        WindowKind::RollingMonths(_) | WindowKind::CalendarYear => {
            let (from, to) = rfm_months(rules.window, now, rules.time_zone);
            return (format!("DATE '{}'", from.unwrap_or(to)), format!("DATE '{to}'"));
        }
    };
    (first, last)
}

/// The tier the window judged at `judged_at` gives each state aliased `{alias}` (the domain's
/// `qualified_rank` over `months_at`), from its running totals (`months.rs`); `joined_at` the
/// SQL of the member's join time, which only a membership year reads.
pub(super) fn judged_rank(
    rules: &PolicyRules,
    judged_at: DateTime<Utc>,
    alias: &str,
    joined_at: &str,
) -> String {
    let (first, last) = window_months(rules, judged_at, joined_at);
    ladder(rules, |metric| {
        let through = match metric {
            Metric::NetSpend => "spend_through",
            Metric::Points => "points_through",
            Metric::PurchaseCount => "purchases_through",
        };
        super::months::window_sum(alias, through, &first, &last)
    })
}
