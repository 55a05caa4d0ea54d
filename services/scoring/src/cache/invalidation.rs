//! How every replica hears of every committed tier change, to keep its near cache right: the
//! writer publishes the keys and versions it wrote on a Redis channel after writing them; each
//! replica subscribes and drops what is older.
//!
//! - A message is a run of 44-byte entries: program (16 bytes), cache generation (4, big-endian),
//!   customer (16), version (8, big-endian); [`DROP_ANY`] as the version drops whatever is held.
//! - Redis pub/sub delivers at most once, so the near cache is trusted only while subscribed:
//!   emptied and bypassed when the subscription is lost (the connection dropped, or a PING on it
//!   went unanswered for a second), emptied again when it is back.
//! - In a Redis Cluster a message published on any node reaches the subscribers of every node,
//!   so one subscription to any seed node hears everything.

use std::time::Duration;

use futures::StreamExt;
use uuid::Uuid;

use super::{RedisTopology, near::Key, near::NearCache};

/// The channel (one per Redis; keys carry the program, so one channel serves every program).
pub(super) const CHANNEL: &str = "tierline:tier-invalidations";

/// The version that drops whatever a replica holds (a repair of a write that failed).
pub(super) const DROP_ANY: i64 = i64::MAX;

const ENTRY: usize = 16 + 4 + 16 + 8;

/// How often the subscription is checked with a PING.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Encodes invalidations.
pub(super) fn encode(entries: impl IntoIterator<Item = (Key, i64)>) -> Vec<u8> {
    let mut message = Vec::new();
    for (key, version) in entries {
        message.extend_from_slice(key.program_id.as_bytes());
        message.extend_from_slice(&key.generation.to_be_bytes());
        message.extend_from_slice(key.customer_id.as_bytes());
        message.extend_from_slice(&version.to_be_bytes());
    }
    message
}

/// Decodes invalidations (a malformed tail is ignored).
pub(super) fn decode(message: &[u8]) -> impl Iterator<Item = (Key, i64)> + '_ {
    message.chunks_exact(ENTRY).filter_map(|entry| {
        let program_id = Uuid::from_slice(&entry[0..16]).ok()?;
        let generation = i32::from_be_bytes(entry[16..20].try_into().ok()?);
        let customer_id = Uuid::from_slice(&entry[20..36]).ok()?;
        let version = i64::from_be_bytes(entry[36..44].try_into().ok()?);
        Some((
            Key {
                program_id,
                generation,
                customer_id,
            },
            version,
        ))
    })
}

/// Applies one message to the near cache.
pub(super) fn apply(near: &NearCache, message: &[u8]) {
    for (key, version) in decode(message) {
        if version == DROP_ANY {
            near.remove(&key);
        } else {
            near.invalidate(&key, version);
        }
    }
}

/// Subscribes in the background for as long as the process lives, keeping `near` trusted only
/// while subscribed.
pub(super) fn follow(topology: RedisTopology, url: String, near: NearCache) {
    tokio::spawn(async move {
        let seeds: Vec<String> = match topology {
            RedisTopology::Standalone => vec![url],
            RedisTopology::Cluster => url
                .split(',')
                .map(|seed| seed.trim().to_owned())
                .filter(|seed| !seed.is_empty())
                .collect(),
        };
        if seeds.is_empty() {
            tracing::error!("TIERLINE_REDIS_URL names no Redis: the near cache stays off");
            return;
        }
        let mut attempt = 0_usize;
        loop {
            let seed = &seeds[attempt % seeds.len()];
            attempt += 1;
            if let Err(error) = subscribed(seed, &near).await {
                tracing::debug!(%error, "tier invalidation subscription ended");
            }
            if near.trusted() {
                tracing::warn!("tier invalidations lost: near cache off until resubscribed");
            }
            near.set_trusted(false);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// One subscription, until it fails.
async fn subscribed(seed: &str, near: &NearCache) -> redis::RedisResult<()> {
    let client = redis::Client::open(seed)?;
    let mut pubsub = tokio::time::timeout(PING_EVERY, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    tokio::time::timeout(PING_EVERY, pubsub.subscribe(CHANNEL))
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, mut messages) = pubsub.split();
    // Subscribed: from here on nothing is missed, but what came before may have been.
    near.set_trusted(true);
    tracing::info!("near tier cache on: invalidations subscribed");
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => apply(near, message.get_payload_bytes()),
                None => return Ok(()),
            },
            _ = ping.tick() => {
                tokio::time::timeout(PING_EVERY, sink.ping::<redis::Value>())
                    .await
                    .map_err(|_| timed_out())??;
            }
        }
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, "timed out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_round_trip() {
        let entries = vec![
            (
                Key {
                    program_id: Uuid::now_v7(),
                    generation: 3,
                    customer_id: Uuid::now_v7(),
                },
                42,
            ),
            (
                Key {
                    program_id: Uuid::now_v7(),
                    generation: 0,
                    customer_id: Uuid::now_v7(),
                },
                DROP_ANY,
            ),
        ];
        let message = encode(entries.clone());
        assert_eq!(message.len(), 2 * ENTRY);
        assert_eq!(decode(&message).collect::<Vec<_>>(), entries);
    }
}
