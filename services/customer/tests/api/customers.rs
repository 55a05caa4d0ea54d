//! Customer profiles: create, get, batch get, update, list, erase, export.

use std::collections::HashMap;

use tierline_proto::{
    common::v1::{Date, TimeRange},
    customer::v1::{self as pb},
    prost_types::FieldMask,
};
use tonic::Code;

use crate::support::{TestApp, ago, new_customer, purchase, violated_fields};

#[tokio::test]
async fn create_then_get_by_id_and_by_external_id() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = client
        .create_customer(pb::CreateCustomerRequest {
            external_id: "card-0001".into(),
            name: "Ji-woo Kim".into(),
            email: "Ji-Woo@Example.com".into(),
            phone: "+821012345678".into(),
            birth_date: Some(Date {
                year: 1991,
                month: 4,
                day: 2,
            }),
            attributes: HashMap::from([("favourite_store".into(), "seoul-01".into())]),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    assert_eq!(created.email, "ji-woo@example.com", "e-mail is lower-cased");
    assert_eq!(created.status(), pb::CustomerStatus::Active);
    assert!(created.joined_at.is_some());

    let by_id = client
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::Id(created.id.clone())),
        })
        .await
        .expect("by id")
        .into_inner();
    assert_eq!(by_id, created);
    let by_external = client
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::ExternalId(
                "card-0001".into(),
            )),
        })
        .await
        .expect("by external id")
        .into_inner();
    assert_eq!(by_external, created);
}

#[tokio::test]
async fn phones_as_koreans_type_them_and_hangul_round_trip() {
    let app = TestApp::spawn_with(&[("TIERLINE_PHONE_REGION", "KR")]).await;
    let mut client = app.client().await;
    let created = client
        .create_customer(pb::CreateCustomerRequest {
            external_id: "card-0002".into(),
            name: "김지우".into(),
            phone: "010-1234-5678".into(),
            attributes: HashMap::from([("favourite_store".into(), "명동 1호점".into())]),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    assert_eq!(created.phone, "+821012345678", "stored in E.164");
    let read = client
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::Id(created.id.clone())),
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(read.name, "김지우");
    assert_eq!(read.attributes["favourite_store"], "명동 1호점");

    // An update takes the same forms; a number that is none is refused, naming the field.
    let update = |phone: &str| pb::UpdateCustomerRequest {
        id: created.id.clone(),
        customer: Some(pb::Customer {
            phone: phone.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["phone".into()],
        }),
    };
    let updated = client
        .update_customer(update("+82 10-9876-5432"))
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.phone, "+821098765432");
    let refused = client
        .update_customer(update("010-12"))
        .await
        .expect_err("not a number");
    assert_eq!(violated_fields(&refused), ["customer.phone"]);
    let refused = client
        .create_customer(pb::CreateCustomerRequest {
            name: "Nobody".into(),
            phone: "12345".into(),
            ..Default::default()
        })
        .await
        .expect_err("not a number");
    assert_eq!(violated_fields(&refused), ["phone"]);
}

