//! Bulk ingestion: items of a batch and their outcomes.

use super::activity::{NewPurchase, NewRefund, PurchaseInput, Recorded, RefundInput};
use crate::CustomerError;
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

impl ImportCommand {
    /// The purchases of `commands` with their positions: a batch's purchases are recorded
    /// together, before its refunds.
    pub fn purchases(commands: &[Self]) -> (Vec<usize>, Vec<&NewPurchase>) {
        commands
            .iter()
            .enumerate()
            .filter_map(|(index, command)| match command {
                Self::Purchase(purchase) => Some((index, purchase)),
                Self::Refund(_) => None,
            })
            .unzip()
    }
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
    /// The outcome of an item, from what recording it gave; the error is the whole batch's.
    pub fn of(result: Result<Recorded, CustomerError>) -> Result<Self, CustomerError> {
        match result {
            Ok(recorded) if recorded.replayed => Ok(Self::Duplicate {
                activity_id: recorded.activity.id,
            }),
            Ok(recorded) => Ok(Self::Accepted {
                activity_id: recorded.activity.id,
            }),
            Err(error) => Self::from_item_error(error),
        }
    }

    /// The outcome of an item whose recording failed: a rejection naming the field at fault when
    /// the error is about the item, or the error itself when it is about the database (the
    /// whole batch fails then).
    pub fn from_item_error(error: CustomerError) -> Result<Self, CustomerError> {
        Ok(match error {
            CustomerError::InvalidArgument(violations) => {
                let field = violations
                    .first()
                    .map(|v| v.field.clone())
                    .unwrap_or_default();
                let reason = violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                Self::rejected(field, reason)
            }
            error @ CustomerError::IdempotencyKeyReused { .. } => {
                Self::rejected("idempotency_key", error.to_string())
            }
            CustomerError::NotFound { entity, id } => {
                let field = if entity == "purchase" {
                    "purchase_id"
                } else {
                    "customer_id"
                };
                Self::rejected(field, format!("{entity} {id} not found"))
            }
            error @ CustomerError::CustomerErased { .. } => {
                Self::rejected("customer_id", error.to_string())
            }
            error @ CustomerError::RefundExceedsPurchase { .. } => {
                Self::rejected("amount.amount_minor", error.to_string())
            }
            error @ CustomerError::AlreadyExists { .. } => Self::rejected("", error.to_string()),
            // Not an item's error: the feed's, which no import produces.
            error @ (CustomerError::Unavailable(_)
            | CustomerError::ShuttingDown
            | CustomerError::CursorRefused(_)
            | CustomerError::Internal(_)) => return Err(error),
        })
    }

    /// A rejection.
    pub fn rejected(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Rejected {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
