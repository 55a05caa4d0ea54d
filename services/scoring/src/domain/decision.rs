//! Tier decisions: which tier a customer holds, how it changes, and why.
//!
//! - A customer *qualifies* for the highest tier whose requirements all hold on the window totals.
//! - Upgrades happen at once, on the activity that crosses a threshold.
//! - Downgrades happen only at scheduled evaluations, never on a single refund: a tier is kept
//!   for `grace_months` after the customer last qualified for it, and one evaluation drops at most
//!   `max_levels_dropped` levels.
//! - An operator's override sets the tier shown until a date; the earned tier keeps being tracked
//!   underneath and takes over again when the override expires.
//! - A new policy upgrades at once whoever qualifies higher under it; downgrades it causes wait
//!   for the next evaluation, with grace, like any other.
//!
//! Every change of the tier shown is a [`Decision`] with its reason and the totals that decided it.

use chrono::{DateTime, Months, Utc};

use super::{
    policy::{Metric, PolicyRules},
    window::{Bucket, MonthRange, Totals, judged_at, months_at},
};

/// Why the tier shown changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An activity crossed a threshold.
    Qualified,
    /// A scheduled evaluation found the customer below the tier, with no grace configured.
    Evaluation,
    /// A scheduled evaluation found the customer below the tier after the grace ran out.
    GraceExpired,
    /// An operator set or cleared an override.
    Override,
    /// An override reached its end date.
    OverrideExpired,
    /// A new policy was activated.
    PolicyChange,
}

impl Reason {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qualified => "qualified",
            Self::Evaluation => "evaluation",
            Self::GraceExpired => "grace_expired",
            Self::Override => "override",
            Self::OverrideExpired => "override_expired",
            Self::PolicyChange => "policy_change",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "qualified" => Self::Qualified,
            "evaluation" => Self::Evaluation,
            "grace_expired" => Self::GraceExpired,
            "override" => Self::Override,
            "override_expired" => Self::OverrideExpired,
            "policy_change" => Self::PolicyChange,
            _ => return None,
        })
    }
}

/// A manual tier granted by an operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Override {
    /// The tier granted.
    pub rank: u32,
    /// Until when (exclusive).
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who.
    pub operator: String,
    /// When it was set.
    pub set_at: DateTime<Utc>,
}

/// What the engine keeps per customer and program.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TierState {
    /// The tier earned by qualifying (overrides aside).
    pub earned_rank: u32,
    /// When the tier shown last changed.
    pub since: DateTime<Utc>,
    /// When the customer was last seen qualifying for the earned tier by a decision that wrote
    /// the state. An evaluation that finds them still qualifying writes nothing: while
    /// `lapsed_at` is empty, the program's last evaluation counts as a later time they
    /// qualified ([`TierState::last_qualified`]).
    pub last_qualified_at: Option<DateTime<Utc>>,
    /// When an evaluation first found the customer below the earned tier (the start of grace, if
    /// any); `None` while they qualify for it.
    pub lapsed_at: Option<DateTime<Utc>>,
    /// The override in force, if any.
    pub manual: Option<Override>,
}

/// A change of the tier shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Rank before.
    pub from_rank: u32,
    /// Rank after.
    pub to_rank: u32,
    /// Why.
    pub reason: Reason,
    /// The window totals that decided it.
    pub totals: Totals,
    /// When.
    pub at: DateTime<Utc>,
    /// For a decision about an override: who acted, why, and the override's end.
    pub override_note: Option<OverrideNote>,
}

/// What a decision about an override records besides the ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideNote {
    /// The operator who set, replaced or cleared it; `None` when it ended by its date.
    pub operator: Option<String>,
    /// The operator's reason (`None` as for `operator`).
    pub reason: Option<String>,
    /// The override's end: the granted one's when set or replaced, the ended one's when cleared
    /// or expired.
    pub expires_at: DateTime<Utc>,
}

/// The highest rank whose requirements all hold; the base tier (0) has none.
pub fn qualified_rank(rules: &PolicyRules, totals: &Totals) -> u32 {
    rules
        .tiers
        .iter()
        .enumerate()
        .rev()
        .find(|(_, rule)| {
            rule.requirements
                .iter()
                .all(|r| totals.value(r.metric) >= r.threshold)
        })
        .map_or(0, |(rank, _)| u32::try_from(rank).unwrap_or(0))
}

