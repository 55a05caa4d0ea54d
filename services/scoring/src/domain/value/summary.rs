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
//! Both backends read the purchases and [`summarise`] them here, so there is one definition:
//! sorting a program's purchases and folding them costs less than Postgres's grouping by
//! customer and day (docs/BENCHMARKS.md, "Customer value").

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

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
pub fn summarise(
    purchases: &mut [DatedPurchase],
    zone: Tz,
    as_of: DateTime<Utc>,
) -> Vec<(Uuid, PurchaseSummary)> {
    purchases.sort_unstable_by_key(|purchase| (purchase.customer_id, purchase.occurred_at));
    let mut summaries = Vec::new();
    let mut summariser = Summariser::new(zone, as_of);
    for (index, purchase) in purchases.iter().enumerate() {
        summariser.add(purchase.occurred_at, purchase.net_minor);
        let last_of_customer = purchases
            .get(index + 1)
            .is_none_or(|next| next.customer_id != purchase.customer_id);
        if last_of_customer && let Some(summary) = summariser.finish() {
            summaries.push((purchase.customer_id, summary));
        }
    }
    summaries
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

    /// The summaries of a population, in the order given.
    pub fn of(summaries: impl IntoIterator<Item = (Uuid, PurchaseSummary)>) -> Self {
        let mut population = Self::default();
        for (_, summary) in summaries {
            population.push(summary);
        }
        population
    }

    /// Adds one customer.
    pub fn push(&mut self, summary: PurchaseSummary) {
        self.frequency.push(summary.frequency);
        self.recency_days.push(summary.recency_days);
        self.age_days.push(summary.age_days);
        self.repeat_spend_minor.push(summary.repeat_spend_minor);
    }
}

/// The day of `at` in `zone`.
fn day_of(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

/// Folds one customer's purchases, oldest first, into their summary.
#[derive(Debug, Clone)]
struct Summariser {
    zone: Tz,
    as_of_day: NaiveDate,
    first_day: Option<NaiveDate>,
    last_day: Option<NaiveDate>,
    /// Repeat purchase days so far.
    days: u32,
    /// Net spend of the repeat purchase days so far.
    spend: i64,
}

impl Summariser {
    /// A summary at `as_of`, days in `zone`.
    fn new(zone: Tz, as_of: DateTime<Utc>) -> Self {
        Self {
            zone,
            as_of_day: day_of(as_of, zone),
            first_day: None,
            last_day: None,
            days: 0,
            spend: 0,
        }
    }

    /// Adds a purchase of `net_minor` (amount less refunds) made at `at`, no earlier than the
    /// one before; a purchase refunded in full is left out by the caller.
    fn add(&mut self, at: DateTime<Utc>, net_minor: i64) {
        let day = day_of(at, self.zone);
        match self.first_day {
            None => self.first_day = Some(day),
            // More on the first day: not a repeat purchase.
            Some(first) if first == day => {}
            Some(_) => {
                if self.last_day != Some(day) {
                    self.days += 1;
                }
                self.spend += net_minor;
            }
        }
        self.last_day = Some(day);
    }

    /// The summary, `None` without a purchase; the summariser is ready for the next customer.
    fn finish(&mut self) -> Option<PurchaseSummary> {
        let (first, last) = (self.first_day.take()?, self.last_day.take()?);
        let days_between =
            |from: NaiveDate, to: NaiveDate| u32::try_from((to - from).num_days()).unwrap_or(0);
        let summary = PurchaseSummary {
            frequency: self.days,
            recency_days: days_between(first, last),
            age_days: days_between(first, self.as_of_day),
            repeat_spend_minor: if self.days == 0 {
                0.0
            } else {
                self.spend as f64 / f64::from(self.days)
            },
        };
        (self.days, self.spend) = (0, 0);
        Some(summary)
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
    fn purchase_days_in_the_programs_zone_are_the_transactions() {
        let seoul: Tz = "Asia/Seoul".parse().expect("zone");
        let mut summariser = Summariser::new(seoul, at("2026-03-31T00:00:00+09:00"));
        assert_eq!(summariser.finish(), None, "no purchase, no summary");
        // 1 March twice in Seoul (the second is 28 February in UTC), then 3 and 10 March, the
        // latter twice.
        summariser.add(at("2026-03-01T10:00:00+09:00"), 5_000);
        summariser.add(at("2026-03-01T23:30:00+09:00"), 7_000);
        summariser.add(at("2026-03-03T12:00:00+09:00"), 10_000);
        summariser.add(at("2026-03-10T09:00:00+09:00"), 4_000);
        summariser.add(at("2026-03-10T18:00:00+09:00"), 16_000);
        assert_eq!(
            summariser.finish(),
            Some(PurchaseSummary {
                frequency: 2,
                recency_days: 9,
                age_days: 30,
                repeat_spend_minor: 15_000.0,
            })
        );
        // Ready for the next customer: one purchase day only.
        summariser.add(at("2026-03-20T10:00:00+09:00"), 3_000);
        summariser.add(at("2026-03-20T11:00:00+09:00"), 3_000);
        assert_eq!(
            summariser.finish(),
            Some(PurchaseSummary {
                frequency: 0,
                recency_days: 0,
                age_days: 11,
                repeat_spend_minor: 0.0,
            })
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
