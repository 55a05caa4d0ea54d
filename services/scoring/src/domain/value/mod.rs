//! Predicted customer value: BG/NBD for the purchase process and Gamma-Gamma for spend per
//! purchase, fitted by maximum likelihood on a program's whole population.
//!
//! - [`summary`]: what a customer's history is reduced to (purchase days, recency, age, mean
//!   repeat spend), in days in the program's time zone;
//! - [`store`]: the port to storage;
//! - the models themselves, their likelihoods, fits and conditional expectations, are the
//!   `tierline-value-model` crate (pure computation, checked against the literature).
//!
//! A program's model is fitted at every evaluation and on demand (`FitValueModel`), stored as a
//! version, and customers scored between fits use the latest one, as RFM cut points are. The
//! fit runs on a blocking thread: a million customers take about a second of CPU.

pub mod store;
pub mod summary;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use tierline_value_model::{
    BgNbdParams, ClvModel, FitOptions, GammaGammaParams, RfmSummary, Scores, ScoringPlan,
    fit_bg_nbd, fit_gamma_gamma,
};

use self::{
    store::ValueModelStore,
    summary::{PopulationSummary, PurchaseSummary, summarise},
};
use super::policy::ValueModelSettings;
use crate::domain::purchase_profile::day_of;
use crate::{ScoringError, domain::ports::ScoringStore};

/// Least buyers a model is fitted on: fewer say little about a population.
pub const MIN_CUSTOMERS: usize = 100;

/// Least repeat buyers the spend model is fitted on; with fewer, a model has no spend part
/// and customers get no predicted value (probability alive and purchases still).
pub const MIN_REPEAT_CUSTOMERS: usize = 30;

/// Least buyers whose first fit (no last model) starts from a sample's: see [`fit`].
const SAMPLED_START_FROM: usize = 100_000;

/// One customer in this many makes the sample a first fit starts from.
const SAMPLE_STRIDE: usize = 10;

/// Days in a month of the predicted value's horizon, as `lifetimes` counts them.
const DAYS_PER_MONTH: f64 = 30.0;

/// The model's time unit: days (one model unit is this many days).
const DAYS_PER_UNIT: f64 = 1.0;

/// The fitted parameters, as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FittedModel {
    /// The purchase process.
    pub bg_nbd: BgNbdParams,
    /// Its log-likelihood at the fitted parameters.
    pub bg_nbd_log_likelihood: f64,
    /// Spend per purchase; `None` with too few repeat buyers.
    pub gamma_gamma: Option<GammaGammaParams>,
    /// Its log-likelihood; 0 without it.
    pub gamma_gamma_log_likelihood: f64,
}

/// A program's model, as stored and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueModel {
    /// The program.
    pub program_id: Uuid,
    /// From 1, raised at every fit (set by the store).
    pub version: i64,
    /// The parameters.
    pub fitted: FittedModel,
    /// Buyers the purchase model was fitted on.
    pub customers: i64,
    /// Repeat buyers the spend model was fitted on.
    pub repeat_customers: i64,
    /// The instant the histories were summarised at.
    pub as_of: DateTime<Utc>,
    /// Time spent summarising.
    pub summary_duration: Duration,
    /// Time spent fitting both models.
    pub fit_duration: Duration,
    /// The evaluation run that fitted it, if one did.
    pub evaluation_run_id: Option<Uuid>,
}

/// What the model says of one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerValue {
    /// Probability the customer still buys.
    pub probability_alive: f64,
    /// Expected purchase days over each of the policy's horizons in days: `(days, purchases)`.
    pub expected_purchases: Vec<(u32, f64)>,
    /// Expected purchase days over the value horizon.
    pub horizon_purchases: f64,
    /// Expected net spend per future purchase day, minor units; `None` without a spend model.
    pub expected_spend_minor: Option<f64>,
    /// Expected net spend over the horizon, discounted, minor units; as `expected_spend_minor`.
    pub predicted_value_minor: Option<i64>,
}

/// How a fit on `customers` stops. A small population's likelihood can rise along a ridge
/// towards a boundary (spends that barely vary between customers send q and gamma off
/// together) without a maximum inside it; the fit is then accepted where moving any
/// log-parameter by 1 changes the whole log-likelihood by less than 0.1 (a likelihood-ratio
/// interval spans about 2: no estimate could tell such points apart), and never looser than
/// the tolerance that reproduces the literature.
fn options<P>(customers: usize) -> FitOptions<P> {
    let defaults = FitOptions::default();
    FitOptions {
        acceptable_gradient: (0.1 / customers.max(1) as f64).max(defaults.acceptable_gradient),
        ..defaults
    }
}

