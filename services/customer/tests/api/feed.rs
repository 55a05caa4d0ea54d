//! The activity feed: order, resumption, liveness, and the guarantee that no committed event is
//! skipped when transactions commit out of order.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use futures::future::join_all;
use rand::Rng;
use sqlx::Connection;
use tierline_proto::customer::v1::{self as pb, feed_event::Event};
use tierline_runtime::xid_feed::{FeedCursor, FeedIdentity};
use tonic::Streaming;

use crate::support::{Client, TestApp, new_customer, purchase, violated_fields};

async fn watch(client: &mut Client, after: &str) -> Streaming<pb::FeedEvent> {
    client
        .watch_activities(pb::WatchActivitiesRequest {
            after_cursor: after.to_owned(),
        })
        .await
        .expect("watch")
        .into_inner()
}

/// Reads events until `done` says so, failing after 60 s; checkpoints are left out (each must
/// sit at the position of the event before it).
async fn read_until(
    stream: &mut Streaming<pb::FeedEvent>,
    mut done: impl FnMut(&[pb::FeedEvent]) -> bool,
) -> Vec<pb::FeedEvent> {
    let mut events: Vec<pb::FeedEvent> = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while !done(&events) {
            let event = stream
                .message()
                .await
                .expect("feed stays healthy")
                .expect("feed stays open");
            if matches!(event.event, Some(Event::Checkpoint(_))) {
                if let Some(last) = events.last() {
                    assert_eq!(event.cursor, last.cursor, "a checkpoint moves no cursor");
                }
                continue;
            }
            events.push(event);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("feed stalled after {} events", events.len()));
    events
}

fn activity_ids(events: &[pb::FeedEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match &event.event {
            Some(Event::Activity(activity)) => Some(activity.id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_feed_carries_customers_and_activities_and_resumes_after_any_cursor() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let mut recorded = Vec::new();
    for index in 0..6 {
        let response = client
            .record_purchase(purchase(&format!("feed-{index}"), &customer.id, 1_000))
            .await
            .expect("purchase");
        recorded.push(response.into_inner().activity.expect("activity").id);
    }
    let mut stream = watch(&mut client, "").await;
    let events = read_until(&mut stream, |events| events.len() == 7).await;
    match &events[0].event {
        Some(Event::Customer(created)) => {
            assert_eq!(created.customer_id, customer.id);
            assert_eq!(created.kind(), pb::CustomerEventKind::Created);
        }
        other => panic!("expected the creation first, got {other:?}"),
    }
    assert_eq!(activity_ids(&events), recorded, "commit order");

    // Resume after the third event: exactly the rest, in the same order.
    let mut resumed = watch(&mut client, &events[2].cursor).await;
    let rest = read_until(&mut resumed, |seen| seen.len() == 4).await;
    assert_eq!(rest, events[3..].to_vec());

    let status = client
        .watch_activities(pb::WatchActivitiesRequest {
            after_cursor: "bogus".into(),
        })
        .await
        .expect_err("bad cursor");
    assert_eq!(violated_fields(&status), ["after_cursor"]);
}

#[tokio::test]
async fn a_cursor_from_another_cluster_or_beyond_the_feed_is_refused_not_followed() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    client
        .record_purchase(purchase("cluster", &customer.id, 1_000))
        .await
        .expect("purchase");
    let mut stream = watch(&mut client, "").await;
    let events = read_until(&mut stream, |events| events.len() == 2).await;
    // Every cursor names the cluster the feed's transaction ids come from.
    let (identity, position) = FeedCursor::parse(&events[1].cursor).expect("a cursor");
    let identity = identity.expect("an identity");
    let refused = |after_cursor: String| {
        let mut client = client.clone();
        async move {
            client
                .watch_activities(pb::WatchActivitiesRequest { after_cursor })
                .await
                .expect_err("refused")
        }
    };
    // Stored by a consumer before the database was restored into another cluster.
    let elsewhere = refused(position.served(FeedIdentity(identity.0 ^ 1))).await;
    assert_eq!(
        elsewhere.code(),
        tonic::Code::FailedPrecondition,
        "{elsewhere:?}"
    );
    assert!(
        elsewhere.message().contains("another database cluster"),
        "{elsewhere:?}"
    );
    // Or a position this feed never reached: its transaction ids started again below it.
    let ahead = FeedCursor {
        xid: position.xid + 1_000_000_000,
        seq: 0,
    };
    for cursor in [ahead.served(identity), ahead.to_string()] {
        let status = refused(cursor).await;
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        assert!(
            status.message().contains("ahead of this feed"),
            "{status:?}"
        );
    }
    // A cursor from before cursors named their cluster is still followed.
    let mut legacy = watch(&mut client, &FeedCursor::START.to_string()).await;
    assert_eq!(
        read_until(&mut legacy, |events| events.len() == 2).await,
        events
    );
}

#[tokio::test]
async fn a_connected_watcher_gets_new_activity_at_once() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let mut stream = watch(&mut client, "").await;
    read_until(&mut stream, |events| events.len() == 1).await;
    let started = Instant::now();
    let id = client
        .record_purchase(purchase("live-1", &customer.id, 500))
        .await
        .expect("purchase")
        .into_inner()
        .activity
        .expect("a")
        .id;
    let events = read_until(&mut stream, |events| !events.is_empty()).await;
    let latency = started.elapsed();
    assert_eq!(activity_ids(&events), [id]);
    // The idle re-check is 5 s: arriving well before it proves the commit woke the watcher.
    assert!(latency < Duration::from_secs(2), "took {latency:?}");
    eprintln!("feed latency from RecordPurchase call to event: {latency:?}");
}

#[tokio::test]
async fn a_transaction_left_open_in_another_database_does_not_hold_the_feed_back() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let mut stream = watch(&mut client, "").await;
    read_until(&mut stream, |events| events.len() == 1).await;

    // Another database of the same server, with a transaction that has written (it holds a
    // transaction id older than everything after it) and stays open, as a batch job or a backup
    // would.
    let mut elsewhere = sqlx::PgConnection::connect(&tierline_testkit::admin_database_url())
        .await
        .expect("admin database");
    let mut open = elsewhere.begin().await.expect("begin");
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *open)
        .await
        .expect("an xid");

    let started = Instant::now();
    let id = client
        .record_purchase(purchase("while-open-elsewhere", &customer.id, 700))
        .await
        .expect("purchase")
        .into_inner()
        .activity
        .expect("activity")
        .id;
    let events = read_until(&mut stream, |events| !events.is_empty()).await;
    let latency = started.elapsed();
    assert_eq!(activity_ids(&events), [id]);
    assert!(
        latency < Duration::from_secs(2),
        "the purchase waited {latency:?} for a transaction that cannot write to this feed"
    );
    open.rollback().await.expect("rollback");
}

