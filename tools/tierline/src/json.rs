//! Protobuf JSON for files read and `--json` output (`tierline_proto::json`), with the CLI's
//! failures: a file that is not the message is the caller's input error.

use prost::{Message, Name};
use tierline_proto::json::{self, JsonError};

use crate::exit::Failure;

fn failure(what: &str, error: JsonError) -> Failure {
    match error {
        JsonError::Invalid(reason) => Failure::Input(format!("{what}: {reason}")),
        unknown @ JsonError::UnknownMessage(_) => Failure::Other(unknown.into()),
    }
}

/// The message `T` from protobuf JSON; `what` names the input in errors.
pub(crate) fn parse<T: Message + Name + Default>(text: &str, what: &str) -> Result<T, Failure> {
    json::from_str(text).map_err(|error| failure(what, error))
}

/// Reads a protobuf JSON file as `T`.
pub(crate) fn read<T: Message + Name + Default>(path: &str) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::Input(format!("{path}: {error}")))?;
    parse(&text, path)
}

/// The message as a JSON value (defaults included, so scripts find every field).
pub(crate) fn to_value<T: Message + Name>(message: &T) -> Result<serde_json::Value, Failure> {
    json::to_value(message).map_err(|error| Failure::Other(error.into()))
}
