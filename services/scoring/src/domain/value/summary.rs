//! The per-customer summary the value model is fitted on and scores with, in days.
//!
//! A purchase day is one purchase: purchases a customer makes on one calendar day (in the
//! program's time zone) are one transaction, as the BG/NBD literature and the `lifetimes`
//! library count them, so that a basket split over two tills is not two visits. Purchases
//! refunded in full do not count; a partly refunded one counts its net amount.
//!
//! - frequency: purchase days after the first (repeat purchases);
//! - recency: days from the first purchase day to the last;
//! - age: days from the first purchase day to the summary's day;
//! - repeat spend: mean net spend of the repeat purchase days (the first day's spend is left
//!   out, as Gamma-Gamma is fitted on repeat purchases).
//!
//! A summary is a customer's purchase profile seen from the summary's day
//! ([`PurchaseSummary::of`]): the feed keeps the profiles, so a population is summarised
//! from one row per customer, not from every purchase. A customer the feed has seen buy since
//! the summary's instant is summarised from their purchases up to it, so that a summary at an
//! instant is the same whenever it is read.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::domain::purchase_profile::{PurchaseProfile, day_of};

/// One counted purchase as the summary reads it (refunded in full ones are left out by the
/// store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatedPurchase {
    /// The customer.
    pub customer_id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Amount less refunds, minor units.
    pub net_minor: i64,
}

/// The summaries of everyone in `purchases` (any order; sorted here by customer and time),
/// days in `zone`, at `as_of`; in customer id order.
pub(crate) fn summarise(
    purchases: &mut [DatedPurchase],
    zone: Tz,
    as_of: DateTime<Utc>,
) -> Vec<(Uuid, PurchaseSummary)> {
    purchases.sort_unstable_by_key(|purchase| (purchase.customer_id, purchase.occurred_at));
    let as_of_day = day_of(as_of, zone);
    purchases
        .chunk_by(|one, next| one.customer_id == next.customer_id)
        .filter_map(|own| {
            let profile = PurchaseProfile::of(
                own.iter()
                    .map(|purchase| (purchase.occurred_at, purchase.net_minor)),
                zone,
            )?;
            Some((own[0].customer_id, PurchaseSummary::of(&profile, as_of_day)))
        })
        .collect()
}

/// One customer's purchase history, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseSummary {
    /// Purchase days after the first.
    pub frequency: u32,
    /// Days from the first purchase day to the last.
    pub recency_days: u32,
    /// Days from the first purchase day to the summary's day.
    pub age_days: u32,
    /// Mean net spend of the repeat purchase days, minor units; 0 without repeat purchases.
    pub repeat_spend_minor: f64,
}

impl PurchaseSummary {
    /// The summary of `profile` on `as_of_day` (a day no earlier than its last purchase day).
    pub fn of(profile: &PurchaseProfile, as_of_day: NaiveDate) -> Self {
        Self::of_days(
            profile.first_day,
            profile.last_day,
            profile.purchase_days,
            profile.repeat_spend_minor,
            as_of_day,
        )
    }

    /// The summary on `as_of_day` of a profile's days: its first and last purchase day, its
    /// purchase days and the net spend of those after the first.
    pub fn of_days(
        first_day: NaiveDate,
        last_day: NaiveDate,
        purchase_days: u32,
        repeat_spend_minor: i64,
        as_of_day: NaiveDate,
    ) -> Self {
        let days_between =
            |from: NaiveDate, to: NaiveDate| u32::try_from((to - from).num_days()).unwrap_or(0);
        let frequency = purchase_days.saturating_sub(1);
        Self {
            frequency,
            recency_days: days_between(first_day, last_day),
            age_days: days_between(first_day, as_of_day),
            repeat_spend_minor: if frequency == 0 {
                0.0
            } else {
                repeat_spend_minor as f64 / f64::from(frequency)
            },
        }
    }
}

/// The profiles of a program's buyers as a population summary reads them: no ids, one vector
/// per field the summary needs, the same index for one customer. A million customers are 20
/// MB, read from Postgres as arrays rather than a row each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileDays {
    /// The first purchase day, in the program's zone.
    pub first_day: Vec<NaiveDate>,
    /// The last purchase day, in the program's zone.
    pub last_day: Vec<NaiveDate>,
    /// Days with a purchase, the first included.
    pub purchase_days: Vec<u32>,
    /// Net spend of the purchase days after the first, minor units.
    pub repeat_spend_minor: Vec<i64>,
}

impl ProfileDays {
    /// Customers held.
    pub fn len(&self) -> usize {
        self.first_day.len()
    }

    /// Whether it holds nobody.
    pub fn is_empty(&self) -> bool {
        self.first_day.is_empty()
    }

    /// Adds the customers of `other` after these.
    pub fn append(&mut self, mut other: Self) {
        self.first_day.append(&mut other.first_day);
        self.last_day.append(&mut other.last_day);
        self.purchase_days.append(&mut other.purchase_days);
        self.repeat_spend_minor
            .append(&mut other.repeat_spend_minor);
    }
}

/// A program's purchase profiles as a summary at an instant reads them
/// ([`ValueModelStore::profiles_at`](super::store::ValueModelStore::profiles_at)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilesAt {
    /// The profiles of those whose last purchase is no later than the instant: summarised as
    /// they are.
    pub settled: ProfileDays,
    /// Those who bought since: summarised from their purchases up to the instant.
    pub bought_since: Vec<Uuid>,
}

