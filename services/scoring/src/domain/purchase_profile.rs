//! A customer's purchase history in one row, kept by the feed: what RFM recency and the customer
//! value model read at every evaluation, so that neither reads every purchase
//! (docs/SCORING.md, "Purchase profiles").
//!
//! Purchases refunded in full do not count; a partly refunded one counts its net amount.
//! Purchase days are calendar days in the program's time zone (a basket split over two tills
//! on one day is one visit, as the value model counts them).
//!
//! The feed adds a purchase to a profile in place when it falls on the profile's first or last
//! purchase day, or before the first or after the last ([`PurchaseProfile::add`]), and one from
//! a day between them once the store has said whether that day is a purchase day already
//! ([`PurchaseProfile::add_knowing`]). A refund makes the store count the profile again from
//! the customer's purchases ([`PurchaseProfile::of`] on SQLite, the same arithmetic in SQL on
//! Postgres).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The day of `at` in `zone`.
pub fn day_of(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

/// The first instant whose [`day_of`] in `zone` is `day` or later: the instants of `day` are
/// those from it until the next day's.
pub fn start_of(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    // Midnight can fall in a gap (a clock change at midnight, of an hour or less), and a zone
    // can skip a whole day (Pacific/Apia skipped 30 December 2011): the first local minute that
    // exists from midnight on, the next day's if none of this one's does.
    let mut local = day.and_time(chrono::NaiveTime::MIN);
    for _ in 0..2 * 24 * 60 {
        if let Some(at) = zone.from_local_datetime(&local).earliest() {
            return at.with_timezone(&Utc);
        }
        local += chrono::Duration::minutes(1);
    }
    DateTime::<Utc>::MIN_UTC
}

/// One customer's counted purchases (net of refunds, those refunded in full left out),
/// summed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseProfile {
    /// The latest purchase's instant (RFM recency counts from it).
    pub last_purchase_at: DateTime<Utc>,
    /// The first purchase day, in the program's zone.
    pub first_day: NaiveDate,
    /// The last purchase day, in the program's zone.
    pub last_day: NaiveDate,
    /// Days with a purchase, the first included.
    pub purchase_days: u32,
    /// Net spend of the purchase days after the first, minor units.
    pub repeat_spend_minor: i64,
    /// Net spend of the first purchase day, minor units: what becomes repeat spend when an
    /// earlier day arrives. `None` in profiles counted before it was kept (migration
    /// `20261204100024`): a purchase from before their first day counts them again, which
    /// keeps it from then on.
    pub first_day_spend_minor: Option<i64>,
}

/// A purchase the profile cannot take in place (a day between its first and last purchase days,
/// whose newness only the purchases tell, or before a first day whose spend is not kept): the
/// profile is counted again from the customer's purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountAgain;

impl PurchaseProfile {
    /// Whether the profile is what a summary at `as_of` reads: no purchase after `as_of` is in
    /// it. (A later one is: that customer is summarised from their purchases up to `as_of`.)
    pub fn settled_at(&self, as_of: DateTime<Utc>) -> bool {
        self.last_purchase_at <= as_of
    }

    /// The profile of a single purchase of `net_minor` at `at` (the first day's spend is not
    /// repeat spend).
    pub fn first(at: DateTime<Utc>, net_minor: i64, zone: Tz) -> Self {
        let day = day_of(at, zone);
        Self {
            last_purchase_at: at,
            first_day: day,
            last_day: day,
            purchase_days: 1,
            repeat_spend_minor: 0,
            first_day_spend_minor: Some(net_minor),
        }
    }

    /// Adds a purchase of `net_minor` made at `at` (any instant of its day), when its day is
    /// the first or the last purchase day, after the last, or before the first. A day between
    /// them cannot be added in place: whether it is a new purchase day is known only from the
    /// other purchases ([`Self::add_knowing`]).
    pub fn add(&mut self, at: DateTime<Utc>, net_minor: i64, zone: Tz) -> Result<(), CountAgain> {
        self.add_knowing(at, net_minor, zone, |_| None)
    }

