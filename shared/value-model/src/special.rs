//! Special functions needed by the models, written out here so the crate has
//! no numerical dependency and so that their accuracy is documented next to
//! the code that relies on it.
//!
//! * [`ln_gamma`] and [`digamma`] for positive real arguments (used per
//!   *distinct* frequency only, never per customer, so they need accuracy
//!   rather than speed);
//! * [`hyp2f1`], the Gauss hypergeometric series for `z` in `[0, 1)`;
//! * [`gauss_legendre`], composite Gauss–Legendre quadrature on an interval;
//! * small log-space helpers ([`softplus_and_sigmoid`]).

/// `ln Γ(x)` for `x > 0`.
///
/// Shifts the argument up to at least 10 with `Γ(x+1) = x Γ(x)` and then
/// uses the Stirling series to the `x^-13` term; the truncation error at
/// `x = 10` is below `1e-16`, so the absolute error is a few ulps of the
/// result. Returns NaN for `x <= 0` or NaN input (the models only ever ask
/// for positive arguments; NaN makes a misuse visible instead of silently
/// wrong).
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut x = x;
    // Accumulate the shift as one product (one ln instead of up to ten);
    // x < 10 and at most 10 factors below 20 cannot overflow.
    let mut prod = 1.0;
    while x < 10.0 {
        prod *= x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // Stirling: 1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7) + 1/(1188x^9)
    //           - 691/(360360x^11) + 1/(156x^13)
    let series = inv
        * (1.0 / 12.0
            + inv2
                * (-1.0 / 360.0
                    + inv2
                        * (1.0 / 1260.0
                            + inv2
                                * (-1.0 / 1680.0
                                    + inv2
                                        * (1.0 / 1188.0
                                            + inv2 * (-691.0 / 360_360.0 + inv2 / 156.0))))));
    const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
    (x - 0.5) * x.ln() - x + HALF_LN_2PI + series - prod.ln()
}

/// Digamma `ψ(x) = d/dx ln Γ(x)` for `x > 0`.
///
/// Same strategy as [`ln_gamma`]: recurrence `ψ(x) = ψ(x+1) − 1/x` up to
/// `x >= 10`, then the asymptotic series to the `x^-14` term (truncation
/// error below `1e-17` at `x = 10`).
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift += 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // ln x - 1/(2x) - 1/(12x^2) + 1/(120x^4) - 1/(252x^6) + 1/(240x^8)
    //   - 1/(132x^10) + 691/(32760x^12) - 1/(12x^14)
    let series = inv2
        * (-1.0 / 12.0
            + inv2
                * (1.0 / 120.0
                    + inv2
                        * (-1.0 / 252.0
                            + inv2
                                * (1.0 / 240.0
                                    + inv2
                                        * (-1.0 / 132.0
                                            + inv2 * (691.0 / 32_760.0 - inv2 / 12.0))))));
    x.ln() - 0.5 * inv + series - shift
}

/// Upper limit on the number of series terms in [`hyp2f1`].
///
/// With `z` in `[0, 1)` the terms eventually decay like `z^k`, so about
/// `37 / (1 − z)` terms reach double precision; the cap is therefore hit only
/// for `z > 1 − 3.7e-5`. In this crate `z = t / (α + T + t)`, which gets that
/// close to 1 only when the horizon `t` is ~30 000 times longer than
/// `α + T` — far outside any sensible use.
pub const HYP2F1_MAX_TERMS: usize = 1_000_000;

/// Gauss hypergeometric function `₂F₁(a, b; c; z)` by its power series, for
/// `0 <= z < 1`, `c > 0` and real `a`, `b` (a non-positive integer `a` or `b`
/// makes it a polynomial, which the loop handles by reaching a zero term).
///
/// Stopping rule — relative, with a rigorous tail bound. Term `n+1` is term
/// `n` times `ρ(n) = z (a+n)(b+n) / ((c+n)(n+1))`. Once `a+n > 0` and
/// `b+n > 0`, each factor `(a+j)/(c+j)` and `(b+j)/(j+1)` is monotone in `j`
/// and tends to 1, so for all `j >= n`,
/// `ρ(j) <= ρ̄ = z · max(1, (a+n)/(c+n)) · max(1, (b+n)/(n+1))`, and if
/// `ρ̄ < 1` the remainder after term `n` is at most `|t_n| ρ̄ / (1 − ρ̄)`.
/// The loop stops when that bound is below `1e-16 · |sum|`. Near `z = 1`
/// this needs about `37/(1−z)` terms (≈ 740 at `z = 0.95`, 3 700 at 0.99);
/// with `a, b > −1` all terms after the first have one sign, so there is no
/// cancellation and the relative error stays at a few `1e-15` even close to
/// `z = 1` (tests compare with mpmath up to `z = 0.999`: error < 1e-13).
/// Returns `None` if [`HYP2F1_MAX_TERMS`] terms were not enough or the input
/// is out of range.
///
/// Callers in this crate first apply Euler's transformation (see
/// [`crate::BgNbdParams::expected_purchases_if_alive`]) so that the series
/// parameters stay small even for customers with thousands of purchases.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) || c <= 0.0 || !a.is_finite() || !b.is_finite() || !c.is_finite() {
        return None;
    }
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let mut n = 0.0f64; // index of the current term
    for _ in 0..HYP2F1_MAX_TERMS {
        term *= z * (a + n) * (b + n) / ((c + n) * (n + 1.0));
        sum += term;
        n += 1.0;
        if term == 0.0 {
            return Some(sum);
        }
        // Cheap pre-test first; the bound itself only near the end.
        if term.abs() <= 1e-16 * sum.abs() && a + n > 0.0 && b + n > 0.0 {
            let rho = z * ((a + n) / (c + n)).max(1.0) * ((b + n) / (n + 1.0)).max(1.0);
            if rho < 1.0 && term.abs() * rho <= 1e-16 * (1.0 - rho) * sum.abs() {
                return Some(sum);
            }
        }
    }
    None
}

