//! How one activity changes a customer's monthly buckets in one program.
//!
//! A purchase counts when its currency is the program's and its brand and sales channel are in
//! the program's scope. It adds its amount to the net spend of its month, one purchase, and points
//! at the earn rate of the tier shown when it is applied. A refund counts when its purchase did:
//! it lands in the purchase's month, takes back its amount and the same share of the purchase's
//! points, and takes back the purchase from the count once the purchase is fully refunded.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::{month::Month, program::Program, window::Bucket};

/// A purchase that counts toward a program, as the scoring service keeps it (for refunds, for
/// explanations, and to rebuild buckets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedPurchase {
    /// The customer service's activity id.
    pub activity_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Its bucket.
    pub month: Month,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// Points it earned.
    pub points: i64,
    /// Brand.
    pub brand: String,
    /// Sales channel.
    pub sales_channel: String,
}

impl CountedPurchase {
    /// What the purchase contributes now, refunds netted: (net spend, points, purchase count).
    pub fn contribution(&self) -> (i64, i64, i64) {
        let points_back = if self.amount_minor == 0 {
            0
        } else {
            i64::try_from(
                i128::from(self.points) * i128::from(self.refunded_minor)
                    / i128::from(self.amount_minor),
            )
            .unwrap_or(0)
        };
        let counted = i64::from(self.refunded_minor < self.amount_minor);
        (
            self.amount_minor - self.refunded_minor,
            self.points - points_back,
            counted,
        )
    }
}

/// A change to one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketDelta {
    /// The bucket.
    pub month: Month,
    /// Net spend change.
    pub net_spend_minor: i64,
    /// Points change.
    pub points: i64,
    /// Purchase count change.
    pub purchases: i64,
}

impl BucketDelta {
    /// Adds the change to `buckets` (oldest first, each month once): to its month's bucket, or
    /// as a new bucket in its place. Says whether the month had a bucket.
    pub fn add_to(&self, buckets: &mut Vec<Bucket>) -> bool {
        match buckets.binary_search_by_key(&self.month, |bucket| bucket.month) {
            Ok(index) => {
                let bucket = &mut buckets[index];
                bucket.net_spend_minor += self.net_spend_minor;
                bucket.points += self.points;
                bucket.purchases += self.purchases;
                true
            }
            Err(index) => {
                buckets.insert(
                    index,
                    Bucket {
                        month: self.month,
                        net_spend_minor: self.net_spend_minor,
                        points: self.points,
                        purchases: self.purchases,
                    },
                );
                false
            }
        }
    }
}

/// A purchase as the feed delivers it.
#[derive(Debug, Clone)]
pub struct PurchaseEvent {
    /// Activity id.
    pub activity_id: Uuid,
    /// Customer.
    pub customer_id: Uuid,
    /// Amount.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// Brand.
    pub brand: String,
    /// Sales channel.
    pub sales_channel: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
}

/// Points for `amount_minor` at `rate_bps` basis points, rounded down.
pub fn points(amount_minor: i64, rate_bps: i64) -> i64 {
    i64::try_from(i128::from(amount_minor) * i128::from(rate_bps) / 10_000).unwrap_or(i64::MAX)
}

/// What a purchase does to `program`, or `None` when it does not count there.
pub fn purchase_effect(
    program: &Program,
    zone: Tz,
    rate_bps: i64,
    event: &PurchaseEvent,
) -> Option<(CountedPurchase, BucketDelta)> {
    if event.currency != program.currency
        || !program.scope.covers(&event.brand, &event.sales_channel)
    {
        return None;
    }
    let month = Month::of(event.occurred_at, zone);
    let earned = points(event.amount_minor, rate_bps);
    let counted = CountedPurchase {
        activity_id: event.activity_id,
        customer_id: event.customer_id,
        occurred_at: event.occurred_at,
        month,
        amount_minor: event.amount_minor,
        refunded_minor: 0,
        points: earned,
        brand: event.brand.clone(),
        sales_channel: event.sales_channel.clone(),
    };
    Some((
        counted,
        BucketDelta {
            month,
            net_spend_minor: event.amount_minor,
            points: earned,
            purchases: 1,
        },
    ))
}

