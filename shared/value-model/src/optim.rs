//! Maximum-likelihood driver shared by both models: L-BFGS with a
//! More–Thuente line search from the `argmin` crate, run over the
//! *logarithms* of the parameters.
//!
//! Why log-parameters: every model parameter must be strictly positive, and
//! `θ = exp(φ)` turns that constrained problem into an unconstrained one
//! that a quasi-Newton method handles without bounds or penalty terms. It
//! also makes the problem roughly scale-free (a parameter of 0.2 and one of
//! 400 move by comparable amounts per step). The gradient with respect to
//! `φ` is `θ · ∂ℓ/∂θ`. A model may move in sums and differences of
//! log-parameters instead (BG/NBD does, to follow a ridge at the edge of its
//! parameter space: see its `MeanAndConcentration`); tolerances below then
//! apply to those coordinates, which are logarithms all the same.
//!
//! What is minimised is the *mean* negative log-likelihood per customer, so
//! the gradient tolerance means the same thing for 2 000 customers and for
//! 2 000 000.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use crate::error::ModelError;

/// A model likelihood as seen by the optimiser.
pub(crate) trait Objective {
    /// Number of parameters.
    const DIM: usize;

    /// Mean negative log-likelihood at the point `log_params` of the model's
    /// log coordinates (the log-parameters, unless the model says otherwise),
    /// writing its gradient with respect to them into `grad` (length
    /// [`Self::DIM`]).
    /// Implementations compute value and gradient in one pass over the data
    /// because the gradient shares nearly all of its work with the value.
    fn mean_nll_and_grad(&self, log_params: &[f64], grad: &mut [f64]) -> f64;
}

/// Knobs of a maximum-likelihood fit. The defaults reproduce the published
/// CDNOW estimates (see the crate's tests) and are what callers should use
/// unless they have a reason not to.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions<P> {
    /// Starting point; `None` uses the model's data-scaled default
    /// (documented on each model's `fit`).
    pub initial: Option<P>,
    /// Iteration cap for L-BFGS (each iteration costs one line search, usually
    /// one or two likelihood evaluations).
    pub max_iterations: u64,
    /// The fit stops as soon as an evaluated point has a gradient of the
    /// mean negative log-likelihood (with respect to the log-parameters, or
    /// the model's log coordinates) with Euclidean norm below this. The default `1e-8` puts the CDNOW
    /// estimates within ~1e-6 (relative) of the exact maximum, far beyond the
    /// published 3-4 digits; much smaller values run into the rounding floor
    /// of the likelihood (~1e-15 relative) and only cost evaluations.
    pub gradient_tolerance: f64,
    /// After the optimiser stops for any reason, the fit is accepted if the
    /// gradient norm is at most this (the optimiser may stop on a line search
    /// that cannot improve further at machine precision, which is a success
    /// if the gradient is already tiny). Above it, the fit fails with
    /// [`ModelError::DidNotConverge`].
    pub acceptable_gradient: f64,
    /// Number of correction pairs L-BFGS keeps (with 3-4 parameters, keeping
    /// as many pairs as parameters or more makes it behave like full BFGS).
    pub lbfgs_memory: usize,
}

impl<P> Default for FitOptions<P> {
    fn default() -> Self {
        FitOptions {
            initial: None,
            max_iterations: 500,
            gradient_tolerance: 1e-8,
            acceptable_gradient: 1e-6,
            lbfgs_memory: 8,
        }
    }
}

/// Result of a maximum-likelihood fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit<P> {
    /// The maximum-likelihood parameters.
    pub params: P,
    /// Total (weighted) log-likelihood at `params`, comparable with the
    /// values reported in the literature (e.g. −9582.4 for BG/NBD on CDNOW).
    pub log_likelihood: f64,
    /// Number of customers the fit used (sum of weights; for Gamma-Gamma only
    /// the repeat buyers).
    pub n_customers: u64,
    /// L-BFGS iterations performed.
    pub iterations: u64,
    /// Number of passes over the data (one pass gives value and gradient).
    pub evaluations: u64,
    /// Norm of the gradient of the mean negative log-likelihood with respect
    /// to the log-parameters (or the model's log coordinates) at `params`
    /// (how converged the fit is).
    pub gradient_norm: f64,
}

/// Outcome of [`minimise`] in the model's log coordinates.
pub(crate) struct Minimum {
    pub log_params: Vec<f64>,
    pub mean_nll: f64,
    pub iterations: u64,
    pub evaluations: u64,
    pub gradient_norm: f64,
}

