//! Postgres migrations that move stored rows, run against rows stored by the schema before them.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use tierline_runtime::config::{ConfigSource, DatabaseSettings};
use tierline_scoring::storage::postgres::{MIGRATOR, SCHEMA};
use tierline_testkit::TestDatabase;
use uuid::Uuid;

/// A copy of the scoring migrations before `version`, in a directory of its own (removed on drop).
struct MigrationsBefore(PathBuf);

impl MigrationsBefore {
    fn new(version: i64) -> Self {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let copy = std::env::temp_dir().join(format!("tierline-migrations-{}", Uuid::now_v7()));
        std::fs::create_dir(&copy).expect("directory");
        for entry in std::fs::read_dir(&source).expect("migrations") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).expect("name");
            let number: i64 = name
                .split('_')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("numbered");
            if number < version {
                std::fs::copy(&path, copy.join(name)).expect("copy");
            }
        }
        Self(copy)
    }
}

impl Drop for MigrationsBefore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn pool(database: &TestDatabase) -> PgPool {
    let source = ConfigSource::from_pairs([("TIERLINE_DATABASE_URL", database.url())]);
    let mut reader = source.reader();
    let settings = DatabaseSettings::read(&mut reader);
    reader.finish().expect("settings");
    tierline_runtime::db::connect_lazy(&settings, "migrations", SCHEMA).expect("pool")
}

/// A state's tier, since, version and profile columns.
type StateRow = (
    i32,
    DateTime<Utc>,
    i64,
    Option<DateTime<Utc>>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<i32>,
    Option<i64>,
    Option<i64>,
);

async fn state_of(pool: &PgPool, customer: Uuid) -> Option<StateRow> {
    sqlx::query_as(
        "SELECT earned_rank, since, version, last_purchase_at, first_day, last_day, purchase_days, repeat_spend_minor,
                first_day_spend_minor
         FROM tier_states WHERE customer_id = $1",
    )
    .bind(customer)
    .fetch_optional(pool)
    .await
    .expect("state")
}

/// Three customers in a program, stored by the schema before some migration: a gold member and
/// a browser with states (versions 7 and 2, since `since`), a buyer without one; all joined at
/// `joined`.
struct Scene {
    /// Dropped with the scene.
    _database: TestDatabase,
    pool: PgPool,
    program: Uuid,
    gold: Uuid,
    buyer: Uuid,
    browser: Uuid,
    joined: DateTime<Utc>,
    since: DateTime<Utc>,
}

impl Scene {
    /// The scene on a fresh database migrated up to, not including, `version`.
    async fn before(version: i64) -> Self {
        let database = TestDatabase::create().await.expect("database");
        let pool = pool(&database).await;
        let before = MigrationsBefore::new(version);
        let earlier = sqlx::migrate::Migrator::new(before.0.as_path())
            .await
            .expect("earlier migrations");
        tierline_runtime::db::migrate(&pool, SCHEMA, &earlier)
            .await
            .expect("migrated to the schema before");
        let program = Uuid::now_v7();
        let (gold, buyer, browser) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let joined: DateTime<Utc> = "2025-01-15T03:00:00Z".parse().expect("instant");
        let since: DateTime<Utc> = "2026-02-01T00:00:00Z".parse().expect("instant");
        sqlx::query(
            "INSERT INTO members (customer_id, joined_at) SELECT c, $2 FROM unnest($1::uuid[]) c",
        )
        .bind(vec![gold, buyer, browser])
        .bind(joined)
        .execute(&pool)
        .await
        .expect("members");
        sqlx::query(
            "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, version, updated_at)
             VALUES ($1, $2, 3, $4, 7, $4), ($1, $3, 0, $4, 2, $4)",
        )
        .bind(program)
        .bind(gold)
        .bind(browser)
        .bind(since)
        .execute(&pool)
        .await
        .expect("states");
        Self {
            _database: database,
            pool,
            program,
            gold,
            buyer,
            browser,
            joined,
            since,
        }
    }

    /// Runs every migration.
    async fn migrate(&self) {
        tierline_runtime::db::migrate(&self.pool, SCHEMA, &MIGRATOR)
            .await
            .expect("migrated");
    }
}

