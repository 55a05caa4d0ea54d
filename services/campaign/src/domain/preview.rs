//! Previewing an audience before launch: the same checks as a launch (see
//! [`super::enrolment`]) read without writing anything, with the expected arm sizes and a
//! deterministic sample (the eligible customers with the smallest holdout draws).

use std::collections::{BTreeMap, BinaryHeap};

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use uuid::Uuid;

use super::{
    campaign::{Audience, Campaign, Channel, Definition, Kind},
    enrolment::may_reenter,
    holdout::{Arm, draw},
    service::{Campaigns, parse_id},
};
use crate::{CampaignError, domain::ports::SuppressionReason};

/// What to preview.
#[derive(Debug, Clone, PartialEq)]
pub enum PreviewTarget {
    /// A stored campaign, by id as sent.
    Campaign(String),
    /// An unsaved audience.
    Definition {
        /// The program.
        program_id: Uuid,
        /// The channel whose consent is checked.
        channel: Channel,
        /// The audience.
        audience: Box<Audience>,
        /// Holdout for the expected arm sizes.
        holdout_bps: u32,
    },
}

/// The preview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// Matching the audience.
    pub matched: i64,
    /// Passing every check.
    pub eligible: i64,
    /// Expected treatment members.
    pub treatment: i64,
    /// Expected control members.
    pub control: i64,
    /// A deterministic sample of eligible customers.
    pub sample: Vec<Uuid>,
    /// Suppressions per reason (reasons with none omitted).
    pub suppressed: Vec<(SuppressionReason, i64)>,
    /// When.
    pub computed_at: DateTime<Utc>,
}

/// Keeps the `size` smallest draws.
struct Sample {
    size: usize,
    heap: BinaryHeap<(u64, Uuid)>,
}

impl Sample {
    fn offer(&mut self, key: u64, id: Uuid) {
        if self.heap.len() < self.size {
            self.heap.push((key, id));
        } else if self.heap.peek().is_some_and(|top| (key, id) < *top) {
            self.heap.pop();
            self.heap.push((key, id));
        }
    }

    fn into_ids(self) -> Vec<Uuid> {
        let mut sorted = self.heap.into_sorted_vec();
        sorted.dedup();
        sorted.into_iter().map(|(_, id)| id).collect()
    }
}

impl Campaigns {
    /// Evaluates an audience now without changing anything.
    #[tracing::instrument(skip(self, target))]
    pub async fn preview(
        &self,
        target: PreviewTarget,
        sample_size: Option<i32>,
    ) -> Result<Preview, CampaignError> {
        let sample_size = match sample_size {
            None => 20,
            Some(size @ 0..=100) => size.unsigned_abs() as usize,
            Some(_) => return Err(CampaignError::invalid("sample_size", "must be 0 to 100")),
        };
        let (campaign, stored) = self.preview_campaign(target).await?;
        let computed_at = Utc::now();
        let cap = self.enroller.cap();
        let mut preview = Preview {
            computed_at,
            ..Preview::default()
        };
        let mut suppressed: BTreeMap<SuppressionReason, i64> = BTreeMap::new();
        let mut sample = Sample {
            size: sample_size,
            heap: BinaryHeap::new(),
        };
        let definition = &campaign.definition;
        let mut pages = Box::pin(
            self.upstream()
                .audience(definition.program_id, &definition.audience.scoring, None)
                .await?,
        );
        while let Some(page) = pages.next().await {
            let ids = page?;
            let decision = self.enroller.decide(&campaign, &ids).await?;
            preview.matched += decision.matched;
            for (_, reason) in &decision.suppressed {
                *suppressed.entry(*reason).or_default() += 1;
            }
            let eligible: Vec<Uuid> = decision.eligible.iter().map(|(id, _)| *id).collect();
            // Read-only: the unit of work is dropped without commit.
            let mut reads = self.store.begin_enrolment().await?;
            let latest = if stored && !eligible.is_empty() {
                reads.latest_entries(campaign.id, &eligible).await?
            } else {
                Default::default()
            };
            let contacts = if eligible.is_empty() {
                Default::default()
            } else {
                reads
                    .recent_contacts(&eligible, computed_at - Duration::days(cap.days), None)
                    .await?
            };
            drop(reads);
            for (id, arm) in decision.eligible {
                if latest
                    .get(&id)
                    .is_some_and(|(_, at)| !may_reenter(&campaign, *at, computed_at))
                {
                    *suppressed
                        .entry(SuppressionReason::AlreadyMember)
                        .or_default() += 1;
                    continue;
                }
                if contacts.get(&id).copied().unwrap_or(0) >= cap.contacts {
                    *suppressed
                        .entry(SuppressionReason::FrequencyCap)
                        .or_default() += 1;
                    continue;
                }
                preview.eligible += 1;
                match arm {
                    Arm::Treatment => preview.treatment += 1,
                    Arm::Control => preview.control += 1,
                }
                sample.offer(draw(Uuid::nil(), id), id);
            }
        }
        preview.sample = sample.into_ids();
        preview.suppressed = suppressed.into_iter().filter(|(_, n)| *n > 0).collect();
        Ok(preview)
    }

    /// The campaign to preview, and whether it is stored.
    async fn preview_campaign(
        &self,
        target: PreviewTarget,
    ) -> Result<(Campaign, bool), CampaignError> {
        match target {
            PreviewTarget::Campaign(id) => {
                let campaign = self.load(parse_id(&id, "campaign_id")?).await?;
                Ok((campaign, true))
            }
            PreviewTarget::Definition {
                program_id,
                channel,
                audience,
                holdout_bps,
            } => {
                let program = self.upstream().program(program_id).await?;
                let definition = Definition {
                    name: "preview".into(),
                    description: String::new(),
                    program_id,
                    kind: Kind::OneShot,
                    channel,
                    audience: *audience,
                    holdout_bps,
                    offer: None,
                    cost_per_contact_minor: 0,
                    fixed_cost_minor: 0,
                    start_at: None,
                    end_at: None,
                    attribution_window_days: 1,
                    re_entry_period_days: 0,
                    trigger: None,
                };
                definition.validate(&program).map_err(|error| match error {
                    CampaignError::InvalidArgument(violations) => CampaignError::InvalidArgument(
                        violations
                            .into_iter()
                            .map(|mut violation| {
                                violation.field =
                                    violation.field.replacen("campaign.", "definition.", 1);
                                violation
                            })
                            .collect(),
                    ),
                    other => other,
                })?;
                // The nil id: an unsaved audience's arms are those of no campaign in particular,
                // but stable from one preview to the next.
                let campaign = Campaign::draft(Uuid::nil(), definition, program, "", Utc::now());
                Ok((campaign, false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_keeps_the_smallest_draws() {
        let mut sample = Sample {
            size: 2,
            heap: BinaryHeap::new(),
        };
        for (key, id) in [(5, 1_u128), (1, 2), (9, 3), (3, 4)] {
            sample.offer(key, Uuid::from_u128(id));
        }
        assert_eq!(sample.into_ids(), [Uuid::from_u128(2), Uuid::from_u128(4)]);
    }
}
