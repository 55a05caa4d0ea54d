//! The campaign scenarios of the seed, on the three real services (Postgres, the feeds between
//! them): a VIP retention campaign with a 10 % holdout whose injected effect is reported as
//! significant, a win-back campaign for dormant customers whose null effect is not, an
//! upgrade-welcome campaign triggered by reaching Gold, and a birthday offer that honours consent
//! and the frequency cap. Set `TEST_LOG=info` to see the services' logs.

use crate::support;

use std::{collections::HashSet, time::Duration};

use crate::support::{
    Services, authorized,
    business::{self, Person},
    days_ago, eventually,
};
use chrono::Datelike;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tierline_proto::{
    campaign::v1 as campaign,
    common::v1::{Channel as ContactChannel, Money},
    customer::v1 as customer,
    scoring::v1 as scoring,
};
use tierline_runtime::auth::scopes::{
    ACTIVITY_WRITE, CAMPAIGNS_ADMIN, DELIVERIES_WRITE, TIERS_READ,
};
use uuid::Uuid;

const AT_RISK: i32 = scoring::LifecycleState::AtRisk as i32;
const DORMANT: i32 = scoring::LifecycleState::Dormant as i32;
const TREATMENT: i32 = campaign::Arm::Treatment as i32;
const CONTROL: i32 = campaign::Arm::Control as i32;

fn person(consent: bool, purchases: &[(i64, i64)]) -> Person {
    Person {
        email_consent: consent,
        purchases: purchases.to_vec(),
        ..Person::default()
    }
}

fn repeat(count: usize, who: &Person) -> Vec<Person> {
    vec![who.clone(); count]
}

async fn innisfree(services: &mut Services) -> String {
    business::program(
        services,
        "INNISFREE",
        "KRW",
        &[
            ("WELCOME", 0),
            ("GREEN", 100_000),
            ("VIP", 300_000),
            ("VVIP", 1_000_000),
        ],
    )
    .await
}

