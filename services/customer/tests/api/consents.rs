//! Consents: grant, revoke, history, bulk read.

use tierline_proto::{common::v1::Channel, customer::v1 as pb};
use tonic::Code;

use crate::support::{TestApp, ago, new_customer, violated_fields};

fn consent(
    customer_id: &str,
    channel: Channel,
    granted: bool,
    source: &str,
) -> pb::SetConsentRequest {
    pb::SetConsentRequest {
        customer_id: customer_id.to_owned(),
        channel: channel.into(),
        granted,
        source: source.to_owned(),
        changed_at: None,
    }
}

#[tokio::test]
async fn grants_and_revocations_are_kept_in_history_and_read_in_bulk() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let alice = new_customer(&mut client).await;
    let bob = new_customer(&mut client).await;

    let granted = client
        .set_consent(consent(&alice.id, Channel::Email, true, "app"))
        .await
        .expect("grant")
        .into_inner();
    assert!(granted.granted && granted.changed_at.is_some());
    client
        .set_consent(consent(&alice.id, Channel::Push, true, "app"))
        .await
        .expect("grant push");
    let revoked = client
        .set_consent(consent(&alice.id, Channel::Email, false, "call-centre"))
        .await
        .expect("revoke")
        .into_inner();
    assert!(!revoked.granted);
    assert_eq!(revoked.source, "call-centre");

    let history = client
        .list_consent_history(pb::ListConsentHistoryRequest {
            customer_id: alice.id.clone(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.changes.len(), 2);
    assert_eq!(
        (history.changes[0].channel(), history.changes[0].granted),
        (Channel::Email, false),
        "newest first"
    );
    let rest = client
        .list_consent_history(pb::ListConsentHistoryRequest {
            customer_id: alice.id.clone(),
            page_size: 2,
            page_token: history.next_page_token.clone(),
        })
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(rest.changes.len(), 1);
    assert_eq!(rest.changes[0].source, "app");

    let unknown = uuid::Uuid::now_v7().to_string();
    let bulk = client
        .batch_get_consents(pb::BatchGetConsentsRequest {
            customer_ids: vec![alice.id.clone(), bob.id.clone(), unknown.clone()],
        })
        .await
        .expect("bulk")
        .into_inner();
    assert_eq!(bulk.missing_ids, [unknown]);
    let of = |id: &str| {
        bulk.customers
            .iter()
            .find(|c| c.customer_id == id)
            .expect("customer present")
            .clone()
    };
    let granted_channels = |c: pb::CustomerConsents| {
        c.consents
            .iter()
            .filter(|consent| consent.granted)
            .map(|consent| consent.channel())
            .collect::<Vec<_>>()
    };
    assert_eq!(granted_channels(of(&alice.id)), [Channel::Push]);
    assert!(
        granted_channels(of(&bob.id)).is_empty(),
        "never asked: nothing granted"
    );
    assert_eq!(of(&bob.id).consents.len(), 3);
}

#[tokio::test]
async fn a_late_older_change_joins_history_without_overwriting_the_current_state() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    client
        .set_consent(consent(&customer.id, Channel::Sms, true, "pos"))
        .await
        .expect("grant now");
    let late = pb::SetConsentRequest {
        changed_at: Some(ago(3600)),
        ..consent(&customer.id, Channel::Sms, false, "batch")
    };
    let current = client
        .set_consent(late)
        .await
        .expect("late revoke")
        .into_inner();
    assert!(current.granted, "the newer grant stays in force");
    let history = client
        .list_consent_history(pb::ListConsentHistoryRequest {
            customer_id: customer.id.clone(),
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.changes.len(), 2);
}

#[tokio::test]
async fn invalid_consent_changes_are_refused() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    let status = client
        .set_consent(pb::SetConsentRequest {
            changed_at: Some(ago(-86_400)),
            ..consent(&customer.id, Channel::Unspecified, true, "")
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        violated_fields(&status),
        ["channel", "source", "changed_at"]
    );
    let status = client
        .set_consent(consent("bad-id", Channel::Email, true, "app"))
        .await
        .expect_err("bad id");
    assert_eq!(violated_fields(&status), ["customer_id"]);
    let status = client
        .set_consent(consent(
            &uuid::Uuid::now_v7().to_string(),
            Channel::Email,
            true,
            "app",
        ))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .batch_get_consents(pb::BatchGetConsentsRequest {
            customer_ids: vec!["x".into()],
        })
        .await
        .expect_err("bad");
    assert_eq!(violated_fields(&status), ["customer_ids[0]"]);
}
