//! Following an upstream feed with one leader among the replicas: every replica runs the loop,
//! the one that holds the feed's lock consumes, the others stand by and look again now and then.
//! The consumer resumes from the cursor it stores with its effects, so a change of leader (a
//! replica dying, a deployment) replays nothing twice and skips nothing.
//!
//! The lock is a Postgres session lock: if its connection dies, the server releases it and another
//! replica may take over, so the leader stops as soon as [`HeldLock::lost`] says so, instead of
//! consuming beside the new leader.

use std::{fmt::Display, future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::lock::HeldLock;

/// The first pause after a failure, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a standby replica looks whether it can lead.
const STANDBY_RECHECK: Duration = Duration::from_millis(500);

/// Runs `consume` on a task of its own whenever this replica leads the feed `name` (holds the
/// lock `try_lead` takes), until `shutdown`. `consume` returns when its stream ends (`Ok`: the
/// upstream shut down; it is followed again at once) or fails (after a pause that grows with
/// each failure); it gets a token that is cancelled at shutdown.
pub fn lead<E, L, LFut, C, CFut>(
    name: &'static str,
    shutdown: CancellationToken,
    try_lead: L,
    consume: C,
) where
    E: Display + Send,
    L: Fn() -> LFut + Send + 'static,
    LFut: Future<Output = Result<Option<HeldLock>, E>> + Send,
    C: Fn(CancellationToken) -> CFut + Send + 'static,
    CFut: Future<Output = Result<(), E>> + Send,
{
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        while !shutdown.is_cancelled() {
            match try_lead().await {
                Ok(Some(lock)) => {
                    tracing::info!(feed = name, "leading the feed consumer");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = lock.lost() => tracing::warn!(
                            feed = name,
                            "the feed lock's connection died: another replica may lead now; stopping"
                        ),
                        outcome = consume(shutdown.clone()) => match outcome {
                            Ok(()) => backoff = FIRST_BACKOFF,
                            Err(error) => tracing::warn!(
                                feed = name,
                                %error,
                                retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                                "feed consumer failed"
                            ),
                        },
                    }
                }
                Ok(None) => backoff = STANDBY_RECHECK,
                Err(error) => tracing::warn!(feed = name, %error, "cannot take the feed lock"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}