fn audience(tiers: &[&str], lifecycle: &[i32]) -> campaign::CampaignAudience {
    campaign::CampaignAudience {
        scoring_rule: Some(scoring::AudienceRule {
            tier_codes: tiers.iter().map(|t| (*t).to_owned()).collect(),
            lifecycle_states: lifecycle.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The documented holdout: SHA-256(campaign id ‖ customer id), first 8 bytes big-endian,
/// modulo 10,000, below holdout_bps is control.
fn expected_arm(campaign_id: &str, customer_id: &str, holdout_bps: u64) -> i32 {
    let mut hasher = Sha256::new();
    hasher.update(Uuid::parse_str(campaign_id).expect("id").as_bytes());
    hasher.update(Uuid::parse_str(customer_id).expect("id").as_bytes());
    let digest = hasher.finalize();
    let draw = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    if draw % 10_000 < holdout_bps {
        CONTROL
    } else {
        TREATMENT
    }
}

fn split(members: &[campaign::CampaignMember]) -> (Vec<String>, Vec<String>) {
    let ids = |arm| {
        members
            .iter()
            .filter(|m| m.arm == arm)
            .map(|m| m.customer_id.clone())
            .collect::<Vec<_>>()
    };
    (ids(TREATMENT), ids(CONTROL))
}

/// The first `share_percent` % of each listed customer buys `amount` now; returns the
/// purchase ids.
async fn buy(
    services: &Services,
    customers: &[String],
    share_percent: usize,
    amount: i64,
    tag: &str,
) -> Vec<String> {
    let buyers = customers.len() * share_percent / 100;
    let mut ids = Vec::with_capacity(buyers);
    for chunk in customers[..buyers].chunks(16) {
        let bought = futures::future::join_all(chunk.iter().map(|customer_id| {
            let mut client = services.customer.clone();
            async move {
                business::purchase(
                    &mut client,
                    &format!("{customer_id}-{tag}"),
                    customer_id,
                    amount,
                    "KRW",
                    days_ago(0),
                )
                .await
            }
        }))
        .await;
        ids.extend(bought);
    }
    ids
}

async fn converters_reach(
    services: &mut Services,
    id: &str,
    treatment: i64,
    control: i64,
) -> campaign::CampaignReport {
    eventually("attributed conversions", || {
        let mut client = services.campaign();
        let id = id.to_owned();
        async move {
            let report = client
                .get_campaign_report(authorized(
                    campaign::GetCampaignReportRequest { campaign_id: id },
                    &[CAMPAIGNS_ADMIN],
                ))
                .await
                .ok()?
                .into_inner();
            let arm = |a: &Option<campaign::ArmStats>| a.as_ref().map_or(-1, |a| a.converters);
            (arm(&report.treatment) == treatment && arm(&report.control) == control)
                .then_some(report)
        }
    })
    .await
}

#[tokio::test]
async fn vip_retention_with_a_holdout_reports_an_injected_effect_as_significant() {
    let mut services = support::start(&[("TIERLINE_MIN_ARM_SIZE", "10")]).await;
    let program_id = innisfree(&mut services).await;
    // VIP by spend 8 months ago, silent since: at risk. Around them: VIP at risk without consent,
    // VIP still active, GREEN at risk.
    let at_risk_vip = person(true, &[(350_000, 240)]);
    let mut people = repeat(400, &at_risk_vip);
    people.extend(repeat(10, &person(false, &[(350_000, 240)])));
    people.extend(repeat(10, &person(true, &[(350_000, 10)])));
    people.extend(repeat(10, &person(true, &[(150_000, 240)])));
    business::customers(&services, "KRW", &people).await;
    let target = audience(&["VIP"], &[AT_RISK]);

    // The preview sees the audience once the activity feed has reached the scoring service.
    let definition = campaign::AudienceDefinition {
        program_id: program_id.clone(),
        channel: ContactChannel::Email.into(),
        audience: Some(target.clone()),
        holdout_bps: 1_000,
    };
    let preview = business::preview_until(
        &services,
        campaign::preview_audience_request::Target::Definition(definition),
        Some(5),
        |preview| preview.matched == 410,
    )
    .await;
    assert_eq!(preview.eligible, 400);
    assert_eq!(preview.expected_treatment + preview.expected_control, 400);
    assert_eq!(preview.sample_customer_ids.len(), 5);
    assert_eq!(
        preview
            .suppressed
            .iter()
            .map(|s| (s.reason, s.customers))
            .collect::<Vec<_>>(),
        [(campaign::SuppressionReason::NoConsent as i32, 10)]
    );

    let created = business::create(
        &mut services,
        business::one_shot(&program_id, "KRW", target, 1_000),
    )
    .await;
    assert_eq!(created.status, campaign::CampaignStatus::Draft as i32);
    let launched = business::launch(&mut services, &created.id).await;
    let summary = launched.summary.expect("summary");
    assert!(summary.complete);
    assert_eq!(summary.matched, 410);
    assert_eq!(summary.treatment_members + summary.control_members, 400);
    assert_eq!(
        launched.campaign.expect("campaign").status,
        campaign::CampaignStatus::Running as i32
    );

    // The split is the documented hash, and control members get no delivery.
    let members = business::members(&mut services, &created.id).await;
    assert_eq!(members.len(), 400);
    for member in &members {
        assert_eq!(
            member.arm,
            expected_arm(&created.id, &member.customer_id, 1_000)
        );
        assert_eq!(member.arm == TREATMENT, !member.delivery_id.is_empty());
    }
    let (treatment, control) = split(&members);
    assert_eq!(treatment.len() as i64, summary.treatment_members);
    assert!(
        (20..=65).contains(&control.len()),
        "about 10 % held out: {}",
        control.len()
    );

    // A second launch call changes nothing.
    let again = business::launch(&mut services, &created.id)
        .await
        .summary
        .expect("summary");
    assert_eq!(again, summary);

    // The e-mail adapter gets exactly one delivery per treatment member and acknowledges them.
    let mut stream = services
        .campaign()
        .stream_deliveries(authorized(
            campaign::StreamDeliveriesRequest {
                channel: ContactChannel::Email.into(),
                adapter_id: "mailer-1".into(),
                max_in_flight: Some(1_000),
                lease_seconds: Some(60),
            },
            &[DELIVERIES_WRITE],
        ))
        .await
        .expect("stream")
        .into_inner();
    let mut delivered = Vec::new();
    while delivered.len() < treatment.len() {
        let delivery = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("a delivery in time")
            .expect("stream open")
            .expect("delivery");
        assert_eq!(delivery.attempt, 1);
        assert_eq!(
            delivery.offer.as_ref().map(|o| o.text.as_str()),
            Some("A gift for you")
        );
        delivered.push(delivery);
    }
    drop(stream);
    let recipients: HashSet<&str> = delivered.iter().map(|d| d.customer_id.as_str()).collect();
    assert_eq!(recipients.len(), treatment.len());
    assert_eq!(recipients, treatment.iter().map(String::as_str).collect());
    for chunk in delivered.chunks(500) {
        let results = services
            .campaign()
            .ack_deliveries(authorized(
                campaign::AckDeliveriesRequest {
                    adapter_id: "mailer-1".into(),
                    acks: chunk
                        .iter()
                        .map(|d| campaign::DeliveryAck {
                            delivery_id: d.delivery_id.clone(),
                            outcome: campaign::DeliveryOutcome::Sent.into(),
                            ..Default::default()
                        })
                        .collect(),
                },
                &[DELIVERIES_WRITE],
            ))
            .await
            .expect("acks")
            .into_inner()
            .results;
        assert!(
            results
                .iter()
                .all(|r| r.status == campaign::AckStatus::Accepted as i32)
        );
    }

    // The injected effect: 60 % of treatment members buy, 15 % of control members do.
    let treatment_buys = buy(&services, &treatment, 60, 50_000, "after").await;
    buy(&services, &control, 15, 50_000, "after").await;
    let (t_buyers, c_buyers) = (
        (treatment.len() * 60 / 100) as i64,
        (control.len() * 15 / 100) as i64,
    );
    let report = converters_reach(&mut services, &created.id, t_buyers, c_buyers).await;
    assert_eq!(
        report.measurability,
        campaign::Measurability::Measurable as i32
    );
    let p_value = report.p_value.expect("p-value");
    assert!(p_value < 0.05, "p = {p_value}");
    let ci = report.absolute_uplift_ci.expect("interval");
    assert!(ci.lower > 0.0, "the interval excludes no effect: {ci:?}");
    let relative = report.relative_uplift.expect("relative uplift");
    let relative_ci = report.relative_uplift_ci.expect("relative interval");
    assert!(
        relative_ci.lower > 0.0 && relative_ci.lower < relative && relative < relative_ci.upper,
        "the relative interval holds the estimate and excludes no effect: {relative_ci:?}"
    );
    let t = report.treatment.as_ref().expect("treatment");
    let c = report.control.as_ref().expect("control");
    let rate = |x: i64, n: usize| x as f64 / n as f64;
    assert_eq!(t.conversion_rate, Some(rate(t_buyers, treatment.len())));
    assert_eq!(c.conversion_rate, Some(rate(c_buyers, control.len())));
    let uplift = rate(t_buyers, treatment.len()) - rate(c_buyers, control.len());
    assert!((report.absolute_uplift.expect("uplift") - uplift).abs() < 1e-12);
    assert_eq!(
        t.revenue.as_ref().map(|m| m.amount_minor),
        Some(t_buyers * 50_000)
    );
    // Revenue per member differs by 50,000 × the uplift; incremental revenue is that × members.
    let diff = report.revenue_per_member_diff_minor.expect("difference");
    assert!((diff - 50_000.0 * uplift).abs() < 1e-6);
    let incremental = report
        .incremental_revenue
        .as_ref()
        .expect("incremental")
        .amount_minor;
    assert_eq!(incremental, (diff * treatment.len() as f64).round() as i64);
    assert_eq!(report.contacts, treatment.len() as i64);
    let cost = 10_000 + 100 * treatment.len() as i64;
    assert_eq!(report.cost.as_ref().map(|m| m.amount_minor), Some(cost));
    let roi = report.roi.expect("roi");
    assert!((roi - (incremental - cost) as f64 / cost as f64).abs() < 1e-9);
    assert!(!report.figures_final, "windows are open for 30 days");

    // A full refund un-converts its buyer and nets the revenue.
    let buyer = treatment[0].clone();
    services
        .customer
        .record_refund(authorized(
            customer::RecordRefundRequest {
                idempotency_key: "refund-1".into(),
                customer_id: buyer,
                purchase_id: treatment_buys[0].clone(),
                amount: Some(Money {
                    amount_minor: 50_000,
                    currency: "KRW".into(),
                }),
                occurred_at: Some(days_ago(0)),
            },
            &[ACTIVITY_WRITE],
        ))
        .await
        .expect("refund");
    let after = converters_reach(&mut services, &created.id, t_buyers - 1, c_buyers).await;
    assert_eq!(
        after
            .treatment
            .and_then(|t| t.revenue)
            .map(|m| m.amount_minor),
        Some((t_buyers - 1) * 50_000)
    );
}

#[tokio::test]
async fn win_back_of_dormant_customers_with_no_effect_is_not_significant() {
    let mut services = support::start(&[("TIERLINE_MIN_ARM_SIZE", "10")]).await;
    let program_id = innisfree(&mut services).await;
    // Silent for more than a year: dormant. Twenty active customers are not aimed at.
    let mut people = repeat(200, &person(true, &[(100_000, 400)]));
    people.extend(repeat(20, &person(true, &[(100_000, 10)])));
    let ids = business::customers(&services, "KRW", &people).await;
    business::counted(&services, &program_id, &ids, &people).await;
    let created = business::create(
        &mut services,
        business::one_shot(&program_id, "KRW", audience(&[], &[DORMANT]), 5_000),
    )
    .await;
    // The launch waits for the feed: preview until all 200 are there.
    business::preview_until(
        &services,
        campaign::preview_audience_request::Target::CampaignId(created.id.clone()),
        Some(0),
        |preview| preview.eligible == 200,
    )
    .await;
    let summary = business::launch(&mut services, &created.id)
        .await
        .summary
        .expect("summary");
    assert_eq!(summary.matched, 200);
    let members = business::members(&mut services, &created.id).await;
    let (treatment, control) = split(&members);
    assert_eq!(treatment.len() + control.len(), 200);

    // No effect: the same share of each arm comes back and buys the same.
    buy(&services, &treatment, 30, 30_000, "back").await;
    buy(&services, &control, 30, 30_000, "back").await;
    let report = converters_reach(
        &mut services,
        &created.id,
        (treatment.len() * 30 / 100) as i64,
        (control.len() * 30 / 100) as i64,
    )
    .await;
    assert_eq!(
        report.measurability,
        campaign::Measurability::Measurable as i32
    );
    let p_value = report.p_value.expect("p-value");
    assert!(p_value > 0.05, "p = {p_value}");
    let ci = report.absolute_uplift_ci.expect("interval");
    assert!(ci.lower < 0.0 && ci.upper > 0.0, "{ci:?}");
    let relative_ci = report.relative_uplift_ci.expect("relative interval");
    assert!(
        relative_ci.lower > -1.0 && relative_ci.lower < 0.0 && relative_ci.upper > 0.0,
        "{relative_ci:?}"
    );
    let revenue_ci = report.revenue_per_member_diff_ci.expect("interval");
    assert!(
        revenue_ci.lower < 0.0 && revenue_ci.upper > 0.0,
        "{revenue_ci:?}"
    );
    // Nothing was sent yet (no adapter acknowledged), so only the fixed cost counts.
    assert_eq!(report.contacts, 0);
    assert_eq!(report.cost.as_ref().map(|m| m.amount_minor), Some(10_000));
}

async fn tier_code(services: &Services, program_id: &str, customer_id: &str) -> Option<String> {
    let tier = services
        .scoring
        .clone()
        .get_tier(authorized(
            scoring::GetTierRequest {
                program_id: program_id.into(),
                customer_id: customer_id.into(),
            },
            &[TIERS_READ],
        ))
        .await
        .ok()?
        .into_inner();
    tier.tier.map(|t| t.code)
}

#[tokio::test]
async fn upgrade_welcome_enrols_those_who_reach_gold_after_launch() {
    let mut services = support::start(&[]).await;
    let program_id = business::program(
        &mut services,
        "STARBUCKS",
        "USD",
        &[("WELCOME", 0), ("GREEN", 2_500), ("GOLD", 10_000)],
    )
    .await;
    let ids = business::customers(
        &services,
        "USD",
        &[
            person(true, &[(12_000, 1)]), // Gold before the launch
            person(true, &[(100, 1)]),    // reaches Green only
            person(false, &[(100, 1)]),   // reaches Gold, no consent
            person(true, &[(100, 1)]),    // reaches Gold
        ],
    )
    .await;
    let (early, green, no_consent, gold) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    eventually("the early customer at Gold", || async {
        (tier_code(&services, &program_id, early).await.as_deref() == Some("GOLD")).then_some(())
    })
    .await;

    let mut definition = business::one_shot(&program_id, "USD", audience(&[], &[]), 0);
    definition.kind = campaign::CampaignKind::Triggered.into();
    definition.trigger = Some(campaign::CampaignTrigger {
        event: Some(campaign::campaign_trigger::Event::TierUpgrade(
            campaign::TierUpgradeTrigger {
                to_tier_code: "GOLD".into(),
            },
        )),
    });
    definition.cost_per_contact = None;
    definition.fixed_cost = None;
    let created = business::create(&mut services, definition).await;
    business::launch(&mut services, &created.id).await;

    let mut client = services.customer.clone();
    business::purchase(&mut client, "green", green, 3_000, "USD", days_ago(0)).await;
    business::purchase(
        &mut client,
        "no-consent",
        no_consent,
        12_000,
        "USD",
        days_ago(0),
    )
    .await;
    business::purchase(&mut client, "gold", gold, 12_000, "USD", days_ago(0)).await;
    let members = eventually("the Gold customer's entry", || {
        let mut services_client = services.campaign();
        let id = created.id.clone();
        async move {
            let members = services_client
                .list_members(authorized(
                    campaign::ListMembersRequest {
                        campaign_id: id,
                        ..Default::default()
                    },
                    &[CAMPAIGNS_ADMIN],
                ))
                .await
                .ok()?
                .into_inner()
                .members;
            (!members.is_empty()).then_some(members)
        }
    })
    .await;
    assert_eq!(members.len(), 1);
    assert_eq!(&members[0].customer_id, gold);
    assert_eq!(members[0].arm, TREATMENT);
    assert!(!members[0].delivery_id.is_empty());
    // The customer without consent was triggered too. Their upgrade may reach the tier feed
    // after the Gold customer's (the scoring consumer applies a batch in partitions by customer,
    // each committing on its own), so it is awaited.
    let suppressed = eventually("the customer without consent suppressed", || async {
        let suppressed = business::suppressions(&services, &created.id).await;
        (!suppressed.is_empty()).then_some(suppressed)
    })
    .await;
    assert_eq!(
        suppressed
            .iter()
            .map(|s| (s.customer_id.as_str(), s.reason))
            .collect::<Vec<_>>(),
        [(
            no_consent.as_str(),
            campaign::SuppressionReason::NoConsent as i32
        )]
    );
    let report = business::report(&mut services, &created.id).await;
    assert_eq!(
        report.measurability,
        campaign::Measurability::NoControlGroup as i32
    );
    assert_eq!(report.p_value, None);
    assert_eq!(
        report.treatment.map(|t| (t.members, t.entries)),
        Some((1, 1))
    );
    let campaign_now = services
        .campaign()
        .get_campaign(authorized(
            campaign::GetCampaignRequest {
                campaign_id: created.id.clone(),
            },
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect("campaign")
        .into_inner();
    assert_eq!(
        campaign_now
            .launch_summary
            .map(|s| (s.matched, s.treatment_members)),
        Some((2, 1)),
        "two matched (one suppressed), one entered"
    );
}

#[tokio::test]
async fn a_birthday_offer_honours_consent_and_the_frequency_cap() {
    let mut services = support::start(&[
        ("TIERLINE_FREQUENCY_CAP_CONTACTS", "1"),
        ("TIERLINE_FREQUENCY_CAP_DAYS", "7"),
    ])
    .await;
    let program_id = innisfree(&mut services).await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today + chrono::Duration::days(1);
    let born = |date: chrono::NaiveDate| {
        Some((
            i32::try_from(date.month()).expect("month"),
            i32::try_from(date.day()).expect("day"),
        ))
    };
    let celebrating = Person {
        email_consent: true,
        birthday: born(today),
        purchases: vec![(20_000, 10)],
        ..Person::default()
    };
    let ids = business::customers(
        &services,
        "KRW",
        &[
            celebrating.clone(),
            Person {
                email_consent: false,
                ..celebrating.clone()
            },
            Person {
                attributes: vec![("segment", "capped")],
                ..celebrating.clone()
            },
            Person {
                birthday: born(tomorrow),
                ..celebrating.clone()
            },
        ],
    )
    .await;
    let (welcome, no_consent, capped) = (&ids[0], &ids[1], &ids[2]);

    // The capped customer is contacted once this week by another campaign first.
    let mut earlier = business::one_shot(
        &program_id,
        "KRW",
        campaign::CampaignAudience {
            attributes: [("segment".to_owned(), "capped".to_owned())].into(),
            ..Default::default()
        },
        0,
    );
    earlier.name = "Earlier newsletter".into();
    let earlier = business::create(&mut services, earlier).await;
    let contacted = business::preview_until(
        &services,
        campaign::preview_audience_request::Target::CampaignId(earlier.id.clone()),
        None,
        |preview| preview.eligible == 1,
    )
    .await
    .sample_customer_ids;
    assert_eq!(contacted.as_slice(), std::slice::from_ref(capped));
    let summary = business::launch(&mut services, &earlier.id)
        .await
        .summary
        .expect("summary");
    assert_eq!(summary.treatment_members, 1);

    let mut definition = business::one_shot(&program_id, "KRW", audience(&[], &[]), 0);
    definition.name = "Happy birthday".into();
    definition.kind = campaign::CampaignKind::Triggered.into();
    definition.re_entry_period_days = 365;
    definition.trigger = Some(campaign::CampaignTrigger {
        event: Some(campaign::campaign_trigger::Event::Birthday(
            campaign::BirthdayTrigger {
                days_before: 0,
                time_zone: "UTC".into(),
            },
        )),
    });
    let birthday = business::create(&mut services, definition).await;
    business::launch(&mut services, &birthday.id).await;

    // The scheduler sweeps today's birthdays.
    let suppressed = eventually("the birthday sweep", || {
        let mut client = services.campaign();
        let id = birthday.id.clone();
        async move {
            let suppressed = client
                .list_suppressions(authorized(
                    campaign::ListSuppressionsRequest {
                        campaign_id: id,
                        ..Default::default()
                    },
                    &[CAMPAIGNS_ADMIN],
                ))
                .await
                .ok()?
                .into_inner()
                .suppressions;
            (suppressed.len() == 2).then_some(suppressed)
        }
    })
    .await;
    let mut reasons: Vec<(&str, i32)> = suppressed
        .iter()
        .map(|s| (s.customer_id.as_str(), s.reason))
        .collect();
    reasons.sort_unstable();
    let mut expected = vec![
        (
            no_consent.as_str(),
            campaign::SuppressionReason::NoConsent as i32,
        ),
        (
            capped.as_str(),
            campaign::SuppressionReason::FrequencyCap as i32,
        ),
    ];
    expected.sort_unstable();
    assert_eq!(reasons, expected);
    let members = business::members(&mut services, &birthday.id).await;
    assert_eq!(
        members
            .iter()
            .map(|m| m.customer_id.as_str())
            .collect::<Vec<_>>(),
        [welcome.as_str()],
        "only today's consenting, uncapped birthday; tomorrow's waits"
    );
}

#[tokio::test]
async fn the_retention_scenario_runs_the_same_on_the_embedded_stores() {
    // Every service on SQLite (the development mode's backends): tiers from the feed, the
    // launch, the arms, deliveries, attribution and the report behave as on Postgres.
    let mut services =
        support::start_on(support::Stores::Sqlite, &[("TIERLINE_MIN_ARM_SIZE", "10")]).await;
    let program_id = innisfree(&mut services).await;
    let mut people = repeat(120, &person(true, &[(350_000, 240)]));
    people.extend(repeat(5, &person(false, &[(350_000, 240)])));
    business::customers(&services, "KRW", &people).await;
    let target = audience(&["VIP"], &[AT_RISK]);
    let created = business::create(
        &mut services,
        business::one_shot(&program_id, "KRW", target, 3_000),
    )
    .await;
    business::preview_until(
        &services,
        campaign::preview_audience_request::Target::CampaignId(created.id.clone()),
        Some(0),
        |preview| preview.matched == 125,
    )
    .await;
    let summary = business::launch(&mut services, &created.id)
        .await
        .summary
        .expect("summary");
    assert_eq!(summary.treatment_members + summary.control_members, 120);
    let members = business::members(&mut services, &created.id).await;
    for member in &members {
        assert_eq!(
            member.arm,
            expected_arm(&created.id, &member.customer_id, 3_000)
        );
    }
    let (treatment, control) = split(&members);
    buy(&services, &treatment, 60, 40_000, "after").await;
    buy(&services, &control, 10, 40_000, "after").await;
    let report = converters_reach(
        &mut services,
        &created.id,
        (treatment.len() * 60 / 100) as i64,
        (control.len() * 10 / 100) as i64,
    )
    .await;
    assert_eq!(
        report.measurability,
        campaign::Measurability::Measurable as i32
    );
    assert!(report.p_value.expect("p-value") < 0.05);
}
