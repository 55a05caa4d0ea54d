//! Evaluation runs outlive the replica running them: a run left "running" is resumed by another
//! replica, and nobody it already moved is moved twice.

use std::time::Duration;

use chrono::{Months, Utc};
use chrono_tz::Asia::Seoul;
use sqlx::{Connection, PgConnection};
use tierline_proto::scoring::v1 as pb;
use uuid::Uuid;

use crate::support::{
    TestApp, add_month, clear_months, finished_run, innisfree_rules, insert_vip, lookup, month_of,
    program_in_force, tier_code,
};

#[tokio::test]
async fn a_run_whose_replica_died_is_resumed_and_moves_nobody_twice() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut rules = innisfree_rules();
    rules.grace_months = 0;
    let (program, draft_id) = program_in_force(&mut client, "RESUME", rules).await;

    // A manual run that a replica started and died in: its first page moved `already_moved`
    // from VIP to GREEN and committed (marked with the run, counted in the run's counters);
    // `not_yet` was never reached.
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    let orphan = orphaned_manual_run(&mut db, program_id, &draft_id, "now()", (1, 1)).await;
    let already_moved = insert_vip(&mut db, program_id, Some(orphan), 1).await;
    let not_yet = insert_vip(&mut db, program_id, None, 2).await;

    // Another replica starts; its scheduler finds the run without a holder and resumes it.
    let replica = app.replica().await;
    let mut replica_client = replica.client().await;
    let run = finished_run(&mut replica_client, &orphan.to_string()).await;

    assert_eq!(run.status(), pb::EvaluationRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.resumed, 1);
    assert_eq!(
        (run.members_evaluated, run.downgrades),
        (2, 2),
        "the first attempt's member and downgrade count once, the resumed one's once"
    );
    assert_eq!(
        tier_code(&mut client, &program.id, already_moved).await,
        "GREEN",
        "not dropped a second level"
    );
    assert_eq!(tier_code(&mut client, &program.id, not_yet).await, "GREEN");
    let history = client
        .get_tier_history(pb::GetTierHistoryRequest {
            program_id: program.id.clone(),
            customer_id: not_yet.to_string(),
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.records.len(), 1, "{history:?}");
    let record = &history.records[0];
    assert_eq!(
        record.evaluation_run_id,
        Some(orphan.to_string()),
        "{record:?}"
    );
    assert!(
        record.window.is_some() && record.activity_id.is_none(),
        "{record:?}"
    );
}

#[tokio::test]
async fn a_run_by_hand_judges_every_member_on_the_window_of_its_first_start() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut rules = innisfree_rules();
    rules.grace_months = 0;
    let (program, draft_id) = program_in_force(&mut client, "ONEWINDOW", rules).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");

    // A manual run that first started two months ago (in Seoul, the program's zone) and whose
    // replica died before it reached `member`: resumed now, it still judges that month's window.
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    let first_start = "(date_trunc('month', now() AT TIME ZONE 'Asia/Seoul') - interval '2 months' + interval '15 days')
                       AT TIME ZONE 'Asia/Seoul'";
    let orphan = orphaned_manual_run(&mut db, program_id, &draft_id, first_start, (0, 0)).await;
    // A VIP whose only purchases were thirteen months ago: inside the twelve months that end
    // with the run's first month, outside the twelve that end now.
    let member = insert_vip(&mut db, program_id, None, 2).await;
    let month = month_of(Utc::now(), Seoul) - Months::new(13);
    add_month(&mut db, program_id, member, month, 400_000, 0, 2).await;

    let replica = app.replica().await;
    let mut replica_client = replica.client().await;
    let run = finished_run(&mut replica_client, &orphan.to_string()).await;
    assert_eq!(run.status(), pb::EvaluationRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.resumed, 1);
    assert_eq!(
        (run.members_evaluated, run.downgrades),
        (1, 0),
        "judged on the window of the run's first start, in which the purchases count"
    );
    assert_eq!(tier_code(&mut client, &program.id, member).await, "VIP");
}

