//! The hot tier lookup across replicas: programs and policies from memory (no database on a
//! hit), near caches kept right by invalidations, and cache writes that failed repaired.

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tierline_proto::scoring::v1 as pb;
use tierline_testkit::Proxy;
use uuid::Uuid;

use crate::{
    redis_support::redis_addr,
    support::{
        Client, TestApp, activate, as_pairs, grant, innisfree_rules, insert_vip, lookup,
        lookup_until, program_in_force, redis_settings, tier_of,
    },
};

/// Two replicas on one database (the first with `first`, the second with `second` added to
/// its settings), a program in force, and a GREEN member whom the second replica has looked up.
struct Replicas {
    writer: Client,
    reader: Client,
    program: pb::Program,
    customer: Uuid,
    db: PgConnection,
    _apps: (TestApp, TestApp),
}

async fn replicas(
    first: &[(&'static str, String)],
    second: &[(&'static str, String)],
    code: &str,
) -> Replicas {
    let first = TestApp::spawn_with(&as_pairs(first)).await;
    let second = first.replica_with(&as_pairs(second)).await;
    let (mut writer, mut reader) = (first.client().await, second.client().await);
    let (program, _) = program_in_force(&mut writer, code, innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&first.database_url)
        .await
        .expect("db");
    let customer = insert_vip(&mut db, program_id, None, 1).await;
    for _ in 0..3 {
        let tier = lookup(&mut reader, &program.id, customer).await;
        assert_eq!(tier_of(&tier), "GREEN");
    }
    Replicas {
        writer,
        reader,
        program,
        customer,
        db,
        _apps: (first, second),
    }
}

#[tokio::test]
async fn a_policy_put_in_force_on_one_replica_is_used_by_another_within_a_second() {
    let first = TestApp::spawn().await;
    let second = first.replica().await;
    let (mut admin, mut reader) = (first.client().await, second.client().await);
    let (program, _) = program_in_force(&mut admin, "POLICIES", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&first.database_url)
        .await
        .expect("db");
    let customer = insert_vip(&mut db, program_id, None, 2).await;
    // The second replica holds version 1 in memory.
    assert_eq!(
        lookup(&mut reader, &program.id, customer)
            .await
            .policy_version,
        1
    );

    let mut rules = innisfree_rules();
    rules.grace_months = 6;
    let draft = admin
        .create_policy_version(pb::CreatePolicyVersionRequest {
            program_id: program.id.clone(),
            rules: Some(rules),
            created_by: "ops".into(),
            ..Default::default()
        })
        .await
        .expect("draft")
        .into_inner();
    admin
        .activate_policy(pb::ActivatePolicyRequest {
            policy_version_id: draft.id,
            activated_by: "ops".into(),
            expected_revision: None,
        })
        .await
        .expect("activate");
    // Without the announcement the second replica would hold version 1 for its safety TTL (5 min).
    lookup_until(
        &mut reader,
        &program.id,
        customer,
        Duration::from_secs(1),
        |tier| tier.policy_version == 2,
    )
    .await;
}

#[tokio::test]
async fn a_warm_lookup_reads_no_database() {
    // The replica under test reaches Postgres through a proxy the test cuts.
    let owner = TestApp::spawn().await;
    // postgres://user@host:port/database: the authority between '@' and the next '/'.
    let url = &owner.database_url;
    let at = url.find('@').expect("user in the URL") + 1;
    let slash = at + url[at..].find('/').expect("database in the URL");
    let upstream = tokio::net::lookup_host(&url[at..slash])
        .await
        .expect("Postgres address")
        .next()
        .expect("Postgres address");
    let proxy = Proxy::start(upstream).await;
    let proxied = format!("{}{}{}", &url[..at], proxy.addr(), &url[slash..]);
    let redis = tierline_testkit::redis_url();
    let mut settings = redis_settings(&redis);
    settings.push(("TIERLINE_DATABASE_URL", proxied));
    // A cold lookup, with the database away, gives up soon.
    settings.push(("TIERLINE_DB_ACQUIRE_TIMEOUT", "500ms".to_owned()));
    let app = owner.replica_with(&as_pairs(&settings)).await;
    let mut client = app.client().await;
    let (program, _) = program_in_force(&mut client, "WARM", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&owner.database_url)
        .await
        .expect("db");
    let customers = [
        insert_vip(&mut db, program_id, None, 2).await,
        insert_vip(&mut db, program_id, None, 1).await,
    ];
    for customer in customers {
        lookup(&mut client, &program.id, customer).await;
    }

    // Postgres goes away: every connection dropped, new ones refused.
    proxy.cut();
    // Warm lookups still answer, right: program, policy and records come from memory.
    for _ in 0..50 {
        assert_eq!(
            tier_of(&lookup(&mut client, &program.id, customers[0]).await),
            "VIP"
        );
        assert_eq!(
            tier_of(&lookup(&mut client, &program.id, customers[1]).await),
            "GREEN"
        );
    }
    // A cold one needs the database, and says so.
    let cold = client
        .get_tier(pb::GetTierRequest {
            program_id: program.id.clone(),
            customer_id: Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("no database");
    assert_eq!(cold.code(), tonic::Code::Unavailable, "{cold:?}");
}

#[tokio::test]
async fn a_tier_change_reaches_every_replicas_near_cache_at_once_and_never_goes_back() {
    let redis = tierline_testkit::redis_url();
    let settings = redis_settings(&redis);
    let Replicas {
        mut writer,
        mut reader,
        program,
        customer,
        _apps,
        ..
    } = replicas(&settings, &settings, "NEAR").await;

    let mut last_version = 0;
    for tier in ["VIP", "VVIP", "WELCOME", "VIP"] {
        // Committed and acknowledged by the first replica ...
        let version = grant(&mut writer, &program.id, customer, tier).await;
        assert!(version > last_version);
        // ... and within 100 ms the second replica serves it, from then on never an older one.
        lookup_until(
            &mut reader,
            &program.id,
            customer,
            Duration::from_millis(100),
            |answer| answer.version >= version,
        )
        .await;
        for _ in 0..20 {
            let answer = lookup(&mut reader, &program.id, customer).await;
            assert_eq!((tier_of(&answer), answer.version), (tier, version));
        }
        last_version = version;
    }
}

#[tokio::test]
async fn a_cache_write_that_failed_is_repaired_once_redis_answers() {
    // The first replica reaches Redis through a proxy the test cuts; the second directly.
    let redis = tierline_testkit::redis_url();
    let proxy = Proxy::start(redis_addr()).await;
    let through_proxy = redis_settings(&format!("redis://{}", proxy.addr()));
    let direct = redis_settings(&redis);
    let Replicas {
        mut writer,
        mut reader,
        program,
        customer,
        mut db,
        _apps,
    } = replicas(&through_proxy, &direct, "REPAIR").await;

    // The first replica loses Redis, then commits a change: its write-through fails, so the
    // repair queued in the change's transaction stays.
    proxy.cut();
    let version = grant(&mut writer, &program.id, customer, "VVIP").await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM scoring.cache_repairs")
        .fetch_one(&mut db)
        .await
        .expect("repairs");
    assert_eq!(queued, 1);

    // Once Redis answers the first replica again, it repairs: Redis and every replica's near
    // cache drop the stale record, and the second replica's lookup reads the change.
    proxy.restore();
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
    // The repairer drops the records first and deletes its queue rows after, so the reader
    // can see the change a moment before the queue is empty.
    let db = tokio::sync::Mutex::new(db);
    tierline_testkit::eventually_within(
        "the repair queue to empty",
        Duration::from_secs(10),
        || async {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM scoring.cache_repairs")
                .fetch_one(&mut *db.lock().await)
                .await
                .expect("repairs");
            (left == 0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn without_redis_lookups_answer_from_the_database_and_a_new_policy_rebuilds_the_keyspace() {
    // Redis is configured but never reachable (nothing listens on port 1).
    let settings = redis_settings("redis://127.0.0.1:1");
    let app = TestApp::spawn_with(&as_pairs(&settings)).await;
    let mut client = app.client().await;
    let (program, _) = program_in_force(&mut client, "NOREDIS", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    let customer = insert_vip(&mut db, program_id, None, 2).await;
    assert_eq!(
        tier_of(&lookup(&mut client, &program.id, customer).await),
        "VIP"
    );
    assert_eq!(grant(&mut client, &program.id, customer, "VVIP").await, 2);
    assert_eq!(
        tier_of(&lookup(&mut client, &program.id, customer).await),
        "VVIP"
    );

    // A policy change rebuilds the buckets and raises the program's cache generation.
    let generation = "SELECT cache_generation FROM scoring.programs WHERE id = $1";
    let before: i32 = sqlx::query_scalar(generation)
        .bind(program_id)
        .fetch_one(&mut db)
        .await
        .expect("generation");
    activate(&mut client, &program.id, innisfree_rules()).await;
    let after: i32 = sqlx::query_scalar(generation)
        .bind(program_id)
        .fetch_one(&mut db)
        .await
        .expect("generation");
    assert_eq!(after, before + 1);
}