/// What a refund of `refund_minor` does to the counted purchase; returns the purchase's new
/// refunded total and the delta for its month. Points come back in proportion, so that the sum of
/// all refunds of a purchase takes back exactly its points.
pub fn refund_effect(purchase: &CountedPurchase, refund_minor: i64) -> (i64, BucketDelta) {
    let before = purchase.refunded_minor;
    let after = (before + refund_minor).min(purchase.amount_minor);
    let points_back = |refunded: i64| {
        if purchase.amount_minor == 0 {
            0
        } else {
            i64::try_from(
                i128::from(purchase.points) * i128::from(refunded)
                    / i128::from(purchase.amount_minor),
            )
            .unwrap_or(0)
        }
    };
    let fully_refunded_now = after == purchase.amount_minor && before < purchase.amount_minor;
    let delta = BucketDelta {
        month: purchase.month,
        net_spend_minor: -(after - before),
        points: -(points_back(after) - points_back(before)),
        purchases: if fully_refunded_now { -1 } else { 0 },
    };
    (after, delta)
}

/// An event of the customer service's feed, as the scoring service needs it.
#[derive(Debug, Clone)]
pub enum UpstreamEvent {
    /// A customer was created.
    CustomerCreated {
        /// The customer.
        customer_id: Uuid,
        /// When they joined.
        joined_at: DateTime<Utc>,
    },
    /// A customer was erased.
    CustomerErased {
        /// The customer.
        customer_id: Uuid,
    },
    /// A purchase.
    Purchase(PurchaseEvent),
    /// A refund.
    Refund {
        /// The refund's activity id.
        activity_id: Uuid,
        /// The customer.
        customer_id: Uuid,
        /// The purchase refunded.
        purchase_id: Uuid,
        /// Amount refunded.
        amount_minor: i64,
    },
}

impl UpstreamEvent {
    /// The customer the event is about: everything an event changes belongs to them.
    pub fn customer_id(&self) -> Uuid {
        match self {
            Self::CustomerCreated { customer_id, .. }
            | Self::CustomerErased { customer_id }
            | Self::Refund { customer_id, .. } => *customer_id,
            Self::Purchase(purchase) => purchase.customer_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::program::{Scope, tests::innisfree};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn event(amount: i64, currency: &str, brand: &str) -> PurchaseEvent {
        PurchaseEvent {
            activity_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            amount_minor: amount,
            currency: currency.into(),
            brand: brand.into(),
            sales_channel: "store".into(),
            occurred_at: at("2026-03-31T16:00:00Z"),
        }
    }

    #[test]
    fn a_purchase_counts_in_its_local_month_with_points_at_the_tier_rate() {
        let program = innisfree();
        let (counted, delta) = purchase_effect(
            &program,
            chrono_tz::Asia::Seoul,
            150,
            &event(35_000, "KRW", "innisfree"),
        )
        .expect("counts");
        assert_eq!(
            delta.month.to_string(),
            "2026-04",
            "already April 1st in Seoul"
        );
        assert_eq!(
            (delta.net_spend_minor, delta.points, delta.purchases),
            (35_000, 525, 1)
        );
        assert_eq!(counted.points, 525);
    }

    #[test]
    fn other_currencies_and_brands_outside_the_scope_do_not_count() {
        let mut program = innisfree();
        assert!(
            purchase_effect(&program, chrono_tz::UTC, 0, &event(100, "USD", "innisfree")).is_none()
        );
        program.scope = Scope {
            brands: vec!["innisfree".into()],
            sales_channels: vec![],
        };
        assert!(
            purchase_effect(&program, chrono_tz::UTC, 0, &event(100, "KRW", "etude")).is_none()
        );
        assert!(
            purchase_effect(&program, chrono_tz::UTC, 0, &event(100, "KRW", "innisfree")).is_some()
        );
    }

    #[test]
    fn refunds_take_back_spend_points_and_finally_the_purchase() {
        let program = innisfree();
        let (mut counted, _) =
            purchase_effect(&program, chrono_tz::UTC, 1_000, &event(999, "KRW", "x"))
                .expect("counts");
        assert_eq!(counted.points, 99);
        let mut points_back = 0;
        for refund in [333, 333, 333] {
            let (refunded, delta) = refund_effect(&counted, refund);
            counted.refunded_minor = refunded;
            points_back -= delta.points;
            assert_eq!(delta.month, counted.month, "in the purchase's month");
            assert_eq!(delta.purchases, if refunded == 999 { -1 } else { 0 });
        }
        assert_eq!(
            points_back, 99,
            "exactly the points earned, despite rounding"
        );
        let (refunded, delta) = refund_effect(&counted, 1);
        assert_eq!(
            (refunded, delta.net_spend_minor, delta.purchases),
            (999, 0, 0),
            "nothing left to refund"
        );
    }
}
