//! BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers
//! the easy way", *Marketing Science* 24(2)): while alive a customer buys as
//! a Poisson process with rate `λ ~ Gamma(r, α)`, and after every purchase
//! drops out with probability `p ~ Beta(a, b)`.
//!
//! This module fits `(r, α, a, b)` by maximum likelihood on a whole
//! population ([`fit_bg_nbd`], [`BgNbdData`]) and scores customers with the
//! fitted parameters ([`BgNbdParams`]). Definitions follow the paper and the
//! Python `lifetimes` package (`BetaGeoFitter`), so numbers are comparable.
//!
//! # Likelihood and why it is cheap
//!
//! Per customer (paper, section 7, in logs):
//!
//! ```text
//! ℓ = A1 + A2 + ln(e^A3 + δ_{x>0} e^A4)
//! A1 = ln Γ(r+x) − ln Γ(r) + r ln α      = Σ_{i<x} ln(r+i) + r ln α
//! A2 = ln B(a, b+x) − ln B(a, b)          = Σ_{i<x} [ln(b+i) − ln(a+b+i)]
//! A3 = −(r+x) ln(α+T)
//! A4 = ln a − ln(b+x−1) − (r+x) ln(α+t_x)
//! ```
//!
//! `A1` and `A2` (and `ln a − ln(b+x−1)`) depend on `x` only, so they are
//! computed once per distinct `x` from the running sums above — no `lnΓ`
//! at all. Times enter as `L_t = ln(1 + t/α)` and `q_t = t/(α+t)`, computed
//! once per distinct time value (customer times are whole days or weeks in
//! practice, so there are few): `A1 + A3 = Σ_{i<x} ln((r+i)/α) − (r+x) L_T`,
//! so that `r ln α` never meets `r ln(α+T)` (see `ll_and_log_grad` for why).
//! What remains per repeat buyer is the log-sum-exp `A3 + softplus(A4 − A3)`
//! with `A4 − A3 = ln a − ln(b+x−1) + (r+x)(L_T − L_{t_x})`: one `exp` and one
//! `ln`, plus table look-ups. One-time buyers (`x = 0`) reduce to `−r L_T`
//! and cost one multiply-add per distinct age.
//!
//! # Gradient
//!
//! With `d = A4 − A3` and `σ = 1/(1 + e^{−d})` — which is exactly
//! `1 − P(alive)`, the posterior probability that the customer dropped out
//! after the last purchase (`σ = 0` for `x = 0`):
//!
//! ```text
//! ∂ℓ/∂r = Σ_{i<x} 1/(r+i) + ln α − ln(α+T) + σ [ln(α+T) − ln(α+t_x)]
//! ∂ℓ/∂α = r/α − (r+x)/(α+T) + σ (r+x) [1/(α+T) − 1/(α+t_x)]
//! ∂ℓ/∂a = −Σ_{i<x} 1/(a+b+i) + σ/a
//! ∂ℓ/∂b = Σ_{i<x} [1/(b+i) − 1/(a+b+i)] − σ/(b+x−1)
//! ```
//!
//! The per-customer parts are accumulated as six weighted sums per
//! `x`-group and combined with the per-`x` parts afterwards. The unit tests
//! check value and gradient against a direct `lnΓ` implementation and
//! central finite differences.

use crate::error::ModelError;
use crate::optim::{Fit, FitOptions, Objective, minimise};
use crate::special::{Accumulator, BLOCK, gauss_legendre, hyp2f1, softplus_and_sigmoid};
use crate::summary::validate_rfm;

/// BG/NBD parameters: purchase rate `λ ~ Gamma(shape r, rate α)` (so `α` is
/// in the model's time unit), dropout probability `p ~ Beta(a, b)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    /// Shape of the purchase-rate heterogeneity.
    pub r: f64,
    /// Scale (rate parameter) of the purchase-rate heterogeneity, in time units.
    pub alpha: f64,
    /// First shape of the dropout-probability Beta distribution.
    pub a: f64,
    /// Second shape of the dropout-probability Beta distribution.
    pub b: f64,
}

impl BgNbdParams {
    fn from_log(p: &[f64]) -> Self {
        BgNbdParams {
            r: p[0].exp(),
            alpha: p[1].exp(),
            a: p[2].exp(),
            b: p[3].exp(),
        }
    }

