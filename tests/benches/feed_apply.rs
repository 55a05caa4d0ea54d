//! How fast the scoring service applies purchases from the customer service's activity feed:
//! the rate one leading consumer sustains, which every purchase in the business goes through. A
//! program that prints figures (docs/BENCHMARKS.md), for the sizing in docs/DEPLOY.md.
//!
//! Starts the customer and scoring services on one fresh database (auth off; the scoring
//! service with its feed consumer and the Redis tier cache on, as in production), creates an
//! Innisfree-like program, seeds `BENCH_CUSTOMERS` customers (default 100,000) straight into both
//! schemas, then imports `BENCH_PURCHASES` purchases (default 300,000) through `ImportActivities`
//! in batches of 5,000 while the consumer runs (`BENCH_CONSUMER_BATCH` and
//! `BENCH_CONSUMER_PARTITIONS` set the consumer's batch and partitions, `BENCH_FEED_PAGE` the
//! customer service's feed page). It prints when the import ended and when the
//! consumer had counted every purchase (rows in `scoring.counted_purchases`). Then, for the
//! consumer's own rate, it stops the scoring service, imports as many purchases again, starts a
//! new scoring service and times it through that backlog.
//!
//! Run: `cargo bench -p tierline-e2e --bench feed_apply`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use support::{channel, knob, program, stopped, topology, with_feed_consumer};
use tierline_proto::{
    common::v1::Money,
    customer::v1::{self as customer, customer_service_client::CustomerServiceClient},
    prost_types::Timestamp,
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use tierline_testkit::TestDatabase;
use tokio_util::sync::CancellationToken;

// The services run in this process: with the allocator their binaries have.
tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() {
    let customers = knob("BENCH_CUSTOMERS", 100_000);
    let purchases = knob("BENCH_PURCHASES", 300_000);
    let database = TestDatabase::create().await.unwrap();
    let stop = CancellationToken::new();
    let mut servers = support::Services::new();

    // The customer service's feed page (events per read), to try others than its default.
    let page: Vec<(&str, String)> = std::env::var("BENCH_FEED_PAGE")
        .map(|page| vec![("TIERLINE_FEED_BATCH_SIZE", page)])
        .unwrap_or_default();
    let mut services = topology(&database);
    for (key, value) in &page {
        services = services.customer_setting(key, value);
    }
    let customer_addr = services.start_customer(&stop, &mut servers).await.unwrap();
    let mut customer_client = CustomerServiceClient::new(channel(customer_addr).await);
    // The consumer's batch and partitions, to try others than the service's defaults.
    let batch: Vec<(&str, String)> = [
        ("BENCH_CONSUMER_BATCH", "TIERLINE_FEED_CONSUMER_BATCH"),
        (
            "BENCH_CONSUMER_PARTITIONS",
            "TIERLINE_FEED_CONSUMER_PARTITIONS",
        ),
    ]
    .into_iter()
    .filter_map(|(knob, setting)| std::env::var(knob).ok().map(|value| (setting, value)))
    .collect();
    let services = with_feed_consumer(services, &batch);
    let scoring_stop = CancellationToken::new();
    let mut scoring = support::Services::new();
    let scoring_addr = services
        .start_scoring(customer_addr, &scoring_stop, &mut scoring)
        .await
        .unwrap();
    let mut scoring_client = ScoringServiceClient::new(channel(scoring_addr).await);
    program(&mut scoring_client).await;

    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO customer.customers (id, name, joined_at, status, created_at, updated_at)
         SELECT gen_random_uuid(), 'Bench', now() - interval '400 days', 'active', now(), now()
         FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(customers).unwrap())
    .execute(&mut connection)
    .await
    .unwrap();
    connection
        .execute(
            "INSERT INTO scoring.members (customer_id, joined_at, erased)
             SELECT id, joined_at, false FROM customer.customers",
        )
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM customer.customers")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    println!(
        "{customers} customers; importing {purchases} purchases while the scoring consumer runs; machine: {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let now = chrono::Utc::now();
    let started = Instant::now();
    let imported = import(&mut customer_client, &ids, 0..purchases, now).await;
    println!(
        "import: {purchases} purchases committed in {imported:.1} s ({:.0}/s)",
        purchases as f64 / imported
    );
    let applied = until_counted(&mut connection, purchases, started).await;
    println!(
        "applied: every purchase counted by the scoring consumer {applied:.1} s after the import began: {:.0} purchases/s sustained ({:.1} s after the import ended)",
        purchases as f64 / applied,
        applied - imported
    );

    // The consumer alone on a backlog: the same number of new purchases imported while the
    // scoring service is stopped, then a scoring service started on them (as after an outage
    // or a backfill). Its rate counts from its start, startup included.
    scoring_stop.cancel();
    stopped(scoring).await;
    let imported = import(&mut customer_client, &ids, purchases..2 * purchases, now).await;
    println!(
        "backlog: {purchases} more purchases imported with the consumer stopped in {imported:.1} s ({:.0}/s)",
        purchases as f64 / imported
    );
    let scoring_stop = CancellationToken::new();
    let started = Instant::now();
    let mut scoring = support::Services::new();
    services
        .start_scoring(customer_addr, &scoring_stop, &mut scoring)
        .await
        .unwrap();
    let drained = until_counted(&mut connection, 2 * purchases, started).await;
    println!(
        "backlog applied: a new scoring service counted all {purchases} in {drained:.1} s: {:.0} purchases/s",
        purchases as f64 / drained
    );
    scoring_stop.cancel();
    stopped(scoring).await;

    // What the rows cost on disk (table, indexes and TOAST), for storage sizing; the monthly
    // buckets are on the tier states (a row a customer).
    for table in [
        "customer.activities",
        "scoring.counted_purchases",
        "scoring.tier_states",
    ] {
        let (bytes, rows): (i64, i64) = sqlx::query_as(&format!(
            "SELECT pg_total_relation_size('{table}'), (SELECT count(*) FROM {table})"
        ))
        .fetch_one(&mut connection)
        .await
        .unwrap();
        println!(
            "  {table}: {rows} rows, {:.1} MiB with indexes, {} bytes per row",
            bytes as f64 / 1_048_576.0,
            bytes / rows.max(1)
        );
    }
    stop.cancel();
    stopped(servers).await;
}

