//! Protobuf JSON (field names as in the `.proto` files, enums by name) for files read and
//! `--json` output, through the descriptor set the proto crate embeds: no message needs code of
//! its own to be read or printed.

use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::exit::Failure;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(tierline_proto::FILE_DESCRIPTOR_SET)
            .unwrap_or_else(|_| DescriptorPool::new())
    })
}

fn descriptor(full_name: &str) -> Result<MessageDescriptor, Failure> {
    pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| Failure::Other(anyhow::anyhow!("no message {full_name} in the contracts")))
}

/// The message `T` from protobuf JSON; `what` names the input in errors.
pub(crate) fn parse<T: Message + Name + Default>(text: &str, what: &str) -> Result<T, Failure> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let dynamic = DynamicMessage::deserialize(descriptor(&T::full_name())?, &mut deserializer)
        .map_err(|error| Failure::Input(format!("{what}: {error}")))?;
    deserializer
        .end()
        .map_err(|error| Failure::Input(format!("{what}: {error}")))?;
    T::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|error| Failure::Input(format!("{what}: {error}")))
}

/// Reads a protobuf JSON file as `T`.
pub(crate) fn read<T: Message + Name + Default>(path: &str) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::Input(format!("{path}: {error}")))?;
    parse(&text, path)
}

/// The message as a JSON value (defaults included, so scripts find every field).
pub(crate) fn to_value<T: Message + Name>(message: &T) -> Result<serde_json::Value, Failure> {
    let dynamic = DynamicMessage::decode(
        descriptor(&T::full_name())?,
        message.encode_to_vec().as_slice(),
    )
    .map_err(|error| Failure::Other(error.into()))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|error| Failure::Other(error.into()))
}
