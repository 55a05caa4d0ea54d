//! The Redis layer of the tier cache: shared by every replica, so one replica's write-through is
//! every replica's hit.
//!
//! - Values are the compact encoding of [`super::codec`] under a binary key (program, cache
//!   generation, customer): about 250 bytes of Redis memory per customer with a year of monthly
//!   buckets (docs/BENCHMARKS.md).
//! - Never older over newer:
//!   - a write-through is a compare-and-set in Lua that only replaces an absent value, a lease or
//!     a lower version;
//!   - a cache-aside fill needs a lease, taken in the same round trip as the read that missed
//!     (memcache's technique): only the reader holding it may fill, and any write-through or
//!     deletion in between replaces the lease, so a fill of what the reader read before that
//!     write is dropped, even when the written value was evicted meanwhile.
//! - Every committed change is published ([`super::invalidation`]), so that every replica's near
//!   cache drops what is older.
//! - A TTL on every value is the safety net.
//! - Redis is optional and never slows a lookup by more than its timeout once: after
//!   [`breaker::FAILURES_TO_OPEN`] failures in a row the breaker opens and lookups stop calling
//!   Redis (they read Postgres); a background probe opens a new connection every
//!   [`breaker::PROBE_EVERY`] and closes the breaker as soon as Redis answers.
//! - Fills run in the background, at most [`FILLS_IN_FLIGHT`] at once; beyond that a fill is
//!   skipped (the next lookup tries again).

mod breaker;
mod connection;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use redis::Script;
use tokio::sync::Semaphore;
use uuid::Uuid;

use self::breaker::Breaker;
use super::{CacheMetrics, CacheSettings};

/// Fills in flight at once, per replica.
const FILLS_IN_FLIGHT: usize = 64;

/// How long a lease holds a key for its reader.
const LEASE: Duration = Duration::from_secs(10);

/// Replaces an absent value, a lease or a lower version, and sets the TTL.
/// KEYS[1] = key; ARGV = version, value, ttl seconds.
const COMPARE_AND_SET: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+):'))
  if version and version >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
";

/// Fills a key only while the reader's lease is still there.
/// KEYS[1] = key; ARGV = lease, value, ttl seconds.
const FILL_UNDER_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
";

/// What a read found for one key.
#[derive(Debug, Clone)]
pub(super) enum Found {
    /// A cached value.
    Value(Bytes),
    /// Nothing; this reader holds the lease and may fill it.
    Leased,
    /// Nothing this reader may fill (another reader holds the lease).
    Nothing,
}

/// The Redis layer; cheap to clone.
#[derive(Clone)]
pub(super) struct RedisCache {
    breaker: Breaker,
    timeout: Duration,
    ttl_seconds: u64,
    compare_and_set: Arc<Script>,
    fill_under_lease: Arc<Script>,
    fills: Arc<Semaphore>,
    metrics: CacheMetrics,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("timeout", &self.timeout)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish()
    }
}

/// A binary key: `t`, the program, its cache generation (big-endian) and the customer.
pub(super) fn key(program_id: Uuid, generation: i32, customer_id: Uuid) -> Vec<u8> {
    let mut key = Vec::with_capacity(37);
    key.push(b't');
    key.extend_from_slice(program_id.as_bytes());
    key.extend_from_slice(&generation.to_be_bytes());
    key.extend_from_slice(customer_id.as_bytes());
    key
}

impl RedisCache {
    /// Connects in the background (Redis may come up after this service); until then, and
    /// whenever Redis fails, lookups fall back to Postgres.
    pub(super) fn start(settings: &CacheSettings, url: &str, metrics: CacheMetrics) -> Self {
        Self {
            breaker: Breaker::start(settings.topology, url.to_owned(), settings.timeout),
            timeout: settings.timeout,
            ttl_seconds: settings.ttl.as_secs().max(1),
            compare_and_set: Arc::new(Script::new(COMPARE_AND_SET)),
            fill_under_lease: Arc::new(Script::new(FILL_UNDER_LEASE)),
            fills: Arc::new(Semaphore::new(FILLS_IN_FLIGHT)),
            metrics,
        }
    }

