//! The tier cache, in front of the store (Postgres, the record of truth; SQLite in the
//! development mode).
//!
//! - What is cached: one customer's record in one program (membership, tier state, monthly
//!   buckets), in the compact encoding of [`codec`], with the state's version. Lookups compute
//!   the tier view from it at read time, so windows and retention dates are always current.
//! - Two layers: the [`near`] cache in this replica's memory, then [`redis`], shared by every
//!   replica. A hot lookup costs no network call; a near miss costs one Redis round trip; a
//!   Redis miss reads the store and fills both layers in the background.
//! - Write-through: after a change commits, the records it changed are written to Redis
//!   (compare-and-set by version) and announced to every replica ([`invalidation`]), whose near
//!   caches drop what is older.
//! - Never older over newer, in both layers: versions only rise, a fill needs a lease (Redis) or
//!   a ticket (near) that any write in between invalidates.
//! - Keys carry the program's cache generation, raised when every member's record changes at
//!   once (a bucket rebuild), so that no record of an earlier generation is ever read.
//!
//! Deployments: Redis with near caches (production: `TIERLINE_REDIS_URL`); none (every lookup
//! reads the store); or the near cache alone, only for a single process that makes every write
//! itself (the all-in-one development mode: another replica's writes would go unseen).

mod codec;
mod invalidation;
mod near;
mod redis;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use tierline_runtime::{config::Secret, metrics::Metrics};
use uuid::Uuid;

use self::near::{Key, NearCache, Ticket};
use crate::domain::{ports::CustomerRecord, program::Program};

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
    /// commas; Redis is off when unset.
    pub url: Option<Secret>,
    /// `TIERLINE_REDIS_TOPOLOGY`: a single server or a cluster.
    pub topology: RedisTopology,
    /// `TIERLINE_REDIS_TIMEOUT`: longest wait for one Redis call before falling back.
    pub timeout: Duration,
    /// `TIERLINE_CACHE_TTL`: how long a Redis value lives without being rewritten.
    pub ttl: Duration,
    /// `TIERLINE_NEAR_CACHE_RECORDS`: records held in each replica's memory (0: no near cache).
    pub near_records: usize,
    /// `TIERLINE_NEAR_CACHE_TTL`: how long a record lives in a replica's memory without being
    /// rewritten (the net under the invalidations).
    pub near_ttl: Duration,
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
            "Tier cache lookups by result: near (this replica's memory), hit (Redis), miss (read \
             from the store)",
            this.lookups.clone(),
        );
        metrics.register(
            "tier_cache_fallbacks",
            "Tier lookups served from the store because Redis failed, was slow, or its breaker \
             was open",
            this.fallbacks.clone(),
        );
        metrics.register(
            "tier_cache_write_errors",
            "Tier cache writes that failed (Redis down or slow); the repair queue redoes them",
            this.write_errors.clone(),
        );
        this
    }

    fn counted(&self, result: &'static str, count: usize) {
        if count > 0 {
            self.lookups
                .get_or_create(&LookupLabels { result })
                .inc_by(count as u64);
        }
    }
}

/// Where a program's records live in the cache: the program and its cache generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyspace {
    /// The program.
    pub program_id: Uuid,
    /// Its cache generation.
    pub generation: i32,
}

impl Keyspace {
    /// The keyspace of `program` as it was read.
    pub fn of(program: &Program) -> Self {
        Self {
            program_id: program.id,
            generation: program.cache_generation,
        }
    }

    fn key(self, customer_id: Uuid) -> Key {
        Key {
            program_id: self.program_id,
            generation: self.generation,
            customer_id,
        }
    }

    fn redis_key(self, customer_id: Uuid) -> Vec<u8> {
        redis::key(self.program_id, self.generation, customer_id)
    }
}

/// A customer the cache did not have, and what it takes to fill it afterwards.
#[derive(Debug)]
struct Miss {
    customer_id: Uuid,
    ticket: Option<Ticket>,
    leased: bool,
}

/// What [`TierCache::get_many`] found: records, and the misses to read from the store and
/// hand back to [`TierCache::fill`].
#[derive(Debug)]
pub struct CacheRead {
    /// Cached records by customer.
    pub found: HashMap<Uuid, CustomerRecord>,
    misses: Vec<Miss>,
    lease: Vec<u8>,
}

