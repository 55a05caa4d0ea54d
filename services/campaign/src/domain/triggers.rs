//! Triggered entries from the scoring service's tier-change feed: an upgrade into a tier, a
//! downgrade out of one, a lifecycle change to at-risk or dormant. A customer enters a running
//! triggered campaign when its trigger fires for them after the campaign started, they match the
//! audience rule at that moment, and they pass the same eligibility as a launch (see
//! [`super::enrolment`]). A batch of events is one transaction with the feed cursor, so a replay
//! enrols nobody twice.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    campaign::{Campaign, Kind, ScoringRule, Status, Trigger},
    enrolment::{ChunkDecision, Enroller},
};
use crate::{
    CampaignError,
    domain::ports::{CampaignFilter, CampaignStore},
};

/// The consumer name of the tier-change feed's cursor.
pub const TIER_FEED_CONSUMER: &str = "tier_changes";

/// What changed for a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierChange {
    /// A tier upgrade.
    Upgrade {
        /// The tier after.
        to_tier_code: String,
    },
    /// A tier downgrade.
    Downgrade {
        /// The tier before.
        from_tier_code: String,
    },
    /// A lifecycle change (scoring contract number of the new state).
    Lifecycle {
        /// The state after.
        became: i32,
    },
}

/// One event of the tier-change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierEvent {
    /// The customer.
    pub customer_id: Uuid,
    /// The program.
    pub program_id: Uuid,
    /// When it took effect.
    pub occurred_at: DateTime<Utc>,
    /// What changed.
    pub change: TierChange,
}

/// Whether `trigger` fires for `change`.
pub fn fires(trigger: &Trigger, change: &TierChange) -> bool {
    match (trigger, change) {
        (Trigger::TierUpgrade { to_tier_code: want }, TierChange::Upgrade { to_tier_code }) => {
            want.is_empty() || want == to_tier_code
        }
        (
            Trigger::TierDowngrade {
                from_tier_code: want,
            },
            TierChange::Downgrade { from_tier_code },
        ) => want.is_empty() || want == from_tier_code,
        (Trigger::Lifecycle { became: want }, TierChange::Lifecycle { became }) => want == became,
        _ => false,
    }
}

/// Whether `event` may enter `campaign` (before the audience and eligibility checks).
pub fn admits(campaign: &Campaign, event: &TierEvent) -> bool {
    let definition = &campaign.definition;
    let started = definition
        .start_at
        .or(campaign.launched_at)
        .is_some_and(|start| event.occurred_at >= start);
    let not_ended = definition.end_at.is_none_or(|end| event.occurred_at < end);
    campaign.status == Status::Running
        && definition.kind == Kind::Triggered
        && definition.program_id == event.program_id
        && started
        && not_ended
        && definition
            .trigger
            .as_ref()
            .is_some_and(|trigger| fires(trigger, &event.change))
}

/// The running triggered campaigns (the first 1,000).
pub async fn running_triggered(store: &dyn CampaignStore) -> Result<Vec<Campaign>, CampaignError> {
    let running = CampaignFilter {
        status: Some(Status::Running),
        kind: Some(Kind::Triggered),
        program_id: None,
    };
    store.list(&running, None, 1_000).await
}

/// Applies batches of the tier-change feed.
#[derive(Debug, Clone)]
pub struct TriggerApplier {
    store: Arc<dyn CampaignStore>,
    enroller: Enroller,
}

impl TriggerApplier {
    /// An applier over `store`.
    pub fn new(store: Arc<dyn CampaignStore>, enroller: Enroller) -> Self {
        Self { store, enroller }
    }

    /// Where the last applied batch ended.
    pub async fn cursor(&self) -> Result<Option<String>, CampaignError> {
        self.store.cursor(TIER_FEED_CONSUMER).await
    }

