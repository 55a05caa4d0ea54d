//! The cases every scoring backend must pass: what the domain relies on the store for.

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use tierline_runtime::xid_feed::FeedCursor;
use tierline_scoring::{
    ScoringError,
    domain::{
        accrual::{BucketDelta, CountedPurchase},
        decision::{Reason, TierState},
        feed_batch::{FeedKeys, FeedWrites, StateWrite},
        idempotency::{Claimed, IdempotentRequest, Operation},
        month::Month,
        policy::{Frequency, Metric, PolicyInput, PolicyRules, TierRuleInput, WindowKind},
        ports::ProgramSignal,
        program::{Program, Scope, Tier},
        purchase_profile::PurchaseProfile,
        review::Review,
        state::{HistoryRecord, HistoryWindow, Member, StoredState, TierFeedItem},
        versions::{PolicyStatus, PolicyVersion, RunTrigger},
        window::Totals,
    },
    storage::{
        DraftChange, FeedProgress, NewPolicy, NewRun, ScoringStore,
        tx::{ChunkEnd, ChunkSize, StateRef},
    },
};
use uuid::Uuid;

pub(crate) use crate::cut_points::cut_points_are_the_quintiles_of_every_buyer_those_without_a_purchase_in_the_window_at_zero;
pub(crate) use crate::purchase_profiles::purchase_profiles_kept_by_the_feed_are_what_a_fold_of_the_purchases_finds;
pub(crate) use crate::value_model::value_summaries_count_purchase_days_in_the_programs_zone_and_models_are_versioned;

pub(crate) fn program(code: &str) -> Program {
    let tier = |code: &str, rank| Tier {
        code: code.into(),
        name: code.to_lowercase(),
        rank,
        benefits: vec![],
    };
    Program {
        id: Uuid::now_v7(),
        code: code.into(),
        name: code.to_lowercase(),
        currency: "KRW".into(),
        scope: Scope::default(),
        tiers: vec![tier("WELCOME", 0), tier("VIP", 1)],
        created_at: Utc::now().trunc_subsecs(6),
        cache_generation: 0,
        last_evaluated_at: None,
    }
}

fn policy_document(vip_spend: i64) -> PolicyInput {
    PolicyInput {
        tiers: vec![
            TierRuleInput {
                tier_code: "WELCOME".into(),
                requirements: vec![],
                points_earn_rate_bps: 0,
            },
            TierRuleInput {
                tier_code: "VIP".into(),
                requirements: vec![(Some(Metric::NetSpend), vip_spend)],
                points_earn_rate_bps: 0,
            },
        ],
        window: Some(WindowKind::RollingMonths(12)),
        time_zone: "UTC".into(),
        frequency: Some(Frequency::Monthly),
        day_of_month: 1,
        month_of_year: 0,
        local_hour: 3,
        local_minute: 0,
        grace_months: 0,
        max_levels_dropped: None,
        new_days: None,
        at_risk_days: None,
        dormant_days: None,
        ..PolicyInput::default()
    }
}

/// A purchase of `amount_minor` KRW by `customer_id` at `occurred_at`, in every scope.
pub(crate) fn purchase_event(
    customer_id: Uuid,
    amount_minor: i64,
    occurred_at: chrono::DateTime<Utc>,
) -> tierline_scoring::domain::accrual::PurchaseEvent {
    tierline_scoring::domain::accrual::PurchaseEvent {
        activity_id: Uuid::now_v7(),
        customer_id,
        amount_minor,
        currency: "KRW".into(),
        brand: String::new(),
        sales_channel: String::new(),
        occurred_at,
    }
}

pub(crate) fn new_policy(program_id: Uuid, vip_spend: i64) -> NewPolicy {
    NewPolicy {
        id: Uuid::now_v7(),
        program_id,
        document: policy_document(vip_spend),
        description: String::new(),
        created_by: "ops".into(),
        now: Utc::now().trunc_subsecs(6),
    }
}

/// The Innisfree program and a draft policy whose VIP needs `vip` (minor units).
async fn innisfree_with_draft(store: &Arc<dyn ScoringStore>, vip: i64) -> (Program, PolicyVersion) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let Claimed::Done(policy) = store
        .create_policy(&new_policy(program.id, vip), None)
        .await
        .expect("policy")
    else {
        panic!("no key, no replay");
    };
    (program, policy)
}

/// Activates `policy_id` now (to the microsecond, as stored); returns when.
pub(crate) async fn activate(
    store: &Arc<dyn ScoringStore>,
    policy_id: Uuid,
) -> chrono::DateTime<Utc> {
    let now = Utc::now().trunc_subsecs(6);
    store
        .activate_policy(policy_id, "ops", None, Uuid::now_v7(), now)
        .await
        .expect("activate");
    now
}

pub(crate) async fn programs_are_unique_by_code_and_claimed_once_per_key(
    store: Arc<dyn ScoringStore>,
) {
    let first = program("INNISFREE");
    let request = IdempotentRequest::new(
        Operation::CreateProgram,
        "create-1",
        &serde_json::json!({"code": "INNISFREE"}),
    )
    .expect("key")
    .expect("a key was sent");
    assert!(matches!(
        store.create_program(&first, Some(&request)).await,
        Ok(Claimed::Done(()))
    ));
    match store
        .create_program(&program("OTHER"), Some(&request))
        .await
    {
        Ok(Claimed::Replay(prior)) => assert_eq!(prior.resource_id, first.id),
        other => panic!("expected the first request back, got {other:?}"),
    }
    assert!(
        matches!(
            store.create_program(&program("INNISFREE"), None).await,
            Err(ScoringError::AlreadyExists { .. })
        ),
        "codes are unique"
    );
    let second = program("STARBUCKS");
    store.create_program(&second, None).await.expect("second");
    let stored = store
        .program(first.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.tiers, first.tiers);
    let listed = store.list_programs(None, 10).await.expect("list");
    let mut expected = vec![first.id, second.id];
    expected.sort();
    assert_eq!(
        listed.iter().map(|p| p.id).collect::<Vec<_>>(),
        expected,
        "in id order"
    );
    let after = store
        .list_programs(Some(expected[0]), 10)
        .await
        .expect("page");
    assert_eq!(after.len(), 1);
}

pub(crate) async fn policies_are_numbered_drafted_activated_and_retired(
    store: Arc<dyn ScoringStore>,
) {
    let (program, v1) = innisfree_with_draft(&store, 300_000).await;
    let Claimed::Done(v2) = store
        .create_policy(&new_policy(program.id, 500_000), None)
        .await
        .expect("v2")
    else {
        panic!("no key, no replay");
    };
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.status, PolicyStatus::Draft);

    let change = |expected_revision| DraftChange {
        id: v1.id,
        document: policy_document(350_000),
        description: Some("tuned".into()),
        expected_revision,
        now: Utc::now().trunc_subsecs(6),
    };
    assert!(matches!(
        store.update_draft(&change(Some(v1.revision + 7))).await,
        Err(ScoringError::Aborted(_))
    ));
    let tuned = store
        .update_draft(&change(Some(v1.revision)))
        .await
        .expect("update");
    assert_eq!(tuned.revision, v1.revision + 1);
    assert_eq!(tuned.description, "tuned");

    let now = Utc::now().trunc_subsecs(6);
    let first = store
        .activate_policy(v1.id, "ops", None, Uuid::now_v7(), now)
        .await
        .expect("activate v1");
    assert_eq!(first.policy.status, PolicyStatus::Active);
    assert_eq!(first.retired, None);
    assert_eq!(first.run.trigger, RunTrigger::PolicyActivation);
    assert!(
        store.update_draft(&change(None)).await.is_err(),
        "only a draft changes"
    );
    let second = store
        .activate_policy(v2.id, "ops", None, Uuid::now_v7(), now)
        .await
        .expect("activate v2");
    assert_eq!(second.retired, Some(v1.id));
    assert_eq!(
        store
            .active_policy(program.id)
            .await
            .expect("active")
            .map(|p| p.id),
        Some(v2.id)
    );
    let Claimed::Done(v3) = store
        .create_policy(&new_policy(program.id, 1), None)
        .await
        .expect("v3")
    else {
        panic!("no key, no replay");
    };
    let abandoned = store.retire_draft(v3.id, "ops", now).await.expect("retire");
    assert_eq!(abandoned.status, PolicyStatus::Retired);
    let retired = store
        .list_policies(program.id, Some(PolicyStatus::Retired), None, 10)
        .await
        .expect("list");
    assert_eq!(
        retired.iter().map(|p| p.version).collect::<Vec<_>>(),
        [3, 1],
        "newest first"
    );
}

