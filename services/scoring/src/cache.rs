//! The tier cache in Redis, in front of Postgres (the record of truth).
//!
//! - What is cached: one customer's record in one program (membership, tier state, monthly
//!   buckets) under `tierline:tier:{program}:{customer}`, with the state's version. Lookups compute
//!   the tier view from it at read time, so windows and retention dates are always current.
//! - Write-through: after the feed consumer commits, the records it changed are written.
//!   Cache-aside: a lookup that misses reads Postgres and writes what it read.
//! - Never older over newer: every write is a compare-and-set in Lua that only replaces an absent
//!   or lower version, so a slow cache-aside write of version 3 cannot overwrite version 4.
//! - A TTL on every key is the safety net.
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

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use redis::{Script, aio::ConnectionManager};
use tierline_runtime::{config::Secret, metrics::Metrics};
use tokio::sync::RwLock;
use uuid::Uuid;

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

/// How the cache behaves.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `TIERLINE_REDIS_URL`: `redis://host:port/db`; the cache is off when unset.
    pub url: Option<Secret>,
    /// `TIERLINE_REDIS_TIMEOUT`: longest wait for one Redis call before falling back.
    pub timeout: Duration,
    /// `TIERLINE_CACHE_TTL`: how long an entry lives without being rewritten.
    pub ttl: Duration,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    result: &'static str,
}

#[derive(Debug, Clone)]
struct CacheMetrics {
    lookups: Family<LookupLabels, Counter>,
    fallbacks: Counter,
    write_errors: Counter,
}

impl CacheMetrics {
    fn register(metrics: &Metrics) -> Self {
        let this = Self {
            lookups: Family::default(),
            fallbacks: Counter::default(),
            write_errors: Counter::default(),
        };
        metrics.register(
            "tier_cache_lookups",
            "Tier cache lookups by result (hit, miss); the hit ratio is hit / (hit + miss)",
            this.lookups.clone(),
        );
        metrics.register(
            "tier_cache_fallbacks",
            "Tier lookups served from Postgres because Redis failed or was slow",
            this.fallbacks.clone(),
        );
        metrics.register(
            "tier_cache_write_errors",
            "Tier cache writes that failed (Redis down or slow)",
            this.write_errors.clone(),
        );
        this
    }
}

/// The tier cache; cheap to clone. Without a Redis URL every lookup goes to Postgres.
#[derive(Clone)]
pub struct TierCache {
    connection: Arc<RwLock<Option<ConnectionManager>>>,
    enabled: bool,
    timeout: Duration,
    ttl_seconds: u64,
    script: Arc<Script>,
    degraded: Arc<AtomicBool>,
    metrics: CacheMetrics,
}

impl std::fmt::Debug for TierCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierCache")
            .field("enabled", &self.enabled)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn key(program_id: Uuid, customer_id: Uuid) -> String {
    format!("tierline:tier:{program_id}:{customer_id}")
}

fn version(record: &CustomerRecord) -> i64 {
    record.state.as_ref().map_or(0, |state| state.version)
}

impl TierCache {
    /// Connects in the background (Redis may come up after this service); until then, and
    /// whenever Redis fails, lookups fall back to Postgres.
    pub fn start(settings: &CacheSettings, metrics: &Metrics) -> Self {
        let cache = Self {
            connection: Arc::new(RwLock::new(None)),
            enabled: settings.url.is_some(),
            timeout: settings.timeout,
            ttl_seconds: settings.ttl.as_secs().max(1),
            script: Arc::new(Script::new(COMPARE_AND_SET)),
            degraded: Arc::new(AtomicBool::new(false)),
            metrics: CacheMetrics::register(metrics),
        };
        match &settings.url {
            None => {
                tracing::info!("TIERLINE_REDIS_URL is not set: tier lookups read Postgres only")
            }
            Some(url) => {
                let (url, slot, degraded) = (
                    url.clone(),
                    cache.connection.clone(),
                    cache.degraded.clone(),
                );
                tokio::spawn(async move {
                    let mut delay = Duration::from_millis(100);
                    loop {
                        let connected = match redis::Client::open(url.expose()) {
                            Ok(client) => ConnectionManager::new(client).await,
                            Err(error) => Err(error),
                        };
                        match connected {
                            Ok(connection) => {
                                *slot.write().await = Some(connection);
                                tracing::info!("tier cache connected to Redis");
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

    async fn connection(&self) -> Option<ConnectionManager> {
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
    pub async fn get_many(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> HashMap<Uuid, CustomerRecord> {
        let mut found = HashMap::new();
        if !self.enabled {
            return found;
        }
        let Some(mut connection) = self.connection().await else {
            self.metrics.fallbacks.inc();
            return found;
        };
        let mut pipeline = redis::pipe();
        for customer_id in customer_ids {
            pipeline
                .cmd("HGET")
                .arg(key(program_id, *customer_id))
                .arg("d");
        }
        let answer: Result<Result<Vec<Option<String>>, redis::RedisError>, _> =
            tokio::time::timeout(self.timeout, pipeline.query_async(&mut connection)).await;
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
    pub async fn put_many(&self, program_id: Uuid, records: &[CustomerRecord]) {
        if records.is_empty() {
            return;
        }
        let Some(mut connection) = self.connection().await else {
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
        let writes = async {
            for invocation in &invocations {
                invocation.invoke_async::<i64>(&mut connection).await?;
            }
            Ok::<(), redis::RedisError>(())
        };
        match tokio::time::timeout(self.timeout * 4, writes).await {
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
