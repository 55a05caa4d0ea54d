//! Customer lifetime value: the BG/NBD purchase forecast combined with the
//! Gamma-Gamma spend forecast and discounted month by month, as lifetimes'
//! `GammaGammaFitter.customer_lifetime_value` does. Also a batch scorer that
//! shares work between customers with the same frequency and age.

use crate::bgnbd::BgNbdParams;
use crate::error::ModelError;
use crate::gamma_gamma::GammaGammaParams;
use crate::summary::validate_rfm;

/// The two fitted models together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvModel {
    /// Purchase process.
    pub purchases: BgNbdParams,
    /// Spend per purchase.
    pub spend: GammaGammaParams,
}

/// Discount factor for the `i`-th month, `(1 + d)^{-i}`.
fn discount(monthly_discount_rate: f64, i: u32) -> f64 {
    (1.0 + monthly_discount_rate).powi(-(i as i32))
}

impl ClvModel {
    /// Discounted expected value of a customer's purchases over the next
    /// `horizon_months` months, matching lifetimes' `customer_lifetime_value`:
    ///
    /// ```text
    /// Σ_{i=1..H} (E[X(i months)] − E[X((i−1) months)]) · E[spend | x, m] / (1 + d)^i
    /// ```
    ///
    /// with `E[X(t)]` = [`BgNbdParams::expected_purchases`] and `E[spend]` =
    /// [`GammaGammaParams::expected_spend_per_purchase`]. A month is 30 days,
    /// i.e. `30 / time_unit_days_per_unit` model time units (1 for days, 7 for
    /// weeks). lifetimes uses the same 30 days for `freq="D"` but 4.345 weeks
    /// for `freq="W"`; pass `time_unit_days_per_unit = 30.0 / 4.345` to
    /// reproduce its weekly figures exactly. `monthly_discount_rate` is `d`
    /// (lifetimes' default 0.01). `m` is ignored for `x = 0`.
    #[allow(clippy::too_many_arguments)] // mirrors lifetimes' argument list
    pub fn predicted_value(
        &self,
        horizon_months: u32,
        monthly_discount_rate: f64,
        time_unit_days_per_unit: f64,
        x: u32,
        t_x: f64,
        age: f64,
        m: f64,
    ) -> f64 {
        let month = 30.0 / time_unit_days_per_unit;
        // E[X(t)] = P(alive) · G(t): P(alive) and spend factor out of the sum.
        let mut prev = 0.0;
        let mut sum = 0.0;
        for i in 1..=horizon_months {
            let g = self
                .purchases
                .expected_purchases_if_alive(f64::from(i) * month, x, age);
            sum += (g - prev) * discount(monthly_discount_rate, i);
            prev = g;
        }
        self.purchases.probability_alive(x, t_x, age)
            * self.spend.expected_spend_per_purchase(x, m)
            * sum
    }
}

/// What to compute for every customer in [`ClvModel::score_all`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringPlan {
    /// Horizons (model time units) for which to report expected purchases.
    pub purchase_horizons: Vec<f64>,
    /// Months of predicted value (0 to skip).
    pub value_months: u32,
    /// Monthly discount rate for the predicted value.
    pub monthly_discount_rate: f64,
    /// Days per model time unit (1 for days, 7 for weeks).
    pub time_unit_days_per_unit: f64,
}

/// Per-customer results of [`ClvModel::score_all`], one entry per input
/// customer in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// P(alive) now.
    pub probability_alive: Vec<f64>,
    /// `expected_purchases[h][i]`: expected purchases of customer `i` over
    /// `purchase_horizons[h]`.
    pub expected_purchases: Vec<Vec<f64>>,
    /// Expected spend per future purchase.
    pub expected_spend: Vec<f64>,
    /// Discounted predicted value over `value_months` months.
    pub predicted_value: Vec<f64>,
}

impl ClvModel {
    /// Scores a whole population. Results equal the per-customer functions
    /// up to rounding (the value sum is telescoped); the speed comes from evaluating the hypergeometric part
    /// ([`BgNbdParams::expected_purchases_if_alive`]), which depends only on
    /// `(x, T)` and the horizon, once per distinct `(x, T)` — with ages in
    /// whole days a million customers have only tens of thousands of them.
    /// Single-threaded; split the slices to parallelise.
    pub fn score_all(
        &self,
        plan: &ScoringPlan,
        frequency: &[u32],
        recency: &[f64],
        age: &[f64],
        monetary: &[f64],
    ) -> Result<Scores, ModelError> {
        validate_rfm(frequency, recency, age, None)?;
        let n = frequency.len();
        if monetary.len() != n {
            return Err(ModelError::LengthMismatch {
                field: "monetary",
                expected: n,
                found: monetary.len(),
            });
        }
        let month = 30.0 / plan.time_unit_days_per_unit;
        let nh = plan.purchase_horizons.len();
        let nm = plan.value_months as usize;
        // Discount weights for the telescoped sum
        // Σ_i (G_i − G_{i−1}) δ_i = Σ_i G_i (δ_i − δ_{i+1}), δ_{H+1} = 0.
        let deltas: Vec<f64> = (1..=plan.value_months)
            .map(|i| discount(plan.monthly_discount_rate, i))
            .collect();
        let coef: Vec<f64> = (0..nm)
            .map(|i| deltas[i] - deltas.get(i + 1).copied().unwrap_or(0.0))
            .collect();

        // Order customers by (x, T) so equal pairs are adjacent.
        let mut order: Vec<(u32, u64, usize)> = (0..n)
            .map(|i| (frequency[i], (age[i] + 0.0).to_bits(), i))
            .collect();
        order.sort_unstable();

        let mut out = Scores {
            probability_alive: vec![0.0; n],
            expected_purchases: vec![vec![0.0; n]; nh],
            expected_spend: vec![0.0; n],
            predicted_value: vec![0.0; n],
        };
        let bg = &self.purchases;
        let mut g_h = vec![0.0; nh];
        let mut k = 0;
        while k < n {
            let (x, tbits, _) = order[k];
            let t = f64::from_bits(tbits);
            for (h, &hz) in plan.purchase_horizons.iter().enumerate() {
                g_h[h] = bg.expected_purchases_if_alive(hz, x, t);
            }
            let value_factor: f64 = (0..nm)
                .map(|i| coef[i] * bg.expected_purchases_if_alive((i + 1) as f64 * month, x, t))
                .sum();
            while k < n && order[k].0 == x && order[k].1 == tbits {
                let i = order[k].2;
                let pa = bg.probability_alive(x, recency[i], t);
                let spend = self.spend.expected_spend_per_purchase(x, monetary[i]);
                out.probability_alive[i] = pa;
                for (column, g) in out.expected_purchases.iter_mut().zip(&g_h) {
                    column[i] = pa * g;
                }
                out.expected_spend[i] = spend;
                out.predicted_value[i] = if nm == 0 {
                    0.0
                } else {
                    pa * spend * value_factor
                };
                k += 1;
            }
        }
        Ok(out)
    }
}