fn add_months(instant: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    instant
        .checked_add_months(Months::new(months))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl TierState {
    /// A new member: the base tier since joining.
    pub fn new_member(joined_at: DateTime<Utc>) -> Self {
        Self {
            earned_rank: 0,
            since: joined_at,
            last_qualified_at: None,
            lapsed_at: None,
            manual: None,
        }
    }

    /// The tier shown at `now`: the override while it lasts, else the earned tier.
    pub fn shown_rank(&self, now: DateTime<Utc>) -> u32 {
        match &self.manual {
            Some(manual) if manual.until > now => manual.rank,
            _ => self.earned_rank,
        }
    }

    /// When the customer last qualified for the earned tier, given when the program's last
    /// finished evaluation began: a member not lapsed qualified at that evaluation too.
    pub fn last_qualified(
        &self,
        last_evaluated_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        match (self.lapsed_at, last_evaluated_at) {
            // A state that never recorded qualifying (earned by no decision) gains nothing.
            (None, Some(evaluated)) => self.last_qualified_at.map(|at| at.max(evaluated)),
            _ => self.last_qualified_at,
        }
    }

    /// Until when grace keeps the earned tier, when the customer no longer qualifies for it
    /// (`last_evaluated_at` as for [`TierState::last_qualified`]).
    pub fn grace_until(
        &self,
        rules: &PolicyRules,
        last_evaluated_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        (rules.grace_months > 0 && self.earned_rank > 0).then(|| {
            add_months(
                self.last_qualified(last_evaluated_at).unwrap_or(self.since),
                rules.grace_months,
            )
        })
    }

    /// Marks the customer found below the earned tier at `now`, once: "last qualified" becomes
    /// the last evaluation that found them qualifying, and grace counts from it.
    fn lapse(&mut self, last_evaluated_at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        if self.lapsed_at.is_none() {
            self.last_qualified_at = self.last_qualified(last_evaluated_at);
            self.lapsed_at = Some(now);
        }
    }

    /// Applies `change` and records a decision when the tier shown moved.
    fn decide(
        &mut self,
        now: DateTime<Utc>,
        reason: Reason,
        totals: Totals,
        change: impl FnOnce(&mut Self),
    ) -> Option<Decision> {
        let before = self.shown_rank(now);
        change(self);
        let after = self.shown_rank(now);
        (before != after).then(|| {
            self.since = now;
            Decision {
                from_rank: before,
                to_rank: after,
                reason,
                totals,
                at: now,
                override_note: None,
            }
        })
    }

    /// After an activity was counted: upgrade at once when the customer qualifies higher. Never
    /// downgrades.
    pub fn after_activity(
        &mut self,
        rules: &PolicyRules,
        totals: Totals,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        self.raise_to_qualified(rules, totals, now, Reason::Qualified)
    }

    /// After a new policy was activated: upgrades at once; downgrades wait for an evaluation,
    /// but one who no longer qualifies has lapsed (grace counts from before the change).
    /// `last_evaluated_at` as for [`TierState::last_qualified`].
    pub fn after_policy_change(
        &mut self,
        rules: &PolicyRules,
        totals: Totals,
        now: DateTime<Utc>,
        last_evaluated_at: Option<DateTime<Utc>>,
    ) -> Option<Decision> {
        if qualified_rank(rules, &totals) < self.earned_rank {
            self.lapse(last_evaluated_at, now);
            return None;
        }
        self.keep_or_raise(rules, totals, now, Reason::PolicyChange)
    }

    /// A pass that finds the customer qualified for at least the earned tier. Keeping it writes
    /// nothing (the pass itself is their last qualified time once it has finished), unless they
    /// had lapsed: then their grace is over.
    fn keep_or_raise(
        &mut self,
        rules: &PolicyRules,
        totals: Totals,
        now: DateTime<Utc>,
        reason: Reason,
    ) -> Option<Decision> {
        if qualified_rank(rules, &totals) == self.earned_rank {
            if self.lapsed_at.take().is_some() {
                self.last_qualified_at = Some(now);
            }
            return None;
        }
        self.raise_to_qualified(rules, totals, now, reason)
    }

    fn raise_to_qualified(
        &mut self,
        rules: &PolicyRules,
        totals: Totals,
        now: DateTime<Utc>,
        reason: Reason,
    ) -> Option<Decision> {
        let qualified = qualified_rank(rules, &totals);
        self.decide(now, reason, totals, |state| {
            if qualified >= state.earned_rank && qualified > 0 {
                state.last_qualified_at = Some(now);
                state.lapsed_at = None;
            }
            state.earned_rank = state.earned_rank.max(qualified);
        })
    }

    /// At a scheduled evaluation: upgrade if qualified higher; keep the tier while grace lasts;
    /// otherwise drop toward the qualified tier, at most `max_levels_dropped` levels.
    /// `last_evaluated_at` as for [`TierState::last_qualified`]. A customer who keeps qualifying
    /// for the earned tier is left untouched, so the run writes nothing for them.
    pub fn at_evaluation(
        &mut self,
        rules: &PolicyRules,
        totals: Totals,
        now: DateTime<Utc>,
        last_evaluated_at: Option<DateTime<Utc>>,
    ) -> Option<Decision> {
        let qualified = qualified_rank(rules, &totals);
        if qualified >= self.earned_rank {
            return self.keep_or_raise(rules, totals, now, Reason::Evaluation);
        }
        self.lapse(last_evaluated_at, now);
        let grace_until = self.grace_until(rules, last_evaluated_at);
        if grace_until.is_some_and(|until| now < until) {
            return None;
        }
        let reason = if grace_until.is_some() {
            Reason::GraceExpired
        } else {
            Reason::Evaluation
        };
        let floor = self
            .earned_rank
            .saturating_sub(rules.max_levels_dropped.unwrap_or(u32::MAX));
        self.decide(now, reason, totals, |state| {
            state.earned_rank = qualified.max(floor);
            // Landing on the tier the customer qualifies for starts its grace afresh; landing
            // above it (the drop limit) does not, so the next evaluation continues the descent.
            if state.earned_rank == qualified {
                state.lapsed_at = None;
                if qualified > 0 {
                    state.last_qualified_at = Some(now);
                }
            }
        })
    }

    /// An operator grants `manual` (replacing any earlier override). Always a decision, also
    /// when the tier shown stays the same: an operator's act is audited either way.
    pub fn set_override(
        &mut self,
        manual: Override,
        totals: Totals,
        now: DateTime<Utc>,
    ) -> Decision {
        let note = OverrideNote {
            operator: Some(manual.operator.clone()),
            reason: Some(manual.reason.clone()),
            expires_at: manual.until,
        };
        self.operator_change(totals, now, Reason::Override, note, |state| {
            state.manual = Some(manual);
        })
    }

    /// An operator ends the override now, for `reason`; always a decision, as
    /// [`TierState::set_override`], recorded as the override's end (`OverrideExpired`) with who
    /// ended it and why.
    pub fn clear_override(
        &mut self,
        operator: String,
        reason: String,
        totals: Totals,
        now: DateTime<Utc>,
    ) -> Decision {
        let note = OverrideNote {
            expires_at: self
                .manual
                .as_ref()
                .map_or(now, |manual| manual.until.min(now)),
            operator: Some(operator),
            reason: Some(reason),
        };
        self.operator_change(totals, now, Reason::OverrideExpired, note, |state| {
            state.manual = None;
        })
    }

    fn operator_change(
        &mut self,
        totals: Totals,
        now: DateTime<Utc>,
        reason: Reason,
        note: OverrideNote,
        change: impl FnOnce(&mut Self),
    ) -> Decision {
        let before = self.shown_rank(now);
        change(self);
        let after = self.shown_rank(now);
        if before != after {
            self.since = now;
        }
        Decision {
            from_rank: before,
            to_rank: after,
            reason,
            totals,
            at: now,
            override_note: Some(note),
        }
    }

    /// Removes an override whose end has passed; the decision is dated at the override's end,
    /// when the tier shown actually changed.
    pub fn expire_override(&mut self, totals: Totals, now: DateTime<Utc>) -> Option<Decision> {
        let manual = self.manual.take_if(|manual| manual.until <= now)?;
        (manual.rank != self.earned_rank).then(|| {
            self.since = manual.until;
            Decision {
                from_rank: manual.rank,
                to_rank: self.earned_rank,
                reason: Reason::OverrideExpired,
                totals,
                at: manual.until,
                override_note: Some(OverrideNote {
                    operator: None,
                    reason: None,
                    expires_at: manual.until,
                }),
            }
        })
    }
}

/// How far one requirement is from being met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequirementGap {
    /// The metric.
    pub metric: Metric,
    /// The threshold.
    pub threshold: i64,
    /// The value now (or projected).
    pub current: i64,
    /// What is missing; 0 when met.
    pub missing: i64,
}