/// Fits both models on `population`, and says how many repeat buyers the spend model was
/// fitted on. FAILED_PRECONDITION with fewer than [`MIN_CUSTOMERS`] buyers; the spend model is
/// left out (0 repeat buyers) with fewer than [`MIN_REPEAT_CUSTOMERS`] repeat buyers or when
/// spend does not fit it.
/// Each model's fit starts from `last`'s parameters when there are any (a month changes a
/// population little, so a refit from last month's maximum takes a few iterations instead of
/// tens), and from the model's own default when there are none or when the fit from `last`
/// does not converge. Without a last model, a population of [`SAMPLED_START_FROM`] buyers or
/// more is first fitted on every [`SAMPLE_STRIDE`]-th buyer, and that fit is the start.
pub fn fit(
    population: &PopulationSummary,
    last: Option<&FittedModel>,
) -> Result<(FittedModel, i64), ScoringError> {
    if population.len() < MIN_CUSTOMERS {
        return Err(ScoringError::FailedPrecondition(format!(
            "the value model needs at least {MIN_CUSTOMERS} customers with a purchase; the program has {}",
            population.len()
        )));
    }
    // A first fit of a large population starts from the maximum of a sample of it, found in a
    // tenth of the time a pass takes; the fit itself then ends at the whole population's
    // maximum in a few passes, as a refit from a last model does. A sample that cannot be
    // fitted leaves the default start.
    let sampled;
    let last = match last {
        None if population.len() >= SAMPLED_START_FROM => {
            sampled = fit_from(&population.every(SAMPLE_STRIDE), None)
                .ok()
                .map(|(model, _)| model);
            sampled.as_ref()
        }
        last => last,
    };
    fit_from(population, last)
}

/// [`fit`] from `last`, or from the default start without one.
fn fit_from(
    population: &PopulationSummary,
    last: Option<&FittedModel>,
) -> Result<(FittedModel, i64), ScoringError> {
    let days = |values: &[u32]| values.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
    // Customers with the same (frequency, recency, age) are one weighted record: a million
    // buyers are a few hundred thousand records in whole days.
    let compressed = RfmSummary::compress(
        &population.frequency,
        &days(&population.recency_days),
        &days(&population.age_days),
    )
    .map_err(|error| ScoringError::Internal(format!("value model summary: {error}")))?;
    let purchases = from_last_or_default(last.map(|model| model.bg_nbd), |initial| {
        fit_bg_nbd(
            &compressed.frequency,
            &compressed.recency,
            &compressed.age,
            Some(&compressed.weight),
            &FitOptions {
                initial,
                ..options(population.len())
            },
        )
    })
    .map_err(|error| ScoringError::Internal(format!("BG/NBD fit: {error}")))?;
    let repeat: Vec<(u32, f64)> = population
        .frequency
        .iter()
        .zip(&population.repeat_spend_minor)
        .filter(|(frequency, spend)| **frequency > 0 && **spend > 0.0)
        .map(|(frequency, spend)| (*frequency, *spend))
        .collect();
    // Spend that does not follow the Gamma-Gamma model well enough to fit leaves the model
    // without its spend part (probability alive and purchases stand), rather than without a
    // model.
    let spend = if repeat.len() >= MIN_REPEAT_CUSTOMERS {
        let (frequency, mean_spend): (Vec<u32>, Vec<f64>) = repeat.iter().copied().unzip();
        let spend_fit = from_last_or_default(last.and_then(|model| model.gamma_gamma), |initial| {
            fit_gamma_gamma(
                &frequency,
                &mean_spend,
                None,
                &FitOptions {
                    initial,
                    ..options(repeat.len())
                },
            )
        });
        match spend_fit {
            Ok(fit) => Some(fit),
            // What the data is like, not a fault: said at info.
            Err(error) => {
                tracing::info!(%error, repeat_customers = repeat.len(), "spend model not fitted");
                None
            }
        }
    } else {
        None
    };
    tracing::info!(
        customers = population.len(),
        records = compressed.len(),
        purchase_iterations = purchases.iterations,
        purchase_passes = purchases.evaluations,
        spend_iterations = spend.as_ref().map_or(0, |fit| fit.iterations),
        spend_passes = spend.as_ref().map_or(0, |fit| fit.evaluations),
        "value model fits"
    );
    Ok((
        FittedModel {
            bg_nbd: purchases.params,
            bg_nbd_log_likelihood: purchases.log_likelihood,
            gamma_gamma: spend.as_ref().map(|fit| fit.params),
            gamma_gamma_log_likelihood: spend.as_ref().map_or(0.0, |fit| fit.log_likelihood),
        },
        spend
            .as_ref()
            .map_or(0, |_| i64::try_from(repeat.len()).unwrap_or(i64::MAX)),
    ))
}