/// Wraps an [`Objective`] for argmin.
///
/// * argmin asks for the cost and the gradient in separate calls, usually at
///   the same point (the line search asks for both at every trial step, and
///   L-BFGS asks again for the gradient at the accepted point). A one-entry
///   cache makes each distinct point cost a single pass over the data.
/// * It remembers the evaluated point with the smallest gradient norm, and
///   ends the run (by returning an error, which argmin turns into a solver
///   exit) as soon as a point meets the gradient tolerance. Why: near the
///   optimum the change in the mean log-likelihood between L-BFGS steps
///   (≈ |g|²/curvature) falls below the rounding noise of a sum over a
///   million customers (~1e-15 relative) long before the gradient — which is
///   accurate to ~1e-13 — is small. More–Thuente then cannot confirm a
///   decrease and keeps halving the step; argmin only tests the gradient
///   tolerance at accepted iterates, so without this check tens of
///   evaluations are wasted at a point that is already optimal.
struct Cached<'a, M: Objective> {
    model: &'a M,
    tolerance: f64,
    state: &'a RefCell<Tracker>,
}

/// Book-keeping shared between the argmin problem and [`minimise`] (kept
/// outside the problem because argmin does not hand the problem back after
/// a line-search error).
#[derive(Default)]
struct Tracker {
    /// (point, value, gradient) of the last evaluation.
    last: Option<(Vec<f64>, f64, Vec<f64>)>,
    /// (gradient norm, point, value) of the evaluation with the smallest
    /// gradient norm so far.
    best_grad: Option<(f64, Vec<f64>, f64)>,
    evaluations: u64,
}

const CONVERGED_MARKER: &str = "gradient tolerance met at a trial point";

impl<M: Objective> Cached<'_, M> {
    fn eval(&self, p: &[f64]) -> Result<(f64, Vec<f64>), argmin::core::Error> {
        let mut st = self.state.borrow_mut();
        if let Some((q, v, g)) = st.last.as_ref()
            && q.as_slice() == p
        {
            return Ok((*v, g.clone()));
        }
        let mut g = vec![0.0; M::DIM];
        let v = self.model.mean_nll_and_grad(p, &mut g);
        st.evaluations += 1;
        if !v.is_finite() || g.iter().any(|x| !x.is_finite()) {
            // An error (not +inf) makes argmin end the line search and L-BFGS
            // stop at its last good point; the caller then judges that point
            // by its gradient. More–Thuente's interpolation cannot cope with
            // infinite values.
            return Err(argmin::core::Error::msg(format!(
                "non-finite likelihood at log coordinates {p:?}"
            )));
        }
        let gn = norm(&g);
        if st.best_grad.as_ref().is_none_or(|b| gn < b.0) {
            st.best_grad = Some((gn, p.to_vec(), v));
        }
        st.last = Some((p.to_vec(), v, g.clone()));
        if gn <= self.tolerance {
            return Err(argmin::core::Error::msg(CONVERGED_MARKER));
        }
        Ok((v, g))
    }
}

impl<M: Objective> CostFunction for Cached<'_, M> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Self::Param) -> Result<f64, argmin::core::Error> {
        self.eval(p).map(|(v, _)| v)
    }
}

impl<M: Objective> Gradient for Cached<'_, M> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        self.eval(p).map(|(_, g)| g)
    }
}

