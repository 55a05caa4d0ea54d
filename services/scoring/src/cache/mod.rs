//! The tier cache, in front of Postgres (the record of truth).
//!
//! - What is cached: one customer's record in one program (membership, tier state, monthly
//!   buckets) under `tierline:tier:{program}:{customer}`, with the state's version. Lookups compute
//!   the tier view from it at read time, so windows and retention dates are always current.
//! - Write-through: after the feed consumer commits, the records it changed are written.
//!   Cache-aside: a lookup that misses reads Postgres and writes what it read.
//! - Never older over newer: a write only replaces an absent or lower version.
//!
//! Two backends: [`redis`] (production: shared by every replica, optional, bounded by timeouts)
//! and [`memory`] (one process only, for the all-in-one development mode: a replica's own map
//! would not see another replica's writes). Without either, every lookup reads Postgres.

mod memory;
mod redis;

use std::{collections::HashMap, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use tierline_runtime::{config::Secret, metrics::Metrics};
use uuid::Uuid;

use crate::storage::CustomerRecord;

/// How Redis is deployed (`TIERLINE_REDIS_TOPOLOGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisTopology {
    /// One address: a single server, or the primary that Sentinel or an operator keeps behind
    /// one service name.
    Standalone,
    /// A Redis Cluster: `TIERLINE_REDIS_URL` lists one or more seed nodes, comma-separated.
    Cluster,
}

/// How the cache behaves.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `TIERLINE_REDIS_URL`: `redis://host:port/db`, or the cluster's seed nodes separated by
    /// commas; the cache is off when unset.
    pub url: Option<Secret>,
    /// `TIERLINE_REDIS_TOPOLOGY`: a single server or a cluster.
    pub topology: RedisTopology,
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

    fn counted(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.lookups.get_or_create(&LookupLabels { result }).inc();
    }
}

fn key(program_id: Uuid, customer_id: Uuid) -> String {
    format!("tierline:tier:{program_id}:{customer_id}")
}

fn version(record: &CustomerRecord) -> i64 {
    record.state.as_ref().map_or(0, |state| state.version)
}

#[derive(Debug, Clone)]
enum Backend {
    Off,
    Redis(redis::RedisCache),
    Memory(memory::MemoryCache),
}

/// The tier cache; cheap to clone.
#[derive(Debug, Clone)]
pub struct TierCache {
    backend: Backend,
}

impl TierCache {
    /// The Redis cache when `TIERLINE_REDIS_URL` is set (connecting in the background: Redis may
    /// come up after this service), otherwise none.
    pub fn start(settings: &CacheSettings, metrics: &Metrics) -> Self {
        let metrics = CacheMetrics::register(metrics);
        let backend = if settings.url.is_some() {
            Backend::Redis(redis::RedisCache::start(settings, metrics))
        } else {
            tracing::info!("TIERLINE_REDIS_URL is not set: tier lookups read Postgres only");
            Backend::Off
        };
        Self { backend }
    }

    /// A cache in this process's memory, of at most `capacity` records living `ttl` each: only
    /// for a single process (the all-in-one development mode).
    pub fn in_process(capacity: usize, ttl: Duration, metrics: &Metrics) -> Self {
        Self {
            backend: Backend::Memory(memory::MemoryCache::new(
                capacity,
                ttl,
                CacheMetrics::register(metrics),
            )),
        }
    }

    /// The cached records among `customer_ids`; the rest must be read from the store. Any
    /// failure reads as "all missed".
    pub async fn get_many(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> HashMap<Uuid, CustomerRecord> {
        match &self.backend {
            Backend::Off => HashMap::new(),
            Backend::Redis(cache) => cache.get_many(program_id, customer_ids).await,
            Backend::Memory(cache) => cache.get_many(program_id, customer_ids),
        }
    }

    /// Writes `records` unless a newer version is cached; failures are counted and otherwise
    /// ignored (the store stays right, and the TTL bounds any staleness after an outage).
    pub async fn put_many(&self, program_id: Uuid, records: &[CustomerRecord]) {
        match &self.backend {
            Backend::Off => {}
            Backend::Redis(cache) => cache.put_many(program_id, records).await,
            Backend::Memory(cache) => cache.put_many(program_id, records),
        }
    }
}
