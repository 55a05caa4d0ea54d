//! Deterministic simulation of customers from known BG/NBD and Gamma-Gamma
//! parameters, for tests, examples and benchmarks (parameter recovery,
//! timing on realistic data). The generator is SplitMix64 — small, fast,
//! seedable and identical on every platform; it is not meant for anything
//! cryptographic or for high-stakes Monte Carlo.

use crate::bgnbd::BgNbdParams;
use crate::gamma_gamma::GammaGammaParams;

/// SplitMix64 pseudo-random generator with the samplers the simulation needs.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on the open interval (0, 1) (never 0, so `ln` is safe).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller; one of the pair is discarded for simplicity).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Exponential with rate 1.
    pub fn exponential(&mut self) -> f64 {
        -self.uniform().ln()
    }

    /// Gamma with the given shape and scale 1 (Marsaglia & Tsang 2000; shapes
    /// below 1 via `Gamma(k) = Gamma(k+1) · U^{1/k}`).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let g = self.gamma(shape + 1.0);
            return g * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = 1.0 + c * z;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform();
            if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(a, b) as `X/(X+Y)` with independent gammas.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }
}

/// A simulated population in the column layout the fitting functions take.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatedPopulation {
    /// Repeat purchases `x`.
    pub frequency: Vec<u32>,
    /// Time of last purchase since the first, `t_x` (0 when `x = 0`).
    pub recency: Vec<f64>,
    /// Time since the first purchase, `T`.
    pub age: Vec<f64>,
    /// Mean value of the repeat purchases (0 when `x = 0`).
    pub monetary: Vec<f64>,
}

/// Simulates `n` customers whose first purchases fall uniformly in a window
/// of length `window` ending now (so `T` is uniform on `(0, window]`).
///
/// Per customer: `λ ~ Gamma(r, α)`, `p ~ Beta(a, b)`; purchases after the
/// first arrive as a Poisson process with rate `λ` and after each repeat
/// purchase the customer drops out with probability `p` (the BG/NBD story).
/// Repeat buyers get a spend rate `ν ~ Gamma(q, γ)` and `x` purchase values
/// `~ Gamma(p, ν)`, whose mean is drawn directly as `Gamma(px, ν)/x`.
///
/// With `whole_units`, times are reported the way a summary built from
/// purchase *dates* reports them: the process runs in continuous time, and
/// `T` and `t_x` are differences of whole-unit dates (`T = window −
/// floor(first)`, `t_x = floor(last) − floor(first)`), so `T` is an integer in
/// `1..=window`. This is what production data look like and is what makes
/// [`crate::RfmSummary::compress`] effective; it misstates times by less than
/// one unit, so fits recover the parameters closely but not exactly.
pub fn simulate_population(
    n: usize,
    bg: &BgNbdParams,
    gg: &GammaGammaParams,
    window: f64,
    whole_units: bool,
    seed: u64,
) -> SimulatedPopulation {
    let mut rng = SplitMix64::new(seed);
    let mut out = SimulatedPopulation {
        frequency: Vec::with_capacity(n),
        recency: Vec::with_capacity(n),
        age: Vec::with_capacity(n),
        monetary: Vec::with_capacity(n),
    };
    for _ in 0..n {
        // First purchase at `start`, observed until `window`.
        let start = rng.uniform() * window;
        let observed = window - start;
        let lambda = rng.gamma(bg.r) / bg.alpha;
        let p_drop = rng.beta(bg.a, bg.b);
        let (mut t, mut x, mut t_x) = (0.0, 0u32, 0.0);
        loop {
            t += rng.exponential() / lambda;
            if t > observed {
                break;
            }
            x += 1;
            t_x = t;
            if rng.uniform() < p_drop {
                break;
            }
        }
        let monetary = if x > 0 {
            let nu = rng.gamma(gg.q) / gg.gamma;
            rng.gamma(gg.p * f64::from(x)) / nu / f64::from(x)
        } else {
            0.0
        };
        let (recency, age) = if whole_units {
            let first_day = start.floor();
            let last_day = if x > 0 {
                (start + t_x).floor()
            } else {
                first_day
            };
            (last_day - first_day, window.floor() - first_day)
        } else {
            (t_x, observed)
        };
        out.frequency.push(x);
        out.recency.push(recency);
        out.age.push(age);
        out.monetary.push(monetary);
    }
    out
}
