//! The campaign service's one error type and its one mapping to `tonic::Status`.

use tierline_runtime::status::{FieldViolation, failed_precondition, invalid_argument};

/// Everything that can go wrong in the campaign service.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
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
    /// The campaign's status forbids the call, or it is incomplete (naming the missing fields).
    #[error("{message}")]
    FailedPrecondition {
        /// What is wrong.
        message: String,
        /// The missing or invalid fields, when that is the reason.
        fields: Vec<FieldViolation>,
    },
    /// An optimistic concurrency check failed.
    #[error("{0}")]
    Aborted(String),
    /// The database or a required upstream service cannot be reached; retrying may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CampaignError {
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

    /// The status forbids the call.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

impl From<CampaignError> for tonic::Status {
    fn from(error: CampaignError) -> Self {
        match error {
            CampaignError::InvalidArgument(violations) => invalid_argument(&violations),
            error @ CampaignError::NotFound { .. } => tonic::Status::not_found(error.to_string()),
            CampaignError::FailedPrecondition { message, fields } => {
                if fields.is_empty() {
                    tonic::Status::failed_precondition(message)
                } else {
                    failed_precondition(&message, &fields)
                }
            }
            CampaignError::Aborted(message) => tonic::Status::aborted(message),
            CampaignError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "a dependency is unavailable");
                tonic::Status::unavailable("a dependency is unavailable; retry later")
            }
            CampaignError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                tonic::Status::internal("internal error")
            }
        }
    }
}

impl From<serde_json::Error> for CampaignError {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(format!("stored document unreadable: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code_and_internal_text_stays_inside() {
        let code = |error: CampaignError| tonic::Status::from(error).code();
        assert_eq!(
            code(CampaignError::invalid("campaign.name", "required")),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(CampaignError::not_found("campaign", "x")),
            tonic::Code::NotFound
        );
        assert_eq!(
            code(CampaignError::precondition("cancelled")),
            tonic::Code::FailedPrecondition
        );
        let incomplete = tonic::Status::from(CampaignError::FailedPrecondition {
            message: "incomplete".into(),
            fields: vec![FieldViolation::new(
                "campaign.offer",
                "is required to launch",
            )],
        });
        assert_eq!(incomplete.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            tierline_runtime::status::field_violations(&incomplete)
                .into_iter()
                .map(|v| v.field)
                .collect::<Vec<_>>(),
            ["campaign.offer"]
        );
        assert_eq!(
            code(CampaignError::Aborted("stale".into())),
            tonic::Code::Aborted
        );
        let internal = tonic::Status::from(CampaignError::Internal("password=hunter2".into()));
        assert_eq!(internal.code(), tonic::Code::Internal);
        assert!(!internal.message().contains("hunter2"));
        let unavailable =
            tonic::Status::from(CampaignError::Unavailable("10.0.0.1 refused".into()));
        assert_eq!(unavailable.code(), tonic::Code::Unavailable);
        assert!(!unavailable.message().contains("10.0.0.1"));
    }
}
