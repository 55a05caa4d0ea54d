//! Tier lookups: how many one replica answers from the Redis cache and from Postgres, and how
//! much Redis memory a million cached customers take. A program that prints figures
//! (docs/BENCHMARKS.md), for the sizing in docs/DEPLOY.md.
//!
//! 1. A fresh database with `BENCH_MEMBERS` members (default 1,000,000; the population of the
//!    simulate benchmark: ≈6 monthly buckets each) and the Redis database `BENCH_REDIS_DB`
//!    (default 15) of `TIERLINE_TEST_REDIS_URL`, flushed.
//! 2. Fill: `BatchGetTiers` over every member, 500 ids a call from 4 callers. Everything misses,
//!    so this is the Postgres read rate, and it leaves every member cached (cache-aside).
//! 3. Redis memory: `used_memory` before and after, per cached customer and per million.
//! 4. Warm: `GetTier` of random members from `BENCH_CALLERS` callers (default 64) for
//!    `BENCH_SECONDS` (default 10): calls/s and latency at the client; then `BatchGetTiers` of
//!    100 random members the same way.
//! 5. The same `GetTier` load on a second instance without Redis: the Postgres fallback rate.
//!
//! Run: `cargo bench -p tierline-scoring --bench lookups`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use support::{BenchService, channel, create_program, knob, seed_population};
use tierline_proto::scoring::v1::{self as pb, scoring_service_client::ScoringServiceClient};
use tierline_testkit::TestDatabase;

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

/// Runs `calls` of `ids_per_call` random members from `callers` callers over 4 connections
/// for `seconds`; prints calls/s, customers/s and latency.
async fn load(
    label: &str,
    addr: std::net::SocketAddr,
    program_id: &str,
    members: Arc<Vec<String>>,
    callers: usize,
    seconds: u64,
    ids_per_call: usize,
) {
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(channel(addr).await);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let mut client = ScoringServiceClient::new(channels[caller % channels.len()].clone());
        let (members, program_id) = (members.clone(), program_id.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (caller as u64 + 1);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let mut pick =
                    || members[(next_random(&mut state) % members.len() as u64) as usize].clone();
                let call = Instant::now();
                if ids_per_call == 1 {
                    client
                        .get_tier(pb::GetTierRequest {
                            program_id: program_id.clone(),
                            customer_id: pick(),
                        })
                        .await
                        .unwrap();
                } else {
                    let customer_ids = (0..ids_per_call).map(|_| pick()).collect();
                    client
                        .batch_get_tiers(pb::BatchGetTiersRequest {
                            program_id: program_id.clone(),
                            customer_ids,
                        })
                        .await
                        .unwrap();
                }
                latencies.push(call.elapsed());
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
    println!(
        "{label}: {:.0} calls/s ({:.0} customers/s) from {callers} callers over {elapsed:.1} s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        calls / elapsed,
        calls * ids_per_call as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
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
    seed_population(&database, &program_id, members).await;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT customer_id FROM scoring.members")
        .fetch_all(&sqlx::PgPool::connect(database.url()).await.unwrap())
        .await
        .unwrap();
    let ids: Arc<Vec<String>> = Arc::new(ids.iter().map(ToString::to_string).collect());

    // Fill the cache: every lookup misses, reads Postgres and writes Redis.
    let memory_before = used_memory(&mut redis).await;
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
        "fill (all misses, Postgres then Redis): {} customers in {fill:.1} s, {:.0} customers/s",
        ids.len(),
        ids.len() as f64 / fill
    );
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut redis).await.unwrap();
    let memory_after = used_memory(&mut redis).await;
    let per_key = (memory_after - memory_before) as f64 / keys as f64;
    println!(
        "redis: {keys} keys, used_memory {:.1} MiB -> {:.1} MiB: {per_key:.0} bytes per cached customer, {:.0} MiB per million",
        memory_before as f64 / 1_048_576.0,
        memory_after as f64 / 1_048_576.0,
        per_key * 1_000_000.0 / 1_048_576.0
    );

    load(
        "GetTier, Redis warm",
        cached.addr,
        &program_id,
        ids.clone(),
        callers,
        seconds,
        1,
    )
    .await;
    load(
        "BatchGetTiers of 100, Redis warm",
        cached.addr,
        &program_id,
        ids.clone(),
        callers / 4,
        seconds,
        100,
    )
    .await;
    cached.stop().await;

    let uncached = BenchService::start(&database, None).await;
    load(
        "GetTier, no Redis (Postgres)",
        uncached.addr,
        &program_id,
        ids.clone(),
        callers,
        seconds,
        1,
    )
    .await;
    uncached.stop().await;
    let _: () = redis::cmd("FLUSHDB").query_async(&mut redis).await.unwrap();
}
