//! The tier cache seen from a test: a cache of the test's own to read Redis with, the Redis
//! address and raw connection, and keys for evictions by hand.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tierline_runtime::{config::Secret, metrics::Metrics};
use tierline_scoring::cache::{CacheSettings, Keyspace, RedisTopology, TierCache};
use uuid::Uuid;

/// Cache settings for Redis at `url` alone (no near cache).
pub(crate) fn settings(url: String, timeout: Duration) -> CacheSettings {
    CacheSettings {
        url: Some(Secret::new(url)),
        topology: RedisTopology::Standalone,
        timeout,
        ttl: Duration::from_secs(60),
        // Layers apart: these tests look at Redis alone.
        near_records: 0,
        near_ttl: Duration::from_secs(60),
    }
}

/// A keyspace of a program nobody else uses.
pub(crate) fn space() -> Keyspace {
    Keyspace {
        program_id: Uuid::now_v7(),
        generation: 0,
    }
}

/// The version and earned rank cached for `customer`, if any.
pub(crate) async fn cached(
    cache: &TierCache,
    space: Keyspace,
    customer: Uuid,
) -> Option<(i64, u32)> {
    let read = cache.get_many(space, &[customer]).await;
    read.found.get(&customer).and_then(|record| {
        record
            .state
            .as_ref()
            .map(|s| (s.version, s.state.earned_rank))
    })
}

/// Starts the cache and waits until Redis takes calls.
pub(crate) async fn connected(settings: CacheSettings, metrics: &Metrics) -> TierCache {
    let cache = TierCache::start(&settings, metrics);
    await_true("Redis takes calls", Duration::from_secs(10), || {
        let ready = cache.redis_available();
        async move { ready }
    })
    .await;
    cache
}

/// Waits until `condition` holds, at most `within`.
pub(crate) async fn await_true<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The address of the Redis tests share.
pub(crate) fn redis_addr() -> SocketAddr {
    let url = tierline_testkit::redis_url();
    let host_port = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .expect("Redis address")
        .next()
        .expect("Redis address")
}

/// A plain connection to the Redis tests share.
pub(crate) async fn raw_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(tierline_testkit::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis")
}

/// The Redis key of a customer (`t`, program, generation, customer), for evictions by hand.
pub(crate) fn redis_key(space: Keyspace, customer: Uuid) -> Vec<u8> {
    let mut key = vec![b't'];
    key.extend_from_slice(space.program_id.as_bytes());
    key.extend_from_slice(&space.generation.to_be_bytes());
    key.extend_from_slice(customer.as_bytes());
    key
}

/// What Redis holds under a customer's key, read without side effects (no lease taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Nothing.
    Nothing,
    /// A reader's lease: it missed and may fill.
    Lease,
    /// A record of this version.
    Version(i64),
}

/// What Redis holds for `customer` in `space` (a value is `{version}:{protobuf}`).
pub(crate) async fn held(
    redis: &mut redis::aio::MultiplexedConnection,
    space: Keyspace,
    customer: Uuid,
) -> Held {
    let value: Option<Vec<u8>> = redis::cmd("GET")
        .arg(redis_key(space, customer))
        .query_async(redis)
        .await
        .expect("GET");
    match value {
        None => Held::Nothing,
        Some(value) if value.first() == Some(&b'L') => Held::Lease,
        Some(value) => {
            let digits = value.split(|byte| *byte == b':').next().unwrap_or(&[]);
            Held::Version(
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|digits| digits.parse().ok())
                    .expect("a versioned value"),
            )
        }
    }
}

/// Evicts a customer's key, as Redis does under memory pressure.
pub(crate) async fn evict(
    redis: &mut redis::aio::MultiplexedConnection,
    space: Keyspace,
    customer: Uuid,
) {
    let _: () = redis::cmd("DEL")
        .arg(redis_key(space, customer))
        .query_async(redis)
        .await
        .expect("evicted");
}

/// The keyspace a program's records are cached under now.
pub(crate) async fn keyspace_of(db: &mut sqlx::PgConnection, program_id: Uuid) -> Keyspace {
    let generation: i32 =
        sqlx::query_scalar("SELECT cache_generation FROM scoring.programs WHERE id = $1")
            .bind(program_id)
            .fetch_one(db)
            .await
            .expect("generation");
    Keyspace {
        program_id,
        generation,
    }
}
