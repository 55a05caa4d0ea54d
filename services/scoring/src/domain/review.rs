//! When an evaluation must look at a member again.
//!
//! Between two writes of a member's state, their buckets only change by purchases (which add)
//! and refunds (which the feed applies by writing the state again); time only takes months out
//! of the window. So whoever writes a state can tell, from the buckets it holds, the first month
//! at whose end a judgement would find the member below their earned tier: their *review
//! month*. Until then no run can change their tier, and a run reads only the members whose review
//! month has come, who have lapsed or whose override has ended, instead of summing every
//! member's window (docs/SCORING.md, "Evaluations and the scheduler"). A review month holds for
//! the policy version it was found under; under another (an activation) the member is read again.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    decision::qualified_rank,
    month::Month,
    policy::PolicyRules,
    schedule::{last_due, next_due},
    state::StoredState,
    window::{Bucket, Totals, judged_at, months_in, reviews_at_end_of},
};

/// How far ahead a review month is looked for: beyond the longest window that can still drop a
/// member (a year window closing up to two years on). A member whose tier holds that long (a
/// lifetime window, the base tier) has none.
const HORIZON_MONTHS: i32 = 36;

/// A member's review month and the policy version it was found under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Review {
    /// The policy version in force when it was found.
    pub policy_version_id: Uuid,
    /// The first month at whose end a judgement could lower the earned tier; `None`: never, with
    /// the buckets held.
    pub month: Option<Month>,
}

