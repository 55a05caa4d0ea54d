//! The activity feed's positions and events.
//!
//! Every feed row stores the id of the transaction that wrote it (`xid`) and a sequence number
//! (`seq`). Rows are read in `(xid, seq)` order, and only rows whose transaction is older than the
//! oldest transaction still running (the snapshot's `xmin`) are read: those can no longer change,
//! and every transaction that commits later has a larger xid than any row already read. So a
//! reader never skips a late committer, whatever the commit order (docs/FEED.md).

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::activity::Activity;

/// A position in the feed: after the row written by transaction `xid` with number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeedCursor {
    /// Writing transaction id (64-bit, never wraps).
    pub xid: i64,
    /// Sequence number within the feed.
    pub seq: i64,
}

impl FeedCursor {
    /// The position before every event.
    pub const START: Self = Self { xid: 0, seq: 0 };

    /// Parses the opaque text form; empty means [`FeedCursor::START`].
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() {
            return Some(Self::START);
        }
        let (xid, seq) = text.strip_prefix("v1.")?.split_once('.')?;
        let cursor = Self {
            xid: xid.parse().ok()?,
            seq: seq.parse().ok()?,
        };
        (cursor.xid >= 0 && cursor.seq >= 0).then_some(cursor)
    }
}

impl fmt::Display for FeedCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}.{}", self.xid, self.seq)
    }
}

/// What happened to a customer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerEventKind {
    /// Created.
    Created,
    /// Erased.
    Erased,
}

impl CustomerEventKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Erased => "erased",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "created" => Some(Self::Created),
            "erased" => Some(Self::Erased),
            _ => None,
        }
    }
}

/// A customer lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEvent {
    /// The customer.
    pub customer_id: Uuid,
    /// Created or erased.
    pub kind: CustomerEventKind,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The customer's join time.
    pub joined_at: DateTime<Utc>,
}

/// What a feed event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedPayload {
    /// A purchase or refund.
    Activity(Box<Activity>),
    /// A customer created or erased.
    Customer(CustomerEvent),
}

/// One feed event at its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// Its position; resume after it with this cursor.
    pub cursor: FeedCursor,
    /// The event.
    pub payload: FeedPayload,
}

/// One read of the feed.
#[derive(Debug, Clone, Default)]
pub struct FeedPage {
    /// Events after the requested cursor, in feed order.
    pub events: Vec<FeedEvent>,
    /// Whether committed events exist that cannot be delivered yet because an older transaction
    /// is still running; the reader should look again soon.
    pub held_back: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = FeedCursor {
            xid: 7_345,
            seq: 99,
        };
        assert_eq!(FeedCursor::parse(&cursor.to_string()), Some(cursor));
        assert_eq!(FeedCursor::parse(""), Some(FeedCursor::START));
        for bad in ["7345.99", "v1.x.1", "v1.1", "v1.-1.2", "v2.1.2"] {
            assert_eq!(FeedCursor::parse(bad), None, "{bad}");
        }
        assert!(FeedCursor { xid: 5, seq: 100 } < FeedCursor { xid: 6, seq: 1 });
    }
}
