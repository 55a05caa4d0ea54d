//! The one place where database errors of either backend (the runtime's `classify` reads
//! Postgres's SQLSTATEs and SQLite's result codes alike) become [`ScoringError`]s.

use tierline_runtime::db::{DbFailure, classify};

use crate::ScoringError;

impl From<sqlx::Error> for ScoringError {
    fn from(error: sqlx::Error) -> Self {
        match classify(&error) {
            DbFailure::UniqueViolation(constraint) => match constraint.as_str() {
                "programs_code_key" => Self::AlreadyExists {
                    entity: "program",
                    field: "code",
                },
                "policy_versions_one_active" => {
                    Self::Aborted("another version was activated at the same time; retry".into())
                }
                "policy_versions_program_id_version_key" => {
                    Self::Aborted("another draft was created at the same time; retry".into())
                }
                "rfm_cut_points_pkey" => {
                    Self::Aborted("cut points were computed at the same time; retry".into())
                }
                // A feed batch inserts these without a conflict check of its own
                // (storage/postgres/feed_batch.rs): it is applied again.
                "counted_purchases_pkey" => Self::Aborted(
                    "a purchase of the batch was counted before or by another writer; retry".into(),
                ),
                _ => Self::Internal(error.to_string()),
            },
            DbFailure::ForeignKeyViolation(_) => Self::NotFound {
                entity: "program",
                id: String::new(),
            },
            DbFailure::UnstorableText => {
                Self::invalid("request", "contains characters that cannot be stored (NUL)")
            }
            // Said as a conflict, so that a writer can tell a transaction it may simply run again
            // (an evaluation's chunk) from an outage; the database's text stays out of it.
            DbFailure::Conflict => {
                Self::Aborted("a concurrent write conflicted with this one; retry".into())
            }
            DbFailure::Transient => Self::Unavailable(error.to_string()),
            DbFailure::Other => Self::Internal(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for ScoringError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(format!("stored document unreadable: {error}"))
    }
}
