//! The error enum: every way a fit can refuse or fail is reachable and
//! reported with the right variant.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use tierline_value_model::simulate::simulate_population;
use tierline_value_model::{
    BgNbdParams, FitOptions, GammaGammaParams, ModelError, fit_bg_nbd, fit_gamma_gamma,
};

#[test]
fn no_repeat_buyers_is_refused() {
    let err = fit_bg_nbd(
        &[0; 10],
        &[0.0; 10],
        &[5.0; 10],
        None,
        &FitOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ModelError::TooFewRepeatBuyers { found: 0, .. }),
        "{err}"
    );
    let err =
        fit_gamma_gamma(&[0, 1, 0], &[0.0, 3.0, 0.0], None, &FitOptions::default()).unwrap_err();
    assert!(
        matches!(err, ModelError::TooFewRepeatBuyers { found: 1, .. }),
        "{err}"
    );
}

#[test]
fn too_few_customers_is_refused() {
    let err = fit_bg_nbd(
        &[1, 0],
        &[1.0, 0.0],
        &[5.0, 5.0],
        None,
        &FitOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ModelError::TooFewCustomers { found: 2, .. }),
        "{err}"
    );
}

#[test]
fn mismatched_slices_are_refused() {
    let err = fit_bg_nbd(&[1, 0], &[1.0, 0.0], &[5.0], None, &FitOptions::default()).unwrap_err();
    assert!(
        matches!(err, ModelError::LengthMismatch { field: "age", .. }),
        "{err}"
    );
    let err = fit_bg_nbd(
        &[1, 0],
        &[1.0, 0.0],
        &[5.0, 5.0],
        Some(&[1]),
        &FitOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::LengthMismatch {
                field: "weights",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn iteration_cap_reports_did_not_converge() {
    let pop = simulate_population(
        2_000,
        &BgNbdParams {
            r: 0.5,
            alpha: 8.0,
            a: 0.9,
            b: 3.0,
        },
        &GammaGammaParams {
            p: 5.0,
            q: 4.0,
            gamma: 20.0,
        },
        52.0,
        false,
        3,
    );
    let opts = FitOptions {
        max_iterations: 1,
        ..FitOptions::default()
    };
    let err = fit_bg_nbd(&pop.frequency, &pop.recency, &pop.age, None, &opts).unwrap_err();
    assert!(
        matches!(err, ModelError::DidNotConverge { iterations: 1, .. }),
        "{err}"
    );
}

#[test]
fn non_finite_start_is_reported() {
    let opts = FitOptions {
        initial: Some(BgNbdParams {
            r: 1.0,
            alpha: f64::INFINITY,
            a: 1.0,
            b: 1.0,
        }),
        ..FitOptions::default()
    };
    let err = fit_bg_nbd(&[1, 0, 2, 0], &[1.0, 0.0, 3.0, 0.0], &[5.0; 4], None, &opts).unwrap_err();
    assert!(
        matches!(err, ModelError::NonFiniteLikelihood { .. }),
        "{err}"
    );
}
