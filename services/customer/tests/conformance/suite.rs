//! The cases of the conformance suite; each takes a fresh, empty store.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{Duration, Utc};
use tierline_customer::{
    CustomerError,
    domain::{
        activity::{ActivityKind, LineItem, PurchaseInput, RefundInput},
        consent::{ConsentChannel, ConsentInput, HistoryPage},
        customer::{Customer, CustomerFilter, CustomerPatch, CustomerStatus, ProfileInput},
        feed::{FeedCursor, FeedPage, FeedPayload},
        import::{ImportCommand, ImportOutcome},
        service::Rules,
    },
    storage::CustomerStore,
};
use uuid::Uuid;

pub(crate) use crate::onboarding::onboarding_is_idempotent_by_external_id;

fn skew() -> Duration {
    Duration::minutes(5)
}

async fn customer(store: &Arc<dyn CustomerStore>, name: &str) -> Customer {
    let input = ProfileInput {
        name: name.to_owned(),
        ..ProfileInput::default()
    };
    store
        .create_customer(
            &input
                .into_new_customer(Utc::now(), &Rules::new(skew()))
                .expect("valid"),
        )
        .await
        .expect("created")
}

fn purchase_input(key: &str, customer: Uuid, amount: i64) -> PurchaseInput {
    PurchaseInput {
        idempotency_key: key.to_owned(),
        customer_id: customer.to_string(),
        amount_minor: amount,
        currency: "KRW".into(),
        occurred_at: Some(Utc::now() - Duration::hours(1)),
        ..PurchaseInput::default()
    }
}

fn refund_input(key: &str, customer: Uuid, purchase: Uuid, amount: i64) -> RefundInput {
    RefundInput {
        idempotency_key: key.to_owned(),
        customer_id: customer.to_string(),
        purchase_id: purchase.to_string(),
        amount_minor: amount,
        currency: "KRW".into(),
        occurred_at: Some(Utc::now()),
    }
}

pub(crate) async fn customers_round_trip(store: Arc<dyn CustomerStore>) {
    let input = ProfileInput {
        external_id: "card-1".into(),
        name: "Ji-woo".into(),
        email: "jiwoo@example.com".into(),
        attributes: BTreeMap::from([("city".into(), "seoul".into())]),
        ..ProfileInput::default()
    };
    let new = input
        .into_new_customer(Utc::now(), &Rules::new(skew()))
        .expect("valid");
    let created = store.create_customer(&new).await.expect("created");
    assert_eq!(
        (created.id, created.status),
        (new.id, CustomerStatus::Active)
    );
    assert_eq!(
        store.customer(created.id).await.expect("read"),
        Some(created.clone())
    );
    assert_eq!(
        store.customer_by_external_id("card-1").await.expect("read"),
        Some(created.clone())
    );
    assert_eq!(store.customer(Uuid::now_v7()).await.expect("read"), None);
    assert_eq!(
        store
            .customers(&[created.id, Uuid::now_v7()])
            .await
            .expect("read"),
        vec![created.clone()]
    );

    let patch = CustomerPatch {
        name: Some("Ji-woo Kim".into()),
        email: Some(None),
        ..CustomerPatch::default()
    };
    let updated = store
        .update_customer(created.id, &patch, Utc::now())
        .await
        .expect("updated");
    assert_eq!(
        (updated.name.as_str(), updated.email.as_deref()),
        ("Ji-woo Kim", None)
    );
    assert_eq!(updated.attributes, created.attributes, "untouched");
    let missing = store
        .update_customer(Uuid::now_v7(), &patch, Utc::now())
        .await;
    assert!(
        matches!(missing, Err(CustomerError::NotFound { .. })),
        "{missing:?}"
    );
}

