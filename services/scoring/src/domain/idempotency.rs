//! Retried writes. A request that carries an idempotency key already used by the same operation
//! returns the first request's result and changes nothing; the same key with different content
//! is refused (the caller reused a key by mistake). The key is claimed in the transaction of the
//! write itself, so concurrent retries resolve to exactly one write.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ScoringError;

/// Longest key accepted.
const MAX_KEY_CHARS: usize = 128;

/// The writes that accept an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `CreateProgram`; the result is the program.
    CreateProgram,
    /// `CreatePolicyVersion`; the result is the draft.
    CreatePolicyVersion,
    /// `SetTierOverride`; the result is the customer's tier.
    SetTierOverride,
    /// `ClearTierOverride`; the result is the customer's tier.
    ClearTierOverride,
    /// `EvaluateNow`; the result is the run it opened.
    EvaluateNow,
}

impl Operation {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateProgram => "create_program",
            Self::CreatePolicyVersion => "create_policy_version",
            Self::SetTierOverride => "set_tier_override",
            Self::ClearTierOverride => "clear_tier_override",
            Self::EvaluateNow => "evaluate_now",
        }
    }
}

/// A write that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// Which write.
    pub operation: Operation,
    /// The caller's key.
    pub key: String,
    /// Digest of the request's content.
    pub fingerprint: Vec<u8>,
}

/// What the first request with a key left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorRequest {
    /// Digest of its content.
    pub fingerprint: Vec<u8>,
    /// What it created or changed.
    pub resource_id: Uuid,
}

/// The outcome of a write that may be a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed<T> {
    /// The write was made.
    Done(T),
    /// The key was used before: nothing was written.
    Replay(PriorRequest),
}

impl IdempotentRequest {
    /// The request for `key` (`None` when the caller sent none) with `content`'s digest.
    pub fn new(
        operation: Operation,
        key: &str,
        content: &serde_json::Value,
    ) -> Result<Option<Self>, ScoringError> {
        if key.is_empty() {
            return Ok(None);
        }
        let printable = key.bytes().all(|byte| (b' '..=b'~').contains(&byte));
        if key.len() > MAX_KEY_CHARS || !printable || key.trim() != key {
            return Err(ScoringError::invalid(
                "idempotency_key",
                format!(
                    "1 to {MAX_KEY_CHARS} printable ASCII characters, without surrounding spaces"
                ),
            ));
        }
        let fingerprint = Sha256::digest(content.to_string().as_bytes()).to_vec();
        Ok(Some(Self {
            operation,
            key: key.to_owned(),
            fingerprint,
        }))
    }

    /// The resource the first request made, when `prior` was the same request; refused when
    /// the key was used for different content.
    pub fn replayed(&self, prior: &PriorRequest) -> Result<Uuid, ScoringError> {
        if prior.fingerprint == self.fingerprint {
            Ok(prior.resource_id)
        } else {
            Err(ScoringError::invalid(
                "idempotency_key",
                "was already used for a request with different content; use a new key for a new request",
            ))
        }
    }
}

/// The resource of a replayed write: `request` is the retry that found `prior`.
pub fn replayed(
    request: Option<&IdempotentRequest>,
    prior: &PriorRequest,
) -> Result<Uuid, ScoringError> {
    request
        .ok_or_else(|| ScoringError::Internal("a replay without an idempotency key".into()))?
        .replayed(prior)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn no_key_means_no_claim_and_bad_keys_are_refused() {
        let content = json!({ "code": "A" });
        assert_eq!(
            IdempotentRequest::new(Operation::CreateProgram, "", &content).ok(),
            Some(None)
        );
        for bad in [" padded", "tab\there", "ключ", &"k".repeat(129)] {
            assert!(
                IdempotentRequest::new(Operation::CreateProgram, bad, &content).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_same_content_replays_and_other_content_is_refused() {
        let request =
            IdempotentRequest::new(Operation::CreateProgram, "k-1", &json!({ "code": "A" }))
                .ok()
                .flatten()
                .expect("a claim");
        let resource_id = Uuid::now_v7();
        let same = PriorRequest {
            fingerprint: request.fingerprint.clone(),
            resource_id,
        };
        assert_eq!(request.replayed(&same).ok(), Some(resource_id));
        let other =
            IdempotentRequest::new(Operation::CreateProgram, "k-1", &json!({ "code": "B" }))
                .ok()
                .flatten()
                .expect("a claim");
        assert!(matches!(
            other.replayed(&same),
            Err(ScoringError::InvalidArgument(_))
        ));
    }
}
