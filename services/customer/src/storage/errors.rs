//! The one place where database errors of either backend (the runtime's `classify` reads
//! Postgres's SQLSTATEs and SQLite's result codes alike) become [`CustomerError`]s: unique
//! violations become ALREADY_EXISTS, foreign-key violations NOT_FOUND, lost connections,
//! timeouts and transactions rolled back for a conflict UNAVAILABLE.

use tierline_runtime::db::{DbFailure, classify};

use crate::CustomerError;

impl From<sqlx::Error> for CustomerError {
    fn from(error: sqlx::Error) -> Self {
        match classify(&error) {
            DbFailure::UniqueViolation(constraint) => match constraint.as_str() {
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
            DbFailure::ForeignKeyViolation(constraint) => match constraint.as_str() {
                "activities_refunded_purchase_id_fkey" => Self::NotFound {
                    entity: "purchase",
                    id: String::new(),
                },
                _ => Self::NotFound {
                    entity: "customer",
                    id: String::new(),
                },
            },
            DbFailure::UnstorableText => {
                Self::invalid("request", "contains characters that cannot be stored (NUL)")
            }
            DbFailure::Transient | DbFailure::Conflict => Self::Unavailable(error.to_string()),
            DbFailure::Other => Self::Internal(error.to_string()),
        }
    }
}
