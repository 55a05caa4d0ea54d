//! The statistics of the effect report: the two-proportion z-test, Wald, Katz (log rate ratio)
//! and Welch intervals, and the distributions they need (normal via `erfc`, Student's t via the
//! regularized incomplete beta function). Pure functions; the tests check them against
//! hand-computed examples and against statsmodels (the reference values and how they were
//! obtained are written beside each test).

/// The 97.5th percentile of the standard normal: a two-sided 95 % interval is ± this many
/// standard errors.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

impl Interval {
    fn around(centre: f64, half_width: f64) -> Self {
        Self {
            lower: centre - half_width,
            upper: centre + half_width,
        }
    }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz's method).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front =
        libm::lgamma(a + b) - libm::lgamma(a) - libm::lgamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry
    // I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// P(T > t) for Student's t with `df` degrees of freedom (t ≥ 0).
pub fn t_upper_tail(t: f64, df: f64) -> f64 {
    0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom (bisection on the tail).
pub fn t_975(df: f64) -> f64 {
    if !df.is_finite() || df > 1e7 {
        return Z_975;
    }
    let (mut low, mut high) = (0.0_f64, 1_000.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if t_upper_tail(mid, df) > 0.025 {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

/// Conversion in two arms: treatment first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportions {
    /// Treatment converters and members.
    pub treatment: (u64, u64),
    /// Control converters and members.
    pub control: (u64, u64),
}

/// The uplift of a conversion rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConversionUplift {
    /// Treatment rate minus control rate.
    pub absolute: f64,
    /// Its 95 % Wald interval (unpooled standard error).
    pub absolute_ci: Interval,
    /// `absolute` / control rate; `None` when the control rate is 0.
    pub relative: Option<f64>,
    /// Its 95 % interval (see [`relative_uplift_ci`]); `None` when either arm has no converter.
    pub relative_ci: Option<Interval>,
    /// Two-sided p-value of the two-proportion z-test (pooled standard error).
    pub p_value: f64,
}

/// Compares two conversion rates; `None` when an arm is empty.
pub fn conversion_uplift(arms: Proportions) -> Option<ConversionUplift> {
    let (x1, n1) = arms.treatment;
    let (x2, n2) = arms.control;
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let (p1, p2) = (x1 / n1, x2 / n2);
    let absolute = p1 - p2;
    let unpooled = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    let pooled_rate = (x1 + x2) / (n1 + n2);
    let pooled = (pooled_rate * (1.0 - pooled_rate) * (1.0 / n1 + 1.0 / n2)).sqrt();
    // Both arms all converted or none did: no variance, and no evidence of a difference.
    let p_value = if pooled > 0.0 {
        2.0 * normal_upper_tail((absolute / pooled).abs())
    } else {
        1.0
    };
    Some(ConversionUplift {
        absolute,
        absolute_ci: Interval::around(absolute, Z_975 * unpooled),
        relative: (p2 > 0.0).then(|| absolute / p2),
        relative_ci: relative_uplift_ci(arms),
        p_value: p_value.min(1.0),
    })
}

/// The 95 % interval of the relative uplift p_t / p_c − 1, by the delta method on the log of the
/// rate ratio (the Katz interval): log(p_t / p_c) ± z · sqrt(1/x_t − 1/n_t + 1/x_c − 1/n_c),
/// mapped back with exp, less 1. On the log scale the ratio is near normal already at moderate
/// counts; the interval is asymmetric like the ratio, never below −1 (−100 %) and always finite.
/// Not Fieller's: unbounded unless the control rate is itself clearly above 0. Not the delta
/// method on the ratio itself: symmetric, and it can fall below −1. `None` when either arm has no
/// converter (the logarithm is undefined) or is empty.
pub fn relative_uplift_ci(arms: Proportions) -> Option<Interval> {
    let (x1, n1) = arms.treatment;
    let (x2, n2) = arms.control;
    if x1 == 0 || x2 == 0 || n1 == 0 || n2 == 0 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let log_ratio = (x1 / n1).ln() - (x2 / n2).ln();
    let standard_error = (1.0 / x1 - 1.0 / n1 + 1.0 / x2 - 1.0 / n2).max(0.0).sqrt();
    Some(Interval {
        lower: (log_ratio - Z_975 * standard_error).exp_m1(),
        upper: (log_ratio + Z_975 * standard_error).exp_m1(),
    })
}

/// Size, mean and M2 (the sum of squared deviations from the mean) of a sample: Welford's form.
/// The variance is M2 / (n − 1), with no subtraction of two large, nearly equal numbers — the
/// textbook Σx² − n·x̄² loses every significant digit when the values are large and alike (for
/// 1e9 + {4, 7, 13, 16} it gives −170.7 in f64 instead of 30).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Size.
    pub n: u64,
    /// Mean; 0 for an empty sample.
    pub mean: f64,
    /// Σ (x − mean)².
    pub m2: f64,
}

impl Moments {
    /// The moments of `values` in one pass (Welford's update).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut moments = Self::default();
        for value in values {
            moments.push(value);
        }
        moments
    }

    /// Adds one value (Welford's update).
    pub fn push(&mut self, value: f64) {
        self.n += 1;
        let delta = value - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// The mean; `None` for an empty sample.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// The sample variance; `None` with fewer than 2 values.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n as f64 - 1.0)).max(0.0))
    }

    /// The 95 % t-interval of the mean; `None` with fewer than 2 values.
    pub fn mean_ci(&self) -> Option<Interval> {
        let (mean, variance) = (self.mean()?, self.variance()?);
        let n = self.n as f64;
        Some(Interval::around(
            mean,
            t_975(n - 1.0) * (variance / n).sqrt(),
        ))
    }
}

/// The difference of two means with its 95 % Welch interval (Welch–Satterthwaite degrees of
/// freedom); `None` when an arm has fewer than 2 values.
pub fn welch_difference(treatment: Moments, control: Moments) -> Option<(f64, Interval)> {
    let difference = treatment.mean()? - control.mean()?;
    let a = treatment.variance()? / treatment.n as f64;
    let b = control.variance()? / control.n as f64;
    let standard_error = (a + b).sqrt();
    if standard_error == 0.0 {
        return Some((difference, Interval::around(difference, 0.0)));
    }
    let df =
        (a + b).powi(2) / (a * a / (treatment.n as f64 - 1.0) + b * b / (control.n as f64 - 1.0));
    Some((
        difference,
        Interval::around(difference, t_975(df) * standard_error),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn distributions_match_their_tables() {
        close(normal_upper_tail(1.959_963_985), 0.025, 1e-9);
        close(normal_upper_tail(0.0), 0.5, 1e-12);
        // t tables: t(0.975; 1) = 12.706, t(0.975; 10) = 2.228, t(0.975; 30) = 2.042.
        close(t_975(1.0), 12.706_2, 1e-3);
        close(t_975(10.0), 2.228_1, 1e-3);
        close(t_975(30.0), 2.042_3, 1e-3);
        close(t_975(1e9), Z_975, 1e-12);
    }

    #[test]
    fn conversion_uplift_by_hand() {
        // Treatment 200 of 1,000 converted (p1 = 0.20), control 150 of 1,000 (p2 = 0.15).
        // absolute = 0.05; relative = 0.05 / 0.15 = 0.3333.
        // Pooled p = 350 / 2,000 = 0.175; SE = sqrt(0.175 × 0.825 × (2 / 1,000))
        //   = sqrt(0.000288750) = 0.016992645; z = 0.05 / 0.016992645 = 2.942449;
        //   p = 2 × P(Z > 2.942449) = 0.003257.
        // Unpooled SE = sqrt(0.2 × 0.8 / 1,000 + 0.15 × 0.85 / 1,000) = sqrt(0.0002875)
        //   = 0.016955825; 95 % CI = 0.05 ± 1.959964 × 0.016955825 = 0.05 ± 0.033233
        //   = [0.016767, 0.083233].
        let uplift = conversion_uplift(Proportions {
            treatment: (200, 1_000),
            control: (150, 1_000),
        })
        .expect("both arms");
        close(uplift.absolute, 0.05, 1e-12);
        close(uplift.relative.expect("control converts"), 1.0 / 3.0, 1e-9);
        close(uplift.p_value, 0.003_257, 2e-6);
        close(uplift.absolute_ci.lower, 0.016_767, 1e-6);
        close(uplift.absolute_ci.upper, 0.083_233, 1e-6);
        // Relative uplift 1/3 with its Katz interval (statsmodels, below): [0.099637, 0.616695].
        let relative = uplift.relative_ci.expect("both arms convert");
        close(relative.lower, 0.099_636_824_489_044, 1e-12);
        close(relative.upper, 0.616_695_383_590_703, 1e-12);
    }

    #[test]
    fn relative_uplift_interval_matches_statsmodels() {
        // Reference: statsmodels 0.15.0, the Katz log interval of the rate ratio, minus 1:
        //   from statsmodels.stats.proportion import confint_proportions_2indep
        //   lo, hi = confint_proportions_2indep(x1, n1, x2, n2, method="log", compare="ratio")
        //   (lo - 1, hi - 1)
        // (services/campaign/tests/reference/report_statistics.py prints every value used here.)
        let cases = [
            // x_t, n_t, x_c, n_c, lower, upper
            (
                200,
                1_000,
                150,
                1_000,
                0.099_636_824_489_044,
                0.616_695_383_590_703,
            ),
            (36, 120, 9, 60, 0.032_217_858_827_291, 2.875_150_934_265_393),
            (3, 50, 7, 50, -0.882_550_936_889_527, 0.563_856_403_137_006),
            (1, 40, 1, 40, -0.935_231_814_178_316, 14.439_679_023_172_562),
        ];
        for (x1, n1, x2, n2, lower, upper) in cases {
            let ci = relative_uplift_ci(Proportions {
                treatment: (x1, n1),
                control: (x2, n2),
            })
            .expect("both arms convert");
            close(ci.lower, lower, 1e-9 * lower.abs().max(1.0));
            close(ci.upper, upper, 1e-9 * upper.abs().max(1.0));
            assert!(ci.lower > -1.0, "never below -100 %");
        }
        // Fieller's interval for 1/40 vs 1/40 is unbounded, and the delta method on the ratio
        // itself gives [-2.737, 2.737] for it and [-1.126, -0.017] for 3/50 vs 7/50 (below
        // -100 %): the reasons for the log scale.
        for (treatment, control) in [((0, 50), (7, 50)), ((5, 50), (0, 50)), ((0, 50), (0, 50))] {
            assert_eq!(relative_uplift_ci(Proportions { treatment, control }), None);
        }
    }

    #[test]
    fn no_difference_and_degenerate_arms() {
        let same = conversion_uplift(Proportions {
            treatment: (50, 500),
            control: (10, 100),
        })
        .expect("both arms");
        close(same.absolute, 0.0, 1e-12);
        close(same.p_value, 1.0, 1e-12);
        let nobody = conversion_uplift(Proportions {
            treatment: (0, 500),
            control: (0, 100),
        })
        .expect("both arms");
        assert_eq!(
            (nobody.p_value, nobody.relative, nobody.relative_ci),
            (1.0, None, None)
        );
        assert!(
            conversion_uplift(Proportions {
                treatment: (1, 10),
                control: (0, 0)
            })
            .is_none()
        );
    }

    #[test]
    fn welch_interval_by_hand() {
        // Treatment revenue per member: 10, 20, 30, 40 → mean 25, variance (225+25+25+225)/3
        //   = 166.667, a = 166.667 / 4 = 41.667.
        // Control: 5, 10, 15 → mean 10, variance (25+0+25)/2 = 25, b = 25 / 3 = 8.333.
        // difference = 15; SE = sqrt(50) = 7.0711.
        // df = 50² / (41.667² / 3 + 8.333² / 2) = 2,500 / (578.70 + 34.72) = 4.0755.
        // t(0.975; 4.0755) = 2.7566 (between 2.776 at 4 and 2.571 at 5);
        // CI = 15 ± 2.7566 × 7.0711 = 15 ± 19.492 = [-4.492, 34.492].
        let moments = |values: &[f64]| Moments::of(values.iter().copied());
        let treatment = moments(&[10.0, 20.0, 30.0, 40.0]);
        let control = moments(&[5.0, 10.0, 15.0]);
        close(treatment.variance().expect("n ≥ 2"), 166.666_667, 1e-5);
        let (difference, ci) = welch_difference(treatment, control).expect("n ≥ 2");
        close(difference, 15.0, 1e-12);
        close(ci.lower, -4.49, 0.02);
        close(ci.upper, 34.49, 0.02);
        // One arm's t-interval: 25 ± t(0.975; 3) × sqrt(166.667 / 4) = 25 ± 3.1824 × 6.4550
        //   = [4.457, 45.543].
        let single = treatment.mean_ci().expect("n ≥ 2");
        close(single.lower, 4.457, 2e-3);
        close(single.upper, 45.543, 2e-3);
        assert!(moments(&[1.0]).mean_ci().is_none());
    }

    #[test]
    fn large_similar_values_keep_their_variance() {
        // Exact (fractions): 1e9 + {4, 7, 13, 16} has mean 1e9 + 10, M2 = 36 + 9 + 9 + 36 = 90,
        // variance 30; numpy.var(ddof=1) agrees; Σx² − n·x̄² in f64 gives −170.67.
        let big = Moments::of([4.0, 7.0, 13.0, 16.0].map(|v| 1e9 + v));
        assert_eq!((big.n, big.mean, big.m2), (4, 1e9 + 10.0, 90.0));
        assert_eq!(big.variance(), Some(30.0));
        // The Welch example shifted by 1e9 gives the same interval; statsmodels 0.15.0:
        //   CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(usevar="unequal")
        //   = (-4.489877255415642, 34.48987725541564) for t = 1e9 + {10, 20, 30, 40},
        //   c = 1e9 + {5, 10, 15} (and for the unshifted values);
        //   DescrStatsW(t).tconfint_mean() = (1000000004.4573975, 1000000045.5426025).
        // The sum-of-squares variances of these were 170.67 and −256 instead of 166.67 and 25.
        let treatment = Moments::of([10.0, 20.0, 30.0, 40.0].map(|v| 1e9 + v));
        let control = Moments::of([5.0, 10.0, 15.0].map(|v| 1e9 + v));
        close(
            treatment.variance().expect("n ≥ 2"),
            166.666_666_666_667,
            1e-9,
        );
        close(control.variance().expect("n ≥ 2"), 25.0, 1e-9);
        let (difference, ci) = welch_difference(treatment, control).expect("n ≥ 2");
        close(difference, 15.0, 1e-6);
        close(ci.lower, -4.489_877_255_415_642, 1e-6);
        close(ci.upper, 34.489_877_255_416, 1e-6);
        let single = treatment.mean_ci().expect("n ≥ 2");
        close(single.lower, 1_000_000_004.457_398, 1e-5);
        close(single.upper, 1_000_000_045.542_602, 1e-5);
    }
}
