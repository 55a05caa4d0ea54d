//! The one error type of the scoring service.

use tierline_runtime::status::{FieldViolation, invalid_argument};

/// Everything that can go wrong in the scoring service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScoringError {
    /// The request has invalid fields.
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<FieldViolation>),
}

impl ScoringError {
    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<ScoringError> for tonic::Status {
    fn from(error: ScoringError) -> Self {
        match error {
            ScoringError::InvalidArgument(violations) => invalid_argument(&violations),
        }
    }
}