    /// Adds a purchase as [`Self::add`] does, and one from a day between the first and the last
    /// purchase day when `purchase_day` says whether that day is a purchase day already (`None`:
    /// not known, the profile is counted again).
    pub fn add_knowing(
        &mut self,
        at: DateTime<Utc>,
        net_minor: i64,
        zone: Tz,
        purchase_day: impl FnOnce(NaiveDate) -> Option<bool>,
    ) -> Result<(), CountAgain> {
        let day = day_of(at, zone);
        if day == self.first_day {
            // More on the first day is not a repeat purchase (the first day may be the last).
            self.first_day_spend_minor = self.first_day_spend_minor.map(|spend| spend + net_minor);
        } else if day >= self.last_day {
            if day > self.last_day {
                self.purchase_days += 1;
                self.last_day = day;
            }
            self.repeat_spend_minor += net_minor;
        } else if day < self.first_day {
            // The old first day becomes a repeat day.
            let old_first_day_spend = self.first_day_spend_minor.ok_or(CountAgain)?;
            self.purchase_days += 1;
            self.first_day = day;
            self.repeat_spend_minor += old_first_day_spend;
            self.first_day_spend_minor = Some(net_minor);
        } else {
            if !purchase_day(day).ok_or(CountAgain)? {
                self.purchase_days += 1;
            }
            self.repeat_spend_minor += net_minor;
        }
        self.last_purchase_at = self.last_purchase_at.max(at);
        Ok(())
    }

    /// The profile of `purchases` `(at, net)` in time order, those refunded in full left out;
    /// `None` without any.
    pub fn of(purchases: impl IntoIterator<Item = (DateTime<Utc>, i64)>, zone: Tz) -> Option<Self> {
        let mut purchases = purchases.into_iter();
        let (at, net) = purchases.next()?;
        let mut profile = Self::first(at, net, zone);
        for (at, net) in purchases {
            // In time order, every purchase is on the last day or after it.
            profile
                .add(at, net, zone)
                .expect("purchases in time order are on the last day or after it");
        }
        Some(profile)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("day")
    }

    const SEOUL: Tz = chrono_tz::Asia::Seoul;

    /// The profile of purchases on 1 March (twice), 3 March and 10 March (twice) in Seoul, the
    /// last at 18:00, with 30,000 spent on the two repeat days.
    pub(crate) fn march() -> PurchaseProfile {
        PurchaseProfile {
            last_purchase_at: at("2026-03-10T18:00:00+09:00"),
            first_day: day("2026-03-01"),
            last_day: day("2026-03-10"),
            purchase_days: 3,
            repeat_spend_minor: 30_000,
            first_day_spend_minor: Some(12_000),
        }
    }

    #[test]
    fn a_day_starts_at_its_first_instant_even_when_midnight_or_the_whole_day_is_skipped() {
        let date = |text: &str| text.parse::<NaiveDate>().expect("day");
        // An ordinary day in Seoul.
        assert_eq!(
            start_of(date("2026-03-05"), SEOUL),
            at("2026-03-05T00:00:00+09:00")
        );
        // São Paulo moved its clocks from midnight to 01:00 on 4 November 2018.
        let sao_paulo = chrono_tz::America::Sao_Paulo;
        let first = start_of(date("2018-11-04"), sao_paulo);
        assert_eq!(first, at("2018-11-04T01:00:00-02:00"));
        assert_eq!(day_of(first, sao_paulo), date("2018-11-04"));
        assert_eq!(
            day_of(first - chrono::Duration::microseconds(1), sao_paulo),
            date("2018-11-03")
        );
        // Apia skipped 30 December 2011: the 29th ends where the 31st begins.
        let apia = chrono_tz::Pacific::Apia;
        let next = start_of(date("2011-12-30"), apia);
        assert_eq!(next, start_of(date("2011-12-31"), apia));
        assert_eq!(day_of(next, apia), date("2011-12-31"));
        assert_eq!(
            day_of(next - chrono::Duration::microseconds(1), apia),
            date("2011-12-29")
        );
    }

