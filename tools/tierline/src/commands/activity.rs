//! `tierline activity`: one purchase or refund, or a CSV import through the streaming
//! `ImportActivities`, with progress and a summary of accepted, duplicate and rejected rows.
//! Exit code 2 when any row was rejected.

use std::io::Write;

use tierline_proto::{common::v1::Money, customer::v1 as pb, prost_types::Timestamp};

use super::timestamp;
use crate::output::outln;
use crate::{
    cli::Activity,
    connect::Endpoints,
    exit::Failure,
    render::{Render, table},
};

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
            render.message(&recorded)
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
            render.message(&recorded)
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
    if !(1..=10_000).contains(&batch) {
        return Err(Failure::Input("--batch must be 1 to 10,000".into()));
    }
    let mut reader =
        csv::Reader::from_path(file).map_err(|e| Failure::Input(format!("{file}: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| Failure::Input(format!("{file}: {e}")))?
        .clone();
    if headers.iter().map(str::trim).ne(COLUMNS) {
        return Err(Failure::Input(format!(
            "{file}: the header must be {}",
            COLUMNS.join(",")
        )));
    }
    let mut items = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Failure::Input(format!("{file}: {e}")))?;
        let line = record.position().map_or(0, csv::Position::line);
        items.push(item(&record, line)?);
        lines.push(line);
    }
    let batches: Vec<pb::ImportActivitiesRequest> = items
        .chunks(batch)
        .map(|chunk| pb::ImportActivitiesRequest {
            items: chunk.to_vec(),
        })
        .collect();
    let total = lines.len();
    let mut client = endpoints.customer()?;
    let sizes: Vec<usize> = batches.iter().map(|b| b.items.len()).collect();
    let mut responses = client
        .import_activities(tokio_stream::iter(batches))
        .await?
        .into_inner();
    let (mut accepted, mut duplicates, mut rejected, mut done) = (0_i64, 0_i64, 0_i64, 0_usize);
    let mut problems = Vec::new();
    let mut offset = 0;
    while let Some(response) = responses.message().await? {
        accepted += i64::from(response.accepted);
        duplicates += i64::from(response.duplicates);
        rejected += i64::from(response.rejected);
        for result in &response.results {
            if result.outcome == pb::ImportOutcome::Rejected as i32 {
                let index = offset + usize::try_from(result.index).unwrap_or(0);
                problems.push(vec![
                    lines
                        .get(index)
                        .map_or_else(String::new, ToString::to_string),
                    result.field.clone(),
                    result.reason.clone(),
                ]);
            }
        }
        let size = sizes.get(done).copied().unwrap_or(0);
        offset += size;
        done += 1;
        if !render.json {
            let mut stderr = std::io::stderr();
            let _ = write!(stderr, "\r{offset}/{total} rows imported");
            let _ = stderr.flush();
        }
    }
    if !render.json {
        eprintln!();
    }
    let summary = vec![
        vec!["rows".to_owned(), total.to_string()],
        vec!["accepted".to_owned(), accepted.to_string()],
        vec!["duplicate".to_owned(), duplicates.to_string()],
        vec!["rejected".to_owned(), rejected.to_string()],
    ];
    if render.json {
        let value = serde_json::json!({
            "rows": total, "accepted": accepted, "duplicates": duplicates, "rejected": rejected,
            "rejections": problems.iter().map(|p| serde_json::json!({"line": p[0], "field": p[1], "reason": p[2]})).collect::<Vec<_>>(),
        });
        #[allow(clippy::print_stdout)]
        {
            outln!("{value}");
        }
    } else {
        table(&[], &summary);
        if !problems.is_empty() {
            table(&["LINE", "FIELD", "REASON"], &problems);
        }
    }
    if rejected > 0 {
        Err(Failure::Input(format!("{rejected} rows were rejected")))
    } else {
        Ok(())
    }
}
