//! Instants as both backends store them: `timestamptz` in Postgres, and whole microseconds since
//! the epoch (an INTEGER) in SQLite, which has no date-time type of its own and whose text forms
//! neither sort nor compare as instants. A row type whose instants are [`StoredInstant`] decodes
//! in either dialect, so each service keeps one set of row types for both backends and only its
//! SQL differs.

use chrono::{DateTime, Utc};
use sqlx::{
    Decode, Postgres, Sqlite, Type,
    error::BoxDynError,
    postgres::{PgTypeInfo, PgValueRef},
    sqlite::{SqliteTypeInfo, SqliteValueRef},
};

/// An instant read from either backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoredInstant(pub DateTime<Utc>);

impl From<StoredInstant> for DateTime<Utc> {
    fn from(stored: StoredInstant) -> Self {
        stored.0
    }
}

/// `at` as SQLite stores it: whole microseconds since the epoch (sub-microsecond digits, which
/// Postgres drops too, are dropped).
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The instant SQLite stored as `micros` (one beyond what an instant can hold, which no writer
/// stores, as the epoch).
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl Type<Postgres> for StoredInstant {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for StoredInstant {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(<DateTime<Utc> as Decode<'r, Postgres>>::decode(
            value,
        )?))
    }
}

impl Type<Sqlite> for StoredInstant {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for StoredInstant {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(from_micros(<i64 as Decode<'r, Sqlite>>::decode(
            value,
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    use super::*;

    #[test]
    fn microseconds_round_trip_and_finer_digits_are_dropped() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T10:11:12.123456789Z")
            .expect("an RFC 3339 instant")
            .with_timezone(&Utc);
        let stored = from_micros(micros(at));
        assert_eq!(stored.timestamp_micros(), at.timestamp_micros());
        assert_eq!(stored.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(from_micros(i64::MAX), DateTime::<Utc>::default());
    }

    #[tokio::test]
    async fn sqlite_integers_decode_as_instants_and_nulls_as_none() {
        let mut connection = SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("memory database");
        let at = from_micros(1_764_238_272_123_456);
        let (stored, missing): (StoredInstant, Option<StoredInstant>) =
            sqlx::query_as("SELECT ?1, NULL")
                .bind(micros(at))
                .fetch_one(&mut connection)
                .await
                .expect("one row");
        assert_eq!(DateTime::<Utc>::from(stored), at);
        assert_eq!(missing, None);
    }
}