/// Compensated (Neumaier) accumulator.
///
/// Why: the fits compare log-likelihoods of a million customers whose
/// differences near the optimum are ~1e-15 relative. Plain running sums
/// over hundreds of thousands of terms carry rounding noise of ~1e-13
/// relative, which hides real decreases from the line search (it then
/// stalls). The hot loops therefore sum short blocks plainly and add the
/// block sums into these accumulators, which keeps the total error at a few
/// ulps of the result for the cost of a handful of flops per block.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Accumulator {
    sum: f64,
    compensation: f64,
}

impl Accumulator {
    #[inline]
    pub(crate) fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.compensation += (self.sum - t) + v;
        } else {
            self.compensation += (v - t) + self.sum;
        }
        self.sum = t;
    }

    #[inline]
    pub(crate) fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// Block length for blocked summation in the likelihood loops (see
/// [`Accumulator`]): long enough to amortise the compensated additions,
/// short enough that the plain in-block error stays negligible.
pub(crate) const BLOCK: usize = 128;

/// Returns `(ln(1 + e^d), 1 / (1 + e^-d))` — the softplus and the logistic
/// sigmoid of `d` — from a single `exp` and a single `ln`.
///
/// This is the log-sum-exp of the BG/NBD likelihood written relative to the
/// larger term: `ln(e^u + e^v) = max(u, v) + ln(1 + e^{-|u − v|})`, which
/// never overflows. `ln(1 + e)` with `e` in `(0, 1]` is computed as `ln` of
/// the rounded sum rather than `ln_1p`: the absolute error is below `1.2e-16`,
/// which is all a sum of log-likelihood terms needs, and `ln` is markedly
/// cheaper than `ln_1p` in the hot loop.
#[inline(always)]
pub fn softplus_and_sigmoid(d: f64) -> (f64, f64) {
    let e = (-d.abs()).exp();
    let one_plus = 1.0 + e;
    let sp = d.max(0.0) + one_plus.ln();
    let sig = if d >= 0.0 { 1.0 } else { e } / one_plus;
    (sp, sig)
}

/// Nodes of one Gauss–Legendre panel: exact for polynomials of degree 31.
const LEGENDRE_NODES: usize = 16;

/// The nodes and weights of [`LEGENDRE_NODES`]-point Gauss–Legendre quadrature on `[−1, 1]`,
/// computed once: each node by Newton's method on the Legendre polynomial from the usual first
/// guess (Numerical Recipes' `gauleg`), to the last bit.
fn legendre_rule() -> &'static [(f64, f64); LEGENDRE_NODES] {
    static RULE: std::sync::OnceLock<[(f64, f64); LEGENDRE_NODES]> = std::sync::OnceLock::new();
    RULE.get_or_init(|| {
        let n = LEGENDRE_NODES as f64;
        std::array::from_fn(|i| {
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n + 0.5)).cos();
            let mut derivative = 1.0;
            for _ in 0..100 {
                // P_n(x) by its three-term recurrence, and P_n'(x) from P_n and P_{n−1}.
                let (mut p, mut previous) = (1.0, 0.0);
                for k in 1..=LEGENDRE_NODES {
                    let k = k as f64;
                    (p, previous) = (((2.0 * k - 1.0) * x * p - (k - 1.0) * previous) / k, p);
                }
                derivative = n * (x * p - previous) / (x * x - 1.0);
                let step = p / derivative;
                x -= step;
                if step.abs() <= 1e-16 {
                    break;
                }
            }
            (x, 2.0 / ((1.0 - x * x) * derivative * derivative))
        })
    })
}

