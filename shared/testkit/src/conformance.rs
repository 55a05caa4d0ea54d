//! The harness of every service's storage conformance suite: each case runs against a fresh
//! store of each backend (Postgres: a fresh database, the service's schema migrated; SQLite: a
//! fresh file), through [`conformance_suite!`](crate::conformance_suite).

use std::{any::Any, future::Future, sync::Arc};

use sqlx::PgPool;
use tierline_runtime::config::{ConfigSource, DatabaseSettings};
use tokio_util::sync::CancellationToken;

use crate::{TestDatabase, TestSqliteFile};

/// A store under test and whatever must live as long as it (its database or file, and the
/// shutdown of its background tasks, signalled when the backend is dropped).
#[allow(missing_debug_implementations)]
pub struct Backend<S: ?Sized> {
    /// The store under test.
    pub store: Arc<S>,
    _keep: Box<dyn Any + Send>,
}

/// A store opened by `open` over a fresh Postgres database in which `schema` is migrated by
/// `migrator`; `open` gets the pool and the shutdown token the store's tasks watch.
pub async fn postgres<S: ?Sized>(
    schema: &str,
    migrator: &sqlx::migrate::Migrator,
    open: impl FnOnce(PgPool, CancellationToken) -> Arc<S>,
) -> Backend<S> {
    crate::init_logging();
    let database = TestDatabase::create().await.expect("database");
    let source = ConfigSource::from_pairs([("TIERLINE_DATABASE_URL", database.url())]);
    let mut reader = source.reader();
    let settings = DatabaseSettings::read(&mut reader);
    reader.finish().expect("settings");
    let pool = tierline_runtime::db::connect_lazy(&settings, "conformance", schema).expect("pool");
    tierline_runtime::db::migrate(&pool, schema, migrator)
        .await
        .expect("migrations");
    let shutdown = CancellationToken::new();
    let store = open(pool, shutdown.clone());
    Backend {
        store,
        _keep: Box::new((database, shutdown.drop_guard())),
    }
}

/// A store opened by `open` on a fresh SQLite file (its URL).
pub async fn sqlite<S: ?Sized, F: Future<Output = Arc<S>>>(
    open: impl FnOnce(String) -> F,
) -> Backend<S> {
    crate::init_logging();
    let file = TestSqliteFile::new();
    let store = open(file.url()).await;
    Backend {
        store,
        _keep: Box::new(file),
    }
}

/// One test per backend and case: `conformance_suite!(backends: [postgres, sqlite], cases:
/// [a, b])` makes `postgres::a`, `postgres::b`, `sqlite::a`, `sqlite::b`, each running
/// `crate::suite::<case>(store)` on the store that the test crate's `async fn <backend>()`
/// returns (a [`Backend`]).
#[macro_export]
// The cases live in the calling crate's `suite` module: `crate` there is meant.
#[allow(clippy::crate_in_macro_def)]
macro_rules! conformance_suite {
    (backends: [$($backend:ident),+ $(,)?], cases: $cases:tt) => {
        $($crate::conformance_suite!(@backend $backend $cases);)+
    };
    (@backend $backend:ident [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let backend = super::$backend().await;
                    crate::suite::$case(backend.store.clone()).await;
                }
            )*
        }
    };
}