impl CacheRead {
    /// The customers to read from the store.
    pub fn missed(&self) -> Vec<Uuid> {
        self.misses.iter().map(|miss| miss.customer_id).collect()
    }
}

/// A fill of Redis going on in the background; lookups drop it, tests await it.
#[derive(Debug)]
pub struct Fill(Option<tokio::task::JoinHandle<()>>);

impl Fill {
    /// Waits until the fill is done (or was dropped).
    pub async fn finished(self) {
        if let Some(task) = self.0 {
            let _ = task.await;
        }
    }
}

/// The tier cache; cheap to clone.
#[derive(Debug, Clone)]
pub struct TierCache {
    near: Option<NearCache>,
    redis: Option<redis::RedisCache>,
    metrics: CacheMetrics,
    /// Write-throughs Redis did not take, so far (the repairer looks harder after one).
    write_failures: Arc<AtomicU64>,
}

impl TierCache {
    /// Redis with near caches when `TIERLINE_REDIS_URL` is set (connecting in the background:
    /// Redis may come up after this service), otherwise none.
    pub fn start(settings: &CacheSettings, metrics: &Metrics) -> Self {
        let metrics = CacheMetrics::register(metrics);
        let Some(url) = &settings.url else {
            tracing::info!("TIERLINE_REDIS_URL is not set: tier lookups read the store only");
            return Self {
                near: None,
                redis: None,
                metrics,
                write_failures: Arc::default(),
            };
        };
        let near = (settings.near_records > 0).then(|| {
            let near = NearCache::new(settings.near_records, settings.near_ttl, false);
            invalidation::follow(settings.topology, url.expose().to_owned(), near.clone());
            near
        });
        Self {
            near,
            redis: Some(redis::RedisCache::start(
                settings,
                url.expose(),
                metrics.clone(),
            )),
            metrics,
            write_failures: Arc::default(),
        }
    }

    /// The near cache alone, of at most `records` records living `ttl` each: only for a single
    /// process that makes every write itself (the all-in-one development mode).
    pub fn in_process(records: usize, ttl: Duration, metrics: &Metrics) -> Self {
        Self {
            near: Some(NearCache::new(records, ttl, true)),
            redis: None,
            metrics: CacheMetrics::register(metrics),
            write_failures: Arc::default(),
        }
    }

    /// The cached records among `customer_ids`; the rest must be read from the store and given
    /// to [`TierCache::fill`]. Any Redis failure reads as "missed".
    pub async fn get_many(&self, space: Keyspace, customer_ids: &[Uuid]) -> CacheRead {
        let mut read = CacheRead {
            found: HashMap::with_capacity(customer_ids.len()),
            misses: Vec::new(),
            lease: Vec::new(),
        };
        let mut absent: Vec<(Uuid, Option<Ticket>)> = Vec::new();
        for customer_id in customer_ids {
            let key = space.key(*customer_id);
            let near = self.near.as_ref();
            match near
                .and_then(|near| near.get(&key))
                .and_then(|value| codec::decode(*customer_id, &value))
            {
                Some(record) => {
                    read.found.insert(*customer_id, record);
                }
                None => absent.push((*customer_id, near.and_then(|near| near.ticket(&key)))),
            }
        }
        self.metrics.counted("near", read.found.len());
        if absent.is_empty() {
            return read;
        }
        let from_redis = match &self.redis {
            Some(redis) => {
                read.lease = format!("L{}", Uuid::new_v4().simple()).into_bytes();
                let keys: Vec<Vec<u8>> = absent
                    .iter()
                    .map(|(customer_id, _)| space.redis_key(*customer_id))
                    .collect();
                redis.read(&keys, &read.lease).await
            }
            None => None,
        };
        let mut hits = 0;
        match from_redis {
            Some(found) => {
                for ((customer_id, ticket), found) in absent.into_iter().zip(found) {
                    let leased = match found {
                        redis::Found::Value(value) => {
                            if let Some(record) = codec::decode(customer_id, &value) {
                                if let (Some(near), Some(ticket)) = (&self.near, ticket) {
                                    near.offer(
                                        space.key(customer_id),
                                        codec::version(&record),
                                        value,
                                        ticket,
                                    );
                                }
                                read.found.insert(customer_id, record);
                                hits += 1;
                                continue;
                            }
                            false
                        }
                        redis::Found::Leased => true,
                        redis::Found::Nothing => false,
                    };
                    read.misses.push(Miss {
                        customer_id,
                        ticket,
                        leased,
                    });
                }
            }
            None => read
                .misses
                .extend(absent.into_iter().map(|(customer_id, ticket)| Miss {
                    customer_id,
                    ticket,
                    leased: false,
                })),
        }
        self.metrics.counted("hit", hits);
        self.metrics.counted("miss", read.misses.len());
        read
    }

