//! Counting a program's history. The activity feed counts a purchase for the programs that exist
//! when it is applied, so a program created after two years of imported purchases would see none
//! of them. Before a program's first evaluation run judges anyone, the run reads the customer
//! service's activity feed from its beginning for that program alone (docs/SCORING.md,
//! "History before the program"): counted purchases, buckets and upgrades are written as the feed
//! consumer writes them, each batch with the backfill's own cursor, so a run that dies resumes
//! where it stopped and nothing is counted twice (counted purchases are keyed by program and
//! activity, as for the consumer, which counts the program's new purchases meanwhile). The
//! backfill is complete once it has read up to the feed's live end.

use std::fmt::Debug;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{ScoringError, domain::ports::ScoringStore};

/// The cursor name of a program's backfill (its row in the feed cursors).
pub fn consumer_of(program_id: Uuid) -> String {
    format!("backfill:{program_id}")
}

/// Whether the history of `program_id` has been counted: its backfill reached the feed's live
/// end once (its cursor carries a checkpoint).
pub async fn complete(store: &dyn ScoringStore, program_id: Uuid) -> Result<bool, ScoringError> {
    Ok(store
        .feed_progress(&consumer_of(program_id))
        .await?
        .is_some_and(|progress| progress.caught_up_to.is_some()))
}

/// What one backfill read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillOutcome {
    /// Feed events the run has read (and applied for the program), over all its attempts.
    pub events: u64,
    /// Whether the feed's live end was reached.
    pub complete: bool,
}

/// The customer service's activity history, as a backfill reads it (the feed module's client).
#[async_trait]
pub trait ActivityHistory: Debug + Send + Sync {
    /// Applies, for `program_id` only, the activity feed after the program's backfill cursor up
    /// to its live end, adding the events of each batch to `run_id`'s progress as it goes.
    async fn count_history(
        &self,
        program_id: Uuid,
        run_id: Uuid,
    ) -> Result<BackfillOutcome, ScoringError>;
}
