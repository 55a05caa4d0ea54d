//! The campaign rules, free of gRPC and SQL.
//!
//! - [`campaign`]: the campaign, its validation and its status transitions;
//! - [`holdout`]: the deterministic treatment/control split;
//! - [`enrolment`]: eligibility, re-entry, the frequency cap and the arm, for every way in;
//! - [`launch`]: the resumable launch of a one-shot campaign;
//! - [`triggers`] and [`birthday`]: triggered entries from the tier-change feed and the daily
//!   birthday sweep;
//! - [`attribution`]: which entries a purchase counts for;
//! - [`stats`] and [`report`]: the measured effect;
//! - [`service`] (the campaign's life), [`reads`], [`preview`] and [`deliveries`]: the use cases
//!   the gRPC adapter calls; [`input`]: what callers send, before it is checked.

pub mod attribution;
pub mod birthday;
pub mod campaign;
pub mod deliveries;
pub mod enrolment;
pub mod holdout;
pub mod input;
pub mod launch;
pub mod ports;
pub mod preview;
pub mod reads;
pub mod report;
pub mod service;
pub mod stats;
pub mod triggers;
