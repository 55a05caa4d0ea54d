//! Purchase profiles on every backend: what the feed adds in place (a purchase from any day,
//! the store asked whether a day between the first and the last is a purchase day already) and
//! what the store counts again (a refund, a bucket rebuild in another zone) are what the
//! domain's fold of the purchases finds.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tierline_scoring::{
    domain::{
        accrual::UpstreamEvent,
        consumer,
        feed_batch::{self, FeedWrites},
        idempotency::Claimed,
        in_force::ProgramInForce,
        program::Program,
        purchase_profile::PurchaseProfile,
    },
    storage::ScoringStore,
};
use uuid::Uuid;

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

/// An Innisfree-like program with an active policy whose days are in `zone`, and the program
/// in force as a feed batch sees it.
pub(crate) async fn program_in_force(
    store: &Arc<dyn ScoringStore>,
    zone: Tz,
) -> (Program, [ProgramInForce; 1]) {
    let program = crate::suite::program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let mut policy = crate::suite::new_policy(program.id, 300_000);
    policy.document.time_zone = zone.name().into();
    let Claimed::Done(version) = store.create_policy(&policy, None).await.expect("policy") else {
        panic!("no key, no replay");
    };
    crate::suite::activate(store, version.id).await;
    let in_force = ProgramInForce::load(store.as_ref(), program.id)
        .await
        .expect("in force");
    (program, [in_force])
}

/// Applies `events` as one feed batch and commits it.
pub(crate) async fn apply(
    store: &Arc<dyn ScoringStore>,
    programs: &[ProgramInForce],
    events: &[UpstreamEvent],
) -> FeedWrites {
    let mut tx = store.begin().await.expect("tx");
    let loaded = consumer::load_batch(tx.as_mut(), events, programs, consumer::Replays::Possible)
        .await
        .expect("load");
    let now = Utc::now();
    let writes = feed_batch::apply(events, programs, loaded, now);
    tx.write_feed_batch(&writes, now).await.expect("write");
    tx.commit().await.expect("commit");
    writes
}

/// The purchases each customer still has counted, `(at, net)`, as the test keeps them.
#[derive(Default)]
pub(crate) struct Ledger(BTreeMap<Uuid, BTreeMap<Uuid, (DateTime<Utc>, i64)>>);

impl Ledger {
    pub(crate) fn buy(
        &mut self,
        customer_id: Uuid,
        time: &str,
        amount_minor: i64,
    ) -> UpstreamEvent {
        let purchase = crate::suite::purchase_event(customer_id, amount_minor, at(time));
        self.0
            .entry(customer_id)
            .or_default()
            .insert(purchase.activity_id, (purchase.occurred_at, amount_minor));
        UpstreamEvent::Purchase(purchase)
    }

    pub(crate) fn refund(
        &mut self,
        customer_id: Uuid,
        purchase: &UpstreamEvent,
        amount: i64,
    ) -> UpstreamEvent {
        let UpstreamEvent::Purchase(purchase) = purchase else {
            panic!("a purchase");
        };
        let entry = self
            .0
            .get_mut(&customer_id)
            .and_then(|purchases| purchases.get_mut(&purchase.activity_id))
            .expect("bought");
        entry.1 -= amount;
        UpstreamEvent::Refund {
            activity_id: Uuid::now_v7(),
            customer_id,
            purchase_id: purchase.activity_id,
            amount_minor: amount,
        }
    }

    /// Each customer's profile by the domain's fold, days in `zone`.
    fn profiles(&self, zone: Tz) -> Vec<(Uuid, PurchaseProfile)> {
        self.0
            .iter()
            .filter_map(|(customer_id, purchases)| {
                let mut counting: Vec<_> = purchases
                    .values()
                    .filter(|(_, net)| *net > 0)
                    .copied()
                    .collect();
                counting.sort();
                Some((*customer_id, PurchaseProfile::of(counting, zone)?))
            })
            .collect()
    }
}

/// Applies `events` as one batch, whose every profile is added to in place (none counted
/// again); returns the stored profiles of `everyone`, which are the ledger's fold.
async fn in_place(
    store: &Arc<dyn ScoringStore>,
    programs: &[ProgramInForce],
    ledger: &Ledger,
    everyone: &[Uuid],
    events: &[UpstreamEvent],
) -> Vec<(Uuid, PurchaseProfile)> {
    let writes = apply(store, programs, events).await;
    let customers: std::collections::BTreeSet<Uuid> = events
        .iter()
        .filter_map(|event| match event {
            UpstreamEvent::Purchase(purchase) => Some(purchase.customer_id),
            _ => None,
        })
        .collect();
    assert_eq!(writes.profiles.len(), customers.len(), "added in place");
    assert!(writes.recounted_profiles.is_empty());
    let program_id = programs[0].program.id;
    let profiles = stored(store, program_id, everyone).await;
    assert_eq!(profiles, ledger.profiles(programs[0].zone()));
    profiles
}

async fn stored(
    store: &Arc<dyn ScoringStore>,
    program_id: Uuid,
    customers: &[Uuid],
) -> Vec<(Uuid, PurchaseProfile)> {
    let mut profiles = store
        .customer_profiles(program_id, customers)
        .await
        .expect("profiles");
    profiles.sort_by_key(|(customer_id, _)| *customer_id);
    profiles
}