/// `fit` from `last`'s parameters, and again from the model's default start when that fails
/// (a population that changed a great deal since, or a `last` on a ridge the new data left).
fn from_last_or_default<P: Copy, F>(
    last: Option<P>,
    fit: impl Fn(Option<P>) -> Result<F, tierline_value_model::ModelError>,
) -> Result<F, tierline_value_model::ModelError> {
    match last {
        Some(params) => fit(Some(params)).or_else(|error| {
            tracing::debug!(%error, "value model fit from the last model failed; fitting from the default start");
            fit(None)
        }),
        None => fit(None),
    }
}

/// Scores one customer with `model` under the policy's `settings` (about 2 µs: for a whole
/// population, [`population_values`] shares the work between customers).
pub fn customer_value(
    model: &FittedModel,
    summary: &PurchaseSummary,
    settings: &ValueModelSettings,
) -> CustomerValue {
    let (x, t_x, age) = (
        summary.frequency,
        f64::from(summary.recency_days),
        f64::from(summary.age_days),
    );
    let purchases = &model.bg_nbd;
    let expected_in = |days: f64| purchases.expected_purchases(days / DAYS_PER_UNIT, x, t_x, age);
    let spend = model.gamma_gamma.map(|spend| ClvModel {
        purchases: *purchases,
        spend,
    });
    CustomerValue {
        probability_alive: purchases.probability_alive(x, t_x, age),
        expected_purchases: settings
            .expected_purchase_days
            .iter()
            .map(|days| (*days, expected_in(f64::from(*days))))
            .collect(),
        horizon_purchases: expected_in(f64::from(settings.horizon_months) * DAYS_PER_MONTH),
        expected_spend_minor: spend.map(|model| {
            model
                .spend
                .expected_spend_per_purchase(x, summary.repeat_spend_minor)
        }),
        predicted_value_minor: spend.map(|model| {
            model
                .predicted_value(
                    settings.horizon_months,
                    discount_rate(settings),
                    DAYS_PER_UNIT,
                    x,
                    t_x,
                    age,
                    summary.repeat_spend_minor,
                )
                .round() as i64
        }),
    }
}

fn discount_rate(settings: &ValueModelSettings) -> f64 {
    f64::from(settings.monthly_discount_bps) / 10_000.0
}

/// Scores a whole population at once (`ClvModel::score_all`: the costly part once per distinct
/// frequency and age); `None` without a spend model.
pub fn population_values(
    model: &FittedModel,
    population: &PopulationSummary,
    settings: &ValueModelSettings,
) -> Option<Result<Scores, ScoringError>> {
    let spend = model.gamma_gamma?;
    let days = |values: &[u32]| values.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
    let plan = ScoringPlan {
        purchase_horizons: settings
            .expected_purchase_days
            .iter()
            .map(|days| f64::from(*days) / DAYS_PER_UNIT)
            .collect(),
        value_months: settings.horizon_months,
        monthly_discount_rate: discount_rate(settings),
        time_unit_days_per_unit: DAYS_PER_UNIT,
    };
    Some(
        ClvModel {
            purchases: model.bg_nbd,
            spend,
        }
        .score_all(
            &plan,
            &population.frequency,
            &days(&population.recency_days),
            &days(&population.age_days),
            &population.repeat_spend_minor,
        )
        .map_err(|error| ScoringError::Internal(format!("value scoring: {error}"))),
    )
}

