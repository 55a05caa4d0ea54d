//! The business the scenarios run on: tier programs (Innisfree-like by 12-month spend,
//! Starbucks-like Gold), customers with consents and birthdays, purchases, and campaigns.

use futures::future::join_all;
use tierline_proto::{
    campaign::v1 as campaign,
    common::v1::{Channel as ContactChannel, Date, Money},
    customer::v1 as customer,
    prost_types::Timestamp,
    scoring::v1 as scoring,
};
use tierline_runtime::auth::scopes::{
    ACTIVITY_WRITE, CAMPAIGNS_ADMIN, CUSTOMERS_WRITE, PROGRAMS_ADMIN, TIERS_READ,
};

use super::{Services, authorized, days_ago};

/// Creates a program whose tiers need these net spends over 12 rolling months, and activates
/// its policy. Returns the program id.
pub(crate) async fn program(
    services: &mut Services,
    code: &str,
    currency: &str,
    tiers: &[(&str, i64)],
) -> String {
    let program = services
        .scoring
        .create_program(authorized(
            scoring::CreateProgramRequest {
                program: Some(scoring::Program {
                    code: code.into(),
                    name: code.to_lowercase(),
                    currency: currency.into(),
                    tiers: tiers
                        .iter()
                        .enumerate()
                        .map(|(rank, (code, _))| scoring::Tier {
                            code: (*code).into(),
                            name: code.to_lowercase(),
                            rank: i32::try_from(rank).expect("rank"),
                            benefits: vec![],
                        })
                        .collect(),
                    ..Default::default()
                }),
                idempotency_key: String::new(),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("program")
        .into_inner();
    let rules = scoring::PolicyRules {
        tiers: tiers
            .iter()
            .map(|(code, spend)| scoring::TierRule {
                tier_code: (*code).into(),
                requirements: if *spend == 0 {
                    vec![]
                } else {
                    vec![scoring::Requirement {
                        metric: scoring::MetricKind::NetSpend.into(),
                        threshold: *spend,
                    }]
                },
                points_earn_rate_bps: 0,
            })
            .collect(),
        window: Some(scoring::QualificationWindow {
            kind: scoring::WindowKind::RollingMonths.into(),
            rolling_months: 12,
        }),
        time_zone: "UTC".into(),
        evaluation_schedule: Some(scoring::EvaluationSchedule {
            frequency: scoring::EvaluationFrequency::Monthly.into(),
            day_of_month: 1,
            month_of_year: 0,
            local_hour: 3,
            local_minute: 0,
        }),
        grace_months: 0,
        ..Default::default()
    };
    let draft = services
        .scoring
        .create_policy_version(authorized(
            scoring::CreatePolicyVersionRequest {
                program_id: program.id.clone(),
                rules: Some(rules),
                description: String::new(),
                created_by: "e2e".into(),
                idempotency_key: String::new(),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("policy")
        .into_inner();
    services
        .scoring
        .activate_policy(authorized(
            scoring::ActivatePolicyRequest {
                policy_version_id: draft.id,
                activated_by: "e2e".into(),
                expected_revision: None,
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("activate");
    program.id
}

/// Who a customer is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Person {
    /// Consents to e-mail.
    pub(crate) email_consent: bool,
    /// Birth month and day.
    pub(crate) birthday: Option<(i32, i32)>,
    /// Attributes.
    pub(crate) attributes: Vec<(&'static str, &'static str)>,
    /// Purchases: amount and days ago.
    pub(crate) purchases: Vec<(i64, i64)>,
}

/// Creates customers (joined two years ago) with their consents and purchases, 16 at a time.
pub(crate) async fn customers(
    services: &Services,
    currency: &str,
    people: &[Person],
) -> Vec<String> {
    let mut ids = Vec::with_capacity(people.len());
    for chunk in people.chunks(16) {
        let created = join_all(chunk.iter().map(|person| {
            let mut client = services.customer.clone();
            let person = person.clone();
            let currency = currency.to_owned();
            async move {
                let id = client
                    .create_customer(authorized(
                        customer::CreateCustomerRequest {
                            name: "Customer".into(),
                            email: "someone@example.com".into(),
                            birth_date: person.birthday.map(|(month, day)| Date {
                                year: 1990,
                                month,
                                day,
                            }),
                            joined_at: Some(days_ago(730)),
                            attributes: person
                                .attributes
                                .iter()
                                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                                .collect(),
                            ..Default::default()
                        },
                        &[CUSTOMERS_WRITE],
                    ))
                    .await
                    .expect("customer")
                    .into_inner()
                    .id;
                if person.email_consent {
                    client
                        .set_consent(authorized(
                            customer::SetConsentRequest {
                                customer_id: id.clone(),
                                channel: ContactChannel::Email.into(),
                                granted: true,
                                source: "app".into(),
                                changed_at: None,
                            },
                            &[CUSTOMERS_WRITE],
                        ))
                        .await
                        .expect("consent");
                }
                for (n, (amount, days)) in person.purchases.iter().enumerate() {
                    purchase(
                        &mut client,
                        &format!("{id}-setup-{n}"),
                        &id,
                        *amount,
                        &currency,
                        days_ago(*days),
                    )
                    .await;
                }
                id
            }
        }))
        .await;
        ids.extend(created);
    }
    ids
}

/// Waits until the scoring service has counted, in `program_id`, every purchase `people` (created
/// as `ids`) made: the feed is asynchronous, and until a customer's purchases are counted they
/// look dormant or at risk (they joined two years ago), so an audience by lifecycle would move
/// under a test that reads it.
pub(crate) async fn counted(
    services: &Services,
    program_id: &str,
    ids: &[String],
    people: &[Person],
) {
    for (chunk, chunk_people) in ids.chunks(1_000).zip(people.chunks(1_000)) {
        let expected: Vec<i64> = chunk_people
            .iter()
            .map(|person| person.purchases.iter().map(|(amount, _)| amount).sum())
            .collect();
        super::eventually("every purchase counted", || {
            let mut client = services.scoring.clone();
            let expected = &expected;
            async move {
                let scores = client
                    .get_scores(authorized(
                        scoring::GetScoresRequest {
                            program_id: program_id.to_owned(),
                            customer_ids: chunk.to_vec(),
                        },
                        &[TIERS_READ],
                    ))
                    .await
                    .ok()?
                    .into_inner()
                    .scores;
                let counted = scores.len() == chunk.len()
                    && scores.iter().zip(expected).all(|(score, expected)| {
                        score
                            .historic_value
                            .as_ref()
                            .map_or(0, |money| money.amount_minor)
                            == *expected
                    });
                counted.then_some(())
            }
        })
        .await;
    }
}

/// Records a purchase; returns its activity id.
pub(crate) async fn purchase(
    client: &mut customer::customer_service_client::CustomerServiceClient<
        tonic::transport::Channel,
    >,
    key: &str,
    customer_id: &str,
    amount: i64,
    currency: &str,
    occurred_at: Timestamp,
) -> String {
    client
        .record_purchase(authorized(
            customer::RecordPurchaseRequest {
                idempotency_key: key.into(),
                customer_id: customer_id.into(),
                amount: Some(Money {
                    amount_minor: amount,
                    currency: currency.into(),
                }),
                occurred_at: Some(occurred_at),
                brand: "main".into(),
                ..Default::default()
            },
            &[ACTIVITY_WRITE],
        ))
        .await
        .expect("purchase")
        .into_inner()
        .activity
        .expect("activity")
        .id
}

/// A complete one-shot e-mail campaign on `program_id` (as a message to create).
pub(crate) fn one_shot(
    program_id: &str,
    currency: &str,
    audience: campaign::CampaignAudience,
    holdout_bps: i32,
) -> campaign::Campaign {
    campaign::Campaign {
        name: "scenario".into(),
        program_id: program_id.into(),
        kind: campaign::CampaignKind::OneShot.into(),
        channel: ContactChannel::Email.into(),
        audience: Some(audience),
        holdout_bps,
        offer: Some(campaign::Offer {
            text: "A gift for you".into(),
            benefit: Some(campaign::offer::Benefit::Code("GIFT".into())),
        }),
        cost_per_contact: Some(Money {
            amount_minor: 100,
            currency: currency.into(),
        }),
        fixed_cost: Some(Money {
            amount_minor: 10_000,
            currency: currency.into(),
        }),
        attribution_window_days: 30,
        ..Default::default()
    }
}

/// Creates a campaign and returns it.
pub(crate) async fn create(
    services: &mut Services,
    definition: campaign::Campaign,
) -> campaign::Campaign {
    services
        .campaign()
        .create_campaign(authorized(
            campaign::CreateCampaignRequest {
                campaign: Some(definition),
                created_by: "e2e".into(),
                idempotency_key: String::new(),
            },
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect("create campaign")
        .into_inner()
}

/// Launches a campaign.
/// Launches a campaign and waits until the launch is complete. A launch may go on in the
/// background (past the call's wait, or run by the scheduler that took its lock first): calling
/// `LaunchCampaign` again resumes or reports it, as a client would.
pub(crate) async fn launch(services: &mut Services, id: &str) -> campaign::LaunchCampaignResponse {
    super::eventually("the launch to complete", || {
        let mut client = services.campaign();
        async move {
            let answer = client
                .launch_campaign(authorized(
                    campaign::LaunchCampaignRequest {
                        campaign_id: id.into(),
                    },
                    &[CAMPAIGNS_ADMIN],
                ))
                .await
                .expect("launch")
                .into_inner();
            answer
                .summary
                .as_ref()
                .is_some_and(|summary| summary.complete)
                .then_some(answer)
        }
    })
    .await
}

/// Every member of a campaign.
pub(crate) async fn members(services: &mut Services, id: &str) -> Vec<campaign::CampaignMember> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = services
            .campaign()
            .list_members(authorized(
                campaign::ListMembersRequest {
                    campaign_id: id.into(),
                    page_size: 1_000,
                    page_token,
                    ..Default::default()
                },
                &[CAMPAIGNS_ADMIN],
            ))
            .await
            .expect("members")
            .into_inner();
        all.extend(page.members);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

/// Every suppression of a campaign.
pub(crate) async fn suppressions(services: &Services, id: &str) -> Vec<campaign::Suppression> {
    services
        .campaign()
        .list_suppressions(authorized(
            campaign::ListSuppressionsRequest {
                campaign_id: id.into(),
                page_size: 1_000,
                ..Default::default()
            },
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect("suppressions")
        .into_inner()
        .suppressions
}

/// The campaign's report now.
pub(crate) async fn report(services: &mut Services, id: &str) -> campaign::CampaignReport {
    services
        .campaign()
        .get_campaign_report(authorized(
            campaign::GetCampaignReportRequest {
                campaign_id: id.into(),
            },
            &[CAMPAIGNS_ADMIN],
        ))
        .await
        .expect("report")
        .into_inner()
}

/// Previews `target` until `done` holds (the feeds are asynchronous): the last preview.
pub(crate) async fn preview_until(
    services: &Services,
    target: campaign::preview_audience_request::Target,
    sample_size: Option<i32>,
    done: impl Fn(&campaign::PreviewAudienceResponse) -> bool,
) -> campaign::PreviewAudienceResponse {
    super::eventually("the previewed audience", || {
        let mut client = services.campaign();
        let target = target.clone();
        let done = &done;
        async move {
            let preview = client
                .preview_audience(authorized(
                    campaign::PreviewAudienceRequest {
                        target: Some(target),
                        sample_size,
                    },
                    &[CAMPAIGNS_ADMIN],
                ))
                .await
                .ok()?
                .into_inner();
            done(&preview).then_some(preview)
        }
    })
    .await
}
