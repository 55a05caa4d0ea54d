//! The campaign rules, free of gRPC and SQL.
//!
//! - [`campaign`]: the campaign, its validation and its status transitions;
//! - [`holdout`]: the deterministic treatment/control split;
//! - [`launch`]: the resumable launch of a one-shot campaign;
//! - [`stats`] and [`report`]: the measured effect.

pub mod campaign;
pub mod holdout;
pub mod launch;
pub mod report;
pub mod stats;
