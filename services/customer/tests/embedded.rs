//! The customer service on its embedded SQLite store (the development mode), through the real
//! gRPC API: readiness, writes, and the activity feed a consumer follows.

use std::sync::Arc;

use tierline_customer::{Application, CustomerConfig, storage::sqlite::SqliteCustomerStore};
use tierline_proto::{
    common::v1::Money,
    customer::v1::{self as pb, customer_service_client::CustomerServiceClient},
};
use tierline_runtime::config::ConfigSource;
use tierline_testkit::{TestSqliteFile, wait_until_serving};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_service_serves_and_feeds_from_sqlite() {
    tierline_testkit::init_logging();
    let file = TestSqliteFile::new();
    let store = SqliteCustomerStore::open(&file.url()).await.expect("store");
    let config = CustomerConfig::embedded_from_source(&ConfigSource::from_pairs([
        ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
        ("TIERLINE_METRICS_ADDR", "off"),
        ("TIERLINE_AUTH_MODE", "disabled"),
    ]))
    .expect("no database settings needed");
    let app = Application::embedded(config, Arc::new(store))
        .await
        .expect("binds");
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let server = tokio::spawn(async move { app.run_until(token.cancelled_owned()).await });
    wait_until_serving(addr).await;

    let mut client = CustomerServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let customer = client
        .create_customer(pb::CreateCustomerRequest {
            name: "Ji-woo".into(),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    let purchase = client
        .record_purchase(pb::RecordPurchaseRequest {
            idempotency_key: "p-1".into(),
            customer_id: customer.id.clone(),
            amount: Some(Money {
                amount_minor: 12_000,
                currency: "KRW".into(),
            }),
            occurred_at: Some(tierline_proto::prost_types::Timestamp::from(
                std::time::SystemTime::now(),
            )),
            ..Default::default()
        })
        .await
        .expect("purchase")
        .into_inner()
        .activity
        .expect("activity");

    let mut feed = client
        .watch_activities(pb::WatchActivitiesRequest::default())
        .await
        .expect("feed")
        .into_inner();
    let first = feed.message().await.expect("open").expect("created");
    assert!(matches!(
        first.event,
        Some(pb::feed_event::Event::Customer(ref event)) if event.customer_id == customer.id
    ));
    let second = feed.message().await.expect("open").expect("purchase");
    assert!(matches!(
        second.event,
        Some(pb::feed_event::Event::Activity(ref activity)) if activity.id == purchase.id
    ));
    // Live: a purchase recorded now reaches the open stream.
    let later = client
        .record_purchase(pb::RecordPurchaseRequest {
            idempotency_key: "p-2".into(),
            customer_id: customer.id.clone(),
            amount: Some(Money {
                amount_minor: 3_000,
                currency: "KRW".into(),
            }),
            occurred_at: Some(tierline_proto::prost_types::Timestamp::from(
                std::time::SystemTime::now(),
            )),
            ..Default::default()
        })
        .await
        .expect("purchase")
        .into_inner()
        .activity
        .expect("activity");
    // After the first page, a checkpoint says the feed is complete up to the read.
    let third = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let message = feed.message().await.expect("open").expect("live purchase");
            if !matches!(message.event, Some(pb::feed_event::Event::Checkpoint(_))) {
                return message;
            }
        }
    })
    .await
    .expect("in time");
    assert!(matches!(
        third.event,
        Some(pb::feed_event::Event::Activity(ref activity)) if activity.id == later.id
    ));
    stop.cancel();
    server.await.expect("joined").expect("clean stop");
}
