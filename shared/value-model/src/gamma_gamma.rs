//! Gamma-Gamma model of spend per purchase (Fader & Hardie 2013, "The
//! Gamma-Gamma Model of Monetary Value"; lifetimes' `GammaGammaFitter`):
//! each purchase's value is `Gamma(p, ν)` with a customer-specific rate
//! `ν ~ Gamma(q, γ)`, independent of the purchase process. It is fitted on
//! repeat buyers only (`x > 0`, with `m` the mean value of their repeat
//! purchases) and used to shrink each customer's observed mean towards the
//! population mean.
//!
//! # Likelihood
//!
//! The density of the observed mean `m` given `x` (the one lifetimes
//! maximises, so log-likelihoods are comparable) is, in logs,
//!
//! ```text
//! ℓ = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(xm+γ)
//! ```
//!
//! Writing `ln(xm+γ) = ln x + ln m + ln(1 + γ/(xm))` turns this into
//!
//! ```text
//! ℓ = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ − q ln x − (q+1) ln m − (px+q) ln(1 + γ/(xm))
//! ```
//!
//! which is what is computed: the Gamma functions once per distinct `x`,
//! `Σ ln m` once per `x`-group before the fit, and per customer one
//! `ln_1p` and one division. The rewrite is for accuracy, not speed: the
//! first form adds and cancels terms of size `px · ln m` (hundreds per
//! customer for heavy buyers), whose rounding noise would drown the tiny
//! likelihood differences the optimiser needs to see near the optimum.
//!
//! # Gradient
//!
//! With `L = ln(1 + γ/(xm))` and ψ the digamma function:
//!
//! ```text
//! ∂ℓ/∂p = x [ψ(px+q) − ψ(px) − L]
//! ∂ℓ/∂q = ψ(px+q) − ψ(q) + ln γ − ln x − ln m − L
//! ∂ℓ/∂γ = q/γ − (px+q) / (xm+γ)
//! ```
//!
//! checked against central finite differences in the unit tests.

use crate::error::ModelError;
use crate::optim::{Fit, FitOptions, Objective, minimise};
use crate::special::{Accumulator, BLOCK, digamma, ln_gamma};

/// Gamma-Gamma parameters: spend per purchase `~ Gamma(shape p, rate ν)`,
/// `ν ~ Gamma(shape q, rate γ)`. `γ` is in money units (lifetimes calls it `v`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGammaParams {
    /// Shape of the per-purchase spend distribution.
    pub p: f64,
    /// Shape of the heterogeneity in the spend rate.
    pub q: f64,
    /// Scale of the heterogeneity in the spend rate (money units).
    pub gamma: f64,
}

impl GammaGammaParams {
    fn to_log(self) -> Vec<f64> {
        vec![self.p.ln(), self.q.ln(), self.gamma.ln()]
    }

    fn from_log(v: &[f64]) -> Self {
        GammaGammaParams {
            p: v[0].exp(),
            q: v[1].exp(),
            gamma: v[2].exp(),
        }
    }

    /// Mean spend per purchase in the population, `p γ / (q − 1)`. NaN when
    /// `q <= 1` (the mean does not exist).
    pub fn population_mean_spend(&self) -> f64 {
        if self.q <= 1.0 {
            return f64::NAN;
        }
        self.p * self.gamma / (self.q - 1.0)
    }

    /// Expected spend per purchase of a customer with `x` repeat purchases of
    /// mean value `m`: `p (γ + x m) / (p x + q − 1)` (lifetimes'
    /// `conditional_expected_average_profit`), a credibility-weighted blend
    /// of `m` and the population mean. For `x = 0`, `m` is ignored and the
    /// population mean is returned. NaN if `p x + q <= 1`.
    pub fn expected_spend_per_purchase(&self, x: u32, m: f64) -> f64 {
        if x == 0 {
            return self.population_mean_spend();
        }
        let px = self.p * f64::from(x);
        let den = px + self.q - 1.0;
        if den <= 0.0 {
            return f64::NAN;
        }
        self.p * (self.gamma + f64::from(x) * m) / den
    }
}

