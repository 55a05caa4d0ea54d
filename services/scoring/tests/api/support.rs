//! A real scoring service on 127.0.0.1:0 against a fresh database, and clients for it.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use tierline_proto::{
    prost_types::Timestamp,
    scoring::v1::{self as pb, scoring_service_client::ScoringServiceClient},
};
use tierline_runtime::{
    auth::scopes::{FEED_READ, PROGRAMS_ADMIN, TIERS_READ},
    config::ConfigSource,
};
use tierline_scoring::{Application, ScoringConfig};
use tierline_testkit::{TestDatabase, init_logging, tokens, wait_until_serving};
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

#[derive(Clone, Debug)]
pub(crate) struct Bearer(AsciiMetadataValue);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub(crate) type Client = ScoringServiceClient<InterceptedService<Channel, Bearer>>;

pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) database_url: String,
    shutdown: CancellationToken,
    // The first replica owns the database; it is dropped with it.
    _database: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// The first replica, with `settings` added to the environment.
    pub(crate) async fn spawn_with(settings: &[(&str, &str)]) -> Self {
        init_logging();
        let database = TestDatabase::create().await.expect("database");
        let mut app = Self::start(database.url(), settings).await;
        app._database = Some(database);
        app
    }

    /// Another replica on the same database.
    pub(crate) async fn replica(&self) -> Self {
        Self::start(&self.database_url, &[]).await
    }

    /// Another replica on the same database, with `settings` added to the environment.
    pub(crate) async fn replica_with(&self, settings: &[(&str, &str)]) -> Self {
        Self::start(&self.database_url, settings).await
    }

    async fn start(database_url: &str, settings: &[(&str, &str)]) -> Self {
        let mut pairs = vec![
            ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
            ("TIERLINE_METRICS_ADDR", "off"),
            ("TIERLINE_DATABASE_URL", database_url),
            ("TIERLINE_AUTH_MODE", "jwt"),
            ("TIERLINE_AUTH_HS256_SECRET", tokens::SECRET),
            // No customer service here: the feed is written into the tables by the tests, and no
            // program's history is read (docs/SCORING.md, "History before the program").
            ("TIERLINE_FEED_CONSUMER", "false"),
        ];
        pairs.extend_from_slice(settings);
        let source = ConfigSource::from_pairs(pairs);
        let app = Application::build(ScoringConfig::from_source(&source).expect("config"))
            .await
            .expect("builds");
        let addr = app.local_addr();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            app.run_until(async move { stop.cancelled().await })
                .await
                .expect("serves")
        });
        wait_until_serving(addr).await;
        Self {
            addr,
            database_url: database_url.to_owned(),
            shutdown,
            _database: None,
        }
    }

    pub(crate) async fn client_with(&self, scopes: &[&str]) -> Client {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let bearer =
            MetadataValue::try_from(format!("Bearer {}", tokens::token("operator", scopes)))
                .expect("ascii");
        ScoringServiceClient::with_interceptor(channel, Bearer(bearer))
    }

    pub(crate) async fn client(&self) -> Client {
        self.client_with(&[PROGRAMS_ADMIN, TIERS_READ, FEED_READ])
            .await
    }
}

pub(crate) use tierline_testkit::fixtures::{innisfree_program, innisfree_rules};

pub(crate) async fn create_program(client: &mut Client, code: &str) -> pb::Program {
    client
        .create_program(pb::CreateProgramRequest {
            program: Some(innisfree_program(code)),
            idempotency_key: String::new(),
        })
        .await
        .expect("program")
        .into_inner()
}

pub(crate) fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    tierline_runtime::status::field_violations(status)
        .into_iter()
        .map(|v| v.field)
        .collect()
}

