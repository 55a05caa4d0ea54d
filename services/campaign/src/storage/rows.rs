//! Member entries, suppressions, attribution targets and leased deliveries as both backends read
//! them (instants as [`StoredInstant`]: `timestamptz` in Postgres, microseconds in SQLite), and
//! their one conversion each into the domain's nouns; the column lists their reads select.

use sqlx::types::Json;
use tierline_runtime::instant::StoredInstant;
use uuid::Uuid;

use crate::{
    CampaignError,
    domain::{
        campaign::ProgramFacts,
        holdout::Arm,
        ports::{
            AttributionTarget, LeasedDelivery, MemberRow, NewMember, SuppressionReason,
            SuppressionRow,
        },
    },
};

/// The columns of [`StoredMember`], of `members m LEFT JOIN deliveries d`.
pub(crate) const MEMBER_COLUMNS: &str = "m.customer_id, m.entry, m.arm, m.entered_at, m.attribution_ends_at, m.seq, \
     d.id AS delivery_id, d.status AS delivery_status, m.conversions, m.revenue_minor";

/// A member entry with its delivery, if any ([`MEMBER_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(crate) struct StoredMember {
    customer_id: Uuid,
    entry: i32,
    arm: String,
    entered_at: StoredInstant,
    attribution_ends_at: StoredInstant,
    seq: i64,
    delivery_id: Option<Uuid>,
    delivery_status: Option<String>,
    conversions: i32,
    revenue_minor: i64,
}

impl TryFrom<StoredMember> for MemberRow {
    type Error = CampaignError;

    fn try_from(row: StoredMember) -> Result<Self, Self::Error> {
        Ok(Self {
            member: NewMember {
                customer_id: row.customer_id,
                entry: row.entry,
                arm: Arm::parse(&row.arm)
                    .ok_or_else(|| CampaignError::Internal(format!("arm {:?}", row.arm)))?,
                entered_at: row.entered_at.into(),
                attribution_ends_at: row.attribution_ends_at.into(),
            },
            seq: row.seq,
            delivery: row.delivery_id.zip(row.delivery_status),
            conversions: row.conversions,
            revenue_minor: row.revenue_minor,
        })
    }
}

/// The columns of [`StoredSuppression`].
pub(crate) const SUPPRESSION_COLUMNS: &str = "customer_id, reason, suppressed_at, seq";

/// A suppression as stored ([`SUPPRESSION_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(crate) struct StoredSuppression {
    customer_id: Uuid,
    reason: String,
    suppressed_at: StoredInstant,
    seq: i64,
}

impl TryFrom<StoredSuppression> for SuppressionRow {
    type Error = CampaignError;

    fn try_from(row: StoredSuppression) -> Result<Self, Self::Error> {
        Ok(Self {
            customer_id: row.customer_id,
            reason: SuppressionReason::parse(&row.reason)
                .ok_or_else(|| CampaignError::Internal(format!("reason {:?}", row.reason)))?,
            suppressed_at: row.suppressed_at.into(),
            seq: row.seq,
        })
    }
}

/// The columns of [`StoredTarget`], of `members m JOIN campaigns c`.
pub(crate) const TARGET_COLUMNS: &str =
    "m.campaign_id, m.customer_id, m.entry, m.entered_at, m.attribution_ends_at, c.program";

/// A member entry as attribution reads it, with its campaign's program ([`TARGET_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(crate) struct StoredTarget {
    campaign_id: Uuid,
    customer_id: Uuid,
    entry: i32,
    entered_at: StoredInstant,
    attribution_ends_at: StoredInstant,
    program: Json<ProgramFacts>,
}

impl From<StoredTarget> for (AttributionTarget, ProgramFacts) {
    fn from(row: StoredTarget) -> Self {
        (
            AttributionTarget {
                campaign_id: row.campaign_id,
                customer_id: row.customer_id,
                entry: row.entry,
                entered_at: row.entered_at.into(),
                attribution_ends_at: row.attribution_ends_at.into(),
            },
            row.program.0,
        )
    }
}

/// A delivery just leased: `id, campaign_id, customer_id, lease_expires_at, attempt, created_at`
/// (each backend's lease names them in its own `RETURNING`).
#[derive(sqlx::FromRow)]
pub(crate) struct StoredLease {
    id: Uuid,
    campaign_id: Uuid,
    customer_id: Uuid,
    lease_expires_at: StoredInstant,
    attempt: i32,
    created_at: StoredInstant,
}

impl From<StoredLease> for LeasedDelivery {
    fn from(row: StoredLease) -> Self {
        Self {
            id: row.id,
            campaign_id: row.campaign_id,
            customer_id: row.customer_id,
            lease_expires_at: row.lease_expires_at.into(),
            attempt: row.attempt,
            created_at: row.created_at.into(),
        }
    }
}
