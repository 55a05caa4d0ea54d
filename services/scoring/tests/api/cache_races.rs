//! The tier cache's races and outages, end to end: real scoring replicas on one Postgres
//! database and a real Redis, with Redis slowed down, hung, stopped and started again, and keys
//! evicted between the steps. The tests assert versions and tiers: what a lookup may never show.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tierline_proto::scoring::v1 as pb;
use tierline_testkit::{Proxy, RedisServer};
use uuid::Uuid;

use crate::{
    redis_support::{Held, await_true, evict, held, keyspace_of, raw_redis, redis_addr},
    support::{
        Client, TestApp, activate, add_month, as_pairs, grant, innisfree_rules, insert_vip, lookup,
        lookup_until, month_of, program_in_force, redis_settings, tier_of,
    },
};

/// Waits until Redis holds `wanted` for `customer`, at most 10 s.
async fn until_held(
    redis: &redis::aio::MultiplexedConnection,
    space: tierline_scoring::cache::Keyspace,
    customer: Uuid,
    wanted: Held,
) {
    await_true(
        &format!("Redis holds {wanted:?}"),
        Duration::from_secs(10),
        || {
            let mut redis = redis.clone();
            async move { held(&mut redis, space, customer).await == wanted }
        },
    )
    .await;
}

#[tokio::test]
async fn a_fill_that_read_before_a_change_never_lands_after_an_eviction() {
    // The reader reaches Redis through a proxy the test slows down; its calls wait for it.
    let redis_url = tierline_testkit::redis_url();
    let proxy = Proxy::start(redis_addr()).await;
    let writer_app = TestApp::spawn_with(&as_pairs(&redis_settings(&redis_url))).await;
    let reader_app = writer_app
        .replica_with(&[
            ("TIERLINE_REDIS_URL", &format!("redis://{}", proxy.addr())),
            ("TIERLINE_REDIS_TIMEOUT", "20s"),
        ])
        .await;
    let (mut writer, mut reader) = (writer_app.client().await, reader_app.client().await);
    let (program, _) = program_in_force(&mut writer, "LEASES", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&writer_app.database_url)
        .await
        .expect("db");
    let customer = insert_vip(&mut db, program_id, None, 1).await;
    let space = keyspace_of(&mut db, program_id).await;
    let mut redis = raw_redis().await;

    // The writer's lookup caches version 1; Redis evicts it.
    assert_eq!(lookup(&mut writer, &program.id, customer).await.version, 1);
    until_held(&redis, space, customer, Held::Version(1)).await;
    evict(&mut redis, space, customer).await;

    // The reader misses, takes the lease and reads version 1 from Postgres. Its answer does not
    // wait for its fill, which is still on the slow wire when the answer arrives.
    proxy.delay(Duration::from_millis(1_500));
    let first = lookup(&mut reader, &program.id, customer).await;
    assert_eq!((tier_of(&first), first.version), ("GREEN", 1));
    assert_eq!(held(&mut redis, space, customer).await, Held::Lease);

    // Meanwhile a change commits version 2 and writes it through (which voids the lease), and
    // Redis evicts that too: the reader's fill of version 1 then finds an empty key.
    let version = grant(&mut writer, &program.id, customer, "VVIP").await;
    assert_eq!(version, 2);
    until_held(&redis, space, customer, Held::Version(2)).await;
    evict(&mut redis, space, customer).await;

    // The reader hears of the change after its fill reached Redis (both came down the same slow
    // wire, the fill first). From then on it shows version 2: had the stale fill landed, its next
    // miss would read version 1 back from Redis.
    lookup_until(
        &mut reader,
        &program.id,
        customer,
        Duration::from_secs(30),
        |answer| answer.version >= version,
    )
    .await;
    assert_ne!(held(&mut redis, space, customer).await, Held::Version(1));
    proxy.delay(Duration::ZERO);
    for _ in 0..5 {
        let answer = lookup(&mut reader, &program.id, customer).await;
        assert_eq!((tier_of(&answer), answer.version), ("VVIP", 2));
    }
    let fresh_app = writer_app
        .replica_with(&as_pairs(&redis_settings(&redis_url)))
        .await;
    let fresh = lookup(&mut fresh_app.client().await, &program.id, customer).await;
    assert_eq!((tier_of(&fresh), fresh.version), ("VVIP", 2));
}

