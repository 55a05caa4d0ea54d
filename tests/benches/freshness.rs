//! How fresh a tier is: the time from `RecordPurchase` acknowledged to `GetTier` showing the
//! upgrade that purchase earned, measured from outside as a till and an app would see it. A
//! program that prints figures (docs/BENCHMARKS.md).
//!
//! Starts the customer and scoring services on one fresh database (auth off; scoring with its
//! feed consumer and the Redis tier cache on, as in production), creates an Innisfree-like
//! program (GREEN at 100,000 KRW), and seeds `BENCH_CUSTOMERS` customers (default 20,000). Then,
//! for `BENCH_TRIALS` trials in each of three conditions (default 100):
//! - idle: nothing else runs;
//! - under load: another task imports `BENCH_LOAD_RATE` purchases/s (default 1,000) for other
//!   customers through `ImportActivities`;
//! - a transaction left open in another database of the same server (the admin database), which
//!   has written and so holds a transaction id older than everything after it; trials go on
//!   until it has been open `BENCH_HOLD_SECONDS` (default 60).
//!
//! Each trial creates a customer, records one 150,000 KRW purchase, and polls `GetTier` every
//! 2 ms from the acknowledgment until the tier is GREEN. It prints p50, p99 and the maximum.
//!
//! Run: `cargo bench -p tierline-e2e --bench freshness`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use support::{channel, knob, program, stopped, topology, with_feed_consumer};
use tierline_proto::{
    common::v1::Money,
    customer::v1::{self as customer, customer_service_client::CustomerServiceClient},
    prost_types::Timestamp,
    scoring::v1::{self as scoring, scoring_service_client::ScoringServiceClient},
};
use tierline_testkit::TestDatabase;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

// The services run in this process: with the allocator their binaries have.
tierline_runtime::service_allocator!();

type Customers = CustomerServiceClient<Channel>;
type Scoring = ScoringServiceClient<Channel>;

fn purchase(
    key: String,
    customer_id: String,
    amount_minor: i64,
) -> customer::RecordPurchaseRequest {
    let now = chrono::Utc::now();
    customer::RecordPurchaseRequest {
        idempotency_key: key,
        customer_id,
        amount: Some(Money {
            amount_minor,
            currency: "KRW".into(),
        }),
        occurred_at: Some(Timestamp {
            seconds: now.timestamp(),
            nanos: 0,
        }),
        brand: "innisfree".into(),
        sales_channel: "store".into(),
        store_id: "seoul-01".into(),
        ..Default::default()
    }
}

/// One trial: milliseconds from the purchase's acknowledgment to GetTier showing GREEN.
async fn trial(customers: &mut Customers, tiers: &mut Scoring, program_id: &str, n: usize) -> f64 {
    let customer_id = customers
        .create_customer(customer::CreateCustomerRequest {
            name: format!("Fresh {n}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    customers
        .record_purchase(purchase(format!("fresh-{n}"), customer_id.clone(), 150_000))
        .await
        .unwrap();
    let acknowledged = Instant::now();
    loop {
        let tier = tiers
            .get_tier(scoring::GetTierRequest {
                program_id: program_id.to_owned(),
                customer_id: customer_id.clone(),
            })
            .await
            .map(|answer| answer.into_inner());
        if let Ok(tier) = tier
            && tier.tier.is_some_and(|t| t.code == "GREEN")
        {
            return acknowledged.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(
            acknowledged.elapsed() < Duration::from_secs(60),
            "no upgrade within a minute"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn report(condition: &str, mut latencies: Vec<f64>) {
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{condition}: {} trials, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

async fn trials(
    customers: &mut Customers,
    tiers: &mut Scoring,
    program_id: &str,
    count: usize,
    first: usize,
) -> Vec<f64> {
    let mut latencies = Vec::with_capacity(count);
    for n in first..first + count {
        latencies.push(trial(customers, tiers, program_id, n).await);
    }
    latencies
}

#[tokio::main]
async fn main() {
    let seeded = knob("BENCH_CUSTOMERS", 20_000);
    let count = knob("BENCH_TRIALS", 100);
    let load_rate = knob("BENCH_LOAD_RATE", 1_000);
    let database = TestDatabase::create().await.unwrap();
    let stop = CancellationToken::new();
    let mut servers = support::Services::new();

    let services = with_feed_consumer(topology(&database), &[]);
    let customer_addr = services.start_customer(&stop, &mut servers).await.unwrap();
    let scoring_addr = services
        .start_scoring(customer_addr, &stop, &mut servers)
        .await
        .unwrap();
    let mut customers = CustomerServiceClient::new(channel(customer_addr).await);
    let mut tiers = ScoringServiceClient::new(channel(scoring_addr).await);
    let program_id = program(&mut tiers).await;

    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO customer.customers (id, name, joined_at, status, created_at, updated_at)
         SELECT gen_random_uuid(), 'Bench', now() - interval '400 days', 'active', now(), now()
         FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(seeded).unwrap())
    .execute(&mut connection)
    .await
    .unwrap();
    let others: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM customer.customers")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    println!(
        "{seeded} customers; {count} trials per condition; machine: {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    // A first trial warms connections and caches.
    trial(&mut customers, &mut tiers, &program_id, usize::MAX).await;

    report(
        "idle",
        trials(&mut customers, &mut tiers, &program_id, count, 0).await,
    );

    // Background import: batches of a tenth of the rate, ten times a second.
    let load_stop = CancellationToken::new();
    let load = {
        let mut importer = customers.clone();
        let load_stop = load_stop.clone();
        tokio::spawn(async move {
            let batch = (load_rate / 10).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut n = 0usize;
            let mut imported = 0usize;
            let started = Instant::now();
            while !load_stop.is_cancelled() {
                tick.tick().await;
                let items = (0..batch)
                    .map(|i| customer::ImportItem {
                        item: Some(customer::import_item::Item::Purchase(purchase(
                            format!("load-{n}-{i}"),
                            others[(n * batch + i) % others.len()].to_string(),
                            5_000,
                        ))),
                    })
                    .collect();
                n += 1;
                let mut results = importer
                    .import_activities(tokio_stream::iter([customer::ImportActivitiesRequest {
                        items,
                    }]))
                    .await
                    .unwrap()
                    .into_inner();
                while results.message().await.unwrap().is_some() {}
                imported += batch;
            }
            imported as f64 / started.elapsed().as_secs_f64()
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = trials(&mut customers, &mut tiers, &program_id, count, count).await;
    load_stop.cancel();
    let rate = load.await.unwrap();
    report(&format!("under {rate:.0} purchases/s of import"), loaded);

    let mut elsewhere = PgConnection::connect(&tierline_testkit::admin_database_url())
        .await
        .unwrap();
    let mut open = elsewhere.begin().await.unwrap();
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *open)
        .await
        .unwrap();
    // Trials go on until the transaction has been open for `BENCH_HOLD_SECONDS` (default 60).
    let hold = Duration::from_secs(knob("BENCH_HOLD_SECONDS", 60) as u64);
    let held = Instant::now();
    let mut beside = Vec::new();
    while beside.len() < count || held.elapsed() < hold {
        beside.push(
            trial(
                &mut customers,
                &mut tiers,
                &program_id,
                2 * count + beside.len(),
            )
            .await,
        );
    }
    report(
        &format!(
            "with a writing transaction open in another database ({:.0} s)",
            held.elapsed().as_secs_f64()
        ),
        beside,
    );
    open.rollback().await.unwrap();

    stop.cancel();
    stopped(servers).await;
}