    /// Enrols the customers `events` admit into running triggered campaigns, and stores
    /// `position` with the entries.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn apply(&self, events: &[TierEvent], position: &str) -> Result<(), CampaignError> {
        let campaigns = running_triggered(self.store.as_ref()).await?;
        let mut decisions: Vec<(Campaign, ChunkDecision)> = Vec::new();
        for campaign in campaigns {
            match self.decide(&campaign, events).await {
                Ok(decided) => decisions.extend(decided.into_iter().map(|d| (campaign.clone(), d))),
                // Worth retrying: the batch fails and is read again.
                Err(error @ CampaignError::Unavailable(_)) => return Err(error),
                // Not worth retrying (the campaign's rule no longer fits its program, say): one
                // campaign must not stop the others' triggers.
                Err(error) => {
                    tracing::error!(campaign_id = %campaign.id, %error, "triggered entries skipped for this batch");
                }
            }
        }
        let occasion = format!("{TIER_FEED_CONSUMER}:{position}");
        let mut tx = self.store.begin_enrolment().await?;
        if !decisions.is_empty() {
            tx.lock_contacts().await?;
        }
        let mut entered = BTreeMap::new();
        for (campaign, decision) in decisions {
            let matched = decision.matched;
            let written = self
                .enroller
                .write(tx.as_mut(), &campaign, decision, &occasion)
                .await?;
            *entered.entry(campaign.id).or_insert(0) += written.members;
            if matched > 0 && !written.stopped {
                tx.add_matched(campaign.id, matched).await?;
            }
        }
        tx.save_cursor(TIER_FEED_CONSUMER, position).await?;
        tx.commit().await?;
        for (campaign_id, members) in entered {
            if members > 0 {
                tracing::info!(%campaign_id, members, "triggered entries");
            }
        }
        Ok(())
    }

    /// The customer-side decisions for the customers `events` admit to `campaign`.
    async fn decide(
        &self,
        campaign: &Campaign,
        events: &[TierEvent],
    ) -> Result<Vec<ChunkDecision>, CampaignError> {
        let mut candidates: Vec<Uuid> = events
            .iter()
            .filter(|event| admits(campaign, event))
            .map(|event| event.customer_id)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let candidates = self.matching(campaign, candidates).await?;
        let mut decisions = Vec::new();
        for chunk in candidates.chunks(1_000) {
            decisions.push(self.enroller.decide(campaign, chunk).await?);
        }
        Ok(decisions)
    }

    /// The candidates who match the campaign's scoring rule now. An empty rule matches every
    /// member of the program, which anyone with a tier event is.
    async fn matching(
        &self,
        campaign: &Campaign,
        candidates: Vec<Uuid>,
    ) -> Result<Vec<Uuid>, CampaignError> {
        let rule = &campaign.definition.audience.scoring;
        if *rule == ScoringRule::default() {
            return Ok(candidates);
        }
        let mut matching = Vec::with_capacity(candidates.len());
        for customer in candidates {
            if self
                .enroller
                .upstream()
                .matches(campaign.definition.program_id, rule, customer)
                .await?
            {
                matching.push(customer);
            }
        }
        Ok(matching)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_fire_on_their_own_change_only() {
        let upgrade_gold = Trigger::TierUpgrade {
            to_tier_code: "GOLD".into(),
        };
        let any_downgrade = Trigger::TierDowngrade {
            from_tier_code: String::new(),
        };
        let dormant = Trigger::Lifecycle { became: 4 };
        let to_gold = TierChange::Upgrade {
            to_tier_code: "GOLD".into(),
        };
        let to_green = TierChange::Upgrade {
            to_tier_code: "GREEN".into(),
        };
        assert!(fires(&upgrade_gold, &to_gold));
        assert!(!fires(&upgrade_gold, &to_green));
        assert!(!fires(&any_downgrade, &to_gold));
        assert!(fires(
            &any_downgrade,
            &TierChange::Downgrade {
                from_tier_code: "VIP".into()
            }
        ));
        assert!(fires(&dormant, &TierChange::Lifecycle { became: 4 }));
        assert!(!fires(&dormant, &TierChange::Lifecycle { became: 3 }));
    }

    #[test]
    fn an_event_before_the_start_or_of_another_program_is_not_admitted() {
        let mut campaign = crate::domain::campaign::tests::campaign();
        campaign.status = Status::Running;
        campaign.definition.kind = Kind::Triggered;
        campaign.definition.trigger = Some(Trigger::TierUpgrade {
            to_tier_code: String::new(),
        });
        let start = Utc::now();
        campaign.definition.start_at = Some(start);
        let event = |offset: i64, program_id: Uuid| TierEvent {
            customer_id: Uuid::from_u128(1),
            program_id,
            occurred_at: start + chrono::Duration::seconds(offset),
            change: TierChange::Upgrade {
                to_tier_code: "VIP".into(),
            },
        };
        let program = campaign.definition.program_id;
        assert!(admits(&campaign, &event(1, program)));
        assert!(!admits(&campaign, &event(-1, program)));
        assert!(!admits(&campaign, &event(1, Uuid::from_u128(77))));
    }
}
