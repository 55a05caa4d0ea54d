//! Purchases and refunds: validation, idempotency (sequential and concurrent), the refund rule
//! under racing refunds.

use futures::future::join_all;
use tierline_proto::{common::v1::Money, customer::v1 as pb};
use tonic::Code;

use crate::support::{TestApp, ago, new_customer, purchase, refund, violated_fields};

#[tokio::test]
async fn a_purchase_is_recorded_and_readable() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let recorded = client
        .record_purchase(purchase("p-1", &customer.id, 35_000))
        .await
        .expect("recorded")
        .into_inner();
    assert!(!recorded.replayed);
    let activity = recorded.activity.expect("activity");
    assert_eq!(activity.kind(), pb::ActivityKind::Purchase);
    assert_eq!(
        activity.amount,
        Some(Money {
            amount_minor: 35_000,
            currency: "KRW".into()
        })
    );
    assert_eq!(activity.line_items.len(), 1);
    assert_eq!(activity.purchase_occurred_at, activity.occurred_at);

    let fetched = client
        .get_activity(pb::GetActivityRequest {
            id: activity.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, activity);
    let status = client
        .get_activity(pb::GetActivityRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn activities_list_newest_first_in_pages() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    for (index, hours_ago) in [5_i64, 1, 3, 2, 4].into_iter().enumerate() {
        let request = pb::RecordPurchaseRequest {
            occurred_at: Some(ago(hours_ago * 3600)),
            ..purchase(&format!("list-{index}"), &customer.id, 1_000)
        };
        client.record_purchase(request).await.expect("recorded");
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_activities(pb::ListActivitiesRequest {
                customer_id: customer.id.clone(),
                page_size: 2,
                page_token,
            })
            .await
            .expect("page")
            .into_inner();
        seen.extend(
            page.activities
                .into_iter()
                .map(|a| a.occurred_at.expect("time").seconds),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first: {seen:?}"
    );
}

#[tokio::test]
async fn invalid_purchases_name_every_bad_field() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let status = client
        .record_purchase(pb::RecordPurchaseRequest {
            idempotency_key: String::new(),
            customer_id: "not-a-uuid".into(),
            amount: Some(Money {
                amount_minor: -5,
                currency: "WON".into(),
            }),
            occurred_at: Some(ago(-3600)),
            brand: "b".repeat(65),
            sales_channel: String::new(),
            store_id: String::new(),
            line_items: vec![pb::LineItem {
                category: String::new(),
                sku: String::new(),
                quantity: 0,
                amount_minor: 0,
            }],
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        violated_fields(&status),
        [
            "idempotency_key",
            "customer_id",
            "amount.amount_minor",
            "amount.currency",
            "occurred_at",
            "brand",
            "line_items[0].category",
            "line_items[0].quantity"
        ]
    );
    let missing_parts = client
        .record_purchase(pb::RecordPurchaseRequest {
            idempotency_key: "k".into(),
            customer_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .expect_err("no amount, no time");
    assert_eq!(
        violated_fields(&missing_parts),
        ["amount.amount_minor", "amount.currency", "occurred_at"]
    );
    let unknown = client
        .record_purchase(purchase(
            "k-unknown",
            &uuid::Uuid::now_v7().to_string(),
            100,
        ))
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn a_retry_with_the_same_key_replays_and_a_changed_request_is_refused() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let request = purchase("pos-17-0042", &customer.id, 12_000);
    let first = client
        .record_purchase(request.clone())
        .await
        .expect("first")
        .into_inner();
    let retry = client
        .record_purchase(request.clone())
        .await
        .expect("retry")
        .into_inner();
    assert!(!first.replayed && retry.replayed);
    assert_eq!(first.activity, retry.activity, "the original result");

    let changed = pb::RecordPurchaseRequest {
        amount: Some(Money {
            amount_minor: 12_001,
            currency: "KRW".into(),
        }),
        ..request
    };
    let status = client
        .record_purchase(changed)
        .await
        .expect_err("reused key");
    assert_eq!(violated_fields(&status), ["idempotency_key"]);
    let listed = client
        .list_activities(pb::ListActivitiesRequest {
            customer_id: customer.id.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.activities.len(), 1, "nothing changed");
}

#[tokio::test]
async fn concurrent_retries_record_exactly_once() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let request = purchase("concurrent-key", &customer.id, 9_900);
    let attempts = (0..24).map(|_| {
        let mut client = client.clone();
        let request = request.clone();
        async move {
            client
                .record_purchase(request)
                .await
                .map(|r| r.into_inner())
        }
    });
    let results: Vec<pb::RecordActivityResponse> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("every attempt succeeds"))
        .collect();
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|r| r.activity.as_ref().expect("activity").id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "one activity for one key");
    assert_eq!(
        results.iter().filter(|r| !r.replayed).count(),
        1,
        "exactly one original"
    );
    let listed = client
        .list_activities(pb::ListActivitiesRequest {
            customer_id: customer.id.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.activities.len(), 1);
}

#[tokio::test]
async fn refunds_never_exceed_their_purchase_and_follow_its_rules() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let other = new_customer(&mut client).await;
    let bought = client
        .record_purchase(purchase("r-p", &customer.id, 10_000))
        .await
        .expect("purchase")
        .into_inner();
    let purchase_id = bought.activity.expect("activity").id;

    let first = client
        .record_refund(refund("r-1", &customer.id, &purchase_id, 6_000))
        .await
        .expect("refund")
        .into_inner();
    let refund_activity = first.activity.expect("activity");
    assert_eq!(refund_activity.kind(), pb::ActivityKind::Refund);
    assert_eq!(refund_activity.refunded_purchase_id, purchase_id);
    assert_eq!(
        refund_activity.brand, "innisfree",
        "refunds carry their purchase's brand"
    );
    assert!(refund_activity.purchase_occurred_at.is_some());

    let status = client
        .record_refund(refund("r-2", &customer.id, &purchase_id, 4_001))
        .await
        .expect_err("too much");
    assert_eq!(status.code(), Code::FailedPrecondition);
    client
        .record_refund(refund("r-3", &customer.id, &purchase_id, 4_000))
        .await
        .expect("the rest");
    let updated = client
        .get_activity(pb::GetActivityRequest {
            id: purchase_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(updated.refunded_amount_minor, 10_000);

    let wrong_currency = pb::RecordRefundRequest {
        amount: Some(Money {
            amount_minor: 1,
            currency: "USD".into(),
        }),
        ..refund("r-4", &customer.id, &purchase_id, 1)
    };
    assert_eq!(
        violated_fields(
            &client
                .record_refund(wrong_currency)
                .await
                .expect_err("currency")
        ),
        ["amount.currency"]
    );
    let not_theirs = client
        .record_refund(refund("r-5", &other.id, &purchase_id, 1))
        .await
        .expect_err("other customer");
    assert_eq!(violated_fields(&not_theirs), ["purchase_id"]);
    let refund_of_refund = client
        .record_refund(refund("r-6", &customer.id, &refund_activity.id, 1))
        .await
        .expect_err("refund of refund");
    assert_eq!(violated_fields(&refund_of_refund), ["purchase_id"]);
    let unknown = client
        .record_refund(refund(
            "r-7",
            &customer.id,
            &uuid::Uuid::now_v7().to_string(),
            1,
        ))
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let early = pb::RecordRefundRequest {
        occurred_at: Some(ago(86_400)),
        ..refund("r-8", &customer.id, &purchase_id, 1)
    };
    assert_eq!(
        violated_fields(
            &client
                .record_refund(early)
                .await
                .expect_err("before purchase")
        ),
        ["occurred_at"]
    );
    let invalid = client
        .record_refund(refund("", "x", "y", 0))
        .await
        .expect_err("invalid");
    assert_eq!(
        violated_fields(&invalid),
        [
            "idempotency_key",
            "customer_id",
            "purchase_id",
            "amount.amount_minor"
        ]
    );
}

#[tokio::test]
async fn racing_refunds_never_exceed_the_purchase() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let bought = client
        .record_purchase(purchase("race-p", &customer.id, 10_000))
        .await
        .expect("purchase")
        .into_inner();
    let purchase_id = bought.activity.expect("activity").id;
    // 30 refunds of 500 race for a purchase of 10,000: exactly 20 fit.
    let attempts = (0..30).map(|index| {
        let mut client = client.clone();
        let request = refund(&format!("race-r-{index}"), &customer.id, &purchase_id, 500);
        async move { client.record_refund(request).await }
    });
    let results = join_all(attempts).await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(accepted, 20);
    assert!(
        refused
            .iter()
            .all(|status| status.code() == Code::FailedPrecondition),
        "{refused:?}"
    );
    let updated = client
        .get_activity(pb::GetActivityRequest { id: purchase_id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(updated.refunded_amount_minor, 10_000);
}

#[tokio::test]
async fn concurrent_retries_of_one_refund_apply_it_once() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let bought = client
        .record_purchase(purchase("rr-p", &customer.id, 10_000))
        .await
        .expect("purchase")
        .into_inner();
    let purchase_id = bought.activity.expect("activity").id;
    let request = refund("rr-r", &customer.id, &purchase_id, 7_000);
    let attempts = (0..12).map(|_| {
        let mut client = client.clone();
        let request = request.clone();
        async move { client.record_refund(request).await.map(|r| r.into_inner()) }
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("every retry succeeds"))
        .collect();
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    let updated = client
        .get_activity(pb::GetActivityRequest { id: purchase_id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(updated.refunded_amount_minor, 7_000, "applied once");
}
