//! Authentication and authorisation at the API boundary.

use std::time::{Duration, Instant};

use tierline_proto::{
    customer::v1 as pb,
    tonic_health::pb::{HealthCheckRequest, health_client::HealthClient},
};
use tierline_runtime::auth::scopes::{CUSTOMERS_READ, FEED_READ};
use tierline_testkit::tokens;
use tonic::Code;

use crate::support::{TestApp, connect, purchase};

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let app = TestApp::spawn().await;
    for token in [
        None,
        Some("not-a-jwt".to_owned()),
        Some(tokens::foreign_token(&[CUSTOMERS_READ])),
        Some(tokens::expired_token(&[CUSTOMERS_READ])),
    ] {
        let mut client = app.client_with(token.clone()).await;
        let status = client
            .list_customers(pb::ListCustomersRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "token {token:?}");
    }
}

#[tokio::test]
async fn a_token_without_the_scope_is_permission_denied() {
    let app = TestApp::spawn().await;
    let mut reader = app
        .client_with(Some(tokens::token("dashboard", &[CUSTOMERS_READ])))
        .await;
    reader
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect("read allowed");
    let status = reader
        .create_customer(pb::CreateCustomerRequest {
            name: "X".into(),
            ..Default::default()
        })
        .await
        .expect_err("write refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = reader
        .record_purchase(purchase("k", &uuid::Uuid::now_v7().to_string(), 1))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = reader
        .watch_activities(pb::WatchActivitiesRequest::default())
        .await
        .expect_err("feed refused");
    assert_eq!(status.code(), Code::PermissionDenied);

    let mut feed_reader = app
        .client_with(Some(tokens::token("scoring", &[FEED_READ])))
        .await;
    feed_reader
        .watch_activities(pb::WatchActivitiesRequest::default())
        .await
        .expect("feed allowed");
}

#[tokio::test]
async fn a_feed_ends_unauthenticated_when_its_token_expires() {
    // No leeway: the token stops being accepted at its `exp`.
    let app = TestApp::spawn_with(&[("TIERLINE_AUTH_LEEWAY", "0s")]).await;
    let mut client = app
        .client_with(Some(tokens::token_expiring_in("scoring", &[FEED_READ], 3)))
        .await;
    let opened = Instant::now();
    let mut feed = client
        .watch_activities(pb::WatchActivitiesRequest::default())
        .await
        .expect("the feed opens")
        .into_inner();
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match feed.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the feed ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the feed ends once its token expired");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "token expired");
    assert!(
        opened.elapsed() >= Duration::from_secs(1),
        "not before the token expired"
    );

    // The consumer reconnects with a fresh token.
    let mut renewed = app
        .client_with(Some(tokens::token("scoring", &[FEED_READ])))
        .await;
    renewed
        .watch_activities(pb::WatchActivitiesRequest::default())
        .await
        .expect("a fresh token opens the feed again");
}

#[tokio::test]
async fn health_needs_no_token() {
    let app = TestApp::spawn().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "tierline.customer.v1.CustomerService".into(),
        })
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(
        response.status(),
        tierline_proto::tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn auth_can_be_disabled_explicitly() {
    let app = TestApp::spawn_with(&[("TIERLINE_AUTH_MODE", "disabled")]).await;
    let mut client = connect(app.addr, None).await;
    client
        .create_customer(pb::CreateCustomerRequest {
            name: "Open".into(),
            ..Default::default()
        })
        .await
        .expect("no token needed when disabled");
}
