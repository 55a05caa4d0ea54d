//! Ingestion benchmark: a program that prints figures (docs/BENCHMARKS.md records them).
//!
//! 1. Bulk: durable purchases per second through `ImportActivities`, next to a raw Postgres
//!    `COPY` of the same rows into a table of the same layout (same columns, defaults, checks and
//!    indexes), measured in the same run on the same database.
//! 2. Single: `RecordPurchase` latency p50/p99 with 32 concurrent callers.
//! 3. Onboarding: customers per second through `ImportCustomers` (each with a profile in Hangul,
//!    an e-mail, a phone, a birth date, an attribute and an e-mail consent), next to a `COPY` of
//!    the same customer rows into a table of the customers' layout, in the same run.
//!
//! Run: `cargo bench -p tierline-customer --bench ingest` (Postgres from
//! `TIERLINE_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Knobs: `BENCH_ROWS` (bulk rows, default 500000), `BENCH_BATCH` (items per batch, 5000),
//! `BENCH_STREAMS` (parallel import streams, 2), `BENCH_SINGLE` (single calls, 20000),
//! `BENCH_CALLERS` (concurrent callers, 32), `BENCH_WRITERS` (`TIERLINE_PURCHASE_WRITERS`, 2),
//! `BENCH_ONBOARD` (customers onboarded, 200000; 0 skips), `BENCH_ONBOARD_BATCH` (5000). A knob of
//! 0 skips its part.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use sqlx::{Connection, Executor, PgConnection};
use tierline_customer::{Application, CustomerConfig};
use tierline_proto::{
    common::v1::Money,
    customer::v1::{self as pb, customer_service_client::CustomerServiceClient},
    prost_types::Timestamp,
};
use tierline_runtime::config::ConfigSource;
use tierline_testkit::TestDatabase;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

const CUSTOMERS: usize = 20_000;

struct Row {
    key: String,
    customer: uuid::Uuid,
    amount: i64,
    occurred_at: chrono::DateTime<chrono::Utc>,
}

fn rows(count: usize, prefix: &str, customers: &[uuid::Uuid]) -> Vec<Row> {
    let start = chrono::Utc::now() - chrono::Duration::days(365);
    (0..count)
        .map(|i| Row {
            key: format!("{prefix}-{i:09}"),
            customer: customers[(i * 7919) % customers.len()],
            amount: 1_000 + (i as i64 * 37) % 200_000,
            occurred_at: start + chrono::Duration::seconds((i as i64 * 31) % (365 * 86_400)),
        })
        .collect()
}

fn timestamp(value: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp {
        seconds: value.timestamp(),
        nanos: 0,
    }
}

fn request(row: &Row) -> pb::RecordPurchaseRequest {
    pb::RecordPurchaseRequest {
        idempotency_key: row.key.clone(),
        customer_id: row.customer.to_string(),
        amount: Some(Money {
            amount_minor: row.amount,
            currency: "KRW".into(),
        }),
        occurred_at: Some(timestamp(row.occurred_at)),
        brand: "innisfree".into(),
        sales_channel: "store".into(),
        store_id: "seoul-01".into(),
        line_items: vec![pb::LineItem {
            category: "skincare".into(),
            sku: "GT-100".into(),
            quantity: 1,
            amount_minor: row.amount,
        }],
    }
}

async fn connect(addr: std::net::SocketAddr) -> CustomerServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    CustomerServiceClient::new(channel)
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024)
}

async fn bulk_grpc(
    addr: std::net::SocketAddr,
    rows: Arc<Vec<Row>>,
    batch: usize,
    streams: usize,
) -> (Duration, i64) {
    let started = Instant::now();
    let chunks: Vec<Vec<usize>> = (0..streams)
        .map(|s| (s..rows.len().div_ceil(batch)).step_by(streams).collect())
        .collect();
    let tasks = chunks.into_iter().map(|batch_numbers| {
        let rows = rows.clone();
        tokio::spawn(async move {
            let mut client = connect(addr).await;
            let requests = futures::stream::iter(batch_numbers).map(move |number| {
                let end = ((number + 1) * batch).min(rows.len());
                let items = rows[number * batch..end]
                    .iter()
                    .map(|row| pb::ImportItem {
                        item: Some(pb::import_item::Item::Purchase(request(row))),
                    })
                    .collect();
                pb::ImportActivitiesRequest { items }
            });
            let mut responses = client
                .import_activities(requests)
                .await
                .unwrap()
                .into_inner();
            let mut accepted = 0_i64;
            while let Some(response) = responses.next().await {
                let response = response.unwrap();
                assert_eq!(
                    response.rejected,
                    0,
                    "{:?}",
                    response.results.iter().find(|r| !r.reason.is_empty())
                );
                accepted += i64::from(response.accepted);
            }
            accepted
        })
    });
    let mut accepted = 0;
    for task in futures::future::join_all(tasks).await {
        accepted += task.unwrap();
    }
    (started.elapsed(), accepted)
}

