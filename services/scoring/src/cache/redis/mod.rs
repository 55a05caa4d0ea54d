//! The Redis backend of the tier cache: shared by every replica, so one replica's write-through is
//! every replica's hit.
//!
//! - Never older over newer: every write is a compare-and-set in Lua that only replaces an absent
//!   or lower version, so a slow cache-aside write of version 3 cannot overwrite version 4.
//! - A TTL on every key is the safety net.
//! - Redis Cluster is supported (`TIERLINE_REDIS_TOPOLOGY=cluster`): keys spread over the slots,
//!   so a lookup batch is one command per key rather than one pipeline.
//! - Redis is optional: every call has a timeout; when Redis fails or is slow, lookups are served
//!   from Postgres, counted in `tierline_tier_cache_fallbacks_total`, and logged once per outage.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

mod connection;

use redis::Script;
use tokio::sync::RwLock;
use uuid::Uuid;

use self::connection::Connection;
use super::{CacheMetrics, CacheSettings, LookupLabels, key, version};
use crate::storage::CustomerRecord;

/// Only replaces an absent or older version; sets the TTL. KEYS[1] = key; ARGV = version,
/// document, ttl seconds.
const COMPARE_AND_SET: &str = r"
local current = redis.call('HGET', KEYS[1], 'v')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
";

/// The Redis tier cache; cheap to clone.
#[derive(Clone)]
pub(super) struct RedisCache {
    connection: Arc<RwLock<Option<Connection>>>,
    enabled: bool,
    timeout: Duration,
    ttl_seconds: u64,
    script: Arc<Script>,
    degraded: Arc<AtomicBool>,
    metrics: CacheMetrics,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("enabled", &self.enabled)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisCache {
    /// Connects in the background (Redis may come up after this service); until then, and
    /// whenever Redis fails, lookups fall back to Postgres.
    pub(super) fn start(settings: &CacheSettings, metrics: CacheMetrics) -> Self {
        let cache = Self {
            connection: Arc::new(RwLock::new(None)),
            enabled: settings.url.is_some(),
            timeout: settings.timeout,
            ttl_seconds: settings.ttl.as_secs().max(1),
            script: Arc::new(Script::new(COMPARE_AND_SET)),
            degraded: Arc::new(AtomicBool::new(false)),
            metrics,
        };
        match &settings.url {
            None => {
                tracing::info!("TIERLINE_REDIS_URL is not set: tier lookups read Postgres only")
            }
            Some(url) => {
                let (url, topology, slot, degraded) = (
                    url.clone(),
                    settings.topology,
                    cache.connection.clone(),
                    cache.degraded.clone(),
                );
                tokio::spawn(async move {
                    let mut delay = Duration::from_millis(100);
                    loop {
                        match Connection::open(topology, url.expose()).await {
                            Ok(connection) => {
                                *slot.write().await = Some(connection);
                                tracing::info!(?topology, "tier cache connected to Redis");
                                return;
                            }
                            Err(error) => {
                                if !degraded.swap(true, Ordering::SeqCst) {
                                    tracing::warn!(%error, "Redis unreachable: serving tier lookups from Postgres");
                                }
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(5));
                            }
                        }
                    }
                });
            }
        }
        cache
    }

    async fn connection(&self) -> Option<Connection> {
        if !self.enabled {
            return None;
        }
        self.connection.read().await.clone()
    }

    fn succeeded(&self) {
        if self.degraded.swap(false, Ordering::SeqCst) {
            tracing::info!("Redis answers again: tier lookups use the cache");
        }
    }

    fn failed(&self, error: &str) {
        if !self.degraded.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                error,
                "Redis failed or was slow: serving tier lookups from Postgres until it recovers"
            );
        }
    }

    /// The cached records among `customer_ids`; the rest must be read from Postgres. Any Redis
    /// failure reads as "all missed".
    pub(super) async fn get_many(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> HashMap<Uuid, CustomerRecord> {
        let mut found = HashMap::new();
        if !self.enabled {
            return found;
        }
        let Some(connection) = self.connection().await else {
            self.metrics.fallbacks.inc();
            return found;
        };
        let keys: Vec<String> = customer_ids
            .iter()
            .map(|customer_id| key(program_id, *customer_id))
            .collect();
        let answer = tokio::time::timeout(self.timeout, connection.hget_many(&keys, "d")).await;
        match answer {
            Ok(Ok(documents)) => {
                self.succeeded();
                for (customer_id, document) in customer_ids.iter().zip(documents) {
                    match document
                        .and_then(|text| serde_json::from_str::<CustomerRecord>(&text).ok())
                    {
                        Some(record) => {
                            self.metrics
                                .lookups
                                .get_or_create(&LookupLabels { result: "hit" })
                                .inc();
                            found.insert(*customer_id, record);
                        }
                        None => {
                            self.metrics
                                .lookups
                                .get_or_create(&LookupLabels { result: "miss" })
                                .inc();
                        }
                    }
                }
            }
            Ok(Err(error)) => {
                self.metrics.fallbacks.inc();
                self.failed(&error.to_string());
            }
            Err(_) => {
                self.metrics.fallbacks.inc();
                self.failed("timed out");
            }
        }
        found
    }

    /// Writes `records` unless a newer version is cached; failures are counted and otherwise
    /// ignored (Postgres stays right, and the TTL bounds any staleness after an outage).
    pub(super) async fn put_many(&self, program_id: Uuid, records: &[CustomerRecord]) {
        if records.is_empty() {
            return;
        }
        let Some(connection) = self.connection().await else {
            return;
        };
        let mut invocations = Vec::with_capacity(records.len());
        for record in records {
            let Ok(document) = serde_json::to_string(record) else {
                continue;
            };
            let mut invocation = self.script.key(key(program_id, record.member.customer_id));
            invocation
                .arg(version(record))
                .arg(document)
                .arg(self.ttl_seconds);
            invocations.push(invocation);
        }
        match tokio::time::timeout(self.timeout * 4, connection.invoke_all(&invocations)).await {
            Ok(Ok(())) => self.succeeded(),
            Ok(Err(error)) => {
                self.metrics.write_errors.inc();
                self.failed(&error.to_string());
            }
            Err(_) => {
                self.metrics.write_errors.inc();
                self.failed("timed out");
            }
        }
    }
}
