//! Server behaviour: readiness and graceful shutdown.

use std::time::Duration;

use tierline_proto::tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::support::TestApp;

#[tokio::test]
async fn shutdown_reports_not_serving_and_ends_feed_streams() {
    let mut app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut feed = client
        .watch_activities(tierline_proto::customer::v1::WatchActivitiesRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(
        health
            .message()
            .await
            .expect("update")
            .expect("open")
            .status(),
        ServingStatus::Serving
    );

    let stopping = tokio::spawn(async move {
        app.server.stop().await;
        app
    });
    let update = tokio::time::timeout(Duration::from_secs(10), health.message())
        .await
        .expect("an update in time");
    if let Ok(Some(update)) = update {
        assert_eq!(
            update.status(),
            ServingStatus::NotServing,
            "draining replicas leave the load balancer first"
        );
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), feed.message())
        .await
        .expect("the feed stream ends in time");
    assert!(matches!(ended, Ok(None) | Err(_)));
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stops within the grace")
        .expect("task");
}
