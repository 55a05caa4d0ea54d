//! Launching a one-shot campaign: stream the audience from the scoring service in id order,
//! check each chunk against the customer service (erased, unknown, consent, attributes, birth
//! month), split by the deterministic holdout, apply the frequency cap under its lock, and commit
//! members, deliveries, suppressions and the launch cursor together. A crash loses at most the
//! chunk in flight; whoever holds the launch lock next resumes after the cursor, and inserts that
//! exist are left alone, so nobody is enrolled or contacted twice.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use futures::StreamExt;
use uuid::Uuid;

use super::{
    campaign::Campaign,
    holdout::{Arm, arm},
};
use crate::{
    CampaignError,
    storage::{CampaignStore, LaunchLock, NewMember, SuppressionReason},
    upstream::{CustomerFacts, Upstream, consents_to},
};

/// At most K contacts per customer per D days, across campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    /// K.
    pub contacts: i64,
    /// D.
    pub days: i64,
}

/// The occasion of a one-shot launch's suppressions.
pub const LAUNCH_OCCASION: &str = "launch";

/// What the checks decided for one chunk.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkDecision {
    /// Matching the whole audience (scoring rule and customer-side criteria).
    pub matched: i64,
    /// Eligible so far (before the frequency cap), with their arm.
    pub eligible: Vec<(Uuid, Arm)>,
    /// Suppressed before the frequency cap.
    pub suppressed: Vec<(Uuid, SuppressionReason)>,
}

/// Checks a chunk of customers the scoring rule matched: who else matches, who is suppressed and
/// why (first failing check in the order erased, unknown, no consent), and each eligible
/// customer's arm.
pub fn decide_chunk(
    campaign: &Campaign,
    ids: &[Uuid],
    facts: &std::collections::HashMap<Uuid, CustomerFacts>,
) -> ChunkDecision {
    let definition = &campaign.definition;
    let mut decision = ChunkDecision::default();
    for id in ids {
        let Some(fact) = facts.get(id) else {
            decision.matched += 1;
            decision
                .suppressed
                .push((*id, SuppressionReason::UnknownCustomer));
            continue;
        };
        if fact.erased {
            decision.matched += 1;
            decision.suppressed.push((*id, SuppressionReason::Erased));
            continue;
        }
        if definition.audience.needs_customer_records()
            && !definition
                .audience
                .matches_customer(&fact.attributes, fact.birth_month)
        {
            continue;
        }
        decision.matched += 1;
        if !consents_to(fact, definition.channel) {
            decision
                .suppressed
                .push((*id, SuppressionReason::NoConsent));
            continue;
        }
        decision
            .eligible
            .push((*id, arm(campaign.id, *id, definition.holdout_bps)));
    }
    decision
}

/// Runs launches.
#[derive(Debug, Clone)]
pub struct Launcher {
    store: Arc<dyn CampaignStore>,
    upstream: Upstream,
    cap: FrequencyCap,
}

impl Launcher {
    /// A launcher.
    pub fn new(store: Arc<dyn CampaignStore>, upstream: Upstream, cap: FrequencyCap) -> Self {
        Self {
            store,
            upstream,
            cap,
        }
    }

    /// Goes on with the launch of `campaign_id` while holding `lock`, until the audience is
    /// exhausted; then marks it complete.
    #[tracing::instrument(skip(self, _lock))]
    pub async fn run(&self, campaign_id: Uuid, _lock: LaunchLock) -> Result<(), CampaignError> {
        // Read under the lock: the cursor is where the last launcher stopped.
        let campaign = self
            .store
            .campaign(campaign_id)
            .await?
            .ok_or_else(|| CampaignError::not_found("campaign", campaign_id))?;
        if campaign.launch.complete {
            return Ok(());
        }
        let definition = &campaign.definition;
        let with_records = definition.audience.needs_customer_records();
        let entered_at = campaign.launched_at.unwrap_or_else(Utc::now);
        let ends = entered_at + Duration::days(i64::from(definition.attribution_window_days));
        let mut pages = Box::pin(
            self.upstream
                .audience(
                    definition.program_id,
                    &definition.audience.scoring,
                    campaign.launch.cursor,
                )
                .await?,
        );
        while let Some(page) = pages.next().await {
            let ids = page?;
            let Some(last) = ids.last().copied() else {
                continue;
            };
            let facts = self.upstream.customers(&ids, with_records).await?;
            let decision = decide_chunk(&campaign, &ids, &facts);
            self.commit_chunk(&campaign, decision, last, entered_at, ends)
                .await?;
        }
        self.store.complete_launch(campaign_id).await?;
        tracing::info!("launch complete");
        Ok(())
    }

    async fn commit_chunk(
        &self,
        campaign: &Campaign,
        decision: ChunkDecision,
        cursor: Uuid,
        entered_at: DateTime<Utc>,
        attribution_ends_at: DateTime<Utc>,
    ) -> Result<(), CampaignError> {
        let now = Utc::now().trunc_subsecs(6);
        let mut tx = self.store.begin_enrolment().await?;
        let ids: Vec<Uuid> = decision.eligible.iter().map(|(id, _)| *id).collect();
        tx.lock_contacts().await?;
        let contacts = tx
            .recent_contacts(&ids, now - Duration::days(self.cap.days))
            .await?;
        let mut suppressed = decision.suppressed;
        let mut members = Vec::with_capacity(ids.len());
        for (customer_id, arm) in decision.eligible {
            // Both arms are capped, so they stay comparable.
            if contacts.get(&customer_id).copied().unwrap_or(0) >= self.cap.contacts {
                suppressed.push((customer_id, SuppressionReason::FrequencyCap));
                continue;
            }
            members.push(NewMember {
                customer_id,
                entry: 1,
                arm,
                entered_at,
                attribution_ends_at,
            });
        }
        tx.add_members(campaign.id, campaign.definition.channel, &members, now)
            .await?;
        tx.suppress(campaign.id, LAUNCH_OCCASION, &suppressed, now)
            .await?;
        tx.advance_launch(campaign.id, decision.matched, cursor)
            .await?;
        tx.commit().await
    }
}