#[tokio::test]
async fn profiles_move_onto_their_states_and_a_buyer_without_one_gets_the_base_tier() {
    let scene = Scene::before(20261206100026).await;
    let pool = &scene.pool;
    let (program, gold, buyer, browser) = (scene.program, scene.gold, scene.buyer, scene.browser);
    let (joined, since) = (scene.joined, scene.since);
    let last: DateTime<Utc> = "2026-10-30T09:30:00Z".parse().expect("instant");
    // The gold member's profile predates the first day's spend (NULL), the buyer's does not.
    sqlx::query(
        "INSERT INTO purchase_profiles (program_id, customer_id, last_purchase_at, first_day, last_day, purchase_days,
                                        repeat_spend_minor, first_day_spend_minor)
         VALUES ($1, $2, $4, '2025-03-02', '2026-10-30', 14, 930000, NULL),
                ($1, $3, $4, '2026-10-30', '2026-10-30', 1, 0, 25000)",
    )
    .bind(program)
    .bind(gold)
    .bind(buyer)
    .bind(last)
    .execute(pool)
    .await
    .expect("profiles");

    scene.migrate().await;

    let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("day");
    assert_eq!(
        state_of(pool, gold).await,
        Some((
            3,
            since,
            7,
            Some(last),
            Some(day("2025-03-02")),
            Some(day("2026-10-30")),
            Some(14),
            Some(930_000),
            None
        )),
        "the state keeps its tier and version and takes the profile"
    );
    assert_eq!(
        state_of(pool, buyer).await,
        Some((
            0,
            joined,
            1,
            Some(last),
            Some(day("2026-10-30")),
            Some(day("2026-10-30")),
            Some(1),
            Some(0),
            Some(25_000)
        )),
        "a buyer without a state gets the base tier since joining, with the profile"
    );
    assert_eq!(
        state_of(pool, browser).await,
        Some((0, since, 2, None, None, None, None, None, None)),
        "a state without a profile has none"
    );
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('purchase_profiles')::text")
        .fetch_one(pool)
        .await
        .expect("catalogue");
    assert_eq!(table, None, "the profiles' table is gone");
}

/// A state's tier, since, version and month columns.
type MonthsRow = (
    i32,
    DateTime<Utc>,
    i64,
    Vec<NaiveDate>,
    Vec<i64>,
    Vec<i64>,
    Vec<i64>,
);

async fn months_of(pool: &PgPool, customer: Uuid) -> Option<MonthsRow> {
    sqlx::query_as(
        "SELECT earned_rank, since, version, months, spend_through, points_through, purchases_through
         FROM tier_states WHERE customer_id = $1",
    )
    .bind(customer)
    .fetch_optional(pool)
    .await
    .expect("state")
}

#[tokio::test]
async fn buckets_move_onto_their_states_as_running_totals_and_a_buyer_without_one_gets_the_base_tier()
 {
    let scene = Scene::before(20261208100028).await;
    let pool = &scene.pool;
    let (program, gold, buyer, browser) = (scene.program, scene.gold, scene.buyer, scene.browser);
    let (joined, since) = (scene.joined, scene.since);
    // Inserted out of month order, with a month refunded to nothing.
    sqlx::query(
        "INSERT INTO buckets (program_id, customer_id, month, net_spend_minor, points, purchases)
         VALUES ($1, $2, '2026-09-01', 300000, 300, 2), ($1, $2, '2026-03-01', 500000, 500, 1),
                ($1, $2, '2026-06-01', 0, 0, 0), ($1, $3, '2026-10-01', 25000, 25, 1)",
    )
    .bind(program)
    .bind(gold)
    .bind(buyer)
    .execute(pool)
    .await
    .expect("buckets");

    scene.migrate().await;

    let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("day");
    assert_eq!(
        months_of(pool, gold).await,
        Some((
            3,
            since,
            7,
            vec![day("2026-03-01"), day("2026-06-01"), day("2026-09-01")],
            vec![500_000, 500_000, 800_000],
            vec![500, 500, 800],
            vec![1, 1, 3],
        )),
        "the state keeps its tier and version and takes the months in order, with running totals"
    );
    assert_eq!(
        months_of(pool, buyer).await,
        Some((
            0,
            joined,
            1,
            vec![day("2026-10-01")],
            vec![25_000],
            vec![25],
            vec![1]
        )),
        "a buyer without a state gets the base tier since joining"
    );
    assert_eq!(
        months_of(pool, browser).await,
        Some((0, since, 2, vec![], vec![], vec![], vec![])),
        "a state without buckets has no months"
    );
    let buckets_left: Option<String> = sqlx::query_scalar("SELECT to_regclass('buckets')::text")
        .fetch_one(pool)
        .await
        .expect("lookup");
    assert_eq!(buckets_left, None, "the buckets' table is gone");
}
