//! Deliveries for channel adapters: a stream that keeps at most `max_in_flight` of its leases
//! unacknowledged, wakes when deliveries change (and at least every second, for expired leases),
//! and acks whose first outcome wins, taken only from the adapter holding the lease.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use tierline_runtime::status::FieldViolation;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    campaign::{Channel, Offer},
    service::Campaigns,
};
use crate::{
    CampaignError,
    domain::ports::{Ack, AckOutcome, LeasedDelivery},
};

/// The longest a waiting stream sleeps before looking for expired leases.
const EXPIRY_POLL: Duration = Duration::from_secs(1);

/// What an adapter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRequest {
    /// The channel it serves.
    pub channel: Channel,
    /// Who it is, 1 to 128 characters.
    pub adapter_id: String,
    /// At most this many unacknowledged leases, 1 to 1,000.
    pub max_in_flight: u32,
    /// Lease length, 10 s to 1 h.
    pub lease: chrono::Duration,
}

impl DeliveryRequest {
    /// Checks the limits; every bad field is reported.
    pub fn validate(&self) -> Result<(), CampaignError> {
        let mut violations = Vec::new();
        if self.adapter_id.trim().is_empty() || self.adapter_id.chars().count() > 128 {
            violations.push(tierline_runtime::status::FieldViolation::new(
                "adapter_id",
                "is required, 1 to 128 characters",
            ));
        }
        if !(1..=1_000).contains(&self.max_in_flight) {
            violations.push(tierline_runtime::status::FieldViolation::new(
                "max_in_flight",
                "must be 1 to 1,000",
            ));
        }
        if !(10..=3_600).contains(&self.lease.num_seconds()) {
            violations.push(tierline_runtime::status::FieldViolation::new(
                "lease_seconds",
                "must be 10 to 3,600",
            ));
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(CampaignError::InvalidArgument(violations))
        }
    }
}

/// A leased delivery with what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingDelivery {
    /// The lease.
    pub lease: LeasedDelivery,
    /// The channel.
    pub channel: Channel,
    /// The campaign's offer.
    pub offer: Option<Offer>,
}

/// An ack as sent, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckInput {
    /// The delivery id as sent.
    pub delivery_id: String,
    /// `Some(true)` sent, `Some(false)` failed, `None` unspecified.
    pub sent: Option<bool>,
    /// Why it failed.
    pub failure_reason: String,
    /// When, if given.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The provider's id.
    pub provider_message_id: String,
}

/// The result of one ack: its outcome, or why it is invalid.
pub type AckResult = Result<AckOutcome, String>;

fn check_ack(input: AckInput, now: DateTime<Utc>) -> Result<Ack, String> {
    let delivery_id =
        Uuid::parse_str(&input.delivery_id).map_err(|_| "delivery_id must be a UUID".to_owned())?;
    let failure = match input.sent {
        None => return Err("outcome must be SENT or FAILED".into()),
        Some(true) if !input.failure_reason.is_empty() => {
            return Err("failure_reason must be empty for SENT".into());
        }
        Some(true) => None,
        Some(false)
            if input.failure_reason.trim().is_empty()
                || input.failure_reason.chars().count() > 500 =>
        {
            return Err("FAILED needs a failure_reason of 1 to 500 characters".into());
        }
        Some(false) => Some(input.failure_reason),
    };
    if input.provider_message_id.chars().count() > 256 {
        return Err("provider_message_id is at most 256 characters".into());
    }
    Ok(Ack {
        delivery_id,
        failure,
        occurred_at: input.occurred_at.unwrap_or(now),
        provider_message_id: input.provider_message_id,
    })
}

