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
    // Checkpoints may come before the end; no event does.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match feed.message().await {
                Ok(Some(message))
                    if matches!(
                        message.event,
                        Some(tierline_proto::customer::v1::feed_event::Event::Checkpoint(
                            _
                        ))
                    ) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("the feed stream ends in time");
    assert!(matches!(ended, Ok(None) | Err(_)));
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stops within the grace")
        .expect("task");
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code() {
    let app =
        crate::support::TestApp::spawn_with(&[("TIERLINE_METRICS_ADDR", "127.0.0.1:0")]).await;
    let mut client = app.client().await;
    client
        .list_customers(tierline_proto::customer::v1::ListCustomersRequest::default())
        .await
        .expect("ok call");
    let _ = client
        .get_customer(tierline_proto::customer::v1::GetCustomerRequest { lookup: None })
        .await
        .expect_err("invalid call");
    let metrics_addr = app.server.metrics_addr.expect("metrics enabled");
    let text = http_get(metrics_addr, "/metrics").await;
    assert!(
        text.contains(r#"tierline_grpc_server_requests_total{service="tierline.customer.v1.CustomerService",method="ListCustomers",code="OK"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"method="GetCustomer",code="INVALID_ARGUMENT"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tierline_grpc_server_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let app =
        crate::support::TestApp::spawn_with(&[("TIERLINE_GRPC_MAX_MESSAGE_BYTES", "4096")]).await;
    let mut client = app.client().await;
    let status = client
        .create_customer(tierline_proto::customer::v1::CreateCustomerRequest {
            name: "x".repeat(10_000),
            ..Default::default()
        })
        .await
        .expect_err("too large");
    // gRPC's status-code table: a message over the size limit is RESOURCE_EXHAUSTED (tonic says
    // OUT_OF_RANGE; the runtime's RpcService rewrites it).
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("decoded message length too large"),
        "{status:?}"
    );
}

/// A minimal HTTP/1.1 GET, enough for `/metrics`.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test]
async fn an_unreachable_database_keeps_the_service_not_serving() {
    tierline_testkit::init_logging();
    // A database that does not exist, and no migrations at start: the server runs but must not
    // report SERVING.
    let missing = format!("{}_missing", tierline_testkit::admin_database_url());
    let source = tierline_runtime::config::ConfigSource::from_pairs([
        ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
        ("TIERLINE_METRICS_ADDR", "off"),
        ("TIERLINE_DATABASE_URL", missing.as_str()),
        ("TIERLINE_AUTH_MODE", "disabled"),
        ("TIERLINE_MIGRATE_ON_START", "false"),
    ]);
    let config = tierline_customer::CustomerConfig::from_source(&source).expect("config");
    let app = tierline_customer::Application::build(config)
        .await
        .expect("builds");
    let addr = app.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move { app.run_until(async move { stop.cancelled().await }).await })
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
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
    // The first probe fails (connection refused by Postgres: no such database); the status stays
    // NOT_SERVING through it.
    let first = health.message().await.expect("update").expect("open");
    assert_eq!(first.status(), ServingStatus::NotServing);
    // Probes repeat every 2 s; over a few of them the status must never turn SERVING.
    let watched = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(update)) = health.message().await {
            assert_eq!(
                update.status(),
                ServingStatus::NotServing,
                "SERVING without a database"
            );
        }
    })
    .await;
    assert!(
        watched.is_err(),
        "the health stream stays open while the server runs"
    );
    // An open watch would hold the server for its whole shutdown grace.
    drop(health);
    stop.cancel();
    let _ = server.await;
}

#[tokio::test]
async fn a_replica_waits_for_the_migration_job_before_serving() {
    tierline_testkit::init_logging();
    // A fresh database nobody has migrated, and a replica told to leave migrations to a Job.
    let database = tierline_testkit::TestDatabase::create()
        .await
        .expect("test database");
    let source = tierline_runtime::config::ConfigSource::from_pairs([
        ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
        ("TIERLINE_METRICS_ADDR", "off"),
        ("TIERLINE_DATABASE_URL", database.url()),
        ("TIERLINE_AUTH_MODE", "disabled"),
        ("TIERLINE_MIGRATE_ON_START", "false"),
        ("TIERLINE_SHUTDOWN_GRACE", "1s"),
    ]);
    let config = tierline_customer::CustomerConfig::from_source(&source).expect("config");
    let app = tierline_customer::Application::build(config.clone())
        .await
        .expect("builds");
    let addr = app.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move { app.run_until(async move { stop.cancelled().await }).await })
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("the server answers before its schema is ready");
    let mut health = HealthClient::new(channel.clone());
    let status = |service: &str| {
        let mut health = health.clone();
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        async move {
            health
                .check(request)
                .await
                .expect("health answers")
                .into_inner()
                .status()
        }
    };
    assert_eq!(
        status("").await,
        ServingStatus::NotServing,
        "readiness before migrations"
    );
    assert_eq!(
        status("liveness").await,
        ServingStatus::Serving,
        "liveness is the process"
    );
    let mut customers =
        tierline_proto::customer::v1::customer_service_client::CustomerServiceClient::new(channel);
    let early = customers
        .get_customer(tierline_proto::customer::v1::GetCustomerRequest {
            lookup: Some(
                tierline_proto::customer::v1::get_customer_request::Lookup::Id(
                    uuid::Uuid::now_v7().to_string(),
                ),
            ),
        })
        .await
        .expect_err("no business calls before the schema is ready");
    assert_eq!(early.code(), tonic::Code::Unavailable, "{early:?}");

    // The migration Job runs; the replica notices and turns ready by itself.
    tierline_customer::app::migrate_only(&config)
        .await
        .expect("migrations");
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(update) = watch.message().await.expect("update") {
            if update.status() == ServingStatus::Serving {
                return;
            }
        }
        panic!("the health stream ended");
    })
    .await
    .expect("SERVING once the schema is migrated");
    drop(watch);
    let unknown = customers
        .get_customer(tierline_proto::customer::v1::GetCustomerRequest {
            lookup: Some(
                tierline_proto::customer::v1::get_customer_request::Lookup::Id(
                    uuid::Uuid::now_v7().to_string(),
                ),
            ),
        })
        .await
        .expect_err("an unknown customer");
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    stop.cancel();
    server.await.expect("task").expect("server ran");
}

#[tokio::test]
async fn both_reflection_protocols_list_the_services() {
    use tokio_stream::StreamExt as _;
    use tonic_reflection::pb::{v1, v1alpha};

    let app = TestApp::spawn().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let expected = [
        "grpc.health.v1.Health",
        "tierline.customer.v1.CustomerService",
    ];

    // grpc.reflection.v1, which grpcurl 1.9 and later ask for.
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1")
        .into_inner();
    let answer = answers.next().await.expect("an answer").expect("v1 answer");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in expected {
        assert!(names.iter().any(|name| name == service), "v1: {names:?}");
    }

    // grpc.reflection.v1alpha, which grpcurl before 1.9, Postman and grpcui ask for.
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha")
        .into_inner();
    let answer = answers
        .next()
        .await
        .expect("an answer")
        .expect("v1alpha answer");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in expected {
        assert!(
            names.iter().any(|name| name == service),
            "v1alpha: {names:?}"
        );
    }
}
