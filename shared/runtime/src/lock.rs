//! Postgres session advisory locks that live exactly as long as a value: each holds a connection
//! of its own, so dropping the value, or the death of the process, releases the lock. Services
//! use them for "one at a time across replicas" work (evaluation runs, campaign launches) and
//! read a free lock on work marked in progress as "its owner died".

use sqlx::{Connection, PgPool};

/// A held lock; dropping it releases the lock: at once for an in-process lock, and for a
/// Postgres lock as soon as the server sees its connection close (a moment later: whoever waits
/// for it must retry, not expect it free on the next line). Backend-neutral, so storage traits
/// can return it.
pub struct HeldLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldLock")
    }
}

impl HeldLock {
    /// A lock kept alive by `holder` (a backend's connection, say).
    pub fn new(holder: impl Send + Sync + 'static) -> Self {
        Self(Box::new(holder))
    }
}

/// Waits for the advisory lock `key` and holds it.
pub async fn session_lock(pool: &PgPool, key: i64) -> Result<HeldLock, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut connection)
        .await?;
    Ok(HeldLock::new(std::sync::Mutex::new(connection)))
}

/// Waits for the advisory lock `key` in shared mode and holds it: any number of shared holders
/// at once, none while someone holds it exclusively (also as a transaction lock).
pub async fn session_lock_shared(pool: &PgPool, key: i64) -> Result<HeldLock, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock_shared($1)")
        .bind(key)
        .execute(&mut connection)
        .await?;
    Ok(HeldLock::new(std::sync::Mutex::new(connection)))
}

/// Holds the advisory lock `key` if nobody holds it now.
pub async fn try_session_lock(pool: &PgPool, key: i64) -> Result<Option<HeldLock>, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut connection)
        .await?;
    if locked {
        Ok(Some(HeldLock::new(std::sync::Mutex::new(connection))))
    } else {
        connection.close().await?;
        Ok(None)
    }
}

/// Named locks inside one process, for the embedded stores of the development mode: the same
/// "one at a time" as the advisory locks above where every replica is this one process.
#[derive(Debug, Clone, Default)]
pub struct LocalLocks(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    >,
);

impl LocalLocks {
    fn named(&self, name: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        // A poisoned map only means another thread panicked while inserting: the map is intact.
        let mut locks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(name.to_owned()).or_default().clone()
    }

    /// Holds the lock `name` if nobody holds it now.
    pub fn try_lock(&self, name: &str) -> Option<HeldLock> {
        self.named(name).try_lock_owned().ok().map(HeldLock::new)
    }

    /// Waits for the lock `name` and holds it.
    pub async fn lock(&self, name: &str) -> HeldLock {
        HeldLock::new(self.named(name).lock_owned().await)
    }
}

#[cfg(test)]
mod local_tests {
    use super::LocalLocks;

    #[tokio::test]
    async fn a_local_lock_is_held_once_until_dropped() {
        let locks = LocalLocks::default();
        let held = locks.try_lock("runs").expect("free at first");
        assert!(locks.try_lock("runs").is_none(), "held");
        assert!(locks.try_lock("other").is_some(), "names are independent");
        drop(held);
        let again = locks.lock("runs").await;
        assert!(locks.try_lock("runs").is_none());
        drop(again);
    }
}