pub(crate) async fn a_unit_of_work_counts_a_purchase_once_and_versions_the_state(
    store: Arc<dyn ScoringStore>,
) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let customer = Uuid::now_v7();
    let now = Utc::now().trunc_subsecs(6);
    let month = Month::of(now, chrono_tz::UTC);
    let purchase = CountedPurchase {
        activity_id: Uuid::now_v7(),
        customer_id: customer,
        occurred_at: now,
        month,
        amount_minor: 350_000,
        refunded_minor: 0,
        points: 0,
        brand: "innisfree".into(),
        sales_channel: "store".into(),
    };
    // Where its totals were summed: kept as instants.
    let qualified_window = HistoryWindow {
        start: Some(now - Duration::days(365)),
        end: now + Duration::days(3),
    };
    let apply = |position: &'static str| {
        let (store, purchase) = (store.clone(), purchase.clone());
        async move {
            let pair = (program.id, customer);
            let mut tx = store.begin().await.expect("tx");
            let loaded = tx
                .load_feed_batch(&FeedKeys {
                    customers: vec![customer],
                    states: vec![pair],
                    programs: vec![(program.id, chrono_tz::UTC)],
                    purchases: vec![purchase.activity_id],
                    refunds: vec![],
                })
                .await
                .expect("load");
            let fresh = loaded.counted.is_empty();
            if fresh {
                let totals = Totals {
                    net_spend_minor: purchase.amount_minor,
                    points: 0,
                    purchases: 1,
                };
                let writes = FeedWrites {
                    members: vec![Member {
                        customer_id: customer,
                        joined_at: now - Duration::days(400),
                        erased: false,
                    }],
                    counted: vec![(program.id, purchase.clone())],
                    new_buckets: vec![(
                        pair,
                        BucketDelta {
                            month,
                            net_spend_minor: purchase.amount_minor,
                            points: 0,
                            purchases: 1,
                        },
                    )],
                    states: vec![StateWrite {
                        pair,
                        stored: StoredState {
                            state: TierState {
                                earned_rank: 1,
                                since: now,
                                last_qualified_at: Some(now),
                                lapsed_at: None,
                                manual: None,
                            },
                            version: 0,
                        },
                        is_new: loaded.states.is_empty(),
                        review: None,
                    }],
                    history: vec![HistoryRecord {
                        id: Uuid::now_v7(),
                        program_id: program.id,
                        customer_id: customer,
                        from_rank: 0,
                        to_rank: 1,
                        reason: Reason::Qualified,
                        policy_version_id: None,
                        policy_version: None,
                        totals,
                        occurred_at: now,
                        window: Some(qualified_window),
                        evaluation_run_id: None,
                        activity_id: Some(purchase.activity_id),
                        operator_name: None,
                        operator_reason: None,
                        override_expires_at: None,
                    }],
                    ..FeedWrites::default()
                };
                tx.write_feed_batch(&writes, now).await.expect("write");
            }
            tx.save_cursor("activities", position, Some(now), now)
                .await
                .expect("cursor");
            tx.commit().await.expect("commit");
            fresh
        }
    };
    assert!(apply("c-1").await, "counted the first time");
    assert!(!apply("c-2").await, "a replay counts nothing");
    assert_eq!(
        store.feed_progress("activities").await.expect("cursor"),
        Some(FeedProgress {
            position: "c-2".into(),
            caught_up_to: Some(now)
        })
    );
    let records = store
        .customer_records(program.id, &[customer, Uuid::now_v7()])
        .await
        .expect("records");
    assert_eq!(records.len(), 1, "only known customers");
    let record = &records[0];
    assert_eq!(
        record
            .state
            .as_ref()
            .map(|s| (s.version, s.state.earned_rank)),
        Some((1, 1))
    );
    assert_eq!(
        record
            .buckets
            .iter()
            .map(|b| b.net_spend_minor)
            .sum::<i64>(),
        350_000
    );
    let history = store
        .history(program.id, customer, None, 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].window,
            history[0].activity_id,
            history[0].evaluation_run_id
        ),
        (Some(qualified_window), Some(purchase.activity_id), None),
        "what decided it is kept"
    );
    let feed = settled_feed(&store, Some(program.id)).await;
    assert!(
        matches!(feed.events.as_slice(), [event] if matches!(&event.1, TierFeedItem::Tier(r) if r.to_rank == 1)),
        "the change is in the tier feed"
    );
}

pub(crate) async fn scheduled_runs_open_once_per_due_time_and_runs_lock(
    store: Arc<dyn ScoringStore>,
) {
    let (program, policy) = innisfree_with_draft(&store, 300_000).await;
    let now = Utc::now().trunc_subsecs(6);
    let due = Some(now - Duration::minutes(5));
    let open = |run_id| {
        let store = store.clone();
        async move {
            let opened = store
                .open_run(
                    &NewRun {
                        id: run_id,
                        program_id: program.id,
                        policy_version_id: policy.id,
                        trigger: RunTrigger::Schedule,
                        due_at: due,
                        requested_by: "scheduler".into(),
                        now,
                    },
                    None,
                )
                .await
                .expect("open");
            let Claimed::Done(run) = opened else {
                panic!("no key, no replay");
            };
            run
        }
    };
    let first = open(Uuid::now_v7()).await.expect("the first opens");
    assert!(open(Uuid::now_v7()).await.is_none(), "one run per due time");
    assert_eq!(
        store
            .running_runs(10)
            .await
            .expect("running")
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [first.id]
    );

    let held = store.lock_program_runs(program.id).await.expect("lock");
    assert!(
        store
            .try_lock_program_runs(program.id)
            .await
            .expect("try")
            .is_none(),
        "held elsewhere"
    );
    drop(held);
    // Released when the holder's connection is gone, which the server sees a moment later.
    tierline_testkit::eventually_within(
        "the lock to be released",
        std::time::Duration::from_secs(5),
        || async { store.try_lock_program_runs(program.id).await.expect("try") },
    )
    .await;

    // Started, then resumed later: the run keeps its first start, the instant it judges at.
    let started = store.start_run(first.id, now).await.expect("start");
    assert_eq!(
        (
            started.judging_started_at,
            started.counts_before,
            started.resumed
        ),
        (now, None, 0)
    );
    let resumed = store
        .start_run(first.id, now + Duration::hours(1))
        .await
        .expect("resume");
    assert_eq!((resumed.judging_started_at, resumed.resumed), (now, 1));

    store
        .close_run(first.id, serde_json::json!({"members": 0}), None, now)
        .await
        .expect("close");
    assert!(store.running_runs(10).await.expect("running").is_empty());
    let closed = store.run(first.id).await.expect("run").expect("stored");
    assert_eq!(closed.id, first.id);

    // A manual run asked for twice with one key is opened once.
    let keyed = manual_run(&store, program.id, policy.id, now, Some("run-1")).await;
    let again = manual_run(&store, program.id, policy.id, now, Some("run-1")).await;
    assert_eq!(again.id, keyed.id, "the retry finds the first run");
    assert_eq!(store.running_runs(10).await.expect("running").len(), 1);
}

pub(crate) async fn a_runs_moves_add_up_per_tier_over_its_committed_chunks(
    store: Arc<dyn ScoringStore>,
) {
    let (program, policy) = innisfree_with_draft(&store, 300_000).await;
    let now = Utc::now().trunc_subsecs(6);
    let run = manual_run(&store, program.id, policy.id, now, None).await;
    let other = manual_run(&store, program.id, policy.id, now, None).await;
    let moved = |moves: &[(&str, i64)]| -> Vec<(String, i64)> {
        moves
            .iter()
            .map(|(code, n)| ((*code).to_owned(), *n))
            .collect()
    };
    let add = |run_id, moves: Vec<(String, i64)>, commit: bool| {
        let store = store.clone();
        async move {
            let mut tx = store.begin_evaluation().await.expect("tx");
            tx.add_run_moves(run_id, &moves).await.expect("moves");
            if commit {
                tx.commit().await.expect("commit");
            }
        }
    };
    add(run.id, moved(&[("VIP", -2), ("GREEN", 2)]), true).await;
    add(run.id, moved(&[("GREEN", -1), ("WELCOME", 1)]), true).await;
    // A chunk that did not commit moved nobody; another run's moves are its own.
    add(run.id, moved(&[("WELCOME", 5)]), false).await;
    add(other.id, moved(&[("VIP", 1)]), true).await;
    assert_eq!(
        store.run_moves(run.id).await.expect("moves"),
        moved(&[("GREEN", 1), ("VIP", -2), ("WELCOME", 1)]),
        "summed per tier, in code order"
    );
    assert_eq!(
        store.run_moves(other.id).await.expect("moves"),
        moved(&[("VIP", 1)])
    );
}

