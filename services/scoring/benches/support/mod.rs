//! What the scoring benchmarks share: the service started in-process on a fresh database, an
//! Innisfree-like program, and a population generated straight into the scoring schema
//! (`BENCH_MEMBERS` members, each buying in a given share of the last 12 months, their ids
//! minted as `BENCH_IDS` says).

#![allow(dead_code, clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use tierline_proto::scoring::v1::{self as pb, scoring_service_client::ScoringServiceClient};
use tierline_runtime::{
    config::{ConfigSource, DatabaseSettings},
    metrics::Metrics,
};
use tierline_scoring::{
    Application, ScoringConfig, cache::TierCache, domain::consumer::FeedApplier,
    storage::postgres::PgScoringStore,
};
use tierline_testkit::{TestDatabase, wait_until_serving};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn rules(green_threshold: i64) -> pb::PolicyRules {
    use pb::MetricKind::{NetSpend, PurchaseCount};
    let requirement = |metric: pb::MetricKind, threshold| pb::Requirement {
        metric: metric.into(),
        threshold,
    };
    let rule = |code: &str, requirements| pb::TierRule {
        tier_code: code.into(),
        requirements,
        points_earn_rate_bps: 0,
    };
    pb::PolicyRules {
        tiers: vec![
            rule("WELCOME", vec![]),
            rule("GREEN", vec![requirement(NetSpend, green_threshold)]),
            rule("VIP", vec![requirement(NetSpend, 600_000)]),
            rule(
                "VVIP",
                vec![
                    requirement(NetSpend, 1_000_000),
                    requirement(PurchaseCount, 10),
                ],
            ),
        ],
        window: Some(pb::QualificationWindow {
            kind: pb::WindowKind::RollingMonths.into(),
            rolling_months: 12,
        }),
        time_zone: "Asia/Seoul".into(),
        evaluation_schedule: Some(pb::EvaluationSchedule {
            frequency: pb::EvaluationFrequency::Monthly.into(),
            day_of_month: 1,
            month_of_year: 0,
            local_hour: 3,
            local_minute: 0,
        }),
        grace_months: 3,
        max_levels_dropped: Some(1),
        ..Default::default()
    }
}

/// The scoring service running in-process on 127.0.0.1:0.
pub(crate) struct BenchService {
    pub(crate) client: ScoringServiceClient<Channel>,
    pub(crate) addr: std::net::SocketAddr,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl BenchService {
    /// Starts the service on `database` with the feed consumer and the scheduler off, and the
    /// tier cache on `redis_url` when given.
    pub(crate) async fn start(database: &TestDatabase, redis_url: Option<&str>) -> Self {
        let mut source = ConfigSource::from_pairs([
            ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
            ("TIERLINE_METRICS_ADDR", "off"),
            ("TIERLINE_DATABASE_URL", database.url()),
            ("TIERLINE_AUTH_MODE", "disabled"),
            ("TIERLINE_FEED_CONSUMER", "false"),
            ("TIERLINE_SCHEDULER", "false"),
            ("TIERLINE_LOG", "warn"),
            ("TIERLINE_GRPC_REQUEST_TIMEOUT", "300s"),
        ]);
        if let Some(url) = redis_url {
            source.set("TIERLINE_REDIS_URL", url);
        }
        let app = Application::build(ScoringConfig::from_source(&source).unwrap())
            .await
            .unwrap();
        let addr = app.local_addr();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let server = tokio::spawn(async move {
            app.run_until(async move { token.cancelled().await })
                .await
                .unwrap()
        });
        wait_until_serving(addr).await;
        let client = ScoringServiceClient::new(channel(addr).await);
        Self {
            client,
            addr,
            stop,
            server,
        }
    }

    /// Stops the service and waits for it.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap();
    }
}

