//! Purchases and refunds: what a caller sends, the rules it must meet, and the fingerprint that
//! tells a retry (same key, same content) from a conflicting reuse of a key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use tierline_runtime::currency::is_iso_4217;

use super::validate::Violations;
use crate::CustomerError;

/// Largest amount accepted, in minor units (10^15: beyond any real purchase, far below i64::MAX
/// so that sums over years cannot overflow).
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// Most line items on one purchase.
pub const MAX_LINE_ITEMS: usize = 500;

/// Purchase or refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// A purchase.
    Purchase,
    /// A refund of (part of) a purchase.
    Refund,
}

impl ActivityKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Refund => "refund",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "purchase" => Some(Self::Purchase),
            "refund" => Some(Self::Refund),
            _ => None,
        }
    }
}

/// One line of a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// Product category.
    pub category: String,
    /// Product code.
    #[serde(default)]
    pub sku: String,
    /// Units.
    pub quantity: i32,
    /// Line total in minor units.
    pub amount_minor: i64,
}

/// A stored purchase or refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Server-assigned id.
    pub id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// Purchase or refund.
    pub kind: ActivityKind,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// Amount in minor units, positive.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// When recorded.
    pub recorded_at: DateTime<Utc>,
    /// Brand.
    pub brand: String,
    /// Sales channel.
    pub sales_channel: String,
    /// Store.
    pub store_id: String,
    /// Line items (purchases).
    pub line_items: Vec<LineItem>,
    /// For a refund, the purchase it refunds.
    pub refunded_purchase_id: Option<Uuid>,
    /// For a purchase, how much has been refunded.
    pub refunded_amount_minor: i64,
    /// The purchase's occurred_at (its own for a purchase).
    pub purchase_occurred_at: DateTime<Utc>,
}

/// The result of recording: the activity, and whether the request was a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The stored activity (the original one for a replay).
    pub activity: Activity,
    /// True when the same key and content had been recorded before.
    pub replayed: bool,
}

impl Recorded {
    /// What a request with `fingerprint` under `key` gets when `key` already holds an activity
    /// stored with `stored_fingerprint`: the same content is a replay of `stored` (read only then,
    /// so a refusal never depends on it); other content under the same key is refused.
    pub fn replay(
        key: &str,
        stored_fingerprint: &[u8],
        fingerprint: &[u8; 32],
        stored: impl FnOnce() -> Result<Activity, CustomerError>,
    ) -> Result<Self, CustomerError> {
        if stored_fingerprint != fingerprint.as_slice() {
            return Err(CustomerError::IdempotencyKeyReused {
                key: key.to_owned(),
            });
        }
        Ok(Self {
            activity: stored()?,
            replayed: true,
        })
    }
}

/// A purchase as a caller sent it.
#[derive(Debug, Clone, Default)]
pub struct PurchaseInput {
    /// Idempotency key.
    pub idempotency_key: String,
    /// The customer id as sent.
    pub customer_id: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Currency code.
    pub currency: String,
    /// Business time; required.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Brand.
    pub brand: String,
    /// Sales channel.
    pub sales_channel: String,
    /// Store.
    pub store_id: String,
    /// Line items.
    pub line_items: Vec<LineItem>,
}

/// A refund as a caller sent it.
#[derive(Debug, Clone, Default)]
pub struct RefundInput {
    /// Idempotency key.
    pub idempotency_key: String,
    /// The customer id as sent.
    pub customer_id: String,
    /// The purchase id as sent.
    pub purchase_id: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Currency code.
    pub currency: String,
    /// Business time; required.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A validated purchase, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPurchase {
    /// The id to assign.
    pub id: Uuid,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Digest of the content, to tell retries from conflicts.
    pub fingerprint: [u8; 32],
    /// The customer.
    pub customer_id: Uuid,
    /// Amount.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Recording time.
    pub recorded_at: DateTime<Utc>,
    /// Brand.
    pub brand: String,
    /// Sales channel.
    pub sales_channel: String,
    /// Store.
    pub store_id: String,
    /// Line items.
    pub line_items: Vec<LineItem>,
}

impl NewPurchase {
    /// The activity this purchase becomes once stored (what a store returns without reading
    /// the row back): times in whole microseconds, as both backends keep them.
    pub fn as_stored(&self) -> Activity {
        use chrono::SubsecRound;
        Activity {
            id: self.id,
            customer_id: self.customer_id,
            kind: ActivityKind::Purchase,
            idempotency_key: self.idempotency_key.clone(),
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
            occurred_at: self.occurred_at.trunc_subsecs(6),
            recorded_at: self.recorded_at.trunc_subsecs(6),
            brand: self.brand.clone(),
            sales_channel: self.sales_channel.clone(),
            store_id: self.store_id.clone(),
            line_items: self.line_items.clone(),
            refunded_purchase_id: None,
            refunded_amount_minor: 0,
            purchase_occurred_at: self.occurred_at.trunc_subsecs(6),
        }
    }
}

