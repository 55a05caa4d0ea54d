//! Postgres session advisory locks that live exactly as long as a value: each holds a connection
//! of its own, so dropping the value, or the death of the process, releases the lock. Services
//! use them for "one at a time across replicas" work (evaluation runs, campaign launches) and
//! read a free lock on work marked in progress as "its owner died".

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How often a held Postgres lock checks that its connection is alive.
const LIVENESS_PING: Duration = Duration::from_secs(1);
/// How long a liveness check may take before the lock counts as lost.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(5);

/// A held lock; dropping it releases the lock: at once for an in-process lock, and for a
/// Postgres lock as soon as the server sees its connection close (a moment later: whoever waits
/// for it must retry, not expect it free on the next line). Backend-neutral, so storage traits
/// can return it.
///
/// A Postgres lock lives as long as its connection. If that connection dies (the server
/// restarted, a network cut, an operator's `pg_terminate_backend`), the server has released the
/// lock and another replica may take it: [`HeldLock::lost`] resolves then, so the holder can stop
/// the work the lock guarded.
pub struct HeldLock {
    _holder: Box<dyn Send + Sync>,
    lost: CancellationToken,
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldLock")
    }
}

impl HeldLock {
    /// A lock kept alive by `holder` (an in-process guard, say); it is never lost.
    pub fn new(holder: impl Send + Sync + 'static) -> Self {
        Self {
            _holder: Box::new(holder),
            lost: CancellationToken::new(),
        }
    }

    /// A lock held by the session of `connection`: a task owns the connection, checks every
    /// second that it answers, and closes it when the lock is dropped.
    fn on_connection(mut connection: PgConnection) -> Self {
        let lost = CancellationToken::new();
        let released = CancellationToken::new();
        let (lost_signal, release) = (lost.clone(), released.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = release.cancelled() => {
                        let _ = connection.close().await;
                        return;
                    }
                    () = tokio::time::sleep(LIVENESS_PING) => {}
                }
                let alive = tokio::time::timeout(LIVENESS_TIMEOUT, connection.ping()).await;
                if !matches!(alive, Ok(Ok(()))) {
                    tracing::warn!(
                        "a held advisory lock's connection stopped answering: the lock is lost"
                    );
                    lost_signal.cancel();
                    return;
                }
            }
        });
        // Dropping the lock drops the guard, which stops the task, which closes the connection.
        Self {
            _holder: Box::new(released.drop_guard()),
            lost,
        }
    }

    /// Resolves when the lock is lost without being dropped (its connection died); never for a
    /// lock that cannot be lost.
    pub fn lost(&self) -> WaitForCancellationFutureOwned {
        self.lost.clone().cancelled_owned()
    }
}

/// Waits for the advisory lock `key` and holds it.
pub async fn session_lock(pool: &PgPool, key: i64) -> Result<HeldLock, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut connection)
        .await?;
    Ok(HeldLock::on_connection(connection))
}

/// Waits for the advisory lock `key` in shared mode and holds it: any number of shared holders
/// at once, none while someone holds it exclusively (also as a transaction lock).
pub async fn session_lock_shared(pool: &PgPool, key: i64) -> Result<HeldLock, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock_shared($1)")
        .bind(key)
        .execute(&mut connection)
        .await?;
    Ok(HeldLock::on_connection(connection))
}

/// Holds the advisory lock `key` if nobody holds it now.
pub async fn try_session_lock(pool: &PgPool, key: i64) -> Result<Option<HeldLock>, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut connection)
        .await?;
    if locked {
        Ok(Some(HeldLock::on_connection(connection)))
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