pub(crate) async fn external_ids_are_unique(store: Arc<dyn CustomerStore>) {
    let input = ProfileInput {
        external_id: "card-9".into(),
        name: "A".into(),
        ..ProfileInput::default()
    };
    store
        .create_customer(
            &input
                .clone()
                .into_new_customer(Utc::now(), &Rules::new(skew()))
                .expect("valid"),
        )
        .await
        .expect("first");
    let second = store
        .create_customer(
            &input
                .into_new_customer(Utc::now(), &Rules::new(skew()))
                .expect("valid"),
        )
        .await;
    assert!(
        matches!(
            second,
            Err(CustomerError::AlreadyExists {
                field: "external_id",
                ..
            })
        ),
        "{second:?}"
    );
}

pub(crate) async fn listing_filters_and_pages(store: Arc<dyn CustomerStore>) {
    let mut ids = Vec::new();
    for index in 0..5 {
        let input = ProfileInput {
            name: format!("C{index}"),
            attributes: BTreeMap::from([(
                "tier".into(),
                if index % 2 == 0 {
                    "vip".into()
                } else {
                    "none".into()
                },
            )]),
            ..ProfileInput::default()
        };
        ids.push(
            store
                .create_customer(
                    &input
                        .into_new_customer(Utc::now(), &Rules::new(skew()))
                        .expect("valid"),
                )
                .await
                .expect("c")
                .id,
        );
    }
    let everyone = CustomerFilter::default();
    let first = store
        .list_customers(&everyone, None, 2)
        .await
        .expect("page");
    let rest = store
        .list_customers(&everyone, Some(first[1].id), 10)
        .await
        .expect("page");
    let listed: Vec<Uuid> = first.iter().chain(rest.iter()).map(|c| c.id).collect();
    assert_eq!(listed, ids, "id order, no gaps, no repeats");
    let vip = CustomerFilter {
        attributes: BTreeMap::from([("tier".into(), "vip".into())]),
        ..CustomerFilter::default()
    };
    assert_eq!(
        store
            .list_customers(&vip, None, 10)
            .await
            .expect("vip")
            .len(),
        3
    );
    let erased = CustomerFilter {
        status: Some(CustomerStatus::Erased),
        ..CustomerFilter::default()
    };
    assert!(
        store
            .list_customers(&erased, None, 10)
            .await
            .expect("erased")
            .is_empty()
    );
}

pub(crate) async fn erasure_is_idempotent_and_revokes_consents(store: Arc<dyn CustomerStore>) {
    let person = customer(&store, "Forget").await;
    let grant = ConsentInput {
        customer_id: person.id,
        channel: Some(ConsentChannel::Sms),
        granted: true,
        source: "app".into(),
        changed_at: None,
    };
    store
        .set_consent(&grant.validate(Utc::now(), skew()).expect("valid"))
        .await
        .expect("granted");
    let erased = store
        .erase_customer(person.id, "ticket", Utc::now())
        .await
        .expect("erased");
    assert_eq!(
        (
            erased.status,
            erased.name.as_str(),
            erased.external_id.clone()
        ),
        (CustomerStatus::Erased, "", None)
    );
    let again = store
        .erase_customer(person.id, "ticket", Utc::now())
        .await
        .expect("again");
    assert_eq!(again.erased_at, erased.erased_at);
    let consents = store.consents(&[person.id]).await.expect("consents");
    assert!(consents[0].erased && consents[0].consents.iter().all(|c| !c.granted));
    let update = store
        .update_customer(
            person.id,
            &CustomerPatch {
                name: Some("X".into()),
                ..CustomerPatch::default()
            },
            Utc::now(),
        )
        .await;
    assert!(
        matches!(update, Err(CustomerError::CustomerErased { .. })),
        "{update:?}"
    );
}

