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
//! Background work runs in every replica that enables it, safely at once: the [`scheduler`]
//! (scheduled launches, ends, interrupted launches, birthday sweeps; per-campaign locks) and the
//! [`followers`] (attribution from the activity feed, triggers from the tier-change feed; one leader
//! each).

pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod followers;
pub mod grpc;
pub mod scheduler;
pub mod storage;
pub mod upstream;

pub use app::Application;
pub use config::CampaignConfig;
pub use error::CampaignError;
