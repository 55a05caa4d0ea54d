//! SimulatePolicy and an evaluation run on a large population: a program that prints figures
//! (docs/BENCHMARKS.md).
//!
//! Creates a fresh database with `BENCH_MEMBERS` members (default 1,000,000; their ids
//! time-ordered as the customer service mints them, or at random with `BENCH_IDS=random`), about
//! half of them buying in each of the last 12 months (≈6 buckets per member), the counted
//! purchases behind every bucket (≈12 per member: RFM recency and the customer value model read
//! them at every run), the buckets on every buyer's tier state (the base tier for those below
//! GREEN; one in ten of the others held a level above what they qualify for, last qualified over
//! a year ago, so the evaluation drops them), an active Innisfree-like policy; then times
//! `SimulatePolicy` of a stricter draft through the real gRPC API, `BENCH_RUNS` times (default
//! 3), and four `EvaluateNow` runs to their end (`BENCH_EVALUATE=0` leaves them out), each beside
//! two plain-SQL RFM queries over the same buckets in the same run, with their ratios: one over a
//! table of a row a month as the buckets' own table was (built from the states, untimed), one
//! over the states' month arrays:
//!
//! 1. the first run under the policy, which asks every member's window (none has a review under it)
//!    and judges and writes those it moves (until session 28 it judged everyone and wrote every
//!    review month);
//! 2. the same month again: nobody's review has come, only the lapsed are read;
//! 3. after the population has aged a month without purchases (in SQL, not timed), a heavy
//!    month: the members whose review month has come are read, one in ten drops;
//! 4. after another month in which about half the members buy once (applied through the
//!    consumer's own applier, untimed), a usual monthly run.
//!
//! After runs 1, 3 and 4 it also times, in plain SQL and rolled back, the writes that run made
//! (its states rewritten, its history inserted again) beside the same RFM query: the least any
//! evaluation of that month must spend. About ten minutes at a million members, most of it
//! storing and ageing the twelve million purchases.
//!
//! Run: `cargo bench -p tierline-scoring --bench simulate`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{BenchService, Ids, create_program, knob, rules, seed_population, seed_purchases};
use tierline_proto::scoring::v1::{self as pb, scoring_service_client::ScoringServiceClient};
use tierline_testkit::TestDatabase;

// The services run in this process: with the allocator their binaries have.
tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() {
    // `TEST_LOG=info` shows the service's own account of each run (the value fit's iterations).
    tierline_testkit::init_logging();
    let members = knob("BENCH_MEMBERS", 1_000_000);
    let runs = knob("BENCH_RUNS", 3);
    // 0 skips the evaluation run (minutes at a million members), to time the simulation alone.
    let evaluate = knob("BENCH_EVALUATE", 1) > 0;
    // 1 leaves the database in place at the end (its URL printed), to study plans in psql.
    let keep = knob("BENCH_KEEP", 0) > 0;
    let database = TestDatabase::create().await.unwrap();
    // The evaluation writes every changed state through to Redis, as in production.
    let redis_url = tierline_testkit::redis_url();
    let service = BenchService::start(&database, Some(&redis_url)).await;
    let mut client = service.client.clone();
    let program_id = create_program(&mut client).await;
    seed_population(&database, &program_id, members, 0.5, Ids::from_env()).await;
    seed_purchases(&database).await;
    support::checkpoint(&database).await;

    for run in 1..=runs {
        let started = Instant::now();
        let simulation = client
            .simulate_policy(pb::SimulatePolicyRequest {
                program_id: program_id.clone(),
                policy: Some(pb::simulate_policy_request::Policy::Rules(rules(300_000))),
            })
            .await
            .unwrap()
            .into_inner();
        println!(
            "SimulatePolicy run {run}: {:.2} s for {} members ({} would move down, {} up)",
            started.elapsed().as_secs_f64(),
            simulation.members,
            simulation.downgrades,
            simulation.upgrades
        );
    }

    if !evaluate {
        service.stop().await;
        keep_if_asked(database, keep);
        return;
    }
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(database.url())
        .await
        .unwrap();
    // The first run under the policy reads every member (no review month is known yet) and
    // writes each one's review month.
    let first = evaluate_to_the_end(&mut client, &program_id).await;
    report(
        &mut connection,
        "first run under the policy (asks every window)",
        &first,
    )
    .await;
    report_floor(&mut connection, &program_id, &first).await;
    // The same month again: nobody's review has come but the lapsed members', whom the first
    // run found below their tier inside their grace. The floor of a monthly run. The first run
    // rewrote every state once (its review): vacuumed first, as autovacuum does after that.
    sqlx::query("VACUUM ANALYZE scoring.tier_states")
        .execute(&mut connection)
        .await
        .unwrap();
    let again = evaluate_to_the_end(&mut client, &program_id).await;
    report(
        &mut connection,
        "again in the same month (reads the lapsed)",
        &again,
    )
    .await;
    compare(&mut connection, &program_id, again.seconds).await;
    // A month passes without a purchase: every month, instant and review month moves one month
    // back. The next run reads only the members whose review month has come: with no purchase
    // all month, about one member in ten drops, a heavy month.
    age_by_a_month(&database, &mut connection).await;
    let later = evaluate_to_the_end(&mut client, &program_id).await;
    report(
        &mut connection,
        "a month later (reads the members due)",
        &later,
    )
    .await;
    report_floor(&mut connection, &program_id, &later).await;
    // A usual month: another month passes, and in it about half the members buy, as they did
    // in each month before; their purchases go through the feed as the consumer applies them,
    // which rewrites each buyer's state with the review month its buckets now give. The run
    // then reads the members whose review has come and who did not buy enough.
    age_by_a_month(&database, &mut connection).await;
    buy_for_a_month(&database, 0.5).await;
    let usual = evaluate_to_the_end(&mut client, &program_id).await;
    report(
        &mut connection,
        "a usual month later (half the members bought in it)",
        &usual,
    )
    .await;
    report_floor(&mut connection, &program_id, &usual).await;
    service.stop().await;
    keep_if_asked(database, keep);
}

