//! The scoring service: Tierline's tier engine.
//!
//! It keeps, per program and customer, monthly aggregates built from the customer service's
//! activity feed, decides tiers from them under a versioned policy (upgrade at once, downgrade
//! only at scheduled evaluations with grace and a drop limit, manual overrides), explains every
//! decision, and predicts each customer's value (BG/NBD with Gamma-Gamma, `domain::value`).
//!
//! Layers as in every service: [`grpc`] → [`domain`] → [`storage`] (Postgres, schema `scoring`).
//!
//! Around the domain: [`activity_follower`] follows the customer service's activity feed (one
//! leader among the replicas), [`scheduler`] runs evaluations on the policies' schedules and
//! sweeps lifecycles, and [`cache`] keeps tier lookups in Redis. docs/SCORING.md explains the choices.
//!

pub mod activity_follower;
pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod scheduler;
pub mod storage;

pub use app::Application;
pub use config::ScoringConfig;
pub use error::ScoringError;
