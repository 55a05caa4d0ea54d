//! The cached form of a customer record: exactly what a lookup reads, in a compact binary
//! encoding (protobuf through prost's derive; an internal format, not an API contract, so it
//! lives here rather than in the proto crate).
//!
//! A cached value is `{version}:{protobuf}`: the decimal version first, so that the
//! compare-and-set scripts in Redis read it without decoding protobuf. Monthly buckets are
//! parallel packed arrays with months as deltas (one byte per consecutive month) and zigzag
//! amounts; instants are microseconds since the Unix epoch, so everything round-trips exactly.
//!
//! A record with a state and 12 monthly buckets takes about 100 to 150 bytes, against 1.1 KB as
//! JSON before (docs/BENCHMARKS.md has the measured Redis memory per customer).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use prost::Message;
use uuid::Uuid;

use crate::{
    domain::ports::CustomerRecord,
    domain::{
        decision::{Override, TierState},
        month::Month,
        state::{Member, StoredState},
        window::Bucket,
    },
};

#[derive(Clone, PartialEq, prost::Message)]
struct CachedRecord {
    #[prost(sint64, tag = "2")]
    joined_at: i64,
    #[prost(bool, tag = "3")]
    erased: bool,
    #[prost(message, optional, tag = "4")]
    state: Option<CachedState>,
    /// The first month's index (year × 12 + month − 1), then the gap to each next one.
    #[prost(sint32, repeated, tag = "5")]
    months: Vec<i32>,
    #[prost(sint64, repeated, tag = "6")]
    net_spend_minor: Vec<i64>,
    /// Empty when every bucket has 0 points (programs that count spend only).
    #[prost(sint64, repeated, tag = "7")]
    points: Vec<i64>,
    #[prost(sint64, repeated, tag = "8")]
    purchases: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CachedState {
    #[prost(uint32, tag = "1")]
    earned_rank: u32,
    #[prost(sint64, tag = "2")]
    since: i64,
    #[prost(sint64, optional, tag = "3")]
    last_qualified_at: Option<i64>,
    #[prost(message, optional, tag = "4")]
    manual: Option<CachedOverride>,
    #[prost(sint64, optional, tag = "5")]
    lapsed_at: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CachedOverride {
    #[prost(uint32, tag = "1")]
    rank: u32,
    #[prost(sint64, tag = "2")]
    until: i64,
    #[prost(string, tag = "3")]
    reason: String,
    #[prost(string, tag = "4")]
    operator: String,
    #[prost(sint64, tag = "5")]
    set_at: i64,
}

fn micros(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_micros()
}

fn instant(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

fn month_index(month: Month) -> i32 {
    month.year() * 12 + month.month() as i32 - 1
}

fn month_of(index: i32) -> Option<Month> {
    Month::new(
        index.div_euclid(12),
        index.rem_euclid(12).unsigned_abs() + 1,
    )
}

/// The record's version: its state's, 0 for a member never changed.
pub(super) fn version(record: &CustomerRecord) -> i64 {
    record.state.as_ref().map_or(0, |state| state.version)
}

/// Encodes a record as a cached value.
pub(super) fn encode(record: &CustomerRecord) -> Bytes {
    let mut months = Vec::with_capacity(record.buckets.len());
    let mut previous: Option<i32> = None;
    for bucket in &record.buckets {
        let index = month_index(bucket.month);
        months.push(previous.map_or(index, |previous| index - previous));
        previous = Some(index);
    }
    let points: Vec<i64> = if record.buckets.iter().all(|bucket| bucket.points == 0) {
        Vec::new()
    } else {
        record.buckets.iter().map(|bucket| bucket.points).collect()
    };
    let cached = CachedRecord {
        joined_at: micros(record.member.joined_at),
        erased: record.member.erased,
        state: record.state.as_ref().map(|stored| {
            let state = &stored.state;
            CachedState {
                earned_rank: state.earned_rank,
                since: micros(state.since),
                last_qualified_at: state.last_qualified_at.map(micros),
                lapsed_at: state.lapsed_at.map(micros),
                manual: state.manual.as_ref().map(|manual| CachedOverride {
                    rank: manual.rank,
                    until: micros(manual.until),
                    reason: manual.reason.clone(),
                    operator: manual.operator.clone(),
                    set_at: micros(manual.set_at),
                }),
            }
        }),
        months,
        net_spend_minor: record.buckets.iter().map(|b| b.net_spend_minor).collect(),
        points,
        purchases: record.buckets.iter().map(|b| b.purchases).collect(),
    };
    let prefix = format!("{}:", version(record));
    let mut value = Vec::with_capacity(prefix.len() + cached.encoded_len());
    value.extend_from_slice(prefix.as_bytes());
    cached.encode(&mut value).unwrap_or_default();
    Bytes::from(value)
}

/// The version of a cached value, without decoding the rest; `None` for anything else (a lease).
pub(super) fn version_of(value: &[u8]) -> Option<i64> {
    let end = value.iter().position(|byte| *byte == b':')?;
    std::str::from_utf8(&value[..end]).ok()?.parse().ok()
}

/// Decodes the cached value of `customer_id` (the key says whose it is, so the value does not);
/// `None` for anything that is not one (a lease, a corrupt value).
pub(super) fn decode(customer_id: Uuid, value: &[u8]) -> Option<CustomerRecord> {
    let end = value.iter().position(|byte| *byte == b':')?;
    let version: i64 = std::str::from_utf8(&value[..end]).ok()?.parse().ok()?;
    let cached = CachedRecord::decode(&value[end + 1..]).ok()?;
    let state = match cached.state {
        None => None,
        Some(state) => Some(StoredState {
            state: TierState {
                earned_rank: state.earned_rank,
                since: instant(state.since)?,
                last_qualified_at: match state.last_qualified_at {
                    Some(at) => Some(instant(at)?),
                    None => None,
                },
                lapsed_at: match state.lapsed_at {
                    Some(at) => Some(instant(at)?),
                    None => None,
                },
                manual: match state.manual {
                    Some(manual) => Some(Override {
                        rank: manual.rank,
                        until: instant(manual.until)?,
                        reason: manual.reason,
                        operator: manual.operator,
                        set_at: instant(manual.set_at)?,
                    }),
                    None => None,
                },
            },
            version,
        }),
    };
    let count = cached.months.len();
    if cached.net_spend_minor.len() != count
        || cached.purchases.len() != count
        || !(cached.points.is_empty() || cached.points.len() == count)
    {
        return None;
    }
    let mut buckets = Vec::with_capacity(count);
    let mut index = 0;
    for (position, delta) in cached.months.iter().enumerate() {
        index = if position == 0 { *delta } else { index + delta };
        buckets.push(Bucket {
            month: month_of(index)?,
            net_spend_minor: cached.net_spend_minor[position],
            points: cached.points.get(position).copied().unwrap_or(0),
            purchases: cached.purchases[position],
        });
    }
    Some(CustomerRecord {
        member: Member {
            customer_id,
            joined_at: instant(cached.joined_at)?,
            erased: cached.erased,
        },
        state,
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{SubsecRound, TimeZone};

    use super::*;

    fn record(buckets: usize, with_override: bool) -> CustomerRecord {
        let at = |day: u32| {
            Utc.with_ymd_and_hms(2026, 3, day, 10, 30, 0).unwrap()
                + chrono::Duration::microseconds(123_457)
        };
        CustomerRecord {
            member: Member {
                customer_id: Uuid::now_v7(),
                joined_at: at(1).trunc_subsecs(6),
                erased: false,
            },
            state: Some(StoredState {
                state: TierState {
                    earned_rank: 2,
                    since: at(2),
                    last_qualified_at: Some(at(3)),
                    lapsed_at: with_override.then(|| at(4)),
                    manual: with_override.then(|| Override {
                        rank: 3,
                        until: at(28),
                        reason: "VIP 고객 보상".into(),
                        operator: "상담원 김".into(),
                        set_at: at(4),
                    }),
                },
                version: 17,
            }),
            buckets: (0..buckets)
                .map(|k| Bucket {
                    // Twelve months back from March 2026, with a gap.
                    month: Month::new(2025, 3)
                        .expect("a month")
                        .plus(k as i32 + i32::from(k > 4)),
                    net_spend_minor: 150_000 + k as i64 * 1_000,
                    points: if with_override { k as i64 - 3 } else { 0 },
                    purchases: 2,
                })
                .collect(),
        }
    }

    #[test]
    fn a_record_round_trips_exactly() {
        for (buckets, with_override) in [(0, false), (12, false), (12, true), (40, true)] {
            let original = record(buckets, with_override);
            let value = encode(&original);
            assert_eq!(version_of(&value), Some(17));
            let decoded = decode(original.member.customer_id, &value).expect("decodes");
            assert_eq!(
                format!("{decoded:?}"),
                format!("{original:?}"),
                "{buckets} buckets, override {with_override}"
            );
        }
    }

    #[test]
    fn twelve_months_of_spend_fit_in_about_a_hundred_bytes() {
        let value = encode(&record(12, false));
        assert!(value.len() <= 110, "{} bytes", value.len());
    }

    #[test]
    fn a_member_without_state_has_version_0_and_leases_are_not_values() {
        let mut original = record(3, false);
        original.state = None;
        let value = encode(&original);
        assert_eq!(version_of(&value), Some(0));
        let id = original.member.customer_id;
        assert!(decode(id, &value).expect("decodes").state.is_none());
        assert_eq!(version_of(b"L12345"), None);
        assert!(decode(id, b"L12345").is_none());
        assert!(decode(id, b"3:\xff\xff").is_none());
    }
}
