//! The ports of the campaign domain: what it needs stored, split by aggregate, and the types
//! they carry. The storage
//! backends (`storage::postgres`, `storage::sqlite`) implement them, and one conformance suite
//! runs against each. Rules that must hold under concurrency (one delivery per entry, the
//! frequency cap across campaigns, optimistic revisions) are enforced inside the backend's
//! transactions; the decisions themselves are the domain's.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    CampaignError,
    domain::{
        campaign::{Campaign, Channel, Kind, ProgramFacts, Status},
        holdout::Arm,
    },
};

/// Why a matched customer was not made a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SuppressionReason {
    /// No consent for the channel.
    NoConsent,
    /// Erased.
    Erased,
    /// Over the frequency cap.
    FrequencyCap,
    /// Already a member (triggered campaigns).
    AlreadyMember,
    /// Unknown to the customer service.
    UnknownCustomer,
}

impl SuppressionReason {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoConsent => "no_consent",
            Self::Erased => "erased",
            Self::FrequencyCap => "frequency_cap",
            Self::AlreadyMember => "already_member",
            Self::UnknownCustomer => "unknown_customer",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::NoConsent,
            Self::Erased,
            Self::FrequencyCap,
            Self::AlreadyMember,
            Self::UnknownCustomer,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }
}

/// A new member entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    /// The customer.
    pub customer_id: Uuid,
    /// Entry number, from 1.
    pub entry: i32,
    /// The arm.
    pub arm: Arm,
    /// When they entered.
    pub entered_at: DateTime<Utc>,
    /// End of their attribution window.
    pub attribution_ends_at: DateTime<Utc>,
}

/// A stored member entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The entry.
    pub member: NewMember,
    /// Position in the campaign's order of entry.
    pub seq: i64,
    /// The delivery of a treatment entry: id and status.
    pub delivery: Option<(Uuid, String)>,
    /// Attributed purchases not fully refunded.
    pub conversions: i32,
    /// Net attributed revenue.
    pub revenue_minor: i64,
}

/// A stored suppression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionRow {
    /// The customer.
    pub customer_id: Uuid,
    /// Why.
    pub reason: SuppressionReason,
    /// When.
    pub suppressed_at: DateTime<Utc>,
    /// Position in the campaign's order of suppression.
    pub seq: i64,
}

/// What a launch (or the triggered entries so far) produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipCounts {
    /// Treatment entries.
    pub treatment: i64,
    /// Control entries.
    pub control: i64,
    /// Suppressions per reason.
    pub suppressed: Vec<(SuppressionReason, i64)>,
}

/// One arm's aggregates for the report. The unit is the customer, the unit the holdout draws: a
/// customer who entered a triggered campaign several times is one observation, with every
/// purchase attributed to any of their entries counted once (windows of successive entries may
/// overlap).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ArmAggregate {
    /// Customers.
    pub members: i64,
    /// Their entries (as many as `members` in a one-shot campaign).
    pub entries: i64,
    /// Customers with an attributed purchase not refunded in full.
    pub converters: i64,
    /// Sum of net revenue per customer (minor units).
    pub revenue: i64,
    /// Σ (revenue − the arm's mean revenue)² over the customers, computed by the store without
    /// cancellation (never as Σx² − n·x̄²); 0 for an empty arm.
    pub revenue_m2: f64,
}

/// A delivery leased to an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedDelivery {
    /// Id.
    pub id: Uuid,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// The lease's end.
    pub lease_expires_at: DateTime<Utc>,
    /// Lease attempt, from 1.
    pub attempt: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An adapter's outcome for a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The delivery.
    pub delivery_id: Uuid,
    /// Sent (`None`) or failed with a reason.
    pub failure: Option<String>,
    /// When it was sent or failed.
    pub occurred_at: DateTime<Utc>,
    /// The provider's id.
    pub provider_message_id: String,
}

impl Ack {
    /// The delivery status the ack records: `failed` when it carries a failure, else `sent`.
    pub fn stored_status(&self) -> &'static str {
        if self.failure.is_some() {
            "failed"
        } else {
            "sent"
        }
    }
}

