//! Protobuf timestamps and `chrono` instants, both ways: the one conversion every service, tool
//! and test uses.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

/// `value` as a protobuf timestamp.
pub fn timestamp(value: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: value.timestamp(),
        nanos: i32::try_from(value.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as an instant; `None` when it is out of range (negative nanoseconds, or
/// beyond what `chrono` represents).
pub fn datetime(value: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value.seconds, u32::try_from(value.nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_goes_there_and_back_to_the_nanosecond() {
        let at = DateTime::from_timestamp(1_795_000_000, 123_456_789).expect("in range");
        let sent = timestamp(at);
        assert_eq!((sent.seconds, sent.nanos), (1_795_000_000, 123_456_789));
        assert_eq!(datetime(&sent), Some(at));
    }

    #[test]
    fn a_timestamp_out_of_range_is_none() {
        let negative_nanos = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(datetime(&negative_nanos), None);
        let too_far = Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        };
        assert_eq!(datetime(&too_far), None);
    }
}