#[tokio::test]
async fn a_run_someone_is_executing_is_left_alone() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let (program, draft_id) = program_in_force(&mut client, "HELD", innisfree_rules()).await;

    // Someone holds the program's run lock (as a replica executing a run does): a replica that
    // starts meanwhile must not take the run over.
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let orphan = Uuid::now_v7();
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    sqlx::query(
        "INSERT INTO scoring.evaluation_runs (id, program_id, policy_version_id, trigger, status, requested_by, started_at)
         VALUES ($1, $2, $3, 'manual', 'running', 'ops', now())",
    )
    .bind(orphan)
    .bind(program_id)
    .bind(Uuid::parse_str(&draft_id).expect("uuid"))
    .execute(&mut db)
    .await
    .expect("run");
    let key = i64::from_be_bytes(program_id.as_bytes()[..8].try_into().expect("8 bytes"))
        ^ 0x5275_6e4c_6f63_6b00;
    let mut holder = PgConnection::connect(&app.database_url).await.expect("db");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut holder)
        .await
        .expect("lock");
    let replica = app.replica().await;
    let mut replica_client = replica.client().await;
    // The replica's first scheduler tick has run once it serves; give it a second chance.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = replica_client
        .get_evaluation_run(pb::GetEvaluationRunRequest {
            evaluation_run_id: orphan.to_string(),
        })
        .await
        .expect("run")
        .into_inner();
    assert_eq!(run.status(), pb::EvaluationRunStatus::Running);
    assert_eq!(run.resumed, 0);

    // The holder goes away (its replica died): the next tick resumes the run.
    holder.close().await.expect("close");
    drop(replica);
    let replica = app.replica().await;
    let mut replica_client = replica.client().await;
    let run = finished_run(&mut replica_client, &orphan.to_string()).await;
    assert_eq!(run.status(), pb::EvaluationRunStatus::Succeeded);
}

#[tokio::test]
async fn a_scheduled_run_waits_until_the_feed_has_brought_the_period_it_judges() {
    // No margin, so that the test need not wait minutes; a minute at most.
    let settings = [
        ("TIERLINE_EVALUATION_FEED_MARGIN", "0s"),
        ("TIERLINE_EVALUATION_FEED_WAIT", "60s"),
    ];
    let app = TestApp::spawn_with(&settings).await;
    let mut client = app.client().await;
    let mut rules = innisfree_rules();
    rules.grace_months = 0;
    let (program, draft_id) = program_in_force(&mut client, "FEEDWAIT", rules).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");

    // A VIP whose purchases of last month are still in the feed: no month holds them yet, and
    // the feed has brought everything up to two months ago only.
    let member = insert_vip(&mut db, program_id, None, 2).await;
    feed_caught_up_to(&mut db, "now() - interval '60 days'").await;
    // This month's scheduled run, left by a replica that died before judging anyone: a
    // scheduler resumes it.
    let run_id = orphaned_scheduled_run(&mut db, program_id, &draft_id).await;
    let replica = app.replica_with(&settings).await;
    let mut replica_client = replica.client().await;

    // A scheduler picks the run up (its counts before are stored) once the program's run lock is
    // free (a lifecycle sweep holds it a moment at start).
    tierline_testkit::eventually_within(
        "a scheduler to pick the run up",
        Duration::from_secs(30),
        || {
            let mut client = replica_client.clone();
            async move {
                let run = client
                    .get_evaluation_run(pb::GetEvaluationRunRequest {
                        evaluation_run_id: run_id.to_string(),
                    })
                    .await
                    .expect("run")
                    .into_inner();
                (!run.counts_before.is_empty()).then_some(())
            }
        },
    )
    .await;
    // While the feed lags, the run waits and nobody is judged. (Nothing can be awaited for
    // something that must not happen: a second of it is the check.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting = replica_client
        .get_evaluation_run(pb::GetEvaluationRunRequest {
            evaluation_run_id: run_id.to_string(),
        })
        .await
        .expect("run")
        .into_inner();
    assert_eq!(waiting.status(), pb::EvaluationRunStatus::Running);
    assert_eq!(waiting.members_evaluated, 0);
    assert_eq!(
        waiting.counts_after, waiting.counts_before,
        "the counts after so far: nobody moved yet"
    );

    // The consumer applies last month's purchases, and its checkpoint passes the month's end.
    let last_month = month_of(Utc::now(), Seoul) - Months::new(1);
    add_month(&mut db, program_id, member, last_month, 400_000, 0, 2).await;
    sqlx::query("UPDATE scoring.feed_cursors SET caught_up_to = now()")
        .execute(&mut db)
        .await
        .expect("checkpoint");

    let run = finished_run(&mut replica_client, &run_id.to_string()).await;
    assert_eq!(run.status(), pb::EvaluationRunStatus::Succeeded, "{run:?}");
    assert!(run.feed_complete, "{run:?}");
    assert!(
        run.feed_wait.is_some_and(|waited| waited.seconds >= 1),
        "{run:?}"
    );
    assert_eq!(
        run.downgrades, 0,
        "judged on the purchases the feed brought"
    );
    assert_eq!(tier_code(&mut client, &program.id, member).await, "VIP");
}

