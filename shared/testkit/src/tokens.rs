//! Signed tokens for tests. The test servers trust [`SECRET`] (HS256).

use tierline_runtime::auth::{Claims, epoch_seconds};

/// The HS256 secret test servers are configured with.
pub const SECRET: &str = "tierline-test-secret-0123456789abcdef";

fn sign(secret: &str, claims: &Claims) -> String {
    claims.sign_hs256(secret).unwrap_or_default()
}

/// A valid token for `subject` with `scopes`, expiring in an hour.
pub fn token(subject: &str, scopes: &[&str]) -> String {
    sign(
        SECRET,
        &Claims::granting(subject, scopes, epoch_seconds() + 3600),
    )
}

/// A valid token for `subject` with `scopes`, expiring `seconds` from now (for streams that must
/// end when their token expires).
pub fn token_expiring_in(subject: &str, scopes: &[&str], seconds: u64) -> String {
    sign(
        SECRET,
        &Claims::granting(subject, scopes, epoch_seconds() + seconds),
    )
}

/// A token that expired ten minutes ago.
pub fn expired_token(scopes: &[&str]) -> String {
    sign(
        SECRET,
        &Claims::granting("late", scopes, epoch_seconds() - 600),
    )
}

/// A token signed with a key the servers do not trust.
pub fn foreign_token(scopes: &[&str]) -> String {
    sign(
        "some-other-secret-that-nobody-configured",
        &Claims::granting("mallory", scopes, epoch_seconds() + 3600),
    )
}