    /// Reads `keys`, taking a lease on each that is empty; `None` when Redis is unavailable
    /// (counted as a fallback). The lease token is `lease`.
    pub(super) async fn read(&self, keys: &[Vec<u8>], lease: &[u8]) -> Option<Vec<Found>> {
        let Some(connection) = self.breaker.connection() else {
            self.metrics.fallbacks.inc();
            return None;
        };
        let lease_millis = u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX);
        let answer = tokio::time::timeout(
            self.timeout,
            connection.read_leasing(keys, lease, lease_millis),
        )
        .await;
        match answer {
            Ok(Ok(answers)) => {
                self.breaker.succeeded();
                Some(
                    answers
                        .into_iter()
                        .map(|(value, leased)| match value {
                            // A value that is not a record is another reader's lease.
                            Some(value) if super::codec::version_of(&value).is_some() => {
                                Found::Value(Bytes::from(value))
                            }
                            Some(_) => Found::Nothing,
                            None if leased => Found::Leased,
                            None => Found::Nothing,
                        })
                        .collect(),
                )
            }
            Ok(Err(error)) => {
                self.metrics.fallbacks.inc();
                self.breaker.failed(&error.to_string());
                None
            }
            Err(_) => {
                self.metrics.fallbacks.inc();
                self.breaker.failed("timed out");
                None
            }
        }
    }

    /// Fills the leased `keys` with what the store returned, in the background: the lookup that
    /// read them does not wait. Skipped when too many fills are in flight.
    pub(super) fn fill(
        &self,
        lease: Vec<u8>,
        values: Vec<(Vec<u8>, Bytes)>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if values.is_empty() {
            return None;
        }
        let permit = self.fills.clone().try_acquire_owned().ok()?;
        let connection = self.breaker.connection()?;
        let this = self.clone();
        Some(tokio::spawn(async move {
            let invocations: Vec<_> = values
                .iter()
                .map(|(key, value)| {
                    let mut invocation = this.fill_under_lease.key(key.as_slice());
                    invocation
                        .arg(lease.as_slice())
                        .arg(value.as_ref())
                        .arg(this.ttl_seconds);
                    invocation
                })
                .collect();
            let written =
                tokio::time::timeout(this.timeout * 4, connection.invoke_all(&invocations)).await;
            this.wrote(written);
            drop(permit);
        }))
    }

    /// Writes `values` (key, version, value) unless newer versions are there, then publishes
    /// `invalidation` on `channel`; true when Redis took both.
    pub(super) async fn put(
        &self,
        values: &[(Vec<u8>, i64, Bytes)],
        channel: &str,
        invalidation: &[u8],
    ) -> bool {
        let Some(connection) = self.breaker.connection() else {
            self.metrics.write_errors.inc();
            return false;
        };
        let invocations: Vec<_> = values
            .iter()
            .map(|(key, version, value)| {
                let mut invocation = self.compare_and_set.key(key.as_slice());
                invocation
                    .arg(*version)
                    .arg(value.as_ref())
                    .arg(self.ttl_seconds);
                invocation
            })
            .collect();
        let written = tokio::time::timeout(self.timeout * 4, async {
            connection.invoke_all(&invocations).await?;
            connection.publish(channel, invalidation).await
        })
        .await;
        self.wrote(written)
    }

    /// Deletes `keys` (whatever version, and any lease on them), then publishes `invalidation`.
    pub(super) async fn delete(
        &self,
        keys: &[Vec<u8>],
        channel: &str,
        invalidation: &[u8],
    ) -> bool {
        let Some(connection) = self.breaker.connection() else {
            return false;
        };
        let deleted = tokio::time::timeout(self.timeout * 4, async {
            let mut command = redis::cmd("DEL");
            for key in keys {
                command.arg(key.as_slice());
            }
            match &connection {
                // A cluster refuses a multi-key command across slots: one DEL per key there.
                connection::Connection::Cluster(_) => {
                    futures::future::try_join_all(keys.iter().map(|key| {
                        let mut connection = connection.clone();
                        async move {
                            redis::cmd("DEL")
                                .arg(key.as_slice())
                                .query_async::<i64>(&mut connection)
                                .await
                        }
                    }))
                    .await?;
                }
                connection::Connection::Single(_) => {
                    command.query_async::<i64>(&mut connection.clone()).await?;
                }
            }
            connection.publish(channel, invalidation).await
        })
        .await;
        self.wrote(deleted)
    }

    fn wrote(&self, outcome: Result<redis::RedisResult<()>, tokio::time::error::Elapsed>) -> bool {
        match outcome {
            Ok(Ok(())) => {
                self.breaker.succeeded();
                true
            }
            Ok(Err(error)) => {
                self.metrics.write_errors.inc();
                self.breaker.failed(&error.to_string());
                false
            }
            Err(_) => {
                self.metrics.write_errors.inc();
                self.breaker.failed("timed out");
                false
            }
        }
    }

    /// Whether the breaker lets calls through now.
    pub(super) fn available(&self) -> bool {
        self.breaker.connection().is_some()
    }
}