async fn bulk_copy(url: &str, rows: &[Row]) -> Duration {
    let mut connection = PgConnection::connect(url).await.unwrap();
    connection
        .execute("CREATE TABLE customer.bench_copy (LIKE customer.activities INCLUDING ALL)")
        .await
        .unwrap();
    let line_items_json = |amount: i64| {
        format!(
            "[{{\"category\":\"skincare\",\"sku\":\"GT-100\",\"quantity\":1,\"amount_minor\":{amount}}}]"
        )
    };
    let mut data = String::with_capacity(rows.len() * 300);
    let recorded = chrono::Utc::now().to_rfc3339();
    for row in rows {
        let occurred = row.occurred_at.to_rfc3339();
        let fingerprint = "\\\\x".to_owned() + &"ab".repeat(32);
        // Tab-separated COPY text; the JSON holds no tabs or backslashes.
        data.push_str(&format!(
            "{}\t{}\tpurchase\t{}\t{}\t{}\tKRW\t{}\t{}\tinnisfree\tstore\tseoul-01\t{}\t0\t{}\n",
            uuid::Uuid::now_v7(),
            row.customer,
            row.key,
            fingerprint,
            row.amount,
            occurred,
            recorded,
            line_items_json(row.amount),
            occurred
        ));
    }
    let started = Instant::now();
    let mut copy = connection
        .copy_in_raw(
            "COPY customer.bench_copy (id, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency, occurred_at,
                 recorded_at, brand, sales_channel, store_id, line_items, refunded_amount_minor, purchase_occurred_at) FROM STDIN",
        )
        .await
        .unwrap();
    for chunk in data.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    let copied = copy.finish().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(copied as usize, rows.len());
    elapsed
}

async fn single_latency(
    addr: std::net::SocketAddr,
    rows: Arc<Vec<Row>>,
    callers: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let tasks = (0..callers).map(|caller| {
        let rows = rows.clone();
        tokio::spawn(async move {
            let mut client = connect(addr).await;
            let mut latencies = Vec::new();
            for row in rows.iter().skip(caller).step_by(callers) {
                let call = Instant::now();
                client.record_purchase(request(row)).await.unwrap();
                latencies.push(call.elapsed());
            }
            latencies
        })
    });
    let mut latencies: Vec<Duration> = Vec::new();
    for task in futures::future::join_all(tasks).await {
        latencies.extend(task.unwrap());
    }
    latencies.sort();
    (started.elapsed(), latencies)
}

/// The `i`-th member of the onboarded membership.
fn member(i: usize) -> pb::ImportCustomerItem {
    pb::ImportCustomerItem {
        customer: Some(pb::CreateCustomerRequest {
            external_id: format!("M-{i:09}"),
            name: format!("김민지 {i}"),
            email: format!("member{i}@example.com"),
            phone: format!("+8210{:08}", i % 100_000_000),
            birth_date: Some(tierline_proto::common::v1::Date {
                year: 1960 + (i % 45) as i32,
                month: 1 + (i % 12) as i32,
                day: 1 + (i % 28) as i32,
            }),
            joined_at: Some(timestamp(
                chrono::Utc::now() - chrono::Duration::days((i % 2_000) as i64),
            )),
            attributes: [("city".to_owned(), "Seoul".to_owned())].into(),
        }),
        consents: vec![pb::ImportedConsent {
            channel: tierline_proto::common::v1::Channel::Email.into(),
            granted: !i.is_multiple_of(4),
            source: "crm-migration".into(),
            changed_at: None,
        }],
    }
}

async fn onboard_grpc(
    addr: std::net::SocketAddr,
    count: usize,
    batch: usize,
    streams: usize,
) -> Duration {
    let started = Instant::now();
    let tasks = (0..streams).map(|stream| {
        tokio::spawn(async move {
            let mut client = connect(addr).await;
            let numbers: Vec<usize> = (stream..count.div_ceil(batch)).step_by(streams).collect();
            let requests =
                futures::stream::iter(numbers).map(move |number| pb::ImportCustomersRequest {
                    items: (number * batch..((number + 1) * batch).min(count))
                        .map(member)
                        .collect(),
                });
            let mut responses = client
                .import_customers(requests)
                .await
                .unwrap()
                .into_inner();
            let mut created = 0_i64;
            while let Some(response) = responses.next().await {
                let response = response.unwrap();
                assert_eq!(
                    response.rejected,
                    0,
                    "{:?}",
                    response.results.iter().find(|r| !r.reason.is_empty())
                );
                created += i64::from(response.created);
            }
            created
        })
    });
    let created: i64 = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .sum();
    assert_eq!(created as usize, count);
    started.elapsed()
}

