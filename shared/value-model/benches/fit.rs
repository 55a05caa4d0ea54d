//! Both models' fits from their default start on a million customers in whole days: a program
//! that prints figures (docs/BENCHMARKS.md, "Customer value").
//!
//! Two populations drawn from known processes (seeded): one with the spread of rates and dropout
//! real customers show, and one without (everyone buys at one rate and drops out with one
//! probability, as in a young program), whose BG/NBD maximum lies at the edge of the parameter
//! space. For each: the compression into distinct records, then each fit's time, iterations and
//! passes over the data. `BENCH_CUSTOMERS` sets the population (default 1,000,000);
//! `BENCH_SUMMARY_CSV` names a file of customers as a store summarises them (frequency, recency
//! and age in days, mean repeat spend; one line each, as `psql`'s `\copy … CSV` writes them),
//! fitted third.
//!
//! Run: `cargo bench -p tierline-value-model --bench fit`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

use tierline_value_model::{
    BgNbdParams, Fit, FitOptions, GammaGammaParams, ModelError, RfmSummary, fit_bg_nbd,
    fit_gamma_gamma,
    simulate::{SimulatedPopulation, simulate_population},
};

fn main() {
    let customers = std::env::var("BENCH_CUSTOMERS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let spend = GammaGammaParams {
        p: 6.0,
        q: 4.0,
        gamma: 15_000.0,
    };
    let populations = [
        (
            "with spread",
            BgNbdParams {
                r: 0.25,
                alpha: 30.0,
                a: 0.8,
                b: 2.5,
            },
        ),
        (
            "without spread",
            BgNbdParams {
                r: 1e7,
                alpha: 3e8,
                a: 1e7,
                b: 1e9,
            },
        ),
    ];
    let drawn = populations.iter().map(|(name, purchases)| {
        (
            (*name).to_owned(),
            Some(*purchases),
            simulate_population(customers, purchases, &spend, 730.0, true, 7),
        )
    });
    let read = std::env::var("BENCH_SUMMARY_CSV")
        .ok()
        .map(|path| (path.clone(), None, read_summary(&path)));
    for (name, purchases, population) in drawn.chain(read) {
        let customers = population.frequency.len();
        let started = Instant::now();
        let summary =
            RfmSummary::compress(&population.frequency, &population.recency, &population.age)
                .unwrap();
        println!(
            "{name}: {customers} customers in {} records, compressed in {:.0} ms",
            summary.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        let fit = fit_and_refit(|initial| {
            fit_bg_nbd(
                &summary.frequency,
                &summary.recency,
                &summary.age,
                Some(&summary.weight),
                &FitOptions {
                    initial,
                    ..FitOptions::default()
                },
            )
        });
        match fit {
            Ok((fit, elapsed, refit)) => println!(
                "  BG/NBD: {elapsed:.0} ms, {} iterations, {} passes; r/alpha {:.5} (true {}), a/(a+b) {:.4} (true {})\n{refit}",
                fit.iterations,
                fit.evaluations,
                fit.params.r / fit.params.alpha,
                purchases.map_or("unknown".into(), |p| format!("{:.5}", p.r / p.alpha)),
                fit.params.a / (fit.params.a + fit.params.b),
                purchases.map_or("unknown".into(), |p| format!("{:.4}", p.a / (p.a + p.b))),
            ),
            Err((error, elapsed)) => println!("  BG/NBD: failed after {elapsed:.0} ms: {error}"),
        }
        let (frequency, mean_spend): (Vec<u32>, Vec<f64>) = population
            .frequency
            .iter()
            .zip(&population.monetary)
            .filter(|(frequency, _)| **frequency > 0)
            .map(|(frequency, spend)| (*frequency, *spend))
            .unzip();
        let fit = fit_and_refit(|initial| {
            fit_gamma_gamma(
                &frequency,
                &mean_spend,
                None,
                &FitOptions {
                    initial,
                    ..FitOptions::default()
                },
            )
        });
        match fit {
            Ok((fit, elapsed, refit)) => println!(
                "  Gamma-Gamma on {} repeat buyers: {elapsed:.0} ms, {} iterations, {} passes\n{refit}",
                frequency.len(),
                fit.iterations,
                fit.evaluations
            ),
            Err((error, elapsed)) => {
                println!("  Gamma-Gamma: failed after {elapsed:.0} ms: {error}")
            }
        }
    }
}

/// Fits from the default start, then again from the maximum found, as the next evaluation
/// refits an unchanged population: the fit, its milliseconds and a line on the refit; or the
/// error and the milliseconds it took.
fn fit_and_refit<P: Copy>(
    fit: impl Fn(Option<P>) -> Result<Fit<P>, ModelError>,
) -> Result<(Fit<P>, f64, String), (ModelError, f64)> {
    let started = Instant::now();
    let first = fit(None);
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    let first = first.map_err(|error| (error, elapsed))?;
    let started = Instant::now();
    let refit = fit(Some(first.params)).unwrap();
    let line = format!(
        "    refit from it: {:.0} ms, {} passes",
        started.elapsed().as_secs_f64() * 1e3,
        refit.evaluations
    );
    Ok((first, elapsed, line))
}

/// Customers from a CSV file of `frequency,recency,age,mean repeat spend` lines.
fn read_summary(path: &str) -> SimulatedPopulation {
    let mut population = SimulatedPopulation::default();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let fields: Vec<&str> = line.split(',').collect();
        population.frequency.push(fields[0].parse().unwrap());
        population.recency.push(fields[1].parse().unwrap());
        population.age.push(fields[2].parse().unwrap());
        population.monetary.push(fields[3].parse().unwrap());
    }
    population
}