impl ProfilesAt {
    /// `profiles` as a summary at `as_of` reads them.
    pub fn of(
        profiles: impl IntoIterator<Item = (Uuid, PurchaseProfile)>,
        as_of: DateTime<Utc>,
    ) -> Self {
        let mut at = Self::default();
        for (customer_id, profile) in profiles {
            if profile.settled_at(as_of) {
                at.settled.first_day.push(profile.first_day);
                at.settled.last_day.push(profile.last_day);
                at.settled.purchase_days.push(profile.purchase_days);
                at.settled
                    .repeat_spend_minor
                    .push(profile.repeat_spend_minor);
            } else {
                at.bought_since.push(customer_id);
            }
        }
        at
    }
}

/// Every buyer of a program, summarised, column by column (what the fit reads, in the order
/// it reads it; a million customers fit in four vectors).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PopulationSummary {
    /// Purchase days after the first.
    pub frequency: Vec<u32>,
    /// Days from the first purchase day to the last.
    pub recency_days: Vec<u32>,
    /// Days from the first purchase day to the summary's day.
    pub age_days: Vec<u32>,
    /// Mean net spend of the repeat purchase days, minor units.
    pub repeat_spend_minor: Vec<f64>,
}

impl PopulationSummary {
    /// Customers summarised.
    pub fn len(&self) -> usize {
        self.frequency.len()
    }

    /// Whether nobody has bought.
    pub fn is_empty(&self) -> bool {
        self.frequency.is_empty()
    }

    /// The `index`-th customer's summary.
    pub fn get(&self, index: usize) -> PurchaseSummary {
        PurchaseSummary {
            frequency: self.frequency[index],
            recency_days: self.recency_days[index],
            age_days: self.age_days[index],
            repeat_spend_minor: self.repeat_spend_minor[index],
        }
    }

    /// The summaries on `as_of_day` of the profiles of `profiles` (each last bought no later),
    /// in their order.
    pub fn of_profiles(profiles: &ProfileDays, as_of_day: NaiveDate) -> Self {
        let mut population = Self::with_capacity(profiles.len());
        for index in 0..profiles.len() {
            population.push(PurchaseSummary::of_days(
                profiles.first_day[index],
                profiles.last_day[index],
                profiles.purchase_days[index],
                profiles.repeat_spend_minor[index],
                as_of_day,
            ));
        }
        population
    }

    /// Every `stride`-th customer, from the first: a sample that keeps the population's
    /// order-independent shape (profiles are read in storage order, unrelated to histories).
    pub fn every(&self, stride: usize) -> Self {
        let mut sample = Self::with_capacity(self.len() / stride.max(1) + 1);
        for index in (0..self.len()).step_by(stride.max(1)) {
            sample.push(self.get(index));
        }
        sample
    }

    /// Room for `customers` without growing.
    pub fn with_capacity(customers: usize) -> Self {
        Self {
            frequency: Vec::with_capacity(customers),
            recency_days: Vec::with_capacity(customers),
            age_days: Vec::with_capacity(customers),
            repeat_spend_minor: Vec::with_capacity(customers),
        }
    }

    /// Adds one customer.
    pub fn push(&mut self, summary: PurchaseSummary) {
        self.frequency.push(summary.frequency);
        self.recency_days.push(summary.recency_days);
        self.age_days.push(summary.age_days);
        self.repeat_spend_minor.push(summary.repeat_spend_minor);
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
    fn a_profile_seen_from_a_day_is_its_summary() {
        let seoul: Tz = "Asia/Seoul".parse().expect("zone");
        let day = |text: &str| text.parse::<NaiveDate>().expect("day");
        // Repeat days 3 and 10 March.
        let profile = crate::domain::purchase_profile::tests::march();
        assert_eq!(
            PurchaseSummary::of(&profile, day("2026-03-31")),
            PurchaseSummary {
                frequency: 2,
                recency_days: 9,
                age_days: 30,
                repeat_spend_minor: 15_000.0,
            }
        );
        let once = PurchaseProfile::of(
            [
                (at("2026-03-20T10:00:00+09:00"), 3_000),
                (at("2026-03-20T11:00:00+09:00"), 3_000),
            ],
            seoul,
        )
        .expect("bought");
        assert_eq!(
            PurchaseSummary::of(&once, day("2026-03-31")),
            PurchaseSummary {
                frequency: 0,
                recency_days: 0,
                age_days: 11,
                repeat_spend_minor: 0.0,
            },
            "one purchase day has no repeat purchase"
        );
    }

    #[test]
    fn purchases_in_any_order_are_summarised_per_customer() {
        let utc: Tz = "UTC".parse().expect("zone");
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let purchase = |customer_id, time: &str, net_minor| DatedPurchase {
            customer_id,
            occurred_at: at(time),
            net_minor,
        };
        let mut purchases = [
            purchase(second, "2026-03-05T10:00:00Z", 2_000),
            purchase(first, "2026-03-09T10:00:00Z", 3_000),
            purchase(second, "2026-03-01T10:00:00Z", 1_000),
            purchase(first, "2026-03-02T10:00:00Z", 9_000),
            purchase(first, "2026-03-04T10:00:00Z", 5_000),
        ];
        let summaries = summarise(&mut purchases, utc, at("2026-03-10T00:00:00Z"));
        let summary = |frequency, recency_days, age_days, repeat_spend_minor| PurchaseSummary {
            frequency,
            recency_days,
            age_days,
            repeat_spend_minor,
        };
        assert_eq!(
            summaries,
            [
                (first, summary(2, 7, 8, 4_000.0)),
                (second, summary(1, 4, 9, 2_000.0)),
            ]
        );
    }
}