/// The tier counts of `program_id` at `now`, as the store stands.
async fn counted_tiers(
    store: &Arc<dyn ScoringStore>,
    program_id: Uuid,
    now: chrono::DateTime<Utc>,
) -> Vec<(u32, i64)> {
    store
        .tier_counts_snapshot(program_id, now)
        .await
        .expect("snapshot")
        .count()
        .await
        .expect("counts")
}

/// A candidate to save, where the store found it.
fn found(candidate: &tierline_scoring::storage::tx::EvaluationCandidate) -> StateRef {
    StateRef {
        customer_id: candidate.customer_id,
        found_at: candidate.found_at,
    }
}

/// Opens a manual run, with `key` as its idempotency key when given.
async fn manual_run(
    store: &Arc<dyn ScoringStore>,
    program_id: Uuid,
    policy_version_id: Uuid,
    now: chrono::DateTime<Utc>,
    key: Option<&str>,
) -> tierline_scoring::domain::versions::EvaluationRun {
    let request = key.map(|key| {
        IdempotentRequest::new(
            Operation::EvaluateNow,
            key,
            &serde_json::json!({ "p": program_id }),
        )
        .expect("key")
        .expect("a claim")
    });
    let opened = store
        .open_run(
            &NewRun {
                id: Uuid::now_v7(),
                program_id,
                policy_version_id,
                trigger: RunTrigger::Manual,
                due_at: None,
                requested_by: "ops".into(),
                now,
            },
            request.as_ref(),
        )
        .await
        .expect("open");
    match opened {
        Claimed::Done(run) => run.expect("a manual run always opens"),
        Claimed::Replay(prior) => store
            .run(prior.resource_id)
            .await
            .expect("run")
            .expect("the first run"),
    }
}

/// Every chunk of a run's pass, read until the store says it is over: the members counted and
/// the candidates sent (a store may send a member twice: one whose state moved during the run).
#[allow(clippy::too_many_arguments)]
async fn whole_pass(
    store: &Arc<dyn ScoringStore>,
    program_id: Uuid,
    run_id: Uuid,
    (limit, connections): (u32, u32),
    policy: (Uuid, &PolicyRules),
    as_of: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
) -> (
    i64,
    Vec<tierline_scoring::storage::tx::EvaluationCandidate>,
    Option<ChunkEnd>,
) {
    let (mut members, mut candidates, mut after, mut first_end) = (0, Vec::new(), None, None);
    loop {
        let chunk = store
            .evaluation_chunk(
                program_id,
                run_id,
                after,
                ChunkSize {
                    members: limit,
                    connections,
                },
                policy,
                as_of,
                now,
            )
            .await
            .expect("chunk");
        members += chunk.members;
        candidates.extend(chunk.candidates);
        if after.is_none() {
            first_end = chunk.last;
        }
        match chunk.last {
            Some(end) => after = Some(end),
            None => return (members, candidates, first_end),
        }
    }
}

/// A member of `program` who bought `amount` now, holding `rank`: a state, as the feed writes one
/// with every purchase.
async fn seed(
    store: &Arc<dyn ScoringStore>,
    program: Uuid,
    customer: Uuid,
    amount: i64,
    rank: u32,
) {
    let now = Utc::now().trunc_subsecs(6);
    let month = Month::of(now, chrono_tz::UTC);
    let pair = (program, customer);
    // A month the customer has a bucket for is added to, as a batch does; another is inserted.
    let bucket = (
        pair,
        BucketDelta {
            month,
            net_spend_minor: amount,
            points: 0,
            purchases: 1,
        },
    );
    let stored = store
        .customer_records(program, &[customer])
        .await
        .expect("records");
    let (buckets, new_buckets) = if stored
        .iter()
        .any(|record| record.buckets.iter().any(|b| b.month == month))
    {
        (vec![bucket], Vec::new())
    } else {
        (Vec::new(), vec![bucket])
    };
    let writes = FeedWrites {
        members: vec![Member {
            customer_id: customer,
            joined_at: now - Duration::days(400),
            erased: false,
        }],
        counted: vec![(
            program,
            CountedPurchase {
                activity_id: Uuid::now_v7(),
                customer_id: customer,
                occurred_at: now - Duration::days(3),
                month,
                amount_minor: amount,
                refunded_minor: 0,
                points: 0,
                brand: String::new(),
                sales_channel: String::new(),
            },
        )],
        buckets,
        new_buckets,
        // As a batch adds a customer's first purchase.
        new_profiles: vec![(
            pair,
            PurchaseProfile::first(now - Duration::days(3), amount, chrono_tz::UTC),
        )],
        states: vec![StateWrite {
            pair,
            stored: StoredState {
                state: TierState {
                    earned_rank: rank,
                    since: now,
                    last_qualified_at: None,
                    lapsed_at: None,
                    manual: None,
                },
                version: 0,
            },
            is_new: stored.iter().all(|record| record.state.is_none()),
            review: None,
        }],
        ..FeedWrites::default()
    };
    let mut tx = store.begin().await.expect("tx");
    tx.write_feed_batch(&writes, now).await.expect("write");
    tx.commit().await.expect("commit");
}

pub(crate) async fn audiences_read_members_in_id_order_with_their_shown_rank(
    store: Arc<dyn ScoringStore>,
) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let (vip, welcome, browser) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    seed(&store, program.id, vip, 400_000, 1).await;
    seed(&store, program.id, welcome, 20_000, 0).await;
    // A member who never bought has no state.
    let now = Utc::now();
    let mut tx = store.begin().await.expect("tx");
    let joined = FeedWrites {
        members: vec![Member {
            customer_id: browser,
            joined_at: now - Duration::days(30),
            erased: false,
        }],
        ..FeedWrites::default()
    };
    tx.write_feed_batch(&joined, now).await.expect("member");
    tx.commit().await.expect("commit");
    let to = now.date_naive();
    let page = store
        .audience_page(program.id, None, 10, None, to, now)
        .await
        .expect("audience");
    assert_eq!(
        page.iter()
            .map(|(input, rank)| (input.customer_id, *rank, input.values.monetary))
            .collect::<Vec<_>>(),
        [(vip, 1, 400_000), (welcome, 0, 20_000), (browser, 0, 0)],
        "in id order, with the rank shown and the spend"
    );
    let after = store
        .audience_page(program.id, Some(vip), 10, None, to, now)
        .await
        .expect("next page");
    assert_eq!(after.len(), 2);
    assert_eq!(page[0].0.values.recency_days, Some(3));
    assert_eq!(page[2].0.values.recency_days, None, "never bought");
    let mut counts = counted_tiers(&store, program.id, now).await;
    counts.sort();
    assert_eq!(
        counts,
        [(0, 2), (1, 1)],
        "members without a state hold rank 0"
    );
    assert_eq!(
        store
            .customers_with_state(program.id, None, 10)
            .await
            .expect("with state"),
        [vip, welcome]
    );
}

pub(crate) async fn tier_counts_in_a_snapshot_leave_out_what_was_written_after_it(
    store: Arc<dyn ScoringStore>,
) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    seed(&store, program.id, Uuid::now_v7(), 400_000, 1).await;
    seed(&store, program.id, Uuid::now_v7(), 20_000, 0).await;
    let now = Utc::now();
    let snapshot = store
        .tier_counts_snapshot(program.id, now)
        .await
        .expect("snapshot");
    // A member reaches rank 1 after the snapshot was taken, before it is counted.
    seed(&store, program.id, Uuid::now_v7(), 400_000, 1).await;
    let mut before = snapshot.count().await.expect("counted");
    before.sort();
    assert_eq!(before, [(0, 1), (1, 1)], "as they stood at the snapshot");
    let mut now_counts = counted_tiers(&store, program.id, now).await;
    now_counts.sort();
    assert_eq!(
        now_counts,
        [(0, 1), (1, 2)],
        "the write after it counts now"
    );
}