fn whole_micros(duration: Duration) -> Duration {
    Duration::from_micros(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
}

/// Every buyer of the program summarised at `as_of`, days in `zone`: the profiles of those who
/// last bought no later as they are, the others from their purchases up to `as_of`.
pub async fn population_summary(
    store: &dyn ValueModelStore,
    program_id: Uuid,
    zone: Tz,
    as_of: DateTime<Utc>,
) -> Result<PopulationSummary, ScoringError> {
    let profiles = store.profiles_at(program_id, as_of).await?;
    let mut population = PopulationSummary::of_profiles(&profiles.settled, day_of(as_of, zone));
    for (_, summary) in
        summaries_until(store, program_id, &profiles.bought_since, zone, as_of).await?
    {
        population.push(summary);
    }
    Ok(population)
}

/// The summaries at `as_of` of those of `customer_ids` who have bought, in customer id order.
pub async fn purchase_summaries(
    store: &dyn ValueModelStore,
    program_id: Uuid,
    customer_ids: &[Uuid],
    zone: Tz,
    as_of: DateTime<Utc>,
) -> Result<Vec<(Uuid, PurchaseSummary)>, ScoringError> {
    let profiles = store.customer_profiles(program_id, customer_ids).await?;
    let as_of_day = day_of(as_of, zone);
    let mut summaries = Vec::with_capacity(profiles.len());
    let mut bought_since = Vec::new();
    for (customer_id, profile) in profiles {
        if profile.settled_at(as_of) {
            summaries.push((customer_id, PurchaseSummary::of(&profile, as_of_day)));
        } else {
            bought_since.push(customer_id);
        }
    }
    summaries.extend(summaries_until(store, program_id, &bought_since, zone, as_of).await?);
    summaries.sort_unstable_by_key(|(customer_id, _)| *customer_id);
    Ok(summaries)
}

/// The summaries at `as_of` of `customer_ids`, who bought since (their profiles say more than
/// `as_of` saw), from their purchases up to it.
async fn summaries_until(
    store: &dyn ValueModelStore,
    program_id: Uuid,
    customer_ids: &[Uuid],
    zone: Tz,
    as_of: DateTime<Utc>,
) -> Result<Vec<(Uuid, PurchaseSummary)>, ScoringError> {
    if customer_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut purchases = store
        .purchases_until(program_id, customer_ids, as_of)
        .await?;
    Ok(summarise(&mut purchases, zone, as_of))
}

/// Summarises the program's population at `as_of`, fits both models (from the program's last
/// model, see [`fit`]) and stores them as the next version; `run` names the evaluation that
/// asked, if one did.
#[tracing::instrument(skip(store))]
pub async fn refit(
    store: &dyn ScoringStore,
    program_id: Uuid,
    zone: Tz,
    as_of: DateTime<Utc>,
    run: Option<Uuid>,
) -> Result<ValueModel, ScoringError> {
    let started = Instant::now();
    let last = store
        .value_model(program_id)
        .await?
        .map(|model| model.fitted);
    let population = population_summary(store, program_id, zone, as_of).await?;
    let summary_duration = started.elapsed();
    let customers = i64::try_from(population.len()).unwrap_or(i64::MAX);
    let started = Instant::now();
    let (fitted, repeat_customers) =
        tokio::task::spawn_blocking(move || fit(&population, last.as_ref()))
            .await
            .map_err(|error| ScoringError::Internal(format!("value model fit task: {error}")))??;
    let mut model = ValueModel {
        program_id,
        version: 0,
        fitted,
        customers,
        repeat_customers,
        as_of,
        // Whole microseconds, as stored: the model returned is the model read back.
        summary_duration: whole_micros(summary_duration),
        fit_duration: whole_micros(started.elapsed()),
        evaluation_run_id: run,
    };
    model.version = store.store_value_model(&model).await?;
    tracing::info!(
        version = model.version,
        customers,
        repeat_customers,
        summary_ms = summary_duration.as_millis() as u64,
        fit_ms = model.fit_duration.as_millis() as u64,
        "value model fitted"
    );
    Ok(model)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tierline_value_model::simulate::simulate_population;

    use super::*;

    /// 20,000 customers of a known process, in whole days, as the store summarises them.
    fn population(seed: u64) -> PopulationSummary {
        population_of(20_000, seed)
    }

    fn population_of(customers: usize, seed: u64) -> PopulationSummary {
        let simulated = simulate_population(
            customers,
            &BgNbdParams {
                r: 0.25,
                alpha: 30.0,
                a: 0.8,
                b: 2.5,
            },
            &GammaGammaParams {
                p: 6.0,
                q: 4.0,
                gamma: 20_000.0,
            },
            730.0,
            true,
            seed,
        );
        let days = |values: &[f64]| values.iter().map(|v| *v as u32).collect();
        PopulationSummary {
            frequency: simulated.frequency,
            recency_days: days(&simulated.recency),
            age_days: days(&simulated.age),
            repeat_spend_minor: simulated.monetary,
        }
    }

    fn close(found: f64, expected: f64) -> bool {
        (found - expected).abs() <= 1e-3 * expected.abs()
    }

    fn same_maximum(found: &FittedModel, expected: &FittedModel) {
        let (b, e) = (found.bg_nbd, expected.bg_nbd);
        assert!(
            close(b.r, e.r) && close(b.alpha, e.alpha) && close(b.a, e.a) && close(b.b, e.b),
            "{found:?} against {expected:?}"
        );
        let (g, e) = (found.gamma_gamma.unwrap(), expected.gamma_gamma.unwrap());
        assert!(
            close(g.p, e.p) && close(g.q, e.q) && close(g.gamma, e.gamma),
            "{found:?} against {expected:?}"
        );
    }

    #[test]
    fn a_fit_from_the_last_model_finds_the_maximum_a_fit_from_the_default_start_finds() {
        let this_month = population(11);
        let (cold, repeat) = fit(&this_month, None).unwrap();
        assert!(repeat > 1_000, "{repeat}");
        // Last month's model, fitted on other customers of the same process.
        let (last, _) = fit(&population(12), None).unwrap();
        assert_ne!(last.bg_nbd, cold.bg_nbd);
        let (warm, warm_repeat) = fit(&this_month, Some(&last)).unwrap();
        assert_eq!(warm_repeat, repeat);
        same_maximum(&warm, &cold);
    }

    #[test]
    fn a_last_model_the_fit_cannot_start_from_falls_back_to_the_default_start() {
        let this_month = population(11);
        let (cold, _) = fit(&this_month, None).unwrap();
        // Parameters no likelihood is finite at.
        let unusable = FittedModel {
            bg_nbd: BgNbdParams {
                r: f64::MAX,
                alpha: f64::MIN_POSITIVE,
                a: f64::MAX,
                b: f64::MIN_POSITIVE,
            },
            gamma_gamma: Some(GammaGammaParams {
                p: f64::MAX,
                q: f64::MIN_POSITIVE,
                gamma: f64::MAX,
            }),
            ..cold
        };
        let (fallback, _) = fit(&this_month, Some(&unusable)).unwrap();
        same_maximum(&fallback, &cold);
    }

    /// A first fit of a large population starts from a sample's maximum and ends at the one
    /// the default start finds.
    #[test]
    fn a_first_fit_from_a_sample_finds_the_maximum_the_default_start_finds() {
        let everyone = population_of(SAMPLED_START_FROM, 13);
        let (sampled, repeat) = fit(&everyone, None).unwrap();
        let days = |values: &[u32]| values.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
        let compressed = RfmSummary::compress(
            &everyone.frequency,
            &days(&everyone.recency_days),
            &days(&everyone.age_days),
        )
        .unwrap();
        let purchases = fit_bg_nbd(
            &compressed.frequency,
            &compressed.recency,
            &compressed.age,
            Some(&compressed.weight),
            &options(everyone.len()),
        )
        .unwrap();
        let (frequency, spend): (Vec<u32>, Vec<f64>) = everyone
            .frequency
            .iter()
            .zip(&everyone.repeat_spend_minor)
            .filter(|(frequency, _)| **frequency > 0)
            .map(|(frequency, spend)| (*frequency, *spend))
            .unzip();
        assert_eq!(i64::try_from(frequency.len()).unwrap(), repeat);
        let spend = fit_gamma_gamma(&frequency, &spend, None, &options(frequency.len())).unwrap();
        same_maximum(
            &sampled,
            &FittedModel {
                bg_nbd: purchases.params,
                bg_nbd_log_likelihood: purchases.log_likelihood,
                gamma_gamma: Some(spend.params),
                gamma_gamma_log_likelihood: spend.log_likelihood,
            },
        );
    }
}
