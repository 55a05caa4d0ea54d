//! The tier cache against a real Redis: versions only rise, a stale fill never lands (leases),
//! and a Redis that is down or hangs costs lookups nothing once the breaker is open, with hits
//! back soon after Redis answers again.

use std::time::{Duration, Instant};

use chrono::Utc;
use tierline_runtime::metrics::Metrics;
use tierline_scoring::{
    cache::RedisTopology,
    domain::{
        decision::TierState,
        state::{Member, StoredState},
    },
    storage::CustomerRecord,
};
use tierline_testkit::Proxy;
use uuid::Uuid;

use crate::redis_support::{
    await_true, cached, connected, raw_redis, redis_addr, redis_key, settings, space,
};

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

#[tokio::test]
async fn an_older_version_never_overwrites_a_newer_one() {
    let metrics = Metrics::new();
    let cache = connected(
        settings(tierline_testkit::redis_url(), Duration::from_millis(500)),
        &metrics,
    )
    .await;
    let (space, customer) = (space(), Uuid::now_v7());
    assert!(cache.put_many(space, &[record(customer, 4, 2)]).await);
    // A slow write of version 3 arrives after the write of version 4.
    assert!(cache.put_many(space, &[record(customer, 3, 1)]).await);
    assert_eq!(cached(&cache, space, customer).await, Some((4, 2)));
    assert!(cache.put_many(space, &[record(customer, 5, 3)]).await);
    assert_eq!(cached(&cache, space, customer).await, Some((5, 3)));
    assert!(
        metrics
            .render()
            .contains("tierline_tier_cache_lookups_total{result=\"hit\"}")
    );
}

#[tokio::test]
async fn a_fill_lands_only_under_the_lease_its_read_took() {
    let metrics = Metrics::new();
    let cache = connected(
        settings(tierline_testkit::redis_url(), Duration::from_millis(500)),
        &metrics,
    )
    .await;
    let mut redis = raw_redis().await;

    // A read misses and takes the lease; the store gives it version 3; it fills: that lands.
    let (space, customer) = (space(), Uuid::now_v7());
    let read = cache.get_many(space, &[customer]).await;
    assert_eq!(read.missed(), vec![customer]);
    cache
        .fill(space, read, &[record(customer, 3, 1)])
        .finished()
        .await;
    assert_eq!(cached(&cache, space, customer).await, Some((3, 1)));

    // A read misses and takes the lease, then reads version 3 from the store. Meanwhile a change
    // commits version 4 and writes it through, and Redis evicts it. The reader's fill of version
    // 3 comes last: it must not land over the eviction.
    let customer = Uuid::now_v7();
    let stale_read = cache.get_many(space, &[customer]).await;
    assert!(cache.put_many(space, &[record(customer, 4, 2)]).await);
    let _: () = redis::cmd("DEL")
        .arg(redis_key(space, customer))
        .query_async(&mut redis)
        .await
        .expect("evicted");
    cache
        .fill(space, stale_read, &[record(customer, 3, 1)])
        .finished()
        .await;
    assert_eq!(cached(&cache, space, customer).await, None);

    // While one reader holds the lease, another reader's fill does not land either: only the
    // first reader may fill.
    let customer = Uuid::now_v7();
    let first = cache.get_many(space, &[customer]).await;
    let second = cache.get_many(space, &[customer]).await;
    assert_eq!(second.missed(), vec![customer]);
    cache
        .fill(space, second, &[record(customer, 1, 0)])
        .finished()
        .await;
    assert_eq!(cached(&cache, space, customer).await, None);
    cache
        .fill(space, first, &[record(customer, 1, 0)])
        .finished()
        .await;
    assert_eq!(cached(&cache, space, customer).await, Some((1, 0)));
}

#[tokio::test]
async fn a_dropped_record_is_gone_and_its_leases_with_it() {
    let metrics = Metrics::new();
    let cache = connected(
        settings(tierline_testkit::redis_url(), Duration::from_millis(500)),
        &metrics,
    )
    .await;
    let (space, customer) = (space(), Uuid::now_v7());
    assert!(cache.put_many(space, &[record(customer, 2, 1)]).await);
    assert!(cache.drop_many(space, &[customer]).await);
    let read = cache.get_many(space, &[customer]).await;
    assert_eq!(read.missed(), vec![customer]);
    // A read that took its lease before the drop cannot fill after it.
    assert!(cache.drop_many(space, &[customer]).await);
    cache
        .fill(space, read, &[record(customer, 1, 0)])
        .finished()
        .await;
    assert_eq!(cached(&cache, space, customer).await, None);
}