/// What became of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded.
    Accepted,
    /// Already had this outcome.
    AlreadyAcked,
    /// Already had the other outcome.
    Conflict,
    /// No such delivery.
    NotFound,
    /// Withdrawn before it was ever leased.
    Withdrawn,
    /// Leased to another adapter than the one acknowledging it.
    NotLeaseHolder,
}

/// What an ack by `adapter_id` that changed nothing met: `current` is the delivery's status and
/// lease holder now (`None`: no such delivery), `outcome` the status the ack asked for (`sent` or
/// `failed`). Both backends decide the same way.
pub(crate) fn unrecorded_ack(
    current: Option<(String, Option<String>)>,
    outcome: &str,
    adapter_id: &str,
) -> AckOutcome {
    let Some((status, holder)) = current else {
        return AckOutcome::NotFound;
    };
    match status.as_str() {
        // Pending (never leased) or withdrawn: nothing was sent on a lease.
        "pending" | "withdrawn" => AckOutcome::Withdrawn,
        // Leased again to another adapter after this one's lease expired, or acknowledged by
        // the adapter that held it: not this adapter's to acknowledge or to learn about.
        _ if holder.as_deref() != Some(adapter_id) => AckOutcome::NotLeaseHolder,
        current if current == outcome => AckOutcome::AlreadyAcked,
        "sent" | "failed" => AckOutcome::Conflict,
        // Still leased to this adapter, yet not updated: the row changed under the ack (a
        // concurrent lease of the same adapter); it is not acknowledged.
        _ => AckOutcome::NotLeaseHolder,
    }
}

/// Filters of a campaign listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignFilter {
    /// Of this status.
    pub status: Option<Status>,
    /// Of this program.
    pub program_id: Option<Uuid>,
    /// Of this kind.
    pub kind: Option<Kind>,
}

/// A member entry as attribution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributionTarget {
    /// The campaign.
    pub campaign_id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// The entry.
    pub entry: i32,
    /// Window start.
    pub entered_at: DateTime<Utc>,
    /// Window end (exclusive).
    pub attribution_ends_at: DateTime<Utc>,
}

/// Held while one launcher works on a campaign; dropping it lets another resume.
pub type LaunchLock = tierline_runtime::lock::HeldLock;

