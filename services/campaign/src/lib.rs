//! The campaign service: turns tiers into campaigns whose effect is measured.
//!
//! A campaign aims an offer at an audience (tiers, segments, lifecycle, scores and spend from
//! the scoring service; attributes and birth months from the customer service), holds out a
//! deterministic control group, suppresses those without consent, erased or over the frequency
//! cap, creates one delivery per treatment member for channel adapters, attributes purchases from
//! the customer service's activity feed, and reports the uplift with its confidence.
//!
//! Layers as in every service: `grpc` → [`domain`] → [`storage`] (Postgres, schema `campaign`);
//! [`upstream`] is the gRPC view of the other services.
//!
//! Built so far: the campaign model and its validation and transitions, the deterministic
//! holdout, the statistics and the report, the resumable launch, and the Postgres storage of
//! campaigns, members, suppressions, deliveries (leases, acks) and attribution. Not built yet:
//! the gRPC API and binary, the attribution consumer, triggers, the audience preview and the
//! scheduler (see `services/campaign/README.md`).

pub mod domain;
pub mod error;
pub mod storage;
pub mod upstream;

pub use error::CampaignError;
