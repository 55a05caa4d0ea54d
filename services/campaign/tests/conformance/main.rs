//! One conformance suite for every campaign storage backend: each case runs against each backend
//! on a fresh store (Postgres: a fresh database; SQLite: a fresh file). Set `TEST_LOG=debug` to see logs.

mod suite;

use std::sync::Arc;

use tierline_campaign::storage::{
    CampaignStore,
    postgres::{MIGRATOR, PgCampaignStore, SCHEMA},
    sqlite::SqliteCampaignStore,
};
use tierline_runtime::config::{ConfigSource, DatabaseSettings};
use tierline_testkit::{TestDatabase, TestSqliteFile};
use tokio_util::sync::CancellationToken;

#[allow(missing_debug_implementations)]
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn CampaignStore>,
    _database: Option<TestDatabase>,
    _listener: Option<tokio_util::sync::DropGuard>,
    _file: Option<TestSqliteFile>,
}

async fn sqlite() -> Backend {
    tierline_testkit::init_logging();
    let file = TestSqliteFile::new();
    let store = SqliteCampaignStore::open(&file.url())
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
    let store = Arc::new(PgCampaignStore::new(pool, shutdown.clone()));
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
            case!(campaigns_are_created_once_per_key_and_saved_by_revision);
            case!(a_replayed_enrolment_creates_nothing_twice);
            case!(leases_are_exclusive_expire_and_the_first_ack_of_the_holder_wins);
            case!(attribution_counts_each_purchase_once_and_nets_refunds);
            case!(the_scheduler_sees_due_campaigns_and_lists_filter_and_page);
            case!(members_page_in_order_and_the_report_aggregates_each_arm);
            case!(the_revenue_variance_survives_large_similar_amounts);
            case!(the_report_counts_each_customer_once_and_each_purchase_once);
            case!(a_purchase_dated_ahead_counts_for_an_entry_made_before_its_date);
            case!(unreadable_feed_events_are_parked_once);
        }
    };
}

conformance_suite!(postgres);
conformance_suite!(sqlite);
