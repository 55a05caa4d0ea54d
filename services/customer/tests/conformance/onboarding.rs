//! Bulk onboarding on every backend: created, unchanged and updated by external id, consents
//! recorded only where they differ, one CREATED feed event per new customer.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tierline_customer::{
    domain::{
        consent::{ConsentChannel, ConsentInput, HistoryPage},
        customer::ProfileInput,
        feed::{FeedCursor, FeedPayload},
        onboarding::{OnboardingInput, OnboardingOutcome, validate_batch},
        service::Rules,
    },
    storage::CustomerStore,
};
use uuid::Uuid;

fn member(external_id: &str, name: &str, phone: &str, email_consent: bool) -> OnboardingInput {
    OnboardingInput {
        profile: ProfileInput {
            external_id: external_id.into(),
            name: name.into(),
            phone: phone.into(),
            ..ProfileInput::default()
        },
        consents: vec![ConsentInput {
            customer_id: Uuid::nil(),
            channel: Some(ConsentChannel::Email),
            granted: email_consent,
            source: "crm-migration".into(),
            changed_at: None,
        }],
    }
}

async fn onboard(
    store: &Arc<dyn CustomerStore>,
    items: Vec<OnboardingInput>,
) -> Vec<OnboardingOutcome> {
    let (valid, _) =
        validate_batch(items, Utc::now(), &Rules::new(Duration::minutes(5))).expect("batch");
    let batch: Vec<_> = valid.into_iter().map(|(_, item)| item).collect();
    store.onboard(&batch).await.expect("onboarded")
}

fn id_of(outcome: &OnboardingOutcome) -> Uuid {
    match outcome {
        OnboardingOutcome::Created { customer_id }
        | OnboardingOutcome::Unchanged { customer_id }
        | OnboardingOutcome::Updated { customer_id } => *customer_id,
        OnboardingOutcome::Rejected { .. } => panic!("rejected: {outcome:?}"),
    }
}

pub(crate) async fn onboarding_is_idempotent_by_external_id(store: Arc<dyn CustomerStore>) {
    let first = onboard(
        &store,
        vec![
            member("M-1", "김민지", "+821012345678", true),
            member("M-2", "이서준", "+821098765432", false),
        ],
    )
    .await;
    assert!(
        matches!(first[0], OnboardingOutcome::Created { .. }),
        "{first:?}"
    );
    assert!(
        matches!(first[1], OnboardingOutcome::Created { .. }),
        "{first:?}"
    );
    let (kim, lee) = (id_of(&first[0]), id_of(&first[1]));
    let stored = store.customer(kim).await.expect("read").expect("stored");
    assert_eq!(
        (stored.external_id.as_deref(), stored.name.as_str()),
        (Some("M-1"), "김민지"),
        "Hangul round-trips"
    );
    let consents = store.consents(&[kim, lee]).await.expect("consents");
    let email = |id: Uuid| {
        consents
            .iter()
            .find(|c| c.customer_id == id)
            .and_then(|c| {
                c.consents
                    .iter()
                    .find(|c| c.channel == ConsentChannel::Email)
            })
            .map(|c| c.granted)
    };
    assert_eq!((email(kim), email(lee)), (Some(true), Some(false)));

    // The same again: nothing changes. A new phone and a withdrawn consent: updated.
    let again = onboard(
        &store,
        vec![
            member("M-1", "김민지", "+821012345678", true),
            member("M-2", "이서준", "+821011112222", false),
            member("M-3", "박지훈", "", false),
        ],
    )
    .await;
    assert_eq!(again[0], OnboardingOutcome::Unchanged { customer_id: kim });
    assert_eq!(again[1], OnboardingOutcome::Updated { customer_id: lee });
    assert!(matches!(again[2], OnboardingOutcome::Created { .. }));
    let lee_now = store.customer(lee).await.expect("read").expect("stored");
    assert_eq!(lee_now.phone.as_deref(), Some("+821011112222"));
    let withdrawn = onboard(
        &store,
        vec![member("M-1", "김민지", "+821012345678", false)],
    )
    .await;
    assert_eq!(
        withdrawn[0],
        OnboardingOutcome::Updated { customer_id: kim }
    );
    let history = store
        .consent_history(
            kim,
            HistoryPage {
                before: None,
                limit: 10,
            },
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 2, "granted, then withdrawn: {history:?}");

    // One CREATED event per new customer, none for the updates.
    let page = crate::suite::read_settled(&store, FeedCursor::START, 100, 3).await;
    let created: Vec<Uuid> = page
        .events
        .iter()
        .filter_map(|event| match &event.payload {
            FeedPayload::Customer(customer) => Some(customer.customer_id),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 3, "{created:?}");
    assert!(created.contains(&kim) && created.contains(&lee));
}
