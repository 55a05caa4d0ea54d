//! The synthetic business of the demo, generated from a fixed seed so every run tells the same
//! story: a cosmetics brand (innisfree) and a coffee brand (starbucks) selling to one customer
//! base over the last year, with loyal, regular, occasional and rare buyers, customers who drift
//! away, and the seasons of Korean retail (Family Month in May, Chuseok in September, Black
//! Friday in November, the year-end peak in December).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// How a customer buys cosmetics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Habit {
    /// More than one purchase a month, large baskets (VVIP material).
    Devoted,
    /// About one purchase every other month.
    Regular,
    /// A few purchases a year.
    Occasional,
    /// About one purchase a year.
    Rare,
}

impl Habit {
    /// Purchases per month and the typical basket, KRW.
    fn cosmetics(self) -> (f64, i64) {
        match self {
            Self::Devoted => (1.2, 80_000),
            Self::Regular => (0.5, 50_000),
            Self::Occasional => (0.2, 36_000),
            Self::Rare => (0.08, 28_000),
        }
    }
}

/// One synthetic customer.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Their id in the brand's own systems (`demo-00042`).
    pub(crate) external_id: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) birth_date: NaiveDate,
    pub(crate) joined_at: DateTime<Utc>,
    pub(crate) city: &'static str,
    pub(crate) habit: Habit,
    /// Coffee purchases per month (0 for non-drinkers).
    pub(crate) coffee_per_month: f64,
    /// The day they stopped buying, for those who drift away.
    pub(crate) gone_from: Option<DateTime<Utc>>,
    /// Agreed to e-mail marketing.
    pub(crate) email_consent: bool,
}

/// One purchase to record.
#[derive(Debug, Clone)]
pub(crate) struct Sale {
    /// Index of the buyer in the people list.
    pub(crate) person: usize,
    pub(crate) amount_minor: i64,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) brand: &'static str,
    pub(crate) sales_channel: &'static str,
}

const GIVEN: &[&str] = &[
    "Minji", "Seoyeon", "Jiwoo", "Hayoon", "Doyun", "Jiho", "Seojun", "Yuna", "Eunwoo", "Jimin",
    "Hyunwoo", "Sora", "Taeyang", "Nari", "Kyungmin", "Hana", "Joon", "Dahye", "Siwoo", "Yerin",
];
const FAMILY: &[&str] = &[
    "Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim", "Han", "Oh",
];
const CITIES: &[&str] = &[
    "Seoul", "Seoul", "Seoul", "Busan", "Incheon", "Daegu", "Daejeon", "Gwangju", "Suwon", "Jeju",
];
const CHANNELS: &[&str] = &["store", "store", "store", "online", "app"];

/// How much busier a month is than an average one.
pub(crate) fn season(month: u32) -> f64 {
    match month {
        1 => 0.9,
        2 => 0.8,
        5 => 1.15,
        6 | 8 => 0.9,
        9 => 1.15,
        11 => 1.4,
        12 => 1.6,
        _ => 1.0,
    }
}

/// `count` people; customer `demo-00042` is always a devoted buyer, for the README's examples.
pub(crate) fn people(count: u32, now: DateTime<Utc>, rng: &mut StdRng) -> Vec<Person> {
    (0..count)
        .map(|index| {
            let given = GIVEN[rng.random_range(0..GIVEN.len())];
            let family = FAMILY[rng.random_range(0..FAMILY.len())];
            let draw: f64 = rng.random();
            let habit = if index == 42 || draw < 0.07 {
                Habit::Devoted
            } else if draw < 0.25 {
                Habit::Regular
            } else if draw < 0.6 {
                Habit::Occasional
            } else {
                Habit::Rare
            };
            let coffee_per_month = if rng.random_bool(0.2) {
                rng.random_range(0.5..2.0)
            } else {
                0.0
            };
            // A fifth drift away at some point of the year; #42 stays.
            let gone_from = (index != 42 && rng.random_bool(0.2))
                .then(|| now - Duration::days(rng.random_range(30..330)));
            Person {
                external_id: format!("demo-{index:05}"),
                name: format!("{given} {family}"),
                email: format!(
                    "{}.{}{index}@example.com",
                    given.to_lowercase(),
                    family.to_lowercase()
                ),
                birth_date: NaiveDate::from_ymd_opt(
                    rng.random_range(1960..2006),
                    rng.random_range(1..=12),
                    rng.random_range(1..=28),
                )
                .unwrap_or_default(),
                joined_at: now - Duration::days(rng.random_range(370..1_500)),
                city: CITIES[rng.random_range(0..CITIES.len())],
                habit,
                coffee_per_month,
                gone_from,
                email_consent: rng.random_bool(0.85),
            }
        })
        .collect()
}

