//! Bulk ingestion: per-item outcomes, deduplication, refunds in the same batch, several batches
//! on one stream.

use futures::StreamExt;
use tierline_proto::{common::v1::Money, customer::v1 as pb};
use tonic::Code;

use crate::support::{TestApp, new_customer, purchase, refund};

fn purchase_item(request: pb::RecordPurchaseRequest) -> pb::ImportItem {
    pb::ImportItem {
        item: Some(pb::import_item::Item::Purchase(request)),
    }
}

fn refund_item(request: pb::RecordRefundRequest) -> pb::ImportItem {
    pb::ImportItem {
        item: Some(pb::import_item::Item::Refund(request)),
    }
}

#[tokio::test]
async fn each_item_gets_its_outcome() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let erased = new_customer(&mut client).await;
    client
        .erase_customer(pb::EraseCustomerRequest {
            id: erased.id.clone(),
            reason: String::new(),
        })
        .await
        .expect("erase");
    let earlier = client
        .record_purchase(purchase("imp-earlier", &customer.id, 5_000))
        .await
        .expect("earlier")
        .into_inner();
    let earlier_id = earlier.activity.expect("activity").id;

    // The refund of imp-0 refers to it by id, so imp-0 is recorded first through the batch and
    // its id read from the first response.
    let batch_one = vec![
        purchase_item(purchase("imp-0", &customer.id, 10_000)),
        purchase_item(purchase("imp-0", &customer.id, 10_000)),
        purchase_item(purchase("imp-earlier", &customer.id, 5_000)),
        purchase_item(purchase("imp-earlier", &customer.id, 5_001)),
        purchase_item(purchase(
            "imp-unknown",
            &uuid::Uuid::now_v7().to_string(),
            1_000,
        )),
        purchase_item(purchase("imp-erased", &erased.id, 1_000)),
        purchase_item(pb::RecordPurchaseRequest {
            amount: Some(Money {
                amount_minor: 10,
                currency: "XYZ".into(),
            }),
            ..purchase("imp-bad", &customer.id, 10)
        }),
        pb::ImportItem { item: None },
        refund_item(refund("imp-ref-earlier", &customer.id, &earlier_id, 2_000)),
        refund_item(refund("imp-ref-too-much", &customer.id, &earlier_id, 3_001)),
    ];
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender
        .send(pb::ImportActivitiesRequest { items: batch_one })
        .await
        .expect("send");
    let mut responses = client
        .import_activities(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("stream opens")
        .into_inner();
    let first = responses
        .next()
        .await
        .expect("a response")
        .expect("batch ok");
    let outcomes: Vec<(pb::ImportOutcome, String)> = first
        .results
        .iter()
        .map(|r| (r.outcome(), r.field.clone()))
        .collect();
    use pb::ImportOutcome::{Accepted, Duplicate, Rejected};
    assert_eq!(
        outcomes,
        [
            (Accepted, String::new()),
            (Duplicate, String::new()),
            (Duplicate, String::new()),
            (Rejected, "idempotency_key".into()),
            (Rejected, "customer_id".into()),
            (Rejected, "customer_id".into()),
            (Rejected, "amount.currency".into()),
            (Rejected, "item".into()),
            (Accepted, String::new()),
            (Rejected, "amount.amount_minor".into()),
        ],
        "{first:#?}"
    );
    assert_eq!(
        (
            first.batch,
            first.accepted,
            first.duplicates,
            first.rejected
        ),
        (0, 2, 2, 6)
    );
    assert_eq!(first.results[1].activity_id, first.results[0].activity_id);
    assert_eq!(first.results[2].activity_id, earlier_id);
    let imp0 = first.results[0].activity_id.clone();

    // A second batch on the same stream: a refund of the purchase imported above.
    sender
        .send(pb::ImportActivitiesRequest {
            items: vec![
                refund_item(refund("imp-ref-0", &customer.id, &imp0, 10_000)),
                purchase_item(purchase("imp-1", &customer.id, 1)),
            ],
        })
        .await
        .expect("send");
    drop(sender);
    let second = responses
        .next()
        .await
        .expect("a response")
        .expect("batch ok");
    assert_eq!(second.batch, 1);
    assert_eq!(second.accepted, 2);
    assert!(
        responses.next().await.is_none(),
        "the stream ends when the client's does"
    );

    let refunded = client
        .get_activity(pb::GetActivityRequest { id: imp0 })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(refunded.refunded_amount_minor, 10_000);
}

#[tokio::test]
async fn an_empty_batch_is_invalid() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut responses = client
        .import_activities(tokio_stream::iter(vec![pb::ImportActivitiesRequest {
            items: vec![],
        }]))
        .await
        .expect("stream opens")
        .into_inner();
    let status = responses
        .next()
        .await
        .expect("an answer")
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_large_batch_is_committed_whole() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customers: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(new_customer(&mut client).await.id);
        }
        ids
    };
    let items: Vec<pb::ImportItem> = (0..5_000)
        .map(|i| {
            purchase_item(purchase(
                &format!("bulk-{i}"),
                &customers[i % customers.len()],
                100 + i as i64,
            ))
        })
        .collect();
    let mut responses = client
        .import_activities(tokio_stream::iter(vec![
            pb::ImportActivitiesRequest {
                items: items.clone(),
            },
            pb::ImportActivitiesRequest { items },
        ]))
        .await
        .expect("stream opens")
        .into_inner();
    let first = responses.next().await.expect("first").expect("ok");
    assert_eq!(first.accepted, 5_000);
    let replay = responses.next().await.expect("second").expect("ok");
    assert_eq!(
        replay.duplicates, 5_000,
        "re-sending a backfill changes nothing"
    );
}
