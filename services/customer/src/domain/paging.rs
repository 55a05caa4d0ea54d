//! The customer service's page tokens, on the runtime's shared paging helpers.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{CustomerError, domain::ports::ActivityPosition};

#[cfg(test)]
use tierline_runtime::paging::DEFAULT_PAGE_SIZE;
pub use tierline_runtime::paging::MAX_PAGE_SIZE;
use tierline_runtime::paging::{self as shared};

/// Checks a requested page size: 0 means the default.
pub fn page_size(requested: i32) -> Result<u32, CustomerError> {
    shared::page_size(requested)
        .map_err(|violation| CustomerError::InvalidArgument(vec![violation]))
}

fn decode(token: &str, kind: char) -> Result<Option<String>, CustomerError> {
    shared::decode(token, kind).map_err(|violation| CustomerError::InvalidArgument(vec![violation]))
}

fn invalid_token() -> CustomerError {
    CustomerError::invalid(
        "page_token",
        "is not a token from a previous page of this list",
    )
}

/// Token after customer `id`.
pub fn customer_token(id: Uuid) -> String {
    shared::encode('c', &id.to_string())
}

/// The customer id a token continues after.
pub fn parse_customer_token(token: &str) -> Result<Option<Uuid>, CustomerError> {
    decode(token, 'c')?
        .map(|body| Uuid::parse_str(&body).map_err(|_| invalid_token()))
        .transpose()
}

/// Token after history position `position`.
pub fn history_token(position: i64) -> String {
    shared::encode('h', &position.to_string())
}

/// The history position a token continues before.
pub fn parse_history_token(token: &str) -> Result<Option<i64>, CustomerError> {
    decode(token, 'h')?
        .map(|body| body.parse().map_err(|_| invalid_token()))
        .transpose()
}

/// Token after an activity.
pub fn activity_token(position: ActivityPosition) -> String {
    shared::encode(
        'a',
        &format!(
            "{}:{}",
            position.occurred_at.timestamp_micros(),
            position.id
        ),
    )
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
