//! The check every feed batch write that another writer can refuse makes: that it changed each
//! row it was meant for.

use crate::ScoringError;

/// Refuses the batch (`Aborted`: it is applied again) unless a write meant for `rows` rows
/// changed `written`: another writer changed what the batch had loaded meanwhile, as `what` says.
pub(super) fn every_row_written(
    written: u64,
    rows: usize,
    what: &'static str,
) -> Result<(), ScoringError> {
    if written == rows as u64 {
        Ok(())
    } else {
        Err(ScoringError::Aborted(what.into()))
    }
}
