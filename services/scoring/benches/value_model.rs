//! The customer value model on a large population: a program that prints figures
//! (docs/BENCHMARKS.md, "Customer value").
//!
//! Draws `BENCH_CUSTOMERS` customers (default 1,000,000) from a known BG/NBD + Gamma-Gamma
//! process (seeded, so every run draws the same purchases), first purchases spread over the last
//! two years, writes their purchases into a fresh database with COPY and counts their purchase
//! profiles (the store's own recount, as the feed would have kept them). Then:
//! 1. `FitValueModel` through the real gRPC API: the summary from the stored profiles and both
//!    fits, with the fitted parameters beside the true ones;
//! 2. scoring every customer (probability alive, expected purchases at 90 and 365 days,
//!    predicted value over 12 months) from the same summary, in the service's own functions;
//! 3. in the same run, `lifetimes`' `BetaGeoFitter` on the same summary
//!    (`scripts/lifetimes_fit.py`), when Python and `lifetimes` are installed, and the ratio.
//!
//! Run: `cargo bench -p tierline-scoring --bench value_model`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::{io::Write, time::Instant};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::{Connection, Executor, PgConnection};
use support::{BenchService, create_program, knob};
use tierline_proto::{prost_types, scoring::v1 as pb};
use tierline_runtime::config::{ConfigSource, DatabaseSettings};
use tierline_scoring::{
    domain::{
        policy::ValueModelSettings,
        value::{FittedModel, customer_value, population_summary, population_values},
    },
    storage::postgres::{PgScoringStore, SCHEMA},
};
use tierline_testkit::TestDatabase;
use tierline_value_model::{BgNbdParams, GammaGammaParams};
use uuid::Uuid;

tierline_runtime::service_allocator!();

/// The process the customers are drawn from (days; spend in KRW).
const TRUE_R: f64 = 0.25;
const TRUE_ALPHA: f64 = 30.0;
const TRUE_A: f64 = 0.8;
const TRUE_B: f64 = 2.5;
const TRUE_P: f64 = 6.0;
const TRUE_Q: f64 = 4.0;
const TRUE_GAMMA: f64 = 20_000.0;

/// Days over which first purchases are spread.
const HISTORY_DAYS: f64 = 730.0;

/// A Gamma(shape, rate) draw (Marsaglia and Tsang; shapes below 1 boosted by U^(1/shape)).
fn gamma(rng: &mut StdRng, shape: f64, rate: f64) -> f64 {
    if shape < 1.0 {
        let boost = rng.random::<f64>().powf(1.0 / shape);
        return gamma(rng, shape + 1.0, rate) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // A standard normal by Box-Muller.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v / rate;
        }
    }
}

/// One customer's purchases: (days before now, amount in KRW).
fn draw_customer(rng: &mut StdRng, purchases: &mut Vec<(f64, i64)>) {
    purchases.clear();
    let rate = gamma(rng, TRUE_R, TRUE_ALPHA);
    let (x, y) = (gamma(rng, TRUE_A, 1.0), gamma(rng, TRUE_B, 1.0));
    let dropout = x / (x + y);
    let scale = gamma(rng, TRUE_Q, TRUE_GAMMA);
    let mut ago = rng.random::<f64>() * HISTORY_DAYS;
    purchases.push((ago, gamma(rng, TRUE_P, scale).round().max(1.0) as i64));
    // The BG/NBD story: repeat purchases at the customer's rate, and after each of them (not
    // the first) the customer drops out with their probability.
    loop {
        ago += rng.random::<f64>().max(f64::MIN_POSITIVE).ln() / rate;
        if ago <= 0.0 {
            return;
        }
        purchases.push((ago, gamma(rng, TRUE_P, scale).round().max(1.0) as i64));
        if rng.random::<f64>() < dropout {
            return;
        }
    }
}

/// Draws the population, COPYs its purchases and counts their profiles (as the feed would have
/// kept them), untimed; returns the purchase count.
async fn seed(
    database: &TestDatabase,
    program_id: Uuid,
    customers: usize,
    now: DateTime<Utc>,
) -> u64 {
    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    let mut rng = StdRng::seed_from_u64(20_261_127);
    let mut purchases = Vec::new();
    let mut written = 0_u64;
    let mut batch = String::new();
    let mut copy = connection
        .copy_in_raw(
            "COPY scoring.counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, points)
             FROM STDIN",
        )
        .await
        .unwrap();
    for _ in 0..customers {
        let customer_id = Uuid::now_v7();
        draw_customer(&mut rng, &mut purchases);
        for (ago, amount) in &purchases {
            let at = now - chrono::Duration::microseconds((ago * 86_400e6) as i64);
            batch.push_str(&format!(
                "{program_id}\t{}\t{customer_id}\t{}\t{amount}\t0\n",
                Uuid::now_v7(),
                at.to_rfc3339()
            ));
            written += 1;
        }
        if batch.len() > 8 << 20 {
            copy.send(batch.as_bytes()).await.unwrap();
            batch.clear();
        }
    }
    copy.send(batch.as_bytes()).await.unwrap();
    copy.finish().await.unwrap();
    connection
        .execute("VACUUM (ANALYZE) scoring.counted_purchases")
        .await
        .unwrap();
    support::count_purchase_profiles(database).await;
    written
}

