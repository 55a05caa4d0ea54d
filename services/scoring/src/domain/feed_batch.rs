//! A batch of feed events applied as a set. The keys the batch needs are found from its events;
//! the store loads and locks everything they name in a handful of statements ([`FeedKeys`] →
//! [`FeedLoad`]); the events are applied in memory, in feed order, by the same rules as one at a
//! time; and the store writes the outcome in a handful more ([`FeedWrites`]). The number of round
//! trips does not grow with the batch, which is what lets one consumer keep up with the import
//! rate of the customer service (docs/SCORING.md, "Applying the feed").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    accrual::{BucketDelta, CountedPurchase, UpstreamEvent, purchase_effect, refund_effect},
    decision::{Decision, TierState},
    in_force::ProgramInForce,
    lookup::range_bounds,
    month::Month,
    purchase_profile::{PurchaseProfile, day_of, start_of},
    review::Review,
    state::{HistoryRecord, HistoryWindow, Member, StoredState},
    window::{Bucket, MonthRange, Totals, months_at},
};
use crate::domain::ports::CustomerRecord;

pub use super::ports::feed::{FeedKeys, FeedLoad, FeedWrites, Pair, PurchaseDay, StateWrite};

/// The programs a purchase counts toward (its currency and scope).
fn counting<'a>(
    programs: &'a [ProgramInForce],
    purchase: &'a super::accrual::PurchaseEvent,
) -> impl Iterator<Item = &'a ProgramInForce> + 'a {
    programs.iter().filter(move |program| {
        program.program.currency == purchase.currency
            && program
                .program
                .scope
                .covers(&purchase.brand, &purchase.sales_channel)
    })
}

fn sorted<T: Ord>(set: BTreeSet<T>) -> Vec<T> {
    set.into_iter().collect()
}

impl FeedKeys {
    /// The keys of `events` under `programs`.
    pub fn of(events: &[UpstreamEvent], programs: &[ProgramInForce]) -> Self {
        let mut customers = BTreeSet::new();
        let mut states = BTreeSet::new();
        let mut purchases = BTreeSet::new();
        let mut refunds = BTreeSet::new();
        let everywhere = |customer: Uuid, states: &mut BTreeSet<Pair>| {
            for program in programs {
                states.insert((program.program.id, customer));
            }
        };
        for event in events {
            match event {
                UpstreamEvent::CustomerCreated { customer_id, .. }
                | UpstreamEvent::CustomerErased { customer_id } => {
                    customers.insert(*customer_id);
                    everywhere(*customer_id, &mut states);
                }
                UpstreamEvent::Purchase(purchase) => {
                    customers.insert(purchase.customer_id);
                    purchases.insert(purchase.activity_id);
                    for program in counting(programs, purchase) {
                        states.insert((program.program.id, purchase.customer_id));
                    }
                }
                UpstreamEvent::Refund {
                    activity_id,
                    customer_id,
                    purchase_id,
                    ..
                } => {
                    customers.insert(*customer_id);
                    purchases.insert(*purchase_id);
                    refunds.insert(*activity_id);
                    everywhere(*customer_id, &mut states);
                }
            }
        }
        Self {
            customers: sorted(customers),
            states: sorted(states),
            programs: programs
                .iter()
                .map(|program| (program.program.id, program.zone()))
                .collect(),
            purchases: sorted(purchases),
            refunds: sorted(refunds),
        }
    }

    /// The keys without the batch's own purchases, but for those its refunds name: for a load
    /// that takes every purchase of the batch for one not counted before, which the store's
    /// write refuses (`Aborted`) if one was ([`super::consumer::Replays`]).
    pub fn without_purchases_counted_before(mut self, events: &[UpstreamEvent]) -> Self {
        let refunded: HashSet<Uuid> = events
            .iter()
            .filter_map(|event| match event {
                UpstreamEvent::Refund { purchase_id, .. } => Some(*purchase_id),
                _ => None,
            })
            .collect();
        self.purchases
            .retain(|purchase| refunded.contains(purchase));
        self
    }
}

