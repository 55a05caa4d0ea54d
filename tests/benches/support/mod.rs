//! What the cross-service benchmarks share: the services on a fresh database, connections,
//! and an Innisfree-like program created through the scoring API.

#![allow(dead_code, clippy::print_stdout, clippy::unwrap_used)]

use tierline_proto::scoring::v1::{self as scoring, scoring_service_client::ScoringServiceClient};
use tierline_runtime::service::StartError;
use tierline_testkit::{TestDatabase, wait_until_serving};
use tierline_topology::{Storage, Topology};
use tokio::task::JoinSet;
use tonic::transport::Channel;

/// The services as the benchmarks run them, from the one topology (`tierline_topology`): on
/// `database`, auth off, quiet logs, no scheduler and no feed consumers unless a benchmark turns
/// one on (see [`with_feed_consumer`]).
pub(crate) fn topology(database: &TestDatabase) -> Topology {
    Topology::new(Storage::Postgres {
        url: database.url().to_owned(),
    })
    .setting("TIERLINE_LOG", "warn")
    .setting("TIERLINE_FEED_CONSUMER", "false")
    .setting("TIERLINE_SCHEDULER", "false")
}

/// The scoring service consuming the activity feed, with the Redis tier cache, as in production;
/// `extra` adds scoring settings.
pub(crate) fn with_feed_consumer(topology: Topology, extra: &[(&str, String)]) -> Topology {
    let mut topology = topology
        .scoring_setting("TIERLINE_FEED_CONSUMER", "true")
        .scoring_setting("TIERLINE_REDIS_URL", &tierline_testkit::redis_url());
    for (key, value) in extra {
        topology = topology.scoring_setting(key, value);
    }
    topology
}

/// Waits until every service in `tasks` has stopped (after their stop token was cancelled).
pub(crate) async fn stopped(mut tasks: Services) {
    while let Some(ended) = tasks.join_next().await {
        ended.unwrap().unwrap();
    }
}

/// The tasks the services run in.
pub(crate) type Services = JoinSet<Result<(), StartError>>;

pub(crate) fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
