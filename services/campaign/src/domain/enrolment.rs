//! Enrolment: the one way customers become members, shared by the one-shot launch, the tier and
//! lifecycle triggers and the birthday sweep. Customer-side checks come first (erased, unknown,
//! audience attributes and birth month, consent); then, inside the enrolment transaction that
//! holds the contacts lock, the re-entry period and the global frequency cap; then the
//! deterministic arm. Suppressions are recorded under an occasion (the launch, a feed event, a
//! birthday), so a replayed occasion records nothing twice.

use std::collections::HashMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use uuid::Uuid;

use super::{
    campaign::{Campaign, Kind},
    holdout::{Arm, arm},
};
use crate::{
    CampaignError,
    domain::ports::{EnrolmentTx, NewMember, SuppressionReason},
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

/// What the customer-side checks decided for one chunk.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkDecision {
    /// Matching the whole audience (scoring rule and customer-side criteria).
    pub matched: i64,
    /// Eligible so far (before re-entry and the frequency cap), with their arm.
    pub eligible: Vec<(Uuid, Arm)>,
    /// Suppressed before re-entry and the frequency cap.
    pub suppressed: Vec<(Uuid, SuppressionReason)>,
}

/// Checks a chunk of customers the scoring rule matched: who else matches, who is suppressed and
/// why (first failing check in the order erased, unknown, no consent), and each eligible
/// customer's arm.
pub fn decide_chunk(
    campaign: &Campaign,
    ids: &[Uuid],
    facts: &HashMap<Uuid, CustomerFacts>,
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

/// Whether a customer whose latest entry was at `last` may enter again at `now`.
pub fn may_reenter(campaign: &Campaign, last: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let period = i64::from(campaign.definition.re_entry_period_days);
    campaign.definition.kind == Kind::Triggered
        && period > 0
        && now >= last + Duration::days(period)
}

/// What an enrolment wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enrolled {
    /// New entries.
    pub members: usize,
    /// New suppressions (all reasons).
    pub suppressed: usize,
    /// The campaign was no longer running: nothing was written.
    pub stopped: bool,
}

/// Enrols customers into campaigns.
#[derive(Debug, Clone)]
pub struct Enroller {
    upstream: Upstream,
    cap: FrequencyCap,
}

impl Enroller {
    /// An enroller reading the customer service through `upstream`.
    pub fn new(upstream: Upstream, cap: FrequencyCap) -> Self {
        Self { upstream, cap }
    }

    /// The upstream clients.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The frequency cap.
    pub fn cap(&self) -> FrequencyCap {
        self.cap
    }

    /// The customer-side checks of `ids` (already matched by the scoring rule), in chunks of
    /// at most 1,000 ids.
    pub async fn decide(
        &self,
        campaign: &Campaign,
        ids: &[Uuid],
    ) -> Result<ChunkDecision, CampaignError> {
        let with_records = campaign.definition.audience.needs_customer_records();
        let facts = self.upstream.customers(ids, with_records).await?;
        Ok(decide_chunk(campaign, ids, &facts))
    }

    /// Applies re-entry and the frequency cap to `decision` inside `tx` (which must hold the
    /// contacts lock) and writes the members, their deliveries and the suppressions, entering
    /// them now. Writes nothing when the campaign is no longer running (`stopped`).
    pub async fn write(
        &self,
        tx: &mut dyn EnrolmentTx,
        campaign: &Campaign,
        decision: ChunkDecision,
        occasion: &str,
    ) -> Result<Enrolled, CampaignError> {
        self.write_since(tx, campaign, decision, occasion, None)
            .await
    }

    /// As [`Self::write`], for an occasion that began at `occasion_start` and may be run again:
    /// a customer who entered since then entered through this occasion and is left alone, and
    /// the re-entry period is counted in whole occasions (days), not to the second.
    pub async fn write_since(
        &self,
        tx: &mut dyn EnrolmentTx,
        campaign: &Campaign,
        decision: ChunkDecision,
        occasion: &str,
        occasion_start: Option<DateTime<Utc>>,
    ) -> Result<Enrolled, CampaignError> {
        if !tx.campaign_running(campaign.id).await? {
            return Ok(Enrolled {
                stopped: true,
                ..Enrolled::default()
            });
        }
        // Stamped under the contacts lock, which attribution holds (shared) while it reads the
        // members, and takes only once the clock has passed the date of every purchase of its
        // batch (purchases may be dated up to TIERLINE_CLOCK_SKEW ahead; see
        // `attribution::wait_for_purchase_dates`): an entry stamped before is read by that batch,
        // an entry stamped after lies after every purchase the batch passes (replicas' clocks
        // are assumed to agree, as everywhere entries and purchases are compared).
        let now = Utc::now().trunc_subsecs(6);
        let ids: Vec<Uuid> = decision.eligible.iter().map(|(id, _)| *id).collect();
        let one_shot = campaign.definition.kind == Kind::OneShot;
        let latest = if !one_shot && !ids.is_empty() {
            tx.latest_entries(campaign.id, &ids).await?
        } else {
            HashMap::new()
        };
        // A one-shot campaign's own deliveries are not contacts against it: a replayed page must
        // not cap the members it already made.
        let contacts = if ids.is_empty() {
            HashMap::new()
        } else {
            tx.recent_contacts(
                &ids,
                now - Duration::days(self.cap.days),
                one_shot.then_some(campaign.id),
            )
            .await?
        };
        let reentry_at = occasion_start.map_or(now, |start| start + Duration::days(1));
        let window = Duration::days(i64::from(campaign.definition.attribution_window_days));
        let mut suppressed = decision.suppressed;
        let mut members = Vec::with_capacity(ids.len());
        for (customer_id, arm) in decision.eligible {
            let mut entry = 1;
            if let Some((last_entry, last_at)) = latest.get(&customer_id) {
                if occasion_start.is_some_and(|start| *last_at >= start) {
                    continue;
                }
                if !may_reenter(campaign, *last_at, reentry_at) {
                    suppressed.push((customer_id, SuppressionReason::AlreadyMember));
                    continue;
                }
                entry = last_entry + 1;
            }
            // Both arms are capped, so they stay comparable.
            if contacts.get(&customer_id).copied().unwrap_or(0) >= self.cap.contacts {
                suppressed.push((customer_id, SuppressionReason::FrequencyCap));
                continue;
            }
            members.push(NewMember {
                customer_id,
                entry,
                arm,
                entered_at: now,
                attribution_ends_at: now + window,
            });
        }
        tx.add_members(campaign.id, campaign.definition.channel, &members, now)
            .await?;
        tx.suppress(campaign.id, occasion, &suppressed, now).await?;
        Ok(Enrolled {
            members: members.len(),
            suppressed: suppressed.len(),
            stopped: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggered(period: u32) -> Campaign {
        let mut campaign = crate::domain::campaign::tests::campaign();
        campaign.definition.kind = Kind::Triggered;
        campaign.definition.re_entry_period_days = period;
        campaign
    }

    #[test]
    fn re_entry_needs_a_period_and_its_passing() {
        let entered = Utc::now() - Duration::days(10);
        let now = Utc::now();
        assert!(!may_reenter(&triggered(0), entered, now), "0 = once");
        assert!(!may_reenter(&triggered(30), entered, now), "too soon");
        assert!(may_reenter(&triggered(7), entered, now));
        let mut one_shot = triggered(7);
        one_shot.definition.kind = Kind::OneShot;
        assert!(!may_reenter(&one_shot, entered, now));
    }
}