pub(crate) async fn buckets_rebuild_from_counted_purchases_a_chunk_at_a_time(
    store: Arc<dyn ScoringStore>,
) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&store, program.id, first, 120_000, 0).await;
    seed(&store, program.id, first, 30_000, 0).await;
    seed(&store, program.id, second, 50_000, 0).await;
    let generation = store
        .start_bucket_rebuild(program.id)
        .await
        .expect("rebuild");
    // Every record changes: the program's cache generation moved on.
    assert_eq!(generation, program.cache_generation + 1);
    let reread = store.program(program.id).await.expect("program");
    assert_eq!(reread.map(|p| p.cache_generation), Some(generation));

    // A customer per chunk; the first chunk queues the repair of its customer's records.
    let seoul = chrono_tz::Asia::Seoul;
    let chunk = store
        .rebuild_bucket_chunk(program.id, seoul, None, 1, Some(generation))
        .await
        .expect("chunk");
    assert_eq!(chunk.customers, [first]);
    let repairs = store
        .cache_repairs(Utc::now() + Duration::minutes(1), 10)
        .await
        .expect("repairs");
    assert_eq!(
        repairs
            .iter()
            .map(|r| (r.id, r.generation, r.customer_ids.clone()))
            .collect::<Vec<_>>(),
        [(chunk.repair.expect("queued"), generation, vec![first])]
    );
    let chunk = store
        .rebuild_bucket_chunk(program.id, seoul, Some(first), 1, None)
        .await
        .expect("chunk");
    assert_eq!((chunk.customers, chunk.repair), (vec![second], None));
    let chunk = store
        .rebuild_bucket_chunk(program.id, seoul, Some(second), 1, None)
        .await
        .expect("chunk");
    assert!(chunk.customers.is_empty(), "the end");

    let records = store
        .customer_records(program.id, &[first, second])
        .await
        .expect("records");
    let totals = |customer: Uuid| {
        let buckets = &records
            .iter()
            .find(|r| r.member.customer_id == customer)
            .expect("record")
            .buckets;
        (
            buckets.iter().map(|b| b.net_spend_minor).sum::<i64>(),
            buckets.iter().map(|b| b.purchases).sum::<i64>(),
        )
    };
    assert_eq!(
        (totals(first), totals(second)),
        ((150_000, 2), (50_000, 1)),
        "the same purchases, counted once each"
    );
}

/// The next signal, waited for at most a few seconds.
async fn next_signal(
    signals: &mut tokio::sync::mpsc::Receiver<ProgramSignal>,
) -> Option<ProgramSignal> {
    tokio::time::timeout(std::time::Duration::from_secs(5), signals.recv())
        .await
        .ok()
        .flatten()
}

pub(crate) async fn program_changes_are_announced_when_they_commit(store: Arc<dyn ScoringStore>) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let mut signals = store.program_signals(shutdown);
    assert_eq!(
        next_signal(&mut signals).await,
        Some(ProgramSignal::Listening)
    );
    let (program, v1) = innisfree_with_draft(&store, 300_000).await;
    store
        .activate_policy(
            v1.id,
            "ops",
            None,
            Uuid::now_v7(),
            Utc::now().trunc_subsecs(6),
        )
        .await
        .expect("activate");
    // Whatever else is announced on the way, the activation is.
    let mut heard = Vec::new();
    while let Some(signal) = next_signal(&mut signals).await {
        heard.push(signal);
        if heard.contains(&ProgramSignal::Changed(program.id)) {
            break;
        }
    }
    assert!(
        heard.contains(&ProgramSignal::Changed(program.id)),
        "{heard:?}"
    );
    // So is a rebuild, which moves the cache generation.
    store
        .start_bucket_rebuild(program.id)
        .await
        .expect("rebuild");
    assert_eq!(
        next_signal(&mut signals).await,
        Some(ProgramSignal::Changed(program.id))
    );
}

pub(crate) async fn cache_repairs_are_queued_with_the_change_and_listed_until_done(
    store: Arc<dyn ScoringStore>,
) {
    let (program, customers) = (Uuid::now_v7(), vec![Uuid::now_v7(), Uuid::now_v7()]);
    // A repair queued by a change that rolled back is not there.
    let mut tx = store.begin().await.expect("tx");
    tx.queue_cache_repair(program, 3, &customers)
        .await
        .expect("queued");
    drop(tx);
    let mut tx = store.begin().await.expect("tx");
    let kept = tx
        .queue_cache_repair(program, 3, &customers)
        .await
        .expect("queued");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_evaluation().await.expect("tx");
    let page = tx
        .queue_cache_repair(program, 4, &customers[..1])
        .await
        .expect("queued");
    tx.commit().await.expect("commit");

    // Young repairs are left to the writes they back.
    let before_them = Utc::now() - Duration::seconds(60);
    assert!(
        store
            .cache_repairs(before_them, 10)
            .await
            .expect("repairs")
            .is_empty()
    );
    let due = store
        .cache_repairs(Utc::now() + Duration::seconds(1), 10)
        .await
        .expect("repairs");
    assert_eq!(
        due.iter()
            .map(|repair| (
                repair.id,
                repair.program_id,
                repair.generation,
                repair.customer_ids.clone()
            ))
            .collect::<Vec<_>>(),
        vec![
            (kept, program, 3, customers.clone()),
            (page, program, 4, customers[..1].to_vec())
        ],
        "oldest first"
    );
    store.cache_repaired(&[kept]).await.expect("done");
    let left = store
        .cache_repairs(Utc::now() + Duration::seconds(1), 10)
        .await
        .expect("repairs");
    assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), vec![page]);
}

pub(crate) async fn cut_points_simulation_and_lifecycles_read_the_population(
    store: Arc<dyn ScoringStore>,
) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    // Spends of 100,000 to 500,000; the 400,000 and 500,000 buyers hold VIP.
    let customers: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    for (index, customer) in customers.iter().enumerate() {
        let spend = 100_000 * (index as i64 + 1);
        seed(&store, program.id, *customer, spend, u32::from(index >= 3)).await;
    }
    let now = Utc::now();
    let to = now.date_naive();
    let (cuts, population) = store
        .compute_cut_points(program.id, None, to, now)
        .await
        .expect("cut points");
    assert_eq!(population, 5, "every buyer");
    assert!(
        cuts.monetary.windows(2).all(|pair| pair[0] <= pair[1]),
        "boundaries ascend: {cuts:?}"
    );
    assert!((100_000..=500_000).contains(&cuts.monetary[0]));
    let version = store
        .store_cut_points(program.id, &cuts, population, now)
        .await
        .expect("store");
    let (stored_version, stored) = store
        .cut_points(program.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!((stored_version, stored), (version, cuts));

    // Simulating a VIP threshold of 250,000: three would hold VIP, two held it.
    let current = policy_document(350_000)
        .validate(&program)
        .expect("current rules");
    let simulated = policy_document(250_000)
        .validate(&program)
        .expect("simulated rules");
    let cells = store
        .simulate(program.id, Some(&current), &simulated, now)
        .await
        .expect("simulate");
    let count = |from: u32, to: u32| {
        cells
            .iter()
            .filter(|cell| cell.current_rank == from && cell.simulated_rank == to)
            .map(|cell| cell.customers)
            .sum::<i64>()
    };
    assert_eq!(
        (count(0, 0), count(0, 1), count(1, 1)),
        (2, 1, 2),
        "{cells:?}"
    );

    // Everyone bought 3 days ago and joined over a year ago: active, first classified now.
    let settings = tierline_scoring::domain::policy::LifecycleSettings {
        new_days: 90,
        at_risk_days: 180,
        dormant_days: 365,
    };
    let changed = store
        .sweep_lifecycles(program.id, settings, now)
        .await
        .expect("sweep");
    assert_eq!(changed, 5, "the first sweep classifies everyone");
    let again = store
        .sweep_lifecycles(program.id, settings, now)
        .await
        .expect("sweep again");
    assert_eq!(again, 0, "nothing changed since");
    let later = store
        .sweep_lifecycles(program.id, settings, now + Duration::days(200))
        .await
        .expect("sweep later");
    assert_eq!(later, 5, "200 days on, everyone is at risk");
}