    /// Probability that a customer with history `(x, t_x, T)` is still alive
    /// at `T` (Fader, Hardie & Lee 2008 note "Computing P(alive) using the
    /// BG/NBD model"; lifetimes' `conditional_probability_alive`):
    /// `1 / (1 + δ_{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^{r+x})`.
    ///
    /// Computed as a logistic function of the log-odds, so it neither
    /// overflows for large `x` nor loses precision near 0 or 1. Customers
    /// with `x = 0` are alive with probability 1 (in the BG/NBD a customer can
    /// only drop out right after a repeat purchase).
    pub fn probability_alive(&self, x: u32, t_x: f64, age: f64) -> f64 {
        if x == 0 {
            return 1.0;
        }
        let xf = f64::from(x);
        // ln((α+T)/(α+t_x)) as ln(1 + (T−t_x)/(α+t_x)): with α in the billions (rates that do
        // not differ) the ratio itself would round away most of its difference from 1.
        let log_odds_dead = (self.a / (self.b + xf - 1.0)).ln()
            + (self.r + xf) * ((age - t_x) / (self.alpha + t_x)).ln_1p();
        let (_, sig) = softplus_and_sigmoid(-log_odds_dead);
        sig
    }

    /// Expected number of repeat purchases in `(T, T + horizon]` for a
    /// customer with history `(x, t_x, T)` (paper eq. 10; lifetimes'
    /// `conditional_expected_number_of_purchases_up_to_time`).
    ///
    /// Equals `probability_alive(x, t_x, T) · expected_purchases_if_alive(horizon, x, T)`.
    /// Returns NaN if the hypergeometric series cannot be summed (see
    /// [`Self::expected_purchases_if_alive`]).
    pub fn expected_purchases(&self, horizon: f64, x: u32, t_x: f64, age: f64) -> f64 {
        self.probability_alive(x, t_x, age) * self.expected_purchases_if_alive(horizon, x, age)
    }

    /// Expected number of purchases in `(0, horizon]` of a customer who has
    /// just made a first purchase (paper eq. 9; lifetimes'
    /// `expected_number_of_purchases_up_to_time`). This is the `x = 0, T = 0`
    /// case of [`Self::expected_purchases_if_alive`]; it needs `a + b > 1`.
    pub fn expected_purchases_new_customer(&self, horizon: f64) -> f64 {
        self.expected_purchases_if_alive(horizon, 0, 0.0)
    }

    /// Expected repeat purchases in `(T, T + horizon]` *given that the
    /// customer is alive at `T`*: the numerator of paper eq. 10,
    ///
    /// ```text
    /// (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^{r+x} ₂F₁(r+x, b+x; a+b+x−1; z)],
    /// z = t/(α+T+t).
    /// ```
    ///
    /// It depends on the history only through `x` and `T`, so batch scoring
    /// can share it between customers.
    ///
    /// Numerics. Euler's transformation
    /// `₂F₁(A,B;C;z) = (1−z)^{C−A−B} ₂F₁(C−A, C−B; C; z)` turns the bracket
    /// into `1 − (1−z)^{a−1} · ₂F₁(a+b−1−r, a−1; a+b+x−1; z)`. The new series
    /// has small numerator parameters whatever `x` is and a denominator
    /// parameter that grows with `x`, so it converges faster for heavy buyers
    /// and nothing overflows (the untransformed form involves
    /// `(1−z)^{−(r+x)}`-sized terms). The bracket is formed with `expm1` so
    /// short horizons keep full relative precision. The series needs about
    /// `37/(1−z)` terms (≈ 740 at `z = 0.95`); see [`crate::special::hyp2f1`]
    /// for accuracy. At `a = 1` the expression is 0/0 with a finite limit; for
    /// `|a − 1| < 1e-5` it is interpolated linearly between `a = 1 ± 1e-5`
    /// (relative error ~1e-10). Returns NaN when `a+b+x−1 <= 0` (only
    /// possible for `x = 0`) or if the series cap is reached.
    pub fn expected_purchases_if_alive(&self, horizon: f64, x: u32, age: f64) -> f64 {
        const H: f64 = 1e-5;
        if (self.a - 1.0).abs() < H {
            let lo = BgNbdParams {
                a: 1.0 - H,
                ..*self
            };
            let hi = BgNbdParams {
                a: 1.0 + H,
                ..*self
            };
            let w = (self.a - lo.a) / (2.0 * H);
            let f_lo = lo.purchases_if_alive_raw(horizon, x, age);
            let f_hi = hi.purchases_if_alive_raw(horizon, x, age);
            return f_lo + w * (f_hi - f_lo);
        }
        self.purchases_if_alive_raw(horizon, x, age)
    }

