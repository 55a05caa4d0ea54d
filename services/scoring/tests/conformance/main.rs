//! One conformance suite for every scoring storage backend: each case runs against each backend
//! on a fresh store (Postgres: a fresh database). The embedded backend of the development mode
//! (SQLite) runs the same cases. Set `TEST_LOG=debug` to see logs.

mod suite;
mod value_model;

use std::sync::Arc;

use tierline_runtime::config::{ConfigSource, DatabaseSettings};
use tierline_scoring::storage::{
    ScoringStore,
    postgres::{MIGRATOR, PgScoringStore, SCHEMA},
    sqlite::SqliteScoringStore,
};
use tierline_testkit::{TestDatabase, TestSqliteFile};
use tokio_util::sync::CancellationToken;

/// A store under test and whatever must live as long as it.
#[allow(missing_debug_implementations)]
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn ScoringStore>,
    _database: Option<TestDatabase>,
    _listener: Option<tokio_util::sync::DropGuard>,
    _file: Option<TestSqliteFile>,
}

async fn sqlite() -> Backend {
    tierline_testkit::init_logging();
    let file = TestSqliteFile::new();
    let store = SqliteScoringStore::open(&file.url())
        .await
        .expect("sqlite store");
    Backend {
        store: Arc::new(store),
        _database: None,
        _listener: None,
        _file: Some(file),
    }
}

async fn postgres() -> Backend {
    postgres_with(|store| store).await
}

/// A Postgres backend whose store `configure` sets up.
async fn postgres_with(configure: impl FnOnce(PgScoringStore) -> PgScoringStore) -> Backend {
    tierline_testkit::init_logging();
    let database = TestDatabase::create().await.expect("database");
    let source = ConfigSource::from_pairs([("TIERLINE_DATABASE_URL", database.url())]);
    let mut reader = source.reader();
    let settings = DatabaseSettings::read(&mut reader);
    reader.finish().expect("settings");
    let pool = tierline_runtime::db::connect_lazy(&settings, "conformance", SCHEMA).expect("pool");
    tierline_runtime::db::migrate(&pool, SCHEMA, &MIGRATOR)
        .await
        .expect("migrations");
    let shutdown = CancellationToken::new();
    let store = Arc::new(configure(PgScoringStore::new(pool, shutdown.clone())));
    Backend {
        store,
        _database: Some(database),
        _listener: Some(shutdown.drop_guard()),
        _file: None,
    }
}

macro_rules! conformance_suite {
    ($backend:ident) => {
        mod $backend {
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        let backend = super::$backend().await;
                        crate::suite::$name(backend.store.clone()).await;
                    }
                };
            }
            case!(programs_are_unique_by_code_and_claimed_once_per_key);
            case!(policies_are_numbered_drafted_activated_and_retired);
            case!(a_unit_of_work_counts_a_purchase_once_and_versions_the_state);
            case!(scheduled_runs_open_once_per_due_time_and_runs_lock);
            case!(audiences_read_members_in_id_order_with_their_shown_rank);
            case!(buckets_rebuild_from_counted_purchases_a_chunk_at_a_time);
            case!(cut_points_simulation_and_lifecycles_read_the_population);
            case!(an_evaluation_chunk_sums_the_window_and_saves_only_unmoved_states);
            case!(a_feed_batch_loads_what_it_names_and_writes_sets);
            case!(the_records_a_feed_batch_leaves_are_what_the_store_then_holds);
            case!(refunds_apply_once_and_counted_purchases_are_listed);
            case!(overrides_end_and_the_tier_feed_filters_by_program);
            case!(program_changes_are_announced_when_they_commit);
            case!(cache_repairs_are_queued_with_the_change_and_listed_until_done);
            case!(unreadable_feed_events_are_parked_once);
            case!(
                value_summaries_count_purchase_days_in_the_programs_zone_and_models_are_versioned
            );
        }
    };
}

conformance_suite!(postgres);
conformance_suite!(sqlite);

/// A simulation runs in parts on a large membership only: here the parts are forced on a small
/// one, and must find the same cells as one statement.
mod postgres_in_parts {
    #[tokio::test]
    async fn a_batch_applied_in_partitions_counts_each_purchase_once_even_read_again() {
        let backend = super::postgres().await;
        crate::suite::a_batch_applied_in_partitions_counts_each_purchase_once_even_read_again(
            backend.store.clone(),
        )
        .await;
    }

    #[tokio::test]
    async fn cut_points_simulation_and_lifecycles_read_the_population() {
        let backend =
            super::postgres_with(|store| store.with_simulation_in_parts_from(f32::MIN)).await;
        crate::suite::cut_points_simulation_and_lifecycles_read_the_population(
            backend.store.clone(),
        )
        .await;
    }
}
