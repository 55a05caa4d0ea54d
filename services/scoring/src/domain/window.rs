//! Qualification windows over monthly buckets. Aggregates are kept per program, customer and
//! month, so a window total is a sum over at most a few dozen rows, never a rescan of history. A
//! late event lands in its own month; a refund in its purchase's month; a month that has left the
//! window no longer counts.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{month::Month, policy::Metric, policy::WindowKind};

/// One month of one customer's activity in one program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    /// The month.
    pub month: Month,
    /// Purchases minus refunds, minor units.
    pub net_spend_minor: i64,
    /// Points earned minus points refunded.
    pub points: i64,
    /// Purchases not fully refunded.
    pub purchases: i64,
}

/// The months a window covers, both ends included; `from: None` is the beginning of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    /// First month counted.
    pub from: Option<Month>,
    /// Last month counted.
    pub to: Month,
}

impl MonthRange {
    /// Whether `month` is counted.
    pub fn contains(&self, month: Month) -> bool {
        self.from.is_none_or(|from| month >= from) && month <= self.to
    }
}

/// The months that count at `as_of` for a customer who joined at `joined_at`.
pub fn months_at(
    kind: WindowKind,
    as_of: DateTime<Utc>,
    zone: Tz,
    joined_at: DateTime<Utc>,
) -> MonthRange {
    months_in(kind, Month::of(as_of, zone), zone, joined_at)
}

/// The months that count at any instant of month `current` (in `zone`) for a customer who
/// joined at `joined_at`: what [`months_at`] says of each of its instants, found without
/// placing an instant in the zone (only a membership year places the join).
pub fn months_in(
    kind: WindowKind,
    current: Month,
    zone: Tz,
    joined_at: DateTime<Utc>,
) -> MonthRange {
    let from = match kind {
        WindowKind::RollingMonths(months) => Some(current.plus(1 - months as i32)),
        WindowKind::CalendarYear => Month::new(current.year(), 1),
        WindowKind::MembershipYear => {
            let joined = Month::of(joined_at, zone);
            let years = current.since(joined).max(0) / 12;
            Some(joined.plus(years * 12))
        }
        WindowKind::Lifetime => None,
    };
    MonthRange { from, to: current }
}

/// Whether a judgement as of `as_of` reviews the member's window, which it does only when the
/// window is complete then: a rolling or lifetime window always; a year window (calendar or
/// membership) when `as_of` ends its twelfth month, as a scheduled run's judged instant
/// ([`judged_at`]) does for the members whose year closes in that month. Nobody is judged on a
/// year still in progress (docs/SCORING.md, "Year windows").
pub fn reviews(kind: WindowKind, as_of: DateTime<Utc>, zone: Tz, joined_at: DateTime<Utc>) -> bool {
    match kind {
        WindowKind::RollingMonths(_) | WindowKind::Lifetime => true,
        WindowKind::CalendarYear | WindowKind::MembershipYear => {
            let month = Month::of(as_of, zone);
            let month_ends = Month::of(as_of + chrono::Duration::nanoseconds(1), zone) != month;
            month_ends && reviews_at_end_of(kind, month, zone, joined_at)
        }
    }
}

/// Whether a judgement at the last instant of `month` (in `zone`) reviews the member's window:
/// what [`reviews`] says of that instant, found without placing it in the zone.
pub fn reviews_at_end_of(
    kind: WindowKind,
    month: Month,
    zone: Tz,
    joined_at: DateTime<Utc>,
) -> bool {
    match kind {
        WindowKind::RollingMonths(_) | WindowKind::Lifetime => true,
        WindowKind::CalendarYear | WindowKind::MembershipYear => {
            let range = months_in(kind, month, zone, joined_at);
            range.from.is_some_and(|from| range.to == from.plus(11))
        }
    }
}