/// The activity consumer's checkpoint: the feed has brought everything committed before `at`
/// (an SQL expression).
async fn feed_caught_up_to(db: &mut PgConnection, at: &str) {
    sqlx::query(&format!(
        "INSERT INTO scoring.feed_cursors (consumer, position, caught_up_to, updated_at)
         VALUES ('customer-activity-feed', 'v1.1.1', {at}, now())"
    ))
    .execute(&mut *db)
    .await
    .expect("cursor");
}

/// A manual run of `program_id` that started judging at `first_start` (an SQL expression) with
/// `(members_evaluated, downgrades)` counted, its counts before stored, and "running" with no
/// replica holding it, as one that died leaves it: a scheduler resumes it. Returns its id.
async fn orphaned_manual_run(
    db: &mut PgConnection,
    program_id: Uuid,
    draft_id: &str,
    first_start: &str,
    (evaluated, downgrades): (i64, i64),
) -> Uuid {
    let run_id = Uuid::now_v7();
    sqlx::query(&format!(
        "INSERT INTO scoring.evaluation_runs (id, program_id, policy_version_id, trigger, status, requested_by, started_at,
                                             judging_started_at, members_evaluated, downgrades, counts_before)
         VALUES ($1, $2, $3, 'manual', 'running', 'ops', now(), {first_start}, $4, $5, '[]')"
    ))
    .bind(run_id)
    .bind(program_id)
    .bind(Uuid::parse_str(draft_id).expect("uuid"))
    .bind(evaluated)
    .bind(downgrades)
    .execute(&mut *db)
    .await
    .expect("orphaned manual run");
    run_id
}

/// This month's scheduled run of `program_id` (due at the month's start in Seoul), "running" with
/// no replica holding it, as one that died leaves it: a scheduler resumes it. Returns its id.
async fn orphaned_scheduled_run(db: &mut PgConnection, program_id: Uuid, draft_id: &str) -> Uuid {
    let run_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO scoring.evaluation_runs (id, program_id, policy_version_id, trigger, due_at, status, requested_by, started_at)
         VALUES ($1, $2, $3, 'schedule', date_trunc('month', now() AT TIME ZONE 'Asia/Seoul') AT TIME ZONE 'Asia/Seoul',
                 'running', 'scheduler', now())",
    )
    .bind(run_id)
    .bind(program_id)
    .bind(Uuid::parse_str(draft_id).expect("uuid"))
    .execute(&mut *db)
    .await
    .expect("scheduled run");
    run_id
}

