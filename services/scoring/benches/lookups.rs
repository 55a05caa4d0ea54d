//! Tier lookups against the no-op floor: how close a warm `GetTier` comes to a
//! `grpc.health.v1.Health/Check` of the same server, from the same client, in the same run; how
//! many Postgres transactions warm lookups cost; how much Redis memory a cached customer takes.
//! A program that prints figures (docs/BENCHMARKS.md), for the sizing in docs/DEPLOY.md.
//!
//! 1. A fresh database with `BENCH_MEMBERS` members (default 1,000,000), each with a bucket in
//!    every one of the last 12 months and a tier state, and the Redis database `BENCH_REDIS_DB`
//!    (default 15) of `TIERLINE_TEST_REDIS_URL`, flushed.
//! 2. The scoring service as deployed (Redis and the near cache on, default settings).
//! 3. Fill: `BatchGetTiers` over every member, 500 ids a call from 4 callers: everything misses,
//!    so this is the Postgres read rate; the fills land in Redis in the background.
//! 4. Redis memory: `used_memory` before and after, per cached customer and per million.
//! 5. Same client, same server, random members, `BENCH_ROUNDS` rounds (default 3) of
//!    `Health/Check` then warm `GetTier`, each for `BENCH_SECONDS` (default 10) from
//!    `BENCH_CALLERS` callers (default 64) over 4 connections: the ratio of each round and their
//!    median (the machine is shared, so rounds side by side say more than one long phase); the
//!    Postgres transactions committed in the bench database during the rounds
//!    (`pg_stat_database`, read after the statistics are flushed); then `BatchGetTiers` of 100
//!    from a quarter as many callers.
//! 6. The same `GetTier` load on a second instance without Redis: the Postgres path.
//! 7. `tierline dev` (`BENCH_TIERLINE`, default `target/release/tierline`; skipped when missing):
//!    `--memory --demo` with `BENCH_DEV_CUSTOMERS` customers (default 5,000), then Check against
//!    warm `GetTier` of the demo's members the same way.
//!
//! Run: `cargo build --release -p tierline && cargo bench -p tierline-scoring --bench lookups`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use support::{BenchService, Ids, channel, create_program, knob, seed_population};
use tierline_proto::{
    scoring::v1::{self as pb, scoring_service_client::ScoringServiceClient},
    tonic_health::pb::{HealthCheckRequest, health_client::HealthClient},
};
use tierline_testkit::TestDatabase;
use tokio::io::{AsyncBufReadExt, BufReader};

// The service runs in this process: with the allocator its binary has.
tierline_runtime::service_allocator!();

/// Redis's `used_memory`, in bytes.
async fn used_memory(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(redis)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap()
}

/// This process's resident memory, in bytes (Linux).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

/// A tiny deterministic generator, so runs pick the same members.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// What each call of a load asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// `grpc.health.v1.Health/Check`: the no-op floor.
    Check,
    /// `GetTier` of one random member.
    GetTier,
    /// `BatchGetTiers` of this many random members.
    Batch(usize),
}