pub(crate) async fn purchase_profiles_kept_by_the_feed_are_what_a_fold_of_the_purchases_finds(
    store: Arc<dyn ScoringStore>,
) {
    const SEOUL: Tz = chrono_tz::Asia::Seoul;
    let (program, programs) = program_in_force(&store, SEOUL).await;
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let everyone = [a, b, c];
    let mut ledger = Ledger::default();

    // In order: each profile is added to in place.
    let b_only = ledger.buy(b, "2026-03-02T10:00:00+09:00", 9_000);
    let c_later = ledger.buy(c, "2026-03-07T12:00:00+09:00", 30_000);
    let first = [
        // 1 March in Seoul, still 28 February in UTC.
        ledger.buy(a, "2026-03-01T08:30:00+09:00", 5_000),
        ledger.buy(a, "2026-03-03T12:00:00+09:00", 10_000),
        b_only.clone(),
        ledger.buy(c, "2026-03-05T12:00:00+09:00", 20_000),
        c_later.clone(),
    ];
    let writes = apply(&store, &programs, &first).await;
    assert_eq!(writes.new_profiles.len(), 3, "new, added to in place");
    assert!(writes.profiles.is_empty(), "none was stored");
    assert!(writes.recounted_profiles.is_empty());
    assert_eq!(
        stored(&store, program.id, &everyone).await,
        ledger.profiles(SEOUL)
    );

    // A purchase from a day between a's first and last purchase days that none of a's stored
    // purchases is on (2 March, after 10 March in the same batch): added in place. Refunds:
    // counted again by the store.
    let a_on_the_2nd = ledger.buy(a, "2026-03-02T10:00:00+09:00", 7_000);
    let second = [
        ledger.buy(a, "2026-03-10T10:00:00+09:00", 1_000),
        a_on_the_2nd.clone(),
        ledger.refund(b, &b_only, 9_000),
        ledger.refund(c, &c_later, 10_000),
    ];
    let writes = apply(&store, &programs, &second).await;
    assert_eq!(
        writes
            .profiles
            .iter()
            .map(|((_, customer), _)| *customer)
            .collect::<Vec<_>>(),
        [a],
        "added in place"
    );
    let mut recounted: Vec<_> = writes
        .recounted_profiles
        .iter()
        .map(|((_, customer_id), zone)| (*customer_id, *zone))
        .collect();
    recounted.sort_by_key(|(customer_id, _)| *customer_id);
    assert_eq!(recounted, [(b, SEOUL), (c, SEOUL)]);
    let profiles = stored(&store, program.id, &everyone).await;
    assert_eq!(profiles, ledger.profiles(SEOUL));
    assert_eq!(
        profiles[0],
        (
            a,
            PurchaseProfile {
                last_purchase_at: at("2026-03-10T10:00:00+09:00"),
                first_day: "2026-03-01".parse().expect("day"),
                last_day: "2026-03-10".parse().expect("day"),
                purchase_days: 4,
                repeat_spend_minor: 18_000,
                first_day_spend_minor: Some(5_000),
            }
        ),
        "1, 2, 3 and 10 March; all but the first day's spend repeats"
    );
    assert_eq!(
        profiles.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [a, c],
        "refunded in full, b has no purchase that counts"
    );

    // An earlier instant of the last purchase day is added in place.
    let writes = apply(
        &store,
        &programs,
        &[ledger.buy(c, "2026-03-07T08:00:00+09:00", 1_000)],
    )
    .await;
    assert_eq!(writes.profiles.len(), 1);
    assert_eq!(
        stored(&store, program.id, &everyone).await,
        ledger.profiles(SEOUL)
    );

    // A purchase from before c's first purchase day, and more on a's first day, are added in
    // place: c's first day's spend becomes repeat spend.
    let events = [
        ledger.buy(c, "2026-03-04T09:00:00+09:00", 4_000),
        ledger.buy(a, "2026-03-01T23:00:00+09:00", 2_000),
    ];
    let profiles = in_place(&store, &programs, &ledger, &everyone, &events).await;
    assert_eq!(
        (
            profiles[1].1.purchase_days,
            profiles[1].1.repeat_spend_minor
        ),
        (3, 41_000),
        "c: 4, 5 and 7 March; 20,000 and 21,000 repeat"
    );

    // Days between a's first and last purchase days, added in place: the store says which
    // are purchase days already. 3 March is; 6 March is not, and has two purchases here.
    let events = [
        ledger.buy(a, "2026-03-03T20:00:00+09:00", 3_000),
        ledger.buy(a, "2026-03-06T10:00:00+09:00", 500),
        ledger.buy(a, "2026-03-06T11:00:00+09:00", 700),
    ];
    let profiles = in_place(&store, &programs, &ledger, &everyone, &events).await;
    assert_eq!(profiles[0].1.purchase_days, 5, "a: 1, 2, 3, 6 and 10 March");

    // A day whose one purchase was refunded in full is no purchase day: a purchase on it is a
    // new one.
    apply(&store, &programs, &[ledger.refund(a, &a_on_the_2nd, 7_000)]).await;
    let events = [ledger.buy(a, "2026-03-02T12:00:00+09:00", 1_500)];
    let profiles = in_place(&store, &programs, &ledger, &everyone, &events).await;
    assert_eq!(profiles[0].1.purchase_days, 5, "a: 1, 2, 3, 6 and 10 March");

    // A bucket rebuild in another zone counts the days again in it.
    store
        .rebuild_bucket_chunk(program.id, Tz::UTC, None, 100, None)
        .await
        .expect("rebuild");
    let in_utc = stored(&store, program.id, &everyone).await;
    assert_eq!(in_utc, ledger.profiles(Tz::UTC));
    assert_eq!(
        in_utc[0].1.first_day,
        "2026-02-28".parse::<chrono::NaiveDate>().expect("day")
    );
}
