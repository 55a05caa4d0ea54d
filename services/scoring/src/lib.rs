//! The scoring service: Tierline's tier engine.
//!
//! It keeps, per program and customer, monthly aggregates built from the customer service's
//! activity feed, decides tiers from them under a versioned policy (upgrade at once, downgrade
//! only at scheduled evaluations with grace and a drop limit, manual overrides), and explains every
//! decision.
//!
//! Layers as in every service: [`grpc`] → [`domain`] → [`storage`] (Postgres, schema `scoring`).
//!
//! Built so far: the [`domain`] engine — programs and policy validation, accrual into monthly
//! buckets, qualification windows, tier decisions, gaps and retention, evaluation schedules — and
//! the programs, policy versions and evaluation runs through storage and the gRPC API. Not built
//! yet: the activity-feed consumer, tier state and lookups with the Redis cache, history,
//! explanations, overrides, the scheduler, scores and segments, audiences, simulation and the
//! tier-change feed (those RPCs answer UNIMPLEMENTED; see the scoring issue).

pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod feed;
pub mod grpc;
pub mod scheduler;
pub mod storage;

pub use app::Application;
pub use config::ScoringConfig;
pub use error::ScoringError;
