//! The circuit breaker in front of Redis, which also owns the connection.
//!
//! - Closed: calls go to Redis. [`FAILURES_TO_OPEN`] failures or timeouts in a row open it.
//! - Open: no call goes to Redis, so a Redis that is down or slow costs a lookup nothing; a
//!   background probe opens a new connection and PINGs it every [`PROBE_EVERY`], and closes the
//!   breaker with that connection as soon as Redis answers. Hits resume within one probe
//!   interval of Redis answering again, whatever the client library's own reconnection backoff.
//! - It starts open: the first connection is the probe's.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use super::connection::Connection;
use crate::cache::RedisTopology;

/// Failures in a row that open the breaker.
pub(super) const FAILURES_TO_OPEN: u32 = 3;

/// How often an open breaker tries Redis.
pub(super) const PROBE_EVERY: Duration = Duration::from_millis(250);

struct State {
    /// The connection while closed; none while open.
    connection: RwLock<Option<Connection>>,
    failures: AtomicU32,
    topology: RedisTopology,
    url: String,
    timeout: Duration,
}

/// The breaker and its connection; cheap to clone.
#[derive(Clone)]
pub(super) struct Breaker {
    state: Arc<State>,
}

impl Breaker {
    /// Starts open, probing until Redis answers.
    pub(super) fn start(topology: RedisTopology, url: String, timeout: Duration) -> Self {
        let breaker = Self {
            state: Arc::new(State {
                connection: RwLock::new(None),
                failures: AtomicU32::new(0),
                topology,
                url,
                timeout,
            }),
        };
        tokio::spawn(breaker.clone().probe());
        breaker
    }

    /// The connection, while the breaker is closed.
    pub(super) fn connection(&self) -> Option<Connection> {
        self.state
            .connection
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A call succeeded.
    pub(super) fn succeeded(&self) {
        self.state.failures.store(0, Ordering::Relaxed);
    }

    /// A call failed or timed out; opens the breaker after enough in a row.
    pub(super) fn failed(&self, error: &str) {
        let failures = self.state.failures.fetch_add(1, Ordering::SeqCst) + 1;
        if failures < FAILURES_TO_OPEN {
            return;
        }
        let opened = self
            .state
            .connection
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .is_some();
        if opened {
            tracing::warn!(
                error,
                failures,
                "Redis failed or was slow: serving tier lookups from Postgres until it answers again"
            );
            tokio::spawn(self.clone().probe());
        }
    }

    /// Opens connections until one answers PING, then closes the breaker with it.
    async fn probe(self) {
        let state = &self.state;
        let mut announced = false;
        loop {
            // Connecting may take a while; the PING must answer within a call's timeout, or a
            // Redis that is alive but slow would close the breaker only to open it again.
            let attempt = async {
                let connection = Connection::open(state.topology, &state.url).await?;
                match tokio::time::timeout(state.timeout, connection.ping()).await {
                    Ok(answer) => answer.map(|()| connection),
                    Err(_) => Err(redis::RedisError::from((
                        redis::ErrorKind::IoError,
                        "PING timed out",
                    ))),
                }
            }
            .await;
            match attempt.map_err(Some) {
                Ok(connection) => {
                    state.failures.store(0, Ordering::SeqCst);
                    *state
                        .connection
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(connection);
                    tracing::info!(topology = ?state.topology, "tier cache connected to Redis");
                    return;
                }
                Err(Some(error)) if !announced => {
                    tracing::warn!(%error, "Redis unreachable: serving tier lookups from Postgres");
                    announced = true;
                }
                _ => {}
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }
}
