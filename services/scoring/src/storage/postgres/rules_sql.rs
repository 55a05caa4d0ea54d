//! Policy rules as SQL, for the simulation's set-based statement: the
//! qualification window as its first and last month, keeping the months the domain's
//! `window::months_at` counts (a membership year needs the member's join time as `m.joined_at`),
//! and the domain's `decision::qualified_rank` as a `CASE` ladder. Thresholds are
//! validated integers and zones validated names, so they are written into the SQL text.

use chrono::{DateTime, Utc};

use crate::domain::{
    policy::{Metric, PolicyRules, WindowKind},
    scores::rfm_months,
};

/// `CASE WHEN <top tier's requirements> THEN <rank> … ELSE 0 END`: the highest rank whose
/// requirements all hold, with each metric's total in the column `column` names.
pub(super) fn ladder(rules: &PolicyRules, column: fn(Metric) -> &'static str) -> String {
    let mut sql = String::from("CASE");
    for (rank, rule) in rules.tiers.iter().enumerate().rev() {
        if rank == 0 {
            continue;
        }
        let conditions: Vec<String> = rule
            .requirements
            .iter()
            .map(|r| format!("{} >= {}", column(r.metric), r.threshold))
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

/// The first and last month (SQL dates) of `window` at `now`, for [`super::months::window_sum`]:
/// a global range, or per member for a membership year (from the last anniversary month of
/// `m.joined_at`); no first month (`NULL`) for a lifetime.
pub(super) fn window_months(rules: &PolicyRules, now: DateTime<Utc>) -> (String, String) {
    let zone = rules.time_zone.name().replace('\'', "");
    let current = crate::domain::month::Month::of(now, rules.time_zone).first_day();
    // Months after `now`'s (a scheduled run judges as of an earlier month's end) never count.
    let last = format!("DATE '{current}'");
    let first = match rules.window {
        WindowKind::Lifetime => "NULL".to_owned(),
        WindowKind::MembershipYear => format!(
            "(date_trunc('month', m.joined_at AT TIME ZONE '{zone}')::date
              + make_interval(months => (floor(greatest(0,
                  (extract(year FROM DATE '{current}') - extract(year FROM m.joined_at AT TIME ZONE '{zone}')) * 12
                  + extract(month FROM DATE '{current}') - extract(month FROM m.joined_at AT TIME ZONE '{zone}')) / 12) * 12)::int))::date"
        ),
        WindowKind::RollingMonths(_) | WindowKind::CalendarYear => {
            let (from, to) = rfm_months(rules.window, now, rules.time_zone);
            return (format!("DATE '{}'", from.unwrap_or(to)), format!("DATE '{to}'"));
        }
    };
    (first, last)
}
