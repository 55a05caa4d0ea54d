//! The verdicts of the bounds tests (`tests/api/bounds.rs` of each service): what the contract
//! promises for one request, and whether a call's outcome keeps that promise.

use tonic::{Code, Status};

/// What the contract promises for one case.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// The call succeeds.
    Accepted,
    /// INVALID_ARGUMENT whose BadRequest names exactly this field.
    Invalid(&'static str),
    /// Another code the contract gives for this value.
    Refused(Code),
}

/// Why `outcome` breaks `expect`, if it does.
pub fn verdict(expect: Expect, outcome: &Result<(), Status>) -> Result<(), String> {
    match (expect, outcome) {
        (Expect::Accepted, Ok(())) => Ok(()),
        (Expect::Invalid(field), Err(status)) if status.code() == Code::InvalidArgument => {
            let fields: Vec<String> = tierline_runtime::status::field_violations(status)
                .into_iter()
                .map(|violation| violation.field)
                .collect();
            if fields == [field] {
                Ok(())
            } else {
                Err(format!(
                    "INVALID_ARGUMENT naming {fields:?}, expected only {field:?}"
                ))
            }
        }
        (Expect::Refused(code), Err(status)) if status.code() == code => Ok(()),
        (expect, Ok(())) => Err(format!("accepted, expected {expect:?}")),
        (expect, Err(status)) => Err(format!(
            "{:?} ({}), expected {expect:?}",
            status.code(),
            status.message()
        )),
    }
}