/// The earliest month a run still to come may judge at `now`, under `rules` activated at
/// `activated_at`, when the program's latest scheduled run that has ended was due at
/// `last_closed_due`: a run by hand judges the current month; the scheduler runs the last due
/// time once (when it came after the activation), and that run judges the month before its due
/// month. While it has not ended, its month is open; once it has, the next due time's is. A
/// review is looked for from here on. (A run overdue longer than that, after the scheduler was
/// down for a whole period, reads every member: `domain::evaluation`.)
pub fn first_open_month(
    rules: &PolicyRules,
    activated_at: Option<DateTime<Utc>>,
    last_closed_due: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Month {
    let zone = rules.time_zone;
    let current = Month::of(now, zone);
    let judged = |due: DateTime<Utc>| Month::of(judged_at(due, zone), zone);
    let pending = last_due(&rules.schedule, zone, now).filter(|due| {
        activated_at.is_some_and(|activated| *due > activated)
            && last_closed_due.is_none_or(|closed| closed < *due)
    });
    let scheduled = match pending {
        Some(due) => judged(due),
        None => {
            let next = next_due(&rules.schedule, zone, now);
            if next == DateTime::<Utc>::MAX_UTC {
                current
            } else {
                judged(next)
            }
        }
    };
    scheduled.min(current)
}

impl Review {
    /// The review of a member holding `earned_rank` with `buckets` (oldest first), who joined at
    /// `joined_at` (only a membership year reads it), from month `from` on, under `rules` of the
    /// policy version `policy_version_id`.
    pub fn of(
        rules: &PolicyRules,
        policy_version_id: Uuid,
        earned_rank: u32,
        buckets: &[Bucket],
        joined_at: DateTime<Utc>,
        from: Month,
    ) -> Self {
        let month = (earned_rank > 0)
            .then(|| {
                (0..=HORIZON_MONTHS)
                    .map(|ahead| from.plus(ahead))
                    .find(|month| {
                        // Judged at the month's last instant, as a run due the month after
                        // judges it; reckoned in months, since a first run reviews every member
                        // (placing each month's end in the zone was about an eighth of the
                        // service's CPU samples in a profile of one).
                        reviews_at_end_of(rules.window, *month, rules.time_zone, joined_at)
                            && qualified_rank(
                                rules,
                                &Totals::over(
                                    buckets,
                                    months_in(rules.window, *month, rules.time_zone, joined_at),
                                ),
                            ) < earned_rank
                    })
            })
            .flatten();
        Self {
            policy_version_id,
            month,
        }
    }

    /// Whether a run judging month `judged` under `policy_version_id` must read the member for
    /// their review: never reviewed, reviewed under another version, or their month has come.
    pub fn due(review: Option<&Self>, policy_version_id: Uuid, judged: Month) -> bool {
        review.is_none_or(|review| {
            review.policy_version_id != policy_version_id
                || review.month.is_some_and(|month| month <= judged)
        })
    }

    /// Whether a run judging month `judged` under `policy_version_id` at `now` must judge the
    /// member with `stored` state and `review`: their review under that version is due, they are
    /// not reviewed under it and the window the run judges gives them another tier than the one
    /// they earned (`judged_rank`, asked only then), they have lapsed (grace runs out by the
    /// clock), or their override has ended. Everyone else keeps their state: a judgement would
    /// leave it as it is. So a member not yet reviewed under the version in force who holds their
    /// tier is neither judged nor written (a first run under a policy writes only the members it
    /// changes), and the next run asks their window again: two subscripts of the running totals
    /// on their state in Postgres. (The Postgres store says the same in SQL,
    /// `storage/postgres/chunk_reads.rs`.)
    pub fn must_judge(
        stored: &StoredState,
        review: Option<&Self>,
        policy_version_id: Uuid,
        judged: Month,
        now: DateTime<Utc>,
        judged_rank: impl FnOnce() -> u32,
    ) -> bool {
        let reviewed = review.is_some_and(|review| review.policy_version_id == policy_version_id);
        let by_review = if reviewed {
            Self::due(review, policy_version_id, judged)
        } else {
            judged_rank() != stored.state.earned_rank
        };
        by_review
            || stored.state.lapsed_at.is_some()
            || stored
                .state
                .manual
                .as_ref()
                .is_some_and(|manual| manual.until <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        policy::{WindowKind, tests::innisfree_policy},
        program::tests::innisfree,
        window::months_at,
    };

    fn bucket(month: Month, net_spend_minor: i64) -> Bucket {
        Bucket {
            month,
            net_spend_minor,
            points: 0,
            purchases: 1,
        }
    }

    fn rules(window: WindowKind) -> PolicyRules {
        let mut document = innisfree_policy();
        document.window = Some(window);
        if window != WindowKind::RollingMonths(12) {
            // A year window is reviewed once a year: grace in whole years, or none.
            document.grace_months = 0;
        }
        document.validate(&innisfree()).expect("valid")
    }

    #[test]
    fn a_rolling_window_is_reviewed_when_the_spend_that_holds_the_tier_leaves_it() {
        let rules = rules(WindowKind::RollingMonths(12));
        let version = Uuid::now_v7();
        let now = Month::new(2026, 11).expect("month");
        let joined = DateTime::<Utc>::MIN_UTC;
        // What each tier needs in the Innisfree policy.
        let green = rules.tiers[1].requirements[0].threshold;
        let rank_of = |buckets: &[Bucket], month: Month| {
            let end = month.plus(1).start_in(rules.time_zone) - chrono::Duration::nanoseconds(1);
            qualified_rank(
                &rules,
                &Totals::over(
                    buckets,
                    months_at(rules.window, end, rules.time_zone, joined),
                ),
            )
        };
        // Half of GREEN in March, half in August: GREEN until the window loses March, at the
        // end of the next February.
        let buckets = [
            bucket(Month::new(2026, 3).expect("month"), green / 2),
            bucket(Month::new(2026, 8).expect("month"), green - green / 2),
        ];
        assert_eq!(rank_of(&buckets, now), 1, "GREEN now");
        let review = Review::of(&rules, version, 1, &buckets, joined, now);
        assert_eq!(
            review.month,
            Month::new(2027, 3),
            "the first month without March"
        );
        assert_eq!(rank_of(&buckets, Month::new(2027, 2).expect("month")), 1);
        assert_eq!(rank_of(&buckets, Month::new(2027, 3).expect("month")), 0);
        // Due from that month on, under that policy only; always due under another.
        assert!(!Review::due(
            Some(&review),
            version,
            Month::new(2027, 2).expect("month")
        ));
        assert!(Review::due(
            Some(&review),
            version,
            Month::new(2027, 3).expect("month")
        ));
        assert!(Review::due(Some(&review), Uuid::now_v7(), now));
        assert!(Review::due(None, version, now), "never reviewed");
        // Someone already below their tier is due now; the base tier never is.
        assert_eq!(
            Review::of(&rules, version, 2, &buckets, joined, now).month,
            Some(now)
        );
        let base = Review::of(&rules, version, 0, &buckets, joined, now);
        assert_eq!(base.month, None);
        assert!(!Review::due(Some(&base), version, now.plus(60)));
    }

    #[test]
    fn a_year_window_is_reviewed_at_the_end_of_the_year_that_fails() {
        let rules = rules(WindowKind::CalendarYear);
        let version = Uuid::now_v7();
        let green = rules.tiers[1].requirements[0].threshold;
        let joined = DateTime::<Utc>::MIN_UTC;
        // GREEN on 2026's spend: 2026 is judged at its end and holds; 2027 has nothing, so the
        // review is December 2027, not any month in between.
        let buckets = [bucket(Month::new(2026, 5).expect("month"), green)];
        let review = Review::of(
            &rules,
            version,
            1,
            &buckets,
            joined,
            Month::new(2026, 11).expect("month"),
        );
        assert_eq!(review.month, Month::new(2027, 12));
        // A lifetime window never drops anyone without a refund.
        let lifetime = rules_lifetime();
        assert_eq!(
            Review::of(
                &lifetime,
                version,
                1,
                &buckets,
                joined,
                Month::new(2026, 11).expect("month")
            )
            .month,
            None
        );
    }

    #[test]
    fn the_first_open_month_is_the_scheduled_runs_until_it_has_ended() {
        // Monthly on the 1st at 03:00 in Seoul.
        let rules = rules(WindowKind::RollingMonths(12));
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .expect("instant")
                .with_timezone(&Utc)
        };
        let november = Month::new(2026, 11).expect("month");
        let now = at("2026-11-20T00:00:00Z");
        let due = at("2026-10-31T18:00:00Z"); // 2026-11-01 03:00 KST
        let activated = Some(at("2026-01-01T00:00:00Z"));
        // November's run (judging October) has not ended: October is open.
        assert_eq!(
            first_open_month(&rules, activated, None, now),
            november.plus(-1)
        );
        assert_eq!(
            first_open_month(&rules, activated, Some(at("2026-09-30T18:00:00Z")), now),
            november.plus(-1),
            "only October's run ended"
        );
        // It has ended: the next run judges November, as a run by hand does.
        assert_eq!(
            first_open_month(&rules, activated, Some(due), now),
            november
        );
        // A policy activated after the due time never runs it.
        assert_eq!(
            first_open_month(&rules, Some(at("2026-11-05T00:00:00Z")), None, now),
            november
        );
    }

    fn rules_lifetime() -> PolicyRules {
        rules(WindowKind::Lifetime)
    }

    #[test]
    fn a_member_not_reviewed_under_the_policy_is_judged_only_when_the_window_moves_their_tier() {
        let (version, now) = (Uuid::now_v7(), Month::new(2026, 11).expect("month"));
        let instant = Utc::now();
        let gold = StoredState {
            state: crate::domain::decision::TierState {
                earned_rank: 2,
                ..crate::domain::decision::TierState::new_member(instant)
            },
            version: 3,
        };
        let elsewhere = Review {
            policy_version_id: Uuid::now_v7(),
            month: None,
        };
        for review in [None, Some(&elsewhere)] {
            let judged_with =
                |rank: u32| Review::must_judge(&gold, review, version, now, instant, move || rank);
            assert!(!judged_with(2), "holds the tier earned");
            assert!(judged_with(1), "below it");
            assert!(judged_with(3), "above it");
        }
        // Reviewed under the policy: the review says, and the window is not asked.
        let reviewed = Review {
            policy_version_id: version,
            month: now.plus(1).into(),
        };
        assert!(!Review::must_judge(
            &gold,
            Some(&reviewed),
            version,
            now,
            instant,
            || { panic!("asked") }
        ));
        let lapsed = StoredState {
            state: crate::domain::decision::TierState {
                lapsed_at: Some(instant),
                ..gold.state.clone()
            },
            version: 3,
        };
        assert!(Review::must_judge(
            &lapsed,
            None,
            version,
            now,
            instant,
            || 2
        ));
    }
}
