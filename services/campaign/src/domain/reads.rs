//! Reading what campaigns produced: members and suppressions page by page, and the report.

use chrono::{DateTime, Utc};
use tierline_runtime::paging;

use super::{
    campaign::Campaign,
    holdout::Arm,
    report::{Report, report},
    service::{Campaigns, parse_id},
};
use crate::{
    CampaignError,
    domain::ports::{MemberRow, SuppressionReason, SuppressionRow},
};

/// A report as of a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportAt {
    /// The campaign.
    pub campaign: Campaign,
    /// The figures.
    pub report: Report,
    /// Whether every attribution window has closed.
    pub figures_final: bool,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
}

fn page_limit(page_size: i32) -> Result<u32, CampaignError> {
    paging::page_size(page_size).map_err(|v| CampaignError::InvalidArgument(vec![v]))
}

fn after_seq(token: &str, kind: char) -> Result<Option<i64>, CampaignError> {
    paging::decode_parsed::<i64>(token, kind).map_err(|v| CampaignError::InvalidArgument(vec![v]))
}

fn next_token(last_seq: Option<i64>, len: usize, limit: u32, kind: char) -> String {
    match last_seq {
        Some(seq) if len == limit as usize => paging::encode(kind, &seq.to_string()),
        _ => String::new(),
    }
}

impl Campaigns {
    /// A page of members in order of entry, and the next page's token.
    #[tracing::instrument(skip(self))]
    pub async fn members(
        &self,
        id: &str,
        arm: Option<Arm>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<MemberRow>, String), CampaignError> {
        let id = parse_id(id, "campaign_id")?;
        let limit = page_limit(page_size)?;
        let after = after_seq(page_token, 'm')?;
        self.load(id).await?;
        let rows = self.store.members(id, arm, after, limit).await?;
        let next = next_token(rows.last().map(|r| r.seq), rows.len(), limit, 'm');
        Ok((rows, next))
    }

    /// A page of suppressions in order, and the next page's token.
    #[tracing::instrument(skip(self))]
    pub async fn suppressions(
        &self,
        id: &str,
        reason: Option<SuppressionReason>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<SuppressionRow>, String), CampaignError> {
        let id = parse_id(id, "campaign_id")?;
        let limit = page_limit(page_size)?;
        let after = after_seq(page_token, 's')?;
        self.load(id).await?;
        let rows = self.store.suppressions(id, reason, after, limit).await?;
        let next = next_token(rows.last().map(|r| r.seq), rows.len(), limit, 's');
        Ok((rows, next))
    }

    /// The measured effect now.
    #[tracing::instrument(skip(self))]
    pub async fn report(&self, id: &str) -> Result<ReportAt, CampaignError> {
        let id = parse_id(id, "campaign_id")?;
        let campaign = self.load(id).await?;
        if campaign.launched_at.is_none() {
            return Err(CampaignError::precondition(
                "campaign was never launched; there is nothing to report",
            ));
        }
        let computed_at = Utc::now();
        let (treatment, control) = self.store.arm_aggregates(id).await?;
        let (contacts, open_windows) = self
            .store
            .contacts_and_open_windows(id, computed_at)
            .await?;
        let definition = &campaign.definition;
        let report = report(
            treatment,
            control,
            definition.holdout_bps,
            self.settings.min_arm_size,
            contacts,
            definition.fixed_cost_minor,
            definition.cost_per_contact_minor,
        );
        // Final once no new entries can come and every window has closed.
        let no_new_entries = matches!(
            campaign.status,
            super::campaign::Status::Completed | super::campaign::Status::Cancelled
        ) || (campaign.definition.kind == super::campaign::Kind::OneShot
            && campaign.launch.complete);
        Ok(ReportAt {
            figures_final: no_new_entries && !open_windows,
            campaign,
            report,
            computed_at,
        })
    }
}
