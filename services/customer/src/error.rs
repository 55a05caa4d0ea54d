//! The one error type of the customer service, and its one mapping to `tonic::Status`.
//!
//! Storage converts database errors into these variants in one place
//! (`storage::postgres::errors`): unique violations become `AlreadyExists`, foreign-key violations
//! `NotFound`, lost connections `Unavailable`. Internal detail is logged here, never sent.

use tierline_runtime::status::{FieldViolation, invalid_argument};

/// Everything that can go wrong in the customer service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CustomerError {
    /// The request has invalid fields.
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<FieldViolation>),
    /// The idempotency key was used before for a different request.
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// No such entity.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked for (customer, activity, purchase).
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
    /// The customer is erased; nothing more can be recorded for it.
    #[error("customer {id} is erased")]
    CustomerErased {
        /// The customer.
        id: String,
    },
    /// The refund is larger than what remains of its purchase.
    #[error("refund exceeds the {remaining_minor} minor units that remain of the purchase")]
    RefundExceedsPurchase {
        /// What remains.
        remaining_minor: i64,
    },
    /// A feed cursor this feed cannot resume after: it comes from another database cluster or
    /// lies beyond the feed (docs/FEED.md).
    #[error("after_cursor {0}")]
    CursorRefused(tierline_runtime::xid_feed::CursorRefusal),
    /// The database cannot be reached or timed out; retrying may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The service is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// A bug or an unexpected database state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CustomerError {
    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// An unknown customer.
    pub fn customer_not_found(id: impl ToString) -> Self {
        Self::NotFound {
            entity: "customer",
            id: id.to_string(),
        }
    }
}

impl From<CustomerError> for tonic::Status {
    fn from(error: CustomerError) -> Self {
        match error {
            CustomerError::InvalidArgument(violations) => invalid_argument(&violations),
            CustomerError::IdempotencyKeyReused { .. } => invalid_argument(&[FieldViolation::new(
                "idempotency_key",
                "was already used for a request with different content; use a new key for a new activity",
            )]),
            error @ CustomerError::NotFound { .. } => tonic::Status::not_found(error.to_string()),
            error @ CustomerError::AlreadyExists { .. } => {
                tonic::Status::already_exists(error.to_string())
            }
            error @ (CustomerError::CustomerErased { .. }
            | CustomerError::RefundExceedsPurchase { .. }
            | CustomerError::CursorRefused(_)) => {
                tonic::Status::failed_precondition(error.to_string())
            }
            CustomerError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                tonic::Status::unavailable("the database is unavailable; retry later")
            }
            CustomerError::ShuttingDown => {
                tonic::Status::unavailable("the server is shutting down; retry on another replica")
            }
            CustomerError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                tonic::Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_caller() {
        let status = tonic::Status::from(CustomerError::Internal(
            "relation \"x\" does not exist".into(),
        ));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
        let status = tonic::Status::from(CustomerError::Unavailable(
            "connection refused to 10.0.0.5".into(),
        ));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("10.0.0.5"));
    }

    #[test]
    fn codes_follow_the_api_contract() {
        let code = |error| tonic::Status::from(error).code();
        assert_eq!(
            code(CustomerError::customer_not_found("x")),
            tonic::Code::NotFound
        );
        assert_eq!(
            code(CustomerError::AlreadyExists {
                entity: "customer",
                field: "external_id"
            }),
            tonic::Code::AlreadyExists
        );
        assert_eq!(
            code(CustomerError::CustomerErased { id: "x".into() }),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            code(CustomerError::RefundExceedsPurchase { remaining_minor: 1 }),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            code(CustomerError::IdempotencyKeyReused { key: "k".into() }),
            tonic::Code::InvalidArgument
        );
    }
}