/// A validated refund, ready to store; the checks against its purchase happen in the same
/// transaction that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// The id to assign.
    pub id: Uuid,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Digest of the content.
    pub fingerprint: [u8; 32],
    /// The customer.
    pub customer_id: Uuid,
    /// The purchase refunded.
    pub purchase_id: Uuid,
    /// Amount.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Recording time.
    pub recorded_at: DateTime<Utc>,
}

/// Parses an id field, recording a violation when it is not a UUID.
pub fn parse_id(violations: &mut Violations, field: &str, value: &str) -> Uuid {
    if value.is_empty() {
        violations.add(field, "is required");
        return Uuid::nil();
    }
    Uuid::parse_str(value).unwrap_or_else(|_| {
        violations.add(field, "is not a valid id");
        Uuid::nil()
    })
}

fn check_money(violations: &mut Violations, prefix: &str, amount_minor: i64, currency: &str) {
    if amount_minor <= 0 {
        violations.add(
            format!("{prefix}.amount_minor"),
            "must be a positive number of minor units",
        );
    } else if amount_minor > MAX_AMOUNT_MINOR {
        violations.add(
            format!("{prefix}.amount_minor"),
            format!("must be at most {MAX_AMOUNT_MINOR}"),
        );
    }
    if !is_iso_4217(currency) {
        violations.add(
            format!("{prefix}.currency"),
            "must be an ISO 4217 code such as KRW or USD",
        );
    }
}

fn check_occurred_at(
    violations: &mut Violations,
    value: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    skew: chrono::Duration,
) -> DateTime<Utc> {
    match value {
        Some(occurred_at) => {
            violations.not_future("occurred_at", occurred_at, now, skew);
            occurred_at
        }
        None => {
            violations.add("occurred_at", "is required");
            now
        }
    }
}

fn optional_text(violations: &mut Violations, field: &str, value: &str) -> String {
    let value = value.trim().to_owned();
    if !value.is_empty() {
        violations.text(field, &value, 1, 64);
    }
    value
}

/// Feeds every field into the digest with a length prefix, so that no two different contents
/// hash the same bytes.
struct Fingerprint(Sha256);

impl Fingerprint {
    fn new(kind: ActivityKind) -> Self {
        let mut digest = Sha256::new();
        digest.update(kind.as_str().as_bytes());
        Self(digest)
    }

    fn text(mut self, value: &str) -> Self {
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }

    fn number(mut self, value: i64) -> Self {
        self.0.update(value.to_le_bytes());
        self
    }

    fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl PurchaseInput {
    /// Validates the purchase, or lists every bad field.
    pub fn validate(
        self,
        now: DateTime<Utc>,
        skew: chrono::Duration,
    ) -> Result<NewPurchase, CustomerError> {
        let mut violations = Violations::default();
        violations.token("idempotency_key", &self.idempotency_key, 1, 128);
        let customer_id = parse_id(&mut violations, "customer_id", &self.customer_id);
        check_money(&mut violations, "amount", self.amount_minor, &self.currency);
        let occurred_at = check_occurred_at(&mut violations, self.occurred_at, now, skew);
        let brand = optional_text(&mut violations, "brand", &self.brand);
        let sales_channel = optional_text(&mut violations, "sales_channel", &self.sales_channel);
        let store_id = optional_text(&mut violations, "store_id", &self.store_id);
        if self.line_items.len() > MAX_LINE_ITEMS {
            violations.add("line_items", format!("at most {MAX_LINE_ITEMS} line items"));
        }
        for (index, item) in self.line_items.iter().enumerate() {
            violations.text(
                &format!("line_items[{index}].category"),
                item.category.trim(),
                1,
                64,
            );
            if !item.sku.is_empty() {
                violations.text(&format!("line_items[{index}].sku"), &item.sku, 1, 64);
            }
            if item.quantity < 1 {
                violations.add(format!("line_items[{index}].quantity"), "must be 1 or more");
            }
            if !(0..=MAX_AMOUNT_MINOR).contains(&item.amount_minor) {
                violations.add(
                    format!("line_items[{index}].amount_minor"),
                    "must be 0 or more",
                );
            }
        }
        violations.into_result()?;

        let mut fingerprint = Fingerprint::new(ActivityKind::Purchase)
            .text(&customer_id.to_string())
            .number(self.amount_minor)
            .text(&self.currency)
            .number(occurred_at.timestamp_micros())
            .text(&brand)
            .text(&sales_channel)
            .text(&store_id)
            .number(self.line_items.len() as i64);
        for item in &self.line_items {
            fingerprint = fingerprint
                .text(item.category.trim())
                .text(&item.sku)
                .number(i64::from(item.quantity))
                .number(item.amount_minor);
        }
        Ok(NewPurchase {
            id: Uuid::now_v7(),
            fingerprint: fingerprint.finish(),
            idempotency_key: self.idempotency_key,
            customer_id,
            amount_minor: self.amount_minor,
            currency: self.currency,
            occurred_at,
            recorded_at: now,
            brand,
            sales_channel,
            store_id,
            line_items: self
                .line_items
                .into_iter()
                .map(|item| LineItem {
                    category: item.category.trim().to_owned(),
                    ..item
                })
                .collect(),
        })
    }
}

impl RefundInput {
    /// Validates the refund on its own; the purchase-dependent rules are checked when storing.
    pub fn validate(
        self,
        now: DateTime<Utc>,
        skew: chrono::Duration,
    ) -> Result<NewRefund, CustomerError> {
        let mut violations = Violations::default();
        violations.token("idempotency_key", &self.idempotency_key, 1, 128);
        let customer_id = parse_id(&mut violations, "customer_id", &self.customer_id);
        let purchase_id = parse_id(&mut violations, "purchase_id", &self.purchase_id);
        check_money(&mut violations, "amount", self.amount_minor, &self.currency);
        let occurred_at = check_occurred_at(&mut violations, self.occurred_at, now, skew);
        violations.into_result()?;
        let fingerprint = Fingerprint::new(ActivityKind::Refund)
            .text(&customer_id.to_string())
            .text(&purchase_id.to_string())
            .number(self.amount_minor)
            .text(&self.currency)
            .number(occurred_at.timestamp_micros())
            .finish();
        Ok(NewRefund {
            id: Uuid::now_v7(),
            idempotency_key: self.idempotency_key,
            fingerprint,
            customer_id,
            purchase_id,
            amount_minor: self.amount_minor,
            currency: self.currency,
            occurred_at,
            recorded_at: now,
        })
    }
}

/// Why a refund cannot be applied to its purchase; checked inside the recording transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRefusal {
    /// The referenced activity is a refund, not a purchase.
    NotAPurchase,
    /// The purchase belongs to another customer.
    OtherCustomer,
    /// Currency differs from the purchase's.
    CurrencyMismatch {
        /// The purchase's currency.
        expected: String,
    },
    /// The refund is dated before its purchase.
    BeforePurchase,
    /// More than what remains unrefunded.
    ExceedsRemaining {
        /// What remains, minor units.
        remaining_minor: i64,
    },
}

/// The part of a purchase a refund is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundTarget {
    /// Purchase or refund.
    pub kind: ActivityKind,
    /// Owner.
    pub customer_id: Uuid,
    /// Amount.
    pub amount_minor: i64,
    /// Already refunded.
    pub refunded_amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
}

impl NewRefund {
    /// The business rules of a refund against its (locked) purchase.
    pub fn check_against(&self, target: &RefundTarget) -> Result<(), RefundRefusal> {
        if target.kind != ActivityKind::Purchase {
            return Err(RefundRefusal::NotAPurchase);
        }
        if target.customer_id != self.customer_id {
            return Err(RefundRefusal::OtherCustomer);
        }
        if target.currency != self.currency {
            return Err(RefundRefusal::CurrencyMismatch {
                expected: target.currency.clone(),
            });
        }
        if self.occurred_at < target.occurred_at {
            return Err(RefundRefusal::BeforePurchase);
        }
        let remaining_minor = target.amount_minor - target.refunded_amount_minor;
        if self.amount_minor > remaining_minor {
            return Err(RefundRefusal::ExceedsRemaining { remaining_minor });
        }
        Ok(())
    }
}