/// Prepared Gamma-Gamma fitting data: repeat buyers grouped by `x`, with
/// `ln m` summed per group in advance.
#[derive(Debug, Clone)]
pub struct GammaGammaData {
    groups: Vec<Group>,
    /// `1 / (x · m)` per record, grouped by `x`.
    inv_xm: Vec<f64>,
    weight: Vec<f64>,
    total_weight: f64,
    n_customers: u64,
    mean_spend: f64,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    x: u32,
    start: usize,
    end: usize,
    weight: f64,
    /// Σ w ln m over the group — constant during the fit.
    sum_ln_m: f64,
}

impl GammaGammaData {
    /// Prepares the repeat buyers among the given customers: records with
    /// `frequency == 0` (or weight 0) are skipped, so the whole population
    /// can be passed; the others need a finite `monetary > 0` (mean value of
    /// the repeat purchases).
    pub fn new(
        frequency: &[u32],
        monetary: &[f64],
        weights: Option<&[u64]>,
    ) -> Result<Self, ModelError> {
        let n = frequency.len();
        if monetary.len() != n {
            return Err(ModelError::LengthMismatch {
                field: "monetary",
                expected: n,
                found: monetary.len(),
            });
        }
        if let Some(w) = weights
            && w.len() != n
        {
            return Err(ModelError::LengthMismatch {
                field: "weights",
                expected: n,
                found: w.len(),
            });
        }
        let mut recs: Vec<(u32, f64, u64)> = Vec::new();
        for i in 0..n {
            let w = weights.map_or(1, |w| w[i]);
            if frequency[i] == 0 || w == 0 {
                continue;
            }
            let m = monetary[i];
            if !(m.is_finite() && m > 0.0) {
                return Err(ModelError::InvalidCustomer {
                    index: i,
                    reason: "mean spend of a repeat buyer must be finite and > 0",
                });
            }
            recs.push((frequency[i], m, w));
        }
        recs.sort_unstable_by_key(|r| r.0);
        let mut groups: Vec<Group> = Vec::new();
        let (mut n_customers, mut spend) = (0u64, 0.0);
        for (k, &(x, m, w)) in recs.iter().enumerate() {
            let wf = w as f64;
            n_customers += w;
            spend += wf * m;
            match groups.last_mut() {
                Some(g) if g.x == x => {
                    g.end = k + 1;
                    g.weight += wf;
                    g.sum_ln_m += wf * m.ln();
                }
                _ => groups.push(Group {
                    x,
                    start: k,
                    end: k + 1,
                    weight: wf,
                    sum_ln_m: wf * m.ln(),
                }),
            }
        }
        Ok(GammaGammaData {
            groups,
            inv_xm: recs.iter().map(|r| 1.0 / (f64::from(r.0) * r.1)).collect(),
            weight: recs.iter().map(|r| r.2 as f64).collect(),
            total_weight: n_customers as f64,
            n_customers,
            mean_spend: if n_customers > 0 {
                spend / n_customers as f64
            } else {
                1.0
            },
        })
    }

    /// Number of repeat buyers used (sum of weights).
    pub fn n_customers(&self) -> u64 {
        self.n_customers
    }

    /// Total log-likelihood at `params`.
    pub fn log_likelihood(&self, params: &GammaGammaParams) -> f64 {
        self.ll_and_grad_natural(params).0
    }

    /// Total log-likelihood and its gradient with respect to `(p, q, γ)`.
    pub fn log_likelihood_and_gradient(&self, params: &GammaGammaParams) -> (f64, [f64; 3]) {
        self.ll_and_grad_natural(params)
    }