async fn onboard_copy(url: &str, count: usize) -> Duration {
    let mut connection = PgConnection::connect(url).await.unwrap();
    connection
        .execute("CREATE TABLE customer.bench_customers (LIKE customer.customers INCLUDING ALL)")
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let mut data = String::with_capacity(count * 250);
    for i in 0..count {
        data.push_str(&format!(
            "{}	C-{i:09}	김민지 {i}	member{i}@example.com	+8210{:08}	{}-{:02}-{:02}	{}	{{\"city\": \"Seoul\"}}	active	{}	{}
",
            uuid::Uuid::now_v7(),
            i % 100_000_000,
            1960 + i % 45,
            1 + i % 12,
            1 + i % 28,
            (now - chrono::Duration::days((i % 2_000) as i64)).to_rfc3339(),
            now.to_rfc3339(),
            now.to_rfc3339(),
        ));
    }
    let started = Instant::now();
    let mut copy = connection
        .copy_in_raw(
            "COPY customer.bench_customers (id, external_id, name, email, phone, birth_date, joined_at, attributes,
                 status, created_at, updated_at) FROM STDIN",
        )
        .await
        .unwrap();
    for chunk in data.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    assert_eq!(copy.finish().await.unwrap() as usize, count);
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

// The services run in this process: with the allocator their binaries have.
tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() {
    let (rows_n, batch, streams) = (
        knob("BENCH_ROWS", 500_000),
        knob("BENCH_BATCH", 5_000),
        knob("BENCH_STREAMS", 2),
    );
    let (single_n, callers) = (knob("BENCH_SINGLE", 20_000), knob("BENCH_CALLERS", 32));
    let writers = knob("BENCH_WRITERS", 2).to_string();
    let database = TestDatabase::create().await.unwrap();
    let source = ConfigSource::from_pairs([
        ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
        ("TIERLINE_METRICS_ADDR", "off"),
        ("TIERLINE_DATABASE_URL", database.url()),
        ("TIERLINE_DB_MAX_CONNECTIONS", "40"),
        ("TIERLINE_AUTH_MODE", "disabled"),
        ("TIERLINE_LOG", "warn"),
        ("TIERLINE_PURCHASE_WRITERS", &writers),
    ]);
    let app = Application::build(CustomerConfig::from_source(&source).unwrap())
        .await
        .unwrap();
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move {
            app.run_until(async move { stop.cancelled().await })
                .await
                .unwrap()
        })
    };
    // Wait for migrations by creating customers through the API's database.
    let mut connection = loop {
        if let Ok(mut connection) = PgConnection::connect(database.url()).await
            && connection
                .execute("SELECT 1 FROM customer.customers LIMIT 1")
                .await
                .is_ok()
        {
            break connection;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let customers: Vec<uuid::Uuid> = (0..CUSTOMERS).map(|_| uuid::Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO customer.customers (id, name, joined_at, status, created_at, updated_at)
         SELECT id, 'Bench', now(), 'active', now(), now() FROM unnest($1::uuid[]) AS t(id)",
    )
    .bind(&customers)
    .execute(&mut connection)
    .await
    .unwrap();

    println!(
        "machine: {} cores; rows {rows_n}, batch {batch}, streams {streams}; customers {CUSTOMERS}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let (onboard_n, onboard_batch) = (
        knob("BENCH_ONBOARD", 200_000),
        knob("BENCH_ONBOARD_BATCH", 5_000),
    );
    if onboard_n > 0 {
        let grpc_time = onboard_grpc(addr, onboard_n, onboard_batch, streams).await;
        let copy_time = onboard_copy(database.url(), onboard_n).await;
        let (grpc_rate, copy_rate) = (
            onboard_n as f64 / grpc_time.as_secs_f64(),
            onboard_n as f64 / copy_time.as_secs_f64(),
        );
        println!(
            "bulk ImportCustomers: {onboard_n} customers (with an e-mail consent and a CREATED event each) in {:.2} s = {grpc_rate:.0} customers/s (target >= 20,000)",
            grpc_time.as_secs_f64()
        );
        println!(
            "raw COPY of the same customer rows (same layout): {:.2} s = {copy_rate:.0} rows/s; ImportCustomers / COPY = {:.1}%",
            copy_time.as_secs_f64(),
            100.0 * grpc_rate / copy_rate
        );
    }
    if rows_n == 0 {
        stop.cancel();
        server.await.unwrap();
        return;
    }
    let grpc_rows = Arc::new(rows(rows_n, "bulk", &customers));
    let (grpc_time, accepted) = bulk_grpc(addr, grpc_rows, batch, streams).await;
    assert_eq!(accepted as usize, rows_n);
    let grpc_rate = rows_n as f64 / grpc_time.as_secs_f64();
    let copy_rows = rows(rows_n, "copy", &customers);
    let copy_time = bulk_copy(database.url(), &copy_rows).await;
    let copy_rate = rows_n as f64 / copy_time.as_secs_f64();
    println!(
        "bulk ImportActivities: {rows_n} rows in {:.2} s = {grpc_rate:.0} rows/s",
        grpc_time.as_secs_f64()
    );
    println!(
        "raw COPY (same layout): {rows_n} rows in {:.2} s = {copy_rate:.0} rows/s",
        copy_time.as_secs_f64()
    );
    println!("gRPC bulk / COPY = {:.1}%", 100.0 * grpc_rate / copy_rate);

    let single_rows = Arc::new(rows(single_n, "single", &customers));
    let (elapsed, latencies) = single_latency(addr, single_rows, callers).await;
    println!(
        "RecordPurchase x{single_n}, {callers} concurrent callers: {:.0} calls/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        single_n as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    stop.cancel();
    server.await.unwrap();
}