/// Runs `EvaluateNow` on a program to its end.
async fn evaluated(client: &mut crate::support::Client, program_id: &str) -> pb::EvaluationRun {
    let run = client
        .evaluate_now(pb::EvaluateNowRequest {
            program_id: program_id.to_owned(),
            requested_by: "ops".into(),
            idempotency_key: String::new(),
        })
        .await
        .expect("evaluate")
        .into_inner();
    let run = finished_run(client, &run.id).await;
    assert_eq!(run.status(), pb::EvaluationRunStatus::Succeeded, "{run:?}");
    run
}

#[tokio::test]
async fn an_evaluation_writes_only_the_states_it_changes_and_grace_counts_from_the_last_one() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    // Grace 3 months, drop limit 1.
    let (program, _) = program_in_force(&mut client, "UNTOUCHED", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    // A VIP who last qualified (by a purchase) two years ago and spends 400,000 this month.
    let customer = insert_vip(&mut db, program_id, None, 2).await;
    sqlx::query(
        "UPDATE scoring.tier_states SET last_qualified_at = now() - interval '2 years' WHERE customer_id = $1",
    )
    .bind(customer)
    .execute(&mut db)
    .await
    .expect("last qualified");
    let this_month = month_of(Utc::now(), Seoul);
    add_month(&mut db, program_id, customer, this_month, 400_000, 0, 2).await;
    let state =
        "SELECT version, lapsed_at IS NOT NULL FROM scoring.tier_states WHERE customer_id = $1";

    // Still qualified: the run judges the member and writes nothing.
    let first = evaluated(&mut client, &program.id).await;
    assert_eq!((first.members_evaluated, first.downgrades), (1, 0));
    let (version, lapsed): (i64, bool) = sqlx::query_as(state)
        .bind(customer)
        .fetch_one(&mut db)
        .await
        .expect("state");
    assert_eq!((version, lapsed), (1, false), "not rewritten");

    // The spend goes away (a correction, say). The next run finds the member below VIP: they
    // have lapsed, and grace counts from the first run, which found them qualified — not from
    // two years ago, which would drop them at once.
    clear_months(&mut db, customer).await;
    // Whatever takes spend away through the service (a refund through the feed) finds the
    // member's review again; this correction behind its back must say so itself.
    sqlx::query("UPDATE scoring.tier_states SET reviewed_under = NULL WHERE customer_id = $1")
        .bind(customer)
        .execute(&mut db)
        .await
        .expect("review forgotten");
    let second = evaluated(&mut client, &program.id).await;
    assert_eq!(second.downgrades, 0, "{second:?}");
    let (version, lapsed): (i64, bool) = sqlx::query_as(state)
        .bind(customer)
        .fetch_one(&mut db)
        .await
        .expect("state");
    assert_eq!((version, lapsed), (2, true), "the lapse is written once");
    assert_eq!(tier_code(&mut client, &program.id, customer).await, "VIP");

    // A third run inside the grace changes nothing again.
    evaluated(&mut client, &program.id).await;
    let (version, _): (i64, bool) = sqlx::query_as(state)
        .bind(customer)
        .fetch_one(&mut db)
        .await
        .expect("state");
    assert_eq!(version, 2);
}

/// A member of `program_id` at `rank` with nothing bought, who joined `months_ago` months
/// before this month began (Seoul), ten days into that month.
async fn member_joined(
    db: &mut PgConnection,
    program_id: Uuid,
    rank: i32,
    months_ago: i32,
) -> Uuid {
    let customer_id = insert_vip(db, program_id, None, rank).await;
    sqlx::query(
        "UPDATE scoring.members SET joined_at = (date_trunc('month', now() AT TIME ZONE 'Asia/Seoul')
             - make_interval(months => $2) + interval '10 days') AT TIME ZONE 'Asia/Seoul'
         WHERE customer_id = $1",
    )
    .bind(customer_id)
    .bind(months_ago)
    .execute(&mut *db)
    .await
    .expect("joined");
    customer_id
}