pub(crate) async fn consents_keep_history_and_ignore_late_changes(store: Arc<dyn CustomerStore>) {
    let person = customer(&store, "Consent").await;
    let change = |granted: bool, minutes_ago: i64| ConsentInput {
        customer_id: person.id,
        channel: Some(ConsentChannel::Email),
        granted,
        source: "test".into(),
        changed_at: Some(Utc::now() - Duration::minutes(minutes_ago)),
    };
    store
        .set_consent(&change(true, 10).validate(Utc::now(), skew()).expect("v"))
        .await
        .expect("grant");
    let current = store
        .set_consent(&change(false, 20).validate(Utc::now(), skew()).expect("v"))
        .await
        .expect("late revoke");
    assert!(
        current.granted,
        "an older change does not overwrite a newer one"
    );
    let history = store
        .consent_history(
            person.id,
            HistoryPage {
                before: None,
                limit: 1,
            },
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    let older = store
        .consent_history(
            person.id,
            HistoryPage {
                before: Some(history[0].position),
                limit: 10,
            },
        )
        .await
        .expect("h");
    assert_eq!(older.len(), 1);
    let bulk = store
        .consents(&[person.id, Uuid::now_v7()])
        .await
        .expect("bulk");
    assert_eq!(bulk.len(), 1, "unknown ids are left out");
    assert_eq!(bulk[0].consents.len(), 3, "every channel");
}

pub(crate) async fn purchases_are_idempotent(store: Arc<dyn CustomerStore>) {
    let person = customer(&store, "Buyer").await;
    let input = purchase_input("key-1", person.id, 1_000);
    let first = store
        .record_purchase(&input.clone().validate(Utc::now(), skew()).expect("v"))
        .await
        .expect("first");
    let retry = store
        .record_purchase(&input.clone().validate(Utc::now(), skew()).expect("v"))
        .await
        .expect("retry");
    assert!(!first.replayed && retry.replayed);
    assert_eq!(first.activity, retry.activity);
    let changed = PurchaseInput {
        amount_minor: 1_001,
        ..input
    };
    let conflict = store
        .record_purchase(&changed.validate(Utc::now(), skew()).expect("v"))
        .await;
    assert!(
        matches!(conflict, Err(CustomerError::IdempotencyKeyReused { .. })),
        "{conflict:?}"
    );
    assert_eq!(
        store
            .list_activities(person.id, None, 10)
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        store.activity(first.activity.id).await.expect("get"),
        Some(first.activity)
    );
}

pub(crate) async fn purchases_need_an_active_customer(store: Arc<dyn CustomerStore>) {
    let unknown = store
        .record_purchase(
            &purchase_input("k", Uuid::now_v7(), 1)
                .validate(Utc::now(), skew())
                .expect("v"),
        )
        .await;
    assert!(
        matches!(unknown, Err(CustomerError::NotFound { .. })),
        "{unknown:?}"
    );
    let person = customer(&store, "Gone").await;
    store
        .erase_customer(person.id, "", Utc::now())
        .await
        .expect("erased");
    let erased = store
        .record_purchase(
            &purchase_input("k2", person.id, 1)
                .validate(Utc::now(), skew())
                .expect("v"),
        )
        .await;
    assert!(
        matches!(erased, Err(CustomerError::CustomerErased { .. })),
        "{erased:?}"
    );
}

pub(crate) async fn refunds_are_checked_against_their_purchase(store: Arc<dyn CustomerStore>) {
    let person = customer(&store, "Refunder").await;
    let bought = store
        .record_purchase(
            &purchase_input("p", person.id, 1_000)
                .validate(Utc::now(), skew())
                .expect("v"),
        )
        .await
        .expect("p");
    let purchase_id = bought.activity.id;
    let refund = refund_input("r1", person.id, purchase_id, 600)
        .validate(Utc::now(), skew())
        .expect("v");
    let recorded = store.record_refund(&refund).await.expect("refund");
    assert_eq!(recorded.activity.kind, ActivityKind::Refund);
    assert_eq!(
        recorded.activity.purchase_occurred_at,
        bought.activity.occurred_at
    );
    assert!(store.record_refund(&refund).await.expect("replay").replayed);
    let too_much = store
        .record_refund(
            &refund_input("r2", person.id, purchase_id, 401)
                .validate(Utc::now(), skew())
                .expect("v"),
        )
        .await;
    assert!(
        matches!(
            too_much,
            Err(CustomerError::RefundExceedsPurchase {
                remaining_minor: 400
            })
        ),
        "{too_much:?}"
    );
    let usd = RefundInput {
        currency: "USD".into(),
        ..refund_input("r3", person.id, purchase_id, 1)
    };
    let mismatch = store
        .record_refund(&usd.validate(Utc::now(), skew()).expect("v"))
        .await;
    assert!(
        matches!(mismatch, Err(CustomerError::InvalidArgument(_))),
        "{mismatch:?}"
    );
    let unknown = store
        .record_refund(
            &refund_input("r4", person.id, Uuid::now_v7(), 1)
                .validate(Utc::now(), skew())
                .expect("v"),
        )
        .await;
    assert!(
        matches!(
            unknown,
            Err(CustomerError::NotFound {
                entity: "purchase",
                ..
            })
        ),
        "{unknown:?}"
    );
    assert_eq!(
        store
            .activity(purchase_id)
            .await
            .expect("get")
            .expect("some")
            .refunded_amount_minor,
        600
    );
}

pub(crate) async fn imports_report_each_item(store: Arc<dyn CustomerStore>) {
    let person = customer(&store, "Importer").await;
    let now = Utc::now();
    let purchase = PurchaseInput {
        brand: "이니스프리".into(),
        sales_channel: "app".into(),
        store_id: "명동점".into(),
        line_items: vec![LineItem {
            category: "스킨케어".into(),
            sku: "GT-01".into(),
            quantity: 2,
            amount_minor: 500,
        }],
        ..purchase_input("i-1", person.id, 500)
    }
    .validate(now, skew())
    .expect("v");
    let commands = vec![
        ImportCommand::Purchase(purchase.clone()),
        ImportCommand::Purchase(purchase.clone()),
        ImportCommand::Purchase(
            purchase_input("i-2", Uuid::now_v7(), 5)
                .validate(now, skew())
                .expect("v"),
        ),
        ImportCommand::Refund(
            refund_input("i-r", person.id, purchase.id, 200)
                .validate(now, skew())
                .expect("v"),
        ),
        // The key of the first item with other content.
        ImportCommand::Purchase(
            purchase_input("i-1", person.id, 501)
                .validate(now, skew())
                .expect("v"),
        ),
    ];
    let outcomes = store.import_batch(&commands).await.expect("batch");
    assert!(
        matches!(&outcomes[4], ImportOutcome::Rejected { field, .. } if field == "idempotency_key"),
        "{outcomes:?}"
    );
    // Stored as sent, every column.
    let mut stored = purchase.as_stored();
    stored.refunded_amount_minor = 200;
    assert_eq!(
        store.activity(purchase.id).await.expect("read"),
        Some(stored)
    );
    assert_eq!(
        outcomes[0],
        ImportOutcome::Accepted {
            activity_id: purchase.id
        }
    );
    assert_eq!(
        outcomes[1],
        ImportOutcome::Duplicate {
            activity_id: purchase.id
        }
    );
    assert!(
        matches!(&outcomes[2], ImportOutcome::Rejected { field, .. } if field == "customer_id"),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[3], ImportOutcome::Accepted { .. }),
        "{outcomes:?}"
    );
    let again = store.import_batch(&commands[..1]).await.expect("replay");
    assert_eq!(
        again[0],
        ImportOutcome::Duplicate {
            activity_id: purchase.id
        }
    );
}

