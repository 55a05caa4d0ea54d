//! Collecting field violations so one request reports all its bad fields.

use tierline_runtime::status::FieldViolation;

use crate::ScoringError;

#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<FieldViolation>);

impl Violations {
    pub(crate) fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    pub(crate) fn into_result(self) -> Result<(), ScoringError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ScoringError::InvalidArgument(self.0))
        }
    }

    /// A code: `[A-Z0-9_]{1,max}` (program, tier and benefit codes are shown to operators and
    /// used in rules).
    pub(crate) fn code(&mut self, field: &str, value: &str, max: usize) {
        let valid = (1..=max).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            self.add(
                field,
                format!("must be 1 to {max} characters of A-Z, 0-9 and _"),
            );
        }
    }

    /// Text of 1 to `max` characters without control characters.
    pub(crate) fn text(&mut self, field: &str, value: &str, max: usize) {
        let length = value.chars().count();
        if length == 0 {
            self.add(field, "is required");
        } else if length > max {
            self.add(field, format!("must be at most {max} characters"));
        } else if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
    }
}