/// The days of `events`' purchases that fall strictly between the first and the last purchase
/// day of a profile `load` holds: whether such a day is a new purchase day is known only from
/// the pair's other purchases, which the store is asked for
/// ([`ScoringTx::known_purchase_days`](super::ports::tx::ScoringTx::known_purchase_days)). A
/// day outside the stored profile's span has no stored purchase; the batch knows its own.
pub fn days_between(
    events: &[UpstreamEvent],
    programs: &[ProgramInForce],
    load: &FeedLoad,
) -> Vec<PurchaseDay> {
    let spans: HashMap<Pair, (chrono::NaiveDate, chrono::NaiveDate)> = load
        .profiles
        .iter()
        .filter(|(_, profile)| profile.first_day < profile.last_day)
        .map(|(pair, profile)| (*pair, (profile.first_day, profile.last_day)))
        .collect();
    if spans.is_empty() {
        return Vec::new();
    }
    let mut days = BTreeSet::new();
    for event in events {
        let UpstreamEvent::Purchase(purchase) = event else {
            continue;
        };
        for program in counting(programs, purchase) {
            let pair = (program.program.id, purchase.customer_id);
            let Some((first, last)) = spans.get(&pair) else {
                continue;
            };
            let zone = program.zone();
            let day = day_of(purchase.occurred_at, zone);
            if *first < day && day < *last {
                days.insert(PurchaseDay {
                    pair,
                    day,
                    starts_at: start_of(day, zone),
                    ends_at: start_of(day.succ_opt().unwrap_or(day), zone),
                });
            }
        }
    }
    sorted(days)
}

/// What caused a decision, beyond the decision itself.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Origin {
    /// The window the decision's totals were summed over.
    pub window: Option<MonthRange>,
    /// The evaluation run that decided it.
    pub evaluation_run_id: Option<Uuid>,
    /// The purchase that decided it.
    pub activity_id: Option<Uuid>,
}

/// The history record of `decision` under the program's policy in force.
pub(crate) fn history_record(
    program: &ProgramInForce,
    customer_id: Uuid,
    decision: Decision,
    origin: Origin,
) -> HistoryRecord {
    let (policy_version_id, policy_version) = program
        .policy
        .as_ref()
        .map(|(version, _)| (version.id, version.version))
        .unzip();
    let window = origin
        .window
        .zip(program.policy.as_ref())
        .map(|(range, (_, rules))| {
            let (start, end) = range_bounds(range, rules);
            HistoryWindow { start, end }
        });
    let note = decision.override_note;
    HistoryRecord {
        id: Uuid::now_v7(),
        program_id: program.program.id,
        customer_id,
        from_rank: decision.from_rank,
        to_rank: decision.to_rank,
        reason: decision.reason,
        policy_version_id,
        policy_version,
        totals: decision.totals,
        occurred_at: decision.at,
        window,
        evaluation_run_id: origin.evaluation_run_id,
        activity_id: origin.activity_id,
        override_expires_at: note.as_ref().map(|note| note.expires_at),
        operator_name: note.as_ref().and_then(|note| note.operator.clone()),
        operator_reason: note.and_then(|note| note.reason),
    }
}

/// The batch being applied in memory.
struct Batch<'a> {
    programs: &'a [ProgramInForce],
    now: DateTime<Utc>,
    members: HashMap<Uuid, Member>,
    changed_members: BTreeSet<Uuid>,
    /// States by pair, with whether they are new.
    states: HashMap<Pair, (StoredState, bool)>,
    touched: BTreeSet<Pair>,
    /// Buckets of the pairs purchases may upgrade, oldest month first.
    buckets: HashMap<Pair, Vec<Bucket>>,
    /// Counted purchases by (program, purchase): loaded ones and the batch's own.
    counted: HashMap<Pair, CountedPurchase>,
    loaded_counted: HashSet<Pair>,
    new_counted: Vec<Pair>,
    refunded: BTreeSet<Pair>,
    applied: HashSet<Pair>,
    new_applied: Vec<Pair>,
    deltas: BTreeMap<(Pair, Month), BucketDelta>,
    /// The months of the buckets the store held when the batch loaded.
    stored_months: HashSet<(Pair, Month)>,
    history: Vec<HistoryRecord>,
    open_months: HashMap<Uuid, Month>,
    /// Purchase profiles of the batch's pairs, as loaded and then added to.
    profiles: HashMap<Pair, PurchaseProfile>,
    /// Profiles added to in place.
    added_profiles: BTreeSet<Pair>,
    /// The first and last purchase day of each loaded profile (stored before the batch).
    stored_spans: HashMap<Pair, (chrono::NaiveDate, chrono::NaiveDate)>,
    /// Whether the store was asked which days between a stored profile's first and last are
    /// purchase days ([`days_between`]); if not, a purchase on such a day is counted again.
    days_asked: bool,
    /// Profiles the store counts again after writing the batch.
    recounted_profiles: BTreeSet<Pair>,
    /// Days known to be purchase days of a pair: each loaded profile's first and last, the
    /// stored ones between them the store found ([`days_between`]), and those the batch added.
    purchase_days: HashSet<(Pair, chrono::NaiveDate)>,
}

