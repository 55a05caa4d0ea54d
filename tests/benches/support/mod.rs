//! What the cross-service benchmarks share: service settings for a fresh database, connections,
//! and an Innisfree-like program created through the scoring API.

#![allow(dead_code, clippy::print_stdout, clippy::unwrap_used)]

use tierline_proto::scoring::v1::{self as scoring, scoring_service_client::ScoringServiceClient};
use tierline_runtime::config::ConfigSource;
use tierline_testkit::{TestDatabase, wait_until_serving};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::Channel;

/// Runs a service on a task of its own until `stop` is cancelled: `run` gets the future that
/// resolves then.
pub(crate) fn spawn_until<F, Fut>(stop: &CancellationToken, run: F) -> tokio::task::JoinHandle<()>
where
    F: FnOnce(WaitForCancellationFutureOwned) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(run(stop.clone().cancelled_owned()))
}

/// Starts the customer service on `database` (`extra` added to its settings), serving until
/// `stop`; returns its address once it serves, and its task.
pub(crate) async fn start_customer(
    database: &TestDatabase,
    stop: &CancellationToken,
    extra: &[(&str, String)],
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = tierline_customer::Application::build(
        tierline_customer::CustomerConfig::from_source(&settings(database, extra)).unwrap(),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let task = spawn_until(stop, |stopped| async move {
        app.run_until(stopped).await.unwrap();
    });
    wait_until_serving(addr).await;
    (addr, task)
}

/// Starts the scoring service on `database` consuming the activity feed of the customer service
/// at `customer`, with the Redis tier cache, as in production (`extra` added to its settings),
/// serving until `stop`; returns its address once it serves, and its task.
pub(crate) async fn start_scoring_on_feed(
    database: &TestDatabase,
    stop: &CancellationToken,
    customer: std::net::SocketAddr,
    extra: &[(&str, String)],
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let mut pairs = vec![
        ("TIERLINE_FEED_CONSUMER", "true".to_owned()),
        ("TIERLINE_CUSTOMER_ENDPOINT", format!("http://{customer}")),
        ("TIERLINE_REDIS_URL", tierline_testkit::redis_url()),
    ];
    pairs.extend(extra.iter().cloned());
    let app = tierline_scoring::Application::build(
        tierline_scoring::ScoringConfig::from_source(&settings(database, &pairs)).unwrap(),
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    let task = spawn_until(stop, |stopped| async move {
        app.run_until(stopped).await.unwrap();
    });
    wait_until_serving(addr).await;
    (addr, task)
}

pub(crate) fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn settings(database: &TestDatabase, extra: &[(&str, String)]) -> ConfigSource {
    let mut pairs = vec![
        ("TIERLINE_GRPC_ADDR", "127.0.0.1:0".to_owned()),
        ("TIERLINE_METRICS_ADDR", "off".to_owned()),
        ("TIERLINE_DATABASE_URL", database.url().to_owned()),
        ("TIERLINE_AUTH_MODE", "disabled".to_owned()),
        ("TIERLINE_LOG", "warn".to_owned()),
        ("TIERLINE_FEED_CONSUMER", "false".to_owned()),
        ("TIERLINE_SCHEDULER", "false".to_owned()),
    ];
    pairs.extend(extra.iter().cloned());
    ConfigSource::from_pairs(pairs)
}

pub(crate) async fn channel(addr: std::net::SocketAddr) -> Channel {
    wait_until_serving(addr).await;
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub(crate) async fn program(scoring_client: &mut ScoringServiceClient<Channel>) -> String {
    let tier = |code: &str, rank| scoring::Tier {
        code: code.into(),
        name: code.to_lowercase(),
        rank,
        benefits: vec![],
    };
    let program = scoring_client
        .create_program(scoring::CreateProgramRequest {
            program: Some(scoring::Program {
                code: "BENCH".into(),
                name: "Bench".into(),
                currency: "KRW".into(),
                tiers: vec![tier("WELCOME", 0), tier("GREEN", 1), tier("VIP", 2)],
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let requirement = |threshold| {
        vec![scoring::Requirement {
            metric: scoring::MetricKind::NetSpend.into(),
            threshold,
        }]
    };
    let rule = |code: &str, requirements| scoring::TierRule {
        tier_code: code.into(),
        requirements,
        points_earn_rate_bps: 0,
    };
    let draft = scoring_client
        .create_policy_version(scoring::CreatePolicyVersionRequest {
            program_id: program.id.clone(),
            rules: Some(scoring::PolicyRules {
                tiers: vec![
                    rule("WELCOME", vec![]),
                    rule("GREEN", requirement(100_000)),
                    rule("VIP", requirement(600_000)),
                ],
                window: Some(scoring::QualificationWindow {
                    kind: scoring::WindowKind::RollingMonths.into(),
                    rolling_months: 12,
                }),
                time_zone: "Asia/Seoul".into(),
                evaluation_schedule: Some(scoring::EvaluationSchedule {
                    frequency: scoring::EvaluationFrequency::Monthly.into(),
                    day_of_month: 1,
                    month_of_year: 0,
                    local_hour: 3,
                    local_minute: 0,
                }),
                ..Default::default()
            }),
            created_by: "bench".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    scoring_client
        .activate_policy(scoring::ActivatePolicyRequest {
            policy_version_id: draft.id,
            activated_by: "bench".into(),
            expected_revision: None,
        })
        .await
        .unwrap();
    program.id
}
