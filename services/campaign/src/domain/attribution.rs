//! Attribution: which campaign entries a purchase counts for. A purchase counts for an entry of
//! its customer when it happened within the entry's window [entered, entered + window days), is
//! in the program's currency and within the program's scope (brands, sales channels). A refund
//! nets against the purchases it refunds wherever they were attributed. Applying is exactly
//! once: attributed purchases and applied refunds are keyed by activity id, and the feed cursor is
//! stored in the same transaction.
//!
//! A purchase may be dated up to the customer service's clock skew ahead of the time it is
//! recorded, so it can reach attribution before its own date. A batch then waits until the
//! clock has passed the date of its latest purchase before it reads the members (see
//! [`wait_for_purchase_dates`]): an entry made while it waits is read, an entry made after lies
//! after every purchase of the batch. Without the wait, an entry made between the batch and the
//! purchase's date would never count the purchase.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::campaign::ProgramFacts;
use crate::{
    CampaignError,
    domain::ports::{AttributionTarget, CampaignStore},
};

/// The consumer name of the activity feed's cursor.
pub const ACTIVITY_CONSUMER: &str = "activities";

/// A purchase from the activity feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    /// Activity id.
    pub id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Its currency.
    pub currency: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Brand.
    pub brand: String,
    /// Sales channel.
    pub sales_channel: String,
}

/// A refund from the activity feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Activity id.
    pub id: Uuid,
    /// The purchase it refunds.
    pub purchase_id: Uuid,
    /// Amount in minor units.
    pub amount_minor: i64,
}

/// One event of the activity feed, as attribution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityEvent {
    /// A purchase.
    Purchase(Purchase),
    /// A refund.
    Refund(Refund),
}

fn in_scope(purchase: &Purchase, program: &ProgramFacts) -> bool {
    purchase.currency == program.currency
        && (program.brands.is_empty() || program.brands.contains(&purchase.brand))
        && (program.sales_channels.is_empty()
            || program.sales_channels.contains(&purchase.sales_channel))
}

/// The entries each purchase counts for.
pub fn attribute(
    purchases: &[&Purchase],
    targets: &[(AttributionTarget, ProgramFacts)],
) -> Vec<(Uuid, AttributionTarget, i64)> {
    let mut by_customer: HashMap<Uuid, Vec<&(AttributionTarget, ProgramFacts)>> = HashMap::new();
    for target in targets {
        by_customer
            .entry(target.0.customer_id)
            .or_default()
            .push(target);
    }
    let mut attributed = Vec::new();
    for purchase in purchases {
        for (target, program) in by_customer.get(&purchase.customer_id).into_iter().flatten() {
            if purchase.occurred_at >= target.entered_at
                && purchase.occurred_at < target.attribution_ends_at
                && in_scope(purchase, program)
            {
                attributed.push((purchase.id, target.clone(), purchase.amount_minor));
            }
        }
    }
    attributed
}

/// Entries are stamped to the microsecond; a batch waits this much past its latest purchase so
/// that an entry stamped after the wait lies strictly after it.
const PAST_THE_DATE: Duration = Duration::milliseconds(1);

/// How long a batch whose latest purchase is dated `latest` must wait at `now` before it reads
/// the members: until the clock is past that date, and at most `clock_skew` (how far ahead the
/// customer service accepts a date; a purchase dated further ahead of this replica's clock means
/// the clocks disagree). `None` when the date has passed.
pub fn wait_for_purchase_dates(
    latest: DateTime<Utc>,
    now: DateTime<Utc>,
    clock_skew: Duration,
) -> Option<std::time::Duration> {
    let until = latest + PAST_THE_DATE;
    (until > now).then(|| {
        (until - now)
            .min(clock_skew.max(Duration::zero()) + PAST_THE_DATE)
            .to_std()
            .unwrap_or_default()
    })
}

/// Applies batches of the activity feed.
#[derive(Debug, Clone)]
pub struct Attributor {
    store: Arc<dyn CampaignStore>,
    clock_skew: Duration,
}

impl Attributor {
    /// An attributor over `store`; purchases may be dated up to `clock_skew` ahead
    /// (`TIERLINE_CLOCK_SKEW`, as the customer service's).
    pub fn new(store: Arc<dyn CampaignStore>, clock_skew: Duration) -> Self {
        Self { store, clock_skew }
    }

    /// Where the last applied batch ended.
    pub async fn cursor(&self) -> Result<Option<String>, CampaignError> {
        self.store.cursor(ACTIVITY_CONSUMER).await
    }

