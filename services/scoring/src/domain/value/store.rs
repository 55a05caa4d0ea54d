//! The value model's port: what it needs from storage. Each backend implements it where its
//! SQL lives (`storage::postgres::value_model`, `storage::sqlite::value_model`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::{
    ValueModel,
    summary::{PopulationSummary, PurchaseSummary},
};
use crate::ScoringError;

/// Purchase summaries and fitted models.
#[async_trait]
pub trait ValueModelStore: Send + Sync {
    /// Every buyer of the program summarised at `as_of` (purchases up to it), days in `zone`.
    async fn population_summary(
        &self,
        program_id: Uuid,
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<PopulationSummary, ScoringError>;

    /// The summaries of those of `customer_ids` who have bought, as for
    /// [`ValueModelStore::population_summary`].
    async fn purchase_summaries(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, PurchaseSummary)>, ScoringError>;

    /// Stores `model` as the program's next version (its `version` is ignored); returns that
    /// version.
    async fn store_value_model(&self, model: &ValueModel) -> Result<i64, ScoringError>;

    /// The program's latest model.
    async fn value_model(&self, program_id: Uuid) -> Result<Option<ValueModel>, ScoringError>;
}
