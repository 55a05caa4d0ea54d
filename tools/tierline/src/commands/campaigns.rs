//! `tierline campaigns`: create from a file, preview, launch, report.

use tierline_proto::campaign::v1 as pb;

use super::{campaign_card, format::money};
use crate::output::outln;
use crate::{cli::Campaigns, connect::Endpoints, exit::Failure, json, render::Render};

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{:.2} %", v * 100.0))
}

fn report_rows(report: &pb::CampaignReport) -> Vec<Vec<String>> {
    let arm = |name: &str, stats: Option<&pb::ArmStats>| {
        let stats = stats.cloned().unwrap_or_default();
        vec![
            name.to_owned(),
            stats.members.to_string(),
            stats.converters.to_string(),
            percent(stats.conversion_rate),
            money(
                stats.revenue.map_or(0, |m| m.amount_minor),
                &report.currency,
            ),
            stats.revenue_per_member_minor.map_or_else(
                || "—".to_owned(),
                |v| money(v.round() as i64, &report.currency),
            ),
        ]
    };
    vec![
        arm("treatment", report.treatment.as_ref()),
        arm("control", report.control.as_ref()),
    ]
}

#[allow(clippy::print_stdout)]
fn print_effect(report: &pb::CampaignReport) {
    let measurability = pb::Measurability::try_from(report.measurability)
        .map(|m| {
            m.as_str_name()
                .trim_start_matches("MEASURABILITY_")
                .to_owned()
        })
        .unwrap_or_default();
    outln!();
    outln!("measurability   {measurability}");
    if let (Some(uplift), Some(ci), Some(p)) = (
        report.absolute_uplift,
        report.absolute_uplift_ci,
        report.p_value,
    ) {
        outln!(
            "uplift          {} (95 % CI {} to {}), p = {p:.4}",
            percent(Some(uplift)),
            percent(Some(ci.lower)),
            percent(Some(ci.upper))
        );
    }
    if let (Some(relative), Some(ci)) = (report.relative_uplift, report.relative_uplift_ci) {
        outln!(
            "relative uplift {} (95 % CI {} to {})",
            percent(Some(relative)),
            percent(Some(ci.lower)),
            percent(Some(ci.upper))
        );
    }
    if let Some(incremental) = &report.incremental_revenue {
        outln!(
            "incremental     {}",
            money(incremental.amount_minor, &report.currency)
        );
    }
    if let Some(cost) = &report.cost {
        outln!(
            "cost            {} ({} contacts)",
            money(cost.amount_minor, &report.currency),
            report.contacts
        );
    }
    if let Some(roi) = report.roi {
        outln!("ROI             {}", percent(Some(roi)));
    }
    outln!("final           {}", report.figures_final);
}

pub(super) async fn run(
    endpoints: &Endpoints,
    render: Render,
    command: Campaigns,
) -> Result<(), Failure> {
    let mut client = endpoints.campaign()?;
    match command {
        Campaigns::Create { file, key } => {
            let campaign: pb::Campaign = json::read(&file)?;
            let created = client
                .create_campaign(pb::CreateCampaignRequest {
                    campaign: Some(campaign),
                    created_by: "tierline-cli".into(),
                    idempotency_key: key,
                })
                .await?
                .into_inner();
            render.lines(&created, &campaign_card::campaign_card(&created))
        }
        Campaigns::Preview { id } => {
            let id = super::resolve::campaign(endpoints, id).await?;
            let preview = client
                .preview_audience(pb::PreviewAudienceRequest {
                    target: Some(pb::preview_audience_request::Target::CampaignId(id)),
                    sample_size: None,
                })
                .await?
                .into_inner();
            render.lines(&preview, &campaign_card::preview_lines(&preview))?;
            if !render.json && !preview.suppressed.is_empty() {
                crate::render::table(
                    &["LEFT OUT", "CUSTOMERS"],
                    &campaign_card::suppressed_rows(&preview.suppressed),
                );
            }
            Ok(())
        }
        Campaigns::Launch { id } => {
            let id = super::resolve::campaign(endpoints, id).await?;
            let launched = client
                .launch_campaign(pb::LaunchCampaignRequest { campaign_id: id })
                .await?
                .into_inner();
            let summary = launched.summary.unwrap_or_default();
            render.lines(
                &summary,
                &[campaign_card::launch_line(&summary).trim_start().to_owned()],
            )?;
            if !render.json && !summary.suppressed.is_empty() {
                crate::render::table(
                    &["LEFT OUT", "CUSTOMERS"],
                    &campaign_card::suppressed_rows(&summary.suppressed),
                );
            }
            Ok(())
        }
        Campaigns::Report { id } => {
            let id = super::resolve::campaign(endpoints, id).await?;
            let report = client
                .get_campaign_report(pb::GetCampaignReportRequest { campaign_id: id })
                .await?
                .into_inner();
            render.table(
                &report,
                &[
                    "ARM",
                    "MEMBERS",
                    "CONVERTERS",
                    "CONVERSION",
                    "REVENUE",
                    "PER MEMBER",
                ],
                report_rows(&report),
            )?;
            if !render.json {
                print_effect(&report);
            }
            Ok(())
        }
    }
}
