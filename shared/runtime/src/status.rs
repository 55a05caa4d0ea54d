//! Building `tonic::Status` values with standard error details, so every service reports invalid
//! input the same way: INVALID_ARGUMENT with a `google.rpc.BadRequest` naming each field.

use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field: its path in the request (e.g. `amount.currency`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request message.
    pub field: String,
    /// What is wrong with it, for the caller.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// INVALID_ARGUMENT carrying a BadRequest with every violation; the message lists them too, for
/// clients that do not read details.
pub fn invalid_argument(violations: &[FieldViolation]) -> tonic::Status {
    let message = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
    }
    tonic::Status::with_error_details(
        tonic::Code::InvalidArgument,
        format!("invalid argument: {message}"),
        details,
    )
}

/// FAILED_PRECONDITION naming the fields that are missing or wrong for the operation (an
/// incomplete campaign, say), as a BadRequest like [`invalid_argument`].
pub fn failed_precondition(message: &str, violations: &[FieldViolation]) -> tonic::Status {
    let listed = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
    }
    tonic::Status::with_error_details(
        tonic::Code::FailedPrecondition,
        format!("{message}: {listed}"),
        details,
    )
}

/// The field violations carried by a status, if any (clients and tests use this).
pub fn field_violations(status: &tonic::Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| FieldViolation::new(violation.field, violation.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_round_trip_through_the_status() {
        let status = invalid_argument(&[
            FieldViolation::new("email", "not an e-mail address"),
            FieldViolation::new("amount.currency", "not an ISO 4217 code"),
        ]);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("email: not an e-mail address"));
        let violations = field_violations(&status);
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[1].field, "amount.currency");
    }
}