/// A year of purchases up to `now`, oldest first: each day each customer buys with the chance
/// their habit and the season give.
pub(crate) fn year_of_sales(people: &[Person], now: DateTime<Utc>, rng: &mut StdRng) -> Vec<Sale> {
    let mut sales = Vec::new();
    for day in (1..=365).rev() {
        let date = now - Duration::days(day);
        let busy = season(date.month());
        for (index, person) in people.iter().enumerate() {
            if person.gone_from.is_some_and(|gone| date >= gone) {
                continue;
            }
            let at = || date + Duration::seconds(rng_seconds(index, day));
            let (per_month, basket) = person.habit.cosmetics();
            if rng.random_bool((per_month * busy / 30.0).min(1.0)) {
                let amount = basket * rng.random_range(50..160) / 100 / 100 * 100;
                sales.push(Sale {
                    person: index,
                    amount_minor: amount.max(5_000),
                    occurred_at: at(),
                    brand: "innisfree",
                    sales_channel: CHANNELS[rng.random_range(0..CHANNELS.len())],
                });
            }
            if person.coffee_per_month > 0.0
                && rng.random_bool((person.coffee_per_month * busy / 30.0).min(1.0))
            {
                sales.push(Sale {
                    person: index,
                    amount_minor: rng.random_range(9..30) * 500,
                    occurred_at: at(),
                    brand: "starbucks",
                    sales_channel: "store",
                });
            }
        }
    }
    sales.sort_by_key(|sale| sale.occurred_at);
    sales
}

/// A time of day for a customer's purchase on a day: spread over opening hours, the same on
/// every run.
fn rng_seconds(person: usize, day: i64) -> i64 {
    let mut rng = StdRng::seed_from_u64((person as u64) << 16 ^ day as u64);
    rng.random_range(0..86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_business_is_the_same_on_every_run_and_has_its_seasons() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let generate = || {
            let mut rng = StdRng::seed_from_u64(7);
            let people = people(2_000, now, &mut rng);
            let sales = year_of_sales(&people, now, &mut rng);
            (people, sales)
        };
        let (people, sales) = generate();
        let (_, again) = generate();
        assert_eq!(sales.len(), again.len(), "deterministic");
        assert_eq!(people[42].habit, Habit::Devoted);
        assert!(
            sales
                .windows(2)
                .all(|w| w[0].occurred_at <= w[1].occurred_at)
        );
        assert!(sales.iter().all(|s| s.occurred_at < now));
        // December (peak) sells clearly more than February (trough).
        let in_month = |month| {
            sales
                .iter()
                .filter(|s| s.occurred_at.month() == month)
                .count()
        };
        assert!(
            in_month(12) as f64 > 1.5 * in_month(2) as f64,
            "{} vs {}",
            in_month(12),
            in_month(2)
        );
        // Devoted buyers spend more than rare ones, on average.
        let spend = |habit| {
            let members = people.iter().filter(|p| p.habit == habit).count().max(1) as i64;
            sales
                .iter()
                .filter(|s| people[s.person].habit == habit && s.brand == "innisfree")
                .map(|s| s.amount_minor)
                .sum::<i64>()
                / members
        };
        assert!(spend(Habit::Devoted) > 5 * spend(Habit::Rare));
    }
}
