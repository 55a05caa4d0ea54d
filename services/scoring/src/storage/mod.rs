//! Storage of the scoring service: the domain's ports (`domain::ports`) implemented by two
//! backends (Postgres; SQLite, embedded for the development mode), with what both share (column
//! lists, stored value-model parameters, durations as microseconds), and one conformance suite
//! (`tests/conformance`) run against both.

mod errors;
mod feed_load;
pub mod postgres;
mod rows;
pub mod sqlite;

pub use crate::domain::ports::*;

/// The columns of a tier history record, in the order both backends' row types read them.
pub(crate) const HISTORY_COLUMNS: &str = "id, program_id, customer_id, from_rank, to_rank, reason, \
     policy_version_id, policy_version, totals, occurred_at, window_start, window_end, evaluation_run_id, \
     activity_id, operator_name, operator_reason, override_expires_at";

/// The parameter columns of a stored value model, in the order both backends write them.
pub(crate) const VALUE_MODEL_PARAMETERS: &str = "bg_r, bg_alpha, bg_a, bg_b, bg_log_likelihood, \
     gg_p, gg_q, gg_gamma, gg_log_likelihood";

/// A value model's parameters as both backends store them (a spend model's are all or none).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(crate) struct ValueModelParameters {
    pub(crate) bg_r: f64,
    pub(crate) bg_alpha: f64,
    pub(crate) bg_a: f64,
    pub(crate) bg_b: f64,
    pub(crate) bg_log_likelihood: f64,
    pub(crate) gg_p: Option<f64>,
    pub(crate) gg_q: Option<f64>,
    pub(crate) gg_gamma: Option<f64>,
    pub(crate) gg_log_likelihood: f64,
}

impl From<&crate::domain::value::FittedModel> for ValueModelParameters {
    fn from(fitted: &crate::domain::value::FittedModel) -> Self {
        let spend = fitted.gamma_gamma;
        Self {
            bg_r: fitted.bg_nbd.r,
            bg_alpha: fitted.bg_nbd.alpha,
            bg_a: fitted.bg_nbd.a,
            bg_b: fitted.bg_nbd.b,
            bg_log_likelihood: fitted.bg_nbd_log_likelihood,
            gg_p: spend.map(|s| s.p),
            gg_q: spend.map(|s| s.q),
            gg_gamma: spend.map(|s| s.gamma),
            gg_log_likelihood: fitted.gamma_gamma_log_likelihood,
        }
    }
}

impl From<ValueModelParameters> for crate::domain::value::FittedModel {
    fn from(row: ValueModelParameters) -> Self {
        Self {
            bg_nbd: tierline_value_model::BgNbdParams {
                r: row.bg_r,
                alpha: row.bg_alpha,
                a: row.bg_a,
                b: row.bg_b,
            },
            bg_nbd_log_likelihood: row.bg_log_likelihood,
            gamma_gamma: match (row.gg_p, row.gg_q, row.gg_gamma) {
                (Some(p), Some(q), Some(gamma)) => {
                    Some(tierline_value_model::GammaGammaParams { p, q, gamma })
                }
                _ => None,
            },
            gamma_gamma_log_likelihood: row.gg_log_likelihood,
        }
    }
}

/// A duration as both backends store it: whole microseconds.
pub(crate) fn duration_micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A stored duration back (a negative one, which no writer stores, as zero).
pub(crate) fn micros_duration(micros: i64) -> std::time::Duration {
    std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}