pub(crate) async fn finished_run(client: &mut Client, run_id: &str) -> pb::EvaluationRun {
    tierline_testkit::eventually(&format!("run {run_id} to finish"), || {
        let mut client = client.clone();
        async move {
            let run = client
                .get_evaluation_run(pb::GetEvaluationRunRequest {
                    evaluation_run_id: run_id.to_owned(),
                })
                .await
                .expect("run")
                .into_inner();
            (run.status() != pb::EvaluationRunStatus::Running).then_some(run)
        }
    })
    .await
}

/// A customer's tier (`GetTier`).
pub(crate) async fn lookup(
    client: &mut Client,
    program_id: &str,
    customer_id: Uuid,
) -> pb::CustomerTier {
    client
        .get_tier(pb::GetTierRequest {
            program_id: program_id.to_owned(),
            customer_id: customer_id.to_string(),
        })
        .await
        .expect("tier")
        .into_inner()
}

/// The code of a customer's tier.
pub(crate) async fn tier_code(client: &mut Client, program_id: &str, customer_id: Uuid) -> String {
    lookup(client, program_id, customer_id)
        .await
        .tier
        .expect("tier")
        .code
}

/// A program with `rules` in force, once the activation's own run has finished; returns the
/// program and the active version's id.
pub(crate) async fn program_in_force(
    client: &mut Client,
    code: &str,
    rules: pb::PolicyRules,
) -> (pb::Program, String) {
    let program = create_program(client, code).await;
    let version = activate(client, &program.id, rules).await;
    (program, version)
}

/// Puts `rules` in force in a program, once the activation's own run has finished; returns the
/// version's id.
pub(crate) async fn activate(
    client: &mut Client,
    program_id: &str,
    rules: pb::PolicyRules,
) -> String {
    let draft = client
        .create_policy_version(pb::CreatePolicyVersionRequest {
            program_id: program_id.to_owned(),
            rules: Some(rules),
            created_by: "ops".into(),
            ..Default::default()
        })
        .await
        .expect("draft")
        .into_inner();
    let activation = client
        .activate_policy(pb::ActivatePolicyRequest {
            policy_version_id: draft.id.clone(),
            activated_by: "ops".into(),
            expected_revision: None,
        })
        .await
        .expect("activate")
        .into_inner();
    finished_run(client, &activation.evaluation_run_id).await;
    draft.id
}

/// A VIP member with nothing bought: with no grace, an evaluation drops them one level.
pub(crate) async fn insert_vip(
    db: &mut PgConnection,
    program_id: Uuid,
    changed_by_run: Option<Uuid>,
    rank: i32,
) -> Uuid {
    let customer_id = Uuid::now_v7();
    sqlx::query("INSERT INTO scoring.members (customer_id, joined_at) VALUES ($1, now() - interval '2 years')")
        .bind(customer_id)
        .execute(&mut *db)
        .await
        .expect("member");
    sqlx::query(
        "INSERT INTO scoring.tier_states (program_id, customer_id, earned_rank, since, version, updated_at, changed_by_run)
         VALUES ($1, $2, $3, now() - interval '2 years', 1, now(), $4)",
    )
    .bind(program_id)
    .bind(customer_id)
    .bind(rank)
    .bind(changed_by_run)
    .execute(&mut *db)
    .await
    .expect("state");
    customer_id
}

/// The first day of the month `at` falls in, in `zone`: a month as a tier state holds it.
pub(crate) fn month_of(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone)
        .date_naive()
        .with_day(1)
        .expect("first day")
}