fn norm(g: &[f64]) -> f64 {
    g.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Minimises the mean negative log-likelihood of `model` from `start` (in
/// its log coordinates). `to_params` maps those coordinates to natural-scale
/// parameters for error messages.
pub(crate) fn minimise<M: Objective, P>(
    model: &M,
    start: Vec<f64>,
    opts: &FitOptions<P>,
    to_params: impl Fn(&[f64]) -> Vec<f64>,
) -> Result<Minimum, ModelError> {
    let mut g0 = vec![0.0; M::DIM];
    let f0 = model.mean_nll_and_grad(&start, &mut g0);
    if !f0.is_finite() || g0.iter().any(|x| !x.is_finite()) {
        return Err(ModelError::NonFiniteLikelihood {
            params: to_params(&start),
        });
    }

    let gn0 = norm(&g0);
    if gn0 <= opts.gradient_tolerance {
        return Ok(Minimum {
            log_params: start,
            mean_nll: f0,
            iterations: 0,
            evaluations: 1,
            gradient_norm: gn0,
        });
    }
    // L-BFGS can stop on a line search that finds no descent although the gradient is not yet
    // small: its curvature pairs, built from noisy or ridge-shaped likelihoods (a small
    // population, spends that barely vary), point it the wrong way. A restart from the best
    // point forgets them and starts again with a steepest-descent step; it is repeated while it
    // makes progress.
    let (mut point, mut value, mut gradient) = (start, f0, g0);
    let (mut iterations, mut evaluations) = (0, 0);
    for _ in 0..=RESTARTS {
        let descent = descend(model, point, value, gradient, opts, &to_params)?;
        iterations += descent.iterations;
        evaluations += descent.evaluations;
        if descent.gradient_norm <= opts.acceptable_gradient {
            return Ok(Minimum {
                log_params: descent.best,
                mean_nll: descent.value,
                iterations,
                evaluations,
                gradient_norm: descent.gradient_norm,
            });
        }
        let progress = descent.value < value;
        if !progress || descent.gradient_norm.is_nan() {
            return Err(ModelError::DidNotConverge {
                iterations,
                gradient_norm: descent.gradient_norm,
                reason: descent.reason,
            });
        }
        (point, value) = (descent.best, descent.value);
        gradient = vec![0.0; M::DIM];
        model.mean_nll_and_grad(&point, &mut gradient);
        if iterations >= opts.max_iterations {
            return Err(ModelError::DidNotConverge {
                iterations,
                gradient_norm: descent.gradient_norm,
                reason: descent.reason,
            });
        }
    }
    Err(ModelError::DidNotConverge {
        iterations,
        gradient_norm: norm(&gradient),
        reason: format!("no convergence after {RESTARTS} restarts"),
    })
}

/// Restarts of L-BFGS from its best point after it stopped short (see [`minimise`]).
const RESTARTS: usize = 10;

/// Where one L-BFGS run ended.
struct Descent {
    best: Vec<f64>,
    value: f64,
    gradient_norm: f64,
    iterations: u64,
    evaluations: u64,
    reason: String,
}

/// One L-BFGS run from `start` (whose value and gradient are known).
fn descend<M: Objective, P>(
    model: &M,
    start: Vec<f64>,
    f0: f64,
    g0: Vec<f64>,
    opts: &FitOptions<P>,
    to_params: &impl Fn(&[f64]) -> Vec<f64>,
) -> Result<Descent, ModelError> {
    let tracker = RefCell::new(Tracker {
        last: Some((start.clone(), f0, g0)),
        best_grad: None,
        evaluations: 1,
    });
    let problem = Cached {
        model,
        tolerance: opts.gradient_tolerance,
        state: &tracker,
    };
    let optimiser_err = |e: argmin::core::Error| ModelError::Optimizer(e.to_string());
    // Width tolerance 1e-6 (argmin's default is 1e-10): a line search that
    // can no longer find a decrease above rounding noise gives up after
    // ~20 halvings instead of ~35.
    let line_search = MoreThuenteLineSearch::new()
        .with_width_tolerance(1e-6)
        .map_err(optimiser_err)?;
    let solver = LBFGS::new(line_search, opts.lbfgs_memory.max(1))
        .with_tolerance_grad(opts.gradient_tolerance)
        .map_err(optimiser_err)?;
    let run = Executor::new(problem, solver)
        .configure(|state| state.param(start).max_iters(opts.max_iterations))
        .timer(false)
        .run();

    // argmin's view: iterations, why it stopped, and its best (lowest-cost)
    // iterate. An `Err` from `run` is not necessarily a failure — our own
    // "tolerance met" signal can surface as one if it is raised outside a
    // line search — so the tracker's record decides below.
    let (iterations, reason, argmin_best) = match &run {
        Ok(result) => {
            let state = result.state();
            let reason = match state.get_termination_reason() {
                Some(TerminationReason::SolverExit(why)) => why.clone(),
                Some(other) => other.text().to_string(),
                None => "unknown".to_string(),
            };
            let best = state
                .get_best_param()
                .cloned()
                .map(|p| (p, state.get_best_cost()));
            (state.get_iter(), reason, best)
        }
        Err(e) => (0, e.to_string(), None),
    };
    drop(run); // releases the problem's borrow of the tracker
    let tracker = tracker.into_inner();
    let evaluations = tracker.evaluations;

    // Candidates: argmin's best iterate and the evaluated point with the
    // smallest gradient. Prefer the latter when its cost is equal within
    // rounding noise: it is the better-converged one, and its value and
    // gradient norm are already known.
    let (best, f, gradient_norm) = match (tracker.best_grad, argmin_best) {
        (Some((gn, p, v)), Some((_, c))) if v <= c + 1e-12 * c.abs().max(1.0) => (p, v, gn),
        (Some((gn, p, v)), None) => (p, v, gn),
        (_, Some((p, _))) => {
            let mut g = vec![0.0; M::DIM];
            let f = model.mean_nll_and_grad(&p, &mut g);
            (p, f, norm(&g))
        }
        (None, None) => return Err(ModelError::Optimizer(reason)),
    };
    if !f.is_finite() {
        return Err(ModelError::NonFiniteLikelihood {
            params: to_params(&best),
        });
    }
    Ok(Descent {
        best,
        value: f,
        gradient_norm,
        iterations,
        evaluations,
        reason,
    })
}
