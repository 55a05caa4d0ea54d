//! Tokens the development mode mints for itself when auth is on: one per calling service with
//! the scopes a deployment would grant it, and one with every scope for the demo loader.

use tierline_runtime::auth::{Claims, epoch_seconds, scopes};

/// Every scope Tierline knows.
pub(crate) const ALL: &[&str] = &[
    scopes::CUSTOMERS_READ,
    scopes::CUSTOMERS_WRITE,
    scopes::ACTIVITY_WRITE,
    scopes::FEED_READ,
    scopes::TIERS_READ,
    scopes::PROGRAMS_ADMIN,
    scopes::CAMPAIGNS_ADMIN,
    scopes::DELIVERIES_WRITE,
];

/// A year: a dev process is restarted long before.
const LIFETIME_SECONDS: u64 = 365 * 24 * 3600;

/// An HS256 token for `subject` with `granted` scopes, signed with `secret`.
pub(crate) fn mint(secret: &str, subject: &str, granted: &[&str]) -> anyhow::Result<String> {
    Ok(
        Claims::granting(subject, granted, epoch_seconds() + LIFETIME_SECONDS)
            .sign_hs256(secret)?,
    )
}
