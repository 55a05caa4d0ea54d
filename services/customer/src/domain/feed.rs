//! The activity feed's positions and events.
//!
//! Every feed row stores the id of the transaction that wrote it (`xid`) and a sequence number
//! (`seq`). Rows are read in `(xid, seq)` order, and only rows whose transaction is older than the
//! oldest transaction still running (the snapshot's `xmin`) are read: those can no longer change,
//! and every transaction that commits later has a larger xid than any row already read. So a
//! reader never skips a late committer, whatever the commit order (docs/FEED.md).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::activity::Activity;

pub use tierline_runtime::xid_feed::FeedCursor;

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
    /// Not an event: every event committed before this instant has been sent.
    CaughtUp(DateTime<Utc>),
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
    /// When set, this page and the ones before it hold every event committed before this
    /// instant.
    pub caught_up_to: Option<DateTime<Utc>>,
}