/// Many writers, some of which hold their transaction open for a random time after taking their
/// sequence numbers, so commits land out of sequence order; one watcher must still see every
/// activity exactly once.
#[tokio::test]
async fn no_event_is_skipped_or_repeated_under_concurrent_out_of_order_commits() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(new_customer(&mut client).await.id);
    }
    let mut stream = watch(&mut client, "").await;

    let api_writers = (0..8).map(|writer| {
        let mut client = client.clone();
        let customer = customers[writer].clone();
        async move {
            let mut ids = Vec::new();
            for index in 0..40 {
                let response = client
                    .record_purchase(purchase(&format!("w{writer}-{index}"), &customer, 100))
                    .await
                    .expect("purchase");
                ids.push(response.into_inner().activity.expect("activity").id);
            }
            ids
        }
    });
    let slow_writers = (0..8).map(|writer| {
        let url = app.database_url.clone();
        let customer: uuid::Uuid = customers[writer].parse().expect("uuid");
        async move {
            let mut connection = sqlx::PgConnection::connect(&url).await.expect("connect");
            let mut ids = Vec::new();
            for index in 0..10 {
                let id = uuid::Uuid::now_v7();
                let delay_ms = rand::rng().random_range(0..60_i32);
                let mut tx = connection.begin().await.expect("begin");
                sqlx::query(
                    "INSERT INTO customer.activities (id, customer_id, kind, idempotency_key, fingerprint, amount_minor,
                         currency, occurred_at, recorded_at, purchase_occurred_at)
                     VALUES ($1, $2, 'purchase', $3, '\\x00', 100, 'KRW', now(), now(), now())",
                )
                .bind(id)
                .bind(customer)
                .bind(format!("slow-{writer}-{index}"))
                .execute(&mut *tx)
                .await
                .expect("insert");
                // Hold the sequence number while others commit after us.
                sqlx::query("SELECT pg_sleep($1::float8 / 1000)").bind(delay_ms).execute(&mut *tx).await.expect("sleep");
                tx.commit().await.expect("commit");
                ids.push(id.to_string());
            }
            ids
        }
    });
    let (api_ids, slow_ids) = tokio::join!(join_all(api_writers), join_all(slow_writers));
    let expected: HashSet<String> = api_ids.into_iter().chain(slow_ids).flatten().collect();
    assert_eq!(expected.len(), 400);

    let events = read_until(&mut stream, |events| {
        activity_ids(events).len() >= expected.len()
    })
    .await;
    let seen = activity_ids(&events);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an activity was delivered twice");
    assert_eq!(unique, expected, "the feed skipped or invented activities");
    let cursors: Vec<(i64, i64)> = events
        .iter()
        .map(|event| {
            let (_, cursor) = FeedCursor::parse(&event.cursor).expect("cursor");
            (cursor.xid, cursor.seq)
        })
        .collect();
    assert!(
        cursors.windows(2).all(|pair| pair[0] < pair[1]),
        "cursors must strictly increase"
    );
}

#[tokio::test]
async fn a_watcher_resumes_exactly_after_a_server_restart() {
    let mut app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    for index in 0..5 {
        client
            .record_purchase(purchase(&format!("before-{index}"), &customer.id, 100))
            .await
            .expect("purchase");
    }
    let mut stream = watch(&mut client, "").await;
    let first_part = read_until(&mut stream, |events| events.len() == 3).await;
    let cursor = first_part.last().expect("event").cursor.clone();

    app.server.stop().await;
    // Events sent before the stop may still be buffered; after them the stream must end.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.message().await {}
    })
    .await
    .expect("the stream ends when its server stops");
    let replica = app.replica().await;
    let mut client = replica.client().await;
    for index in 0..3 {
        client
            .record_purchase(purchase(&format!("after-{index}"), &customer.id, 100))
            .await
            .expect("purchase");
    }
    let mut resumed = watch(&mut client, &cursor).await;
    let rest = read_until(&mut resumed, |events| events.len() == 5).await;
    let keys: Vec<String> = rest
        .iter()
        .filter_map(|event| match &event.event {
            Some(Event::Activity(activity)) => Some(activity.idempotency_key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        ["before-2", "before-3", "before-4", "after-0", "after-1"]
    );
    let last = read_until(&mut resumed, |events| events.len() == 1).await;
    assert!(matches!(&last[0].event, Some(Event::Activity(a)) if a.idempotency_key == "after-2"));
}