pub(crate) async fn a_pass_read_on_several_connections_finds_what_one_finds(
    store: Arc<dyn ScoringStore>,
) {
    // Every third member reviewed a year ahead: most are sent.
    pass_finds_each_member_once(&store, |n| n % 3 == 0).await;
}

pub(crate) async fn a_pass_that_sends_few_finds_what_one_finds(store: Arc<dyn ScoringStore>) {
    // Two members in three reviewed a year ahead: few are sent.
    pass_finds_each_member_once(&store, |n| n % 3 != 0).await;
}

/// A pass over 240 members, those whose place `reviewed_ahead` picks reviewed a year ahead
/// (counted, not sent), read whole in chunks of several sizes on one to four connections:
/// each member is counted once and each due member sent once with their buckets, a member
/// written after the run began included. Returns the first chunk's end of a pass in chunks of
/// 60 (how the store chose to walk).
pub(crate) async fn pass_finds_each_member_once(
    store: &Arc<dyn ScoringStore>,
    reviewed_ahead: fn(usize) -> bool,
) -> Option<ChunkEnd> {
    // VIP needs 450,000: enough members for the states to fill several pages.
    let (program, policy) = innisfree_with_draft(store, 450_000).await;
    let rules = policy.document.clone().validate(&program).expect("rules");
    let mut members: Vec<Uuid> = (0..240).map(|_| Uuid::now_v7()).collect();
    members.sort_unstable();
    for (n, customer) in members.iter().enumerate() {
        let spend = if n % 2 == 0 { 400_000 } else { 500_000 };
        seed(store, program.id, *customer, spend, 1 + (n % 2) as u32).await;
    }
    let now = Utc::now().trunc_subsecs(6);
    let run = manual_run(store, program.id, policy.id, now, None).await;
    let (_, everyone, _) = whole_pass(
        store,
        program.id,
        run.id,
        (1_000, 1),
        (policy.id, &rules),
        now,
        now,
    )
    .await;
    let ahead = Review {
        policy_version_id: policy.id,
        month: Some(Month::of(now, chrono_tz::UTC).plus(12)),
    };
    let reviews: Vec<(StateRef, i64, Review)> = everyone
        .iter()
        .filter(|candidate| {
            members
                .iter()
                .position(|m| *m == candidate.customer_id)
                .is_some_and(reviewed_ahead)
        })
        .map(|candidate| (found(candidate), candidate.stored.version, ahead))
        .collect();
    let mut tx = store.begin_evaluation().await.expect("tx");
    tx.save_reviews(program.id, Uuid::now_v7(), &reviews)
        .await
        .expect("reviews");
    tx.commit().await.expect("commit");
    let expected: Vec<Uuid> = members
        .iter()
        .enumerate()
        .filter(|(n, _)| !reviewed_ahead(*n))
        .map(|(_, customer)| *customer)
        .collect();
    // A member whose state is written after the run began: found wherever the row went (by
    // block, the pass over what moved finds them; the walk may find them too, or not, by where
    // it lies).
    let late = Uuid::now_v7();
    seed(store, program.id, late, 500_000, 2).await;

    let mut walk = None;
    for (limit, connections) in [(1_000, 1), (60, 1), (60, 2), (60, 3), (1_000, 4)] {
        let (counted, candidates, first_end) = whole_pass(
            store,
            program.id,
            run.id,
            (limit, connections),
            (policy.id, &rules),
            now,
            now,
        )
        .await;
        let (late_sent, ids): (Vec<Uuid>, Vec<Uuid>) = candidates
            .iter()
            .map(|c| c.customer_id)
            .partition(|id| *id == late);
        assert!(
            !late_sent.is_empty(),
            "the state written during the run is read ({limit} on {connections})"
        );
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert!(
            (240..=241).contains(&counted),
            "each member counted once, the late one by the walk if it met them ({limit} on {connections}): {counted}"
        );
        assert_eq!(
            sorted, expected,
            "each due member sent once ({limit} on {connections})"
        );
        for candidate in &candidates {
            assert_eq!(candidate.buckets.len(), 1, "sent with their bucket");
        }
        if (limit, connections) == (60, 1) {
            walk = first_end;
        }
    }
    walk
}

pub(crate) async fn an_evaluation_chunk_sums_the_window_and_saves_only_unmoved_states(
    store: Arc<dyn ScoringStore>,
) {
    use tierline_scoring::storage::tx::RunProgress;

    // VIP needs 450,000.
    let (program, policy) = innisfree_with_draft(&store, 450_000).await;
    let rules = policy.document.clone().validate(&program).expect("rules");
    let (first, second, holder) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // A VIP who no longer qualifies, a member at the base tier who qualifies for VIP (as after
    // a policy that lowered the bar), and a VIP who still qualifies.
    seed(&store, program.id, first, 400_000, 1).await;
    seed(&store, program.id, second, 500_000, 0).await;
    seed(&store, program.id, holder, 500_000, 1).await;
    let now = Utc::now().trunc_subsecs(6);
    let run = manual_run(&store, program.id, policy.id, now, None).await;
    let policy_in_force = (policy.id, &rules);
    // A whole pass: the members counted and the ids sent, sorted, each once.
    let pass = |as_of, limit, policy: (Uuid, &'static PolicyRules)| {
        let store = store.clone();
        async move {
            let (members, candidates, _) =
                whole_pass(&store, program.id, run.id, (limit, 1), policy, as_of, now).await;
            let mut ids: Vec<Uuid> = candidates.iter().map(|c| c.customer_id).collect();
            ids.sort_unstable();
            ids.dedup();
            (members, ids, candidates)
        }
    };
    let rules: &'static PolicyRules = Box::leak(Box::new(rules.clone()));
    let policy_in_force = (policy_in_force.0, rules);

    // All three are counted; none was reviewed yet, so those whom the window gives another
    // tier than the one they hold are sent, with their buckets, in chunks of one as in chunks
    // of ten. The VIP who still qualifies is not: judging them would change nothing.
    let (members, ids, candidates) = pass(now, 10, policy_in_force).await;
    assert_eq!((members, ids.clone()), (3, vec![first, second]));
    assert_eq!(pass(now, 1, policy_in_force).await.1, ids);
    for candidate in &candidates {
        let spend = if candidate.customer_id == first {
            400_000
        } else {
            500_000
        };
        let [bucket] = candidate.buckets.as_slice() else {
            panic!("one bucket: {:?}", candidate.buckets);
        };
        assert_eq!((bucket.net_spend_minor, bucket.purchases), (spend, 1));
        assert_eq!(candidate.review, None);
    }
    let of = |id: Uuid| {
        candidates
            .iter()
            .find(|c| c.customer_id == id)
            .expect("candidate")
            .clone()
    };

    // A review saves without a new version, only at the version given. The second member's
    // review lies a year ahead: counted, not sent, until its month comes or another policy is
    // in force.
    let this_month = Month::of(now, chrono_tz::UTC);
    let ahead = Review {
        policy_version_id: policy.id,
        month: Some(this_month.plus(12)),
    };
    let second_version = of(second).stored.version;
    let mut tx = store.begin_evaluation().await.expect("tx");
    tx.save_reviews(
        program.id,
        Uuid::now_v7(),
        &[
            (found(&of(second)), second_version, ahead),
            (found(&of(first)), -1, ahead),
        ],
    )
    .await
    .expect("reviews");
    tx.commit().await.expect("commit");
    let (members, ids, _) = pass(now, 10, policy_in_force).await;
    assert_eq!(
        (members, ids),
        (3, vec![first]),
        "the first's version did not match"
    );
    let (_, ids, due) = pass(now + Duration::days(370), 10, policy_in_force).await;
    assert_eq!(
        ids,
        [first, second, holder],
        "its month has come; a year on, the holder's month has left the window"
    );
    let second_read = due.iter().find(|c| c.customer_id == second).expect("read");
    assert_eq!(second_read.review, Some(ahead));
    assert_eq!(second_read.stored.version, second_version, "no new version");
    let (_, ids, _) = pass(now, 10, (Uuid::now_v7(), rules)).await;
    assert_eq!(
        ids,
        [first, second],
        "under another policy the window is asked again"
    );
    let earlier = [of(first), of(second)];

    // The run drops the first member to the base tier. The second's state moved after the chunk
    // was read (it is saved at an older version than the store's): it is not saved, and reads
    // again under lock with its buckets.
    let mut tx = store.begin_evaluation().await.expect("tx");
    let mut dropped = earlier[0].stored.clone();
    dropped.state.earned_rank = 0;
    let mut moved = earlier[1].stored.clone();
    moved.version -= 1;
    let never = Review {
        policy_version_id: policy.id,
        month: None,
    };
    let versions = tx
        .save_judged_states(
            program.id,
            run.id,
            // Each where the first pass found it: the second's review was saved since, so its
            // row lies elsewhere now, as well as its version being older.
            &[
                (found(&earlier[0]), dropped, never),
                (found(&earlier[1]), moved, ahead),
            ],
            now,
        )
        .await
        .expect("save");
    assert_eq!(versions, [Some(earlier[0].stored.version + 1), None]);
    // Locked again, the member this run changed is left out: judged once, not twice.
    let locked = tx
        .lock_evaluation_members(program.id, run.id, &[first, second])
        .await
        .expect("locked");
    assert_eq!(locked.len(), 1, "only the member that moved");
    assert_eq!(locked[0].member.customer_id, second);
    assert_eq!(
        (locked[0].stored.version, locked[0].buckets.len()),
        (earlier[1].stored.version, 1)
    );
    tx.add_run_progress(
        run.id,
        RunProgress {
            evaluated: 2,
            upgrades: 0,
            downgrades: 1,
        },
    )
    .await
    .expect("progress");
    tx.commit().await.expect("commit");

    // Resumed, the run does not judge the member it already changed.
    let (members, ids, _) = pass(now, 10, policy_in_force).await;
    assert_eq!(members, 2);
    assert!(!ids.contains(&first));
    assert_eq!(
        store.run_progress(run.id).await.expect("progress"),
        RunProgress {
            evaluated: 2,
            upgrades: 0,
            downgrades: 1,
        }
    );
}

