//! Bulk ingestion: a batch of purchases and refunds, committed batch by batch.
//!
//! Purchases go in together in one transaction (`purchases::record_purchase_batch`); refunds
//! follow one by one, each in its own transaction,
//! through the same code as single refunds. A purchase and a refund of it may share a batch.

use super::{PgCustomerStore, purchases::record_purchase_batch};
use crate::storage::{ActivityImports, ActivityRecords};
use crate::{
    CustomerError,
    domain::import::{ImportCommand, ImportOutcome},
};
use async_trait::async_trait;

#[async_trait]
impl ActivityImports for PgCustomerStore {
    #[tracing::instrument(skip_all, fields(items = commands.len()))]
    async fn import_batch(
        &self,
        commands: &[ImportCommand],
    ) -> Result<Vec<ImportOutcome>, CustomerError> {
        let mut outcomes: Vec<Option<ImportOutcome>> = vec![None; commands.len()];
        let (positions, purchases) = ImportCommand::purchases(commands);
        if !purchases.is_empty() {
            let results = record_purchase_batch(&self.pool, &purchases).await?;
            for (index, result) in positions.into_iter().zip(results) {
                outcomes[index] = Some(ImportOutcome::of(result)?);
            }
        }

        // Each refund in its own transaction, after the purchases committed: its transaction id
        // is then taken after its purchase committed, so the feed (ordered by transaction id)
        // always delivers a purchase before its refunds. Refunds are the rarer kind in a backfill.
        for (index, command) in commands.iter().enumerate() {
            let ImportCommand::Refund(refund) = command else {
                continue;
            };
            outcomes[index] = Some(ImportOutcome::of(self.record_refund(refund).await)?);
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome
                    .ok_or_else(|| CustomerError::Internal("an import item got no outcome".into()))
            })
            .collect()
    }
}