#[tokio::test]
async fn a_redis_that_is_down_costs_nothing_and_hits_resume_within_two_seconds_of_its_return() {
    let proxy = Proxy::start(redis_addr()).await;
    let metrics = Metrics::new();
    let cache = connected(
        settings(
            format!("redis://{}", proxy.addr()),
            Duration::from_millis(200),
        ),
        &metrics,
    )
    .await;
    let (space, customer) = (space(), Uuid::now_v7());
    assert!(cache.put_many(space, &[record(customer, 1, 1)]).await);
    assert_eq!(cached(&cache, space, customer).await, Some((1, 1)));

    proxy.cut();
    // Refused connections fail at once; after a few the breaker opens and Redis is not called.
    for _ in 0..5 {
        assert_eq!(cached(&cache, space, customer).await, None);
        assert!(!cache.put_many(space, &[record(customer, 2, 1)]).await);
    }
    assert!(!cache.redis_available(), "the breaker is open");
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(cached(&cache, space, customer).await, None);
    }
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "100 lookups with the breaker open took {:?}",
        started.elapsed()
    );

    proxy.restore();
    await_true(
        "a hit within 2 s of Redis answering again",
        Duration::from_secs(2),
        || async { cached(&cache, space, customer).await.is_some() },
    )
    .await;
    assert!(
        metrics
            .render()
            .contains("tierline_tier_cache_fallbacks_total"),
        "{}",
        metrics.render()
    );
}

#[tokio::test]
async fn a_redis_that_hangs_opens_the_breaker_after_a_few_timeouts() {
    let proxy = Proxy::start(redis_addr()).await;
    let metrics = Metrics::new();
    let timeout = Duration::from_millis(100);
    let cache = connected(
        settings(format!("redis://{}", proxy.addr()), timeout),
        &metrics,
    )
    .await;
    let (space, customer) = (space(), Uuid::now_v7());
    assert!(cache.put_many(space, &[record(customer, 1, 1)]).await);

    proxy.stall();
    // The connection was cut and the reconnection hangs: every call waits at most the timeout,
    // and after a few the breaker opens.
    let mut calls = 0;
    while cache.redis_available() {
        let started = Instant::now();
        assert_eq!(cached(&cache, space, customer).await, None);
        assert!(started.elapsed() < timeout * 3, "{:?}", started.elapsed());
        calls += 1;
        assert!(calls < 10, "the breaker did not open");
    }
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(cached(&cache, space, customer).await, None);
    }
    assert!(
        started.elapsed() < timeout,
        "100 lookups with the breaker open took {:?}",
        started.elapsed()
    );
    proxy.restore();
    await_true(
        "a hit within 2 s of Redis answering again",
        Duration::from_secs(2),
        || async { cached(&cache, space, customer).await.is_some() },
    )
    .await;
}

#[tokio::test]
async fn a_redis_cluster_spreads_the_keys_and_keeps_the_newer_version() {
    let cluster = tierline_testkit::RedisCluster::start();
    let metrics = Metrics::new();
    let mut settings = settings(cluster.url(), Duration::from_millis(500));
    settings.topology = RedisTopology::Cluster;
    let cache = connected(settings, &metrics).await;
    let space = space();
    let customers: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let records: Vec<CustomerRecord> = customers
        .iter()
        .map(|customer| record(*customer, 2, 1))
        .collect();
    assert!(cache.put_many(space, &records).await);
    // Keys of one lookup batch live on different nodes, and one call still reads them all.
    let keys = cluster.keys_per_node();
    assert!(
        keys.iter().all(|count| *count > 0),
        "keys per node: {keys:?}"
    );
    assert_eq!(
        cache.get_many(space, &customers).await.found.len(),
        customers.len()
    );

    // Version compare-and-set holds on a cluster too: an older write after a newer one is refused.
    let first = customers[0];
    assert!(cache.put_many(space, &[record(first, 5, 3)]).await);
    assert!(cache.put_many(space, &[record(first, 4, 0)]).await);
    assert_eq!(cached(&cache, space, first).await, Some((5, 3)));

    // Leases and drops work across slots.
    let fresh = Uuid::now_v7();
    let read = cache.get_many(space, &[fresh]).await;
    cache
        .fill(space, read, &[record(fresh, 1, 0)])
        .finished()
        .await;
    assert_eq!(cached(&cache, space, fresh).await, Some((1, 0)));
    assert!(cache.drop_many(space, &[fresh, first]).await);
    assert_eq!(cached(&cache, space, first).await, None);
}
