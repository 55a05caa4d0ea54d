//! The tier cache against a real Redis: a newer version is never replaced by an older one, and
//! an unreachable Redis falls back at once.

use std::time::Duration;

use chrono::Utc;
use tierline_runtime::{config::Secret, metrics::Metrics};
use tierline_scoring::{
    cache::{CacheSettings, RedisTopology, TierCache},
    domain::{
        decision::TierState,
        state::{Member, StoredState},
    },
    storage::CustomerRecord,
};
use uuid::Uuid;

fn record(customer_id: Uuid, version: i64, earned_rank: u32) -> CustomerRecord {
    let mut state = TierState::new_member(Utc::now());
    state.earned_rank = earned_rank;
    CustomerRecord {
        member: Member {
            customer_id,
            joined_at: Utc::now(),
            erased: false,
        },
        state: Some(StoredState { state, version }),
        buckets: Vec::new(),
    }
}

async fn connected_cache(metrics: &Metrics) -> TierCache {
    let settings = CacheSettings {
        url: Some(Secret::new(tierline_testkit::redis_url())),
        topology: RedisTopology::Standalone,
        timeout: Duration::from_millis(500),
        ttl: Duration::from_secs(60),
    };
    connected(settings, metrics).await
}

/// Starts the cache and waits until its background connection is made.
async fn connected(settings: CacheSettings, metrics: &Metrics) -> TierCache {
    let cache = TierCache::start(&settings, metrics);
    // The connection is made in the background: wait until a write lands.
    let probe = Uuid::now_v7();
    for _ in 0..200 {
        cache.put_many(probe, &[record(probe, 1, 0)]).await;
        if !cache.get_many(probe, &[probe]).await.is_empty() {
            return cache;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the Redis of {settings:?} did not answer");
}

#[tokio::test]
async fn an_older_version_never_overwrites_a_newer_one() {
    let metrics = Metrics::new();
    let cache = connected_cache(&metrics).await;
    let (program, customer) = (Uuid::now_v7(), Uuid::now_v7());
    cache.put_many(program, &[record(customer, 4, 2)]).await;
    // A slow cache-aside read of version 3 arrives after the write-through of version 4.
    cache.put_many(program, &[record(customer, 3, 1)]).await;
    let cached = cache.get_many(program, &[customer]).await;
    let state = cached[&customer].state.as_ref().expect("state");
    assert_eq!((state.version, state.state.earned_rank), (4, 2));
    cache.put_many(program, &[record(customer, 5, 3)]).await;
    assert_eq!(
        cache.get_many(program, &[customer]).await[&customer]
            .state
            .as_ref()
            .map(|s| s.version),
        Some(5)
    );
    assert!(
        metrics
            .render()
            .contains("tierline_tier_cache_lookups_total{result=\"hit\"}")
    );
}

#[tokio::test]
async fn an_unreachable_redis_reads_as_a_miss_within_the_timeout() {
    let metrics = Metrics::new();
    // Nothing listens on port 1.
    let settings = CacheSettings {
        url: Some(Secret::new("redis://127.0.0.1:1")),
        topology: RedisTopology::Standalone,
        timeout: Duration::from_millis(50),
        ttl: Duration::from_secs(60),
    };
    let cache = TierCache::start(&settings, &metrics);
    let started = std::time::Instant::now();
    assert!(
        cache
            .get_many(Uuid::now_v7(), &[Uuid::now_v7()])
            .await
            .is_empty()
    );
    cache
        .put_many(Uuid::now_v7(), &[record(Uuid::now_v7(), 1, 0)])
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no waiting on a dead Redis"
    );
    assert!(
        metrics
            .render()
            .contains("tierline_tier_cache_fallbacks_total 1"),
        "{}",
        metrics.render()
    );
}

#[tokio::test]
async fn a_redis_cluster_spreads_the_keys_and_keeps_the_newer_version() {
    let cluster = tierline_testkit::RedisCluster::start();
    let metrics = Metrics::new();
    let settings = CacheSettings {
        url: Some(Secret::new(cluster.url())),
        topology: RedisTopology::Cluster,
        timeout: Duration::from_millis(500),
        ttl: Duration::from_secs(60),
    };
    let cache = connected(settings, &metrics).await;
    let program = Uuid::now_v7();
    let customers: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let records: Vec<CustomerRecord> = customers
        .iter()
        .map(|customer| record(*customer, 2, 1))
        .collect();
    cache.put_many(program, &records).await;
    // Keys of one lookup batch live on different nodes, and one call still reads them all.
    let keys = cluster.keys_per_node();
    assert!(
        keys.iter().all(|count| *count > 0),
        "keys per node: {keys:?}"
    );
    assert_eq!(
        cache.get_many(program, &customers).await.len(),
        customers.len()
    );

    // Version compare-and-set holds on a cluster too: an older write after a newer one is refused.
    let first = customers[0];
    cache.put_many(program, &[record(first, 5, 3)]).await;
    cache.put_many(program, &[record(first, 4, 0)]).await;
    let cached = cache.get_many(program, &[first]).await;
    let state = cached[&first].state.as_ref().expect("state");
    assert_eq!((state.version, state.state.earned_rank), (5, 3));
    assert!(
        !metrics
            .render()
            .contains("tierline_tier_cache_write_errors_total 1"),
        "{}",
        metrics.render()
    );
}
