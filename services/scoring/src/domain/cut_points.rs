//! The population's RFM cut points, recomputed at every evaluation and on demand when a program
//! has none yet; lookups between evaluations score against the latest stored version.

use chrono::{DateTime, Utc};

/// Computes the population's cut points now and stores them as the next version.
pub(crate) async fn refresh_cut_points(
    store: &dyn super::ports::ScoringStore,
    program: &super::program::Program,
    rules: &super::policy::PolicyRules,
    now: DateTime<Utc>,
) -> Result<(i64, super::scores::CutPoints), crate::ScoringError> {
    let (from, to) = super::scores::rfm_months(rules.window, now, rules.time_zone);
    let (cuts, population) = store.compute_cut_points(program.id, from, to, now).await?;
    // Two first computations at once collide on the version: the loser uses the winner's.
    match store
        .store_cut_points(program.id, &cuts, population, now)
        .await
    {
        Ok(version) => Ok((version, cuts)),
        Err(crate::ScoringError::Aborted(_)) => store
            .cut_points(program.id)
            .await?
            .ok_or_else(|| crate::ScoringError::Unavailable("cut points contended; retry".into())),
        Err(error) => Err(error),
    }
}
