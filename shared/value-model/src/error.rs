//! The one error type of the crate: everything that can stop a fit or reject
//! an input. Scoring functions never fail; they return NaN for parameters or
//! inputs outside their domain (documented on each function).

use thiserror::Error;

/// Why a fit could not be done or did not produce trustworthy parameters.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    /// Parallel input slices (frequency, recency, age, weights, spend) differ in length.
    #[error("input slice `{field}` has {found} entries, expected {expected}")]
    LengthMismatch {
        /// Name of the slice with the wrong length.
        field: &'static str,
        /// Length of the first slice (the frequencies).
        expected: usize,
        /// Length of the offending slice.
        found: usize,
    },

    /// One customer's record violates the model's assumptions (e.g. recency
    /// greater than age, a negative or non-finite time, non-positive spend).
    #[error("customer at index {index} is invalid: {reason}")]
    InvalidCustomer {
        /// Position in the input slices.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Fewer customers (total weight) than the model has parameters, or no
    /// customer at all.
    #[error("too few customers to fit: {found} (need at least {needed})")]
    TooFewCustomers {
        /// Total weight found.
        found: u64,
        /// Minimum required.
        needed: u64,
    },

    /// Not enough repeat buyers (frequency > 0): the BG/NBD likelihood has no
    /// finite maximum without any, and the Gamma-Gamma model is fitted on
    /// repeat buyers only.
    #[error("too few repeat buyers (frequency > 0) to fit: {found} (need at least {needed})")]
    TooFewRepeatBuyers {
        /// Total weight of repeat buyers found.
        found: u64,
        /// Minimum required.
        needed: u64,
    },

    /// The optimiser stopped (iteration cap or a failed line search) with a
    /// gradient still too large to call the point a maximum.
    #[error(
        "maximum-likelihood fit did not converge after {iterations} iterations \
         (gradient norm {gradient_norm:e}): {reason}"
    )]
    DidNotConverge {
        /// Iterations performed.
        iterations: u64,
        /// Euclidean norm of the gradient of the mean negative log-likelihood
        /// with respect to the log-parameters at the returned point.
        gradient_norm: f64,
        /// The optimiser's own account of why it stopped.
        reason: String,
    },

    /// The log-likelihood was NaN or infinite at the starting point or at the
    /// end of the fit (typically a starting point far from the data's scale).
    #[error("log-likelihood is not finite at parameters {params:?}")]
    NonFiniteLikelihood {
        /// The (natural-scale) parameters at which it happened.
        params: Vec<f64>,
    },

    /// The optimisation library reported an error that is none of the above.
    #[error("optimiser error: {0}")]
    Optimizer(String),
}