fn seconds(duration: Option<prost_types::Duration>) -> f64 {
    duration.map_or(0.0, |d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

/// Times `lifetimes`' BetaGeoFitter on the summary in `csv`: its fit time in seconds on every
/// row and on grouped rows, or why not.
fn lifetimes_fit(csv: &std::path::Path) -> Result<(f64, f64), String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/lifetimes_fit.py"
    );
    // BENCH_PYTHON names an interpreter with lifetimes installed (a virtualenv's, say).
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(csv)
        .output()
        .map_err(|error| format!("python3 not runnable: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    let figure = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("no {name}line"))
    };
    Ok((figure("fit_seconds ")?, figure("fit_grouped_seconds ")?))
}

#[tokio::main]
async fn main() {
    let customers = knob("BENCH_CUSTOMERS", 1_000_000);
    let database = TestDatabase::create().await.unwrap();
    let service = BenchService::start(&database, None).await;
    let mut client = service.client.clone();
    let program_id = create_program(&mut client).await;
    let program = Uuid::parse_str(&program_id).unwrap();
    let now = Utc::now();
    let started = Instant::now();
    let purchases = seed(&database, program, customers, now).await;
    println!(
        "population: {customers} customers, {purchases} purchases drawn from BG/NBD(r {TRUE_R}, alpha {TRUE_ALPHA} days, a {TRUE_A}, b {TRUE_B}) x Gamma-Gamma(p {TRUE_P}, q {TRUE_Q}, gamma {TRUE_GAMMA}), written in {:.1} s; machine: {} cores",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let started = Instant::now();
    let model = client
        .fit_value_model(pb::FitValueModelRequest {
            program_id: program_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let wall = started.elapsed();
    let (summary, fit) = (seconds(model.summary_duration), seconds(model.fit_duration));
    let bg = model.bg_nbd.unwrap();
    let gg = model.gamma_gamma.unwrap();
    println!(
        "FitValueModel: {:.2} s through the API for {} customers ({} repeat): summary {summary:.2} s + both fits {fit:.2} s (target: summary and fits <= 3 s)",
        wall.as_secs_f64(),
        model.customers,
        model.repeat_customers
    );
    println!(
        "  BG/NBD   fitted r {:.4} alpha {:.3} a {:.4} b {:.4} (true {TRUE_R} {TRUE_ALPHA} {TRUE_A} {TRUE_B}); log-likelihood {:.1}",
        bg.r, bg.alpha, bg.a, bg.b, model.bg_nbd_log_likelihood
    );
    println!(
        "  Gamma-Gamma fitted p {:.4} q {:.4} gamma {:.1} (true {TRUE_P} {TRUE_Q} {TRUE_GAMMA}); log-likelihood {:.1}",
        gg.p, gg.q, gg.gamma, model.gamma_gamma_log_likelihood
    );

    // Scoring every customer with the fitted model, from the same summary.
    let source = ConfigSource::from_pairs([("TIERLINE_DATABASE_URL", database.url())]);
    let mut reader = source.reader();
    let settings = DatabaseSettings::read(&mut reader);
    reader.finish().unwrap();
    let pool = tierline_runtime::db::connect_lazy(&settings, "bench", SCHEMA).unwrap();
    let store = PgScoringStore::new(pool, tokio_util::sync::CancellationToken::new());
    let zone: chrono_tz::Tz = "Asia/Seoul".parse().unwrap();
    let population = population_summary(&store, program, zone, now)
        .await
        .unwrap();
    let fitted = FittedModel {
        bg_nbd: BgNbdParams {
            r: bg.r,
            alpha: bg.alpha,
            a: bg.a,
            b: bg.b,
        },
        bg_nbd_log_likelihood: model.bg_nbd_log_likelihood,
        gamma_gamma: Some(GammaGammaParams {
            p: gg.p,
            q: gg.q,
            gamma: gg.gamma,
        }),
        gamma_gamma_log_likelihood: model.gamma_gamma_log_likelihood,
    };
    let settings = ValueModelSettings::default();
    let started = Instant::now();
    let scored = population_values(&fitted, &population, &settings)
        .unwrap()
        .unwrap();
    let scoring = started.elapsed();
    let customers = population.len() as f64;
    println!(
        "scoring every customer: {:.2} s for {} (probability alive, expected purchases at 90 and 365 days, spend, 12-month value; target <= 2 s); mean probability alive {:.3}, mean 12-month value {:.0} KRW",
        scoring.as_secs_f64(),
        population.len(),
        scored.probability_alive.iter().sum::<f64>() / customers,
        scored.predicted_value.iter().sum::<f64>() / customers,
    );
    // One customer at a time, as GetScores scores them, for the record.
    let started = Instant::now();
    let sample = population.len().min(100_000);
    for i in 0..sample {
        std::hint::black_box(customer_value(&fitted, &population.get(i), &settings));
    }
    println!(
        "  one at a time (GetScores): {:.2} us per customer",
        started.elapsed().as_secs_f64() * 1e6 / sample as f64
    );

    // lifetimes on the same summary, in weeks as its examples use (the fit's unit does not
    // change the work).
    let csv =
        std::env::temp_dir().join(format!("tierline-value-summary-{}.csv", std::process::id()));
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(file, "frequency,recency,T").unwrap();
        for i in 0..population.len() {
            writeln!(
                file,
                "{},{},{}",
                population.frequency[i], population.recency_days[i], population.age_days[i]
            )
            .unwrap();
        }
    }
    match lifetimes_fit(&csv) {
        Ok((every_row, grouped)) => println!(
            "lifetimes BetaGeoFitter alone on the same summary: {every_row:.2} s one row per customer, {grouped:.2} s grouped with weights; Tierline's BG/NBD and Gamma-Gamma fits together {fit:.2} s: {:.1}x and {:.1}x faster (target >= 5x)",
            every_row / fit.max(f64::MIN_POSITIVE),
            grouped / fit.max(f64::MIN_POSITIVE)
        ),
        Err(why) => println!("lifetimes not timed: {why}"),
    }
    let _ = std::fs::remove_file(&csv);
    service.stop().await;
}