/// The writes of one chunk of a launch (or of triggered entries), in one transaction.
#[async_trait]
pub trait EnrolmentTx: Send {
    /// Serialises enrolments across campaigns until commit, so the frequency cap counts every
    /// committed contact.
    async fn lock_contacts(&mut self) -> Result<(), CampaignError>;
    /// Whether the campaign is running, holding it so until commit: a cancellation or
    /// completion waits for this chunk, and a chunk after it sees it.
    async fn campaign_running(&mut self, campaign_id: Uuid) -> Result<bool, CampaignError>;
    /// Contacts (treatment deliveries not failed or withdrawn) of these customers since `since`,
    /// not counting those of the campaign `excluding` when given.
    async fn recent_contacts(
        &mut self,
        customers: &[Uuid],
        since: DateTime<Utc>,
        excluding: Option<Uuid>,
    ) -> Result<HashMap<Uuid, i64>, CampaignError>;
    /// The latest entry of each of these customers in a campaign, with its time.
    async fn latest_entries(
        &mut self,
        campaign_id: Uuid,
        customers: &[Uuid],
    ) -> Result<HashMap<Uuid, (i32, DateTime<Utc>)>, CampaignError>;
    /// Adds members, and a pending delivery for each treatment entry; entries that exist are
    /// left alone.
    async fn add_members(
        &mut self,
        campaign_id: Uuid,
        channel: Channel,
        members: &[NewMember],
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError>;
    /// Records suppressions; one per (customer, occasion).
    async fn suppress(
        &mut self,
        campaign_id: Uuid,
        occasion: &str,
        suppressed: &[(Uuid, SuppressionReason)],
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError>;
    /// Moves the launch on: `matched` more customers, up to `cursor`.
    async fn advance_launch(
        &mut self,
        campaign_id: Uuid,
        matched: i64,
        cursor: Uuid,
    ) -> Result<(), CampaignError>;
    /// Counts `matched` more customers for a triggered campaign (its running total).
    async fn add_matched(&mut self, campaign_id: Uuid, matched: i64) -> Result<(), CampaignError>;
    /// Stores a feed consumer's position with the chunk's effects, so a replay starts after it.
    async fn save_cursor(&mut self, consumer: &str, position: &str) -> Result<(), CampaignError>;
    /// Makes every change durable.
    async fn commit(self: Box<Self>) -> Result<(), CampaignError>;
}

/// Campaigns themselves.
#[async_trait]
pub trait CampaignRecords: Send + Sync {
    /// Stores a new campaign; with an idempotency key already used, returns the campaign and
    /// digest of the first request instead (nothing stored).
    async fn create(
        &self,
        campaign: &Campaign,
        idempotency: Option<(&str, &[u8])>,
    ) -> Result<Option<(Uuid, Vec<u8>)>, CampaignError>;
    /// One campaign.
    async fn campaign(&self, id: Uuid) -> Result<Option<Campaign>, CampaignError>;
    /// Campaigns, newest first, before `before`.
    async fn list(
        &self,
        filter: &CampaignFilter,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Campaign>, CampaignError>;
    /// Saves a changed campaign if it is still at `campaign.revision - 1`; `Aborted` otherwise.
    async fn save(&self, campaign: &Campaign) -> Result<(), CampaignError>;
    /// Scheduled campaigns whose start has come, running ones whose end has come, and running
    /// ones whose launch is not complete.
    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>, CampaignError>;
    /// Marks a launch complete.
    async fn complete_launch(&self, id: Uuid) -> Result<(), CampaignError>;
}

/// What keeps replicas out of each other's way: launch and consumer locks, the enrolment hold and unit of work, dead letters.
#[async_trait]
pub trait Coordination: Send + Sync {
    /// Holds the campaign's launch lock if free.
    async fn try_lock_launch(&self, id: Uuid) -> Result<Option<LaunchLock>, CampaignError>;
    /// Holds off enrolments (in shared mode: attribution batches do not hold off each other), so
    /// a reader sees every member whose entry time lies before the moment it got the lock.
    async fn hold_enrolments(&self) -> Result<LaunchLock, CampaignError>;
    /// Holds the lock of a background consumer (a feed, a daily sweep) if no replica holds it.
    async fn try_lock_consumer(&self, consumer: &str) -> Result<Option<LaunchLock>, CampaignError>;
    /// Parks feed events a consumer could not read; returns how many were not parked before.
    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, CampaignError>;
    /// Starts the unit of work of an enrolment chunk.
    async fn begin_enrolment(&self) -> Result<Box<dyn EnrolmentTx>, CampaignError>;
}

/// Who entered a campaign, who was suppressed, and what they did: what reports and listings read.
#[async_trait]
pub trait MembershipReads: Send + Sync {
    /// Counts of members per arm and suppressions per reason.
    async fn membership_counts(&self, id: Uuid) -> Result<MembershipCounts, CampaignError>;
    /// A page of members in order of entry, after `after_seq`.
    async fn members(
        &self,
        id: Uuid,
        arm: Option<Arm>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MemberRow>, CampaignError>;
    /// A page of suppressions in order, after `after_seq`.
    async fn suppressions(
        &self,
        id: Uuid,
        reason: Option<SuppressionReason>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<SuppressionRow>, CampaignError>;
    /// The report's aggregates per arm: treatment, control.
    async fn arm_aggregates(&self, id: Uuid)
    -> Result<(ArmAggregate, ArmAggregate), CampaignError>;
    /// Sent deliveries of a campaign, and whether any attribution window is still open at `now`.
    async fn contacts_and_open_windows(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool), CampaignError>;
}

/// Deliveries and their leases to the channel adapters.
#[async_trait]
pub trait DeliveryRecords: Send + Sync {
    /// Withdraws a campaign's deliveries not yet leased.
    async fn withdraw_pending(&self, id: Uuid) -> Result<u64, CampaignError>;
    /// Leases up to `limit` deliveries of `channel` (pending, or leased and expired), oldest
    /// first, skipping those other adapters are leasing right now.
    async fn lease(
        &self,
        channel: Channel,
        adapter_id: &str,
        limit: u32,
        lease: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<LeasedDelivery>, CampaignError>;
    /// Withdraws these leased deliveries (their customer may no longer be contacted); returns
    /// how many were.
    async fn withdraw_leased(&self, ids: &[Uuid]) -> Result<u64, CampaignError>;
    /// How many of `ids` are still leased to `adapter_id` and not expired.
    async fn still_leased(
        &self,
        ids: &[Uuid],
        adapter_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, CampaignError>;
    /// Records the acks of `adapter_id`; one outcome per ack, in order. Only the adapter a
    /// delivery is leased to (also after the lease expired, unless it was leased again) records
    /// its outcome; a delivery leased to another adapter is [`AckOutcome::NotLeaseHolder`], and
    /// when any is, nothing at all is recorded (the transaction is rolled back) and the other
    /// outcomes only say what would have happened.
    async fn ack(
        &self,
        adapter_id: &str,
        acks: &[Ack],
        now: DateTime<Utc>,
    ) -> Result<Vec<AckOutcome>, CampaignError>;
    /// Ticks whenever deliveries may have changed.
    fn delivery_signal(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// Purchases and refunds attributed to campaign entries, with the activity feed's cursor.
#[async_trait]
pub trait AttributionRecords: Send + Sync {
    /// A feed consumer's cursor.
    async fn cursor(&self, consumer: &str) -> Result<Option<String>, CampaignError>;
    /// The entries of these customers whose attribution windows end after `from`, with their
    /// campaign's program facts (currency, scope).
    async fn attribution_targets(
        &self,
        customers: &[Uuid],
        from: DateTime<Utc>,
    ) -> Result<Vec<(AttributionTarget, ProgramFacts)>, CampaignError>;
    /// Applies attributed purchases (activity id, target, amount) and refunds (refund id,
    /// purchase id, amount) and stores the cursor, in one transaction.
    async fn apply_attribution(
        &self,
        purchases: &[(Uuid, AttributionTarget, i64)],
        refunds: &[(Uuid, Uuid, i64)],
        consumer: &str,
        position: &str,
        now: DateTime<Utc>,
    ) -> Result<(), CampaignError>;
}

/// Everything the campaign service stores: every backend that implements all the ports.
pub trait CampaignStore:
    CampaignRecords
    + Coordination
    + MembershipReads
    + DeliveryRecords
    + AttributionRecords
    + std::fmt::Debug
    + 'static
{
}

impl<T> CampaignStore for T where
    T: CampaignRecords
        + Coordination
        + MembershipReads
        + DeliveryRecords
        + AttributionRecords
        + std::fmt::Debug
        + 'static
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrecorded_ack_is_told_apart_and_others_learn_nothing() {
        let row = |status: &str, holder: Option<&str>| {
            Some((status.to_owned(), holder.map(str::to_owned)))
        };
        let cases = [
            (None, AckOutcome::NotFound),
            (row("pending", None), AckOutcome::Withdrawn),
            (row("withdrawn", Some("a")), AckOutcome::Withdrawn),
            (row("leased", Some("b")), AckOutcome::NotLeaseHolder),
            (row("sent", Some("b")), AckOutcome::NotLeaseHolder),
            (row("sent", Some("a")), AckOutcome::AlreadyAcked),
            (row("failed", Some("a")), AckOutcome::Conflict),
            (row("leased", Some("a")), AckOutcome::NotLeaseHolder),
        ];
        for (current, expected) in cases {
            assert_eq!(
                unrecorded_ack(current.clone(), "sent", "a"),
                expected,
                "{current:?}"
            );
        }
    }
}