/// A month passing with no purchase, in SQL: the states' months, purchases and every instant a
/// month back (each month on a state a month earlier, its running totals the same), then
/// vacuumed as autovacuum would have. Tier states and counted purchases go through a copy,
/// written back in the order they were stored: rewriting every state in place (as this did
/// before session 17) would leave the table twice its size and its rows out of order, which no
/// month does to a running service (a run rewrites only the states it changes).
const AGE_BY_A_MONTH: [&str; 11] = [
    "CREATE TEMP TABLE aged AS
         SELECT program_id, customer_id, earned_rank, since - interval '1 month' AS since,
                last_qualified_at - interval '1 month' AS last_qualified_at, override_rank, override_until,
                override_reason, override_operator, override_set_at, version,
                updated_at - interval '1 month' AS updated_at, changed_by_run,
                lapsed_at - interval '1 month' AS lapsed_at, (review_month - interval '1 month')::date AS review_month,
                reviewed_under,
                ARRAY(SELECT (m - interval '1 month')::date FROM unnest(months) WITH ORDINALITY u(m, i) ORDER BY i)
                    AS months,
                spend_through, points_through, purchases_through
         FROM scoring.tier_states ORDER BY ctid",
    "TRUNCATE scoring.tier_states",
    "INSERT INTO scoring.tier_states (program_id, customer_id, earned_rank, since, last_qualified_at, override_rank,
                                      override_until, override_reason, override_operator, override_set_at, version,
                                      updated_at, changed_by_run, lapsed_at, review_month, reviewed_under, months,
                                      spend_through, points_through, purchases_through)
         SELECT * FROM aged",
    "DROP TABLE aged",
    "CREATE TEMP TABLE aged AS
         SELECT program_id, activity_id, customer_id, occurred_at - interval '1 month' AS occurred_at, amount_minor,
                refunded_minor, points, brand, sales_channel
         FROM scoring.counted_purchases ORDER BY ctid",
    "TRUNCATE scoring.counted_purchases",
    "INSERT INTO scoring.counted_purchases SELECT * FROM aged",
    "DROP TABLE aged",
    "UPDATE scoring.members SET joined_at = joined_at - interval '1 month'",
    "UPDATE scoring.programs SET last_evaluated_at = last_evaluated_at - interval '1 month'",
    "VACUUM ANALYZE scoring.tier_states, scoring.members, scoring.counted_purchases",
];

/// Ages the population by a month with no purchase ([`AGE_BY_A_MONTH`]), and counts the
/// purchase profiles of the aged purchases, untimed.
async fn age_by_a_month(database: &TestDatabase, connection: &mut sqlx::PgConnection) {
    let started = Instant::now();
    for statement in AGE_BY_A_MONTH {
        sqlx::query(statement)
            .execute(&mut *connection)
            .await
            .unwrap();
    }
    println!(
        "population aged by a month in {:.1} s (not timed below)",
        started.elapsed().as_secs_f64()
    );
    support::count_purchase_profiles(database).await;
    support::checkpoint(database).await;
}