#[tokio::test]
async fn a_change_whose_replica_died_before_its_cache_write_is_repaired_by_the_next_replica() {
    // The writer reaches Redis through a proxy the test makes hang. (The reader's replica owns
    // the database, which outlives the writer's.)
    let redis_url = tierline_testkit::redis_url();
    let proxy = Proxy::start(redis_addr()).await;
    let reader_app = TestApp::spawn_with(&as_pairs(&redis_settings(&redis_url))).await;
    let writer_app = reader_app
        .replica_with(&as_pairs(&redis_settings(&format!(
            "redis://{}",
            proxy.addr()
        ))))
        .await;
    let (mut writer, mut reader) = (writer_app.client().await, reader_app.client().await);
    let (program, _) = program_in_force(&mut writer, "KILLED", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&reader_app.database_url)
        .await
        .expect("db");
    let customer = insert_vip(&mut db, program_id, None, 1).await;
    let space = keyspace_of(&mut db, program_id).await;
    let mut redis = raw_redis().await;
    // Cached in Redis and in the reader's near cache.
    assert_eq!(lookup(&mut reader, &program.id, customer).await.version, 1);
    until_held(&redis, space, customer, Held::Version(1)).await;

    // Redis hangs for the writer: its change commits, its write-through times out, and its
    // replica dies before Redis answers again. The repair queued with the change stays.
    proxy.stall();
    let version = grant(&mut writer, &program.id, customer, "VVIP").await;
    drop(writer);
    drop(writer_app);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM scoring.cache_repairs")
        .fetch_one(&mut db)
        .await
        .expect("repairs");
    assert_eq!(queued, 1);

    // The replica that replaces it repairs as it starts: Redis and every near cache drop the
    // stale record, and the reader shows the change.
    let _replacement = reader_app
        .replica_with(&as_pairs(&redis_settings(&redis_url)))
        .await;
    lookup_until(
        &mut reader,
        &program.id,
        customer,
        Duration::from_secs(10),
        |answer| answer.version >= version,
    )
    .await;
    assert_eq!(
        tier_of(&lookup(&mut reader, &program.id, customer).await),
        "VVIP"
    );
    assert_ne!(held(&mut redis, space, customer).await, Held::Version(1));
}

