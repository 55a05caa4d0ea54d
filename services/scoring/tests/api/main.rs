//! Integration tests of the scoring service through its real gRPC API, each against a fresh
//! Postgres database. Set `TEST_LOG=debug` to see logs.

mod bounds;
mod cache;
mod cache_races;
mod idempotency;
mod lookups;
mod policies;
mod programs;
mod redis_support;
mod runs;
mod support;
mod value_model;