    fn purchases_if_alive_raw(&self, horizon: f64, x: u32, age: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let xf = f64::from(x);
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let c = a + b + xf - 1.0;
        let base = alpha + age;
        let z = horizon / (base + horizon);
        // The series' terms grow about as fast as the first ratio's size, `growth`, before they
        // decay: to e^growth. With `a+b−1−r ≥ 0` all terms have one sign and only overflow and
        // time are at stake; with `r > a+b−1` (rates that barely differ) they alternate, and
        // e^growth-sized terms cancel to a result near 1, losing about growth/1.15 digits.
        let series_a = a + b - 1.0 - r;
        let growth = z * series_a.abs() * (a - 1.0).abs() / c;
        let unreliable = if series_a >= 0.0 {
            growth > SERIES_MAX_GROWTH
        } else {
            growth > ALTERNATING_MAX_GROWTH
        };
        if unreliable {
            return if a >= QUADRATURE_MIN_SHAPE && b + xf >= QUADRATURE_MIN_SHAPE {
                self.purchases_if_alive_by_quadrature(horizon, x, age)
            } else {
                // A dropout posterior with an infinite slope at an end: neither way is exact.
                f64::NAN
            };
        }
        // ln(1 − z) = −ln(1 + t/(α+T)), accurate also for tiny horizons.
        let ln_1mz = -(horizon / base).ln_1p();
        let Some(f) = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z) else {
            return f64::NAN;
        };
        if f <= 0.0 {
            return f64::NAN;
        }
        let e = (a - 1.0) * ln_1mz + f.ln();
        // c/(a−1) · (1 − e^e): both factors change sign together at a = 1.
        c / (a - 1.0) * -e.exp_m1()
    }

    /// [`Self::expected_purchases_if_alive`] as the expectation it is, over the dropout
    /// probability's posterior `p ~ Beta(a, b+x)` of an alive customer:
    ///
    /// ```text
    /// E[(1 − (1 + p t/(α+T))^{−(r+x)}) / p]
    /// ```
    ///
    /// (a customer with rate `λ` and dropout `p` makes `(1 − e^{−λpt})/p` purchases in `t`;
    /// averaged over `λ ~ Gamma(r+x, α+T)` that is the bracket above). Used where the closed
    /// form's series cannot be summed well (see `purchases_if_alive_raw`): a population whose
    /// customers all drop out alike has `a` in the billions, where the series overflows; one
    /// whose rates barely differ has `r` far above `a+b`, where its terms alternate and cancel.
    /// The posterior is integrated by composite Gauss–Legendre over 12 standard deviations
    /// either side of its mean (clipped to `[0, 1]`), its density in logs relative to the
    /// mean's and the integral divided by the same rule's mass (so the Beta function is never
    /// needed). Against the series where both apply the two agree to 1e-10
    /// (`quadrature_agrees_with_the_series`).
    fn purchases_if_alive_by_quadrature(&self, horizon: f64, x: u32, age: f64) -> f64 {
        let xf = f64::from(x);
        let (a, b) = (self.a, self.b + xf);
        let total = a + b;
        let mean = a / total;
        let spread = (mean * (1.0 - mean) / (total + 1.0)).sqrt();
        let lo = (mean - 12.0 * spread).max(0.0);
        let hi = (mean + 12.0 * spread).min(1.0);
        let (shape, scaled) = (self.r + xf, horizon / (self.alpha + age));
        let (mut purchases, mut mass) = (0.0, 0.0);
        for (p, weight) in gauss_legendre(lo, hi, QUADRATURE_PANELS) {
            let density = ((a - 1.0) * ((p - mean) / mean).ln_1p()
                + (b - 1.0) * ((mean - p) / (1.0 - mean)).ln_1p())
            .exp();
            purchases += weight * density * -(-shape * (p * scaled).ln_1p()).exp_m1() / p;
            mass += weight * density;
        }
        if mass > 0.0 {
            purchases / mass
        } else {
            // A posterior narrower than the doubles around its mean: all of it at the mean.
            -(-shape * (mean * scaled).ln_1p()).exp_m1() / mean
        }
    }
}

/// Least shapes `a` and `b+x` of the dropout posterior whose expected purchases are integrated
/// by quadrature: from 2 its density has a finite slope at both ends, and 8 panels of 16 nodes
/// agree with the series to 1e-10 (`quadrature_agrees_with_the_series`); at 1.5 only to 1e-4.
const QUADRATURE_MIN_SHAPE: f64 = 2.0;

/// The series' growth above which it is left for the quadrature when its terms have one sign:
/// below it the series takes a few dozen terms, above it they grow like `e^growth`.
const SERIES_MAX_GROWTH: f64 = 30.0;

/// The same for alternating terms, which lose digits as they grow: 3 costs about three of them.
const ALTERNATING_MAX_GROWTH: f64 = 3.0;

/// Gauss–Legendre panels over the dropout posterior's ±12 standard deviations.
const QUADRATURE_PANELS: usize = 8;

/// Prepared BG/NBD fitting data: customers grouped by frequency and mapped to
/// a table of distinct time values. Build it once and evaluate the
/// likelihood as often as needed (the optimiser does ~30–60 evaluations).
#[derive(Debug, Clone)]
pub struct BgNbdData {
    /// Distinct values among all ages and repeat buyers' recencies.
    times: Vec<f64>,
    /// Per distinct time: total weight of one-time buyers (`x = 0`) of that age.
    zero_weight: Vec<f64>,
    /// Repeat buyers grouped by `x` (ascending).
    groups: Vec<Group>,
    /// Per repeat-buyer record: (index of T, index of t_x) into `times`.
    idx: Vec<[u32; 2]>,
    /// Per repeat-buyer record: its weight.
    weight: Vec<f64>,
    total_weight: f64,
    n_customers: u64,
    n_repeat: u64,
    max_age: f64,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    x: u32,
    start: usize,
    end: usize,
    weight: f64,
}