    /// Applies a batch of events and stores `position` with the effects.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply(
        &self,
        events: &[ActivityEvent],
        position: &str,
    ) -> Result<(), CampaignError> {
        let purchases: Vec<&Purchase> = events
            .iter()
            .filter_map(|event| match event {
                ActivityEvent::Purchase(purchase) => Some(purchase),
                ActivityEvent::Refund(_) => None,
            })
            .collect();
        let refunds: Vec<(Uuid, Uuid, i64)> = events
            .iter()
            .filter_map(|event| match event {
                ActivityEvent::Refund(refund) => {
                    Some((refund.id, refund.purchase_id, refund.amount_minor))
                }
                ActivityEvent::Purchase(_) => None,
            })
            .collect();
        // Wait (without the lock: enrolments go on) until the clock has passed every purchase's
        // date. Then, while the lock is held, no enrolment commits: every member whose window
        // could hold these purchases is visible, and members entering later are stamped after
        // the lock was taken, so after every purchase of the batch. (Cancelled with the feed:
        // nothing is written before the wait ends.)
        if let Some(latest) = purchases.iter().map(|p| p.occurred_at).max() {
            let now = Utc::now();
            if latest - now > self.clock_skew {
                tracing::warn!(
                    %latest,
                    %now,
                    "a purchase is dated further ahead than TIERLINE_CLOCK_SKEW: an entry made \
                     before its date but after the wait may not count it"
                );
            }
            if let Some(wait) = wait_for_purchase_dates(latest, now, self.clock_skew) {
                tracing::debug!(?wait, "waiting for the date of a purchase dated ahead");
                tokio::time::sleep(wait).await;
            }
        }
        let _enrolments = self.store.hold_enrolments().await?;
        let attributed = match purchases.iter().map(|p| p.occurred_at).min() {
            Some(earliest) => {
                let mut customers: Vec<Uuid> = purchases.iter().map(|p| p.customer_id).collect();
                customers.sort_unstable();
                customers.dedup();
                let targets = self.store.attribution_targets(&customers, earliest).await?;
                attribute(&purchases, &targets)
            }
            None => Vec::new(),
        };
        self.store
            .apply_attribution(
                &attributed,
                &refunds,
                ACTIVITY_CONSUMER,
                position,
                Utc::now(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waits_for_the_date_of_its_latest_purchase_within_the_skew() {
        let now = Utc::now();
        let skew = Duration::minutes(5);
        let ms = std::time::Duration::from_millis;
        assert_eq!(
            wait_for_purchase_dates(now - Duration::seconds(1), now, skew),
            None
        );
        assert_eq!(wait_for_purchase_dates(now, now, skew), Some(ms(1)));
        assert_eq!(
            wait_for_purchase_dates(now + Duration::minutes(3), now, skew),
            Some(ms(180_001))
        );
        // Dated further ahead than the customer service accepts: the clocks disagree; the wait
        // is bounded all the same.
        assert_eq!(
            wait_for_purchase_dates(now + Duration::hours(1), now, skew),
            Some(ms(300_001))
        );
        assert_eq!(
            wait_for_purchase_dates(now + Duration::seconds(1), now, Duration::zero()),
            Some(ms(1))
        );
    }

    fn program(brands: &[&str]) -> ProgramFacts {
        ProgramFacts {
            currency: "KRW".into(),
            tier_codes: vec![],
            brands: brands.iter().map(|b| (*b).to_owned()).collect(),
            sales_channels: vec![],
        }
    }

    #[test]
    fn a_purchase_counts_inside_the_window_currency_and_scope_only() {
        let customer = Uuid::from_u128(1);
        let entered = Utc::now() - Duration::days(10);
        let target = AttributionTarget {
            campaign_id: Uuid::from_u128(9),
            customer_id: customer,
            entry: 1,
            entered_at: entered,
            attribution_ends_at: entered + Duration::days(7),
        };
        let purchase = |id: u128, days: i64, currency: &str, brand: &str| Purchase {
            id: Uuid::from_u128(id),
            customer_id: customer,
            amount_minor: 1_000,
            currency: currency.into(),
            occurred_at: entered + Duration::days(days),
            brand: brand.into(),
            sales_channel: "store".into(),
        };
        let inside = purchase(1, 1, "KRW", "innisfree");
        let before = purchase(2, -1, "KRW", "innisfree");
        let after = purchase(3, 7, "KRW", "innisfree");
        let foreign = purchase(4, 1, "USD", "innisfree");
        let other_brand = purchase(5, 1, "KRW", "other");
        let targets = [(target, program(&["innisfree"]))];
        let counted = attribute(
            &[&inside, &before, &after, &foreign, &other_brand],
            &targets,
        );
        assert_eq!(
            counted.iter().map(|c| c.0).collect::<Vec<_>>(),
            [Uuid::from_u128(1)]
        );
    }
}
