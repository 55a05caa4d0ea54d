//! Test support shared by every service's integration tests:
//! - [`TestDatabase`]: a fresh Postgres database per test, dropped afterwards;
//! - [`TestSqliteFile`]: a fresh SQLite file per test, removed afterwards;
//! - [`RedisServer`]: a Redis of one test's own, which it can stop, start again or pause;
//! - [`RedisCluster`]: a throwaway three-node Redis Cluster;
//! - [`Proxy`]: a TCP proxy a test can cut, stall or slow down, to take a server away from a
//!   client and give it back;
//! - [`tokens`]: signed test tokens (valid, expired, wrongly signed, with chosen scopes);
//! - [`fixtures`]: the example programs (Innisfree) as tests load them;
//! - [`eventually`]: waiting for what happens asynchronously, with a deadline;
//! - [`init_logging`]: quiet logs unless `TEST_LOG` is set.
//!
//! Tests reach Postgres at `TIERLINE_TEST_DATABASE_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres` (`scripts/ensure-services.sh` starts it).

pub mod bounds;
pub mod conformance;
mod eventually;
pub mod fixtures;
mod proxy;
mod redis_cluster;
mod redis_server;
pub mod tokens;

pub use eventually::{PATIENCE, eventually, eventually_within};
pub use proxy::Proxy;
pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;

use std::sync::Once;

use sqlx::{Connection, Executor, PgConnection};

/// The Redis that tests use, `TIERLINE_TEST_REDIS_URL`, by default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("TIERLINE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Where tests create their databases.
pub fn admin_database_url() -> String {
    std::env::var("TIERLINE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Installs a log subscriber when `TEST_LOG` is set (its value is the filter, e.g. `debug`);
/// otherwise tests stay quiet.
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let filter = if filter.is_empty() || filter == "1" {
                "info".to_owned()
            } else {
                filter
            };
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// Waits until the server at `addr` reports SERVING (migrations done, database reachable)
/// (`tierline_runtime::client::until_serving`). Panics after 30 s.
pub async fn wait_until_serving(addr: std::net::SocketAddr) {
    tierline_runtime::client::until_serving(addr, std::time::Duration::from_secs(30))
        .await
        .expect("the service reports SERVING within 30 s");
}

/// A database that exists for one test and is dropped when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    pub async fn create() -> anyhow::Result<Self> {
        let admin_url = admin_database_url();
        let name = format!("tierline_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await?;
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await?;
        admin.close().await?;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => anyhow::bail!("TIERLINE_TEST_DATABASE_URL has no database name: {admin_url}"),
        };
        Ok(Self {
            name,
            url,
            admin_url,
        })
    }

    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        // Drop runs inside the test's runtime, where blocking on async work is not allowed: use
        // a thread with its own small runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await?;
                admin.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// A fresh SQLite database file in the temporary directory, removed (with its WAL files) when
/// dropped: the embedded backends' counterpart of [`TestDatabase`].
#[derive(Debug)]
pub struct TestSqliteFile {
    path: std::path::PathBuf,
}

impl TestSqliteFile {
    /// A new, not yet existing, file name.
    pub fn new() -> Self {
        Self {
            path: std::env::temp_dir().join(format!("tierline-test-{}.db", uuid::Uuid::now_v7())),
        }
    }

    /// Its `sqlite://` URL.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

impl Default for TestSqliteFile {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestSqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
