//! The value model's port: what it needs from storage. Each backend implements it where its
//! SQL lives (`storage::postgres::value_model`, `storage::sqlite::value_model`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    ValueModel,
    summary::{DatedPurchase, ProfilesAt},
};
use crate::{ScoringError, domain::purchase_profile::PurchaseProfile};

/// Purchase profiles, the purchases behind them, and fitted models.
#[async_trait]
pub trait ValueModelStore: Send + Sync {
    /// Every buyer's purchase profile as a summary at `as_of` reads it, read in one snapshot
    /// and in no particular order: the days of those whose last purchase is no later than
    /// `as_of`, the ids of the others.
    async fn profiles_at(
        &self,
        program_id: Uuid,
        as_of: DateTime<Utc>,
    ) -> Result<ProfilesAt, ScoringError>;

    /// The purchase profiles of those of `customer_ids` who have one.
    async fn customer_profiles(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, PurchaseProfile)>, ScoringError>;

    /// The counted purchases of `customer_ids` up to `as_of` (those refunded in full left out).
    async fn purchases_until(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        as_of: DateTime<Utc>,
    ) -> Result<Vec<DatedPurchase>, ScoringError>;

    /// Stores `model` as the program's next version (its `version` is ignored); returns that
    /// version.
    async fn store_value_model(&self, model: &ValueModel) -> Result<i64, ScoringError>;

    /// The program's latest model.
    async fn value_model(&self, program_id: Uuid) -> Result<Option<ValueModel>, ScoringError>;
}
