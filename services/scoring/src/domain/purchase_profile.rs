//! A customer's purchase history in one row, kept by the feed: what RFM recency and the customer
//! value model read at every evaluation, so that neither reads every purchase
//! (docs/SCORING.md, "Purchase profiles").
//!
//! Purchases refunded in full do not count; a partly refunded one counts its net amount.
//! Purchase days are calendar days in the program's time zone (a basket split over two tills
//! on one day is one visit, as the value model counts them).
//!
//! The feed adds a purchase to a profile in place when it falls on the profile's last purchase
//! day or later ([`PurchaseProfile::add`]), which is nearly always; a purchase from an earlier
//! day, and any refund, make the store count the profile again from the customer's purchases
//! ([`PurchaseProfile::of`] on SQLite, the same arithmetic in SQL on Postgres).

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The day of `at` in `zone`.
pub fn day_of(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
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
}

/// A purchase from before the profile's last purchase day: the profile is counted again from
/// the customer's purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlierDay;

impl PurchaseProfile {
    /// The profile of a single purchase at `at` (the first day's spend is not repeat spend, so
    /// its amount does not show).
    pub fn first(at: DateTime<Utc>, zone: Tz) -> Self {
        let day = day_of(at, zone);
        Self {
            last_purchase_at: at,
            first_day: day,
            last_day: day,
            purchase_days: 1,
            repeat_spend_minor: 0,
        }
    }

    /// Adds a purchase of `net_minor` made at `at`, on the last purchase day or later (any
    /// instant of that day). An earlier day cannot be added in place: which days it joins or
    /// moves is known only from the other purchases.
    pub fn add(&mut self, at: DateTime<Utc>, net_minor: i64, zone: Tz) -> Result<(), EarlierDay> {
        let day = day_of(at, zone);
        if day < self.last_day {
            return Err(EarlierDay);
        }
        if day > self.last_day {
            self.purchase_days += 1;
            self.last_day = day;
        }
        // More on the first day is not a repeat purchase.
        if day != self.first_day {
            self.repeat_spend_minor += net_minor;
        }
        self.last_purchase_at = self.last_purchase_at.max(at);
        Ok(())
    }

    /// The profile of `purchases` `(at, net)` in time order, those refunded in full left out;
    /// `None` without any.
    pub fn of(purchases: impl IntoIterator<Item = (DateTime<Utc>, i64)>, zone: Tz) -> Option<Self> {
        let mut purchases = purchases.into_iter();
        let (at, _) = purchases.next()?;
        let mut profile = Self::first(at, zone);
        for (at, net) in purchases {
            // In time order, no purchase is from an earlier day.
            profile
                .add(at, net, zone)
                .expect("purchases in time order are never from an earlier day");
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
        }
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
        let mut added = PurchaseProfile::first(purchases[0].0, SEOUL);
        for (at, net) in &purchases[1..] {
            added.add(*at, *net, SEOUL).expect("same day or later");
        }
        let mut sorted = purchases;
        sorted.sort_by_key(|(at, _)| *at);
        assert_eq!(Some(added), PurchaseProfile::of(sorted, SEOUL));
        assert_eq!(added.last_purchase_at, at("2026-03-09T10:00:00+09:00"));
        assert_eq!(added.repeat_spend_minor, 28_000);
    }

    #[test]
    fn a_purchase_from_an_earlier_day_is_not_added_in_place() {
        let mut profile = PurchaseProfile::first(at("2026-03-05T10:00:00+09:00"), SEOUL);
        let before = profile;
        assert_eq!(
            profile.add(at("2026-03-04T23:00:00+09:00"), 2_000, SEOUL),
            Err(EarlierDay)
        );
        assert_eq!(profile, before, "left as it was");
    }
}