/// Imports purchases number `range` (keys `bench-{n}`) through `ImportActivities` in batches of
/// 5,000, spread over the last 12 months, each customer about as often as the next; returns the
/// seconds it took.
async fn import(
    client: &mut CustomerServiceClient<tonic::transport::Channel>,
    ids: &[uuid::Uuid],
    range: std::ops::Range<usize>,
    now: chrono::DateTime<chrono::Utc>,
) -> f64 {
    let requests: Vec<customer::ImportActivitiesRequest> = range
        .collect::<Vec<_>>()
        .chunks(5_000)
        .map(|chunk| customer::ImportActivitiesRequest {
            items: chunk
                .iter()
                .map(|n| {
                    let occurred_at =
                        now - chrono::Duration::minutes((*n as i64 * 7_919) % 525_000);
                    let amount_minor = 10_000 + (*n as i64 * 37) % 90_000;
                    customer::ImportItem {
                        item: Some(customer::import_item::Item::Purchase(
                            customer::RecordPurchaseRequest {
                                idempotency_key: format!("bench-{n}"),
                                customer_id: ids[(*n * 7_919) % ids.len()].to_string(),
                                amount: Some(Money {
                                    amount_minor,
                                    currency: "KRW".into(),
                                }),
                                occurred_at: Some(Timestamp {
                                    seconds: occurred_at.timestamp(),
                                    nanos: 0,
                                }),
                                brand: "innisfree".into(),
                                sales_channel: "store".into(),
                                store_id: "seoul-01".into(),
                                ..Default::default()
                            },
                        )),
                    }
                })
                .collect(),
        })
        .collect();
    let started = Instant::now();
    let mut results = client
        .import_activities(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    while results.message().await.unwrap().is_some() {}
    started.elapsed().as_secs_f64()
}

/// Waits until the scoring service has counted `target` purchases; the seconds since `started`.
///
/// `count(*)` of the counted purchases is a full scan (30 to 50 ms at 600,000 rows here), and
/// asked every 200 ms it took several percent of this 2-core machine from the consumer it
/// measures. So after each count the next waits half the time the rate so far says is left
/// (never under 200 ms, the precision of the figure): a handful of counts instead of a hundred.
async fn until_counted(connection: &mut PgConnection, target: usize, started: Instant) -> f64 {
    let target = i64::try_from(target).unwrap();
    let mut last_report = Instant::now();
    let mut previous: Option<(i64, Instant)> = None;
    loop {
        let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM scoring.counted_purchases")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        if counted >= target {
            return started.elapsed().as_secs_f64();
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "  {counted} counted after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        let now = Instant::now();
        let left = match previous {
            Some((before, at)) if counted > before => {
                let rate = (counted - before) as f64 / now.duration_since(at).as_secs_f64();
                Duration::from_secs_f64((target - counted) as f64 / rate / 2.0)
            }
            _ => Duration::ZERO,
        };
        previous = Some((counted, now));
        tokio::time::sleep(left.clamp(Duration::from_millis(200), Duration::from_secs(5))).await;
    }
}