/// The points and weights of composite Gauss–Legendre quadrature on `[lo, hi]`: `panels`
/// equal panels of [`LEGENDRE_NODES`] nodes each, all inside the interval (never at its ends).
/// `Σ w f(p)` approximates `∫ f`.
pub fn gauss_legendre(lo: f64, hi: f64, panels: usize) -> impl Iterator<Item = (f64, f64)> {
    let width = (hi - lo) / panels as f64;
    (0..panels).flat_map(move |panel| {
        let centre = lo + (panel as f64 + 0.5) * width;
        legendre_rule()
            .iter()
            .map(move |(node, weight)| (centre + 0.5 * width * node, 0.5 * width * weight))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_known_values() {
        // ln Γ(1/2) = ln √π, Γ(n) = (n−1)!, lnΓ(0.1) and lnΓ(123.45) from mpmath.
        let cases = [
            (0.5, 0.572_364_942_924_700_1),
            (1.0, 0.0),
            (2.0, 0.0),
            (5.0, 24f64.ln()),
            (0.1, 2.252_712_651_734_206),
            (123.45, 469.576_676_300_381_9),
            (3.7446, 1.480_434_330_980_727_2),
        ];
        for (x, want) in cases {
            let got = ln_gamma(x);
            assert!(
                (got - want).abs() <= 4e-15 * want.abs().max(1.0),
                "lnΓ({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn digamma_known_values() {
        let euler = 0.577_215_664_901_532_9;
        let cases = [
            (1.0, -euler),
            (0.5, -euler - 2.0 * std::f64::consts::LN_2),
            (0.1, -10.423_754_940_411_076),
            (123.45, 4.811_780_524_963_341),
            (7.0, -euler + 1.0 + 0.5 + 1.0 / 3.0 + 0.25 + 0.2 + 1.0 / 6.0),
        ];
        for (x, want) in cases {
            let got = digamma(x);
            assert!(
                (got - want).abs() <= 4e-15 * want.abs().max(1.0),
                "ψ({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn hyp2f1_elementary_cases() {
        // ₂F₁(1, 1; 2; z) = −ln(1−z)/z
        for z in [0.1, 0.5, 0.9, 0.99] {
            let want = -(1.0f64 - z).ln() / z;
            let got = hyp2f1(1.0, 1.0, 2.0, z).unwrap();
            assert!((got / want - 1.0).abs() < 1e-13, "z={z}: {got} vs {want}");
        }
        // ₂F₁(a, b; b; z) = (1−z)^−a
        let got = hyp2f1(0.7, 2.5, 2.5, 0.95).unwrap();
        let want = 0.05f64.powf(-0.7);
        assert!((got / want - 1.0).abs() < 1e-13);
        // polynomial case: ₂F₁(−2, b; c; z) = 1 − 2bz/c + b(b+1)z²/(c(c+1))
        let (b, c, z) = (1.5, 2.5, 0.7);
        let want = 1.0 - 2.0 * b * z / c + b * (b + 1.0) * z * z / (c * (c + 1.0));
        assert!((hyp2f1(-2.0, b, c, z).unwrap() - want).abs() < 1e-15);
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_none());
    }

    #[test]
    fn softplus_is_stable() {
        let (sp, sig) = softplus_and_sigmoid(800.0);
        assert_eq!(sp, 800.0);
        assert_eq!(sig, 1.0);
        let (sp, sig) = softplus_and_sigmoid(-800.0);
        assert_eq!(sp, 0.0);
        assert_eq!(sig, 0.0);
        let (sp, sig) = softplus_and_sigmoid(0.3);
        assert!((sp - (1.0 + 0.3f64.exp()).ln()).abs() < 1e-15);
        assert!((sig - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn gauss_legendre_integrates_polynomials_and_a_bell() {
        // Degree 31 on one panel: exact to rounding.
        let integral: f64 = gauss_legendre(0.0, 2.0, 1)
            .map(|(x, w)| w * x.powi(31))
            .sum();
        assert!(
            (integral / (2f64.powi(32) / 32.0) - 1.0).abs() < 1e-14,
            "{integral}"
        );
        let weights: f64 = gauss_legendre(-3.0, 5.0, 4).map(|(_, w)| w).sum();
        assert!((weights - 8.0).abs() < 1e-14, "{weights}");
        // A normal density over ±12 standard deviations, as the BG/NBD's dropout posterior is
        // integrated: 1 to 1e-14.
        let mass: f64 = gauss_legendre(-12.0, 12.0, 8)
            .map(|(x, w)| w * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt())
            .sum();
        assert!((mass - 1.0).abs() < 1e-14, "{mass}");
    }
}
