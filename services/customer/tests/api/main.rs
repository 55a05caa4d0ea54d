//! Integration tests of the customer service through its real gRPC API: each test starts the
//! service on 127.0.0.1:0 against a fresh Postgres database. Set `TEST_LOG=debug` to see logs.
//!
//! One test binary with modules (rather than one binary per file) keeps linking fast.

mod activities;
mod auth;
mod bounds;
mod consents;
mod customers;
mod feed;
mod import;
mod onboarding;
mod server;
mod support;
mod tls;