    fn ll_and_grad_natural(&self, prm: &GammaGammaParams) -> (f64, [f64; 3]) {
        let (p, q, gamma) = (prm.p, prm.q, prm.gamma);
        let (lg_q, dg_q, ln_gamma_) = (ln_gamma(q), digamma(q), gamma.ln());
        // Compensated totals: see `special::Accumulator` for why.
        let mut ll = Accumulator::default();
        let mut g_p = Accumulator::default();
        let mut g_q = Accumulator::default();
        let mut g_g = Accumulator::default();
        for g in &self.groups {
            let xf = f64::from(g.x);
            let px = p * xf;
            let ln_x = xf.ln();
            // Σ w ln(1 + γ/(xm)) and Σ w / (xm + γ), blocked.
            let (mut a_l1, mut a_inv) = (Accumulator::default(), Accumulator::default());
            let inv = &self.inv_xm[g.start..g.end];
            let wts = &self.weight[g.start..g.end];
            for (ib, wb) in inv.chunks(BLOCK).zip(wts.chunks(BLOCK)) {
                let (mut l1, mut iv) = (0.0, 0.0);
                for (&inv_xm, &w) in ib.iter().zip(wb) {
                    let u = gamma * inv_xm;
                    l1 += w * u.ln_1p();
                    iv += w * inv_xm / (1.0 + u);
                }
                a_l1.add(l1);
                a_inv.add(iv);
            }
            let (s_l1, s_inv) = (a_l1.value(), a_inv.value());
            let wg = g.weight;
            let lg_diff = ln_gamma(px + q) - ln_gamma(px);
            let (dg_pxq, dg_px) = (digamma(px + q), digamma(px));
            ll.add(wg * (lg_diff - lg_q + q * (ln_gamma_ - ln_x)));
            ll.add(-(q + 1.0) * g.sum_ln_m);
            ll.add(-(px + q) * s_l1);
            g_p.add(xf * (wg * (dg_pxq - dg_px) - s_l1));
            g_q.add(wg * (dg_pxq - dg_q + ln_gamma_ - ln_x) - g.sum_ln_m - s_l1);
            g_g.add(wg * q / gamma - (px + q) * s_inv);
        }
        (ll.value(), [g_p.value(), g_q.value(), g_g.value()])
    }

    /// Default starting point: `p = 1`, `q = 2`, `γ = ` mean observed spend
    /// (so the implied population mean `pγ/(q−1)` equals the sample mean and
    /// the start is independent of the currency unit).
    fn default_start(&self) -> GammaGammaParams {
        GammaGammaParams {
            p: 1.0,
            q: 2.0,
            gamma: self.mean_spend,
        }
    }

    /// Fits the model by maximum likelihood (see [`fit_gamma_gamma`]).
    pub fn fit(
        &self,
        opts: &FitOptions<GammaGammaParams>,
    ) -> Result<Fit<GammaGammaParams>, ModelError> {
        if self.n_customers < 3 {
            return Err(ModelError::TooFewRepeatBuyers {
                found: self.n_customers,
                needed: 3,
            });
        }
        let start = opts
            .initial
            .unwrap_or_else(|| self.default_start())
            .to_log();
        let m = minimise(self, start, opts, |v| v.iter().map(|x| x.exp()).collect())?;
        Ok(Fit {
            params: GammaGammaParams::from_log(&m.log_params),
            log_likelihood: -m.mean_nll * self.total_weight,
            n_customers: self.n_customers,
            iterations: m.iterations,
            evaluations: m.evaluations,
            gradient_norm: m.gradient_norm,
        })
    }
}

impl Objective for GammaGammaData {
    const DIM: usize = 3;

    fn mean_nll_and_grad(&self, log_params: &[f64], grad: &mut [f64]) -> f64 {
        let prm = GammaGammaParams::from_log(log_params);
        let (ll, g) = self.ll_and_grad_natural(&prm);
        let s = -1.0 / self.total_weight;
        grad[0] = s * prm.p * g[0];
        grad[1] = s * prm.q * g[1];
        grad[2] = s * prm.gamma * g[2];
        s * ll
    }
}