pub(crate) async fn a_feed_batch_loads_what_it_names_and_writes_sets(store: Arc<dyn ScoringStore>) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let (known, new) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&store, program.id, known, 80_000, 1).await;
    let keys = FeedKeys {
        customers: vec![known, new],
        states: vec![(program.id, known), (program.id, new)],
        programs: vec![(program.id, chrono_tz::UTC)],
        purchases: vec![Uuid::now_v7()],
        refunds: vec![Uuid::now_v7()],
    };
    let mut tx = store.begin().await.expect("tx");
    let loaded = tx.load_feed_batch(&keys).await.expect("load");
    assert_eq!(
        loaded
            .members
            .iter()
            .map(|m| m.customer_id)
            .collect::<Vec<_>>(),
        [known],
        "only members that exist"
    );
    let [(pair, stored)] = loaded.states.as_slice() else {
        panic!("one state: {:?}", loaded.states);
    };
    assert_eq!(
        (*pair, stored.version, stored.state.earned_rank),
        ((program.id, known), 1, 1)
    );
    assert_eq!(loaded.buckets.len(), 1, "the known customer's one bucket");
    assert!(loaded.counted.is_empty() && loaded.applied_refunds.is_empty());

    let now = Utc::now().trunc_subsecs(6);
    let month = loaded.buckets[0].1.month;
    let delta = |amount| BucketDelta {
        month,
        net_spend_minor: amount,
        points: 0,
        purchases: 1,
    };
    let joined = loaded.members[0].joined_at;
    let writes = FeedWrites {
        members: vec![
            // A later join time never replaces an earlier one; erasure is kept.
            Member {
                customer_id: known,
                joined_at: joined + Duration::days(30),
                erased: true,
            },
            Member {
                customer_id: new,
                joined_at: now,
                erased: false,
            },
        ],
        buckets: vec![((program.id, known), delta(5_000))],
        new_buckets: vec![((program.id, new), delta(7_000))],
        states: vec![
            StateWrite {
                pair: (program.id, known),
                stored: stored.clone(),
                is_new: false,
                review: None,
            },
            StateWrite {
                pair: (program.id, new),
                stored: StoredState {
                    state: TierState::new_member(now),
                    version: 0,
                },
                is_new: true,
                review: None,
            },
        ],
        ..FeedWrites::default()
    };
    tx.write_feed_batch(&writes, now).await.expect("write");
    tx.commit().await.expect("commit");

    let records = store
        .customer_records(program.id, &[known, new])
        .await
        .expect("records");
    let of = |id: Uuid| {
        records
            .iter()
            .find(|r| r.member.customer_id == id)
            .expect("record")
    };
    let spend = |id: Uuid| {
        of(id)
            .buckets
            .iter()
            .map(|b| b.net_spend_minor)
            .sum::<i64>()
    };
    assert_eq!(
        (of(known).member.joined_at, of(known).member.erased),
        (joined, true)
    );
    assert_eq!(
        of(known).state.as_ref().map(|s| s.version),
        Some(2),
        "raised by one"
    );
    assert_eq!(
        of(new).state.as_ref().map(|s| s.version),
        Some(1),
        "created at 1"
    );
    assert_eq!((spend(known), spend(new)), (85_000, 7_000), "deltas added");

    // A batch that would create a state someone else created meanwhile must start over.
    let mut tx = store.begin().await.expect("tx");
    let again = tx
        .write_feed_batch(
            &FeedWrites {
                states: vec![writes.states[1].clone()],
                ..FeedWrites::default()
            },
            now,
        )
        .await;
    assert!(matches!(again, Err(ScoringError::Aborted(_))), "{again:?}");
}

pub(crate) async fn refunds_apply_once_and_counted_purchases_are_listed(
    store: Arc<dyn ScoringStore>,
) {
    let program = program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let customer = Uuid::now_v7();
    seed(&store, program.id, customer, 80_000, 0).await;
    let now = Utc::now();
    let (listed, total) = store
        .counted_purchases(program.id, customer, None, now + Duration::days(1), 10)
        .await
        .expect("purchases");
    assert_eq!((listed.len(), total), (1, 1));
    let purchase = listed[0].clone();
    assert_eq!(purchase.amount_minor, 80_000);

    let refund = Uuid::now_v7();
    let apply = |amount: i64| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.expect("tx");
            let loaded = tx
                .load_feed_batch(&FeedKeys {
                    customers: vec![customer],
                    programs: vec![(program.id, chrono_tz::UTC)],
                    purchases: vec![purchase.activity_id],
                    refunds: vec![refund],
                    ..FeedKeys::default()
                })
                .await
                .expect("load");
            let fresh = loaded.applied_refunds.is_empty();
            if fresh {
                let [(_, locked)] = loaded.counted.as_slice() else {
                    panic!("the purchase, once: {:?}", loaded.counted);
                };
                tx.write_feed_batch(
                    &FeedWrites {
                        refunded: vec![(
                            program.id,
                            purchase.activity_id,
                            locked.refunded_minor + amount,
                        )],
                        applied_refunds: vec![(program.id, refund)],
                        ..FeedWrites::default()
                    },
                    now,
                )
                .await
                .expect("write");
            }
            tx.commit().await.expect("commit");
            fresh
        }
    };
    assert!(apply(30_000).await, "applied the first time");
    assert!(!apply(30_000).await, "a replayed refund changes nothing");
    let (after, _) = store
        .counted_purchases(program.id, customer, None, now + Duration::days(1), 10)
        .await
        .expect("purchases");
    assert_eq!(after[0].refunded_minor, 30_000);
    let window_closed = store
        .counted_purchases(
            program.id,
            customer,
            Some(now + Duration::hours(1)),
            now + Duration::days(1),
            10,
        )
        .await
        .expect("purchases");
    assert_eq!(window_closed.1, 0, "only purchases inside [from, until)");
}

