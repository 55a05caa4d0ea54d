//! Fits both models to the CDNOW sample of Fader, Hardie & Lee (2005) and
//! checks the published estimates. Fixture provenance: tests/fixtures/README.md.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use tierline_value_model::{BgNbdData, FitOptions, RfmSummary, fit_bg_nbd, fit_gamma_gamma};

struct Cdnow {
    x: Vec<u32>,
    t_x: Vec<f64>,
    t: Vec<f64>,
    m: Vec<f64>,
}

/// Reads `ID,x,t_x,T[,zbar]` rows (header skipped).
fn load(name: &str) -> Cdnow {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut d = Cdnow {
        x: vec![],
        t_x: vec![],
        t: vec![],
        m: vec![],
    };
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        d.x.push(f[1].parse().unwrap());
        d.t_x.push(f[2].parse().unwrap());
        d.t.push(f[3].parse().unwrap());
        d.m.push(f.get(4).map_or(0.0, |s| s.parse().unwrap()));
    }
    d
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[test]
fn bg_nbd_reproduces_published_cdnow_estimates() {
    let d = load("cdnow_customers_summary.csv");
    assert_eq!(d.x.len(), 2357);
    let fit = fit_bg_nbd(&d.x, &d.t_x, &d.t, None, &FitOptions::default()).expect("fit");
    let p = fit.params;
    println!("{fit:?}");
    println!(
        "r={:.17e} alpha={:.17e} a={:.17e} b={:.17e}",
        p.r, p.alpha, p.a, p.b
    );
    // FHL 2005, section 5: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9582.4.
    assert_eq!(round3(p.r), 0.243);
    assert_eq!(round3(p.alpha), 4.414);
    assert_eq!(round3(p.a), 0.793);
    assert_eq!(round3(p.b), 2.426);
    assert!(
        (fit.log_likelihood - -9582.4).abs() < 0.05,
        "LL {}",
        fit.log_likelihood
    );
    assert_eq!(fit.n_customers, 2357);
}

#[test]
fn compressed_input_gives_the_same_fit() {
    let d = load("cdnow_customers_summary.csv");
    let s = RfmSummary::compress(&d.x, &d.t_x, &d.t).unwrap();
    assert!(s.len() < d.x.len());
    assert_eq!(s.n_customers(), 2357);
    let full = BgNbdData::new(&d.x, &d.t_x, &d.t, None).unwrap();
    let comp = BgNbdData::new(&s.frequency, &s.recency, &s.age, Some(&s.weight)).unwrap();
    let p = tierline_value_model::BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let (a, b) = (full.log_likelihood(&p), comp.log_likelihood(&p));
    assert!((a - b).abs() < 1e-9 * a.abs(), "{a} vs {b}");
    let fa = full.fit(&FitOptions::default()).unwrap();
    let fb = comp.fit(&FitOptions::default()).unwrap();
    assert!((fa.params.alpha / fb.params.alpha - 1.0).abs() < 1e-6);
}

#[test]
fn gamma_gamma_reproduces_published_cdnow_estimates() {
    let d = load("cdnow_customers_summary_with_transactions.csv");
    let fit = fit_gamma_gamma(&d.x, &d.m, None, &FitOptions::default()).expect("fit");
    let p = fit.params;
    println!("{fit:?}");
    println!("p={:.17e} q={:.17e} gamma={:.17e}", p.p, p.q, p.gamma);
    assert_eq!(fit.n_customers, 946);
    // Fader & Hardie (2013) / lifetimes docs: p = 6.2488, q = 3.7446, γ = 15.4477.
    for (got, want) in [(p.p, 6.2488), (p.q, 3.7446), (p.gamma, 15.4477)] {
        assert!((got / want - 1.0).abs() < 1e-3, "{got} vs {want}");
    }
}