/// Spend that lands inside a 12-month window in one of two time zones and outside it in the
/// other; returns (the zone where it does not count, the zone where it does, when it happened).
async fn edge_of_the_window(
    db: &mut PgConnection,
) -> (String, String, chrono::DateTime<chrono::Utc>) {
    // The first hour of the window's first month, in the zone whose window it opens; eight or
    // ten hours away the same instant belongs to the month before, outside the other window.
    // Which zone is ahead depends on whether both are in the same month now.
    let (same_month,): (bool,) = sqlx::query_as(
        "SELECT date_trunc('month', now() AT TIME ZONE 'Asia/Seoul') = date_trunc('month', now() AT TIME ZONE 'UTC')",
    )
    .fetch_one(&mut *db)
    .await
    .expect("months");
    let (without, with) = if same_month {
        ("UTC", "Asia/Seoul")
    } else {
        ("Asia/Seoul", "UTC")
    };
    let (at,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as(
        "SELECT (date_trunc('month', now() AT TIME ZONE $1) - interval '11 months' + interval '1 hour') AT TIME ZONE $1",
    )
    .bind(with)
    .fetch_one(&mut *db)
    .await
    .expect("instant");
    (without.to_owned(), with.to_owned(), at)
}

#[tokio::test]
async fn after_a_policy_change_rebuilds_the_buckets_no_replica_shows_a_record_from_before() {
    let redis_url = tierline_testkit::redis_url();
    let settings = redis_settings(&redis_url);
    let first = TestApp::spawn_with(&as_pairs(&settings)).await;
    let second = first.replica_with(&as_pairs(&settings)).await;
    let (mut admin, mut reader) = (first.client().await, second.client().await);
    let mut db = PgConnection::connect(&first.database_url)
        .await
        .expect("db");
    let (without, with, at) = edge_of_the_window(&mut db).await;
    let mut rules = innisfree_rules();
    rules.time_zone = without.clone();
    let (program, _) = program_in_force(&mut admin, "REBUILD", rules.clone()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    // A purchase of 50,000 (below GREEN) counted in the month it fell in, in the first zone:
    // outside the window there.
    let customer = insert_vip(&mut db, program_id, None, 0).await;
    sqlx::query(
        "INSERT INTO scoring.counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, points)
         VALUES ($1, $2, $3, $4, 50000, 0)",
    )
    .bind(program_id)
    .bind(Uuid::now_v7())
    .bind(customer)
    .bind(at)
    .execute(&mut db)
    .await
    .expect("purchase");
    let month = month_of(at, without.parse().expect("zone"));
    add_month(&mut db, program_id, customer, month, 50_000, 0, 1).await;
    let spend = |tier: &pb::CustomerTier| tier.metrics.as_ref().map_or(-1, |m| m.net_spend_minor);
    for client in [&mut admin, &mut reader] {
        assert_eq!(spend(&lookup(client, &program.id, customer).await), 0);
        assert_eq!(spend(&lookup(client, &program.id, customer).await), 0);
    }

    // The program moves to the other zone: the buckets are rebuilt and the purchase falls inside
    // the window. The tier and the state's version stay; the record does not.
    rules.time_zone = with;
    activate(&mut admin, &program.id, rules).await;
    for client in [&mut reader, &mut admin] {
        lookup_until(
            client,
            &program.id,
            customer,
            Duration::from_secs(1),
            |tier| spend(tier) == 50_000,
        )
        .await;
        for _ in 0..10 {
            let tier = lookup(client, &program.id, customer).await;
            assert_eq!((spend(&tier), tier.policy_version), (50_000, 2));
            assert_eq!((tier_of(&tier), tier.version), ("WELCOME", 1));
        }
    }
}

/// Looks a VIP up until Redis counts a hit, at most `within`; every answer must be right.
async fn hits_within(
    redis: &RedisServer,
    client: &mut Client,
    program_id: &str,
    customer: Uuid,
    within: Duration,
) {
    let before = redis.keyspace_hits();
    tierline_testkit::eventually_within("a Redis hit", within, || {
        let mut client = client.clone();
        async move {
            assert_eq!(
                tier_of(&lookup(&mut client, program_id, customer).await),
                "VIP"
            );
            (redis.keyspace_hits() > before).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn lookups_ride_out_a_redis_that_stops_or_hangs_and_hit_it_again_within_two_seconds() {
    // A Redis of this test's own, which it stops, starts and pauses; no near cache, so every
    // lookup asks Redis while the breaker lets it.
    let mut redis = RedisServer::start();
    let app = TestApp::spawn_with(&[
        ("TIERLINE_REDIS_URL", &redis.url()),
        ("TIERLINE_REDIS_TIMEOUT", "500ms"),
        ("TIERLINE_NEAR_CACHE_RECORDS", "0"),
    ])
    .await;
    let mut client = app.client().await;
    let (program, _) = program_in_force(&mut client, "OUTAGE", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    let customer = insert_vip(&mut db, program_id, None, 2).await;
    hits_within(
        &redis,
        &mut client,
        &program.id,
        customer,
        Duration::from_secs(10),
    )
    .await;

    // Redis stops: every lookup answers, right, from Postgres.
    redis.stop();
    for _ in 0..20 {
        assert_eq!(
            tier_of(&lookup(&mut client, &program.id, customer).await),
            "VIP"
        );
    }
    // It starts again, empty: within 2 s lookups fill it and hit it.
    redis.restart();
    hits_within(
        &redis,
        &mut client,
        &program.id,
        customer,
        Duration::from_secs(2),
    )
    .await;

    // It hangs: a few lookups wait for the 500 ms timeout, then the breaker opens and the rest go
    // straight to Postgres. Without the breaker, 20 lookups would take 10 s.
    let pause = Duration::from_secs(6);
    let paused_at = Instant::now();
    redis.cli(&["CLIENT", "PAUSE", &pause.as_millis().to_string(), "ALL"]);
    for _ in 0..20 {
        assert_eq!(
            tier_of(&lookup(&mut client, &program.id, customer).await),
            "VIP"
        );
    }
    assert!(
        paused_at.elapsed() < Duration::from_secs(5),
        "20 lookups against a hung Redis took {:?}",
        paused_at.elapsed()
    );
    // When the pause ends, hits come back within 2 s.
    tokio::time::sleep_until((paused_at + pause).into()).await;
    hits_within(
        &redis,
        &mut client,
        &program.id,
        customer,
        Duration::from_secs(2),
    )
    .await;
}