/// Stores the counted purchases behind every month on the population's tier states, as the feed
/// leaves them: each month's purchases at random instants of it in Asia/Seoul (the program's zone;
/// up to now in the current month), its spend split evenly among them. RFM recency and the
/// customer value model read them at every evaluation. Prints and returns their number.
pub(crate) async fn seed_purchases(database: &TestDatabase) -> i64 {
    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    let started = Instant::now();
    // A month's own figures are its running totals less the month before's.
    let purchases = sqlx::query(
        "INSERT INTO scoring.counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, points)
         SELECT b.program_id, gen_random_uuid(), b.customer_id,
                m.starts + random() * (least(m.starts + interval '1 month', now()) - m.starts),
                b.net_spend_minor / b.purchases + CASE WHEN k = 1 THEN b.net_spend_minor % b.purchases ELSE 0 END, 0
         FROM (SELECT s.program_id, s.customer_id, u.month,
                      s.spend_through[u.i] - COALESCE(s.spend_through[u.i - 1], 0) AS net_spend_minor,
                      s.purchases_through[u.i] - COALESCE(s.purchases_through[u.i - 1], 0) AS purchases
               FROM scoring.tier_states s CROSS JOIN LATERAL unnest(s.months) WITH ORDINALITY u(month, i)) b
              CROSS JOIN LATERAL (SELECT b.month::timestamp AT TIME ZONE 'Asia/Seoul' AS starts) m
              CROSS JOIN LATERAL generate_series(1, b.purchases) k
         ORDER BY b.customer_id",
    )
    .execute(&mut connection)
    .await
    .unwrap()
    .rows_affected();
    connection
        .execute("VACUUM (ANALYZE) scoring.counted_purchases")
        .await
        .unwrap();
    println!(
        "{purchases} counted purchases behind the buckets, stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    count_purchase_profiles(database).await;
    i64::try_from(purchases).unwrap()
}

/// Counts every customer's purchase profile from the purchases stored in bulk, by the store's
/// own recount (as the feed would have kept them), untimed.
pub(crate) async fn count_purchase_profiles(database: &TestDatabase) {
    let started = Instant::now();
    let store = pg_store(database, "bench-profiles");
    let program: uuid::Uuid = sqlx::query_scalar("SELECT id FROM scoring.programs")
        .fetch_one(&mut PgConnection::connect(database.url()).await.unwrap())
        .await
        .unwrap();
    let customers = store
        .recount_purchase_profiles(program, chrono_tz::Asia::Seoul, 10_000)
        .await
        .unwrap();
    execute(database, "VACUUM (ANALYZE) scoring.tier_states").await;
    println!(
        "{customers} purchase profiles counted in {:.1} s (not timed below)",
        started.elapsed().as_secs_f64()
    );
}

/// Writes out what the untimed steps before left in shared buffers (`CHECKPOINT`), so that a
/// timed run does not share the disk with them: the aging of a month rewrites every state (its
/// months and profile with it) and every purchase in a few minutes, and a checkpoint spread over
/// the next minutes (`checkpoint_completion_target`) slowed the run after it, not the RFM timed
/// after that. A running service's month is spread over weeks.
pub(crate) async fn checkpoint(database: &TestDatabase) {
    execute(database, "CHECKPOINT").await;
}

/// Runs `statement` on a connection of its own to `database`.
async fn execute(database: &TestDatabase, statement: &str) {
    PgConnection::connect(database.url())
        .await
        .unwrap()
        .execute(statement)
        .await
        .unwrap();
}

/// A store on `database`, on a pool of its own named `name`.
fn pg_store(database: &TestDatabase, name: &str) -> PgScoringStore {
    let source = ConfigSource::from_pairs([("TIERLINE_DATABASE_URL", database.url())]);
    let mut reader = source.reader();
    let settings = DatabaseSettings::read(&mut reader);
    reader.finish().unwrap();
    let pool = tierline_runtime::db::connect_lazy(&settings, name, "scoring").unwrap();
    PgScoringStore::new(pool, CancellationToken::new())
}

/// The feed consumer's applier on `database`, on a pool of its own, as the service's consumer
/// builds it but for the cache: its own in-process one, not Redis (the benchmarks that use it
/// time what comes after, which reads no cache).
pub(crate) fn feed_applier(database: &TestDatabase) -> FeedApplier {
    let store = std::sync::Arc::new(pg_store(database, "bench-feed"));
    FeedApplier::new(
        store,
        TierCache::in_process(10_000, Duration::from_secs(60), &Metrics::new()),
    )
}

/// A new HTTP/2 connection to `addr`.
pub(crate) async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(600))
        .connect()
        .await
        .unwrap()
}

