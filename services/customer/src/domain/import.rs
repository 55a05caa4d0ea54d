//! Bulk ingestion: items of a batch and their outcomes.

use super::activity::{NewPurchase, NewRefund, PurchaseInput, RefundInput};
use uuid::Uuid;

/// Most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// One item as the caller sent it.
#[derive(Debug, Clone)]
pub enum ImportInput {
    /// A purchase.
    Purchase(PurchaseInput),
    /// A refund.
    Refund(RefundInput),
    /// Neither was set.
    Empty,
}

/// A validated item with its position in the batch.
#[derive(Debug, Clone)]
pub enum ImportCommand {
    /// A purchase to record.
    Purchase(NewPurchase),
    /// A refund to record.
    Refund(NewRefund),
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Recorded now.
    Accepted {
        /// The new activity.
        activity_id: Uuid,
    },
    /// Recorded before with the same key and content.
    Duplicate {
        /// The existing activity.
        activity_id: Uuid,
    },
    /// Not recorded.
    Rejected {
        /// The field at fault, or empty.
        field: String,
        /// Why.
        reason: String,
    },
}

impl ImportOutcome {
    /// A rejection.
    pub fn rejected(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Rejected {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
