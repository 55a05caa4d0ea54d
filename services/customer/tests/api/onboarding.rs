//! Bulk onboarding through the API: per-item outcomes (created, unchanged, updated, rejected
//! with the field), idempotency by external id, consents, Korean phone numbers and names, and
//! several batches on one stream.

use futures::StreamExt;
use tierline_proto::{common::v1::Channel, customer::v1 as pb};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::support::TestApp;

fn item(external_id: &str, name: &str, phone: &str, email_consent: bool) -> pb::ImportCustomerItem {
    pb::ImportCustomerItem {
        customer: Some(pb::CreateCustomerRequest {
            external_id: external_id.into(),
            name: name.into(),
            phone: phone.into(),
            ..Default::default()
        }),
        consents: vec![pb::ImportedConsent {
            channel: Channel::Email.into(),
            granted: email_consent,
            source: "crm-migration".into(),
            changed_at: None,
        }],
    }
}

#[tokio::test]
async fn customers_are_onboarded_once_by_external_id_with_their_consents() {
    // Korean national phone formats are accepted (and stored in E.164).
    let app = TestApp::spawn_with(&[("TIERLINE_PHONE_REGION", "KR")]).await;
    let mut client = app.client().await;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let mut responses = client
        .import_customers(ReceiverStream::new(receiver))
        .await
        .expect("stream opens")
        .into_inner();
    let mut unnamed = item("M-9", "", "", true);
    unnamed.consents[0].channel = Channel::Unspecified.into();
    sender
        .send(pb::ImportCustomersRequest {
            items: vec![
                item("M-1", "김민지", "010-1234-5678", true),
                item("M-2", "이서준", "", false),
                item("", "Nobody", "", false),
                item("M-3", "Bad Phone", "010-12", false),
                unnamed,
                item("M-1", "김민지", "010-1234-5678", true),
            ],
        })
        .await
        .expect("send");
    let first = responses
        .next()
        .await
        .expect("a response")
        .expect("batch ok");
    use pb::ImportCustomerOutcome::{Created, Rejected, Unchanged, Updated};
    let outcomes: Vec<(pb::ImportCustomerOutcome, String)> = first
        .results
        .iter()
        .map(|r| (r.outcome(), r.field.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Created, String::new()),
            (Created, String::new()),
            (Rejected, "customer.external_id".into()),
            (Rejected, "customer.phone".into()),
            (Rejected, "customer.name".into()),
            (Rejected, "customer.external_id".into()),
        ],
        "{first:#?}"
    );
    assert_eq!(
        (
            first.batch,
            first.created,
            first.unchanged,
            first.updated,
            first.rejected
        ),
        (0, 2, 0, 0, 4)
    );
    let kim = first.results[0].customer_id.clone();
    let stored = client
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::ExternalId("M-1".into())),
        })
        .await
        .expect("stored")
        .into_inner();
    assert_eq!(
        (
            stored.id.as_str(),
            stored.name.as_str(),
            stored.phone.as_str()
        ),
        (kim.as_str(), "김민지", "+821012345678")
    );

    // A second batch on the same stream, as a re-run of the migration would send it: the same
    // customer is unchanged, a withdrawn consent is an update.
    sender
        .send(pb::ImportCustomersRequest {
            items: vec![
                item("M-1", "김민지", "+82 10-1234-5678", true),
                item("M-2", "이서준", "", true),
            ],
        })
        .await
        .expect("send");
    let second = responses
        .next()
        .await
        .expect("a response")
        .expect("batch ok");
    assert_eq!(second.batch, 1);
    assert_eq!(
        second
            .results
            .iter()
            .map(|r| r.outcome())
            .collect::<Vec<_>>(),
        [Unchanged, Updated]
    );
    assert_eq!(second.results[0].customer_id, kim);
    let consents = client
        .batch_get_consents(pb::BatchGetConsentsRequest {
            customer_ids: vec![second.results[1].customer_id.clone()],
        })
        .await
        .expect("consents")
        .into_inner();
    let email = consents.customers[0]
        .consents
        .iter()
        .find(|c| c.channel() == Channel::Email)
        .expect("email");
    assert!(email.granted, "{consents:?}");

    // An empty batch is refused, and ends the stream.
    sender
        .send(pb::ImportCustomersRequest { items: vec![] })
        .await
        .expect("send");
    let status = responses
        .next()
        .await
        .expect("a response")
        .expect_err("an empty batch");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}
