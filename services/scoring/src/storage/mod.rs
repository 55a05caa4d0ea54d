//! Storage of the scoring service: the domain's ports (`domain::ports`) implemented by two
//! backends (Postgres; SQLite, embedded for the development mode), with what both share (column
//! lists, stored value models and the purchases they are fitted on, durations as microseconds),
//! and one conformance suite (`tests/conformance`) run against both.

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

/// The columns of a stored value model, in the order both backends write them and
/// [`ValueModelRow`] reads them (its parameters, from `bg_r` to `gg_log_likelihood`, are
/// [`ValueModelParameters`]).
pub(crate) const VALUE_MODEL_COLUMNS: &str = "program_id, version, bg_r, bg_alpha, bg_a, bg_b, bg_log_likelihood, \
     gg_p, gg_q, gg_gamma, gg_log_likelihood, customers, repeat_customers, as_of, summary_micros, fit_micros, \
     evaluation_run_id";

/// A value model's parameters as both backends store them (a spend model's are all or none).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(crate) struct ValueModelParameters {
    bg_r: f64,
    bg_alpha: f64,
    bg_a: f64,
    bg_b: f64,
    bg_log_likelihood: f64,
    gg_p: Option<f64>,
    gg_q: Option<f64>,
    gg_gamma: Option<f64>,
    gg_log_likelihood: f64,
}

impl ValueModelParameters {
    /// Binds the parameters to `query` after what it has bound, in the order of their columns:
    /// both dialects store them as the same floats.
    pub(crate) fn bind<'q, DB>(
        self,
        query: sqlx::query::QueryScalar<'q, DB, i64, <DB as sqlx::Database>::Arguments<'q>>,
    ) -> sqlx::query::QueryScalar<'q, DB, i64, <DB as sqlx::Database>::Arguments<'q>>
    where
        DB: sqlx::Database,
        f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<f64>: sqlx::Encode<'q, DB>,
    {
        query
            .bind(self.bg_r)
            .bind(self.bg_alpha)
            .bind(self.bg_a)
            .bind(self.bg_b)
            .bind(self.bg_log_likelihood)
            .bind(self.gg_p)
            .bind(self.gg_q)
            .bind(self.gg_gamma)
            .bind(self.gg_log_likelihood)
    }
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

/// A stored value model ([`VALUE_MODEL_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(crate) struct ValueModelRow {
    program_id: uuid::Uuid,
    version: i64,
    #[sqlx(flatten)]
    parameters: ValueModelParameters,
    customers: i64,
    repeat_customers: i64,
    as_of: tierline_runtime::instant::StoredInstant,
    summary_micros: i64,
    fit_micros: i64,
    evaluation_run_id: Option<uuid::Uuid>,
}

impl From<ValueModelRow> for crate::domain::value::ValueModel {
    fn from(row: ValueModelRow) -> Self {
        Self {
            program_id: row.program_id,
            version: row.version,
            fitted: row.parameters.into(),
            customers: row.customers,
            repeat_customers: row.repeat_customers,
            as_of: row.as_of.into(),
            summary_duration: micros_duration(row.summary_micros),
            fit_duration: micros_duration(row.fit_micros),
            evaluation_run_id: row.evaluation_run_id,
        }
    }
}

/// A purchase as the value model reads it: `(customer, occurred_at, net)`.
pub(crate) type DatedRow = (uuid::Uuid, tierline_runtime::instant::StoredInstant, i64);

/// The purchases of `rows`, as the domain summarises them.
pub(crate) fn dated_purchases(
    rows: Vec<DatedRow>,
) -> Vec<crate::domain::value::summary::DatedPurchase> {
    rows.into_iter()
        .map(
            |(customer_id, occurred_at, net_minor)| crate::domain::value::summary::DatedPurchase {
                customer_id,
                occurred_at: occurred_at.into(),
                net_minor,
            },
        )
        .collect()
}

/// A duration as both backends store it: whole microseconds.
pub(crate) fn duration_micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// A stored duration back (a negative one, which no writer stores, as zero).
fn micros_duration(micros: i64) -> std::time::Duration {
    std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}
