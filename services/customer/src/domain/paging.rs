//! Page sizes and opaque page tokens. Tokens are base64url text that only this service reads;
//! their content may change between versions.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{CustomerError, storage::ActivityPosition};

/// Default page size when the caller sends 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Checks a requested page size: 0 means the default.
pub fn page_size(requested: i32) -> Result<u32, CustomerError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1..=1000 => Ok(requested.unsigned_abs()),
        _ => Err(CustomerError::invalid(
            "page_size",
            format!("must be between 0 and {MAX_PAGE_SIZE}"),
        )),
    }
}

fn encode(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode(token: &str, kind: char) -> Result<Option<String>, CustomerError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        CustomerError::invalid(
            "page_token",
            "is not a token from a previous page of this list",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let body = text
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(invalid)?;
    Ok(Some(body.to_owned()))
}

fn invalid_token() -> CustomerError {
    CustomerError::invalid(
        "page_token",
        "is not a token from a previous page of this list",
    )
}

/// Token after customer `id`.
pub fn customer_token(id: Uuid) -> String {
    encode(&format!("c:{id}"))
}

/// The customer id a token continues after.
pub fn parse_customer_token(token: &str) -> Result<Option<Uuid>, CustomerError> {
    decode(token, 'c')?
        .map(|body| Uuid::parse_str(&body).map_err(|_| invalid_token()))
        .transpose()
}

/// Token after history position `position`.
pub fn history_token(position: i64) -> String {
    encode(&format!("h:{position}"))
}

/// The history position a token continues before.
pub fn parse_history_token(token: &str) -> Result<Option<i64>, CustomerError> {
    decode(token, 'h')?
        .map(|body| body.parse().map_err(|_| invalid_token()))
        .transpose()
}

/// Token after an activity.
pub fn activity_token(position: ActivityPosition) -> String {
    encode(&format!(
        "a:{}:{}",
        position.occurred_at.timestamp_micros(),
        position.id
    ))
}

/// The activity position a token continues after.
pub fn parse_activity_token(token: &str) -> Result<Option<ActivityPosition>, CustomerError> {
    let Some(body) = decode(token, 'a')? else {
        return Ok(None);
    };
    let (micros, id) = body.split_once(':').ok_or_else(invalid_token)?;
    let occurred_at = micros
        .parse()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(invalid_token)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid_token())?;
    Ok(Some(ActivityPosition { occurred_at, id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_not_interchangeable() {
        let id = Uuid::now_v7();
        assert_eq!(
            parse_customer_token(&customer_token(id)).expect("valid"),
            Some(id)
        );
        assert_eq!(
            parse_history_token(&history_token(42)).expect("valid"),
            Some(42)
        );
        assert!(parse_customer_token(&history_token(42)).is_err());
        assert!(parse_customer_token("!!!").is_err());
        assert_eq!(parse_customer_token("").expect("empty"), None);
        let position = ActivityPosition {
            occurred_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("t"),
            id,
        };
        assert_eq!(
            parse_activity_token(&activity_token(position)).expect("valid"),
            Some(position)
        );
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0).expect("default"), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(1000).expect("max"), 1000);
        assert!(page_size(1001).is_err());
        assert!(page_size(-1).is_err());
    }
}