pub(crate) async fn overrides_end_and_the_tier_feed_filters_by_program(
    store: Arc<dyn ScoringStore>,
) {
    let (first, second) = (program("INNISFREE"), program("STARBUCKS"));
    store.create_program(&first, None).await.expect("program");
    store.create_program(&second, None).await.expect("program");
    let now = Utc::now().trunc_subsecs(6);
    let (ending, lasting) = (Uuid::now_v7(), Uuid::now_v7());
    let mut tx = store.begin().await.expect("tx");
    for (customer, until) in [
        (ending, now - Duration::minutes(1)),
        (lasting, now + Duration::days(30)),
    ] {
        let mut state = tx
            .lock_or_create_state(
                first.id,
                customer,
                &TierState {
                    earned_rank: 0,
                    since: now,
                    last_qualified_at: None,
                    lapsed_at: None,
                    manual: None,
                },
            )
            .await
            .expect("state");
        state.state.manual = Some(tierline_scoring::domain::decision::Override {
            rank: 1,
            until,
            reason: "service recovery".into(),
            operator: "ops".into(),
            set_at: now - Duration::days(1),
        });
        tx.save_state(first.id, customer, &state, now)
            .await
            .expect("save");
    }
    for program_id in [first.id, second.id] {
        tx.record(&HistoryRecord {
            id: Uuid::now_v7(),
            program_id,
            customer_id: ending,
            from_rank: 0,
            to_rank: 1,
            reason: Reason::Override,
            policy_version_id: None,
            policy_version: None,
            totals: Totals {
                net_spend_minor: 0,
                points: 0,
                purchases: 0,
            },
            occurred_at: now,
            window: None,
            evaluation_run_id: None,
            activity_id: None,
            operator_name: Some("ops".into()),
            operator_reason: Some("complaint".into()),
            override_expires_at: Some(now - Duration::hours(1)),
        })
        .await
        .expect("history");
    }
    tx.commit().await.expect("commit");

    assert_eq!(
        store
            .ended_overrides(first.id, now, 10)
            .await
            .expect("ended"),
        [ending],
        "only the override whose end has passed"
    );
    assert!(
        store
            .customer_records(first.id, &[lasting])
            .await
            .expect("records")
            .is_empty(),
        "customer records are of members: a tier state alone is not a member"
    );
    let everything = settled_feed(&store, None).await;
    assert_eq!(everything.events.len(), 2);
    let one = settled_feed(&store, Some(second.id)).await;
    assert!(
        matches!(one.events.as_slice(), [(_, TierFeedItem::Tier(record))]
            if record.program_id == second.id
                && record.operator_name.as_deref() == Some("ops")
                && record.operator_reason.as_deref() == Some("complaint")
                && record.override_expires_at == Some(now - Duration::hours(1))),
        "only the program asked for"
    );
}

/// The tier feed from the start, once nothing is held back: Postgres holds back rows behind the
/// oldest transaction still running in the cluster (any database's, in a parallel test run), and
/// a reader retries, as the feed's consumers do.
async fn settled_feed(
    store: &Arc<dyn ScoringStore>,
    program_id: Option<Uuid>,
) -> tierline_runtime::xid_feed::FeedPage<TierFeedItem> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = store
            .read_tier_feed(FeedCursor::default(), program_id, 10)
            .await
            .expect("feed");
        if !page.held_back || tokio::time::Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub(crate) async fn unreadable_feed_events_are_parked_once(store: Arc<dyn ScoringStore>) {
    let letter = |position: &str| tierline_runtime::follower::DeadLetter {
        position: position.to_owned(),
        reason: "customer_id is not an id".to_owned(),
        payload: vec![1, 2, 3],
    };
    let parked = store
        .park_dead_letters("activities", &[letter("v1.1.1"), letter("v1.1.2")])
        .await
        .expect("park");
    assert_eq!(parked, 2);
    let replayed = store
        .park_dead_letters("activities", &[letter("v1.1.2"), letter("v1.1.3")])
        .await
        .expect("park again");
    assert_eq!(replayed, 1, "a replayed letter is parked once");
    let other_feed = store
        .park_dead_letters("tier_changes", &[letter("v1.1.1")])
        .await
        .expect("park");
    assert_eq!(other_feed, 1, "positions are per feed");
}

/// The records a feed batch hands to the cache come from memory, not from a read after the
/// commit: they must be exactly what a lookup then reads from the store (version, member,
/// every bucket), for a member the store knew, a new one, and one whose purchase the same
/// batch refunds.
pub(crate) async fn the_records_a_feed_batch_leaves_are_what_the_store_then_holds(
    store: Arc<dyn ScoringStore>,
) {
    use tierline_scoring::domain::{accrual::UpstreamEvent, feed_batch, in_force::ProgramInForce};

    let (program, v1) = innisfree_with_draft(&store, 300_000).await;
    let now = activate(&store, v1.id).await;
    let (known, new, refunded) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // The known member holds VIP on 320,000 spent now; last month's purchase adds a bucket.
    seed(&store, program.id, known, 320_000, 1).await;
    let bought = purchase_event(refunded, 400_000, now - Duration::days(1));
    let events = [
        UpstreamEvent::Purchase(purchase_event(known, 10_000, now - Duration::days(40))),
        UpstreamEvent::Purchase(purchase_event(new, 50_000, now - Duration::hours(2))),
        UpstreamEvent::Purchase(bought.clone()),
        UpstreamEvent::Refund {
            activity_id: Uuid::now_v7(),
            customer_id: refunded,
            purchase_id: bought.activity_id,
            amount_minor: 100_000,
        },
    ];
    let programs = [ProgramInForce::load(store.as_ref(), program.id)
        .await
        .expect("in force")];
    let mut tx = store.begin().await.expect("tx");
    let loaded = tx
        .load_feed_batch(&feed_batch::FeedKeys::of(&events, &programs))
        .await
        .expect("load");
    let writes = feed_batch::apply(&events, &programs, loaded, now);
    tx.write_feed_batch(&writes, now).await.expect("write");
    tx.commit().await.expect("commit");

    let mut in_memory: Vec<_> = writes
        .records
        .iter()
        .map(|(program_id, record)| {
            assert_eq!(*program_id, program.id);
            record.clone()
        })
        .collect();
    let mut stored = store
        .customer_records(program.id, &[known, new, refunded])
        .await
        .expect("records");
    in_memory.sort_by_key(|record| record.member.customer_id);
    stored.sort_by_key(|record| record.member.customer_id);
    assert_eq!(in_memory.len(), 3, "every customer the batch touched");
    assert_eq!(in_memory, stored);
    let record = |id: Uuid| {
        stored
            .iter()
            .find(|record| record.member.customer_id == id)
            .expect("record")
    };
    assert_eq!(
        record(known).buckets.len(),
        2,
        "this month's and last month's"
    );
    assert_eq!(
        record(refunded)
            .state
            .as_ref()
            .map(|s| (s.version, s.state.earned_rank)),
        Some((1, 1)),
        "a new state; 400,000 crossed VIP before the refund"
    );
    // The batch found each state's review. The two VIPs qualify on this month's spend, which a
    // scheduled run judging last month (this month's may not have run yet) would not count: their
    // review is last month, and a run now reads them. The new member holds the base tier, which
    // no run can lower: never read.
    let rules = programs[0]
        .policy
        .as_ref()
        .map(|(_, rules)| rules.clone())
        .expect("rules");
    let run = manual_run(&store, program.id, v1.id, now, None).await;
    let (members, candidates, _) = whole_pass(
        &store,
        program.id,
        run.id,
        (10, 1),
        (v1.id, &rules),
        now,
        now,
    )
    .await;
    assert_eq!(members, 3);
    let mut read: Vec<(Uuid, Option<Review>)> = candidates
        .iter()
        .map(|candidate| (candidate.customer_id, candidate.review))
        .collect();
    read.sort_by_key(|(id, _)| *id);
    // Written at the run's start, they may be read again by the pass over what moved.
    read.dedup();
    let last_month = Review {
        policy_version_id: v1.id,
        month: Some(Month::of(now, chrono_tz::UTC).plus(-1)),
    };
    let mut expected = vec![(known, Some(last_month)), (refunded, Some(last_month))];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(read, expected);
}

