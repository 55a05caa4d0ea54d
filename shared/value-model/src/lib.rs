//! Customer-lifetime-value models fitted by maximum likelihood on a whole
//! customer population, for Tierline's customer tiers.
//!
//! * [`bgnbd`] — the BG/NBD purchase model (Fader, Hardie & Lee 2005):
//!   who is still active and how many purchases to expect.
//! * [`gamma_gamma`] — the Gamma-Gamma spend model (Fader & Hardie 2013):
//!   how much each future purchase is worth.
//! * [`value`] — both combined into a discounted predicted value, plus a
//!   batch scorer for whole populations.
//! * [`summary`] — the `(x, t_x, T)` input layout and its compressed form.
//! * [`special`] — `lnΓ`, digamma and the hypergeometric series the models need.
//! * [`simulate`] — deterministic synthetic populations for tests and benchmarks.
//!
//! Definitions follow the papers and the Python `lifetimes` package, so
//! fitted parameters and predictions can be compared number for number. The
//! crate is pure computation: no I/O, no threads, no global state. Inputs are
//! slices so callers can hand in database columns directly, and later split
//! them for parallel scoring.
//!
//! ```
//! use tierline_value_model::simulate::simulate_population;
//! use tierline_value_model::{
//!     fit_bg_nbd, fit_gamma_gamma, BgNbdParams, ClvModel, FitOptions, GammaGammaParams, RfmSummary,
//! };
//! # fn main() -> Result<(), tierline_value_model::ModelError> {
//! // Columns per customer: x = repeat purchases, t_x = recency, T = age
//! // (days here), m = mean spend of the repeat purchases.
//! let truth = (BgNbdParams { r: 0.25, alpha: 30.0, a: 0.8, b: 2.5 },
//!              GammaGammaParams { p: 6.0, q: 4.0, gamma: 15.0 });
//! let pop = simulate_population(5_000, &truth.0, &truth.1, 365.0, true, 1);
//!
//! // Optional: collapse identical (x, t_x, T) histories into weighted records.
//! let s = RfmSummary::compress(&pop.frequency, &pop.recency, &pop.age)?;
//! let bg = fit_bg_nbd(&s.frequency, &s.recency, &s.age, Some(&s.weight), &FitOptions::default())?;
//! let gg = fit_gamma_gamma(&pop.frequency, &pop.monetary, None, &FitOptions::default())?;
//!
//! let model = ClvModel { purchases: bg.params, spend: gg.params };
//! let p_alive = model.purchases.probability_alive(3, 200.0, 300.0);
//! let next_90_days = model.purchases.expected_purchases(90.0, 3, 200.0, 300.0);
//! // 12 months, 1 % monthly discount, 1 day per model time unit, mean spend 40
//! let value = model.predicted_value(12, 0.01, 1.0, 3, 200.0, 300.0, 40.0);
//! assert!(p_alive > 0.0 && p_alive <= 1.0 && next_90_days > 0.0 && value > 0.0);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bgnbd;
pub mod error;
pub mod gamma_gamma;
pub mod optim;
pub mod simulate;
pub mod special;
pub mod summary;
pub mod value;

pub use bgnbd::{BgNbdData, BgNbdParams, fit_bg_nbd};
pub use error::ModelError;
pub use gamma_gamma::{GammaGammaData, GammaGammaParams, fit_gamma_gamma};
pub use optim::{Fit, FitOptions};
pub use summary::{RfmSummary, TimeUnit};
pub use value::{ClvModel, Scores, ScoringPlan};
