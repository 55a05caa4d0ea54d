//! When evaluations are due: local wall-clock times in the policy's time zone, turned into
//! instants. The scheduler runs each due time exactly once (its run is keyed by the due instant),
//! so these functions must give the same instants every time they are asked.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::{
    month::Month,
    policy::{EvaluationSchedule, Frequency, PolicyRules},
    window::{judged_at, reviews},
};

/// The due instant of `schedule` in `month`, if the schedule is due that month.
fn due_in(schedule: &EvaluationSchedule, zone: Tz, month: Month) -> Option<DateTime<Utc>> {
    let months_from_anchor = (month.month() as i32 - schedule.month_of_year as i32).rem_euclid(12);
    let due_this_month = match schedule.frequency {
        Frequency::Monthly => true,
        Frequency::Quarterly => months_from_anchor % 3 == 0,
        Frequency::Yearly => months_from_anchor == 0,
    };
    if !due_this_month {
        return None;
    }
    let local = NaiveDate::from_ymd_opt(month.year(), month.month(), schedule.day_of_month)?
        .and_hms_opt(schedule.local_hour, schedule.local_minute, 0)?;
    // A local time skipped by a DST change runs at the first valid instant after it; a repeated
    // one at its first occurrence.
    let resolved = zone.from_local_datetime(&local).earliest().or_else(|| {
        zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(resolved.with_timezone(&Utc))
}

/// The first due instant strictly after `after`.
pub fn next_due(schedule: &EvaluationSchedule, zone: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let start = Month::of(after, zone);
    (0..=13)
        .filter_map(|offset| due_in(schedule, zone, start.plus(offset)))
        .find(|due| *due > after)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The first scheduled run after `after` that reviews a member who joined at `joined_at`: the
/// next run for a rolling or lifetime window; for a year window, the first whose judged month
/// closes the member's year (validation keeps that within a year of runs).
pub fn next_review(
    rules: &PolicyRules,
    joined_at: DateTime<Utc>,
    after: DateTime<Utc>,
) -> DateTime<Utc> {
    let zone = rules.time_zone;
    let mut due = next_due(&rules.schedule, zone, after);
    for _ in 0..12 {
        if reviews(rules.window, judged_at(due, zone), zone, joined_at) {
            break;
        }
        due = next_due(&rules.schedule, zone, due);
    }
    due
}

/// The latest due instant at or before `at`, if any in the past 13 months.
pub fn last_due(
    schedule: &EvaluationSchedule,
    zone: Tz,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let start = Month::of(at, zone);
    (0..=13)
        .filter_map(|offset| due_in(schedule, zone, start.plus(-offset)))
        .find(|due| *due <= at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn schedule(frequency: Frequency, month_of_year: u32) -> EvaluationSchedule {
        EvaluationSchedule {
            frequency,
            day_of_month: 1,
            month_of_year,
            local_hour: 3,
            local_minute: 0,
        }
    }

    #[test]
    fn monthly_on_the_first_at_three_in_seoul() {
        let monthly = schedule(Frequency::Monthly, 1);
        let seoul = chrono_tz::Asia::Seoul;
        // 03:00 in Seoul is 18:00 UTC the day before.
        assert_eq!(
            next_due(&monthly, seoul, at("2026-11-24T00:00:00Z")),
            at("2026-11-30T18:00:00Z")
        );
        assert_eq!(
            next_due(&monthly, seoul, at("2026-11-30T18:00:00Z")),
            at("2026-12-31T18:00:00Z"),
            "strictly after"
        );
        assert_eq!(
            last_due(&monthly, seoul, at("2026-11-24T00:00:00Z")),
            Some(at("2026-10-31T18:00:00Z"))
        );
        assert_eq!(
            last_due(&monthly, seoul, at("2026-11-30T18:00:00Z")),
            Some(at("2026-11-30T18:00:00Z"))
        );
    }

    #[test]
    fn quarterly_and_yearly_follow_their_anchor_month() {
        let quarterly = schedule(Frequency::Quarterly, 2);
        assert_eq!(
            next_due(&quarterly, chrono_tz::UTC, at("2026-11-24T00:00:00Z")),
            at("2027-02-01T03:00:00Z")
        );
        assert_eq!(
            last_due(&quarterly, chrono_tz::UTC, at("2026-11-24T00:00:00Z")),
            Some(at("2026-11-01T03:00:00Z"))
        );
        let yearly = schedule(Frequency::Yearly, 1);
        assert_eq!(
            next_due(&yearly, chrono_tz::UTC, at("2026-11-24T00:00:00Z")),
            at("2027-01-01T03:00:00Z")
        );
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_runs_just_after_the_gap() {
        // 2026-03-08 02:30 does not exist in New York (clocks jump from 02:00 to 03:00).
        let at_half_two = EvaluationSchedule {
            frequency: Frequency::Monthly,
            day_of_month: 8,
            month_of_year: 1,
            local_hour: 2,
            local_minute: 30,
        };
        let due = next_due(
            &at_half_two,
            chrono_tz::America::New_York,
            at("2026-03-01T00:00:00Z"),
        );
        assert_eq!(due, at("2026-03-08T07:30:00Z"), "03:30 EDT");
    }
}
