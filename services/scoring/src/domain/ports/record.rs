//! A customer's record in one program: what lookups read, the tier cache keeps, and the feed
//! writes through to the cache.

use crate::domain::{
    state::{Member, StoredState},
    window::Bucket,
};

/// One customer's view in one program, as lookups read it (and the tier cache keeps it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomerRecord {
    /// Membership.
    pub member: Member,
    /// Tier state, when one is stored.
    pub state: Option<StoredState>,
    /// Monthly buckets, oldest first.
    pub buckets: Vec<Bucket>,
}