#[tokio::test]
async fn the_call_centre_finds_a_customer_by_email_phone_or_external_id() {
    let app = TestApp::spawn_with(&[("TIERLINE_PHONE_REGION", "KR")]).await;
    let mut client = app.client().await;
    let wanted = client
        .create_customer(pb::CreateCustomerRequest {
            external_id: "card-7777".into(),
            name: "박서준".into(),
            email: "Seo-Jun.Park@Example.com".into(),
            phone: "010-5555-7777".into(),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    for other in ["a", "b"] {
        client
            .create_customer(pb::CreateCustomerRequest {
                name: format!("Other {other}"),
                email: format!("{other}@example.com"),
                phone: format!("+8210555500{}", if other == "a" { "01" } else { "02" }),
                ..Default::default()
            })
            .await
            .expect("other");
    }
    let find = |request: pb::ListCustomersRequest| {
        let mut client = client.clone();
        async move {
            client.list_customers(request).await.map(|found| {
                found
                    .into_inner()
                    .customers
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            })
        }
    };
    let by = [
        pb::ListCustomersRequest {
            email: "SEO-JUN.PARK@example.com".into(),
            ..Default::default()
        },
        // Any form the phone was typed in: national, international, E.164.
        pb::ListCustomersRequest {
            phone: "010 5555 7777".into(),
            ..Default::default()
        },
        pb::ListCustomersRequest {
            phone: "+82 10-5555-7777".into(),
            ..Default::default()
        },
        pb::ListCustomersRequest {
            external_id: "card-7777".into(),
            ..Default::default()
        },
    ];
    for request in by {
        assert_eq!(
            find(request.clone()).await.expect("found"),
            std::slice::from_ref(&wanted.id),
            "{request:?}"
        );
    }
    let nobody = find(pb::ListCustomersRequest {
        email: "nobody@example.com".into(),
        ..Default::default()
    })
    .await
    .expect("empty");
    assert!(nobody.is_empty());
    let refused = find(pb::ListCustomersRequest {
        phone: "12".into(),
        ..Default::default()
    })
    .await
    .expect_err("not a phone number");
    assert_eq!(violated_fields(&refused), ["phone"]);
}

#[tokio::test]
async fn invalid_profiles_name_every_bad_field() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let status = client
        .create_customer(pb::CreateCustomerRequest {
            external_id: "has space".into(),
            name: String::new(),
            email: "not-an-email".into(),
            phone: "010-1234-5678".into(),
            birth_date: Some(Date {
                year: 1990,
                month: 2,
                day: 30,
            }),
            joined_at: Some(ago(-86_400)),
            attributes: HashMap::from([("Bad Key".into(), "v".into())]),
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        violated_fields(&status),
        [
            "external_id",
            "name",
            "email",
            "phone",
            "birth_date",
            "joined_at",
            "attributes[Bad Key]"
        ]
    );
    let too_long = client
        .create_customer(pb::CreateCustomerRequest {
            name: "x".repeat(201),
            ..Default::default()
        })
        .await
        .expect_err("name too long");
    assert_eq!(violated_fields(&too_long), ["name"]);
}

#[tokio::test]
async fn a_taken_external_id_is_already_exists_and_unknown_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let request = pb::CreateCustomerRequest {
        external_id: "card-7".into(),
        name: "A".into(),
        ..Default::default()
    };
    client
        .create_customer(request.clone())
        .await
        .expect("first");
    let status = client.create_customer(request).await.expect_err("second");
    assert_eq!(status.code(), Code::AlreadyExists);

    let missing = uuid::Uuid::now_v7().to_string();
    let status = client
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::Id(missing)),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::Id("nope".into())),
        })
        .await
        .expect_err("malformed");
    assert_eq!(violated_fields(&status), ["id"]);
    let status = client
        .get_customer(pb::GetCustomerRequest { lookup: None })
        .await
        .expect_err("no lookup");
    assert_eq!(violated_fields(&status), ["lookup"]);
}

#[tokio::test]
async fn batch_get_returns_found_and_missing() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let a = new_customer(&mut client).await;
    let b = new_customer(&mut client).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let response = client
        .batch_get_customers(pb::BatchGetCustomersRequest {
            ids: vec![a.id.clone(), b.id.clone(), unknown.clone()],
        })
        .await
        .expect("batch")
        .into_inner();
    let mut found: Vec<String> = response.customers.into_iter().map(|c| c.id).collect();
    found.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(response.missing_ids, [unknown]);

    let status = client
        .batch_get_customers(pb::BatchGetCustomersRequest { ids: vec![] })
        .await
        .expect_err("empty");
    assert_eq!(violated_fields(&status), ["ids"]);
    let too_many = (0..1001)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let status = client
        .batch_get_customers(pb::BatchGetCustomersRequest { ids: too_many })
        .await
        .expect_err("too many");
    assert_eq!(violated_fields(&status), ["ids"]);
}