impl From<RefundRefusal> for CustomerError {
    fn from(refusal: RefundRefusal) -> Self {
        use tierline_runtime::status::FieldViolation;
        match refusal {
            RefundRefusal::NotAPurchase => Self::InvalidArgument(vec![FieldViolation::new(
                "purchase_id",
                "refers to a refund, not a purchase",
            )]),
            RefundRefusal::OtherCustomer => Self::InvalidArgument(vec![FieldViolation::new(
                "purchase_id",
                "belongs to another customer",
            )]),
            RefundRefusal::CurrencyMismatch { expected } => {
                Self::InvalidArgument(vec![FieldViolation::new(
                    "amount.currency",
                    format!("must be the purchase's currency, {expected}"),
                )])
            }
            RefundRefusal::BeforePurchase => Self::InvalidArgument(vec![FieldViolation::new(
                "occurred_at",
                "must not be before the purchase",
            )]),
            RefundRefusal::ExceedsRemaining { remaining_minor } => {
                Self::RefundExceedsPurchase { remaining_minor }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn skew() -> chrono::Duration {
        chrono::Duration::minutes(5)
    }

    fn purchase() -> PurchaseInput {
        PurchaseInput {
            idempotency_key: "pos-1-0001".into(),
            customer_id: Uuid::now_v7().to_string(),
            amount_minor: 35_000,
            currency: "KRW".into(),
            occurred_at: Some(now() - chrono::Duration::days(40)),
            brand: "innisfree".into(),
            line_items: vec![LineItem {
                category: "skincare".into(),
                sku: "GT-1".into(),
                quantity: 1,
                amount_minor: 35_000,
            }],
            ..PurchaseInput::default()
        }
    }

    fn violated_fields(error: CustomerError) -> Vec<String> {
        match error {
            CustomerError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn same_content_same_fingerprint_and_any_change_differs() {
        let input = purchase();
        let a = input.clone().validate(now(), skew()).expect("valid");
        let b = input
            .clone()
            .validate(now() + chrono::Duration::seconds(3), skew())
            .expect("valid");
        assert_eq!(
            a.fingerprint, b.fingerprint,
            "recording time is not content"
        );
        let changed = PurchaseInput {
            amount_minor: 35_001,
            ..input.clone()
        }
        .validate(now(), skew())
        .expect("valid");
        assert_ne!(a.fingerprint, changed.fingerprint);
        let moved = PurchaseInput {
            brand: "innisfre".into(),
            store_id: "e".into(),
            ..input
        }
        .validate(now(), skew())
        .expect("valid");
        assert_ne!(a.fingerprint, moved.fingerprint);
    }

    #[test]
    fn purchase_rules_name_each_field() {
        let input = PurchaseInput {
            idempotency_key: String::new(),
            customer_id: "not-an-id".into(),
            amount_minor: 0,
            currency: "WON".into(),
            occurred_at: Some(now() + chrono::Duration::hours(1)),
            line_items: vec![LineItem {
                category: String::new(),
                sku: String::new(),
                quantity: 0,
                amount_minor: -1,
            }],
            ..PurchaseInput::default()
        };
        assert_eq!(
            violated_fields(input.validate(now(), skew()).expect_err("invalid")),
            [
                "idempotency_key",
                "customer_id",
                "amount.amount_minor",
                "amount.currency",
                "occurred_at",
                "line_items[0].category",
                "line_items[0].quantity",
                "line_items[0].amount_minor"
            ]
        );
    }

    #[test]
    fn late_events_are_fine_and_small_skew_is_tolerated() {
        let late = PurchaseInput {
            occurred_at: Some(now() - chrono::Duration::days(400)),
            ..purchase()
        };
        assert!(late.validate(now(), skew()).is_ok());
        let skewed = PurchaseInput {
            occurred_at: Some(now() + chrono::Duration::minutes(4)),
            ..purchase()
        };
        assert!(skewed.validate(now(), skew()).is_ok());
        let missing = PurchaseInput {
            occurred_at: None,
            ..purchase()
        };
        assert_eq!(
            violated_fields(missing.validate(now(), skew()).expect_err("invalid")),
            ["occurred_at"]
        );
    }

    #[test]
    fn refund_rules_against_the_purchase() {
        let customer_id = Uuid::now_v7();
        let refund = RefundInput {
            idempotency_key: "r-1".into(),
            customer_id: customer_id.to_string(),
            purchase_id: Uuid::now_v7().to_string(),
            amount_minor: 10_000,
            currency: "KRW".into(),
            occurred_at: Some(now()),
        }
        .validate(now(), skew())
        .expect("valid");
        let target = RefundTarget {
            kind: ActivityKind::Purchase,
            customer_id,
            amount_minor: 35_000,
            refunded_amount_minor: 20_000,
            currency: "KRW".into(),
            occurred_at: now() - chrono::Duration::days(1),
        };
        assert_eq!(refund.check_against(&target), Ok(()));
        assert_eq!(
            refund.check_against(&RefundTarget {
                refunded_amount_minor: 30_000,
                ..target.clone()
            }),
            Err(RefundRefusal::ExceedsRemaining {
                remaining_minor: 5_000
            })
        );
        assert_eq!(
            refund.check_against(&RefundTarget {
                currency: "USD".into(),
                ..target.clone()
            }),
            Err(RefundRefusal::CurrencyMismatch {
                expected: "USD".into()
            })
        );
        assert_eq!(
            refund.check_against(&RefundTarget {
                customer_id: Uuid::now_v7(),
                ..target.clone()
            }),
            Err(RefundRefusal::OtherCustomer)
        );
        assert_eq!(
            refund.check_against(&RefundTarget {
                occurred_at: now() + chrono::Duration::seconds(1),
                ..target.clone()
            }),
            Err(RefundRefusal::BeforePurchase)
        );
        assert_eq!(
            refund.check_against(&RefundTarget {
                kind: ActivityKind::Refund,
                ..target
            }),
            Err(RefundRefusal::NotAPurchase)
        );
    }
}
