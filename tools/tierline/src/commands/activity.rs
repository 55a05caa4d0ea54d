//! `tierline activity`: one purchase or refund, or a CSV import through the streaming
//! `ImportActivities`, with progress and a summary of accepted, duplicate and rejected rows.
//! Exit code 2 when any row was rejected.

use tierline_proto::{common::v1::Money, customer::v1 as pb, prost_types::Timestamp};

use super::{csv_import::Batches, timestamp};
use crate::{cli::Activity, connect::Endpoints, exit::Failure, render::Render};

fn now() -> Timestamp {
    Timestamp::from(std::time::SystemTime::now())
}

/// The `--at` time, or now. The time is part of the request's idempotency fingerprint, so when
/// it was not given it is printed: a retry with the same key must repeat it.
fn at(flag: Option<String>) -> Result<Timestamp, Failure> {
    match flag {
        Some(text) => timestamp("--at", &text),
        None => {
            let now = now();
            eprintln!("occurred at {now} (to retry with the same --key, pass --at {now})");
            Ok(now)
        }
    }
}

pub(super) async fn run(
    endpoints: &Endpoints,
    render: Render,
    command: Activity,
) -> Result<(), Failure> {
    let mut client = endpoints.customer()?;
    match command {
        Activity::Purchase {
            customer,
            money,
            key,
            at: when,
            brand,
            sales_channel,
        } => {
            let recorded = client
                .record_purchase(pb::RecordPurchaseRequest {
                    idempotency_key: key,
                    customer_id: customer,
                    amount: Some(Money {
                        amount_minor: money.amount,
                        currency: money.currency,
                    }),
                    occurred_at: Some(at(when)?),
                    brand,
                    sales_channel,
                    ..Default::default()
                })
                .await?
                .into_inner();
            render.lines(&recorded, &[super::customer_card::recorded_line(&recorded)])
        }
        Activity::Refund {
            customer,
            purchase,
            money,
            key,
            at: when,
        } => {
            let recorded = client
                .record_refund(pb::RecordRefundRequest {
                    idempotency_key: key,
                    customer_id: customer,
                    purchase_id: purchase,
                    amount: Some(Money {
                        amount_minor: money.amount,
                        currency: money.currency,
                    }),
                    occurred_at: Some(at(when)?),
                })
                .await?
                .into_inner();
            render.lines(&recorded, &[super::customer_card::recorded_line(&recorded)])
        }
        Activity::Import { file, batch } => import(endpoints, render, &file, batch).await,
    }
}

/// The CSV columns, in this order.
const COLUMNS: [&str; 9] = [
    "kind",
    "key",
    "customer_id",
    "amount_minor",
    "currency",
    "occurred_at",
    "brand",
    "sales_channel",
    "purchase_id",
];

fn item(record: &csv::StringRecord, line: u64) -> Result<pb::ImportItem, Failure> {
    let field = |i: usize| record.get(i).unwrap_or("").trim().to_owned();
    let bad = |what: &str| Failure::Input(format!("line {line}: {what}"));
    let amount = Some(Money {
        amount_minor: field(3)
            .parse()
            .map_err(|_| bad("amount_minor is not a whole number"))?,
        currency: field(4),
    });
    let occurred_at =
        Some(timestamp("occurred_at", &field(5)).map_err(|_| bad("occurred_at is not RFC 3339"))?);
    let item = match field(0).as_str() {
        "purchase" => pb::import_item::Item::Purchase(pb::RecordPurchaseRequest {
            idempotency_key: field(1),
            customer_id: field(2),
            amount,
            occurred_at,
            brand: field(6),
            sales_channel: field(7),
            ..Default::default()
        }),
        "refund" => pb::import_item::Item::Refund(pb::RecordRefundRequest {
            idempotency_key: field(1),
            customer_id: field(2),
            purchase_id: field(8),
            amount,
            occurred_at,
        }),
        other => return Err(bad(&format!("kind {other:?} is not purchase or refund"))),
    };
    Ok(pb::ImportItem { item: Some(item) })
}

async fn import(
    endpoints: &Endpoints,
    render: Render,
    file: &str,
    batch: usize,
) -> Result<(), Failure> {
    let read = Batches::read(file, &COLUMNS, batch, item)?;
    let requests = read
        .batches
        .iter()
        .map(|items| pb::ImportActivitiesRequest {
            items: items.clone(),
        });
    let mut client = endpoints.customer()?;
    let mut responses = client
        .import_activities(tokio_stream::iter(requests.collect::<Vec<_>>()))
        .await?
        .into_inner();
    let mut tally = read.tally(&["accepted", "duplicates", "rejected"]);
    while let Some(response) = responses.message().await? {
        tally.add("accepted", response.accepted);
        tally.add("duplicates", response.duplicates);
        tally.add("rejected", response.rejected);
        for result in &response.results {
            if result.outcome == pb::ImportOutcome::Rejected as i32 {
                let line = read.line(&tally, result.index);
                tally.reject(line, &result.field, &result.reason);
            }
        }
        tally.batch_done(read.size(response.batch), render, "rows imported");
    }
    tally.finish(render)
}
