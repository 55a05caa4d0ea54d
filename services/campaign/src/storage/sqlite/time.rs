//! Instants as microseconds since the epoch: integers order and compare exactly, which SQLite's
//! text timestamps would not with varying fractions.

use chrono::{DateTime, Utc};

pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(super) fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