/// Calls/s, customers/s and latency of one load.
#[derive(Debug, Clone, Copy)]
struct Measured {
    calls_per_second: f64,
    customers_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs `call` from `callers` callers over `channels` for `seconds`; prints and returns figures.
async fn load(
    label: &str,
    channels: &[tonic::transport::Channel],
    program_id: &str,
    members: Arc<Vec<String>>,
    callers: usize,
    seconds: u64,
    call: Call,
) -> Measured {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let channel = channels[caller % channels.len()].clone();
        let mut scoring = ScoringServiceClient::new(channel.clone());
        let mut health = HealthClient::new(channel);
        let (members, program_id) = (members.clone(), program_id.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (caller as u64 + 1);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let mut pick =
                    || members[(next_random(&mut state) % members.len() as u64) as usize].clone();
                let began = Instant::now();
                match call {
                    Call::Check => {
                        health
                            .check(HealthCheckRequest {
                                service: String::new(),
                            })
                            .await
                            .unwrap();
                    }
                    Call::GetTier => {
                        scoring
                            .get_tier(pb::GetTierRequest {
                                program_id: program_id.clone(),
                                customer_id: pick(),
                            })
                            .await
                            .unwrap();
                    }
                    Call::Batch(size) => {
                        scoring
                            .batch_get_tiers(pb::BatchGetTiersRequest {
                                program_id: program_id.clone(),
                                customer_ids: (0..size).map(|_| pick()).collect(),
                            })
                            .await
                            .unwrap();
                    }
                }
                latencies.push(began.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let calls = latencies.len() as f64;
    let per_call = match call {
        Call::Check | Call::GetTier => 1.0,
        Call::Batch(size) => size as f64,
    };
    let measured = Measured {
        calls_per_second: calls / elapsed,
        customers_per_second: calls * per_call / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    };
    println!(
        "{label}: {:.0} calls/s ({:.0} customers/s) from {callers} callers over {elapsed:.1} s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        measured.calls_per_second,
        measured.customers_per_second,
        measured.p50_ms,
        measured.p99_ms,
        percentile(&latencies, 1.0),
    );
    measured
}

async fn channels(addr: SocketAddr) -> Vec<tonic::transport::Channel> {
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(channel(addr).await);
    }
    channels
}

/// Transactions committed and rolled back in the bench database so far, once every backend has
/// flushed its statistics (PostgreSQL 15 flushes an idle backend's within 10 s).
async fn transactions(admin: &sqlx::PgPool, database: &str) -> i64 {
    tokio::time::sleep(Duration::from_secs(11)).await;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(admin)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_one(admin)
    .await
    .unwrap()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Prints each round's ratio to Check and their median.
fn print_ratios(label: &str, ratios: &[f64]) {
    println!(
        "{label}: {} x Check's calls/s by round; median {:.2}x",
        ratios
            .iter()
            .map(|ratio| format!("{ratio:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        median(ratios)
    );
}

/// `BENCH_ROUNDS` rounds of Check then warm GetTier; the ratio of each round.
async fn rounds(
    lines: &[tonic::transport::Channel],
    program_id: &str,
    members: Arc<Vec<String>>,
    callers: usize,
    seconds: u64,
) -> Vec<f64> {
    let mut ratios = Vec::new();
    for round in 1..=knob("BENCH_ROUNDS", 3) {
        let floor = load(
            &format!("round {round}: Health/Check (the no-op floor)"),
            lines,
            program_id,
            members.clone(),
            callers,
            seconds,
            Call::Check,
        )
        .await;
        let warm = load(
            &format!("round {round}: GetTier, warm"),
            lines,
            program_id,
            members.clone(),
            callers,
            seconds,
            Call::GetTier,
        )
        .await;
        ratios.push(warm.calls_per_second / floor.calls_per_second);
    }
    ratios
}

#[tokio::main]
async fn main() {
    let members = knob("BENCH_MEMBERS", 1_000_000);
    let callers = knob("BENCH_CALLERS", 64);
    let seconds = knob("BENCH_SECONDS", 10) as u64;
    let redis_db = knob("BENCH_REDIS_DB", 15);
    let redis_url = format!(
        "{}/{redis_db}",
        tierline_testkit::redis_url().trim_end_matches('/')
    );
    let mut redis = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut redis).await.unwrap();

    let database = TestDatabase::create().await.unwrap();
    let cached = BenchService::start(&database, Some(&redis_url)).await;
    let mut client = cached.client.clone();
    let program_id = create_program(&mut client).await;
    seed_population(&database, &program_id, members, 1.0, Ids::from_env()).await;
    let pool = sqlx::PgPool::connect(database.url()).await.unwrap();
    // Evaluated members have qualified recently: their records carry that instant too.
    sqlx::query("UPDATE scoring.tier_states SET last_qualified_at = now() - interval '1 month'")
        .execute(&pool)
        .await
        .unwrap();
    // Vacuumed now, so that autovacuum does not run (and count transactions) during the rounds.
    sqlx::raw_sql("VACUUM (ANALYZE) scoring.members, scoring.tier_states")
        .execute(&pool)
        .await
        .unwrap();
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT customer_id FROM scoring.members")
        .fetch_all(&pool)
        .await
        .unwrap();
    let database_name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let admin = sqlx::PgPool::connect(&tierline_testkit::admin_database_url())
        .await
        .unwrap();
    let ids: Arc<Vec<String>> = Arc::new(ids.iter().map(ToString::to_string).collect());

    // Fill the cache: every lookup misses and reads Postgres; Redis is filled in the background.
    let memory_before = used_memory(&mut redis).await;
    let resident_before = resident_bytes();
    let started = Instant::now();
    let mut fillers = Vec::new();
    for part in 0..4 {
        let mut client = client.clone();
        let (ids, program_id) = (ids.clone(), program_id.clone());
        fillers.push(tokio::spawn(async move {
            for chunk in ids.chunks(500).skip(part).step_by(4) {
                client
                    .batch_get_tiers(pb::BatchGetTiersRequest {
                        program_id: program_id.clone(),
                        customer_ids: chunk.to_vec(),
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for filler in fillers {
        filler.await.unwrap();
    }
    let fill = started.elapsed().as_secs_f64();
    println!(
        "fill (all misses, read from Postgres): {} customers in {fill:.1} s, {:.0} customers/s",
        ids.len(),
        ids.len() as f64 / fill
    );
    let mut keys: u64 = 0;
    for _ in 0..600 {
        keys = redis::cmd("DBSIZE").query_async(&mut redis).await.unwrap();
        if keys >= ids.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let memory_after = used_memory(&mut redis).await;
    // The near cache is the replica's (this process's) memory that grew with the fill.
    println!(
        "near cache: this process grew by {:.0} MiB while filling {} records ({:.0} bytes per record)",
        (resident_bytes().saturating_sub(resident_before)) as f64 / 1_048_576.0,
        ids.len(),
        (resident_bytes().saturating_sub(resident_before)) as f64 / ids.len() as f64
    );
    let per_key = (memory_after - memory_before) as f64 / keys as f64;
    println!(
        "redis: {keys} keys (12 monthly buckets each), used_memory {:.1} MiB -> {:.1} MiB: {per_key:.0} bytes per cached customer, {:.0} MiB per million",
        memory_before as f64 / 1_048_576.0,
        memory_after as f64 / 1_048_576.0,
        per_key * 1_000_000.0 / 1_048_576.0
    );

    let lines = channels(cached.addr).await;
    let before = transactions(&admin, &database_name).await;
    let ratios = rounds(&lines, &program_id, ids.clone(), callers, seconds).await;
    let after = transactions(&admin, &database_name).await;
    let batch = load(
        "BatchGetTiers of 100, warm",
        &lines,
        &program_id,
        ids.clone(),
        (callers / 4).max(1),
        seconds,
        Call::Batch(100),
    )
    .await;
    print_ratios("GetTier, warm", &ratios);
    println!(
        "Postgres transactions in the bench database during the Check and warm GetTier rounds: {}",
        after - before
    );
    println!(
        "BatchGetTiers of 100: {:.0} customers/s",
        batch.customers_per_second
    );
    drop(lines);
    cached.stop().await;

    let uncached = BenchService::start(&database, None).await;
    let lines = channels(uncached.addr).await;
    load(
        "GetTier, no Redis (Postgres)",
        &lines,
        &program_id,
        ids.clone(),
        callers,
        seconds,
        Call::GetTier,
    )
    .await;
    drop(lines);
    uncached.stop().await;
    let _: () = redis::cmd("FLUSHDB").query_async(&mut redis).await.unwrap();

    against_tierline_dev(callers, seconds).await;
}

/// The same comparison against `tierline dev` (SQLite, the in-process cache).
async fn against_tierline_dev(callers: usize, seconds: u64) {
    let binary = std::env::var("BENCH_TIERLINE").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/tierline"),
        PathBuf::from,
    );
    if !binary.exists() {
        println!(
            "tierline dev: skipped, {} is missing (cargo build --release -p tierline)",
            binary.display()
        );
        return;
    }
    let customers = knob("BENCH_DEV_CUSTOMERS", 5_000);
    let started = Instant::now();
    let mut dev = tokio::process::Command::new(&binary)
        .args(["dev", "--memory", "--demo", "--port", "0"])
        .args(["--demo-customers", &customers.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    let mut scoring: Option<SocketAddr> = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(url) = line.strip_prefix("scoring").map(str::trim) {
            scoring = url.trim_start_matches("http://").parse().ok();
        }
        if line.starts_with("Ready.") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = scoring.expect("tierline dev printed the scoring endpoint");
    println!(
        "tierline dev: demo of {customers} customers loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut client = ScoringServiceClient::new(channel(addr).await);
    let program = client
        .list_programs(pb::ListProgramsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .programs
        .into_iter()
        .next()
        .expect("a demo program");
    let mut audience = client
        .query_audience(pb::QueryAudienceRequest {
            rule: Some(pb::AudienceRule {
                program_id: program.id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut members = Vec::new();
    while let Some(page) = audience.message().await.unwrap() {
        members.extend(page.members.into_iter().map(|member| member.customer_id));
    }
    let members = Arc::new(members);
    let lines = channels(addr).await;
    // Warm the cache: every member once.
    for chunk in members.chunks(500) {
        client
            .batch_get_tiers(pb::BatchGetTiersRequest {
                program_id: program.id.clone(),
                customer_ids: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
    println!("tierline dev: GetTier of {} demo members", members.len());
    let ratios = rounds(&lines, &program.id, members.clone(), callers, seconds).await;
    print_ratios("tierline dev, GetTier, warm", &ratios);
    dev.kill().await.unwrap();
}