/// A batch applied in partitions (one transaction per part, then the cursor once all committed)
/// counts each purchase once; and when the feed is read again after a part had committed but the
/// cursor had not moved (a failure between the two), the events met again change nothing.
/// Postgres only: the embedded store has one writer and applies in one part.
pub(crate) async fn a_batch_applied_in_partitions_counts_each_purchase_once_even_read_again(
    store: Arc<dyn ScoringStore>,
) {
    use tierline_runtime::metrics::Metrics;
    use tierline_scoring::{
        cache::TierCache,
        domain::{
            accrual::PurchaseEvent,
            accrual::UpstreamEvent,
            consumer::{ACTIVITY_FEED, FeedApplier},
            partitions::PartitionedApplier,
        },
    };

    let (program, v1) = innisfree_with_draft(&store, 300_000).await;
    let now = activate(&store, v1.id).await;
    let customers: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    let events: Vec<UpstreamEvent> = customers
        .iter()
        .flat_map(|customer_id| {
            [
                UpstreamEvent::CustomerCreated {
                    customer_id: *customer_id,
                    joined_at: now - Duration::days(30),
                },
                UpstreamEvent::Purchase(PurchaseEvent {
                    activity_id: Uuid::now_v7(),
                    customer_id: *customer_id,
                    amount_minor: 350_000,
                    currency: "KRW".into(),
                    brand: String::new(),
                    sales_channel: String::new(),
                    occurred_at: now - Duration::days(1),
                }),
            ]
        })
        .collect();
    let cache = TierCache::in_process(1_000, std::time::Duration::from_secs(60), &Metrics::new());
    // Another partition committed a third of the batch, and the cursor did not move.
    let committed_alone: Vec<UpstreamEvent> = events.iter().step_by(3).cloned().collect();
    FeedApplier::new(store.clone(), cache.clone())
        .apply(&committed_alone, "before", None)
        .await
        .expect("a part committed");
    // The feed is read again from the cursor: the whole batch, in three partitions.
    let applier = PartitionedApplier::new(store.clone(), cache, 3);
    applier
        .apply(events, "after", Some(now))
        .await
        .expect("the batch in partitions");
    let progress = store
        .feed_progress(ACTIVITY_FEED)
        .await
        .expect("progress")
        .expect("a cursor");
    assert_eq!(progress.position, "after");
    assert_eq!(progress.caught_up_to, Some(now));
    let records = store
        .customer_records(program.id, &customers)
        .await
        .expect("records");
    assert_eq!(records.len(), customers.len());
    for record in records {
        let spent: i64 = record
            .buckets
            .iter()
            .map(|bucket| bucket.net_spend_minor)
            .sum();
        assert_eq!(spent, 350_000, "counted once: {:?}", record.member);
        // (A Created event met again raises the record's version for the caches, as after any
        // replay; the tier is what one purchase gives.)
        assert_eq!(
            record.state.as_ref().map(|s| s.state.earned_rank),
            Some(1),
            "VIP on 350,000"
        );
        let (counted, total) = store
            .counted_purchases(program.id, record.member.customer_id, None, now, 10)
            .await
            .expect("counted");
        assert_eq!((counted.len(), total), (1, 1));
    }
}

/// A batch takes its purchases for new ones without looking them up; one counted before (a
/// replay after a failure) refuses the batch's write (`Aborted`) on either backend, and the
/// applier then applies the batch again looking each purchase up: counted once.
pub(crate) async fn a_purchase_counted_before_and_not_looked_up_refuses_the_batch_which_is_applied_again(
    store: Arc<dyn ScoringStore>,
) {
    use tierline_runtime::metrics::Metrics;
    use tierline_scoring::{
        ScoringError,
        cache::TierCache,
        domain::{
            accrual::{PurchaseEvent, UpstreamEvent},
            consumer::{self, FeedApplier, Replays},
            feed_batch,
            in_force::ProgramInForce,
        },
    };

    let (program, v1) = innisfree_with_draft(&store, 300_000).await;
    let now = activate(&store, v1.id).await;
    let customer = Uuid::now_v7();
    let events = [UpstreamEvent::Purchase(PurchaseEvent {
        activity_id: Uuid::now_v7(),
        customer_id: customer,
        amount_minor: 350_000,
        currency: "KRW".into(),
        brand: String::new(),
        sales_channel: String::new(),
        occurred_at: now - Duration::days(1),
    })];
    let cache = TierCache::in_process(1_000, std::time::Duration::from_secs(60), &Metrics::new());
    let applier = FeedApplier::new(store.clone(), cache);
    applier
        .apply(&events, "first", None)
        .await
        .expect("counted the first time");

    let programs = [ProgramInForce::load(store.as_ref(), program.id)
        .await
        .expect("in force")];
    let mut tx = store.begin().await.expect("tx");
    let loaded = consumer::load_batch(tx.as_mut(), &events, &programs, Replays::Unexpected)
        .await
        .expect("load");
    assert!(
        loaded.counted.is_empty(),
        "the batch's purchase not looked up"
    );
    let writes = feed_batch::apply(&events, &programs, loaded, now);
    assert_eq!(writes.counted.len(), 1, "taken for a new one");
    let refused = tx.write_feed_batch(&writes, now).await;
    assert!(
        matches!(refused, Err(ScoringError::Aborted(_))),
        "{refused:?}"
    );
    drop(tx);

    applier
        .apply(&events, "again", None)
        .await
        .expect("applied again, looking it up");
    let (counted, total) = store
        .counted_purchases(program.id, customer, None, now, 10)
        .await
        .expect("counted");
    assert_eq!((counted.len(), total), (1, 1));
    let records = store
        .customer_records(program.id, &[customer])
        .await
        .expect("records");
    let spent: i64 = records[0]
        .buckets
        .iter()
        .map(|bucket| bucket.net_spend_minor)
        .sum();
    assert_eq!(spent, 350_000, "counted once");
}

/// Postgres adds a batch's months to those it found on the pair's state: a month another writer
/// created meanwhile, or one gone meanwhile, refuses the batch (`Aborted`: it is applied again)
/// and changes nothing. Postgres only: the embedded store adds to a bucket or creates it either
/// way.
pub(crate) async fn a_bucket_created_or_gone_meanwhile_refuses_the_batch(
    store: Arc<dyn ScoringStore>,
) {
    async fn write(store: &Arc<dyn ScoringStore>, writes: FeedWrites) -> Result<(), ScoringError> {
        let mut tx = store.begin().await.expect("tx");
        tx.write_feed_batch(&writes, Utc::now()).await?;
        tx.commit().await
    }

    let (program, _) = innisfree_with_draft(&store, 300_000).await;
    let customer = Uuid::now_v7();
    let pair = (program.id, customer);
    let now = Utc::now().trunc_subsecs(6);
    let month = Month::of(now, chrono_tz::UTC);
    let delta = BucketDelta {
        month,
        net_spend_minor: 1_000,
        points: 0,
        purchases: 1,
    };
    // Written as a batch that did not load the state (a single write's way), so the months the
    // store finds when it writes are not those the batch decided on.
    let state = |is_new: bool, version: i64| StateWrite {
        pair,
        stored: StoredState {
            state: TierState::new_member(now),
            version,
        },
        is_new,
        review: None,
    };
    write(
        &store,
        FeedWrites {
            members: vec![Member {
                customer_id: customer,
                joined_at: now - Duration::days(40),
                erased: false,
            }],
            new_buckets: vec![(pair, delta)],
            states: vec![state(true, 0)],
            ..FeedWrites::default()
        },
    )
    .await
    .expect("the month's bucket inserted");
    let created = write(
        &store,
        FeedWrites {
            new_buckets: vec![(pair, delta)],
            states: vec![state(false, 1)],
            ..FeedWrites::default()
        },
    )
    .await;
    assert!(
        matches!(created, Err(ScoringError::Aborted(_))),
        "created meanwhile: {created:?}"
    );
    let gone = write(
        &store,
        FeedWrites {
            buckets: vec![(
                pair,
                BucketDelta {
                    month: month.plus(-1),
                    ..delta
                },
            )],
            states: vec![state(false, 1)],
            ..FeedWrites::default()
        },
    )
    .await;
    assert!(
        matches!(gone, Err(ScoringError::Aborted(_))),
        "gone meanwhile: {gone:?}"
    );
    let records = store
        .customer_records(program.id, &[customer])
        .await
        .expect("records");
    let buckets: Vec<(Month, i64)> = records[0]
        .buckets
        .iter()
        .map(|bucket| (bucket.month, bucket.net_spend_minor))
        .collect();
    assert_eq!(buckets, [(month, 1_000)], "the first write only");
}
