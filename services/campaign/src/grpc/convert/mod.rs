//! Conversions between protobuf messages and domain types. Inputs are carried over as sent
//! (only their shape is checked here: ids, enums, timestamps); the domain validates the rest.

mod campaign;
mod results;

pub(crate) use campaign::{
    campaign_input, campaign_to_proto, kind_filter, patch, preview_target, status_from_proto,
};
pub(crate) use results::{
    ack_input, ack_result, arm_from_proto, delivery_to_proto, member_to_proto, preview_to_proto,
    reason_from_proto, report_to_proto, summary_to_proto, suppression_to_proto,
};

use chrono::{DateTime, Utc};
use tierline_proto::{common::v1 as common, prost_types};
use tierline_runtime::status::FieldViolation;

use crate::domain::campaign::Channel;

pub(crate) use tierline_proto::time::{datetime, timestamp};

/// A timestamp field, or a violation naming it.
pub(crate) fn checked_datetime(
    value: Option<&prost_types::Timestamp>,
    field: &str,
    violations: &mut Vec<FieldViolation>,
) -> Option<DateTime<Utc>> {
    let value = value?;
    let parsed = datetime(value);
    if parsed.is_none() {
        violations.push(FieldViolation::new(field, "is not a valid timestamp"));
    }
    parsed
}

pub(crate) fn channel_from_proto(value: i32) -> Option<Channel> {
    match common::Channel::try_from(value).ok()? {
        common::Channel::Email => Some(Channel::Email),
        common::Channel::Sms => Some(Channel::Sms),
        common::Channel::Push => Some(Channel::Push),
        common::Channel::Unspecified => None,
    }
}

pub(crate) fn channel_to_proto(channel: Channel) -> i32 {
    match channel {
        Channel::Email => common::Channel::Email,
        Channel::Sms => common::Channel::Sms,
        Channel::Push => common::Channel::Push,
    }
    .into()
}

pub(crate) fn money(amount_minor: i64, currency: &str) -> common::Money {
    common::Money {
        amount_minor,
        currency: currency.to_owned(),
    }
}
