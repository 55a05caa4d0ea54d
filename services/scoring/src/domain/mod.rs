//! The tier engine, free of gRPC and SQL.
//!
//! - [`program`]: programs, their tier ladders and scopes;
//! - [`accrual`]: how one activity changes a customer's buckets and points;
//! - [`policy`]: the versioned rules (requirements per tier, window, schedule, grace, drop limit)
//!   and their validation;
//! - [`month`] and [`window`]: monthly buckets and the window of months that counts at an instant;
//! - [`purchase_profile`]: a customer's purchase history in one row, kept by the feed;
//! - [`decision`]: what tier a customer holds, how it changes, and why;
//! - [`schedule`]: when the next evaluation is due;
//! - [`versions`]: policy versions and evaluation runs as stored;
//! - [`idempotency`]: retried writes;
//! - [`in_force`]: programs and their policies in force, held in memory for lookups;
//! - [`service`]: the operations the API offers.

pub mod accrual;
pub mod audience;
pub mod backfill;
pub mod cache_writes;
mod chunk_walk;
pub mod consumer;
mod cut_points;
pub mod decision;
pub mod evaluation;
pub mod feed_batch;
pub mod idempotency;
pub mod in_force;
pub mod lookup;
pub mod month;
pub mod partitions;
pub mod policy;
pub mod ports;
pub mod program;
pub mod purchase_profile;
pub mod review;
pub mod run_counts;
pub mod schedule;
pub mod scores;
pub mod service;
pub mod state;
pub mod tier_feed;
pub mod value;
pub mod versions;
pub mod window;

mod violations;
