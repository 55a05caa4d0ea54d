//! Timing on a synthetic population of 1,000,000 customers (release build):
//!
//! ```text
//! cargo run -p tierline-value-model --release --example fit_1m [-- summary.csv]
//! ```
//!
//! Customers are drawn from a known BG/NBD + Gamma-Gamma process with time
//! measured in **days** over a 730-day window (first purchases uniform over
//! the window, times truncated to whole days as a summary built from dated
//! transactions would be). The example times summary compression, both fits
//! and scoring every customer, and prints fitted vs true parameters.
//!
//! If a path is given as the first argument (or in `CLV_SUMMARY_CSV`), the
//! synthetic per-customer summary is written there as
//! `frequency,recency,T,monetary_value` for `scripts/lifetimes_fit.py`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::Write;
use std::time::Instant;

use tierline_value_model::simulate::simulate_population;
use tierline_value_model::{
    BgNbdData, BgNbdParams, ClvModel, FitOptions, GammaGammaData, GammaGammaParams, RfmSummary,
    ScoringPlan,
};

fn main() {
    let n = std::env::var("CLV_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000usize);
    // True parameters, time unit = days: mean purchase rate r/α ≈ one
    // purchase every 120 days, dropout p with mean a/(a+b) ≈ 0.24.
    let true_bg = BgNbdParams {
        r: 0.25,
        alpha: 30.0,
        a: 0.8,
        b: 2.5,
    };
    let true_gg = GammaGammaParams {
        p: 6.0,
        q: 4.0,
        gamma: 15.0,
    };

    let t0 = Instant::now();
    let pop = simulate_population(n, &true_bg, &true_gg, 730.0, true, 20_240_601);
    println!(
        "simulated {n} customers in {:.3} s (not part of the budget)",
        t0.elapsed().as_secs_f64()
    );

    let out_path = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CLV_SUMMARY_CSV").ok());
    if let Some(path) = out_path {
        let f = std::fs::File::create(&path).expect("create csv");
        let mut w = std::io::BufWriter::new(f);
        writeln!(w, "frequency,recency,T,monetary_value").unwrap();
        for i in 0..n {
            writeln!(
                w,
                "{},{},{},{}",
                pop.frequency[i], pop.recency[i], pop.age[i], pop.monetary[i]
            )
            .unwrap();
        }
        println!("wrote summary to {path}");
    }

    let t = Instant::now();
    let summary = RfmSummary::compress(&pop.frequency, &pop.recency, &pop.age).unwrap();
    let t_compress = t.elapsed().as_secs_f64();
    println!(
        "compression: {} customers -> {} distinct (x, t_x, T) records in {:.3} s",
        summary.n_customers(),
        summary.len(),
        t_compress
    );

    let t = Instant::now();
    let data = BgNbdData::new(
        &summary.frequency,
        &summary.recency,
        &summary.age,
        Some(&summary.weight),
    )
    .unwrap();
    let t_prep = t.elapsed().as_secs_f64();
    let bg = data.fit(&FitOptions::default()).expect("BG/NBD fit");
    let t_bg = t.elapsed().as_secs_f64();
    println!(
        "BG/NBD fit: {:.3} s (prepare {:.3} s, {} distinct times; {} iterations, {} evaluations, |g| = {:.1e}, LL = {:.3})",
        t_bg,
        t_prep,
        data.n_distinct_times(),
        bg.iterations,
        bg.evaluations,
        bg.gradient_norm,
        bg.log_likelihood
    );

    // For comparison: the same fit on the uncompressed rows.
    let t = Instant::now();
    let raw = BgNbdData::new(&pop.frequency, &pop.recency, &pop.age, None)
        .unwrap()
        .fit(&FitOptions::default())
        .expect("BG/NBD fit");
    println!(
        "  same fit on the {n} uncompressed rows: {:.3} s ({} evaluations; r, alpha, a, b agree to {:.1e})",
        t.elapsed().as_secs_f64(),
        raw.evaluations,
        [
            (raw.params.r, bg.params.r),
            (raw.params.alpha, bg.params.alpha),
            (raw.params.a, bg.params.a),
            (raw.params.b, bg.params.b)
        ]
        .iter()
        .map(|(u, v)| (u / v - 1.0).abs())
        .fold(0.0, f64::max)
    );

    // Cost of one likelihood+gradient pass (what each optimiser step pays).
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(data.log_likelihood_and_gradient(std::hint::black_box(&bg.params)));
    }
    let per_eval = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "  one BG/NBD likelihood+gradient pass: {:.2} ms = {:.1} ns per customer ({:.1} ns per compressed record)",
        per_eval * 1e3,
        per_eval * 1e9 / n as f64,
        per_eval * 1e9 / summary.len() as f64
    );

    let t = Instant::now();
    let gg_data = GammaGammaData::new(&pop.frequency, &pop.monetary, None).unwrap();
    let gg = gg_data
        .fit(&FitOptions::default())
        .expect("Gamma-Gamma fit");
    let t_gg = t.elapsed().as_secs_f64();
    println!(
        "Gamma-Gamma fit: {:.3} s on {} repeat buyers ({} iterations, {} evaluations, |g| = {:.1e})",
        t_gg, gg.n_customers, gg.iterations, gg.evaluations, gg.gradient_norm
    );

    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(gg_data.log_likelihood_and_gradient(std::hint::black_box(&gg.params)));
    }
    let per_eval = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "  one Gamma-Gamma likelihood+gradient pass: {:.2} ms = {:.1} ns per repeat buyer",
        per_eval * 1e3,
        per_eval * 1e9 / gg.n_customers as f64
    );

    let b = bg.params;
    println!("           true      fitted");
    println!("r      {:9.4} {:11.4}", true_bg.r, b.r);
    println!("alpha  {:9.4} {:11.4}", true_bg.alpha, b.alpha);
    println!("a      {:9.4} {:11.4}", true_bg.a, b.a);
    println!("b      {:9.4} {:11.4}", true_bg.b, b.b);
    let g = gg.params;
    println!("p      {:9.4} {:11.4}", true_gg.p, g.p);
    println!("q      {:9.4} {:11.4}", true_gg.q, g.q);
    println!("gamma  {:9.4} {:11.4}", true_gg.gamma, g.gamma);

    let model = ClvModel {
        purchases: bg.params,
        spend: gg.params,
    };
    let plan = ScoringPlan {
        purchase_horizons: vec![90.0, 365.0],
        value_months: 12,
        monthly_discount_rate: 0.01,
        time_unit_days_per_unit: 1.0,
    };
    let t = Instant::now();
    let scores = model
        .score_all(&plan, &pop.frequency, &pop.recency, &pop.age, &pop.monetary)
        .unwrap();
    let t_score = t.elapsed().as_secs_f64();
    let total_value: f64 = scores.predicted_value.iter().sum();
    let mean_alive: f64 = scores.probability_alive.iter().sum::<f64>() / n as f64;
    println!(
        "scoring all {n} customers (P alive, E[purchases] 90 d & 365 d, spend, 12-month value): {:.3} s \
         (mean P alive {:.4}, total 12-month value {:.0})",
        t_score, mean_alive, total_value
    );

    // For comparison: the same quantities through the per-customer functions
    // (no sharing between customers) on the first 100 000 customers.
    let m = n.min(100_000);
    let t = Instant::now();
    let mut acc = 0.0;
    for i in 0..m {
        let (x, tx, age, mv) = (
            pop.frequency[i],
            pop.recency[i],
            pop.age[i],
            pop.monetary[i],
        );
        acc += model.purchases.probability_alive(x, tx, age)
            + model.purchases.expected_purchases(90.0, x, tx, age)
            + model.purchases.expected_purchases(365.0, x, tx, age)
            + model.spend.expected_spend_per_purchase(x, mv)
            + model.predicted_value(12, 0.01, 1.0, x, tx, age, mv);
    }
    std::hint::black_box(acc);
    println!(
        "  per-customer functions instead: {:.3} s for {m} customers ({:.2} µs each)",
        t.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64() * 1e6 / m as f64
    );

    // A per-customer spot check of the batch scorer.
    let i = (0..n).find(|&i| pop.frequency[i] > 3).unwrap_or(0);
    let single = model.predicted_value(
        12,
        0.01,
        1.0,
        pop.frequency[i],
        pop.recency[i],
        pop.age[i],
        pop.monetary[i],
    );
    println!(
        "spot check customer {i}: batch {:.6} vs single {:.6}",
        scores.predicted_value[i], single
    );

    println!(
        "TOTAL fits (compress + BG/NBD + Gamma-Gamma): {:.3} s; scoring: {:.3} s",
        t_compress + t_bg + t_gg,
        t_score
    );
}
