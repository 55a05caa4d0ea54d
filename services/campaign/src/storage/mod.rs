//! Storage of the campaign service: the domain's ports (`domain::ports`) implemented by two
//! backends (Postgres; SQLite, embedded for the development mode), and one conformance suite
//! (`tests/conformance`) run against both.

mod campaign_row;
mod errors;
pub mod postgres;
mod rows;
pub mod sqlite;
mod tallies;

pub use crate::domain::ports::*;