/// About `share` of the members buy once in the current month (up to 200,000 KRW, at a
/// random instant since the month began), applied through the consumer's own applier
/// (`FeedApplier`) in batches of the consumer's default size, untimed: each buyer's state
/// rewritten with its months and review month, the feed's history written.
async fn buy_for_a_month(database: &TestDatabase, share: f64) {
    use chrono::{DateTime, Utc};
    use tierline_scoring::domain::accrual::{PurchaseEvent, UpstreamEvent};

    let started = Instant::now();
    let applier = support::feed_applier(database);
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(database.url())
        .await
        .unwrap();
    let purchases: Vec<(uuid::Uuid, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT customer_id, (random() * 200000)::bigint,
                date_trunc('month', now()) + random() * (now() - date_trunc('month', now()))
         FROM scoring.members WHERE random() < $1 ORDER BY 3",
    )
    .bind(share)
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let events: Vec<UpstreamEvent> = purchases
        .iter()
        .map(|&(customer_id, amount_minor, occurred_at)| {
            UpstreamEvent::Purchase(PurchaseEvent {
                activity_id: uuid::Uuid::now_v7(),
                customer_id,
                amount_minor,
                currency: "KRW".into(),
                brand: String::new(),
                sales_channel: String::new(),
                occurred_at,
            })
        })
        .collect();
    for (n, batch) in events.chunks(5_000).enumerate() {
        applier
            .apply(batch, &format!("bench-month-{n}"), None)
            .await
            .unwrap();
    }
    // Vacuumed as autovacuum would have in the weeks since (half the states were rewritten).
    sqlx::query("VACUUM ANALYZE scoring.tier_states, scoring.counted_purchases")
        .execute(&mut connection)
        .await
        .unwrap();
    println!(
        "{} purchases in the month applied through the feed in {:.1} s (not timed below)",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    support::checkpoint(database).await;
}

/// A finished run and how long it took.
struct Timed {
    run: pb::EvaluationRun,
    seconds: f64,
}

/// Runs `EvaluateNow` to its end.
async fn evaluate_to_the_end(
    client: &mut ScoringServiceClient<tonic::transport::Channel>,
    program_id: &str,
) -> Timed {
    let started = Instant::now();
    let run = client
        .evaluate_now(pb::EvaluateNowRequest {
            program_id: program_id.to_owned(),
            requested_by: "bench".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let run = loop {
        let current = client
            .get_evaluation_run(pb::GetEvaluationRunRequest {
                evaluation_run_id: run.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if current.status() != pb::EvaluationRunStatus::Running {
            break current;
        }
        // Polled often: a run of about a second must not be timed a tenth of a second long.
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Timed {
        run,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Prints how `timed` ended, and what its refit of the value model cost (the run does it beside
/// the judging, and stores no model when the fit does not converge).
async fn report(connection: &mut sqlx::PgConnection, what: &str, timed: &Timed) {
    let run = &timed.run;
    println!(
        "EvaluateNow, {what}: {:?} in {:.1} s, {} members judged, {} downgrades, {} upgrades",
        run.status(),
        timed.seconds,
        run.members_evaluated,
        run.downgrades,
        run.upgrades
    );
    let fit: Option<(i64, i64, i64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT version, summary_micros, fit_micros, repeat_customers, gg_q FROM scoring.value_models
         WHERE evaluation_run_id = $1::uuid",
    )
    .bind(&run.id)
    .fetch_optional(connection)
    .await
    .unwrap();
    match fit {
        Some((version, summary, fit, repeat_customers, gg_q)) => println!(
            "  its value model: version {version}, summary {:.2} s, fit {:.2} s, spend model {}",
            summary as f64 / 1e6,
            fit as f64 / 1e6,
            gg_q.map_or("left out".to_owned(), |q| format!(
                "fitted on {repeat_customers} repeat buyers (q {q:.3})"
            ))
        ),
        None => println!("  its value model: none stored (the fit did not converge)"),
    }
}

/// Times the writes of `run` alone ([`write_floor`]), then the RFM baseline, and prints both
/// ratios.
async fn report_floor(connection: &mut sqlx::PgConnection, program_id: &str, run: &Timed) {
    let floor = write_floor(connection, &run.run.id).await;
    let rfm = compare(connection, program_id, run.seconds).await;
    println!(
        "  its writes alone in plain SQL (no reading, no judging): {:.1} s for {} states and {} history records; writes / RFM = {:.2}x",
        floor.seconds,
        floor.states,
        floor.history,
        floor.seconds / rfm
    );
}

/// What a run's writes alone cost.
struct WriteFloor {
    seconds: f64,
    states: u64,
    history: u64,
}

/// The least a run that changed what `run_id` changed must write, done again in plain SQL and
/// rolled back: every state it wrote rewritten in one statement, and its history records
/// inserted again in one statement (with new time-ordered ids, as the service's are). No
/// reading of buckets, no judging: the floor under any evaluation of that month.
async fn write_floor(connection: &mut sqlx::PgConnection, run_id: &str) -> WriteFloor {
    use sqlx::Connection;
    let mut tx = connection.begin().await.unwrap();
    let started = Instant::now();
    let states = sqlx::query(
        "UPDATE scoring.tier_states SET version = version + 1, updated_at = clock_timestamp(),
             review_month = review_month, earned_rank = earned_rank, lapsed_at = lapsed_at
         WHERE changed_by_run = $1::uuid",
    )
    .bind(run_id)
    .execute(&mut *tx)
    .await
    .unwrap()
    .rows_affected();
    let history = sqlx::query(
        "INSERT INTO scoring.tier_history (id, program_id, customer_id, from_rank, to_rank, reason,
             policy_version_id, policy_version, totals, occurred_at, window_start, window_end, evaluation_run_id)
         SELECT encode(overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1), 'hex')::uuid,
                program_id, customer_id, from_rank, to_rank, reason, policy_version_id, policy_version,
                totals, occurred_at, window_start, window_end, evaluation_run_id
         FROM scoring.tier_history WHERE evaluation_run_id = $1::uuid",
    )
    .bind(run_id)
    .execute(&mut *tx)
    .await
    .unwrap()
    .rows_affected();
    let seconds = started.elapsed().as_secs_f64();
    tx.rollback().await.unwrap();
    WriteFloor {
        seconds,
        states,
        history,
    }
}

/// The buckets one row a month, as their own table held them until migration `20261208100029`
/// put them on the states (its primary key the covering one of migrations `20261128100013` and
/// `20261128100014`), for the first RFM query: built from the states' arrays (a month's own
/// figures are its running totals less the month before's), each customer's months together in
/// the states' order, then vacuumed and written out ([`support::checkpoint`] says why), untimed.
/// Built again before each comparison, from the months the states have then; left in place at
/// the end, where it goes with the database, or stays for `psql` when `BENCH_KEEP` keeps that.
const RFM_MONTHS: [&str; 5] = [
    "DROP TABLE IF EXISTS scoring.rfm_months",
    "CREATE TABLE scoring.rfm_months AS
         SELECT s.program_id, s.customer_id, u.month,
                s.spend_through[u.i] - COALESCE(s.spend_through[u.i - 1], 0) AS net_spend_minor,
                s.points_through[u.i] - COALESCE(s.points_through[u.i - 1], 0) AS points,
                s.purchases_through[u.i] - COALESCE(s.purchases_through[u.i - 1], 0) AS purchases
         FROM scoring.tier_states s CROSS JOIN LATERAL unnest(s.months) WITH ORDINALITY u(month, i)",
    "ALTER TABLE scoring.rfm_months
         ADD PRIMARY KEY (program_id, customer_id, month) INCLUDE (net_spend_minor, points, purchases)",
    "VACUUM ANALYZE scoring.rfm_months",
    "CHECKPOINT",
];

/// The RFM query, scores used: summed, so that Postgres computes them. With `count(*)` alone
/// over it the planner drops the three window functions nothing reads, and what runs is the
/// `GROUP BY` alone: that is what sessions 16 to 20 timed as the baseline, by mistake.
const RFM: &str = "SELECT count(*), sum(r), sum(f), sum(m) FROM (
     SELECT customer_id,
            NTILE(5) OVER (ORDER BY last_month) AS r,
            NTILE(5) OVER (ORDER BY purchases) AS f,
            NTILE(5) OVER (ORDER BY spend) AS m
     FROM (SELECT customer_id, max(month) AS last_month, sum(purchases) AS purchases,
                  sum(net_spend_minor) AS spend
           FROM scoring.rfm_months WHERE program_id = $1::uuid GROUP BY customer_id) t) s";

/// The same query's `GROUP BY` alone (what the planner made of the baseline until session 20).
const RFM_GROUP_BY: &str = "SELECT count(*) FROM (
     SELECT customer_id, max(month) AS last_month, sum(purchases) AS purchases, sum(net_spend_minor) AS spend
     FROM scoring.rfm_months WHERE program_id = $1::uuid GROUP BY customer_id) t";

/// The latest month on any state of the program: the window from the first month through it,
/// `$2` below, holds every month [`RFM`] sums.
const LAST_MONTH: &str =
    "SELECT max(months[cardinality(months)]) FROM scoring.tier_states WHERE program_id = $1::uuid";

/// The RFM query over the states' own month arrays, as an evaluation reads them: recency the
/// last month, frequency and monetary the window's sums by binary search in the running totals
/// (the window from the beginning through month `$2`), three NTILE(5), scores used as in [`RFM`].
/// `scripts/evaluation-read-floor.sh` times the same query: change both together.
const RFM_OVER_STATES: &str = "SELECT count(*), sum(r), sum(f), sum(m) FROM (
     SELECT customer_id,
            NTILE(5) OVER (ORDER BY last_month) AS r,
            NTILE(5) OVER (ORDER BY purchases) AS f,
            NTILE(5) OVER (ORDER BY spend) AS m
     FROM (SELECT customer_id, months[cardinality(months)] AS last_month,
                  COALESCE(purchases_through[width_bucket($2::date, months)], 0) AS purchases,
                  COALESCE(spend_through[width_bucket($2::date, months)], 0) AS spend
           FROM scoring.tier_states WHERE program_id = $1::uuid AND months <> '{}') t) s";

/// The customers on whom [`RFM`] and [`RFM_OVER_STATES`] disagree before scoring (last month,
/// purchases or spend, or found by one only): none, or the two baselines time different work.
const RFM_DISAGREEMENTS: &str = "SELECT count(*) FROM
     (SELECT customer_id, max(month) AS last_month, sum(purchases) AS f, sum(net_spend_minor) AS m
      FROM scoring.rfm_months WHERE program_id = $1::uuid GROUP BY customer_id) a
     FULL JOIN
     (SELECT customer_id, months[cardinality(months)] AS last_month,
             COALESCE(purchases_through[width_bucket($2::date, months)], 0) AS f,
             COALESCE(spend_through[width_bucket($2::date, months)], 0) AS m
      FROM scoring.tier_states WHERE program_id = $1::uuid AND months <> '{}') b USING (customer_id)
     WHERE a.last_month IS DISTINCT FROM b.last_month OR a.f IS DISTINCT FROM b.f OR a.m IS DISTINCT FROM b.m";

/// The baselines the issue sets, timed now and printed beside the evaluation's `seconds`: a
/// plain-SQL RFM over the same buckets (one GROUP BY and three NTILE(5)) as a table of a row a
/// month ([`RFM_MONTHS`], built first and checked against the states, untimed), its GROUP BY
/// alone, and the same RFM over the states' month arrays; returns the first RFM's time.
async fn compare(connection: &mut sqlx::PgConnection, program_id: &str, seconds: f64) -> f64 {
    for statement in RFM_MONTHS {
        sqlx::query(statement)
            .execute(&mut *connection)
            .await
            .unwrap();
    }
    let last_month: Option<chrono::NaiveDate> = sqlx::query_scalar(LAST_MONTH)
        .bind(program_id)
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    let disagreements: i64 = sqlx::query_scalar(RFM_DISAGREEMENTS)
        .bind(program_id)
        .bind(last_month)
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    assert_eq!(
        disagreements, 0,
        "the RFM over scoring.rfm_months and the RFM over the states' month arrays disagree on \
         {disagreements} customers' last month, purchases or spend: the baselines time different work"
    );
    let started = Instant::now();
    sqlx::query(RFM_GROUP_BY)
        .bind(program_id)
        .execute(&mut *connection)
        .await
        .unwrap();
    let group_by = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (scored, ..): (i64, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(RFM)
        .bind(program_id)
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    let rfm = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (scored_states, ..): (i64, Option<i64>, Option<i64>, Option<i64>) =
        sqlx::query_as(RFM_OVER_STATES)
            .bind(program_id)
            .bind(last_month)
            .fetch_one(&mut *connection)
            .await
            .unwrap();
    let over_states = started.elapsed().as_secs_f64();
    println!(
        "  plain-SQL RFM over the same buckets (GROUP BY and three NTILE(5)): {rfm:.1} s for {scored} customers; evaluation / RFM = {:.2}x",
        seconds / rfm
    );
    println!(
        "  its GROUP BY alone (the baseline as timed until session 20): {group_by:.1} s; evaluation / GROUP BY = {:.2}x",
        seconds / group_by
    );
    println!(
        "  plain-SQL RFM over the states' month arrays (running totals, three NTILE(5)): {over_states:.1} s for {scored_states} customers; evaluation / RFM = {:.2}x",
        seconds / over_states
    );
    rfm
}

/// Leaves the database behind (not dropped) when `BENCH_KEEP` asks for it.
fn keep_if_asked(database: TestDatabase, keep: bool) {
    if keep {
        println!("database kept: {}", database.url());
        std::mem::forget(database);
    }
}
