//! The tier lookup: what tier a customer holds, since when, the metrics in the window, what the
//! next tier takes, and what keeping the current one at the next evaluation takes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    decision::{Override, RequirementGap, Retention, gap_to_next, retention},
    policy::PolicyRules,
    program::Program,
    schedule::next_review,
    state::StoredState,
    versions::PolicyVersion,
    window::{MonthRange, Totals, months_at},
};
use crate::domain::ports::CustomerRecord;

/// One customer's tier in one program, as a lookup shows it.
#[derive(Debug, Clone)]
pub struct TierView {
    /// The customer.
    pub customer_id: Uuid,
    /// The tier shown.
    pub rank: u32,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The tier earned by qualifying (differs from `rank` under an override).
    pub earned_rank: u32,
    /// The override in force.
    pub manual: Option<Override>,
    /// The window counted now, and its totals.
    pub window: MonthRange,
    /// Totals in the window.
    pub totals: Totals,
    /// The next tier and what it takes.
    pub next: Option<(u32, Vec<RequirementGap>)>,
    /// What keeping the earned tier takes at the next review (the base tier's is always kept).
    pub retention: Retention,
    /// The policy version the view was computed under.
    pub policy_version: i32,
    /// The state's version (0 for a member never changed).
    pub version: i64,
}

/// Computes the view of one customer record of `program` at `now`.
pub fn view(
    program: &Program,
    rules: &PolicyRules,
    policy: &PolicyVersion,
    record: &CustomerRecord,
    now: DateTime<Utc>,
) -> TierView {
    let joined_at = record.member.joined_at;
    let stored = record.state.clone().unwrap_or_else(|| StoredState {
        state: super::decision::TierState::new_member(joined_at),
        version: 0,
    });
    let state = &stored.state;
    let window = months_at(rules.window, now, rules.time_zone, joined_at);
    let totals = Totals::over(&record.buckets, window);
    let rank = state.shown_rank(now);
    let manual = state.manual.clone().filter(|manual| manual.until > now);
    let evaluation_at = next_review(rules, joined_at, now);
    TierView {
        customer_id: record.member.customer_id,
        rank,
        since: manual
            .as_ref()
            .map_or(state.since, |manual| manual.set_at.max(state.since)),
        earned_rank: state.earned_rank,
        manual,
        window,
        totals,
        next: gap_to_next(rules, rank, &totals),
        retention: retention(
            rules,
            state,
            &record.buckets,
            joined_at,
            evaluation_at,
            program.last_evaluated_at,
        ),
        policy_version: policy.version,
        version: stored.version,
    }
}

/// The instants a month range covers in the program's zone: [start of `from`, start of the
/// month after `to`).
pub fn range_bounds(
    range: MonthRange,
    rules: &PolicyRules,
) -> (Option<DateTime<Utc>>, DateTime<Utc>) {
    let zone = rules.time_zone;
    (
        range.from.map(|from| from.start_in(zone)),
        range.to.plus(1).start_in(zone),
    )
}

/// The name of a rank in `program`.
pub fn tier_code(program: &Program, rank: u32) -> &str {
    program.tier(rank).map_or("", |tier| tier.code.as_str())
}