impl BgNbdData {
    /// Validates and prepares `(x, t_x, T)` per customer, optionally with a
    /// count per record (as produced by [`crate::RfmSummary::compress`]).
    /// Records with weight 0 are ignored.
    pub fn new(
        frequency: &[u32],
        recency: &[f64],
        age: &[f64],
        weights: Option<&[u64]>,
    ) -> Result<Self, ModelError> {
        validate_rfm(frequency, recency, age, weights)?;
        let w_of = |i: usize| weights.map_or(1, |w| w[i]);

        // Distinct time values, sorted (bit order = numeric order for
        // non-negative finite f64; `+ 0.0` folds −0.0 into 0.0).
        let mut bits: Vec<u64> = Vec::with_capacity(2 * frequency.len());
        for i in 0..frequency.len() {
            if w_of(i) == 0 {
                continue;
            }
            bits.push((age[i] + 0.0).to_bits());
            if frequency[i] > 0 {
                bits.push((recency[i] + 0.0).to_bits());
            }
        }
        bits.sort_unstable();
        bits.dedup();
        let index_of = |t: f64| -> u32 {
            // Present by construction; the table is far smaller than u32::MAX
            // entries for any realistic input (two per customer at most).
            bits.binary_search(&(t + 0.0).to_bits())
                .expect("time in table") as u32
        };

        let mut zero_weight = vec![0.0; bits.len()];
        let mut repeat: Vec<(u32, [u32; 2], u64)> = Vec::new();
        let (mut n_customers, mut n_repeat) = (0u64, 0u64);
        let mut max_age = 0.0f64;
        for i in 0..frequency.len() {
            let w = w_of(i);
            if w == 0 {
                continue;
            }
            n_customers += w;
            max_age = max_age.max(age[i]);
            let it = index_of(age[i]);
            if frequency[i] == 0 {
                zero_weight[it as usize] += w as f64;
            } else {
                n_repeat += w;
                repeat.push((frequency[i], [it, index_of(recency[i])], w));
            }
        }
        // Already sorted when the input comes from RfmSummary (pdqsort is
        // linear on sorted input).
        repeat.sort_unstable_by_key(|r| r.0);

        let mut groups: Vec<Group> = Vec::new();
        for (k, rec) in repeat.iter().enumerate() {
            match groups.last_mut() {
                Some(g) if g.x == rec.0 => {
                    g.end = k + 1;
                    g.weight += rec.2 as f64;
                }
                _ => groups.push(Group {
                    x: rec.0,
                    start: k,
                    end: k + 1,
                    weight: rec.2 as f64,
                }),
            }
        }
        Ok(BgNbdData {
            times: bits.into_iter().map(f64::from_bits).collect(),
            zero_weight,
            groups,
            idx: repeat.iter().map(|r| r.1).collect(),
            weight: repeat.iter().map(|r| r.2 as f64).collect(),
            total_weight: n_customers as f64,
            n_customers,
            n_repeat,
            max_age,
        })
    }

    /// Number of customers (sum of weights).
    pub fn n_customers(&self) -> u64 {
        self.n_customers
    }

    /// Number of repeat buyers (sum of weights of records with `x > 0`).
    pub fn n_repeat_buyers(&self) -> u64 {
        self.n_repeat
    }

    /// Number of distinct time values (the size of the per-evaluation table).
    pub fn n_distinct_times(&self) -> usize {
        self.times.len()
    }

    /// Total log-likelihood at `params`.
    pub fn log_likelihood(&self, params: &BgNbdParams) -> f64 {
        self.ll_and_log_grad(params).0
    }

    /// Total log-likelihood and its gradient with respect to
    /// `(r, α, a, b)` (natural scale). Exposed for testing and diagnostics.
    pub fn log_likelihood_and_gradient(&self, params: &BgNbdParams) -> (f64, [f64; 4]) {
        let (ll, g) = self.ll_and_log_grad(params);
        (
            ll,
            [
                g[0] / params.r,
                g[1] / params.alpha,
                g[2] / params.a,
                g[3] / params.b,
            ],
        )
    }