    #[test]
    fn purchase_days_in_the_programs_zone_are_the_visits() {
        // 1 March twice in Seoul (the second is 28 February in UTC), then 3 and 10 March, the
        // latter twice.
        let profile = PurchaseProfile::of(
            [
                (at("2026-03-01T08:30:00+09:00"), 5_000),
                (at("2026-03-01T23:30:00+09:00"), 7_000),
                (at("2026-03-03T12:00:00+09:00"), 10_000),
                (at("2026-03-10T09:00:00+09:00"), 4_000),
                (at("2026-03-10T18:00:00+09:00"), 16_000),
            ],
            SEOUL,
        )
        .expect("bought");
        assert_eq!(profile, march());
        assert_eq!(
            PurchaseProfile::of([], SEOUL),
            None,
            "no purchase, no profile"
        );
    }

    #[test]
    fn a_purchase_on_the_last_day_or_later_is_added_in_place_as_the_fold_counts_it() {
        let purchases = [
            (at("2026-03-01T10:00:00+09:00"), 1_000),
            (at("2026-03-01T09:00:00+09:00"), 2_000),
            (at("2026-03-04T10:00:00+09:00"), 4_000),
            (at("2026-03-04T08:00:00+09:00"), 8_000),
            (at("2026-03-09T10:00:00+09:00"), 16_000),
        ];
        let mut added = PurchaseProfile::first(purchases[0].0, purchases[0].1, SEOUL);
        for (at, net) in &purchases[1..] {
            added.add(*at, *net, SEOUL).expect("same day or later");
        }
        let mut sorted = purchases;
        sorted.sort_by_key(|(at, _)| *at);
        assert_eq!(Some(added), PurchaseProfile::of(sorted, SEOUL));
        assert_eq!(added.last_purchase_at, at("2026-03-09T10:00:00+09:00"));
        assert_eq!(added.repeat_spend_minor, 28_000);
        assert_eq!(added.first_day_spend_minor, Some(3_000));
    }

    /// Every order of `purchases`, each purchase added in place where it can be and the
    /// profile counted again from the purchases so far where it cannot, as the feed does.
    fn in_every_order(
        purchases: &[(DateTime<Utc>, i64)],
        check: &dyn Fn(&[usize], PurchaseProfile, usize),
    ) {
        fn orders(left: Vec<usize>, taken: &mut Vec<usize>, each: &mut dyn FnMut(&[usize])) {
            if left.is_empty() {
                each(taken);
            }
            for (position, next) in left.iter().enumerate() {
                let mut rest = left.clone();
                rest.remove(position);
                taken.push(*next);
                orders(rest, taken, each);
                taken.pop();
            }
        }
        orders(
            (0..purchases.len()).collect(),
            &mut Vec::new(),
            &mut |order| {
                let (first, rest) = order.split_first().expect("a purchase");
                let mut profile =
                    PurchaseProfile::first(purchases[*first].0, purchases[*first].1, SEOUL);
                let mut counted_again = 0;
                for (seen, index) in rest.iter().enumerate() {
                    let (at, net) = purchases[*index];
                    if profile.add(at, net, SEOUL).is_err() {
                        counted_again += 1;
                        let mut so_far: Vec<_> =
                            order[..seen + 2].iter().map(|i| purchases[*i]).collect();
                        so_far.sort_by_key(|(at, _)| *at);
                        profile = PurchaseProfile::of(so_far, SEOUL).expect("bought");
                    }
                }
                check(order, profile, counted_again);
            },
        );
    }

    /// Two purchases on 1 March in Seoul (one 28 February in UTC), two on 4 March, one on 9
    /// March, not in time order.
    fn scattered_march() -> [(DateTime<Utc>, i64); 5] {
        [
            (at("2026-03-01T23:30:00+09:00"), 1_000),
            (at("2026-03-01T08:00:00+09:00"), 2_000),
            (at("2026-03-04T10:00:00+09:00"), 4_000),
            (at("2026-03-04T08:00:00+09:00"), 8_000),
            (at("2026-03-09T10:00:00+09:00"), 16_000),
        ]
    }