impl Campaigns {
    /// Starts leasing deliveries to an adapter; the receiver yields them until it is dropped or
    /// the service shuts down.
    pub fn stream_deliveries(
        &self,
        request: DeliveryRequest,
        shutdown: CancellationToken,
    ) -> Result<mpsc::Receiver<Result<OutgoingDelivery, CampaignError>>, CampaignError> {
        request.validate()?;
        let (sender, receiver) = mpsc::channel(request.max_in_flight as usize);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.lease_loop(&request, &sender, &shutdown).await {
                let _ = sender.send(Err(error)).await;
            }
        });
        Ok(receiver)
    }

    #[tracing::instrument(skip_all, fields(adapter_id = %request.adapter_id, channel = request.channel.as_str()))]
    async fn lease_loop(
        &self,
        request: &DeliveryRequest,
        sender: &mpsc::Sender<Result<OutgoingDelivery, CampaignError>>,
        shutdown: &CancellationToken,
    ) -> Result<(), CampaignError> {
        let mut changes = self.store.delivery_signal();
        let mut in_flight: Vec<Uuid> = Vec::new();
        let mut offers: HashMap<Uuid, Option<Offer>> = HashMap::new();
        loop {
            changes.borrow_and_update();
            let now = Utc::now().trunc_subsecs(6);
            if !in_flight.is_empty() {
                in_flight = self
                    .store
                    .still_leased(&in_flight, &request.adapter_id, now)
                    .await?;
            }
            let room = request.max_in_flight.saturating_sub(in_flight.len() as u32);
            let leased = self
                .store
                .lease(
                    request.channel,
                    &request.adapter_id,
                    room,
                    request.lease,
                    now,
                )
                .await?;
            let leased = self.still_contactable(leased, request.channel).await?;
            for lease in leased {
                let offer = match offers.get(&lease.campaign_id) {
                    Some(offer) => offer.clone(),
                    None => {
                        let offer = self
                            .store
                            .campaign(lease.campaign_id)
                            .await?
                            .and_then(|campaign| campaign.definition.offer);
                        offers.insert(lease.campaign_id, offer.clone());
                        offer
                    }
                };
                in_flight.push(lease.id);
                let outgoing = OutgoingDelivery {
                    lease,
                    channel: request.channel,
                    offer,
                };
                if sender.send(Ok(outgoing)).await.is_err() {
                    // The adapter went away; its leases expire and return.
                    return Ok(());
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = sender.closed() => return Ok(()),
                _ = changes.changed() => {}
                () = tokio::time::sleep(EXPIRY_POLL) => {}
            }
        }
    }

    /// The leases whose customers may still be contacted on `channel`; the others (consent
    /// revoked or customer erased since they entered) are withdrawn. Checked at the last moment,
    /// when the delivery is handed out, so a revocation before that always wins.
    async fn still_contactable(
        &self,
        leased: Vec<LeasedDelivery>,
        channel: Channel,
    ) -> Result<Vec<LeasedDelivery>, CampaignError> {
        if leased.is_empty() {
            return Ok(leased);
        }
        let customers: Vec<Uuid> = leased.iter().map(|lease| lease.customer_id).collect();
        let facts = self.upstream().customers(&customers, false).await?;
        let (contactable, withdrawn): (Vec<_>, Vec<_>) = leased.into_iter().partition(|lease| {
            facts
                .get(&lease.customer_id)
                .is_some_and(|fact| !fact.erased && crate::upstream::consents_to(fact, channel))
        });
        if !withdrawn.is_empty() {
            let ids: Vec<Uuid> = withdrawn.iter().map(|lease| lease.id).collect();
            let count = self.store.withdraw_leased(&ids).await?;
            tracing::info!(
                withdrawn = count,
                "deliveries withdrawn: consent revoked or customer erased"
            );
        }
        Ok(contactable)
    }

    /// Records up to 1,000 acks; one result per ack, in order. FAILED_PRECONDITION, recording
    /// nothing, when any acknowledged delivery is leased to another adapter (naming each as
    /// `acks[i].delivery_id`).
    #[tracing::instrument(skip(self, acks), fields(acks = acks.len()))]
    pub async fn ack(
        &self,
        adapter_id: &str,
        acks: Vec<AckInput>,
    ) -> Result<Vec<(String, AckResult)>, CampaignError> {
        if adapter_id.trim().is_empty() || adapter_id.chars().count() > 128 {
            return Err(CampaignError::invalid(
                "adapter_id",
                "is required, 1 to 128 characters",
            ));
        }
        if acks.is_empty() || acks.len() > 1_000 {
            return Err(CampaignError::invalid("acks", "1 to 1,000 acks"));
        }
        let now = Utc::now().trunc_subsecs(6);
        let mut results: Vec<(String, AckResult)> = Vec::with_capacity(acks.len());
        let mut valid = Vec::new();
        let mut positions = Vec::new();
        for input in acks {
            let id = input.delivery_id.clone();
            match check_ack(input, now) {
                Ok(ack) => {
                    positions.push(results.len());
                    valid.push(ack);
                    results.push((id, Ok(AckOutcome::Accepted)));
                }
                Err(message) => results.push((id, Err(message))),
            }
        }
        let outcomes = self.store.ack(adapter_id, &valid, now).await?;
        let not_held = not_lease_holder(&positions, &outcomes);
        if !not_held.is_empty() {
            tracing::info!(
                adapter_id,
                refused = not_held.len(),
                "acks refused: deliveries leased to another adapter"
            );
            return Err(CampaignError::FailedPrecondition {
                message: "only the adapter holding a delivery's lease may acknowledge it; \
                          nothing was recorded"
                    .into(),
                fields: not_held,
            });
        }
        for (position, outcome) in positions.into_iter().zip(outcomes) {
            results[position].1 = match outcome {
                AckOutcome::Withdrawn => {
                    Err("the delivery was withdrawn before it was leased".into())
                }
                other => Ok(other),
            };
        }
        Ok(results)
    }
}

