//! Every bound that campaign.proto states for a request field, from both sides, on the real
//! services: a table of cases, each a valid request with one field set at its bound or just past
//! it, and what the contract promises for it: accepted, or INVALID_ARGUMENT naming exactly that
//! field ("campaign.…" inside CreateCampaign's campaign, "definition.…" inside a previewed
//! definition, the request's own paths in UpdateCampaign), or for an ack the item's status.

use crate::support;

use std::collections::HashMap;

use crate::support::{Services, authorized, business, days_ago};
use tierline_proto::{
    campaign::v1::{self as campaign, campaign_service_client::CampaignServiceClient},
    common::v1::{Channel as ContactChannel, Money},
    prost_types::Timestamp,
    scoring::v1 as scoring,
};
use tierline_runtime::{
    auth::scopes::{CAMPAIGNS_ADMIN, DELIVERIES_WRITE},
    status::field_violations,
};
use tonic::{Code, Status, transport::Channel};

/// What the contract promises for one case.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The call succeeds.
    Accepted,
    /// INVALID_ARGUMENT whose BadRequest names exactly this field.
    Invalid(&'static str),
    /// AckDeliveries succeeds and its one ack gets this status.
    Item(campaign::AckStatus),
}

use Expect::{Accepted, Invalid, Item};

/// One request, of any RPC.
// A test's handful of requests, each built once: boxing the large ones would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Call {
    Create(campaign::CreateCampaignRequest),
    List(campaign::ListCampaignsRequest),
    Update(campaign::UpdateCampaignRequest),
    Schedule(campaign::ScheduleCampaignRequest),
    Cancel(campaign::CancelCampaignRequest),
    Preview(campaign::PreviewAudienceRequest),
    Members(campaign::ListMembersRequest),
    Suppressions(campaign::ListSuppressionsRequest),
    Stream(campaign::StreamDeliveriesRequest),
    Ack(campaign::AckDeliveriesRequest),
}

/// Sends `call`; the statuses of its acks for AckDeliveries, nothing for the others.
async fn send(client: &mut CampaignServiceClient<Channel>, call: Call) -> Result<Vec<i32>, Status> {
    let admin = &[CAMPAIGNS_ADMIN];
    let adapter = &[DELIVERIES_WRITE];
    let done = Vec::new();
    match call {
        Call::Create(request) => client
            .create_campaign(authorized(request, admin))
            .await
            .map(|_| done),
        Call::List(request) => client
            .list_campaigns(authorized(request, admin))
            .await
            .map(|_| done),
        Call::Update(request) => client
            .update_campaign(authorized(request, admin))
            .await
            .map(|_| done),
        Call::Schedule(request) => client
            .schedule_campaign(authorized(request, admin))
            .await
            .map(|_| done),
        Call::Cancel(request) => client
            .cancel_campaign(authorized(request, admin))
            .await
            .map(|_| done),
        Call::Preview(request) => client
            .preview_audience(authorized(request, admin))
            .await
            .map(|_| done),
        Call::Members(request) => client
            .list_members(authorized(request, admin))
            .await
            .map(|_| done),
        Call::Suppressions(request) => client
            .list_suppressions(authorized(request, admin))
            .await
            .map(|_| done),
        // A refused stream fails the call; an accepted one opens (and is dropped here).
        Call::Stream(request) => client
            .stream_deliveries(authorized(request, adapter))
            .await
            .map(|_| done),
        Call::Ack(request) => client
            .ack_deliveries(authorized(request, adapter))
            .await
            .map(|response| {
                response
                    .into_inner()
                    .results
                    .into_iter()
                    .map(|result| result.status)
                    .collect()
            }),
    }
}

/// Why `outcome` breaks `expect`, if it does.
fn verdict(expect: Expect, outcome: &Result<Vec<i32>, Status>) -> Result<(), String> {
    match (expect, outcome) {
        (Accepted, Ok(_)) => Ok(()),
        (Item(status), Ok(statuses)) if *statuses == [i32::from(status)] => Ok(()),
        (Invalid(field), Err(status)) if status.code() == Code::InvalidArgument => {
            let fields: Vec<String> = field_violations(status)
                .into_iter()
                .map(|v| v.field)
                .collect();
            if fields == [field] {
                Ok(())
            } else {
                Err(format!(
                    "INVALID_ARGUMENT naming {fields:?}, expected only {field:?}"
                ))
            }
        }
        (expect, Ok(statuses)) => Err(format!(
            "accepted (ack statuses {statuses:?}), expected {expect:?}"
        )),
        (expect, Err(status)) => Err(format!(
            "{:?} ({}), expected {expect:?}",
            status.code(),
            status.message()
        )),
    }
}

