//! The one error type of the scoring service, and its one mapping to `tonic::Status`. Database
//! errors become these variants in one place (`storage::postgres::errors`).

use tierline_runtime::status::{FieldViolation, invalid_argument};

/// Everything that can go wrong in the scoring service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScoringError {
    /// The request has invalid fields.
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<FieldViolation>),
    /// No such entity.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A unique value is taken.
    #[error("{entity} with this {field} already exists")]
    AlreadyExists {
        /// The entity.
        entity: &'static str,
        /// The unique field.
        field: &'static str,
    },
    /// The entity is not in a state that allows this (e.g. changing an active policy).
    #[error("{0}")]
    FailedPrecondition(String),
    /// An optimistic concurrency check failed: someone changed it first.
    #[error("{0}")]
    Aborted(String),
    /// The database cannot be reached or timed out; retrying may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected database state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScoringError {
    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// An unknown entity.
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

impl From<ScoringError> for tonic::Status {
    fn from(error: ScoringError) -> Self {
        match error {
            ScoringError::InvalidArgument(violations) => invalid_argument(&violations),
            error @ ScoringError::NotFound { .. } => tonic::Status::not_found(error.to_string()),
            error @ ScoringError::AlreadyExists { .. } => {
                tonic::Status::already_exists(error.to_string())
            }
            ScoringError::FailedPrecondition(message) => {
                tonic::Status::failed_precondition(message)
            }
            ScoringError::Aborted(message) => tonic::Status::aborted(message),
            ScoringError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                tonic::Status::unavailable("the database is unavailable; retry later")
            }
            ScoringError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                tonic::Status::internal("internal error")
            }
        }
    }
}
