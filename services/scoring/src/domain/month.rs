//! Calendar months, the granularity of aggregates: every activity lands in the month of its
//! `occurred_at` in the program's time zone, and windows are ranges of whole months.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

/// A calendar month.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Month {
    /// Months since year 0 (`year * 12 + month - 1`), so that months subtract and compare.
    index: i32,
}

impl Month {
    /// The month of `year` and `month` (1-12); `None` when `month` is out of range.
    pub fn new(year: i32, month: u32) -> Option<Self> {
        (1..=12).contains(&month).then(|| Self {
            index: year * 12 + month as i32 - 1,
        })
    }

    /// The month in which `instant` falls in `zone`.
    pub fn of(instant: DateTime<Utc>, zone: Tz) -> Self {
        let local = instant.with_timezone(&zone);
        Self {
            index: local.year() * 12 + local.month0() as i32,
        }
    }

    /// The month of a calendar date.
    pub fn of_date(date: NaiveDate) -> Self {
        Self {
            index: date.year() * 12 + date.month0() as i32,
        }
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.index.div_euclid(12)
    }

    /// The month of the year, 1-12.
    pub fn month(self) -> u32 {
        self.index.rem_euclid(12) as u32 + 1
    }

    /// This month moved by `months` (negative moves back).
    pub fn plus(self, months: i32) -> Self {
        Self {
            index: self.index + months,
        }
    }

    /// Whole months from `earlier` to `self`.
    pub fn since(self, earlier: Self) -> i32 {
        self.index - earlier.index
    }

    /// The first day of the month.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year(), self.month(), 1).unwrap_or(NaiveDate::MIN)
    }

    /// The instant the month starts in `zone`.
    pub fn start_in(self, zone: Tz) -> DateTime<Utc> {
        super::purchase_profile::start_of(self.first_day(), zone)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn months_follow_the_programs_time_zone() {
        // 2026-01-31 20:00 UTC is already February 1st in Seoul.
        let instant = at("2026-01-31T20:00:00Z");
        assert_eq!(Month::of(instant, chrono_tz::UTC).to_string(), "2026-01");
        assert_eq!(
            Month::of(instant, chrono_tz::Asia::Seoul).to_string(),
            "2026-02"
        );
    }

    #[test]
    fn month_arithmetic_crosses_years() {
        let november = Month::new(2026, 11).expect("month");
        assert_eq!(november.plus(2).to_string(), "2027-01");
        assert_eq!(november.plus(-11).to_string(), "2025-12");
        assert_eq!(november.since(Month::new(2025, 11).expect("month")), 12);
        assert_eq!(Month::new(2026, 13), None);
    }

    #[test]
    fn a_month_starts_at_local_midnight() {
        let march = Month::new(2026, 3).expect("month");
        assert_eq!(
            march.start_in(chrono_tz::Asia::Seoul),
            at("2026-02-28T15:00:00Z")
        );
    }
}