/// What the cases work on, made before they run.
struct Fixtures {
    /// A program (BASIC, VIP) in KRW with a policy in force.
    program: String,
    /// A one-shot draft the UpdateCampaign cases change; the lists and previews read it.
    draft: String,
    /// A complete one-shot draft the ScheduleCampaign cases schedule.
    to_schedule: String,
    /// A draft the CancelCampaign cases cancel.
    to_cancel: String,
}

impl Fixtures {
    async fn create(services: &mut Services) -> Self {
        let program =
            business::program(services, "SHOP", "KRW", &[("BASIC", 0), ("VIP", 100_000)]).await;
        let draft = || business::one_shot(&program, "KRW", Default::default(), 1_000);
        let (first, second, third) = (draft(), draft(), draft());
        Self {
            draft: business::create(services, first).await.id,
            to_schedule: business::create(services, second).await.id,
            to_cancel: business::create(services, third).await.id,
            program,
        }
    }
}

fn seconds_from_now(seconds: i64) -> Timestamp {
    let mut at = days_ago(0);
    at.seconds += seconds;
    at
}

fn krw(amount_minor: i64) -> Option<Money> {
    Some(Money {
        amount_minor,
        currency: "KRW".into(),
    })
}

/// CreateCampaign of a complete one-shot e-mail campaign changed by `edit`.
fn create(f: &Fixtures, edit: impl FnOnce(&mut campaign::Campaign)) -> Call {
    let mut definition = business::one_shot(&f.program, "KRW", Default::default(), 1_000);
    edit(&mut definition);
    Call::Create(campaign::CreateCampaignRequest {
        campaign: Some(definition),
        created_by: "ops".into(),
        idempotency_key: String::new(),
    })
}

/// CreateCampaign with this creator and idempotency key.
fn create_by(f: &Fixtures, created_by: String, idempotency_key: String) -> Call {
    Call::Create(campaign::CreateCampaignRequest {
        campaign: Some(business::one_shot(
            &f.program,
            "KRW",
            Default::default(),
            1_000,
        )),
        created_by,
        idempotency_key,
    })
}

fn trigger(event: campaign::campaign_trigger::Event) -> Option<campaign::CampaignTrigger> {
    Some(campaign::CampaignTrigger { event: Some(event) })
}

/// Makes `c` a triggered campaign (any upgrade).
fn triggered(c: &mut campaign::Campaign) {
    c.kind = campaign::CampaignKind::Triggered.into();
    c.trigger = trigger(campaign::campaign_trigger::Event::TierUpgrade(
        campaign::TierUpgradeTrigger {
            to_tier_code: String::new(),
        },
    ));
}

/// Makes `c` a campaign triggered by birthdays.
fn birthday(c: &mut campaign::Campaign, days_before: i32, time_zone: &str) {
    c.kind = campaign::CampaignKind::Triggered.into();
    c.trigger = trigger(campaign::campaign_trigger::Event::Birthday(
        campaign::BirthdayTrigger {
            days_before,
            time_zone: time_zone.into(),
        },
    ));
}

/// Makes `c` a campaign triggered by a lifecycle change.
fn became(c: &mut campaign::Campaign, state: scoring::LifecycleState) {
    c.kind = campaign::CampaignKind::Triggered.into();
    c.trigger = trigger(campaign::campaign_trigger::Event::Lifecycle(
        campaign::LifecycleTrigger {
            became: state.into(),
        },
    ));
}

/// The scoring rule of `c`'s audience.
fn rule(c: &mut campaign::Campaign) -> &mut scoring::AudienceRule {
    c.audience
        .get_or_insert_with(Default::default)
        .scoring_rule
        .get_or_insert_with(Default::default)
}

/// The customer-side part of `c`'s audience.
fn audience(c: &mut campaign::Campaign) -> &mut campaign::CampaignAudience {
    c.audience.get_or_insert_with(Default::default)
}

fn scores(min: Option<i32>, max: Option<i32>) -> Option<scoring::ScoreRange> {
    Some(scoring::ScoreRange { min, max })
}

/// `n` attributes with valid keys.
fn attributes(n: usize) -> HashMap<String, String> {
    (0..n)
        .map(|i| (format!("key_{i}"), "value".to_owned()))
        .collect()
}