/// Applies `events` in feed order to what `load` holds; returns what to write.
pub fn apply(
    events: &[UpstreamEvent],
    programs: &[ProgramInForce],
    load: FeedLoad,
    now: DateTime<Utc>,
) -> FeedWrites {
    let mut buckets: HashMap<Pair, Vec<Bucket>> = HashMap::new();
    let stored_months = load
        .buckets
        .iter()
        .map(|(pair, bucket)| (*pair, bucket.month))
        .collect();
    for (pair, bucket) in load.buckets {
        buckets.entry(pair).or_default().push(bucket);
    }
    for list in buckets.values_mut() {
        list.sort_unstable_by_key(|bucket| bucket.month);
    }
    let counted: HashMap<Pair, CountedPurchase> = load
        .counted
        .into_iter()
        .map(|(program, purchase)| ((program, purchase.activity_id), purchase))
        .collect();
    let mut batch = Batch {
        programs,
        now,
        members: load
            .members
            .into_iter()
            .map(|member| (member.customer_id, member))
            .collect(),
        changed_members: BTreeSet::new(),
        states: load
            .states
            .into_iter()
            .map(|(pair, stored)| (pair, (stored, false)))
            .collect(),
        touched: BTreeSet::new(),
        buckets,
        loaded_counted: counted.keys().copied().collect(),
        counted,
        new_counted: Vec::new(),
        refunded: BTreeSet::new(),
        applied: load.applied_refunds.into_iter().collect(),
        new_applied: Vec::new(),
        deltas: BTreeMap::new(),
        stored_months,
        history: Vec::new(),
        open_months: load.open_months.into_iter().collect(),
        days_asked: load.known_purchase_days.is_some(),
        purchase_days: load
            .profiles
            .iter()
            .flat_map(|(pair, profile)| [(*pair, profile.first_day), (*pair, profile.last_day)])
            .chain(load.known_purchase_days.into_iter().flatten())
            .collect(),
        stored_spans: load
            .profiles
            .iter()
            .map(|(pair, profile)| (*pair, (profile.first_day, profile.last_day)))
            .collect(),
        profiles: load.profiles.into_iter().collect(),
        added_profiles: BTreeSet::new(),
        recounted_profiles: BTreeSet::new(),
    };
    for event in events {
        batch.event(event);
    }
    batch.into_writes()
}

