//! Protobuf JSON (field names as in the `.proto` files, enums by name) for any message of the
//! contracts, through the embedded descriptor set: no message needs code of its own to be read
//! or printed. Behind the `json` feature, for the tools that read files (the CLI, test fixtures).

use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

/// Why a message could not be read or printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// The text is not protobuf JSON of the message.
    Invalid(String),
    /// The message is not in the contracts (a build out of step with its descriptors).
    UnknownMessage(String),
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(reason) => f.write_str(reason),
            Self::UnknownMessage(name) => write!(f, "no message {name} in the contracts"),
        }
    }
}

impl std::error::Error for JsonError {}

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).unwrap_or_else(|_| DescriptorPool::new())
    })
}

fn descriptor(full_name: &str) -> Result<MessageDescriptor, JsonError> {
    pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| JsonError::UnknownMessage(full_name.to_owned()))
}

/// The message `T` from protobuf JSON; text after the message is refused.
pub fn from_str<T: Message + Name + Default>(text: &str) -> Result<T, JsonError> {
    let invalid = |error: &dyn std::fmt::Display| JsonError::Invalid(error.to_string());
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let dynamic = DynamicMessage::deserialize(descriptor(&T::full_name())?, &mut deserializer)
        .map_err(|error| invalid(&error))?;
    deserializer.end().map_err(|error| invalid(&error))?;
    T::decode(dynamic.encode_to_vec().as_slice()).map_err(|error| invalid(&error))
}

/// The message as a JSON value, defaults included (so scripts find every field).
pub fn to_value<T: Message + Name>(message: &T) -> Result<serde_json::Value, JsonError> {
    let invalid = |error: &dyn std::fmt::Display| JsonError::Invalid(error.to_string());
    let dynamic = DynamicMessage::decode(
        descriptor(&T::full_name())?,
        message.encode_to_vec().as_slice(),
    )
    .map_err(|error| invalid(&error))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|error| invalid(&error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::v1 as pb;

    #[test]
    fn a_message_round_trips_and_text_after_it_is_refused() {
        let rules: pb::PolicyRules = from_str(
            r#"{"time_zone": "Asia/Seoul", "window": {"kind": "WINDOW_KIND_ROLLING_MONTHS", "rolling_months": 12}}"#,
        )
        .expect("valid");
        assert_eq!(rules.time_zone, "Asia/Seoul");
        let value = to_value(&rules).expect("printable");
        assert_eq!(value["window"]["kind"], "WINDOW_KIND_ROLLING_MONTHS");
        assert_eq!(
            value["graceMonths"], 0,
            "defaults are printed, names in lowerCamelCase"
        );
        assert!(matches!(
            from_str::<pb::PolicyRules>(r#"{"time_zone": "UTC"} {}"#),
            Err(JsonError::Invalid(_))
        ));
        assert!(matches!(
            from_str::<pb::PolicyRules>(r#"{"no_such_field": 1}"#),
            Err(JsonError::Invalid(_))
        ));
    }
}