    #[test]
    fn purchases_added_in_any_order_make_the_profile_the_fold_of_them_in_time_order_makes() {
        let purchases = scattered_march();
        let mut sorted = purchases;
        sorted.sort_by_key(|(at, _)| *at);
        let folded = PurchaseProfile::of(sorted, SEOUL).expect("bought");
        assert_eq!(
            folded,
            PurchaseProfile {
                last_purchase_at: at("2026-03-09T10:00:00+09:00"),
                first_day: day("2026-03-01"),
                last_day: day("2026-03-09"),
                purchase_days: 3,
                repeat_spend_minor: 28_000,
                first_day_spend_minor: Some(3_000),
            }
        );
        in_every_order(&purchases, &|order, profile, counted_again| {
            assert_eq!(profile, folded, "in the order {order:?}");
            // Only 4 March can fall between the first and last days seen so far.
            let fourth_of_march_between = order
                .iter()
                .enumerate()
                .filter(|(seen, index)| {
                    **index >= 2 && **index < 4 && {
                        let before = &order[..*seen];
                        before.iter().any(|i| *i < 2) && before.contains(&4)
                    }
                })
                .count();
            assert_eq!(
                counted_again, fourth_of_march_between,
                "in the order {order:?}"
            );
        });
    }

    #[test]
    fn purchases_added_in_any_order_knowing_the_purchase_days_so_far_are_never_counted_again() {
        // And one on 6 March, between 4 and 9 March.
        let mut purchases = scattered_march().to_vec();
        purchases.push((at("2026-03-06T10:00:00+09:00"), 32_000));
        let mut sorted = purchases.clone();
        sorted.sort_by_key(|(at, _)| *at);
        let folded = PurchaseProfile::of(sorted, SEOUL).expect("bought");
        assert_eq!(
            (folded.purchase_days, folded.repeat_spend_minor),
            (4, 60_000)
        );
        in_every_order(&purchases, &|order, _, _| {
            let (first, rest) = order.split_first().expect("a purchase");
            let mut profile =
                PurchaseProfile::first(purchases[*first].0, purchases[*first].1, SEOUL);
            for (seen, index) in rest.iter().enumerate() {
                let (at, net) = purchases[*index];
                let days_so_far: Vec<NaiveDate> = order[..=seen]
                    .iter()
                    .map(|i| day_of(purchases[*i].0, SEOUL))
                    .collect();
                profile
                    .add_knowing(at, net, SEOUL, |day| Some(days_so_far.contains(&day)))
                    .expect("every day is known");
            }
            assert_eq!(profile, folded, "in the order {order:?}");
        });
    }

    #[test]
    fn a_purchase_from_a_day_between_the_first_and_the_last_is_not_added_in_place() {
        let mut profile = PurchaseProfile::of(
            [
                (at("2026-03-01T10:00:00+09:00"), 1_000),
                (at("2026-03-05T10:00:00+09:00"), 2_000),
            ],
            SEOUL,
        )
        .expect("bought");
        let before = profile;
        assert_eq!(
            profile.add(at("2026-03-04T23:00:00+09:00"), 4_000, SEOUL),
            Err(CountAgain)
        );
        assert_eq!(profile, before, "left as it was");
    }

    #[test]
    fn a_profile_without_its_first_days_spend_is_counted_again_for_an_earlier_day() {
        let mut profile = PurchaseProfile {
            first_day_spend_minor: None,
            ..PurchaseProfile::first(at("2026-03-05T10:00:00+09:00"), 1_000, SEOUL)
        };
        let before = profile;
        assert_eq!(
            profile.add(at("2026-03-04T23:00:00+09:00"), 2_000, SEOUL),
            Err(CountAgain)
        );
        assert_eq!(profile, before, "left as it was");
        // Later days, and more on the first day, need no first day's spend.
        profile
            .add(at("2026-03-05T12:00:00+09:00"), 4_000, SEOUL)
            .expect("the first day");
        profile
            .add(at("2026-03-07T12:00:00+09:00"), 8_000, SEOUL)
            .expect("a later day");
        assert_eq!(
            (profile.purchase_days, profile.repeat_spend_minor),
            (2, 8_000)
        );
        assert_eq!(profile.first_day_spend_minor, None);
    }
}
