//! The campaign service's API contract on the real services: validation naming each field, the
//! lifecycle's transitions, idempotent creation, optimistic revisions, the scheduler launching
//! and completing by itself, acks, and cancellation withdrawing what was not sent.

use crate::support;

use crate::support::{
    authorized,
    business::{self, Person},
    days_ago, eventually,
};
use tierline_proto::{
    campaign::v1 as campaign,
    common::v1::{Channel as ContactChannel, Money},
    prost_types::Timestamp,
};
use tierline_runtime::{
    auth::scopes::{CAMPAIGNS_ADMIN, DELIVERIES_WRITE},
    status::field_violations,
};

fn fields(status: &tonic::Status) -> Vec<String> {
    field_violations(status)
        .into_iter()
        .map(|v| v.field)
        .collect()
}

fn admin<T>(message: T) -> tonic::Request<T> {
    authorized(message, &[CAMPAIGNS_ADMIN])
}

fn seconds_from_now(seconds: i64) -> Timestamp {
    let mut at = days_ago(0);
    at.seconds += seconds;
    at
}

async fn program(services: &mut support::Services) -> String {
    business::program(services, "SHOP", "KRW", &[("BASIC", 0), ("VIP", 100_000)]).await
}

#[tokio::test]
async fn fields_are_validated_and_each_transition_is_checked() {
    let mut services = support::start(&[]).await;
    let program_id = program(&mut services).await;

    let mut bad = business::one_shot(&program_id, "KRW", Default::default(), 6_000);
    bad.kind = 0;
    bad.attribution_window_days = 0;
    bad.cost_per_contact = Some(Money {
        amount_minor: 10,
        currency: "USD".into(),
    });
    let error = services
        .campaign()
        .create_campaign(admin(campaign::CreateCampaignRequest {
            campaign: Some(bad),
            created_by: "ops".into(),
            idempotency_key: String::new(),
        }))
        .await
        .expect_err("invalid");
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert_eq!(fields(&error), ["campaign.kind"]);

    let mut bad = business::one_shot(&program_id, "KRW", Default::default(), 6_000);
    bad.attribution_window_days = 0;
    bad.cost_per_contact = Some(Money {
        amount_minor: 10,
        currency: "USD".into(),
    });
    let error = services
        .campaign()
        .create_campaign(admin(campaign::CreateCampaignRequest {
            campaign: Some(bad),
            created_by: "ops".into(),
            idempotency_key: String::new(),
        }))
        .await
        .expect_err("invalid");
    assert_eq!(
        fields(&error),
        ["campaign.cost_per_contact.currency"],
        "amounts are checked against the program first"
    );

    let unknown_program = business::one_shot(
        &uuid::Uuid::now_v7().to_string(),
        "KRW",
        Default::default(),
        0,
    );
    let error = services
        .campaign()
        .create_campaign(admin(campaign::CreateCampaignRequest {
            campaign: Some(unknown_program),
            created_by: "ops".into(),
            idempotency_key: String::new(),
        }))
        .await
        .expect_err("unknown program");
    assert_eq!(error.code(), tonic::Code::NotFound);

    // A draft without an offer cannot be scheduled; the missing field is named.
    let mut draft = business::one_shot(&program_id, "KRW", Default::default(), 1_000);
    draft.offer = None;
    let draft = business::create(&mut services, draft).await;
    let error = services
        .campaign()
        .schedule_campaign(admin(campaign::ScheduleCampaignRequest {
            campaign_id: draft.id.clone(),
            start_at: Some(seconds_from_now(3_600)),
        }))
        .await
        .expect_err("incomplete");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert_eq!(fields(&error), ["campaign.offer"]);

    // Updates are optimistic and validated.
    let stale = services
        .campaign()
        .update_campaign(admin(campaign::UpdateCampaignRequest {
            campaign_id: draft.id.clone(),
            expected_revision: Some(draft.revision + 5),
            name: Some("Renamed".into()),
            ..Default::default()
        }))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let invalid = services
        .campaign()
        .update_campaign(admin(campaign::UpdateCampaignRequest {
            campaign_id: draft.id.clone(),
            holdout_bps: Some(9_000),
            ..Default::default()
        }))
        .await
        .expect_err("holdout over 50 %");
    assert_eq!(fields(&invalid), ["holdout_bps"]);
    let updated = services
        .campaign()
        .update_campaign(admin(campaign::UpdateCampaignRequest {
            campaign_id: draft.id.clone(),
            expected_revision: Some(draft.revision),
            offer: Some(campaign::Offer {
                text: "Welcome back".into(),
                benefit: None,
            }),
            ..Default::default()
        }))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.revision, draft.revision + 1);

    let past = services
        .campaign()
        .schedule_campaign(admin(campaign::ScheduleCampaignRequest {
            campaign_id: draft.id.clone(),
            start_at: Some(days_ago(1)),
        }))
        .await
        .expect_err("past start");
    assert_eq!(fields(&past), ["start_at"]);
    let scheduled = services
        .campaign()
        .schedule_campaign(admin(campaign::ScheduleCampaignRequest {
            campaign_id: draft.id.clone(),
            start_at: Some(seconds_from_now(3_600)),
        }))
        .await
        .expect("schedule")
        .into_inner();
    assert_eq!(scheduled.status, campaign::CampaignStatus::Scheduled as i32);
    let frozen = services
        .campaign()
        .update_campaign(admin(campaign::UpdateCampaignRequest {
            campaign_id: draft.id.clone(),
            name: Some("Too late".into()),
            ..Default::default()
        }))
        .await
        .expect_err("not a draft");
    assert_eq!(frozen.code(), tonic::Code::FailedPrecondition);
    let never_launched = services
        .campaign()
        .get_campaign_report(admin(campaign::GetCampaignReportRequest {
            campaign_id: draft.id.clone(),
        }))
        .await
        .expect_err("no report before launch");
    assert_eq!(never_launched.code(), tonic::Code::FailedPrecondition);

    let cancelled = services
        .campaign()
        .cancel_campaign(admin(campaign::CancelCampaignRequest {
            campaign_id: draft.id.clone(),
            reason: "budget cut".into(),
        }))
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(cancelled.status, campaign::CampaignStatus::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, "budget cut");
    let again = services
        .campaign()
        .cancel_campaign(admin(campaign::CancelCampaignRequest {
            campaign_id: draft.id.clone(),
            reason: "again".into(),
        }))
        .await
        .expect("cancel again")
        .into_inner();
    assert_eq!(again.revision, cancelled.revision, "unchanged");
    for error in [
        services
            .campaign()
            .launch_campaign(admin(campaign::LaunchCampaignRequest {
                campaign_id: draft.id.clone(),
            }))
            .await
            .map(|_| ())
            .expect_err("cancelled"),
        services
            .campaign()
            .complete_campaign(admin(campaign::CompleteCampaignRequest {
                campaign_id: draft.id.clone(),
            }))
            .await
            .map(|_| ())
            .expect_err("cancelled"),
    ] {
        assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    }
}

