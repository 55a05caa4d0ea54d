//! The `tierline-customer` binary as a process: configuration errors, the `migrate`
//! subcommand, serving until SIGTERM and draining cleanly.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use tierline_proto::tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tierline_testkit::TestDatabase;

const BINARY: &str = env!("CARGO_BIN_EXE_tierline-customer");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

#[test]
fn bad_configuration_is_refused_with_every_problem_named() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("TIERLINE_GRPC_ADDR", "nowhere")
        .env("TIERLINE_DB_MAX_CONNECTIONS", "0")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "TIERLINE_GRPC_ADDR",
        "TIERLINE_DB_MAX_CONNECTIONS",
        "TIERLINE_DATABASE_URL is required",
        "TIERLINE_AUTH_HS256_SECRET",
    ] {
        assert!(stderr.contains(expected), "{expected} not in: {stderr}");
    }
}

#[tokio::test]
async fn migrate_then_serve_until_sigterm() {
    let database = TestDatabase::create().await.expect("database");
    let port = free_port();
    let env = [
        ("TIERLINE_DATABASE_URL", database.url().to_owned()),
        ("TIERLINE_AUTH_MODE", "disabled".to_owned()),
        ("TIERLINE_GRPC_ADDR", format!("127.0.0.1:{port}")),
        ("TIERLINE_METRICS_ADDR", "off".to_owned()),
        ("TIERLINE_MIGRATE_ON_START", "false".to_owned()),
        ("TIERLINE_LOG_FORMAT", "json".to_owned()),
    ];
    let migrate = Command::new(BINARY)
        .arg("migrate")
        .envs(env.clone())
        .output()
        .expect("migrate runs");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let mut child = Command::new(BINARY)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let channel = loop {
        match tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) => {
                assert!(
                    child.try_wait().expect("status").is_none(),
                    "the server exited early"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let mut health = HealthClient::new(channel);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(update) = updates.message().await.expect("update") {
            if update.status() == ServingStatus::Serving {
                return;
            }
        }
    })
    .await
    .expect("SERVING after migrate (no migration at start)");

    // An open health watch would hold the connection until the grace ends; probes use Check.
    drop(updates);
    drop(health);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("exits");
    assert!(
        output.status.success(),
        "clean exit on SIGTERM: {:?}",
        output.status
    );
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains("\"signal\":\"sigterm\"") && logs.contains("server stopped"),
        "{logs}"
    );
    assert!(
        logs.lines().all(|line| line.starts_with('{')),
        "JSON logs: {logs}"
    );
}