fn offer(text: &str, benefit: Option<campaign::offer::Benefit>) -> Option<campaign::Offer> {
    Some(campaign::Offer {
        text: text.into(),
        benefit,
    })
}

fn update(f: &Fixtures, edit: impl FnOnce(&mut campaign::UpdateCampaignRequest)) -> Call {
    let mut request = campaign::UpdateCampaignRequest {
        campaign_id: f.draft.clone(),
        ..Default::default()
    };
    edit(&mut request);
    Call::Update(request)
}

fn preview(f: &Fixtures, sample_size: Option<i32>) -> Call {
    Call::Preview(campaign::PreviewAudienceRequest {
        target: Some(campaign::preview_audience_request::Target::CampaignId(
            f.draft.clone(),
        )),
        sample_size,
    })
}

fn preview_definition(f: &Fixtures, edit: impl FnOnce(&mut campaign::AudienceDefinition)) -> Call {
    let mut definition = campaign::AudienceDefinition {
        program_id: f.program.clone(),
        channel: ContactChannel::Email.into(),
        audience: Some(campaign::CampaignAudience::default()),
        holdout_bps: 1_000,
    };
    edit(&mut definition);
    Call::Preview(campaign::PreviewAudienceRequest {
        target: Some(campaign::preview_audience_request::Target::Definition(
            definition,
        )),
        sample_size: None,
    })
}

fn stream(edit: impl FnOnce(&mut campaign::StreamDeliveriesRequest)) -> Call {
    let mut request = campaign::StreamDeliveriesRequest {
        channel: ContactChannel::Email.into(),
        adapter_id: "mailer".into(),
        max_in_flight: None,
        lease_seconds: None,
    };
    edit(&mut request);
    Call::Stream(request)
}

/// An ack of a delivery that does not exist: valid, it is answered NOT_FOUND; malformed, INVALID.
fn ack(edit: impl FnOnce(&mut campaign::DeliveryAck)) -> campaign::DeliveryAck {
    let mut ack = campaign::DeliveryAck {
        delivery_id: uuid::Uuid::now_v7().to_string(),
        outcome: campaign::DeliveryOutcome::Sent.into(),
        failure_reason: String::new(),
        occurred_at: None,
        provider_message_id: String::new(),
    };
    edit(&mut ack);
    ack
}

fn acks(adapter_id: String, acks: Vec<campaign::DeliveryAck>) -> Call {
    Call::Ack(campaign::AckDeliveriesRequest { adapter_id, acks })
}

fn failed(reason: String) -> impl FnOnce(&mut campaign::DeliveryAck) {
    move |ack: &mut campaign::DeliveryAck| {
        ack.outcome = campaign::DeliveryOutcome::Failed.into();
        ack.failure_reason = reason;
    }
}

/// The page-size bound of a list (0 means the default, 1 to 1,000 otherwise), both sides.
fn page_sizes(name: &'static str, list: impl Fn(i32) -> Call) -> Vec<(String, Call, Expect)> {
    [
        (0, Accepted),
        (1000, Accepted),
        (1001, Invalid("page_size")),
        (-1, Invalid("page_size")),
    ]
    .into_iter()
    .map(|(size, expect)| (format!("{name}: page_size {size}"), list(size), expect))
    .collect()
}

