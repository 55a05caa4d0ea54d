//! A qualification window as SQL: the condition on a bucket's month (`b.month`) that keeps
//! the months the domain's `window::months_at` counts, for the simulation's and the evaluation's
//! set-based sums. A membership year needs the member's join time as `m.joined_at`.

use chrono::{DateTime, Utc};

use crate::domain::{
    policy::{PolicyRules, WindowKind},
    scores::rfm_months,
};

/// The condition on `b.month` for `window` at `now`: a global range, or per member for a
/// membership year (from the last anniversary month of `m.joined_at`).
pub(super) fn window_condition(rules: &PolicyRules, now: DateTime<Utc>) -> String {
    let zone = rules.time_zone.name().replace('\'', "");
    let current = crate::domain::month::Month::of(now, rules.time_zone).first_day();
    match rules.window {
        // Months after `now`'s (a scheduled run judges as of an earlier month's end) never count.
        WindowKind::Lifetime => format!("b.month <= DATE '{current}'"),
        WindowKind::MembershipYear => {
            format!(
                "b.month <= DATE '{current}' AND b.month >= (
                     date_trunc('month', m.joined_at AT TIME ZONE '{zone}')::date
                     + make_interval(months => (floor(greatest(0,
                         (extract(year FROM DATE '{current}') - extract(year FROM m.joined_at AT TIME ZONE '{zone}')) * 12
                         + extract(month FROM DATE '{current}') - extract(month FROM m.joined_at AT TIME ZONE '{zone}')) / 12) * 12)::int))::date"
            )
        }
        WindowKind::RollingMonths(_) | WindowKind::CalendarYear => {
            let (from, to) = rfm_months(rules.window, now, rules.time_zone);
            format!(
                "b.month >= DATE '{}' AND b.month <= DATE '{to}'",
                from.unwrap_or(to)
            )
        }
    }
}