#[tokio::test]
async fn a_membership_year_is_reviewed_at_each_members_anniversary_and_never_mid_year() {
    let settings = [
        ("TIERLINE_EVALUATION_FEED_MARGIN", "0s"),
        ("TIERLINE_EVALUATION_FEED_WAIT", "60s"),
    ];
    let app = TestApp::spawn_with(&settings).await;
    let mut client = app.client().await;
    let mut rules = innisfree_rules();
    rules.window = Some(pb::QualificationWindow {
        kind: pb::WindowKind::MembershipYear.into(),
        rolling_months: 0,
    });
    rules.grace_months = 0;
    rules.max_levels_dropped = None;
    let (program, draft_id) = program_in_force(&mut client, "ANNIVERSARY", rules).await;
    let program_id = Uuid::parse_str(&program.id).expect("uuid");
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    // Two VIPs who bought nothing in their current membership year. One joined two years ago
    // this month: their second year closed with last month, which this month's run judges.
    // The other joined 29 months ago: five months into their third year.
    let closing = member_joined(&mut db, program_id, 2, 24).await;
    let mid_year = member_joined(&mut db, program_id, 2, 29).await;

    // A run by hand judges a month still running: nobody's year is complete, nobody moves.
    let manual = evaluated(&mut client, &program.id).await;
    assert_eq!(manual.downgrades, 0, "{manual:?}");

    // The mid-year member's next review is the run due in their anniversary month.
    let retention = lookup(&mut client, &program.id, mid_year)
        .await
        .retention
        .expect("retention");
    let anniversary_month: (chrono::DateTime<chrono::Utc>,) = sqlx::query_as(
        "SELECT ((date_trunc('month', now() AT TIME ZONE 'Asia/Seoul') + interval '7 months' + interval '3 hours')
                 AT TIME ZONE 'Asia/Seoul')",
    )
    .fetch_one(&mut db)
    .await
    .expect("due");
    assert_eq!(
        retention.next_evaluation_at.map(|t| t.seconds),
        Some(anniversary_month.0.timestamp()),
        "{retention:?}"
    );
    assert!(!retention.secured);
    assert_eq!(
        retention.lowest_possible_tier.map(|tier| tier.code),
        Some("WELCOME".to_owned())
    );

    // This month's scheduled run, with the feed caught up.
    feed_caught_up_to(&mut db, "now()").await;
    let run_id = orphaned_scheduled_run(&mut db, program_id, &draft_id).await;
    let replica = app.replica_with(&settings).await;
    let mut replica_client = replica.client().await;
    let run = finished_run(&mut replica_client, &run_id.to_string()).await;
    assert_eq!(run.status(), pb::EvaluationRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.downgrades, 1, "{run:?}");
    // The counts after are the counts before with the run's one move, for every tier.
    let held = |counts: &[pb::TierCount], code: &str| {
        counts
            .iter()
            .find(|count| count.tier_code == code)
            .map(|count| count.customers)
    };
    let codes = |counts: &[pb::TierCount]| -> Vec<String> {
        counts.iter().map(|count| count.tier_code.clone()).collect()
    };
    assert_eq!(
        codes(&run.counts_before),
        codes(&run.counts_after),
        "{run:?}"
    );
    assert_eq!(
        run.counts_before.len(),
        4,
        "every tier of the ladder: {run:?}"
    );
    for count in &run.counts_before {
        let moved = match count.tier_code.as_str() {
            "VIP" => -1,
            "WELCOME" => 1,
            _ => 0,
        };
        assert_eq!(
            held(&run.counts_after, &count.tier_code),
            Some(count.customers + moved),
            "{run:?}"
        );
    }
    assert_eq!(
        tier_code(&mut client, &program.id, closing).await,
        "WELCOME"
    );
    assert_eq!(
        tier_code(&mut client, &program.id, mid_year).await,
        "VIP",
        "judged at their own anniversary, not on five months"
    );
}