    /// Keeps what the store returned for the misses of `read`: in the near cache at once (a
    /// write that committed since the read began keeps it out), in Redis in the background
    /// under the leases taken by the read. Never waits.
    pub fn fill(&self, space: Keyspace, read: CacheRead, loaded: &[CustomerRecord]) -> Fill {
        if read.misses.is_empty() {
            return Fill(None);
        }
        let misses: HashMap<Uuid, &Miss> = read
            .misses
            .iter()
            .map(|miss| (miss.customer_id, miss))
            .collect();
        let mut leased = Vec::new();
        for record in loaded {
            let customer_id = record.member.customer_id;
            let Some(miss) = misses.get(&customer_id) else {
                continue;
            };
            let value = codec::encode(record);
            if let (Some(near), Some(ticket)) = (&self.near, miss.ticket) {
                near.offer(
                    space.key(customer_id),
                    codec::version(record),
                    value.clone(),
                    ticket,
                );
            }
            if miss.leased {
                leased.push((space.redis_key(customer_id), value));
            }
        }
        Fill(
            self.redis
                .as_ref()
                .and_then(|redis| redis.fill(read.lease, leased)),
        )
    }

    /// Writes `records` after the change that produced them committed, unless newer versions
    /// are cached, and tells every replica. Returns false when Redis did not take it all (the
    /// change's repair, queued in its transaction, then stays for the repairer).
    pub async fn put_many(&self, space: Keyspace, records: &[CustomerRecord]) -> bool {
        if records.is_empty() {
            return true;
        }
        let values: Vec<(Key, i64, Bytes)> = records
            .iter()
            .map(|record| {
                (
                    space.key(record.member.customer_id),
                    codec::version(record),
                    codec::encode(record),
                )
            })
            .collect();
        if let Some(near) = &self.near {
            for (key, version, value) in &values {
                near.write(*key, *version, value.clone());
            }
        }
        let Some(redis) = &self.redis else {
            return true;
        };
        let invalidation =
            invalidation::encode(values.iter().map(|(key, version, _)| (*key, *version)));
        let values: Vec<(Vec<u8>, i64, Bytes)> = values
            .into_iter()
            .map(|(key, version, value)| {
                (
                    redis::key(key.program_id, key.generation, key.customer_id),
                    version,
                    value,
                )
            })
            .collect();
        let written = redis
            .put(&values, invalidation::CHANNEL, &invalidation)
            .await;
        if !written {
            self.write_failures.fetch_add(1, Ordering::SeqCst);
        }
        written
    }

    /// Drops `customer_ids` of `space` from Redis and from every replica's near cache, whatever
    /// their version: the repair of writes that may have failed. True when Redis took it (or
    /// there is no Redis).
    pub async fn drop_many(&self, space: Keyspace, customer_ids: &[Uuid]) -> bool {
        if let Some(near) = &self.near {
            for customer_id in customer_ids {
                near.remove(&space.key(*customer_id));
            }
        }
        let Some(redis) = &self.redis else {
            return true;
        };
        let keys: Vec<Vec<u8>> = customer_ids
            .iter()
            .map(|customer_id| space.redis_key(*customer_id))
            .collect();
        let invalidation = invalidation::encode(
            customer_ids
                .iter()
                .map(|customer_id| (space.key(*customer_id), invalidation::DROP_ANY)),
        );
        redis
            .delete(&keys, invalidation::CHANNEL, &invalidation)
            .await
    }

    /// Whether a shared cache (Redis) is configured: only then do writes need repairs.
    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Counts a write-through that could not be made (its records could not be read), so that
    /// the repairer looks for its repair soon.
    pub fn note_write_failure(&self) {
        if self.redis.is_some() {
            self.write_failures.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How many write-throughs Redis did not take since this process started.
    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::SeqCst)
    }

    /// Whether Redis takes calls now (configured, connected, breaker closed).
    pub fn redis_available(&self) -> bool {
        self.redis
            .as_ref()
            .is_some_and(redis::RedisCache::available)
    }
}