fn cases(f: &Fixtures) -> Vec<(String, Call, Expect)> {
    let lists = [
        page_sizes("list campaigns", |size| {
            Call::List(campaign::ListCampaignsRequest {
                page_size: size,
                ..Default::default()
            })
        }),
        page_sizes("list members", |size| {
            Call::Members(campaign::ListMembersRequest {
                campaign_id: f.draft.clone(),
                page_size: size,
                ..Default::default()
            })
        }),
        page_sizes("list suppressions", |size| {
            Call::Suppressions(campaign::ListSuppressionsRequest {
                campaign_id: f.draft.clone(),
                page_size: size,
                ..Default::default()
            })
        }),
    ];
    let table = vec![
        // ---- CreateCampaign ----
        (
            "create: name of 200",
            create(f, |c| c.name = "가".repeat(200)),
            Accepted,
        ),
        (
            "create: name of 201",
            create(f, |c| c.name = "가".repeat(201)),
            Invalid("campaign.name"),
        ),
        (
            "create: name empty",
            create(f, |c| c.name = String::new()),
            Invalid("campaign.name"),
        ),
        (
            "create: description of 2,000",
            create(f, |c| c.description = "d".repeat(2000)),
            Accepted,
        ),
        (
            "create: description of 2,001",
            create(f, |c| c.description = "d".repeat(2001)),
            Invalid("campaign.description"),
        ),
        (
            "create: program_id empty",
            create(f, |c| c.program_id = String::new()),
            Invalid("campaign.program_id"),
        ),
        (
            "create: kind UNSPECIFIED",
            create(f, |c| c.kind = campaign::CampaignKind::Unspecified.into()),
            Invalid("campaign.kind"),
        ),
        (
            "create: channel UNSPECIFIED",
            create(f, |c| c.channel = ContactChannel::Unspecified.into()),
            Invalid("campaign.channel"),
        ),
        (
            "create: holdout 0",
            create(f, |c| c.holdout_bps = 0),
            Accepted,
        ),
        (
            "create: holdout 5,000",
            create(f, |c| c.holdout_bps = 5_000),
            Accepted,
        ),
        (
            "create: holdout 5,001",
            create(f, |c| c.holdout_bps = 5_001),
            Invalid("campaign.holdout_bps"),
        ),
        (
            "create: holdout -1",
            create(f, |c| c.holdout_bps = -1),
            Invalid("campaign.holdout_bps"),
        ),
        (
            "create: attribution 0 (a draft's unset)",
            create(f, |c| c.attribution_window_days = 0),
            Accepted,
        ),
        (
            "create: attribution 1",
            create(f, |c| c.attribution_window_days = 1),
            Accepted,
        ),
        (
            "create: attribution 365",
            create(f, |c| c.attribution_window_days = 365),
            Accepted,
        ),
        (
            "create: attribution 366",
            create(f, |c| c.attribution_window_days = 366),
            Invalid("campaign.attribution_window_days"),
        ),
        (
            "create: attribution -1",
            create(f, |c| c.attribution_window_days = -1),
            Invalid("campaign.attribution_window_days"),
        ),
        (
            "create: one-shot, re-entry 1",
            create(f, |c| c.re_entry_period_days = 1),
            Invalid("campaign.re_entry_period_days"),
        ),
        (
            "create: one-shot with a trigger",
            create(f, |c| c.trigger = triggered_trigger()),
            Invalid("campaign.trigger"),
        ),
        ("create: triggered", create(f, triggered), Accepted),
        (
            "create: triggered, re-entry 3,650",
            create(f, |c| {
                triggered(c);
                c.re_entry_period_days = 3_650;
            }),
            Accepted,
        ),
        (
            "create: triggered, re-entry 3,651",
            create(f, |c| {
                triggered(c);
                c.re_entry_period_days = 3_651;
            }),
            Invalid("campaign.re_entry_period_days"),
        ),
        (
            "create: triggered, re-entry -1",
            create(f, |c| {
                triggered(c);
                c.re_entry_period_days = -1;
            }),
            Invalid("campaign.re_entry_period_days"),
        ),
        (
            "create: trigger without an event",
            create(f, |c| {
                triggered(c);
                c.trigger = Some(campaign::CampaignTrigger { event: None });
            }),
            Invalid("campaign.trigger"),
        ),
        (
            "create: birthday 0 days before",
            create(f, |c| birthday(c, 0, "")),
            Accepted,
        ),
        (
            "create: birthday 30 days before",
            create(f, |c| birthday(c, 30, "Asia/Seoul")),
            Accepted,
        ),
        (
            "create: birthday 31 days before",
            create(f, |c| birthday(c, 31, "")),
            Invalid("campaign.trigger.birthday.days_before"),
        ),
        (
            "create: birthday -1 days before",
            create(f, |c| birthday(c, -1, "")),
            Invalid("campaign.trigger.birthday.days_before"),
        ),
        (
            "create: birthday time zone not IANA",
            create(f, |c| birthday(c, 0, "Mars/Olympus")),
            Invalid("campaign.trigger.birthday.time_zone"),
        ),
        (
            "create: became AT_RISK",
            create(f, |c| became(c, scoring::LifecycleState::AtRisk)),
            Accepted,
        ),
        (
            "create: became DORMANT",
            create(f, |c| became(c, scoring::LifecycleState::Dormant)),
            Accepted,
        ),
        (
            "create: became ACTIVE",
            create(f, |c| became(c, scoring::LifecycleState::Active)),
            Invalid("campaign.trigger.lifecycle.became"),
        ),
        (
            "create: offer text of 2,000",
            create(f, |c| c.offer = offer(&"t".repeat(2000), None)),
            Accepted,
        ),
        (
            "create: offer text of 2,001",
            create(f, |c| c.offer = offer(&"t".repeat(2001), None)),
            Invalid("campaign.offer.text"),
        ),
        (
            "create: offer text empty",
            create(f, |c| c.offer = offer("", None)),
            Invalid("campaign.offer.text"),
        ),
        (
            "create: offer code of 64",
            create(f, |c| {
                c.offer = offer("Hi", Some(campaign::offer::Benefit::Code("C".repeat(64))))
            }),
            Accepted,
        ),
        (
            "create: offer code of 65",
            create(f, |c| {
                c.offer = offer("Hi", Some(campaign::offer::Benefit::Code("C".repeat(65))))
            }),
            Invalid("campaign.offer.code"),
        ),
        (
            "create: offer code empty",
            create(f, |c| {
                c.offer = offer("Hi", Some(campaign::offer::Benefit::Code(String::new())))
            }),
            Invalid("campaign.offer.code"),
        ),
        (
            "create: offer value 1 USD cent",
            create(f, |c| {
                c.offer = offer(
                    "Hi",
                    Some(campaign::offer::Benefit::Value(Money {
                        amount_minor: 1,
                        currency: "USD".into(),
                    })),
                )
            }),
            Accepted,
        ),
        (
            "create: offer value 0",
            create(f, |c| {
                c.offer = offer(
                    "Hi",
                    Some(campaign::offer::Benefit::Value(Money {
                        amount_minor: 0,
                        currency: "KRW".into(),
                    })),
                )
            }),
            Invalid("campaign.offer.value"),
        ),
        (
            "create: cost per contact in another currency",
            create(f, |c| {
                c.cost_per_contact = Some(Money {
                    amount_minor: 10,
                    currency: "USD".into(),
                })
            }),
            Invalid("campaign.cost_per_contact.currency"),
        ),
        (
            "create: fixed cost in KRW",
            create(f, |c| c.fixed_cost = krw(1)),
            Accepted,
        ),
        (
            "create: end 1 s after start",
            create(f, |c| {
                c.schedule = Some(campaign::CampaignSchedule {
                    start_at: Some(seconds_from_now(3_600)),
                    end_at: Some(seconds_from_now(3_601)),
                })
            }),
            Accepted,
        ),
        (
            "create: end at start",
            create(f, |c| {
                let at = seconds_from_now(3_600);
                c.schedule = Some(campaign::CampaignSchedule {
                    start_at: Some(at),
                    end_at: Some(at),
                })
            }),
            Invalid("campaign.schedule.end_at"),
        ),
        (
            "create: 20 attributes",
            create(f, |c| audience(c).attributes = attributes(20)),
            Accepted,
        ),
        (
            "create: 21 attributes",
            create(f, |c| audience(c).attributes = attributes(21)),
            Invalid("campaign.audience.attributes"),
        ),
        (
            "create: attribute key of 64",
            create(f, |c| {
                audience(c).attributes = HashMap::from([("k".repeat(64), "v".into())])
            }),
            Accepted,
        ),
        (
            "create: attribute key of 65",
            create(f, |c| {
                audience(c).attributes = HashMap::from([("k".repeat(65), "v".into())])
            }),
            Invalid("campaign.audience.attributes"),
        ),
        (
            "create: birthday months 1 and 12",
            create(f, |c| audience(c).birthday_months = vec![1, 12]),
            Accepted,
        ),
        (
            "create: birthday month 13",
            create(f, |c| audience(c).birthday_months = vec![13]),
            Invalid("campaign.audience.birthday_months"),
        ),
        (
            "create: birthday month 0",
            create(f, |c| audience(c).birthday_months = vec![0]),
            Invalid("campaign.audience.birthday_months"),
        ),
        (
            "create: rule of another program",
            create(f, |c| rule(c).program_id = uuid::Uuid::now_v7().to_string()),
            Invalid("campaign.audience.scoring_rule.program_id"),
        ),
        (
            "create: rule of the campaign's program",
            create(f, |c| rule(c).program_id = f.program.clone()),
            Accepted,
        ),
        (
            "create: rule tier on the ladder",
            create(f, |c| rule(c).tier_codes = vec!["VIP".into()]),
            Accepted,
        ),
        (
            "create: rule tier not on the ladder",
            create(f, |c| rule(c).tier_codes = vec!["GOLD".into()]),
            Invalid("campaign.audience.scoring_rule.tier_codes"),
        ),
        (
            "create: rule segment UNSPECIFIED",
            create(f, |c| {
                rule(c).segments = vec![scoring::RfmSegment::Unspecified.into()]
            }),
            Invalid("campaign.audience.scoring_rule.segments"),
        ),
        (
            "create: rule lifecycle UNSPECIFIED",
            create(f, |c| {
                rule(c).lifecycle_states = vec![scoring::LifecycleState::Unspecified.into()]
            }),
            Invalid("campaign.audience.scoring_rule.lifecycle_states"),
        ),
        (
            "create: rule r_score 1 to 5",
            create(f, |c| rule(c).r_score = scores(Some(1), Some(5))),
            Accepted,
        ),
        (
            "create: rule r_score max 6",
            create(f, |c| rule(c).r_score = scores(None, Some(6))),
            Invalid("campaign.audience.scoring_rule.r_score"),
        ),
        (
            "create: rule f_score min 0",
            create(f, |c| rule(c).f_score = scores(Some(0), None)),
            Invalid("campaign.audience.scoring_rule.f_score"),
        ),
        (
            "create: rule m_score min above max",
            create(f, |c| rule(c).m_score = scores(Some(4), Some(3))),
            Invalid("campaign.audience.scoring_rule.m_score"),
        ),
        (
            "create: rule net spend min above max",
            create(f, |c| {
                rule(c).net_spend_minor = Some(scoring::Int64Range {
                    min: Some(11),
                    max: Some(10),
                })
            }),
            Invalid("campaign.audience.scoring_rule.net_spend_minor"),
        ),
        (
            "create: created_by of 128",
            create_by(f, "o".repeat(128), String::new()),
            Accepted,
        ),
        (
            "create: created_by of 129",
            create_by(f, "o".repeat(129), String::new()),
            Invalid("created_by"),
        ),
        (
            "create: created_by empty",
            create_by(f, String::new(), String::new()),
            Invalid("created_by"),
        ),
        (
            "create: idempotency_key of 128",
            create_by(f, "ops".into(), "k".repeat(128)),
            Accepted,
        ),
        (
            "create: idempotency_key of 129",
            create_by(f, "ops".into(), "k".repeat(129)),
            Invalid("idempotency_key"),
        ),
        // ---- UpdateCampaign (the request's own paths) ----
        (
            "update: name of 200",
            update(f, |r| r.name = Some("가".repeat(200))),
            Accepted,
        ),
        (
            "update: name of 201",
            update(f, |r| r.name = Some("가".repeat(201))),
            Invalid("name"),
        ),
        (
            "update: name empty",
            update(f, |r| r.name = Some(String::new())),
            Invalid("name"),
        ),
        (
            "update: description of 2,001",
            update(f, |r| r.description = Some("d".repeat(2001))),
            Invalid("description"),
        ),
        (
            "update: kind UNSPECIFIED",
            update(f, |r| {
                r.kind = Some(campaign::CampaignKind::Unspecified.into())
            }),
            Invalid("kind"),
        ),
        (
            "update: holdout 5,000",
            update(f, |r| r.holdout_bps = Some(5_000)),
            Accepted,
        ),
        (
            "update: holdout 5,001",
            update(f, |r| r.holdout_bps = Some(5_001)),
            Invalid("holdout_bps"),
        ),
        (
            "update: holdout 0",
            update(f, |r| r.holdout_bps = Some(0)),
            Accepted,
        ),
        (
            "update: holdout -1",
            update(f, |r| r.holdout_bps = Some(-1)),
            Invalid("holdout_bps"),
        ),
        (
            "update: attribution 1",
            update(f, |r| r.attribution_window_days = Some(1)),
            Accepted,
        ),
        (
            "update: attribution 365",
            update(f, |r| r.attribution_window_days = Some(365)),
            Accepted,
        ),
        (
            "update: attribution 0",
            update(f, |r| r.attribution_window_days = Some(0)),
            Invalid("attribution_window_days"),
        ),
        (
            "update: attribution 366",
            update(f, |r| r.attribution_window_days = Some(366)),
            Invalid("attribution_window_days"),
        ),
        (
            "update: one-shot, re-entry 0",
            update(f, |r| r.re_entry_period_days = Some(0)),
            Accepted,
        ),
        (
            "update: one-shot, re-entry 1",
            update(f, |r| r.re_entry_period_days = Some(1)),
            Invalid("re_entry_period_days"),
        ),
        (
            "update: offer text of 2,001",
            update(f, |r| r.offer = offer(&"t".repeat(2001), None)),
            Invalid("offer.text"),
        ),
        (
            "update: cost per contact in another currency",
            update(f, |r| {
                r.cost_per_contact = Some(Money {
                    amount_minor: 10,
                    currency: "USD".into(),
                })
            }),
            Invalid("cost_per_contact.currency"),
        ),
        (
            "update: trigger without an event",
            update(f, |r| {
                r.trigger = Some(campaign::CampaignTrigger { event: None })
            }),
            Invalid("trigger"),
        ),
        (
            "update: trigger and clear_trigger",
            update(f, |r| {
                r.trigger = triggered_trigger();
                r.clear_trigger = true;
            }),
            Invalid("clear_trigger"),
        ),
        (
            "update: end at start",
            update(f, |r| {
                let at = seconds_from_now(3_600);
                r.schedule = Some(campaign::CampaignSchedule {
                    start_at: Some(at),
                    end_at: Some(at),
                })
            }),
            Invalid("schedule.end_at"),
        ),
        // ---- ScheduleCampaign ----
        (
            "schedule: start a day ago",
            Call::Schedule(campaign::ScheduleCampaignRequest {
                campaign_id: f.to_schedule.clone(),
                start_at: Some(days_ago(1)),
            }),
            Invalid("start_at"),
        ),
        (
            "schedule: start in an hour",
            Call::Schedule(campaign::ScheduleCampaignRequest {
                campaign_id: f.to_schedule.clone(),
                start_at: Some(seconds_from_now(3_600)),
            }),
            Accepted,
        ),
        // ---- CancelCampaign ----
        (
            "cancel: reason of 501",
            Call::Cancel(campaign::CancelCampaignRequest {
                campaign_id: f.to_cancel.clone(),
                reason: "r".repeat(501),
            }),
            Invalid("reason"),
        ),
        (
            "cancel: reason empty",
            Call::Cancel(campaign::CancelCampaignRequest {
                campaign_id: f.to_cancel.clone(),
                reason: String::new(),
            }),
            Invalid("reason"),
        ),
        (
            "cancel: reason of 500",
            Call::Cancel(campaign::CancelCampaignRequest {
                campaign_id: f.to_cancel.clone(),
                reason: "r".repeat(500),
            }),
            Accepted,
        ),
        // ---- PreviewAudience ----
        ("preview: sample 0", preview(f, Some(0)), Accepted),
        ("preview: sample 100", preview(f, Some(100)), Accepted),
        (
            "preview: sample 101",
            preview(f, Some(101)),
            Invalid("sample_size"),
        ),
        (
            "preview: sample -1",
            preview(f, Some(-1)),
            Invalid("sample_size"),
        ),
        (
            "preview: no target",
            Call::Preview(campaign::PreviewAudienceRequest {
                target: None,
                sample_size: None,
            }),
            Invalid("target"),
        ),
        (
            "preview: definition, holdout 5,000",
            preview_definition(f, |d| d.holdout_bps = 5_000),
            Accepted,
        ),
        (
            "preview: definition, holdout 5,001",
            preview_definition(f, |d| d.holdout_bps = 5_001),
            Invalid("definition.holdout_bps"),
        ),
        (
            "preview: definition, channel UNSPECIFIED",
            preview_definition(f, |d| d.channel = ContactChannel::Unspecified.into()),
            Invalid("definition.channel"),
        ),
        // ---- StreamDeliveries ----
        (
            "stream: channel UNSPECIFIED",
            stream(|r| r.channel = ContactChannel::Unspecified.into()),
            Invalid("channel"),
        ),
        (
            "stream: adapter_id of 128",
            stream(|r| r.adapter_id = "a".repeat(128)),
            Accepted,
        ),
        (
            "stream: adapter_id of 129",
            stream(|r| r.adapter_id = "a".repeat(129)),
            Invalid("adapter_id"),
        ),
        (
            "stream: adapter_id empty",
            stream(|r| r.adapter_id = String::new()),
            Invalid("adapter_id"),
        ),
        (
            "stream: max_in_flight 1",
            stream(|r| r.max_in_flight = Some(1)),
            Accepted,
        ),
        (
            "stream: max_in_flight 1,000",
            stream(|r| r.max_in_flight = Some(1_000)),
            Accepted,
        ),
        (
            "stream: max_in_flight 0",
            stream(|r| r.max_in_flight = Some(0)),
            Invalid("max_in_flight"),
        ),
        (
            "stream: max_in_flight 1,001",
            stream(|r| r.max_in_flight = Some(1_001)),
            Invalid("max_in_flight"),
        ),
        (
            "stream: lease 10 s",
            stream(|r| r.lease_seconds = Some(10)),
            Accepted,
        ),
        (
            "stream: lease 3,600 s",
            stream(|r| r.lease_seconds = Some(3_600)),
            Accepted,
        ),
        (
            "stream: lease 9 s",
            stream(|r| r.lease_seconds = Some(9)),
            Invalid("lease_seconds"),
        ),
        (
            "stream: lease 3,601 s",
            stream(|r| r.lease_seconds = Some(3_601)),
            Invalid("lease_seconds"),
        ),
        // ---- AckDeliveries ----
        (
            "ack: adapter_id of 128",
            acks("a".repeat(128), vec![ack(|_| {})]),
            Item(campaign::AckStatus::NotFound),
        ),
        (
            "ack: adapter_id of 129",
            acks("a".repeat(129), vec![ack(|_| {})]),
            Invalid("adapter_id"),
        ),
        (
            "ack: adapter_id empty",
            acks(String::new(), vec![ack(|_| {})]),
            Invalid("adapter_id"),
        ),
        (
            "ack: 0 acks",
            acks("mailer".into(), vec![]),
            Invalid("acks"),
        ),
        (
            "ack: 1,000 acks",
            acks("mailer".into(), (0..1_000).map(|_| ack(|_| {})).collect()),
            Accepted,
        ),
        (
            "ack: 1,001 acks",
            acks("mailer".into(), (0..1_001).map(|_| ack(|_| {})).collect()),
            Invalid("acks"),
        ),
        (
            "ack: FAILED, reason of 500",
            acks("mailer".into(), vec![ack(failed("f".repeat(500)))]),
            Item(campaign::AckStatus::NotFound),
        ),
        (
            "ack: FAILED, reason of 501",
            acks("mailer".into(), vec![ack(failed("f".repeat(501)))]),
            Item(campaign::AckStatus::Invalid),
        ),
        (
            "ack: FAILED, no reason",
            acks("mailer".into(), vec![ack(failed(String::new()))]),
            Item(campaign::AckStatus::Invalid),
        ),
        (
            "ack: SENT with a reason",
            acks(
                "mailer".into(),
                vec![ack(|a| a.failure_reason = "bounced".into())],
            ),
            Item(campaign::AckStatus::Invalid),
        ),
        (
            "ack: outcome UNSPECIFIED",
            acks(
                "mailer".into(),
                vec![ack(|a| {
                    a.outcome = campaign::DeliveryOutcome::Unspecified.into()
                })],
            ),
            Item(campaign::AckStatus::Invalid),
        ),
        (
            "ack: provider id of 256",
            acks(
                "mailer".into(),
                vec![ack(|a| a.provider_message_id = "m".repeat(256))],
            ),
            Item(campaign::AckStatus::NotFound),
        ),
        (
            "ack: provider id of 257",
            acks(
                "mailer".into(),
                vec![ack(|a| a.provider_message_id = "m".repeat(257))],
            ),
            Item(campaign::AckStatus::Invalid),
        ),
    ];
    lists
        .into_iter()
        .flatten()
        .chain(
            table
                .into_iter()
                .map(|(case, call, expect)| (case.to_owned(), call, expect)),
        )
        .collect()
}

/// A trigger on any upgrade.
fn triggered_trigger() -> Option<campaign::CampaignTrigger> {
    trigger(campaign::campaign_trigger::Event::TierUpgrade(
        campaign::TierUpgradeTrigger {
            to_tier_code: String::new(),
        },
    ))
}

#[tokio::test]
async fn every_documented_bound_holds_on_both_sides() {
    let mut services = support::start(&[]).await;
    let fixtures = Fixtures::create(&mut services).await;
    let mut client = services.campaign();
    let mut failures = Vec::new();
    for (case, call, expect) in cases(&fixtures) {
        let outcome = send(&mut client, call).await;
        if let Err(why) = verdict(expect, &outcome) {
            failures.push(format!("{case}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) broke the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
