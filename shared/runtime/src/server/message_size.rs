//! RESOURCE_EXHAUSTED for a message over the size limit, as gRPC's status-code table asks.
//!
//! tonic 0.14 refuses a message larger than `max_decoding_message_size` with
//! `Status::out_of_range("Error, decoded message length too large: found N bytes, the limit is:
//! L bytes")` (`tonic::codec::decode`), and one larger than `max_encoding_message_size` with the
//! same words for "encoded", and offers no setting for the code. [`RpcService`](super::RpcService)
//! rewrites `grpc-status: 11` to `8` when, and only when, `grpc-message` is one of those texts, so
//! an OUT_OF_RANGE a handler returns on purpose (WatchTierChanges' expired cursor) is left alone.
//! A request refused while it is decoded ends in a trailers-only response, its status in the
//! headers, which is where the rewrite looks: for unary and client-streaming calls that is every
//! case, since they answer only once the whole request was read.

use http::{HeaderMap, HeaderValue};

/// tonic's texts as they appear in `grpc-message`: percent-encoded, spaces as `%20` (`,` and `:`
/// left as they are). The tests below pin this against tonic's own encoder.
const SIZE_LIMIT_MESSAGES: [&[u8]; 2] = [
    b"Error,%20decoded%20message%20length%20too%20large:",
    b"Error,%20encoded%20message%20length%20too%20large:",
];

/// Rewrites `grpc-status` 11 to 8 when `grpc-message` is tonic's size-limit text.
pub(super) fn resource_exhausted_for_size_limit(headers: &mut HeaderMap) {
    let is_size_limit = headers.get("grpc-status").is_some_and(|code| code == "11")
        && headers.get("grpc-message").is_some_and(|message| {
            SIZE_LIMIT_MESSAGES
                .iter()
                .any(|prefix| message.as_bytes().starts_with(prefix))
        });
    if is_size_limit {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
}

/// The same rewrite for a status a handler passes on, such as an oversized message read from a
/// request stream while the response stream is already open (its status then travels in the
/// trailers, which the headers' rewrite does not see).
pub fn resource_exhausted_if_size_limit(status: tonic::Status) -> tonic::Status {
    let text = status.message();
    let is_size_limit = status.code() == tonic::Code::OutOfRange
        && ["decoded", "encoded"].iter().any(|direction| {
            text.starts_with(&format!("Error, {direction} message length too large:"))
        });
    if is_size_limit {
        tonic::Status::resource_exhausted(text.to_owned())
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers tonic writes for `status` (the encoder it uses for real responses), after the
    /// rewrite.
    fn rewritten(status: &tonic::Status) -> tonic::Status {
        let mut headers = HeaderMap::new();
        status.add_header(&mut headers).expect("valid status");
        resource_exhausted_for_size_limit(&mut headers);
        tonic::Status::from_header_map(&headers).expect("a status")
    }

    #[test]
    fn tonics_size_limits_become_resource_exhausted() {
        for direction in ["decoded", "encoded"] {
            // Word for word what tonic 0.14's codec returns.
            let status = rewritten(&tonic::Status::out_of_range(format!(
                "Error, {direction} message length too large: found 20971525 bytes, the limit is: 16777216 bytes"
            )));
            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{direction}");
            assert!(status.message().contains("message length too large"));
        }
    }

    #[test]
    fn any_other_status_is_left_alone() {
        let cursor = rewritten(&tonic::Status::out_of_range(
            "the cursor is older than the retained history",
        ));
        assert_eq!(cursor.code(), tonic::Code::OutOfRange);
        let other_code = rewritten(&tonic::Status::internal(
            "Error, decoded message length too large: found 1 bytes, the limit is: 0 bytes",
        ));
        assert_eq!(other_code.code(), tonic::Code::Internal);
    }

    #[test]
    fn a_status_passed_on_from_a_request_stream_is_rewritten_the_same_way() {
        let limit = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
        );
        assert_eq!(
            resource_exhausted_if_size_limit(limit).code(),
            tonic::Code::ResourceExhausted
        );
        let cursor = tonic::Status::out_of_range("expired cursor");
        assert_eq!(
            resource_exhausted_if_size_limit(cursor).code(),
            tonic::Code::OutOfRange
        );
    }
}
