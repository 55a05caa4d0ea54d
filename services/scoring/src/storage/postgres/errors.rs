//! The one place where database errors become [`ScoringError`]s.

use crate::ScoringError;

impl From<sqlx::Error> for ScoringError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(database_error) => {
                let constraint = database_error.constraint().unwrap_or_default();
                match database_error.code().as_deref().unwrap_or_default() {
                    "23505" => match constraint {
                        "programs_code_key" => Self::AlreadyExists {
                            entity: "program",
                            field: "code",
                        },
                        "policy_versions_one_active" => Self::Aborted(
                            "another version was activated at the same time; retry".into(),
                        ),
                        "policy_versions_program_id_version_key" => Self::Aborted(
                            "another draft was created at the same time; retry".into(),
                        ),
                        _ => Self::Internal(error.to_string()),
                    },
                    "23503" => Self::NotFound {
                        entity: "program",
                        id: String::new(),
                    },
                    "22021" | "22P05" => {
                        Self::invalid("request", "contains characters that cannot be stored (NUL)")
                    }
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

impl From<serde_json::Error> for ScoringError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(format!("stored document unreadable: {error}"))
    }
}
