//! Integration tests of the scoring service through its real gRPC API, each against a fresh
//! Postgres database. Set `TEST_LOG=debug` to see logs.

mod cache;
mod idempotency;
mod lookups;
mod policies;
mod programs;
mod runs;
mod support;
