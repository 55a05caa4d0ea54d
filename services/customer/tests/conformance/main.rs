//! The storage conformance suite: the behaviour every `CustomerStore` backend must have, written
//! once and instantiated per backend with `conformance_suite!`: Postgres (a fresh database per
//! case) and SQLite, the embedded backend of the development mode (a fresh file per case).

mod onboarding;
mod suite;

use std::sync::Arc;

use tierline_customer::storage::{
    CustomerStore,
    postgres::{MIGRATOR, PgCustomerStore, SCHEMA},
    sqlite::SqliteCustomerStore,
};
use tierline_runtime::config::{ConfigSource, DatabaseSettings};
use tierline_testkit::{TestDatabase, TestSqliteFile};
use tokio_util::sync::CancellationToken;

/// A store under test and whatever must live as long as it.
#[allow(missing_debug_implementations)]
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn CustomerStore>,
    _database: Option<TestDatabase>,
    _listener: Option<tokio_util::sync::DropGuard>,
    _file: Option<TestSqliteFile>,
}

async fn sqlite() -> Backend {
    tierline_testkit::init_logging();
    let file = TestSqliteFile::new();
    let store = SqliteCustomerStore::open(&file.url())
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
    let store = Arc::new(PgCustomerStore::new(pool, shutdown.clone(), 2));
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
            case!(customers_round_trip);
            case!(external_ids_are_unique);
            case!(listing_filters_and_pages);
            case!(erasure_is_idempotent_and_revokes_consents);
            case!(consents_keep_history_and_ignore_late_changes);
            case!(purchases_are_idempotent);
            case!(purchases_need_an_active_customer);
            case!(refunds_are_checked_against_their_purchase);
            case!(imports_report_each_item);
            case!(onboarding_is_idempotent_by_external_id);
            case!(the_feed_is_ordered_resumable_and_signalled);
            case!(a_reader_racing_writers_misses_nothing);
        }
    };
}

conformance_suite!(postgres);
conformance_suite!(sqlite);