impl Batch<'_> {
    fn event(&mut self, event: &UpstreamEvent) {
        match event {
            UpstreamEvent::CustomerCreated {
                customer_id,
                joined_at,
            } => self.created(*customer_id, *joined_at),
            UpstreamEvent::CustomerErased { customer_id } => self.erased(*customer_id),
            UpstreamEvent::Purchase(purchase) => self.purchase(purchase),
            UpstreamEvent::Refund {
                activity_id,
                customer_id,
                purchase_id,
                amount_minor,
            } => self.refund(*activity_id, *customer_id, *purchase_id, *amount_minor),
        }
    }

    fn set_member(&mut self, member: Member) {
        self.members.insert(member.customer_id, member);
        self.changed_members.insert(member.customer_id);
    }

    /// The member; one the feed has not introduced yet becomes a provisional member who joined
    /// at `seen_at` (the Created event corrects the join time later).
    fn member(&mut self, customer_id: Uuid, seen_at: DateTime<Utc>) -> Member {
        if let Some(member) = self.members.get(&customer_id) {
            return *member;
        }
        let member = Member {
            customer_id,
            joined_at: seen_at,
            erased: false,
        };
        self.set_member(member);
        member
    }

    /// The state of `pair`; a new member gets the base tier since joining.
    fn state(&mut self, pair: Pair, seen_at: DateTime<Utc>) -> &mut StoredState {
        let member = self.member(pair.1, seen_at);
        &mut self
            .states
            .entry(pair)
            .or_insert_with(|| {
                (
                    StoredState {
                        state: TierState::new_member(member.joined_at),
                        version: 0,
                    },
                    true,
                )
            })
            .0
    }

    /// Marks the record of `pair` changed (its version is raised, so cached lookups are
    /// replaced), creating its state if needed.
    fn touch(&mut self, pair: Pair) {
        self.state(pair, self.now);
        self.touched.insert(pair);
    }

    fn touch_everywhere(&mut self, customer_id: Uuid) {
        for index in 0..self.programs.len() {
            self.touch((self.programs[index].program.id, customer_id));
        }
    }

    fn created(&mut self, customer_id: Uuid, joined_at: DateTime<Utc>) {
        let provisional = self.members.get(&customer_id).copied();
        self.set_member(Member {
            customer_id,
            joined_at: provisional.map_or(joined_at, |member| member.joined_at.min(joined_at)),
            erased: provisional.is_some_and(|member| member.erased),
        });
        // A provisional member (a purchase came first) joined when first seen: the Created event
        // moves that earlier, which changes the windows a lookup shows.
        if provisional.is_some_and(|member| member.joined_at > joined_at) {
            self.touch_everywhere(customer_id);
        }
    }

    fn erased(&mut self, customer_id: Uuid) {
        let joined_at = self
            .members
            .get(&customer_id)
            .map_or(self.now, |member| member.joined_at);
        self.set_member(Member {
            customer_id,
            joined_at,
            erased: true,
        });
        // Lookups see the erasure.
        self.touch_everywhere(customer_id);
    }

    fn add_to_bucket(&mut self, pair: Pair, delta: BucketDelta) {
        let total = self
            .deltas
            .entry((pair, delta.month))
            .or_insert(BucketDelta {
                month: delta.month,
                net_spend_minor: 0,
                points: 0,
                purchases: 0,
            });
        total.net_spend_minor += delta.net_spend_minor;
        total.points += delta.points;
        total.purchases += delta.purchases;
        // The buckets of every pair the batch may touch were loaded, so they are whole when a
        // purchase sums them and when the pair's record is written to the cache.
        delta.add_to(self.buckets.entry(pair).or_default());
    }

    fn purchase(&mut self, purchase: &super::accrual::PurchaseEvent) {
        let programs = self.programs;
        for program in counting(programs, purchase) {
            let pair = (program.program.id, purchase.customer_id);
            let member = self.member(purchase.customer_id, purchase.occurred_at);
            let shown = self
                .state(pair, purchase.occurred_at)
                .state
                .shown_rank(purchase.occurred_at);
            let rate = program
                .policy
                .as_ref()
                .and_then(|(_, rules)| rules.rule(shown))
                .map_or(0, |rule| rule.points_earn_rate_bps);
            let Some((counted, delta)) =
                purchase_effect(&program.program, program.zone(), rate, purchase)
            else {
                continue;
            };
            let key = (program.program.id, purchase.activity_id);
            if self.counted.contains_key(&key) {
                // A replay: counted the first time.
                continue;
            }
            self.counted.insert(key, counted);
            self.new_counted.push(key);
            self.add_to_bucket(pair, delta);
            self.add_to_profile(pair, purchase, program.zone());
            if let Some((_, rules)) = &program.policy {
                let range = months_at(rules.window, self.now, rules.time_zone, member.joined_at);
                let totals = self
                    .buckets
                    .get(&pair)
                    .map_or_else(Totals::default, |buckets| Totals::over(buckets, range));
                let now = self.now;
                let decision = self
                    .state(pair, purchase.occurred_at)
                    .state
                    .after_activity(rules, totals, now);
                if let Some(decision) = decision {
                    let origin = Origin {
                        window: Some(range),
                        activity_id: Some(purchase.activity_id),
                        evaluation_run_id: None,
                    };
                    self.history.push(history_record(
                        program,
                        purchase.customer_id,
                        decision,
                        origin,
                    ));
                }
            }
            self.touched.insert(pair);
        }
    }

    fn refund(&mut self, refund_id: Uuid, customer_id: Uuid, purchase_id: Uuid, amount: i64) {
        for index in 0..self.programs.len() {
            let program_id = self.programs[index].program.id;
            let Some(counted) = self.counted.get_mut(&(program_id, purchase_id)) else {
                continue;
            };
            if !self.applied.insert((program_id, refund_id)) {
                // A replay: applied the first time.
                continue;
            }
            self.new_applied.push((program_id, refund_id));
            let (refunded, delta) = refund_effect(counted, amount);
            counted.refunded_minor = refunded;
            self.refunded.insert((program_id, purchase_id));
            // Which days still count, and from when recency runs, depends on the other
            // purchases.
            self.recounted_profiles.insert((program_id, customer_id));
            // No decision (refunds never lower a tier), but the record changed.
            self.add_to_bucket((program_id, customer_id), delta);
            self.touch((program_id, customer_id));
        }
    }

    /// Adds a counted purchase to the pair's profile in place, or leaves the profile to be
    /// counted again when it cannot be (a refund in the batch, or a purchase before a first
    /// day whose spend is not kept).
    fn add_to_profile(
        &mut self,
        pair: Pair,
        purchase: &super::accrual::PurchaseEvent,
        zone: chrono_tz::Tz,
    ) {
        // Only purchases not refunded in full count, as everywhere else: one of nothing never
        // does.
        if purchase.amount_minor <= 0 || self.recounted_profiles.contains(&pair) {
            return;
        }
        let day = day_of(purchase.occurred_at, zone);
        let known = self.purchase_days.contains(&(pair, day));
        let unasked = !self.days_asked
            && self
                .stored_spans
                .get(&pair)
                .is_some_and(|(first, last)| *first < day && day < *last);
        let added = match self.profiles.get_mut(&pair) {
            // A day between the first and the last is a purchase day if a stored purchase is
            // on it (the store said so) or one of this batch's; outside the stored span only
            // the batch's can be.
            Some(profile) => profile
                .add_knowing(purchase.occurred_at, purchase.amount_minor, zone, |_| {
                    (known || !unasked).then_some(known)
                })
                .is_ok(),
            None => {
                self.profiles.insert(
                    pair,
                    PurchaseProfile::first(purchase.occurred_at, purchase.amount_minor, zone),
                );
                true
            }
        };
        if added {
            self.added_profiles.insert(pair);
            self.purchase_days.insert((pair, day));
        } else {
            self.recounted_profiles.insert(pair);
        }
    }

    /// The review of `pair`'s state after the batch, from its buckets (all loaded).
    fn review(&self, pair: Pair, stored: &StoredState) -> Option<Review> {
        let program = self.programs.iter().find(|p| p.program.id == pair.0)?;
        let (version, rules) = program.policy.as_ref()?;
        let joined_at = self
            .members
            .get(&pair.1)
            .map_or(self.now, |member| member.joined_at);
        Some(Review::of(
            rules,
            version.id,
            stored.state.earned_rank,
            self.buckets.get(&pair).map_or(&[][..], Vec::as_slice),
            joined_at,
            self.open_months
                .get(&pair.0)
                .copied()
                .unwrap_or_else(|| Month::of(self.now, rules.time_zone).plus(-1)),
        ))
    }

    fn into_writes(mut self) -> FeedWrites {
        let members = self
            .changed_members
            .iter()
            .filter_map(|id| self.members.get(id).copied())
            .collect();
        let counted = self
            .new_counted
            .iter()
            .filter_map(|key| Some((key.0, self.counted.get(key)?.clone())))
            .collect();
        let refunded = self
            .refunded
            .iter()
            .filter(|key| self.loaded_counted.contains(key))
            .filter_map(|key| Some((key.0, key.1, self.counted.get(key)?.refunded_minor)))
            .collect();
        let touched = std::mem::take(&mut self.touched);
        let states: Vec<StateWrite> = touched
            .iter()
            .filter_map(|pair| {
                let (stored, is_new) = self.states.remove(pair)?;
                let review = self.review(*pair, &stored);
                Some(StateWrite {
                    pair: *pair,
                    stored,
                    is_new,
                    review,
                })
            })
            .collect();
        let records = states
            .iter()
            .filter_map(|write| {
                let (program_id, customer_id) = write.pair;
                Some((
                    program_id,
                    CustomerRecord {
                        member: *self.members.get(&customer_id)?,
                        state: Some(write.saved()),
                        buckets: self.buckets.remove(&write.pair).unwrap_or_default(),
                    },
                ))
            })
            .collect();
        let zone_of = |program_id: Uuid| {
            self.programs
                .iter()
                .find(|program| program.program.id == program_id)
                .map_or(chrono_tz::Tz::UTC, ProgramInForce::zone)
        };
        let recounted_profiles = self
            .recounted_profiles
            .iter()
            .map(|pair| (*pair, zone_of(pair.0)))
            .collect();
        let (profiles, new_profiles) = self
            .added_profiles
            .iter()
            .filter(|pair| !self.recounted_profiles.contains(pair))
            .filter_map(|pair| Some((*pair, *self.profiles.get(pair)?)))
            .partition(|(pair, _)| self.stored_spans.contains_key(pair));
        let (buckets, new_buckets) = self
            .deltas
            .into_iter()
            .partition::<Vec<_>, _>(|(key, _)| self.stored_months.contains(key));
        let delta_of = |((pair, _), delta): ((Pair, Month), BucketDelta)| (pair, delta);
        FeedWrites {
            members,
            counted,
            refunded,
            applied_refunds: self.new_applied,
            buckets: buckets.into_iter().map(delta_of).collect(),
            new_buckets: new_buckets.into_iter().map(delta_of).collect(),
            states,
            history: self.history,
            profiles,
            new_profiles,
            recounted_profiles,
            records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        accrual::PurchaseEvent,
        policy::tests::innisfree_policy,
        program::tests::innisfree,
        versions::{PolicyStatus, PolicyVersion},
    };

    const GREEN: u32 = 1;
    const VIP: u32 = 2;

    fn program() -> ProgramInForce {
        let program = innisfree();
        let mut document = innisfree_policy();
        document.tiers[1].points_earn_rate_bps = 100;
        document.tiers[2].points_earn_rate_bps = 300;
        let rules = document.clone().validate(&program).expect("valid");
        let now = Utc::now();
        let version = PolicyVersion {
            id: Uuid::now_v7(),
            program_id: program.id,
            version: 1,
            status: PolicyStatus::Active,
            document,
            description: String::new(),
            revision: 1,
            created_by: "test".into(),
            created_at: now,
            updated_at: now,
            activated_by: None,
            activated_at: None,
            retired_by: None,
            retired_at: None,
        };
        ProgramInForce {
            program,
            policy: Some((version, rules)),
        }
    }

    fn purchase(customer_id: Uuid, amount_minor: i64, now: DateTime<Utc>) -> UpstreamEvent {
        UpstreamEvent::Purchase(PurchaseEvent {
            activity_id: Uuid::now_v7(),
            customer_id,
            amount_minor,
            currency: "KRW".into(),
            brand: "innisfree".into(),
            sales_channel: "store".into(),
            occurred_at: now - chrono::Duration::hours(1),
        })
    }

    /// Noon of `day` March 2026 in `zone`.
    fn noon_in_march(day: u32, zone: chrono_tz::Tz) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2026, 3, day)
            .and_then(|date| date.and_hms_opt(12, 0, 0))
            .and_then(|noon| chrono::TimeZone::from_local_datetime(&zone, &noon).single())
            .expect("noon")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_store_is_asked_only_about_days_strictly_between_a_stored_profiles_first_and_last() {
        let programs = [program()];
        let zone = programs[0].zone();
        let at = |day: u32| noon_in_march(day, zone) + chrono::Duration::hours(1);
        let (stored, new) = (Uuid::now_v7(), Uuid::now_v7());
        let pair = (programs[0].program.id, stored);
        let mut profile = PurchaseProfile::first(at(1), 1_000, zone);
        profile.add(at(10), 1_000, zone).expect("a later day");
        let load = FeedLoad {
            profiles: vec![(pair, profile)],
            ..FeedLoad::default()
        };
        // `purchase` dates a purchase an hour before the instant it is given.
        let events = [
            purchase(stored, 5_000, at(5)),
            purchase(stored, 5_000, at(5)),
            purchase(stored, 5_000, at(1)),
            purchase(stored, 5_000, at(10)),
            purchase(stored, 5_000, at(12)),
            purchase(stored, 5_000, at(3)),
            purchase(new, 5_000, at(5)),
        ];
        let days = days_between(&events, &programs, &load);
        let asked: Vec<(Pair, u32)> = days
            .iter()
            .map(|day| (day.pair, chrono::Datelike::day(&day.day)))
            .collect();
        assert_eq!(asked, [(pair, 3), (pair, 5)], "each day once, in order");
        for day in &days {
            assert_eq!(day.starts_at, start_of(day.day, zone));
            assert_eq!(day_of(day.starts_at, zone), day.day);
            assert_eq!(day_of(day.ends_at, zone), day.day.succ_opt().expect("next"));
            assert_eq!(
                day_of(day.ends_at - chrono::Duration::microseconds(1), zone),
                day.day
            );
        }
    }

    #[test]
    fn a_day_between_is_added_in_place_as_the_store_says_and_counted_again_if_it_was_not_asked() {
        let programs = [program()];
        let zone = programs[0].zone();
        let noon = |day: u32| noon_in_march(day, zone);
        let customer = Uuid::now_v7();
        let pair = (programs[0].program.id, customer);
        let mut stored = PurchaseProfile::first(noon(1), 1_000, zone);
        stored.add(noon(10), 2_000, zone).expect("a later day");
        // `purchase` dates a purchase an hour before the instant it is given.
        let events = [purchase(
            customer,
            5_000,
            noon(5) + chrono::Duration::hours(1),
        )];
        let fifth = chrono::NaiveDate::from_ymd_opt(2026, 3, 5).expect("day");
        let applied = |known: Option<Vec<(Pair, chrono::NaiveDate)>>| {
            let load = FeedLoad {
                profiles: vec![(pair, stored)],
                known_purchase_days: known,
                ..FeedLoad::default()
            };
            apply(&events, &programs, load, noon(20))
        };

        let not_asked = applied(None);
        assert!(not_asked.profiles.is_empty());
        assert_eq!(not_asked.recounted_profiles, [(pair, zone)]);

        let new_day = applied(Some(Vec::new()));
        assert!(new_day.recounted_profiles.is_empty());
        let [(written, profile)] = new_day.profiles.as_slice() else {
            panic!("one profile: {:?}", new_day.profiles);
        };
        assert_eq!(*written, pair);
        assert_eq!(
            (profile.purchase_days, profile.repeat_spend_minor),
            (3, 7_000)
        );

        let known_day = applied(Some(vec![(pair, fifth)]));
        let [(_, profile)] = known_day.profiles.as_slice() else {
            panic!("one profile: {:?}", known_day.profiles);
        };
        assert_eq!(
            (profile.purchase_days, profile.repeat_spend_minor),
            (2, 7_000)
        );
        assert!(known_day.new_profiles.is_empty(), "it was stored");
    }

    fn activity_id(event: &UpstreamEvent) -> Uuid {
        match event {
            UpstreamEvent::Purchase(purchase) => purchase.activity_id,
            other => panic!("not a purchase: {other:?}"),
        }
    }

    #[test]
    fn purchases_of_one_batch_upgrade_in_feed_order_at_the_rate_of_the_tier_shown() {
        let programs = [program()];
        let id = programs[0].program.id;
        let (customer, now) = (Uuid::now_v7(), Utc::now());
        let events = [
            purchase(customer, 150_000, now),
            purchase(customer, 200_000, now),
            purchase(customer, 10_000, now),
        ];
        let keys = FeedKeys::of(&events, &programs);
        assert_eq!(keys.states, [(id, customer)]);
        let writes = apply(&events, &programs, FeedLoad::default(), now);

        assert_eq!(
            writes
                .members
                .iter()
                .map(|m| m.customer_id)
                .collect::<Vec<_>>(),
            [customer],
            "a provisional member"
        );
        let ranks: Vec<(u32, u32)> = writes
            .history
            .iter()
            .map(|r| (r.from_rank, r.to_rank))
            .collect();
        assert_eq!(ranks, [(0, GREEN), (GREEN, VIP)], "two upgrades, in order");
        let points: Vec<i64> = writes.counted.iter().map(|(_, p)| p.points).collect();
        assert_eq!(
            points,
            [0, 2_000, 300],
            "each purchase earns at the rate of the tier shown when it is applied"
        );
        let [state] = writes.states.as_slice() else {
            panic!("one state: {:?}", writes.states);
        };
        assert!(state.is_new);
        assert_eq!(state.stored.state.earned_rank, VIP);
        assert!(writes.buckets.is_empty(), "the store held no bucket");
        let [(_, bucket)] = writes.new_buckets.as_slice() else {
            panic!("one new bucket: {:?}", writes.new_buckets);
        };
        assert_eq!(
            (bucket.net_spend_minor, bucket.purchases, bucket.points),
            (360_000, 3, 2_300),
            "one bucket write per month, the deltas summed"
        );
    }

    #[test]
    fn replays_and_refunds_count_once_and_a_refund_nets_a_purchase_of_the_same_batch() {
        let programs = [program()];
        let id = programs[0].program.id;
        let (customer, now) = (Uuid::now_v7(), Utc::now());
        let first = purchase(customer, 50_000, now);
        let replayed = first.clone();
        let refund_id = Uuid::now_v7();
        let refund = UpstreamEvent::Refund {
            activity_id: refund_id,
            customer_id: customer,
            purchase_id: activity_id(&first),
            amount_minor: 20_000,
        };
        let events = [first, replayed, refund.clone(), refund];
        let writes = apply(&events, &programs, FeedLoad::default(), now);
        let [(_, counted)] = writes.counted.as_slice() else {
            panic!("counted once: {:?}", writes.counted);
        };
        assert_eq!(counted.refunded_minor, 20_000, "inserted with its refund");
        assert!(writes.refunded.is_empty(), "nothing loaded was refunded");
        assert_eq!(writes.applied_refunds, [(id, refund_id)]);
        assert_eq!(writes.new_buckets[0].1.net_spend_minor, 30_000);

        // The same events again, now that the store holds their effects: nothing changes.
        let load = FeedLoad {
            members: writes.members.clone(),
            counted: writes.counted.clone(),
            applied_refunds: writes.applied_refunds.clone(),
            ..FeedLoad::default()
        };
        let again = apply(&events, &programs, load, now);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_month_the_store_holds_a_bucket_for_is_added_to_and_another_inserted() {
        let programs = [program()];
        let zone = programs[0].zone();
        let customer = Uuid::now_v7();
        let pair = (programs[0].program.id, customer);
        let now = noon_in_march(20, zone);
        let stored = Month::of(now, zone).plus(-1);
        let load = FeedLoad {
            buckets: vec![(
                pair,
                Bucket {
                    month: stored,
                    net_spend_minor: 10_000,
                    points: 0,
                    purchases: 1,
                },
            )],
            ..FeedLoad::default()
        };
        let events = [
            purchase(customer, 5_000, now - chrono::Duration::days(30)),
            purchase(customer, 7_000, now),
            purchase(customer, 1_000, now),
        ];
        let writes = apply(&events, &programs, load, now);
        let months = |deltas: &[(Pair, BucketDelta)]| -> Vec<(Month, i64)> {
            deltas
                .iter()
                .map(|(at, delta)| {
                    assert_eq!(*at, pair);
                    (delta.month, delta.net_spend_minor)
                })
                .collect()
        };
        assert_eq!(months(&writes.buckets), [(stored, 5_000)], "added to");
        assert_eq!(
            months(&writes.new_buckets),
            [(Month::of(now, zone), 8_000)],
            "inserted once, with both purchases of its month"
        );
    }

    #[test]
    fn every_profile_a_batch_writes_or_recounts_has_its_state_written_with_it() {
        let programs = [program()];
        let zone = programs[0].zone();
        let now = noon_in_march(20, zone);
        let (first, stored, refunded) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let id = programs[0].program.id;
        let load = FeedLoad {
            profiles: vec![(
                (id, stored),
                PurchaseProfile::first(now - chrono::Duration::days(40), 3_000, zone),
            )],
            ..FeedLoad::default()
        };
        let bought = purchase(refunded, 9_000, now - chrono::Duration::days(2));
        let UpstreamEvent::Purchase(ref bought_event) = bought else {
            panic!("a purchase");
        };
        let events = [
            purchase(first, 5_000, now),
            purchase(stored, 4_000, now),
            bought.clone(),
            UpstreamEvent::Refund {
                activity_id: Uuid::now_v7(),
                customer_id: refunded,
                purchase_id: bought_event.activity_id,
                amount_minor: 9_000,
            },
        ];
        let writes = apply(&events, &programs, load, now);
        let states: BTreeSet<Pair> = writes.states.iter().map(|write| write.pair).collect();
        let profiles: BTreeSet<Pair> = writes
            .profiles
            .iter()
            .chain(&writes.new_profiles)
            .map(|(pair, _)| *pair)
            .chain(writes.recounted_profiles.iter().map(|(pair, _)| *pair))
            .collect();
        assert_eq!(
            profiles,
            [(id, first), (id, stored), (id, refunded)].into(),
            "each kind of profile write is here"
        );
        assert!(
            profiles.is_subset(&states),
            "profiles {profiles:?}, states {states:?}"
        );
    }

    #[test]
    fn keys_without_purchases_counted_before_keep_those_refunds_name() {
        let programs = [program()];
        let (customer, now) = (Uuid::now_v7(), Utc::now());
        let (bought, refunded) = (purchase(customer, 5_000, now), Uuid::now_v7());
        let events = [
            bought.clone(),
            UpstreamEvent::Refund {
                activity_id: Uuid::now_v7(),
                customer_id: customer,
                purchase_id: refunded,
                amount_minor: 1_000,
            },
        ];
        let keys = FeedKeys::of(&events, &programs);
        assert_eq!(keys.purchases.len(), 2);
        let without = keys.clone().without_purchases_counted_before(&events);
        assert_eq!(without.purchases, [refunded]);
        assert_eq!(
            FeedKeys {
                purchases: keys.purchases.clone(),
                ..without
            },
            keys,
            "nothing else left out"
        );
    }

    #[test]
    fn an_earlier_join_and_an_erasure_touch_every_program() {
        let programs = [program()];
        let id = programs[0].program.id;
        let (customer, now) = (Uuid::now_v7(), Utc::now());
        let events = [
            purchase(customer, 10_000, now),
            UpstreamEvent::CustomerCreated {
                customer_id: customer,
                joined_at: now - chrono::Duration::days(30),
            },
        ];
        let writes = apply(&events, &programs, FeedLoad::default(), now);
        assert_eq!(
            writes.members[0].joined_at,
            now - chrono::Duration::days(30)
        );
        assert_eq!(writes.states.len(), 1);

        let erased = apply(
            &[UpstreamEvent::CustomerErased {
                customer_id: customer,
            }],
            &programs,
            FeedLoad::default(),
            now,
        );
        assert!(erased.members[0].erased);
        assert_eq!(
            erased.states.iter().map(|s| s.pair).collect::<Vec<_>>(),
            [(id, customer)]
        );
    }
}
