//! The demo's campaign, run end to end as a marketing team would: a one-shot offer to every
//! member of Green and above with e-mail consent, 10 % held out; the e-mails "sent" by the demo
//! acting as the e-mail adapter (StreamDeliveries, AckDeliveries); members who got the offer buy
//! more often than the holdout (22 % against 12 %, an effect the report should find); then the
//! campaign is completed and its report read.

use std::time::Duration;

use chrono::Utc;
use rand::{Rng, rngs::StdRng};
use tierline_proto::{
    campaign::v1 as pb,
    common::v1::{Channel, Money},
    customer::v1 as customer,
    scoring::v1::AudienceRule,
};

use super::{CAMPAIGN_NAME, progress::Progress, until};
use crate::{connect::Endpoints, exit::Failure};

/// Chance that a member buys within the attribution window, per arm (in per mille).
const TREATMENT_CONVERSION_PER_MILLE: u32 = 220;
const CONTROL_CONVERSION_PER_MILLE: u32 = 120;

fn won(amount_minor: i64) -> Option<Money> {
    Some(Money {
        amount_minor,
        currency: "KRW".into(),
    })
}

fn definition(program_id: &str) -> pb::Campaign {
    pb::Campaign {
        name: CAMPAIGN_NAME.into(),
        program_id: program_id.into(),
        kind: pb::CampaignKind::OneShot.into(),
        channel: Channel::Email.into(),
        audience: Some(pb::CampaignAudience {
            scoring_rule: Some(AudienceRule {
                tier_codes: vec!["GREEN".into(), "VIP".into(), "VVIP".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
        holdout_bps: 1_000,
        offer: Some(pb::Offer {
            text: "Members' week: 20 % off everything".into(),
            benefit: Some(pb::offer::Benefit::Code("MEMBERS20".into())),
        }),
        cost_per_contact: won(30),
        fixed_cost: won(500_000),
        attribution_window_days: 14,
        ..Default::default()
    }
}

/// Creates, launches, delivers, converts, completes; returns the final report.
pub(crate) async fn run(
    endpoints: &Endpoints,
    program_id: &str,
    rng: &mut StdRng,
) -> Result<pb::CampaignReport, Failure> {
    let mut client = endpoints.campaign()?;
    let created = client
        .create_campaign(pb::CreateCampaignRequest {
            campaign: Some(definition(program_id)),
            created_by: "tierline-dev-demo".into(),
            idempotency_key: "demo-campaign".into(),
        })
        .await?
        .into_inner();
    let id = created.id.clone();

    // A launch that has not finished within the call's wait goes on in the service; asking
    // again reports its progress without entering anyone twice.
    let summary = until("the launch", Duration::from_secs(300), || {
        let mut client = client.clone();
        let id = id.clone();
        async move {
            let launched = client
                .launch_campaign(pb::LaunchCampaignRequest { campaign_id: id })
                .await?
                .into_inner();
            Ok(launched.summary.filter(|summary| summary.complete))
        }
    })
    .await?;

    deliver(&mut client, summary.treatment_members).await?;
    let members = members(&mut client, &id).await?;
    let converters = convert(endpoints, &members, rng).await?;

    let progress = Progress::start("campaign attribution", 1);
    until(
        "the campaign's attribution",
        Duration::from_secs(300),
        || {
            let mut client = client.clone();
            let id = id.clone();
            async move {
                let report = client
                    .get_campaign_report(pb::GetCampaignReportRequest { campaign_id: id })
                    .await?
                    .into_inner();
                let counted = report.treatment.as_ref().map_or(0, |arm| arm.converters)
                    + report.control.as_ref().map_or(0, |arm| arm.converters);
                Ok((counted >= converters).then_some(()))
            }
        },
    )
    .await?;
    progress.finish();
    client
        .complete_campaign(pb::CompleteCampaignRequest {
            campaign_id: id.clone(),
        })
        .await?;
    Ok(client
        .get_campaign_report(pb::GetCampaignReportRequest { campaign_id: id })
        .await?
        .into_inner())
}

type CampaignClient = pb::campaign_service_client::CampaignServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        tierline_runtime::client::Outgoing,
    >,
>;

/// Acts as the e-mail adapter: takes every delivery and reports it sent.
async fn deliver(client: &mut CampaignClient, expected: i64) -> Result<(), Failure> {
    let mut progress = Progress::start("campaign e-mails", u64::try_from(expected).unwrap_or(0));
    let mut stream = client
        .stream_deliveries(pb::StreamDeliveriesRequest {
            channel: Channel::Email.into(),
            adapter_id: "demo-email".into(),
            max_in_flight: Some(500),
            lease_seconds: Some(60),
        })
        .await?
        .into_inner();
    let mut sent = 0;
    let mut pending = Vec::new();
    while sent < expected {
        let Some(delivery) = stream.message().await? else {
            break;
        };
        pending.push(pb::DeliveryAck {
            delivery_id: delivery.delivery_id,
            outcome: pb::DeliveryOutcome::Sent.into(),
            failure_reason: String::new(),
            occurred_at: None,
            provider_message_id: String::new(),
        });
        // Acknowledge in batches, and whenever the stream may be waiting for acks to send more.
        if pending.len() >= 250 || sent + i64::try_from(pending.len()).unwrap_or(0) >= expected {
            let acks = std::mem::take(&mut pending);
            let count = acks.len();
            client
                .ack_deliveries(pb::AckDeliveriesRequest {
                    adapter_id: "demo-email".into(),
                    acks,
                })
                .await?;
            sent += i64::try_from(count).unwrap_or(0);
            progress.advance(count as u64);
        }
    }
    progress.finish();
    Ok(())
}

/// Every member of the campaign with their arm.
async fn members(client: &mut CampaignClient, id: &str) -> Result<Vec<(String, i32)>, Failure> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_members(pb::ListMembersRequest {
                campaign_id: id.into(),
                arm: pb::Arm::Unspecified.into(),
                page_size: 1_000,
                page_token,
            })
            .await?
            .into_inner();
        all.extend(page.members.into_iter().map(|m| (m.customer_id, m.arm)));
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = page.next_page_token;
    }
}

/// Members buy after the offer, treatment more often than control; returns how many bought.
async fn convert(
    endpoints: &Endpoints,
    members: &[(String, i32)],
    rng: &mut StdRng,
) -> Result<i64, Failure> {
    let now = Utc::now();
    let mut items = Vec::new();
    for (index, (customer_id, arm)) in members.iter().enumerate() {
        let chance = if *arm == pb::Arm::Treatment as i32 {
            TREATMENT_CONVERSION_PER_MILLE
        } else {
            CONTROL_CONVERSION_PER_MILLE
        };
        if !rng.random_ratio(chance, 1_000) {
            continue;
        }
        items.push(customer::ImportItem {
            item: Some(customer::import_item::Item::Purchase(
                customer::RecordPurchaseRequest {
                    idempotency_key: format!("demo-campaign-sale-{index}"),
                    customer_id: customer_id.clone(),
                    amount: won(rng.random_range(60..180) * 500),
                    // Full precision: the members entered moments ago, maybe within this second.
                    occurred_at: Some(super::sales::timestamp(now)),
                    brand: "innisfree".into(),
                    sales_channel: "online".into(),
                    store_id: String::new(),
                    line_items: Vec::new(),
                },
            )),
        });
    }
    let converters = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let mut progress = Progress::start("purchases after the offer", items.len() as u64);
    let mut responses = endpoints
        .customer()?
        .import_activities(tokio_stream::iter([customer::ImportActivitiesRequest {
            items,
        }]))
        .await?
        .into_inner();
    while let Some(response) = responses.message().await? {
        if response.rejected > 0 {
            return Err(Failure::Other(anyhow::anyhow!(
                "the customer service refused a demo purchase"
            )));
        }
        progress.advance(response.results.len() as u64);
    }
    progress.finish();
    Ok(converters)
}