/// Adds a month's totals to a customer's months on their tier state in `program_id`, as the
/// feed's counting of purchases leaves them: `month` (a first day) goes in among the others in
/// order when it is new, and what it adds raises its running totals and every later month's.
/// The months live on the state (migration `20261208100028`): a customer without one is a
/// mistake in the test's setup, and panics naming them.
pub(crate) async fn add_month(
    db: &mut PgConnection,
    program_id: Uuid,
    customer_id: Uuid,
    month: NaiveDate,
    spend: i64,
    points: i64,
    purchases: i64,
) {
    let mut tx = db.begin().await.expect("transaction");
    // Locked, so that a replica writing the state meanwhile is not overwritten.
    let (mut months, mut spend_through, mut points_through, mut purchases_through): (
        Vec<NaiveDate>,
        Vec<i64>,
        Vec<i64>,
        Vec<i64>,
    ) = sqlx::query_as(
        "SELECT months, spend_through, points_through, purchases_through FROM scoring.tier_states
         WHERE program_id = $1 AND customer_id = $2 FOR UPDATE",
    )
    .bind(program_id)
    .bind(customer_id)
    .fetch_optional(&mut *tx)
    .await
    .expect("months")
    .unwrap_or_else(|| {
        panic!("customer {customer_id} has no tier state in program {program_id} to hold a month")
    });
    let at = match months.binary_search(&month) {
        Ok(at) => at,
        Err(at) => {
            // A new month starts from the running totals of the month before it (0 before the
            // first).
            months.insert(at, month);
            for through in [
                &mut spend_through,
                &mut points_through,
                &mut purchases_through,
            ] {
                let before = at.checked_sub(1).map_or(0, |previous| through[previous]);
                through.insert(at, before);
            }
            at
        }
    };
    for (through, added) in [
        (&mut spend_through, spend),
        (&mut points_through, points),
        (&mut purchases_through, purchases),
    ] {
        for total in &mut through[at..] {
            *total += added;
        }
    }
    sqlx::query(
        "UPDATE scoring.tier_states
         SET months = $3, spend_through = $4, points_through = $5, purchases_through = $6
         WHERE program_id = $1 AND customer_id = $2",
    )
    .bind(program_id)
    .bind(customer_id)
    .bind(months)
    .bind(spend_through)
    .bind(points_through)
    .bind(purchases_through)
    .execute(&mut *tx)
    .await
    .expect("months written");
    tx.commit().await.expect("commit");
}

/// Takes every month off a customer's tier states, as if none of their purchases had counted.
pub(crate) async fn clear_months(db: &mut PgConnection, customer_id: Uuid) {
    sqlx::query(
        "UPDATE scoring.tier_states
         SET months = '{}', spend_through = '{}', points_through = '{}', purchases_through = '{}'
         WHERE customer_id = $1",
    )
    .bind(customer_id)
    .execute(&mut *db)
    .await
    .expect("months cleared");
}

/// Waits until `condition` holds of a lookup, at most `within`; returns how long it took.
pub(crate) async fn lookup_until(
    client: &mut Client,
    program_id: &str,
    customer_id: Uuid,
    within: Duration,
    condition: impl Fn(&pb::CustomerTier) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let tier = lookup(client, program_id, customer_id).await;
        if condition(&tier) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "not within {within:?}; last answer {tier:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Grants `tier` to a customer for 30 days; returns the state's new version.
pub(crate) async fn grant(
    client: &mut Client,
    program_id: &str,
    customer_id: Uuid,
    tier: &str,
) -> i64 {
    let until = chrono::Utc::now() + chrono::Duration::days(30);
    client
        .set_tier_override(pb::SetTierOverrideRequest {
            program_id: program_id.to_owned(),
            customer_id: customer_id.to_string(),
            tier_code: tier.to_owned(),
            expires_at: Some(Timestamp {
                seconds: until.timestamp(),
                nanos: 0,
            }),
            reason: "service recovery".into(),
            operator_name: "agent".into(),
            idempotency_key: String::new(),
        })
        .await
        .expect("override")
        .into_inner()
        .version
}

/// Settings of a replica on Redis at `url`.
pub(crate) fn redis_settings(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TIERLINE_REDIS_URL", url.to_owned()),
        ("TIERLINE_REDIS_TIMEOUT", "200ms".to_owned()),
    ]
}

/// Settings as `TestApp` takes them.
pub(crate) fn as_pairs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect()
}

/// The code of the tier a lookup shows.
pub(crate) fn tier_of(tier: &pb::CustomerTier) -> &str {
    tier.tier.as_ref().map_or("", |tier| tier.code.as_str())
}
