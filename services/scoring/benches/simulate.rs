//! SimulatePolicy and an evaluation run on a large population: a program that prints figures
//! (docs/BENCHMARKS.md).
//!
//! Creates a fresh database with `BENCH_MEMBERS` members (default 1,000,000), about half of them
//! buying in each of the last 12 months (≈6 buckets per member), tier states for those above the
//! base tier (one in ten held a level above what they qualify for, last qualified over a year
//! ago, so the evaluation drops them), an active Innisfree-like policy; then times
//! `SimulatePolicy` of a stricter draft through the real gRPC API, `BENCH_RUNS` times (default
//! 3), and one `EvaluateNow` run to its end (`BENCH_EVALUATE=0` leaves it out), beside a
//! plain-SQL RFM query over the same buckets in the same run, with their ratio.
//!
//! Run: `cargo bench -p tierline-scoring --bench simulate`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{BenchService, create_program, knob, rules, seed_population};
use tierline_proto::scoring::v1 as pb;
use tierline_testkit::TestDatabase;

// The services run in this process: with the allocator their binaries have.
tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() {
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
    seed_population(&database, &program_id, members, 0.5).await;

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
    let started = Instant::now();
    let run = client
        .evaluate_now(pb::EvaluateNowRequest {
            program_id: program_id.clone(),
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "EvaluateNow: {:?} in {seconds:.1} s, {} members judged ({:.0}/s), {} downgrades, {} upgrades",
        run.status(),
        run.members_evaluated,
        run.members_evaluated as f64 / seconds,
        run.downgrades,
        run.upgrades
    );
    // The baseline the issue sets: a plain-SQL RFM over the same buckets (one GROUP BY and three
    // NTILE(5)), in the same run.
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(database.url())
        .await
        .unwrap();
    let started = Instant::now();
    let scored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT customer_id,
                    NTILE(5) OVER (ORDER BY last_month) AS r,
                    NTILE(5) OVER (ORDER BY purchases) AS f,
                    NTILE(5) OVER (ORDER BY spend) AS m
             FROM (SELECT customer_id, max(month) AS last_month, sum(purchases) AS purchases,
                          sum(net_spend_minor) AS spend
                   FROM scoring.buckets WHERE program_id = $1::uuid GROUP BY customer_id) t) s",
    )
    .bind(&program_id)
    .fetch_one(&mut connection)
    .await
    .unwrap();
    let rfm = started.elapsed().as_secs_f64();
    println!(
        "plain-SQL RFM over the same buckets: {rfm:.1} s for {scored} customers; evaluation / RFM = {:.1}x",
        seconds / rfm
    );
    service.stop().await;
    keep_if_asked(database, keep);
}

/// Leaves the database behind (not dropped) when `BENCH_KEEP` asks for it.
fn keep_if_asked(database: TestDatabase, keep: bool) {
    if keep {
        println!("database kept: {}", database.url());
        std::mem::forget(database);
    }
}