#[tokio::test]
async fn update_changes_only_the_masked_fields() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = client
        .create_customer(pb::CreateCustomerRequest {
            name: "Before".into(),
            email: "before@example.com".into(),
            phone: "+821011112222".into(),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    let update = |paths: &[&str], customer: pb::Customer| pb::UpdateCustomerRequest {
        id: created.id.clone(),
        customer: Some(customer),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    let updated = client
        .update_customer(update(
            &["name", "email", "attributes"],
            pb::Customer {
                name: "After".into(),
                email: String::new(),
                phone: "+829999999999".into(),
                attributes: HashMap::from([("tier_hint".into(), "vip".into())]),
                ..Default::default()
            },
        ))
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.name, "After");
    assert_eq!(updated.email, "", "an empty masked field clears it");
    assert_eq!(updated.phone, "+821011112222", "an unmasked field stays");
    assert_eq!(
        updated.attributes.get("tier_hint").map(String::as_str),
        Some("vip")
    );
    assert_ne!(updated.updated_at, created.updated_at, "updated_at moves");

    let status = client
        .update_customer(update(&[], pb::Customer::default()))
        .await
        .expect_err("empty mask");
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let status = client
        .update_customer(update(&["status"], pb::Customer::default()))
        .await
        .expect_err("status");
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let status = client
        .update_customer(update(
            &["email"],
            pb::Customer {
                email: "broken".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("bad email");
    assert_eq!(violated_fields(&status), ["customer.email"]);
    let status = client
        .update_customer(pb::UpdateCustomerRequest {
            id: uuid::Uuid::now_v7().to_string(),
            ..update(
                &["name"],
                pb::Customer {
                    name: "X".into(),
                    ..Default::default()
                },
            )
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn list_pages_through_filtered_customers() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut vip_ids = Vec::new();
    for index in 0..5 {
        let customer = client
            .create_customer(pb::CreateCustomerRequest {
                name: format!("Customer {index}"),
                birth_date: Some(Date {
                    year: 1990,
                    month: if index % 2 == 0 { 3 } else { 7 },
                    day: 14,
                }),
                attributes: HashMap::from([(
                    "segment".into(),
                    if index < 3 {
                        "vip".into()
                    } else {
                        "regular".into()
                    },
                )]),
                joined_at: Some(ago(86_400 * (10 - index))),
                ..Default::default()
            })
            .await
            .expect("created")
            .into_inner();
        if index < 3 {
            vip_ids.push(customer.id);
        }
    }
    // All VIPs, two per page.
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_customers(pb::ListCustomersRequest {
                page_size: 2,
                page_token: page_token.clone(),
                attributes: HashMap::from([("segment".into(), "vip".into())]),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.customers.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, vip_ids, "creation order, every VIP once");

    let march = client
        .list_customers(pb::ListCustomersRequest {
            birth_month: 3,
            birth_day: 14,
            ..Default::default()
        })
        .await
        .expect("birthdays")
        .into_inner();
    assert_eq!(march.customers.len(), 3);
    let recent = client
        .list_customers(pb::ListCustomersRequest {
            joined: Some(TimeRange {
                start: Some(ago(86_400 * 7 + 60)),
                end: None,
            }),
            ..Default::default()
        })
        .await
        .expect("joined range")
        .into_inner();
    assert_eq!(recent.customers.len(), 2, "joined 7 and 6 days ago");
    let erased = client
        .list_customers(pb::ListCustomersRequest {
            status: pb::CustomerStatus::Erased.into(),
            ..Default::default()
        })
        .await
        .expect("erased")
        .into_inner();
    assert!(erased.customers.is_empty());

    for (request, field) in [
        (
            pb::ListCustomersRequest {
                page_size: 5000,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListCustomersRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListCustomersRequest {
                birth_month: 13,
                ..Default::default()
            },
            "birth_month",
        ),
        (
            pb::ListCustomersRequest {
                birth_day: 3,
                ..Default::default()
            },
            "birth_day",
        ),
    ] {
        let status = client.list_customers(request).await.expect_err("invalid");
        assert_eq!(violated_fields(&status), [field]);
    }
}

#[tokio::test]
async fn erase_removes_personal_data_keeps_activity_and_refuses_new_activity() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = client
        .create_customer(pb::CreateCustomerRequest {
            external_id: "card-erase".into(),
            name: "Forget Me".into(),
            email: "forget@example.com".into(),
            phone: "+821055556666".into(),
            birth_date: Some(Date {
                year: 1980,
                month: 1,
                day: 1,
            }),
            attributes: HashMap::from([("k".into(), "v".into())]),
            ..Default::default()
        })
        .await
        .expect("created")
        .into_inner();
    client
        .set_consent(pb::SetConsentRequest {
            customer_id: customer.id.clone(),
            channel: tierline_proto::common::v1::Channel::Email.into(),
            granted: true,
            source: "app".into(),
            changed_at: None,
        })
        .await
        .expect("consent");
    client
        .record_purchase(purchase("erase-p1", &customer.id, 50_000))
        .await
        .expect("purchase");

    let erased = client
        .erase_customer(pb::EraseCustomerRequest {
            id: customer.id.clone(),
            reason: "ticket 42".into(),
        })
        .await
        .expect("erased")
        .into_inner();
    assert_eq!(erased.status(), pb::CustomerStatus::Erased);
    assert_eq!(
        (
            erased.name.as_str(),
            erased.email.as_str(),
            erased.phone.as_str(),
            erased.external_id.as_str()
        ),
        ("", "", "", "")
    );
    assert!(
        erased.birth_date.is_none() && erased.attributes.is_empty() && erased.erased_at.is_some()
    );

    let export = client
        .export_customer(pb::ExportCustomerRequest {
            id: customer.id.clone(),
        })
        .await
        .expect("export")
        .into_inner();
    assert_eq!(
        export.activities.len(),
        1,
        "activity kept under the pseudonymous id"
    );
    assert!(
        export.consents.iter().all(|consent| !consent.granted),
        "consents revoked"
    );
    assert_eq!(
        export.consent_history.first().map(|c| c.source.as_str()),
        Some("erasure")
    );

    let status = client
        .record_purchase(purchase("erase-p2", &customer.id, 1_000))
        .await
        .expect_err("erased");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = client
        .update_customer(pb::UpdateCustomerRequest {
            id: customer.id.clone(),
            customer: Some(pb::Customer {
                name: "Back".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .expect_err("erased");
    assert_eq!(status.code(), Code::FailedPrecondition);
    // The external id is free again, and erasing twice changes nothing.
    client
        .create_customer(pb::CreateCustomerRequest {
            external_id: "card-erase".into(),
            name: "New".into(),
            ..Default::default()
        })
        .await
        .expect("external id reusable");
    let again = client
        .erase_customer(pb::EraseCustomerRequest {
            id: customer.id.clone(),
            reason: String::new(),
        })
        .await
        .expect("idempotent")
        .into_inner();
    assert_eq!(again.erased_at, erased.erased_at);
    let status = client
        .erase_customer(pb::EraseCustomerRequest {
            id: uuid::Uuid::now_v7().to_string(),
            reason: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn export_returns_profile_consents_history_and_activities() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let customer = new_customer(&mut client).await;
    for (channel, granted) in [
        (tierline_proto::common::v1::Channel::Sms, true),
        (tierline_proto::common::v1::Channel::Sms, false),
    ] {
        client
            .set_consent(pb::SetConsentRequest {
                customer_id: customer.id.clone(),
                channel: channel.into(),
                granted,
                source: "call-centre".into(),
                changed_at: None,
            })
            .await
            .expect("consent");
    }
    let first = client
        .record_purchase(purchase("export-1", &customer.id, 10_000))
        .await
        .expect("p1")
        .into_inner();
    let purchase_id = first.activity.expect("activity").id;
    client
        .record_refund(crate::support::refund(
            "export-r1",
            &customer.id,
            &purchase_id,
            4_000,
        ))
        .await
        .expect("refund");

    let export = client
        .export_customer(pb::ExportCustomerRequest {
            id: customer.id.clone(),
        })
        .await
        .expect("export")
        .into_inner();
    assert_eq!(export.customer.map(|c| c.id), Some(customer.id.clone()));
    assert_eq!(export.consents.len(), 3, "one per channel");
    assert_eq!(export.consent_history.len(), 2);
    assert!(!export.consent_history[0].granted, "newest first");
    assert_eq!(export.activities.len(), 2);
    assert!(export.exported_at.is_some());
}