fn gaps(rules: &PolicyRules, rank: u32, totals: &Totals) -> Vec<RequirementGap> {
    rules
        .rule(rank)
        .map(|rule| {
            rule.requirements
                .iter()
                .map(|r| {
                    let current = totals.value(r.metric);
                    RequirementGap {
                        metric: r.metric,
                        threshold: r.threshold,
                        current,
                        missing: (r.threshold - current).max(0),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the customer lacks for the tier above `rank`; `None` at the top of the ladder.
pub fn gap_to_next(
    rules: &PolicyRules,
    rank: u32,
    totals: &Totals,
) -> Option<(u32, Vec<RequirementGap>)> {
    let next = rank + 1;
    rules.rule(next).map(|_| (next, gaps(rules, next, totals)))
}

/// What keeping the earned tier at the next review takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The next scheduled run that reviews the customer (for a year window, the one at the
    /// year's close).
    pub evaluation_at: DateTime<Utc>,
    /// The window that run judges.
    pub window: MonthRange,
    /// Each requirement of the earned tier against the activity that will still be in that
    /// window (none at the base tier).
    pub requirements: Vec<RequirementGap>,
    /// Until when grace would keep the earned tier of a customer who stopped qualifying; `None`
    /// without grace or at the base tier.
    pub grace_until: Option<DateTime<Utc>>,
    /// Whether the tier shown is safe at that run whatever happens: the base tier, requirements
    /// already met, grace lasting past it, or an override that does.
    pub secured: bool,
    /// The lowest tier the customer could hold after that run (the drop limit respected);
    /// `None` when secured.
    pub lowest_possible_rank: Option<u32>,
}

/// What keeping the earned tier at `evaluation_at` takes, counting only the months that will
/// still be inside the window that evaluation judges; for every tier, the base included.
pub fn retention(
    rules: &PolicyRules,
    state: &TierState,
    buckets: &[Bucket],
    joined_at: DateTime<Utc>,
    evaluation_at: DateTime<Utc>,
    last_evaluated_at: Option<DateTime<Utc>>,
) -> Retention {
    let window = months_at(
        rules.window,
        judged_at(evaluation_at, rules.time_zone),
        rules.time_zone,
        joined_at,
    );
    let projected = Totals::over(buckets, window);
    let requirements = if state.earned_rank > 0 {
        gaps(rules, state.earned_rank, &projected)
    } else {
        Vec::new()
    };
    let grace_until = state.grace_until(rules, last_evaluated_at);
    let override_lasts = state
        .manual
        .as_ref()
        .is_some_and(|manual| manual.until > evaluation_at);
    let secured = state.earned_rank == 0
        || requirements.iter().all(|gap| gap.missing == 0)
        || grace_until.is_some_and(|until| evaluation_at < until)
        || override_lasts;
    let floor = state
        .earned_rank
        .saturating_sub(rules.max_levels_dropped.unwrap_or(u32::MAX));
    Retention {
        evaluation_at,
        window,
        requirements,
        grace_until,
        secured,
        lowest_possible_rank: (!secured).then(|| qualified_rank(rules, &projected).max(floor)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{month::Month, policy::tests::innisfree_policy, program::tests::innisfree};

    const WELCOME: u32 = 0;
    const GREEN: u32 = 1;
    const VIP: u32 = 2;
    const VVIP: u32 = 3;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn rules() -> PolicyRules {
        innisfree_policy().validate(&innisfree()).expect("valid")
    }

    fn spend(net_spend_minor: i64, purchases: i64) -> Totals {
        Totals {
            net_spend_minor,
            points: 0,
            purchases,
        }
    }

    #[test]
    fn the_highest_tier_whose_requirements_all_hold() {
        let rules = rules();
        assert_eq!(qualified_rank(&rules, &spend(99_999, 50)), WELCOME);
        assert_eq!(qualified_rank(&rules, &spend(100_000, 1)), GREEN);
        assert_eq!(
            qualified_rank(&rules, &spend(1_500_000, 9)),
            VIP,
            "VVIP also needs 10 purchases"
        );
        assert_eq!(qualified_rank(&rules, &spend(1_500_000, 10)), VVIP);
    }

    #[test]
    fn crossing_a_threshold_upgrades_at_once_and_a_refund_never_downgrades() {
        let rules = rules();
        let mut state = TierState::new_member(at("2026-01-05T00:00:00Z"));
        assert_eq!(
            state.after_activity(&rules, spend(50_000, 1), at("2026-02-01T00:00:00Z")),
            None
        );
        let decision = state
            .after_activity(&rules, spend(320_000, 2), at("2026-02-10T12:00:00Z"))
            .expect("upgrade");
        assert_eq!(
            (decision.from_rank, decision.to_rank, decision.reason),
            (WELCOME, VIP, Reason::Qualified)
        );
        assert_eq!(
            decision.totals,
            spend(320_000, 2),
            "the totals that decided it"
        );
        assert_eq!(state.since, at("2026-02-10T12:00:00Z"));
        // A refund brings spend under the VIP threshold: nothing happens until an evaluation.
        assert_eq!(
            state.after_activity(&rules, spend(250_000, 2), at("2026-02-11T00:00:00Z")),
            None
        );
        assert_eq!(state.shown_rank(at("2026-02-11T00:00:00Z")), VIP);
    }

    #[test]
    fn grace_keeps_a_tier_then_evaluations_drop_one_level_at_a_time() {
        let rules = rules();
        assert_eq!((rules.grace_months, rules.max_levels_dropped), (3, Some(1)));
        let mut state = TierState::new_member(at("2025-01-01T00:00:00Z"));
        state
            .after_activity(&rules, spend(1_200_000, 12), at("2025-06-15T00:00:00Z"))
            .expect("VVIP");
        assert_eq!(state.earned_rank, VVIP);
        // Evaluations within three months of last qualifying keep VVIP although spend is gone.
        assert_eq!(
            state.at_evaluation(&rules, spend(0, 0), at("2025-09-01T00:00:00Z"), None),
            None
        );
        assert_eq!(state.earned_rank, VVIP);
        // After the grace: one level at a time (VVIP → VIP), then VIP → GREEN, GREEN → WELCOME.
        let first = state
            .at_evaluation(&rules, spend(0, 0), at("2025-10-01T00:00:00Z"), None)
            .expect("drop");
        assert_eq!(
            (first.from_rank, first.to_rank, first.reason),
            (VVIP, VIP, Reason::GraceExpired)
        );
        let second = state
            .at_evaluation(&rules, spend(0, 0), at("2025-11-01T00:00:00Z"), None)
            .expect("drop");
        assert_eq!(second.to_rank, GREEN);
        let third = state
            .at_evaluation(&rules, spend(0, 0), at("2025-12-01T00:00:00Z"), None)
            .expect("drop");
        assert_eq!(third.to_rank, WELCOME);
        assert_eq!(
            state.at_evaluation(&rules, spend(0, 0), at("2026-01-01T00:00:00Z"), None),
            None
        );
    }

    #[test]
    fn a_drop_limited_landing_on_the_qualified_tier_starts_its_grace() {
        let rules = rules();
        let mut state = TierState::new_member(at("2025-01-01T00:00:00Z"));
        state
            .after_activity(&rules, spend(1_200_000, 12), at("2025-01-15T00:00:00Z"))
            .expect("VVIP");
        // After the grace, the customer qualifies for VIP: one level down lands exactly there.
        let drop = state
            .at_evaluation(&rules, spend(400_000, 3), at("2025-05-01T00:00:00Z"), None)
            .expect("drop");
        assert_eq!(drop.to_rank, VIP);
        // A month later they only qualify for GREEN, but VIP's own grace (from May) keeps it.
        assert_eq!(
            state.at_evaluation(&rules, spend(150_000, 1), at("2025-06-01T00:00:00Z"), None),
            None
        );
        assert_eq!(state.earned_rank, VIP);
    }

    #[test]
    fn an_evaluation_that_finds_the_customer_still_qualified_writes_nothing_and_renews_the_grace() {
        let rules = rules();
        let mut state = TierState::new_member(at("2025-01-01T00:00:00Z"));
        state
            .after_activity(&rules, spend(400_000, 3), at("2025-01-20T00:00:00Z"))
            .expect("VIP");
        // June's evaluation finds VIP still qualified: the state stays as it is ...
        let before = state.clone();
        assert_eq!(
            state.at_evaluation(&rules, spend(400_000, 3), at("2025-06-01T00:00:00Z"), None),
            None
        );
        assert_eq!(state, before, "nothing to write");
        // ... and once it has finished, it is the last time they qualified: grace counts from it.
        let june = Some(at("2025-06-01T00:00:00Z"));
        assert_eq!(state.last_qualified(june), june);
        assert_eq!(
            state.at_evaluation(&rules, spend(10, 1), at("2025-08-01T00:00:00Z"), june),
            None,
            "grace until September"
        );
        assert_eq!(
            (state.lapsed_at, state.last_qualified_at),
            (Some(at("2025-08-01T00:00:00Z")), june),
            "lapsed in August, last qualified in June"
        );
        // Later evaluations do not move it: the lapse is what they count from.
        let august = Some(at("2025-08-01T00:00:00Z"));
        let drop = state
            .at_evaluation(&rules, spend(10, 1), at("2025-09-01T00:00:00Z"), august)
            .expect("drop");
        assert_eq!(drop.to_rank, GREEN);
        assert_eq!(
            state.lapsed_at, august,
            "still below GREEN (the drop limit): the descent goes on"
        );
    }

    #[test]
    fn a_lapsed_customer_who_qualifies_again_is_no_longer_in_grace() {
        let rules = rules();
        let mut state = TierState::new_member(at("2025-01-01T00:00:00Z"));
        state
            .after_activity(&rules, spend(400_000, 3), at("2025-01-20T00:00:00Z"))
            .expect("VIP");
        let june = Some(at("2025-06-01T00:00:00Z"));
        state.at_evaluation(&rules, spend(10, 1), at("2025-07-01T00:00:00Z"), june);
        assert!(state.lapsed_at.is_some());
        // Back above VIP's threshold at August's evaluation: grace starts afresh from August.
        assert_eq!(
            state.at_evaluation(&rules, spend(300_000, 2), at("2025-08-01T00:00:00Z"), june),
            None
        );
        assert_eq!(
            (state.lapsed_at, state.last_qualified_at),
            (None, Some(at("2025-08-01T00:00:00Z")))
        );
        // A policy change they fall short of lapses them from their last evaluation, and
        // downgrades nobody.
        let august = Some(at("2025-08-01T00:00:00Z"));
        assert_eq!(
            state.after_policy_change(&rules, spend(0, 0), at("2025-08-20T00:00:00Z"), august),
            None
        );
        assert_eq!(
            (state.earned_rank, state.lapsed_at, state.last_qualified_at),
            (VIP, Some(at("2025-08-20T00:00:00Z")), august)
        );
    }

    #[test]
    fn without_grace_or_drop_limit_an_evaluation_drops_straight_to_the_qualified_tier() {
        let mut input = innisfree_policy();
        input.grace_months = 0;
        input.max_levels_dropped = None;
        let rules = input.validate(&innisfree()).expect("valid");
        let mut state = TierState::new_member(at("2025-01-01T00:00:00Z"));
        state
            .after_activity(&rules, spend(1_100_000, 11), at("2025-02-01T00:00:00Z"))
            .expect("VVIP");
        let drop = state
            .at_evaluation(&rules, spend(120_000, 2), at("2025-03-01T00:00:00Z"), None)
            .expect("drop");
        assert_eq!((drop.to_rank, drop.reason), (GREEN, Reason::Evaluation));
    }

    #[test]
    fn an_override_shows_its_tier_until_it_expires_by_itself() {
        let rules = rules();
        let mut state = TierState::new_member(at("2026-01-01T00:00:00Z"));
        let manual = Override {
            rank: VIP,
            until: at("2026-03-01T00:00:00Z"),
            reason: "service recovery".into(),
            operator: "agent-7".into(),
            set_at: at("2026-02-01T00:00:00Z"),
        };
        let granted = state.set_override(manual.clone(), spend(0, 0), at("2026-02-01T00:00:00Z"));
        assert_eq!((granted.to_rank, granted.reason), (VIP, Reason::Override));
        // Qualifying for GREEN meanwhile changes the earned tier, not the one shown.
        assert_eq!(
            state.after_activity(&rules, spend(150_000, 1), at("2026-02-10T00:00:00Z")),
            None
        );
        assert_eq!(state.shown_rank(at("2026-02-28T23:59:59Z")), VIP);
        assert_eq!(
            state.shown_rank(at("2026-03-01T00:00:00Z")),
            GREEN,
            "the override ends on its date"
        );
        // Granting the tier already shown is still audited.
        let again = state.set_override(manual, spend(0, 0), at("2026-02-20T00:00:00Z"));
        assert_eq!(
            (again.from_rank, again.to_rank, again.reason),
            (VIP, VIP, Reason::Override)
        );
        let expired = state
            .expire_override(spend(150_000, 1), at("2026-03-01T00:05:00Z"))
            .expect("expired");
        assert_eq!(
            (expired.from_rank, expired.to_rank, expired.reason),
            (VIP, GREEN, Reason::OverrideExpired)
        );
        assert_eq!(
            expired.at,
            at("2026-03-01T00:00:00Z"),
            "dated when it ended, not when noticed"
        );
        assert!(state.manual.is_none());
    }

    #[test]
    fn the_gap_to_the_next_tier_names_each_missing_requirement() {
        let rules = rules();
        let (next, gaps) = gap_to_next(&rules, VIP, &spend(700_000, 12)).expect("VVIP above");
        assert_eq!(next, VVIP);
        assert_eq!(
            gaps[0],
            RequirementGap {
                metric: Metric::NetSpend,
                threshold: 1_000_000,
                current: 700_000,
                missing: 300_000
            }
        );
        assert_eq!(gaps[1].missing, 0, "purchases already enough");
        assert_eq!(gap_to_next(&rules, VVIP, &spend(0, 0)), None);
    }

    #[test]
    fn retention_counts_only_months_still_in_the_window_at_the_next_evaluation() {
        let rules = rules();
        let seoul = chrono_tz::Asia::Seoul;
        let month = |y, m| Month::new(y, m).expect("month");
        let mut state = TierState::new_member(at("2025-01-01T00:00:00Z"));
        state
            .after_activity(&rules, spend(350_000, 2), at("2025-12-20T00:00:00Z"))
            .expect("VIP");
        // 250,000 spent in November 2025 and 100,000 in December 2025. The evaluation of
        // 2026-12-01 (Seoul) judges December 2025 to November 2026: November 2025 has left it.
        let buckets = [
            Bucket {
                month: month(2025, 11),
                net_spend_minor: 250_000,
                points: 0,
                purchases: 1,
            },
            Bucket {
                month: month(2025, 12),
                net_spend_minor: 100_000,
                points: 0,
                purchases: 1,
            },
        ];
        let evaluation_at = month(2026, 12).start_in(seoul) + chrono::Duration::hours(3);
        let kept = retention(
            &rules,
            &state,
            &buckets,
            at("2025-01-01T00:00:00Z"),
            evaluation_at,
            None,
        );
        assert_eq!(kept.requirements[0].current, 100_000);
        assert_eq!(
            kept.requirements[0].missing, 200_000,
            "needs 200,000 more to keep VIP"
        );
        assert_eq!(
            kept.grace_until,
            Some(at("2026-03-20T00:00:00Z")),
            "three months from the last time VIP was earned"
        );
        assert!(!kept.secured, "grace ended in March 2026");
        assert_eq!(kept.lowest_possible_rank, Some(GREEN));
        assert_eq!(kept.window.from, Some(month(2025, 12)));

        // An override lasting past the evaluation keeps the tier shown.
        let mut held = state.clone();
        held.manual = Some(Override {
            rank: VIP,
            until: evaluation_at + chrono::Duration::days(1),
            reason: "service recovery".into(),
            operator: "agent".into(),
            set_at: at("2026-11-01T00:00:00Z"),
        });
        let retention_held = retention(
            &rules,
            &held,
            &buckets,
            at("2025-01-01T00:00:00Z"),
            evaluation_at,
            None,
        );
        assert!(retention_held.secured);
        assert_eq!(retention_held.lowest_possible_rank, None);

        // The base tier is always kept, and says so.
        let base = TierState::new_member(at("2025-01-01T00:00:00Z"));
        let retention_base = retention(
            &rules,
            &base,
            &buckets,
            at("2025-01-01T00:00:00Z"),
            evaluation_at,
            None,
        );
        assert!(retention_base.secured && retention_base.requirements.is_empty());
        assert_eq!(
            (
                retention_base.grace_until,
                retention_base.lowest_possible_rank
            ),
            (None, None)
        );
    }
}