    /// The one pass over the data: total log-likelihood and its gradient with respect to the
    /// log-parameters `(ln r, ln α, ln a, ln b)`.
    ///
    /// Written so that no large terms cancel: times enter as `L_t = ln(1 + t/α)` and
    /// `q_t = t/(α+t)`, never as `ln(α+t)` beside `r ln α`. Where the spread of rates vanishes
    /// (`r` and `α` in the billions, see `MeanAndConcentration`) the textbook form takes the
    /// difference of two products of some 10¹¹ and loses the likelihood's last six digits to
    /// rounding; the line search then sees noise instead of a slope and the fit stops short.
    fn ll_and_log_grad(&self, p: &BgNbdParams) -> (f64, [f64; 4]) {
        let (r, alpha, a, b) = (p.r, p.alpha, p.a, p.b);
        let ln_alpha = alpha.ln();

        // Per distinct time: L_t and q_t, interleaved so one look-up touches one cache line.
        let table: Vec<[f64; 2]> = self
            .times
            .iter()
            .map(|&t| [(t / alpha).ln_1p(), t / (alpha + t)])
            .collect();

        // One-time buyers: ℓ = −r L_T; r ∂ℓ/∂r = −r L_T, α ∂ℓ/∂α = r q_T.
        let (mut s0_ln, mut s0_q) = (Accumulator::default(), Accumulator::default());
        for (tb, wb) in table.chunks(BLOCK).zip(self.zero_weight.chunks(BLOCK)) {
            let (mut l, mut q) = (0.0, 0.0);
            for (tw, w) in tb.iter().zip(wb) {
                l += w * tw[0];
                q += w * tw[1];
            }
            s0_ln.add(l);
            s0_q.add(q);
        }
        let (s0_ln, s0_q) = (s0_ln.value(), s0_q.value());
        // Totals are compensated sums: see `Accumulator` for why.
        let mut ll = Accumulator::default();
        let mut g_r = Accumulator::default();
        let mut g_alpha = Accumulator::default();
        let mut g_a = Accumulator::default();
        let mut g_b = Accumulator::default();
        ll.add(-r * s0_ln);
        g_r.add(-r * s0_ln);
        g_alpha.add(r * s0_q);

        // Running per-x sums (advanced as x increases through the groups):
        // Σ_{i<x} ln((r+i)/α), Σ r/(r+i), Σ ln((b+i)/(a+b+i)), Σ −a/(a+b+i) and
        // Σ [b/(b+i) − b/(a+b+i)] = Σ ab/((b+i)(a+b+i)).
        let (mut ln_r, mut r_share, mut ln_beta) = (0.0, 0.0, 0.0);
        let (mut dbeta_a, mut dbeta_b) = (0.0, 0.0);
        let mut done = 0u32;
        let ln_a = a.ln();

        for g in &self.groups {
            while done < g.x {
                let i = f64::from(done);
                let (ri, bi, abi) = (r + i, b + i, a + b + i);
                ln_r += ri.ln() - ln_alpha;
                r_share += r / ri;
                ln_beta -= (a / bi).ln_1p();
                dbeta_a -= a / abi;
                dbeta_b += a * b / (bi * abi);
                done += 1;
            }
            let xf = f64::from(g.x);
            let rx = r + xf;
            let bx1 = b + xf - 1.0;
            let c = ln_a - bx1.ln();

            // Per-customer loop: d = A4 − A3 = c + (r+x)(L_T − L_tx).
            // Six sums, blocked (plain within a block, compensated across).
            let mut acc = [Accumulator::default(); 6];
            let idx = &self.idx[g.start..g.end];
            let wts = &self.weight[g.start..g.end];
            for (ib, wb) in idx.chunks(BLOCK).zip(wts.chunks(BLOCK)) {
                let mut s = [0.0f64; 6];
                for (&[it, ix], &w) in ib.iter().zip(wb) {
                    let [lt, qt] = table[it as usize];
                    let [lx, qx] = table[ix as usize];
                    let dl = lt - lx;
                    let (sp, sig) = softplus_and_sigmoid(c + rx * dl);
                    let ws = w * sig;
                    s[0] += w * lt;
                    s[1] += w * qt;
                    s[2] += w * sp;
                    s[3] += ws;
                    s[4] += ws * dl;
                    s[5] += ws * (qx - qt);
                }
                for (a, v) in acc.iter_mut().zip(s) {
                    a.add(v);
                }
            }
            let [s_lt, s_qt, s_sp, s_sig, s_sig_d, s_sig_q] = acc.map(|a| a.value());
            let wg = g.weight;
            ll.add(wg * (ln_r + ln_beta));
            ll.add(-rx * s_lt);
            ll.add(s_sp);
            g_r.add(wg * r_share);
            g_r.add(r * (s_sig_d - s_lt));
            g_alpha.add(r * s_qt - xf * (wg - s_qt));
            g_alpha.add(rx * s_sig_q);
            g_a.add(wg * dbeta_a + s_sig);
            g_b.add(wg * dbeta_b - s_sig * b / bx1);
        }
        let [ll, g_r, g_alpha, g_a, g_b] = [ll, g_r, g_alpha, g_a, g_b].map(|a| a.value());
        (ll, [g_r, g_alpha, g_a, g_b])
    }

