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

#[tokio::test]
async fn profiles_move_onto_their_states_and_a_buyer_without_one_gets_the_base_tier() {
    let database = TestDatabase::create().await.expect("database");
    let pool = pool(&database).await;
    let before = MigrationsBefore::new(20261206100026);
    let earlier = sqlx::migrate::Migrator::new(before.0.as_path())
        .await
        .expect("earlier migrations");
    tierline_runtime::db::migrate(&pool, SCHEMA, &earlier)
        .await
        .expect("migrated to the profiles' table");

    let program = Uuid::now_v7();
    let (gold, buyer, browser) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let joined: DateTime<Utc> = "2025-01-15T03:00:00Z".parse().expect("instant");
    let since: DateTime<Utc> = "2026-02-01T00:00:00Z".parse().expect("instant");
    let last: DateTime<Utc> = "2026-10-30T09:30:00Z".parse().expect("instant");
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
    .execute(&pool)
    .await
    .expect("profiles");

    tierline_runtime::db::migrate(&pool, SCHEMA, &MIGRATOR)
        .await
        .expect("migrated");

    let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("day");
    assert_eq!(
        state_of(&pool, gold).await,
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
        state_of(&pool, buyer).await,
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
        state_of(&pool, browser).await,
        Some((0, since, 2, None, None, None, None, None, None)),
        "a state without a profile has none"
    );
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('purchase_profiles')::text")
        .fetch_one(&pool)
        .await
        .expect("catalogue");
    assert_eq!(table, None, "the profiles' table is gone");
}
