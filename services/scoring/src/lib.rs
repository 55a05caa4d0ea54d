//! The scoring service: Tierline's tier engine.
//!
//! It keeps, per program and customer, monthly aggregates built from the customer service's
//! activity feed, decides tiers from them under a versioned policy (upgrade at once, downgrade
//! only at scheduled evaluations with grace and a drop limit, manual overrides), and explains every
//! decision.
//!
//! Built so far: the [`domain`] engine — programs and policy validation, qualification windows
//! over monthly buckets, tier decisions, gaps to the next tier and what keeps the current one,
//! evaluation schedules. Not built yet: storage, the feed consumer, the gRPC API, the Redis cache,
//! the scheduler, scores and segments, simulation and the tier-change feed (see the scoring issue).

pub mod domain;
pub mod error;

pub use error::ScoringError;