/// The instant whose window an evaluation due at `due` judges: the end of the month before the
/// due month. An evaluation due on December 1st judges the window as it stood on November 30th —
/// for a 12-month rolling window, December to November — which is also what a lookup showed just
/// before; the first hours of the new month do not count against anyone.
pub fn judged_at(due: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    Month::of(due, zone).start_in(zone) - chrono::Duration::nanoseconds(1)
}

/// A customer's totals over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// Net spend, minor units.
    pub net_spend_minor: i64,
    /// Points.
    pub points: i64,
    /// Purchases.
    pub purchases: i64,
}

impl Totals {
    /// Sums the buckets inside `range`.
    pub fn over(buckets: &[Bucket], range: MonthRange) -> Self {
        buckets
            .iter()
            .filter(|bucket| range.contains(bucket.month))
            .fold(Self::default(), |totals, bucket| Self {
                net_spend_minor: totals.net_spend_minor + bucket.net_spend_minor,
                points: totals.points + bucket.points,
                purchases: totals.purchases + bucket.purchases,
            })
    }

    /// The value of one metric.
    pub fn value(&self, metric: Metric) -> i64 {
        match metric {
            Metric::NetSpend => self.net_spend_minor,
            Metric::Points => self.points,
            Metric::PurchaseCount => self.purchases,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_window_is_reviewed_only_at_the_end_of_its_twelfth_month() {
        let seoul = chrono_tz::Asia::Seoul;
        let joined = at("2024-11-20T03:00:00Z");
        // Runs due on the 1st judge the last instant of the month before.
        let end_of = |due: &str| judged_at(at(due), seoul);
        let membership = WindowKind::MembershipYear;
        assert!(
            reviews(membership, end_of("2025-11-01T00:00:00Z"), seoul, joined),
            "first anniversary"
        );
        assert!(
            reviews(membership, end_of("2026-11-01T00:00:00Z"), seoul, joined),
            "second"
        );
        for due in [
            "2025-10-01T00:00:00Z",
            "2025-12-01T00:00:00Z",
            "2026-06-01T00:00:00Z",
        ] {
            assert!(
                !reviews(membership, end_of(due), seoul, joined),
                "{due}: a year in progress"
            );
        }
        // A run by hand judges a month still running.
        assert!(!reviews(
            membership,
            at("2026-10-31T12:00:00Z"),
            seoul,
            joined
        ));
        let calendar = WindowKind::CalendarYear;
        assert!(reviews(
            calendar,
            end_of("2027-01-01T00:00:00Z"),
            seoul,
            joined
        ));
        assert!(!reviews(
            calendar,
            end_of("2026-12-01T00:00:00Z"),
            seoul,
            joined
        ));
        assert!(!reviews(
            calendar,
            end_of("2026-04-01T00:00:00Z"),
            seoul,
            joined
        ));
        for kind in [WindowKind::RollingMonths(12), WindowKind::Lifetime] {
            assert!(reviews(kind, end_of("2026-04-01T00:00:00Z"), seoul, joined));
            assert!(reviews(kind, at("2026-04-15T00:00:00Z"), seoul, joined));
        }
    }

    #[test]
    fn reckoned_in_months_a_window_is_what_it_is_at_each_months_last_instant() {
        let seoul = chrono_tz::Asia::Seoul;
        let kinds = [
            WindowKind::RollingMonths(12),
            WindowKind::RollingMonths(3),
            WindowKind::CalendarYear,
            WindowKind::MembershipYear,
            WindowKind::Lifetime,
        ];
        // Joined on the last evening of a month in Seoul (still that month's day in UTC too),
        // and on a month's first morning in Seoul (the month before in UTC).
        for joined_at in [at("2024-11-30T12:00:00Z"), at("2025-02-28T16:30:00Z")] {
            for kind in kinds {
                for index in 0..40 {
                    let month = Month::new(2024, 10).expect("month").plus(index);
                    let last_instant =
                        month.plus(1).start_in(seoul) - chrono::Duration::nanoseconds(1);
                    assert_eq!(
                        months_in(kind, month, seoul, joined_at),
                        months_at(kind, last_instant, seoul, joined_at),
                        "{kind:?} in {month:?}"
                    );
                    assert_eq!(
                        reviews_at_end_of(kind, month, seoul, joined_at),
                        reviews(kind, last_instant, seoul, joined_at),
                        "{kind:?} at the end of {month:?}"
                    );
                }
            }
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn month(year: i32, month: u32) -> Month {
        Month::new(year, month).expect("month")
    }

    fn bucket(year: i32, m: u32, spend: i64) -> Bucket {
        Bucket {
            month: month(year, m),
            net_spend_minor: spend,
            points: 0,
            purchases: 1,
        }
    }

    #[test]
    fn a_rolling_window_counts_the_last_n_months_and_forgets_older_ones() {
        let range = months_at(
            WindowKind::RollingMonths(12),
            at("2026-11-24T10:00:00Z"),
            chrono_tz::UTC,
            at("2020-01-01T00:00:00Z"),
        );
        assert_eq!(
            (range.from, range.to),
            (Some(month(2025, 12)), month(2026, 11))
        );
        let buckets = [
            bucket(2025, 10, 500),
            bucket(2025, 12, 100),
            bucket(2026, 11, 50),
        ];
        // October 2025 is 13 months back: it no longer counts.
        assert_eq!(Totals::over(&buckets, range).net_spend_minor, 150);
    }

    #[test]
    fn an_evaluation_judges_the_window_that_closed_with_the_previous_month() {
        let seoul = chrono_tz::Asia::Seoul;
        let due = at("2026-11-30T18:00:00Z"); // December 1st, 03:00 in Seoul
        let range = months_at(
            WindowKind::RollingMonths(12),
            judged_at(due, seoul),
            seoul,
            at("2020-01-01T00:00:00Z"),
        );
        assert_eq!(
            (range.from, range.to),
            (Some(month(2025, 12)), month(2026, 11))
        );
    }

    #[test]
    fn calendar_and_membership_years_and_lifetime() {
        let as_of = at("2026-05-10T00:00:00Z");
        let joined = at("2023-08-15T00:00:00Z");
        let calendar = months_at(WindowKind::CalendarYear, as_of, chrono_tz::UTC, joined);
        assert_eq!(calendar.from, Some(month(2026, 1)));
        let membership = months_at(WindowKind::MembershipYear, as_of, chrono_tz::UTC, joined);
        assert_eq!(
            membership.from,
            Some(month(2025, 8)),
            "the membership year began at the last anniversary"
        );
        let lifetime = months_at(WindowKind::Lifetime, as_of, chrono_tz::UTC, joined);
        assert!(lifetime.contains(month(1999, 1)));
        assert!(
            !lifetime.contains(month(2026, 6)),
            "future months never count"
        );
    }

    #[test]
    fn refunds_and_late_events_count_in_their_month() {
        // A refund in November of a September purchase is booked in September.
        let buckets = [
            Bucket {
                month: month(2026, 9),
                net_spend_minor: 300 - 100,
                points: 0,
                purchases: 1,
            },
            Bucket {
                month: month(2026, 11),
                net_spend_minor: 40,
                points: 0,
                purchases: 1,
            },
        ];
        let range = months_at(
            WindowKind::RollingMonths(2),
            at("2026-11-24T00:00:00Z"),
            chrono_tz::UTC,
            at("2020-01-01T00:00:00Z"),
        );
        assert_eq!(
            Totals::over(&buckets, range).net_spend_minor,
            40,
            "September is outside a 2-month window"
        );
        let range = months_at(
            WindowKind::RollingMonths(3),
            at("2026-11-24T00:00:00Z"),
            chrono_tz::UTC,
            at("2020-01-01T00:00:00Z"),
        );
        assert_eq!(
            Totals::over(&buckets, range),
            Totals {
                net_spend_minor: 240,
                points: 0,
                purchases: 2
            }
        );
    }
}
