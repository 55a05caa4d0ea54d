//! Page sizes and opaque page tokens, the same for every list RPC: `page_size` 0 means the
//! default, at most [`MAX_PAGE_SIZE`]; tokens are base64url text whose content only the service
//! reads (and may change between versions).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::status::FieldViolation;

/// Page size when the caller sends 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Checks a requested page size.
pub fn page_size(requested: i32) -> Result<u32, FieldViolation> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        1..=1000 => Ok(requested.unsigned_abs()),
        _ => Err(FieldViolation::new(
            "page_size",
            format!("must be between 0 and {MAX_PAGE_SIZE}"),
        )),
    }
}

/// A token of `kind` (one letter per list, so tokens of one list are refused by another).
pub fn encode(kind: char, body: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{body}"))
}

/// The body of a token of `kind`; `None` for the empty token (the first page).
pub fn decode(token: &str, kind: char) -> Result<Option<String>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        FieldViolation::new(
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

/// The parsed body of a token of `kind`.
pub fn decode_parsed<T: std::str::FromStr>(
    token: &str,
    kind: char,
) -> Result<Option<T>, FieldViolation> {
    decode(token, kind)?
        .map(|body| {
            body.parse().map_err(|_| {
                FieldViolation::new(
                    "page_token",
                    "is not a token from a previous page of this list",
                )
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_not_interchangeable() {
        let token = encode('p', "42");
        assert_eq!(decode_parsed::<i64>(&token, 'p').expect("valid"), Some(42));
        assert!(decode(&token, 'q').is_err());
        assert!(decode("!!", 'p').is_err());
        assert_eq!(decode("", 'p').expect("empty"), None);
        assert_eq!(page_size(0).expect("default"), DEFAULT_PAGE_SIZE);
        assert!(page_size(1001).is_err());
    }
}
