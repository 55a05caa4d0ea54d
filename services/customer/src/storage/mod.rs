//! Storage of the customer service: the domain's ports (`domain::ports`) implemented by two
//! backends (Postgres, the record of truth in production; SQLite, embedded for the development
//! mode), each where its SQL lives, and one conformance suite (`tests/conformance`) run against
//! both.

mod errors;
pub mod postgres;
mod rows;
pub mod sqlite;

pub use crate::domain::ports::{
    ActivityFeedSource, ActivityImports, ActivityPosition, ActivityRecords, BulkOnboarding,
    ConsentRecords, CustomerRecords, CustomerStore,
};