    /// Default starting point: `r = a = b = 1` and `α = max(T)/10`. Scaling
    /// `α` with the data makes the iterations independent of the time unit
    /// (lifetimes achieves the same by rescaling time so that max T = 10).
    fn default_start(&self) -> BgNbdParams {
        BgNbdParams {
            r: 1.0,
            alpha: (self.max_age / 10.0).max(1e-3),
            a: 1.0,
            b: 1.0,
        }
    }

    /// Fits the model by maximum likelihood (see [`fit_bg_nbd`]).
    pub fn fit(&self, opts: &FitOptions<BgNbdParams>) -> Result<Fit<BgNbdParams>, ModelError> {
        if self.n_customers < 4 {
            return Err(ModelError::TooFewCustomers {
                found: self.n_customers,
                needed: 4,
            });
        }
        if self.n_repeat < 1 {
            return Err(ModelError::TooFewRepeatBuyers {
                found: self.n_repeat,
                needed: 1,
            });
        }
        let start = opts.initial.unwrap_or_else(|| self.default_start());
        let m = minimise(
            &MeanAndConcentration(self),
            MeanAndConcentration::of(&start),
            opts,
            |u| {
                MeanAndConcentration::log_params(u)
                    .iter()
                    .map(|v| v.exp())
                    .collect()
            },
        )?;
        Ok(Fit {
            params: BgNbdParams::from_log(&MeanAndConcentration::log_params(&m.log_params)),
            log_likelihood: -m.mean_nll * self.total_weight,
            n_customers: self.n_customers,
            iterations: m.iterations,
            evaluations: m.evaluations,
            gradient_norm: m.gradient_norm,
        })
    }
}

/// The coordinates the fit moves in: `ln r`, `ln(r/α)` (the mean purchase rate), `ln(a+b)` and
/// `ln(a/b)` (the log-odds of the mean dropout probability), rather than the four
/// log-parameters.
///
/// Why: a population whose customers buy at much the same rate, or drop out with much the same
/// probability (a young program, where nobody has had time to leave), has its maximum at the
/// edge of the parameter space, where the rate's or the dropout's spread vanishes: `r` and `α`
/// grow without bound at a fixed `r/α`, `a` and `b` at a fixed `a/(a+b)`. In log-parameters
/// that edge is a narrow diagonal ridge, along which L-BFGS crawls for hundreds of evaluations
/// and often stops on a line search that finds no descent, the fit failing. In these
/// coordinates the ridge is an axis: the means converge as in any fit, and the concentrations
/// move out along a flat direction until the gradient is below the tolerance.
struct MeanAndConcentration<'a>(&'a BgNbdData);

impl MeanAndConcentration<'_> {
    /// The coordinates of `params`.
    fn of(params: &BgNbdParams) -> Vec<f64> {
        vec![
            params.r.ln(),
            (params.r / params.alpha).ln(),
            (params.a + params.b).ln(),
            params.a.ln() - params.b.ln(),
        ]
    }

    /// The log-parameters `(ln r, ln α, ln a, ln b)` at coordinates `u`:
    /// `a = (a+b) σ(u₃)` and `b = (a+b) σ(−u₃)`, with `ln σ(x) = −softplus(−x)`.
    fn log_params(u: &[f64]) -> Vec<f64> {
        let (softplus_minus, _) = softplus_and_sigmoid(-u[3]);
        let (softplus_plus, _) = softplus_and_sigmoid(u[3]);
        vec![
            u[0],
            u[0] - u[1],
            u[2] - softplus_minus,
            u[2] - softplus_plus,
        ]
    }
}

impl Objective for MeanAndConcentration<'_> {
    const DIM: usize = 4;

    /// The log-parameters' objective, its gradient taken through the change of coordinates:
    /// `ln α = u₀ − u₁`, so `∂/∂u₀ = g_r + g_α` and `∂/∂u₁ = −g_α`; `ln a` and `ln b` both move
    /// one for one with `u₂`, and with `u₃` by `b/(a+b)` and `−a/(a+b)`.
    fn mean_nll_and_grad(&self, u: &[f64], grad: &mut [f64]) -> f64 {
        let mut log_grad = [0.0; 4];
        let value = self
            .0
            .mean_nll_and_grad(&Self::log_params(u), &mut log_grad);
        let (_, a_share) = softplus_and_sigmoid(u[3]);
        let (_, b_share) = softplus_and_sigmoid(-u[3]);
        let [g_r, g_alpha, g_a, g_b] = log_grad;
        grad[0] = g_r + g_alpha;
        grad[1] = -g_alpha;
        grad[2] = g_a + g_b;
        grad[3] = g_a * b_share - g_b * a_share;
        value
    }
}

impl Objective for BgNbdData {
    const DIM: usize = 4;