/// Creates the program BENCH (WELCOME, GREEN, VIP, VVIP) with an active policy; its id.
pub(crate) async fn create_program(client: &mut ScoringServiceClient<Channel>) -> String {
    let tier = |code: &str, rank| pb::Tier {
        code: code.into(),
        name: code.into(),
        rank,
        benefits: vec![],
    };
    let program = client
        .create_program(pb::CreateProgramRequest {
            program: Some(pb::Program {
                code: "BENCH".into(),
                name: "Bench".into(),
                currency: "KRW".into(),
                tiers: vec![
                    tier("WELCOME", 0),
                    tier("GREEN", 1),
                    tier("VIP", 2),
                    tier("VVIP", 3),
                ],
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let draft = client
        .create_policy_version(pb::CreatePolicyVersionRequest {
            program_id: program.id.clone(),
            rules: Some(rules(100_000)),
            created_by: "bench".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    client
        .activate_policy(pb::ActivatePolicyRequest {
            policy_version_id: draft.id,
            activated_by: "bench".into(),
            expected_revision: None,
        })
        .await
        .unwrap();

    program.id
}

/// How the generated members' ids are minted (`BENCH_IDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ids {
    /// Time-ordered by join time, as the customer service mints them (`Uuid::now_v7`): the
    /// default, as in production.
    TimeOrdered,
    /// At random (`BENCH_IDS=random`), as before session 17: a member's id says nothing about
    /// when they joined, so the states, stored as members arrive, lie in no order of their key.
    Random,
}

impl Ids {
    pub(crate) fn from_env() -> Self {
        match std::env::var("BENCH_IDS").as_deref() {
            Ok("random") => Self::Random,
            _ => Self::TimeOrdered,
        }
    }

    /// The SQL that mints the id of a member who joined at `joined_at`.
    fn minted(self) -> &'static str {
        match self {
            // The first 48 bits are the join time in milliseconds, the rest random: the layout
            // of a version 7 id.
            Self::TimeOrdered => {
                "encode(overlay(uuid_send(gen_random_uuid())
                     PLACING substring(int8send((extract(epoch FROM joined_at) * 1000)::bigint) FROM 3)
                     FROM 1), 'hex')::uuid"
            }
            Self::Random => "gen_random_uuid()",
        }
    }
}

/// Generates `members` members with their monthly buckets on tier states for `program_id`, each
/// member buying in about `months_share` of the last 12 months (1.0: a bucket in every month),
/// their spend a month up to 200,000 times a factor of their own (Gamma(2, 1/2): mean 1, so
/// members differ in what they spend, as they do in life and as the value model's spend part
/// needs to find a maximum), their ids minted as `ids` says; prints and returns the number of
/// buckets. Every member with a bucket has a state to hold it: those who spent enough for GREEN
/// the tier it gives (one in ten a level above, held since over a year ago), the others the base
/// tier since joining, as the feed creates it at a first purchase. Members are stored in the
/// order they joined, and tier states in the order of each member's first purchase (within 30
/// days of joining), as a service that has been running for two years has them.
pub(crate) async fn seed_population(
    database: &TestDatabase,
    program_id: &str,
    members: usize,
    months_share: f64,
    ids: Ids,
) -> i64 {
    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    let started = Instant::now();
    sqlx::query(&format!(
        "INSERT INTO scoring.members (customer_id, joined_at, erased)
         SELECT {id}, joined_at, false
         FROM (SELECT now() - random() * interval '730 days' AS joined_at FROM generate_series(1, $1)) j
         ORDER BY joined_at",
        id = ids.minted()
    ))
    .bind(i64::try_from(members).unwrap())
    .execute(&mut connection)
    .await
    .unwrap();
    // The buckets one row a month first (a temporary table, gone with the connection), each
    // member's then written onto their state in one insert.
    connection
        .execute(
            "CREATE TEMP TABLE generated_months (customer_id uuid, month date, net_spend_minor bigint,
                                                 points bigint, purchases bigint)",
        )
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO generated_months (customer_id, month, net_spend_minor, points, purchases)
         SELECT m.customer_id, (date_trunc('month', now()) - k * interval '1 month')::date,
                (random() * 200000 * m.spender)::bigint, 0, 1 + (random() * 2)::int
         FROM (SELECT customer_id,
                      -(ln((('x' || substr(h, 1, 8))::bit(32)::bigint + 0.5) / 4294967296.0)
                        + ln((('x' || substr(h, 9, 8))::bit(32)::bigint + 0.5) / 4294967296.0)) / 2 AS spender
               FROM (SELECT customer_id, md5(customer_id::text) AS h FROM scoring.members) hashed) m
              CROSS JOIN generate_series(0, 11) k
         WHERE random() < $1",
    )
    .bind(months_share)
    .execute(&mut connection)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO scoring.tier_states (program_id, customer_id, earned_rank, since, version, updated_at, months,
                                          spend_through, points_through, purchases_through)
         SELECT $1::uuid, customer_id,
                CASE WHEN s >= 1000000 THEN 3 WHEN s >= 600000 THEN 2 WHEN s >= 100000 THEN 1 ELSE 0 END
                    + CASE WHEN random() < 0.1 AND s >= 100000 AND s < 1000000 THEN 1 ELSE 0 END,
                CASE WHEN s >= 100000 THEN now() - interval '13 months' ELSE m.joined_at END, 1, now(),
                r.months, r.spend_through, r.points_through, r.purchases_through
         FROM (SELECT customer_id, sum(net_spend_minor) AS s, array_agg(month ORDER BY month) AS months,
                      array_agg(spend ORDER BY month) AS spend_through, array_agg(points ORDER BY month) AS points_through,
                      array_agg(purchases ORDER BY month) AS purchases_through
               FROM (SELECT customer_id, month, net_spend_minor,
                            sum(net_spend_minor) OVER running AS spend, sum(points) OVER running AS points,
                            sum(purchases) OVER running AS purchases
                     FROM generated_months
                     WINDOW running AS (PARTITION BY customer_id ORDER BY month)) t
               GROUP BY customer_id) r
              JOIN scoring.members m USING (customer_id)
         ORDER BY m.joined_at + random() * interval '30 days'",
    )
    .bind(uuid::Uuid::parse_str(program_id).unwrap())
    .execute(&mut connection)
    .await
    .unwrap();
    // Vacuumed as autovacuum leaves a settled table (visibility map set, so index-only scans
    // need no heap), and analysed.
    connection
        .execute("VACUUM (ANALYZE) scoring.members, scoring.tier_states")
        .await
        .unwrap();
    let buckets: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(cardinality(months)), 0) FROM scoring.tier_states")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    println!(
        "population: {members} members ({ids:?} ids), {buckets} monthly buckets, generated in {:.1} s; machine: {} cores",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    buckets
}
