//! Signed tokens for tests. The test servers trust [`SECRET`] (HS256).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use tierline_runtime::auth::Claims;

/// The HS256 secret test servers are configured with.
pub const SECRET: &str = "tierline-test-secret-0123456789abcdef";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn sign(secret: &str, claims: &Claims) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// A valid token for `subject` with `scopes`, expiring in an hour.
pub fn token(subject: &str, scopes: &[&str]) -> String {
    let claims = Claims {
        sub: subject.to_owned(),
        exp: now() + 3600,
        scope: Some(scopes.join(" ")),
        ..Claims::default()
    };
    sign(SECRET, &claims)
}

/// A valid token for `subject` with `scopes`, expiring `seconds` from now (for streams that must
/// end when their token expires).
pub fn token_expiring_in(subject: &str, scopes: &[&str], seconds: u64) -> String {
    let claims = Claims {
        sub: subject.to_owned(),
        exp: now() + seconds,
        scope: Some(scopes.join(" ")),
        ..Claims::default()
    };
    sign(SECRET, &claims)
}

/// A token that expired ten minutes ago.
pub fn expired_token(scopes: &[&str]) -> String {
    let claims = Claims {
        sub: "late".to_owned(),
        exp: now() - 600,
        scope: Some(scopes.join(" ")),
        ..Claims::default()
    };
    sign(SECRET, &claims)
}

/// A token signed with a key the servers do not trust.
pub fn foreign_token(scopes: &[&str]) -> String {
    let claims = Claims {
        sub: "mallory".to_owned(),
        exp: now() + 3600,
        scope: Some(scopes.join(" ")),
        ..Claims::default()
    };
    sign("some-other-secret-that-nobody-configured", &claims)
}
