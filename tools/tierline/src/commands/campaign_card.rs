//! Campaigns, audience previews and launches for a person: a card and a table of who was left
//! out and why, instead of protobuf field paths. `--json` keeps the protobuf JSON.

use tierline_proto::campaign::v1 as pb;

use super::format::{grouped, local, money, word};

fn count(value: i64) -> String {
    grouped(&value.to_string())
}

/// The members left out, by reason, as rows for `REASON`, `CUSTOMERS`.
pub(super) fn suppressed_rows(suppressed: &[pb::SuppressionCount]) -> Vec<Vec<String>> {
    suppressed
        .iter()
        .map(|row| {
            vec![
                pb::SuppressionReason::try_from(row.reason)
                    .map(|reason| word(reason.as_str_name(), "SUPPRESSION_REASON_"))
                    .unwrap_or_default(),
                count(row.customers),
            ]
        })
        .collect()
}

/// A campaign's card.
pub(super) fn campaign_card(campaign: &pb::Campaign) -> Vec<String> {
    let utc = chrono_tz::UTC;
    let status = pb::CampaignStatus::try_from(campaign.status)
        .map(|status| word(status.as_str_name(), "CAMPAIGN_STATUS_"))
        .unwrap_or_default();
    let kind = pb::CampaignKind::try_from(campaign.kind)
        .map(|kind| word(kind.as_str_name(), "CAMPAIGN_KIND_"))
        .unwrap_or_default();
    let channel = tierline_proto::common::v1::Channel::try_from(campaign.channel)
        .map(|channel| word(channel.as_str_name(), "CHANNEL_"))
        .unwrap_or_default();
    let schedule = campaign.schedule.unwrap_or_default();
    let mut lines = vec![
        format!("{}: {status} ({kind}, by {channel})", campaign.name),
        format!("  id        {}", campaign.id),
        format!(
            "  runs      {} to {}",
            local(schedule.start_at.as_ref(), utc),
            local(schedule.end_at.as_ref(), utc)
        ),
        format!(
            "  holdout   {:.2} % kept back to measure the effect, over {} days",
            f64::from(campaign.holdout_bps) / 100.0,
            campaign.attribution_window_days
        ),
    ];
    if let Some(offer) = &campaign.offer {
        let benefit = match &offer.benefit {
            Some(pb::offer::Benefit::Code(code)) => format!(" (code {code})"),
            Some(pb::offer::Benefit::Value(value)) => {
                format!(" (worth {})", money(value.amount_minor, &value.currency))
            }
            None => String::new(),
        };
        lines.push(format!("  offer     {}{benefit}", offer.text));
    }
    let cost = |cost: Option<&tierline_proto::common::v1::Money>| {
        cost.map(|cost| money(cost.amount_minor, &cost.currency))
    };
    match (
        cost(campaign.cost_per_contact.as_ref()),
        cost(campaign.fixed_cost.as_ref()),
    ) {
        (None, None) => {}
        (per_contact, fixed) => lines.push(format!(
            "  costs     {} a contact, {} fixed",
            per_contact.unwrap_or_else(|| "nothing".to_owned()),
            fixed.unwrap_or_else(|| "nothing".to_owned())
        )),
    }
    if let Some(summary) = &campaign.launch_summary {
        lines.push(launch_line(summary));
    }
    lines
}

/// What a launch did, in one line.
pub(super) fn launch_line(summary: &pb::LaunchSummary) -> String {
    format!(
        "  launched  {} matched: {} treated, {} held out{}",
        count(summary.matched),
        count(summary.treatment_members),
        count(summary.control_members),
        if summary.complete {
            ""
        } else {
            " (still enrolling)"
        }
    )
}

/// An audience preview's lines.
pub(super) fn preview_lines(preview: &pb::PreviewAudienceResponse) -> Vec<String> {
    let mut lines = vec![
        format!(
            "audience: {} matched, {} can be contacted: about {} treated and {} held out",
            count(preview.matched),
            count(preview.eligible),
            count(preview.expected_treatment),
            count(preview.expected_control)
        ),
        format!(
            "  computed  {}",
            local(preview.computed_at.as_ref(), chrono_tz::UTC)
        ),
    ];
    if !preview.sample_customer_ids.is_empty() {
        lines.push(format!(
            "  e.g.      {}",
            preview.sample_customer_ids.join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_and_a_launch_read_their_counts_and_who_was_left_out() {
        let preview = pb::PreviewAudienceResponse {
            matched: 120_000,
            eligible: 100_000,
            expected_treatment: 90_000,
            expected_control: 10_000,
            suppressed: vec![pb::SuppressionCount {
                reason: pb::SuppressionReason::NoConsent.into(),
                customers: 20_000,
            }],
            ..Default::default()
        };
        assert_eq!(
            preview_lines(&preview)[0],
            "audience: 120,000 matched, 100,000 can be contacted: about 90,000 treated and 10,000 held out"
        );
        assert_eq!(
            suppressed_rows(&preview.suppressed),
            [["no consent", "20,000"]]
        );
        let summary = pb::LaunchSummary {
            matched: 3,
            treatment_members: 2,
            control_members: 1,
            complete: false,
            ..Default::default()
        };
        assert_eq!(
            launch_line(&summary),
            "  launched  3 matched: 2 treated, 1 held out (still enrolling)"
        );
    }

    #[test]
    fn a_campaign_card_reads_its_offer_and_costs() {
        let campaign = pb::Campaign {
            name: "Members' week".into(),
            status: pb::CampaignStatus::Draft.into(),
            kind: pb::CampaignKind::OneShot.into(),
            channel: tierline_proto::common::v1::Channel::Email.into(),
            holdout_bps: 1_000,
            attribution_window_days: 14,
            offer: Some(pb::Offer {
                text: "10 % off".into(),
                benefit: Some(pb::offer::Benefit::Code("WEEK10".into())),
            }),
            cost_per_contact: Some(tierline_proto::common::v1::Money {
                amount_minor: 30,
                currency: "KRW".into(),
            }),
            ..Default::default()
        };
        let lines = campaign_card(&campaign);
        assert_eq!(lines[0], "Members' week: draft (one shot, by email)");
        assert_eq!(
            lines[3],
            "  holdout   10.00 % kept back to measure the effect, over 14 days"
        );
        assert_eq!(lines[4], "  offer     10 % off (code WEEK10)");
        assert_eq!(lines[5], "  costs     30 KRW a contact, nothing fixed");
    }
}