/// Reads until `expected` events are there. A transaction of this database still running (a
/// writer's, a moment after it answered) may hold events back; events may only be missing while
/// held back.
pub(crate) async fn read_settled(
    store: &Arc<dyn CustomerStore>,
    after: FeedCursor,
    limit: u32,
    expected: usize,
) -> FeedPage {
    tierline_testkit::eventually_within(
        "the held-back events",
        std::time::Duration::from_secs(10),
        || async {
            let page = store.read_feed(after, limit).await.expect("read");
            if page.events.len() >= expected {
                return Some(page);
            }
            assert!(
                page.held_back,
                "events missing without being held back: {page:?}"
            );
            None
        },
    )
    .await
}

pub(crate) async fn the_feed_is_ordered_resumable_and_signalled(store: Arc<dyn CustomerStore>) {
    let mut signal = store.feed_signal();
    let started = Utc::now();
    let person = customer(&store, "Fed").await;
    let mut keys = Vec::new();
    for index in 0..3 {
        let key = format!("f-{index}");
        store
            .record_purchase(
                &purchase_input(&key, person.id, 10)
                    .validate(Utc::now(), skew())
                    .expect("v"),
            )
            .await
            .expect("p");
        keys.push(key);
    }
    let page = read_settled(&store, FeedCursor::START, 100, 4).await;
    assert_eq!(page.events.len(), 4);
    // Everything was read and nothing held back: the page says up to when the feed is complete,
    // which is after the writes above were made (both clocks are this machine's).
    if !page.held_back {
        let caught_up_to = page.caught_up_to.expect("a complete page says so");
        assert!(caught_up_to >= started, "{caught_up_to} before {started}");
    }
    let limited_page = store
        .read_feed(FeedCursor::START, 2)
        .await
        .expect("limited");
    assert_eq!(
        limited_page.caught_up_to, None,
        "a full page cannot say the feed is complete"
    );
    assert!(
        matches!(&page.events[0].payload, FeedPayload::Customer(event) if event.customer_id == person.id)
    );
    let seen: Vec<String> = page.events[1..]
        .iter()
        .map(|event| match &event.payload {
            FeedPayload::Activity(activity) => activity.idempotency_key.clone(),
            FeedPayload::Customer(_) | FeedPayload::CaughtUp(_) => {
                panic!("only activities after the creation")
            }
        })
        .collect();
    assert_eq!(seen, keys);
    assert!(
        page.events
            .windows(2)
            .all(|pair| pair[0].cursor < pair[1].cursor)
    );
    let rest = store
        .read_feed(page.events[1].cursor, 100)
        .await
        .expect("resume");
    assert_eq!(rest.events, page.events[2..].to_vec());
    let limited = store
        .read_feed(FeedCursor::START, 2)
        .await
        .expect("limited");
    assert_eq!(limited.events, page.events[..2].to_vec());
    tokio::time::timeout(std::time::Duration::from_secs(5), signal.changed())
        .await
        .expect("the store signals new feed events")
        .expect("signal open");
}

pub(crate) async fn a_reader_racing_writers_misses_nothing(store: Arc<dyn CustomerStore>) {
    // Customers are created (a customer event) and buy (an activity) while a reader follows the
    // feed in small pages: every event must be read exactly once, whatever commits meanwhile.
    const WRITERS: usize = 4;
    const CUSTOMERS: usize = 60;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for index in (writer..CUSTOMERS).step_by(WRITERS) {
                    let person = customer(&store, &format!("Racer {index}")).await;
                    store
                        .record_purchase(
                            &purchase_input(&format!("race-{index}"), person.id, 10)
                                .validate(Utc::now(), skew())
                                .expect("valid"),
                        )
                        .await
                        .expect("purchase");
                }
            })
        })
        .collect();
    let mut cursor = FeedCursor::START;
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen.len() < CUSTOMERS * 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {} of {} events: the feed skipped some",
            seen.len(),
            CUSTOMERS * 2
        );
        let page = store.read_feed(cursor, 3).await.expect("read");
        for event in page.events {
            assert!(seen.insert(event.cursor), "an event was read twice");
            cursor = event.cursor;
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let after = store.read_feed(cursor, 100).await.expect("read");
    assert!(after.events.is_empty(), "nothing beyond what was counted");
}
