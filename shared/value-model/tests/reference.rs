//! Per-customer predictions against independent high-precision values.
//!
//! `tests/fixtures/reference_values.csv` is the output of
//! `tests/fixtures/reference.py`, which evaluates the published formulas with
//! mpmath at 30 significant digits (using `mpmath.hyp2f1` on the
//! *untransformed* hypergeometric parameters, so it also checks the Euler
//! transformation used here). The parameters are the CDNOW fits, stored in
//! the same file. Customers: a one-time buyer (x = 0), typical buyers, the
//! CDNOW maximum x = 29, a very heavy buyer (x = 500), and a one-week-old
//! customer for whom a 780-week horizon gives z = t/(α+T+t) ≈ 0.993; plus
//! the hypergeometric series itself for z up to 0.999.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use tierline_value_model::{BgNbdParams, ClvModel, GammaGammaParams, ScoringPlan};

struct Row {
    quantity: String,
    x: u32,
    t_x: f64,
    t: f64,
    m: f64,
    horizon: f64,
    value: f64,
}

fn load() -> (ClvModel, Vec<Row>) {
    let path = format!(
        "{}/tests/fixtures/reference_values.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let num = |s: &str| {
        if s.is_empty() {
            0.0
        } else {
            s.parse::<f64>().unwrap()
        }
    };
    let mut rows = Vec::new();
    let mut prm = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let value = num(f[6]);
        if let Some(name) = f[0].strip_prefix("param_") {
            prm.insert(name.to_string(), value);
            continue;
        }
        rows.push(Row {
            quantity: f[0].to_string(),
            x: if f[1].is_empty() {
                0
            } else {
                f[1].parse().unwrap()
            },
            t_x: num(f[2]),
            t: num(f[3]),
            m: num(f[4]),
            horizon: num(f[5]),
            value,
        });
    }
    let model = ClvModel {
        purchases: BgNbdParams {
            r: prm["r"],
            alpha: prm["alpha"],
            a: prm["a"],
            b: prm["b"],
        },
        spend: GammaGammaParams {
            p: prm["p"],
            q: prm["q"],
            gamma: prm["gamma"],
        },
    };
    (model, rows)
}

#[test]
fn predictions_match_mpmath() {
    let (model, rows) = load();
    let bg = &model.purchases;
    let mut worst: f64 = 0.0;
    for r in &rows {
        let got = match r.quantity.as_str() {
            "p_alive" => bg.probability_alive(r.x, r.t_x, r.t),
            "expected_purchases" => bg.expected_purchases(r.horizon, r.x, r.t_x, r.t),
            "expected_purchases_new" => bg.expected_purchases_new_customer(r.horizon),
            "expected_spend" => model.spend.expected_spend_per_purchase(r.x, r.m),
            "predicted_value" => model.predicted_value(12, 0.01, 7.0, r.x, r.t_x, r.t, r.m),
            "predicted_value_lifetimes_weeks" => {
                model.predicted_value(12, 0.01, 30.0 / 4.345, r.x, r.t_x, r.t, r.m)
            }
            // series parameters stored in the t_x, T, m, horizon columns
            "hyp2f1" => tierline_value_model::special::hyp2f1(r.t_x, r.t, r.m, r.horizon).unwrap(),
            other => panic!("unknown quantity {other}"),
        };
        let rel = (got - r.value).abs() / r.value.abs();
        worst = worst.max(rel);
        assert!(
            rel < 1e-12,
            "{} x={} t_x={} T={} m={} t={}: got {got:e}, mpmath {:e} (rel. error {rel:e})",
            r.quantity,
            r.x,
            r.t_x,
            r.t,
            r.m,
            r.horizon,
            r.value
        );
    }
    println!(
        "worst relative error vs mpmath: {worst:e} over {} values",
        rows.len()
    );
}

#[test]
fn batch_scoring_matches_reference() {
    let (model, rows) = load();
    let cust: Vec<&Row> = rows.iter().filter(|r| r.quantity == "p_alive").collect();
    let x: Vec<u32> = cust.iter().map(|r| r.x).collect();
    let tx: Vec<f64> = cust.iter().map(|r| r.t_x).collect();
    let t: Vec<f64> = cust.iter().map(|r| r.t).collect();
    let m: Vec<f64> = cust.iter().map(|r| r.m).collect();
    let plan = ScoringPlan {
        purchase_horizons: vec![10.0, 39.0],
        value_months: 12,
        monthly_discount_rate: 0.01,
        time_unit_days_per_unit: 7.0,
    };
    let s = model.score_all(&plan, &x, &tx, &t, &m).unwrap();
    for (i, c) in cust.iter().enumerate() {
        let find = |q: &str, h: f64| {
            rows.iter()
                .find(|r| {
                    r.quantity == q && r.x == c.x && r.t == c.t && r.t_x == c.t_x && r.horizon == h
                })
                .unwrap()
                .value
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-11 * b.abs();
        assert!(close(s.probability_alive[i], c.value));
        assert!(close(
            s.expected_purchases[0][i],
            find("expected_purchases", 10.0)
        ));
        assert!(close(
            s.expected_purchases[1][i],
            find("expected_purchases", 39.0)
        ));
        assert!(close(s.expected_spend[i], find("expected_spend", 0.0)));
        assert!(close(s.predicted_value[i], find("predicted_value", 12.0)));
    }
}