    fn mean_nll_and_grad(&self, log_params: &[f64], grad: &mut [f64]) -> f64 {
        let (ll, g) = self.ll_and_log_grad(&BgNbdParams::from_log(log_params));
        // Sign and 1/N for the mean NLL.
        let s = -1.0 / self.total_weight;
        for (out, g) in grad.iter_mut().zip(g) {
            *out = s * g;
        }
        s * ll
    }
}

/// Fits the BG/NBD model to a population by maximum likelihood.
///
/// `frequency[i]`, `recency[i]`, `age[i]` are `x`, `t_x`, `T` of customer
/// (or record) `i`; `weights`, if given, counts customers per record. Times
/// may be in any unit (the fitted `α` is in that unit). Optimisation:
/// L-BFGS (More–Thuente line search, `argmin`) over `ln r, ln(r/α), ln(a+b),
/// ln(a/b)` (see `MeanAndConcentration` for why not `ln r, ln α, ln a, ln b`)
/// with analytic gradients, from [`FitOptions::initial`] or `r = a = b = 1`,
/// `α = max(T)/10`.
pub fn fit_bg_nbd(
    frequency: &[u32],
    recency: &[f64],
    age: &[f64],
    weights: Option<&[u64]>,
    opts: &FitOptions<BgNbdParams>,
) -> Result<Fit<BgNbdParams>, ModelError> {
    BgNbdData::new(frequency, recency, age, weights)?.fit(opts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toy() -> BgNbdData {
        let x = [0, 1, 2, 5, 0, 3, 1, 12];
        let tx = [0.0, 3.5, 10.0, 20.0, 0.0, 7.25, 30.0, 38.0];
        let t = [5.0, 12.0, 30.0, 21.0, 39.0, 39.0, 31.0, 39.0];
        let w = [3, 1, 2, 1, 4, 1, 2, 1];
        BgNbdData::new(&x, &tx, &t, Some(&w)).unwrap()
    }

    /// Straightforward per-customer log-likelihood with lnΓ, as in lifetimes.
    fn naive_ll(p: &BgNbdParams, x: u32, tx: f64, t: f64) -> f64 {
        use crate::special::ln_gamma as lg;
        let xf = f64::from(x);
        let (r, al, a, b) = (p.r, p.alpha, p.a, p.b);
        let a1 = lg(r + xf) - lg(r) + r * al.ln();
        let a2 = lg(a + b) + lg(b + xf) - lg(b) - lg(a + b + xf);
        let a3 = -(r + xf) * (al + t).ln();
        let a4 = a.ln() - (b + xf.max(1.0) - 1.0).ln() - (r + xf) * (al + tx).ln();
        let m = a3.max(a4);
        let delta = if x > 0 { 1.0 } else { 0.0 };
        a1 + a2 + m + ((a3 - m).exp() + delta * (a4 - m).exp()).ln()
    }

    /// Where both apply (a moderate `a`, the series growing to `e^{(a−1) z}` of 5 to 30), the
    /// quadrature over the dropout posterior and the closed form's series agree.
    #[test]
    fn quadrature_agrees_with_the_series() {
        let p = BgNbdParams {
            r: 0.8,
            alpha: 40.0,
            a: 150.0,
            b: 3_000.0,
        };
        for x in [0, 1, 5, 20] {
            for growth in [5.0, 15.0, 29.0] {
                let age = 200.0;
                // (a−1) z = growth with z = t/(α+T+t).
                let z = growth / (p.a - 1.0);
                let horizon = z * (p.alpha + age) / (1.0 - z);
                let series = p.purchases_if_alive_raw(horizon, x, age);
                let quadrature = p.purchases_if_alive_by_quadrature(horizon, x, age);
                assert!(
                    (quadrature / series - 1.0).abs() < 1e-12,
                    "x {x}, growth {growth}: series {series}, quadrature {quadrature}"
                );
            }
        }
        // Shapes down to 2, horizons from days to years.
        for (a, b) in [(2.0, 2.0), (3.0, 10.0), (20.0, 3.0)] {
            let p = BgNbdParams {
                r: 0.8,
                alpha: 40.0,
                a,
                b,
            };
            for x in [0, 1, 5, 20] {
                for horizon in [10.0, 90.0, 365.0, 3_000.0] {
                    let series = p.purchases_if_alive_raw(horizon, x, 200.0);
                    let quadrature = p.purchases_if_alive_by_quadrature(horizon, x, 200.0);
                    assert!(
                        (quadrature / series - 1.0).abs() < 1e-10,
                        "a {a}, b {b}, x {x}, horizon {horizon}: series {series}, quadrature {quadrature}"
                    );
                }
            }
        }
    }

    /// Rates that barely differ (`r` far above `a+b`) turn the series' terms into alternating
    /// ones that cancel: a customer who buys about daily and drops out after nine purchases in
    /// ten makes, over a year, the `1/p` purchases of their dropout's posterior mean of `1/p`.
    #[test]
    fn rates_without_spread_still_predict_purchases() {
        let p = BgNbdParams {
            r: 1e6,
            alpha: 1e6,
            a: 50.0,
            b: 5.0,
        };
        for x in [0, 1, 5, 20] {
            let got = p.expected_purchases_if_alive(365.0, x, 200.0);
            // E[1/p] under Beta(a, b+x), the whole bracket: e^{−λpt} is e^{−300} or less.
            let mean_inverse = (p.a + p.b + f64::from(x) - 1.0) / (p.a - 1.0);
            assert!((got / mean_inverse - 1.0).abs() < 1e-10, "x {x}: {got}");
        }
    }

    /// A population whose customers all drop out alike is fitted with `a` and `b` in the
    /// hundreds of billions: the series of the closed form cannot be summed there, and the
    /// expected purchases are those of a dropout probability fixed at `a/(a+b+x)`,
    /// `(1 − (1 + p t/(α+T))^{−(r+x)}) / p`.
    #[test]
    fn a_dropout_without_spread_still_predicts_purchases() {
        let p = BgNbdParams {
            r: 86.14,
            alpha: 2_798.3,
            a: 2.2e11,
            b: 1.8e13,
        };
        for (x, t_x, age) in [(0, 0.0, 30.0), (19, 357.0, 384.0), (3, 20.0, 400.0)] {
            for horizon in [30.0, 90.0, 365.0] {
                let xf = f64::from(x);
                let dropout = p.a / (p.a + p.b + xf);
                let fixed = -(-(p.r + xf) * (dropout * horizon / (p.alpha + age)).ln_1p()).exp_m1()
                    / dropout;
                let got = p.expected_purchases_if_alive(horizon, x, age);
                assert!(
                    (got / fixed - 1.0).abs() < 1e-9,
                    "x {x}, horizon {horizon}: {got} against {fixed}"
                );
                let expected = p.expected_purchases(horizon, x, t_x, age);
                assert!(expected.is_finite() && expected > 0.0, "{expected}");
            }
        }
    }

    #[test]
    fn likelihood_matches_naive_formula() {
        let p = BgNbdParams {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let x = [0, 1, 2, 5, 0, 3, 1, 12];
        let tx = [0.0, 3.5, 10.0, 20.0, 0.0, 7.25, 30.0, 38.0];
        let t = [5.0, 12.0, 30.0, 21.0, 39.0, 39.0, 31.0, 39.0];
        let w = [3.0, 1.0, 2.0, 1.0, 4.0, 1.0, 2.0, 1.0];
        let want: f64 = (0..8).map(|i| w[i] * naive_ll(&p, x[i], tx[i], t[i])).sum();
        let got = toy().log_likelihood(&p);
        assert!((got - want).abs() < 1e-11 * want.abs(), "{got} vs {want}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = toy();
        for p in [
            BgNbdParams {
                r: 0.243,
                alpha: 4.414,
                a: 0.793,
                b: 2.426,
            },
            BgNbdParams {
                r: 2.0,
                alpha: 0.5,
                a: 3.0,
                b: 0.2,
            },
        ] {
            let (_, g) = data.log_likelihood_and_gradient(&p);
            let v = [p.r, p.alpha, p.a, p.b];
            for k in 0..4 {
                // Central difference with a relative step; truncation error
                // O(h²) ≈ 1e-12 relative, rounding ≈ 1e-16/h ≈ 1e-10.
                let h = 1e-6 * v[k];
                let mut up = v;
                let mut dn = v;
                up[k] += h;
                dn[k] -= h;
                let mk = |q: [f64; 4]| BgNbdParams {
                    r: q[0],
                    alpha: q[1],
                    a: q[2],
                    b: q[3],
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
    fn p_alive_limits() {
        let p = BgNbdParams {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        assert_eq!(p.probability_alive(0, 0.0, 39.0), 1.0);
        // Bought recently and often: nearly surely alive; long gap: low.
        assert!(p.probability_alive(20, 38.9, 39.0) > 0.9);
        assert!(p.probability_alive(20, 5.0, 39.0) < 1e-10);
        // Extremely large x must not overflow into NaN.
        let v = p.probability_alive(100_000, 1.0, 39.0);
        assert!((0.0..1e-300).contains(&v));
    }

    #[test]
    fn expected_purchases_near_a_equal_one_is_continuous() {
        let base = BgNbdParams {
            r: 0.5,
            alpha: 5.0,
            a: 1.0,
            b: 2.0,
        };
        let f = |a: f64| BgNbdParams { a, ..base }.expected_purchases(39.0, 3, 20.0, 30.0);
        let (lo, mid, hi) = (f(1.0 - 2e-5), f(1.0), f(1.0 + 2e-5));
        assert!(mid.is_finite());
        assert!((mid - 0.5 * (lo + hi)).abs() < 1e-8 * mid);
    }
}
