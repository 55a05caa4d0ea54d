//! Attribution: which campaign entries a purchase counts for. A purchase counts for an entry of
//! its customer when it happened within the entry's window [entered, entered + window days), is
//! in the program's currency and within the program's scope (brands, sales channels). A refund
//! nets against the purchases it refunds wherever they were attributed. Applying is exactly
//! once: attributed purchases and applied refunds are keyed by activity id, and the feed cursor is
//! stored in the same transaction.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::campaign::ProgramFacts;
use crate::{
    CampaignError,
    storage::{AttributionTarget, CampaignStore},
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

/// Applies batches of the activity feed.
#[derive(Debug, Clone)]
pub struct Attributor {
    store: Arc<dyn CampaignStore>,
}

impl Attributor {
    /// An attributor over `store`.
    pub fn new(store: Arc<dyn CampaignStore>) -> Self {
        Self { store }
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
        // While held, no enrolment commits: every member whose window could hold these
        // purchases is visible, and later members enter after them.
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
    use chrono::Duration;

    use super::*;

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
