//! The one place where database errors become [`CustomerError`]s: unique violations become
//! ALREADY_EXISTS, foreign-key violations NOT_FOUND, lost connections and timeouts UNAVAILABLE.

use crate::CustomerError;

impl From<sqlx::Error> for CustomerError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(database_error) => {
                let constraint = database_error.constraint().unwrap_or_default();
                match database_error.code().as_deref().unwrap_or_default() {
                    "23505" => match constraint {
                        "customers_external_id_key" => Self::AlreadyExists {
                            entity: "customer",
                            field: "external_id",
                        },
                        "activities_idempotency_key_key" => Self::AlreadyExists {
                            entity: "activity",
                            field: "idempotency_key",
                        },
                        _ => Self::Internal(error.to_string()),
                    },
                    // Text Postgres cannot store (a NUL byte, `\u0000` in JSON): the caller's input.
                    "22021" | "22P05" => {
                        Self::invalid("request", "contains characters that cannot be stored (NUL)")
                    }
                    "23503" => match constraint {
                        "activities_refunded_purchase_id_fkey" => Self::NotFound {
                            entity: "purchase",
                            id: String::new(),
                        },
                        _ => Self::NotFound {
                            entity: "customer",
                            id: String::new(),
                        },
                    },
                    // statement_timeout, lock timeout, serialization/deadlock, too many connections,
                    // server shutting down, connection exceptions: all transient.
                    "57014" | "55P03" | "40001" | "40P01" | "53300" | "57P01" | "57P02"
                    | "57P03" => Self::Unavailable(error.to_string()),
                    code if code.starts_with("08") => Self::Unavailable(error.to_string()),
                    _ => Self::Internal(error.to_string()),
                }
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => Self::Unavailable(error.to_string()),
            _ => Self::Internal(error.to_string()),
        }
    }
}
