//! The year of purchases, imported through the customer service's streaming import in batches
//! (as a nightly POS upload would), then a few refunds, then one purchase a minute ago, whose
//! arrival in the scoring service tells that everything before it has been counted (the activity
//! feed is delivered in order).

use std::time::Duration;

use chrono::Utc;
use rand::{Rng, rngs::StdRng};
use tierline_proto::{common::v1::Money, customer::v1 as pb, scoring::v1 as scoring};

use super::{
    ScoringClient,
    business::{Person, Sale},
    progress::Progress,
    until,
};
use crate::{connect::Endpoints, exit::Failure};

/// Items per import batch (one transaction each).
const BATCH: usize = 1_000;

/// Share of purchases later refunded, in per mille.
const REFUNDED_PER_MILLE: u32 = 20;

/// The purchase whose arrival in the scoring service marks the import as counted.
#[derive(Debug, Clone)]
pub(crate) struct LastPurchase {
    pub(crate) customer_id: String,
    pub(crate) activity_id: String,
}

pub(super) use tierline_proto::time::timestamp;

fn won(amount_minor: i64) -> Option<Money> {
    Some(Money {
        amount_minor,
        currency: "KRW".into(),
    })
}

fn purchase(key: String, customer_id: &str, sale: &Sale) -> pb::RecordPurchaseRequest {
    pb::RecordPurchaseRequest {
        idempotency_key: key,
        customer_id: customer_id.to_owned(),
        amount: won(sale.amount_minor),
        occurred_at: Some(timestamp(sale.occurred_at)),
        brand: sale.brand.into(),
        sales_channel: sale.sales_channel.into(),
        store_id: String::new(),
        line_items: Vec::new(),
    }
}

/// Streams `items` in batches and returns each item's activity id (empty when rejected).
async fn stream(
    endpoints: &Endpoints,
    step: &'static str,
    items: Vec<pb::ImportItem>,
) -> Result<Vec<String>, Failure> {
    let mut progress = Progress::start(step, items.len() as u64);
    let batches: Vec<pb::ImportActivitiesRequest> = items
        .chunks(BATCH)
        .map(|chunk| pb::ImportActivitiesRequest {
            items: chunk.to_vec(),
        })
        .collect();
    let mut responses = endpoints
        .customer()?
        .import_activities(tokio_stream::iter(batches))
        .await?
        .into_inner();
    let mut ids = Vec::with_capacity(items.len());
    while let Some(response) = responses.message().await? {
        if let Some(rejected) = response
            .results
            .iter()
            .find(|result| result.outcome == pb::ImportOutcome::Rejected as i32)
        {
            return Err(Failure::Other(anyhow::anyhow!(
                "the customer service refused a demo activity: {} {}",
                rejected.field,
                rejected.reason
            )));
        }
        progress.advance(response.results.len() as u64);
        ids.extend(
            response
                .results
                .into_iter()
                .map(|result| result.activity_id),
        );
    }
    progress.finish();
    Ok(ids)
}

/// Imports the history, refunds some of it, and records one last purchase.
pub(crate) async fn import(
    endpoints: &Endpoints,
    customer_ids: &[String],
    people: &[Person],
    history: &[Sale],
    rng: &mut StdRng,
) -> Result<LastPurchase, Failure> {
    let items = history
        .iter()
        .enumerate()
        .map(|(index, sale)| pb::ImportItem {
            item: Some(pb::import_item::Item::Purchase(purchase(
                format!("demo-sale-{index}"),
                &customer_ids[sale.person],
                sale,
            ))),
        })
        .collect();
    let purchase_ids = stream(endpoints, "purchases", items).await?;

    let now = Utc::now();
    let mut refunds = Vec::new();
    for (index, (sale, purchase_id)) in history.iter().zip(&purchase_ids).enumerate() {
        if !rng.random_ratio(REFUNDED_PER_MILLE, 1_000) {
            continue;
        }
        // Returned within two weeks; some only in part.
        let at = (sale.occurred_at + chrono::Duration::days(rng.random_range(1..14)))
            .min(now - chrono::Duration::minutes(5))
            .max(sale.occurred_at);
        let amount = if rng.random_bool(0.7) {
            sale.amount_minor
        } else {
            sale.amount_minor / 2
        };
        refunds.push(pb::ImportItem {
            item: Some(pb::import_item::Item::Refund(pb::RecordRefundRequest {
                idempotency_key: format!("demo-refund-{index}"),
                customer_id: customer_ids[sale.person].clone(),
                purchase_id: purchase_id.clone(),
                amount: won(amount.max(1)),
                occurred_at: Some(timestamp(at)),
            })),
        });
    }
    stream(endpoints, "refunds", refunds).await?;

    // Customer demo-00042 buys once more, a minute ago.
    let devoted = 42.min(people.len() - 1);
    let last = Sale {
        person: devoted,
        amount_minor: 64_000,
        occurred_at: now - chrono::Duration::minutes(1),
        brand: "innisfree",
        sales_channel: "app",
    };
    let recorded = endpoints
        .customer()?
        .record_purchase(purchase(
            "demo-sale-last".into(),
            &customer_ids[devoted],
            &last,
        ))
        .await?
        .into_inner();
    Ok(LastPurchase {
        customer_id: customer_ids[devoted].clone(),
        activity_id: recorded.activity.map(|a| a.id).unwrap_or_default(),
    })
}

/// Waits until the scoring service has counted `last` in `program_id` (and so everything before
/// it).
pub(crate) async fn counted(
    client: &mut ScoringClient,
    program_id: &str,
    last: &LastPurchase,
) -> Result<(), Failure> {
    let progress = Progress::start("tiers from the activity feed", 1);
    until(
        "the scoring service to count the purchases",
        Duration::from_secs(300),
        || {
            let mut client = client.clone();
            async move {
                let explanation = client
                    .explain_tier(scoring::ExplainTierRequest {
                        program_id: program_id.to_owned(),
                        customer_id: last.customer_id.clone(),
                        max_history: Some(1),
                        max_activities: Some(1),
                    })
                    .await;
                match explanation {
                    Ok(explanation) => Ok(explanation
                        .into_inner()
                        .activities
                        .first()
                        .is_some_and(|newest| newest.activity_id == last.activity_id)
                        .then_some(())),
                    // Not a member yet: the feed has not reached them.
                    Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
                    Err(status) => Err(status.into()),
                }
            }
        },
    )
    .await?;
    progress.finish();
    Ok(())
}