/// The acks (by their position in the request) whose delivery another adapter holds.
fn not_lease_holder(positions: &[usize], outcomes: &[AckOutcome]) -> Vec<FieldViolation> {
    positions
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| **outcome == AckOutcome::NotLeaseHolder)
        .map(|(position, _)| {
            FieldViolation::new(
                format!("acks[{position}].delivery_id"),
                "is leased to another adapter",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(sent: Option<bool>, reason: &str) -> AckInput {
        AckInput {
            delivery_id: Uuid::nil().to_string(),
            sent,
            failure_reason: reason.into(),
            occurred_at: None,
            provider_message_id: String::new(),
        }
    }

    #[test]
    fn malformed_acks_are_refused_with_a_reason() {
        let now = Utc::now();
        assert!(check_ack(input(None, ""), now).is_err());
        assert!(check_ack(input(Some(false), ""), now).is_err());
        assert!(check_ack(input(Some(true), "bounced"), now).is_err());
        assert!(check_ack(input(Some(false), "bounced"), now).is_ok_and(|a| a.failure.is_some()));
        let mut bad_id = input(Some(true), "");
        bad_id.delivery_id = "x".into();
        assert!(check_ack(bad_id, now).is_err());
    }

    #[test]
    fn acks_of_deliveries_another_adapter_holds_are_named_by_position() {
        // Positions 0, 2 and 3 reached the store (1 was malformed); 2 is another adapter's.
        let named = not_lease_holder(
            &[0, 2, 3],
            &[
                AckOutcome::Accepted,
                AckOutcome::NotLeaseHolder,
                AckOutcome::AlreadyAcked,
            ],
        );
        assert_eq!(
            named.into_iter().map(|v| v.field).collect::<Vec<_>>(),
            ["acks[2].delivery_id"]
        );
        assert!(not_lease_holder(&[0], &[AckOutcome::Conflict]).is_empty());
    }

    #[test]
    fn limits_are_checked_and_named() {
        let request = DeliveryRequest {
            channel: Channel::Email,
            adapter_id: String::new(),
            max_in_flight: 0,
            lease: chrono::Duration::seconds(5),
        };
        match request.validate() {
            Err(CampaignError::InvalidArgument(v)) => assert_eq!(
                v.into_iter().map(|v| v.field).collect::<Vec<_>>(),
                ["adapter_id", "max_in_flight", "lease_seconds"]
            ),
            other => panic!("expected violations, got {other:?}"),
        }
    }
}