/// Fits the Gamma-Gamma model by maximum likelihood on the repeat buyers
/// among the given customers (`frequency > 0`; others are skipped).
/// `monetary[i]` is the mean value of customer `i`'s repeat purchases.
/// Optimisation: L-BFGS over `ln p, ln q, ln γ` with analytic gradients,
/// from [`FitOptions::initial`] or `p = 1, q = 2, γ = mean(m)`.
pub fn fit_gamma_gamma(
    frequency: &[u32],
    monetary: &[f64],
    weights: Option<&[u64]>,
    opts: &FitOptions<GammaGammaParams>,
) -> Result<Fit<GammaGammaParams>, ModelError> {
    GammaGammaData::new(frequency, monetary, weights)?.fit(opts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toy() -> GammaGammaData {
        let x = [1, 2, 2, 5, 0, 3, 1, 12];
        let m = [10.0, 25.5, 7.0, 40.0, 0.0, 12.25, 99.0, 31.0];
        let w = [3, 1, 2, 1, 4, 1, 2, 1];
        GammaGammaData::new(&x, &m, Some(&w)).unwrap()
    }

    #[test]
    fn likelihood_matches_naive_formula() {
        let prm = GammaGammaParams {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let x = [1u32, 2, 2, 5, 3, 1, 12];
        let m: [f64; 7] = [10.0, 25.5, 7.0, 40.0, 12.25, 99.0, 31.0];
        let w = [3.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0];
        let (p, q, v) = (prm.p, prm.q, prm.gamma);
        let want: f64 = (0..7)
            .map(|i| {
                let xf = f64::from(x[i]);
                w[i] * (ln_gamma(p * xf + q) - ln_gamma(p * xf) - ln_gamma(q)
                    + q * v.ln()
                    + (p * xf - 1.0) * m[i].ln()
                    + p * xf * xf.ln()
                    - (p * xf + q) * (xf * m[i] + v).ln())
            })
            .sum();
        let got = toy().log_likelihood(&prm);
        assert!((got - want).abs() < 1e-11 * want.abs(), "{got} vs {want}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = toy();
        for prm in [
            GammaGammaParams {
                p: 6.25,
                q: 3.74,
                gamma: 15.44,
            },
            GammaGammaParams {
                p: 0.3,
                q: 12.0,
                gamma: 250.0,
            },
        ] {
            let (_, g) = data.log_likelihood_and_gradient(&prm);
            let v = [prm.p, prm.q, prm.gamma];
            for k in 0..3 {
                let h = 1e-6 * v[k];
                let (mut up, mut dn) = (v, v);
                up[k] += h;
                dn[k] -= h;
                let mk = |a: [f64; 3]| GammaGammaParams {
                    p: a[0],
                    q: a[1],
                    gamma: a[2],
                };
                let fd = (data.log_likelihood(&mk(up)) - data.log_likelihood(&mk(dn))) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() <= 1e-6 * g[k].abs().max(1.0),
                    "param {k}: analytic {} vs finite difference {fd}",
                    g[k]
                );
            }
        }
    }

    #[test]
    fn expected_spend_blends_towards_population_mean() {
        let prm = GammaGammaParams {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let pop = prm.population_mean_spend();
        assert!((prm.expected_spend_per_purchase(0, 123.0) - pop).abs() < 1e-12);
        let one = prm.expected_spend_per_purchase(1, 100.0);
        let many = prm.expected_spend_per_purchase(50, 100.0);
        assert!(pop < one && one < many && many < 100.0);
    }

    #[test]
    fn rejects_non_positive_spend_of_repeat_buyer() {
        let err = GammaGammaData::new(&[1, 0], &[0.0, 0.0], None).unwrap_err();
        assert!(matches!(err, ModelError::InvalidCustomer { index: 0, .. }));
    }
}
