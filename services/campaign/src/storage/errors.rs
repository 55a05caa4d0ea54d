//! The one place where database errors of either backend (the runtime's `classify` reads
//! Postgres's SQLSTATEs and SQLite's result codes alike) become [`CampaignError`]s. Unlike the
//! other services, a unique or foreign-key violation is never the caller's doing here: every
//! insert that may repeat says `ON CONFLICT`, so one that reaches this is internal.

use tierline_runtime::db::{DbFailure, classify};

use crate::CampaignError;

impl From<sqlx::Error> for CampaignError {
    fn from(error: sqlx::Error) -> Self {
        match classify(&error) {
            DbFailure::UniqueViolation(_)
            | DbFailure::ForeignKeyViolation(_)
            | DbFailure::Other => Self::Internal(error.to_string()),
            DbFailure::UnstorableText => Self::invalid(
                "campaign",
                "contains characters that cannot be stored (NUL)",
            ),
            DbFailure::Transient | DbFailure::Conflict => Self::Unavailable(error.to_string()),
        }
    }
}