#[tokio::test]
async fn a_retried_create_returns_the_first_campaign() {
    let mut services = support::start(&[]).await;
    let program_id = program(&mut services).await;
    let request = |name: &str| {
        let mut definition = business::one_shot(&program_id, "KRW", Default::default(), 0);
        definition.name = name.into();
        authorized(
            campaign::CreateCampaignRequest {
                campaign: Some(definition),
                created_by: "ops".into(),
                idempotency_key: "create-1".into(),
            },
            &[CAMPAIGNS_ADMIN],
        )
    };
    let first = services
        .campaign()
        .create_campaign(request("Spring"))
        .await
        .expect("first")
        .into_inner();
    let retry = services
        .campaign()
        .create_campaign(request("Spring"))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry.id, first.id);
    let different = services
        .campaign()
        .create_campaign(request("Autumn"))
        .await
        .expect_err("another campaign under the same key");
    assert_eq!(fields(&different), ["idempotency_key"]);
    let listed = services
        .campaign()
        .list_campaigns(authorized(
            campaign::ListCampaignsRequest::default(),
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.campaigns.len(), 1);
}

#[tokio::test]
async fn the_scheduler_launches_and_ends_campaigns_and_cancelling_withdraws_pending_deliveries() {
    let mut services = support::start(&[]).await;
    let program_id = program(&mut services).await;
    let customer = Person {
        email_consent: true,
        purchases: vec![(10_000, 5)],
        ..Person::default()
    };
    business::customers(&services, "KRW", &vec![customer; 6]).await;
    let mut definition = business::one_shot(&program_id, "KRW", Default::default(), 0);
    definition.schedule = Some(campaign::CampaignSchedule {
        start_at: Some(seconds_from_now(2)),
        end_at: Some(seconds_from_now(4)),
    });
    let created = business::create(&mut services, definition).await;
    // Wait for the audience to reach the scoring service before the start comes.
    business::preview_until(
        &services,
        campaign::preview_audience_request::Target::CampaignId(created.id.clone()),
        Some(0),
        |preview| preview.eligible == 6,
    )
    .await;
    services
        .campaign()
        .schedule_campaign(authorized(
            campaign::ScheduleCampaignRequest {
                campaign_id: created.id.clone(),
                start_at: None,
            },
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect("schedule");
    let completed = eventually("the end of the campaign", || {
        let mut client = services.campaign();
        let id = created.id.clone();
        async move {
            let campaign = client
                .get_campaign(authorized(
                    campaign::GetCampaignRequest { campaign_id: id },
                    &[CAMPAIGNS_ADMIN],
                ))
                .await
                .ok()?
                .into_inner();
            (campaign.status == campaign::CampaignStatus::Completed as i32).then_some(campaign)
        }
    })
    .await;
    assert!(completed.launched_at.is_some() && completed.completed_at.is_some());
    assert_eq!(
        completed.launch_summary.map(|s| s.treatment_members),
        Some(6)
    );

    // Acks: the lease holder's first outcome wins; the rest are told what happened.
    let mut stream = services
        .campaign()
        .stream_deliveries(authorized(
            campaign::StreamDeliveriesRequest {
                channel: ContactChannel::Email.into(),
                adapter_id: "mailer".into(),
                max_in_flight: Some(2),
                lease_seconds: None,
            },
            &[DELIVERIES_WRITE],
        ))
        .await
        .expect("stream")
        .into_inner();
    let first = stream.message().await.expect("open").expect("delivery");
    let second = stream.message().await.expect("open").expect("delivery");
    drop(stream);
    let ack = |id: &str, outcome: campaign::DeliveryOutcome, reason: &str| campaign::DeliveryAck {
        delivery_id: id.into(),
        outcome: outcome.into(),
        failure_reason: reason.into(),
        ..Default::default()
    };
    // Only the adapter holding the lease may acknowledge; a refused batch records nothing (the
    // mailer's own ack below is the first).
    let refused = services
        .campaign()
        .ack_deliveries(authorized(
            campaign::AckDeliveriesRequest {
                adapter_id: "another-mailer".into(),
                acks: vec![ack(&first.delivery_id, campaign::DeliveryOutcome::Sent, "")],
            },
            &[DELIVERIES_WRITE],
        ))
        .await
        .expect_err("not the lease holder");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(fields(&refused), ["acks[0].delivery_id"]);
    let results = services
        .campaign()
        .ack_deliveries(authorized(
            campaign::AckDeliveriesRequest {
                adapter_id: "mailer".into(),
                acks: vec![
                    ack(&first.delivery_id, campaign::DeliveryOutcome::Sent, ""),
                    ack(&first.delivery_id, campaign::DeliveryOutcome::Sent, ""),
                    ack(
                        &first.delivery_id,
                        campaign::DeliveryOutcome::Failed,
                        "bounced",
                    ),
                    ack(&second.delivery_id, campaign::DeliveryOutcome::Failed, ""),
                    ack(
                        &uuid::Uuid::now_v7().to_string(),
                        campaign::DeliveryOutcome::Sent,
                        "",
                    ),
                ],
            },
            &[DELIVERIES_WRITE],
        ))
        .await
        .expect("acks")
        .into_inner()
        .results;
    use campaign::AckStatus::{Accepted, AlreadyAcked, Conflict, Invalid, NotFound};
    assert_eq!(
        results.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Accepted, AlreadyAcked, Conflict, Invalid, NotFound].map(|s| s as i32)
    );

    // A completed campaign cannot be cancelled; a running one can, and what was never leased is
    // withdrawn.
    let error = services
        .campaign()
        .cancel_campaign(authorized(
            campaign::CancelCampaignRequest {
                campaign_id: created.id.clone(),
                reason: "late".into(),
            },
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect_err("completed");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    let running = business::create(
        &mut services,
        business::one_shot(&program_id, "KRW", Default::default(), 0),
    )
    .await;
    business::launch(&mut services, &running.id).await;
    services
        .campaign()
        .cancel_campaign(authorized(
            campaign::CancelCampaignRequest {
                campaign_id: running.id.clone(),
                reason: "wrong offer".into(),
            },
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect("cancel");
    let members = business::members(&mut services, &running.id).await;
    assert_eq!(members.len(), 6);
    assert!(
        members
            .iter()
            .all(|m| m.delivery_status == campaign::DeliveryStatus::Withdrawn as i32)
    );
}

#[tokio::test]
async fn an_interrupted_launch_is_resumed_by_the_scheduler_without_duplicates() {
    // A cap of one contact: the replayed pages must not count the campaign's own deliveries.
    let mut services = support::start(&[("TIERLINE_FREQUENCY_CAP_CONTACTS", "1")]).await;
    let program_id = program(&mut services).await;
    let customer = Person {
        email_consent: true,
        purchases: vec![(10_000, 5)],
        ..Person::default()
    };
    business::customers(&services, "KRW", &vec![customer; 8]).await;
    let created = business::create(
        &mut services,
        business::one_shot(&program_id, "KRW", Default::default(), 2_500),
    )
    .await;
    business::preview_until(
        &services,
        campaign::preview_audience_request::Target::CampaignId(created.id.clone()),
        Some(0),
        |preview| preview.eligible == 8,
    )
    .await;
    let first = business::launch(&mut services, &created.id)
        .await
        .summary
        .expect("summary");
    assert!(first.complete);

    // As if the launcher died before its progress was recorded: the whole audience is taken
    // again by whoever finds the launch lock free (here the scheduler).
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&services.database_url)
        .await
        .expect("database");
    sqlx::query(
        "UPDATE campaign.campaigns SET launch_complete = false, launch_cursor = NULL, launch_matched = 0
         WHERE id = $1",
    )
    .bind(uuid::Uuid::parse_str(&created.id).expect("id"))
    .execute(&mut connection)
    .await
    .expect("interrupt");
    let resumed = eventually("the resumed launch", || {
        let mut client = services.campaign();
        let id = created.id.clone();
        async move {
            let summary = client
                .get_campaign(admin(campaign::GetCampaignRequest { campaign_id: id }))
                .await
                .ok()?
                .into_inner()
                .launch_summary?;
            summary.complete.then_some(summary)
        }
    })
    .await;
    assert_eq!(resumed, first, "the same members, no more");
    let members = business::members(&mut services, &created.id).await;
    assert_eq!(members.len(), 8);
    let deliveries: std::collections::HashSet<_> = members
        .iter()
        .filter(|m| !m.delivery_id.is_empty())
        .map(|m| m.delivery_id.clone())
        .collect();
    assert_eq!(deliveries.len() as i64, first.treatment_members);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM campaign.deliveries")
        .fetch_one(&mut connection)
        .await
        .expect("count");
    assert_eq!(
        total, first.treatment_members,
        "one delivery per treatment member"
    );
}

#[tokio::test]
async fn a_delivery_is_withdrawn_when_consent_is_revoked_or_the_customer_erased_before_sending() {
    use tierline_proto::customer::v1 as customer;
    use tierline_runtime::auth::scopes::CUSTOMERS_WRITE;

    let mut services = support::start(&[]).await;
    let program_id = program(&mut services).await;
    let consenting = Person {
        email_consent: true,
        purchases: vec![(10_000, 5)],
        ..Person::default()
    };
    let ids = business::customers(&services, "KRW", &vec![consenting; 3]).await;
    let created = business::create(
        &mut services,
        business::one_shot(&program_id, "KRW", Default::default(), 0),
    )
    .await;
    business::preview_until(
        &services,
        campaign::preview_audience_request::Target::CampaignId(created.id.clone()),
        Some(0),
        |preview| preview.eligible == 3,
    )
    .await;
    business::launch(&mut services, &created.id).await;

    // After enrolment, before any adapter asks: one revokes e-mail consent, one is erased.
    services
        .customer
        .set_consent(authorized(
            customer::SetConsentRequest {
                customer_id: ids[0].clone(),
                channel: ContactChannel::Email.into(),
                granted: false,
                source: "app".into(),
                changed_at: None,
            },
            &[CUSTOMERS_WRITE],
        ))
        .await
        .expect("revoke");
    services
        .customer
        .erase_customer(authorized(
            customer::EraseCustomerRequest {
                id: ids[1].clone(),
                reason: "customer request".into(),
            },
            &[CUSTOMERS_WRITE],
        ))
        .await
        .expect("erase");

    let mut stream = services
        .campaign()
        .stream_deliveries(authorized(
            campaign::StreamDeliveriesRequest {
                channel: ContactChannel::Email.into(),
                adapter_id: "mailer".into(),
                max_in_flight: None,
                lease_seconds: None,
            },
            &[DELIVERIES_WRITE],
        ))
        .await
        .expect("stream")
        .into_inner();
    let delivery = stream.message().await.expect("open").expect("delivery");
    assert_eq!(delivery.customer_id, ids[2], "only the one still reachable");
    drop(stream);
    let members = business::members(&mut services, &created.id).await;
    let status_of = |id: &str| {
        members
            .iter()
            .find(|m| m.customer_id == id)
            .map(|m| m.delivery_status)
    };
    let withdrawn = Some(campaign::DeliveryStatus::Withdrawn as i32);
    assert_eq!(status_of(&ids[0]), withdrawn);
    assert_eq!(status_of(&ids[1]), withdrawn);
    assert_eq!(
        status_of(&ids[2]),
        Some(campaign::DeliveryStatus::Leased as i32)
    );
}
