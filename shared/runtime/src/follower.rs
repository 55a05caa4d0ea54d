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

/// How a consumer's run ended, when not by its stream's end.
#[derive(Debug)]
pub enum Stopped<E> {
    /// A failure a pause may mend (the upstream or the database away, a stream cut).
    Failed(E),
    /// The upstream refused the stored cursor (FAILED_PRECONDITION: it comes from another
    /// database cluster, or lies beyond the feed, after a restore or a move). No retry mends it:
    /// an operator must say where to resume (docs/FEED.md).
    Refused(String),
}

impl<E> From<E> for Stopped<E> {
    fn from(error: E) -> Self {
        Self::Failed(error)
    }
}

impl<E> Stopped<E> {
    /// The outcome of an upstream's refusal to open the feed: `Refused` for
    /// FAILED_PRECONDITION, `Failed` (as `other` says) for anything else.
    pub fn opening(status: tonic::Status, other: impl FnOnce(tonic::Status) -> E) -> Self {
        if status.code() == tonic::Code::FailedPrecondition {
            Self::Refused(status.message().to_owned())
        } else {
            Self::Failed(other(status))
        }
    }
}

/// How long a consumer whose cursor was refused waits before it asks again: an operator's fix
/// is picked up without a restart, and the log says why once a minute, not ten times a second.
const REFUSED_RECHECK: Duration = Duration::from_secs(60);

/// Runs `consume` on a task of its own whenever this replica leads the feed `name` (holds the
/// lock `try_lead` takes), until `shutdown`. `consume` returns when its stream ends (`Ok`: the
/// upstream shut down; it is followed again at once) or fails (after a pause that grows with
/// each failure); it gets a token that is cancelled at shutdown. A refused cursor stops the
/// consumer: counted, logged as an error with the upstream's reason, and asked again only after
/// [`REFUSED_RECHECK`].
pub fn lead<E, L, LFut, C, CFut>(
    name: &'static str,
    shutdown: CancellationToken,
    counters: FeedCounters,
    try_lead: L,
    consume: C,
) where
    E: Display + Send,
    L: Fn() -> LFut + Send + 'static,
    LFut: Future<Output = Result<Option<HeldLock>, E>> + Send,
    C: Fn(CancellationToken) -> CFut + Send + 'static,
    CFut: Future<Output = Result<(), Stopped<E>>> + Send,
{
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        while !shutdown.is_cancelled() {
            let mut refused = false;
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
                            Err(Stopped::Failed(error)) => tracing::warn!(
                                feed = name,
                                %error,
                                retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                                "feed consumer failed"
                            ),
                            Err(Stopped::Refused(reason)) => {
                                counters.refused(name);
                                tracing::error!(
                                    feed = name,
                                    %reason,
                                    "the upstream refused this consumer's cursor: consuming stopped; \
                                     see docs/FEED.md, \"Cursors that know their cluster\""
                                );
                                refused = true;
                            }
                        },
                    }
                }
                Ok(None) => backoff = STANDBY_RECHECK,
                Err(error) => tracing::warn!(feed = name, %error, "cannot take the feed lock"),
            }
            let pause = if refused { REFUSED_RECHECK } else { backoff };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

/// An event a consumer could not read (a malformed id, a kind it does not know): parked with the
/// reason instead of stopping the feed, so one bad event cannot hold back every event after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event's cursor.
    pub position: String,
    /// Why it could not be read.
    pub reason: String,
    /// The event as received (protobuf), to look at or replay by hand.
    pub payload: Vec<u8>,
}

/// Parks `letters` of `consumer` in the `feed_dead_letters` table (of the pool's schema, which
/// each service's migrations create); returns how many were not parked before.
pub async fn park_in_postgres(
    pool: &sqlx::PgPool,
    consumer: &str,
    letters: &[DeadLetter],
) -> Result<u64, sqlx::Error> {
    let positions: Vec<&str> = letters.iter().map(|l| l.position.as_str()).collect();
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    let payloads: Vec<&[u8]> = letters.iter().map(|l| l.payload.as_slice()).collect();
    Ok(sqlx::query(
        "INSERT INTO feed_dead_letters (consumer, position, reason, payload, parked_at)
         SELECT $1, p, r, b, now() FROM unnest($2::text[], $3::text[], $4::bytea[]) AS l(p, r, b)
         ON CONFLICT (consumer, position) DO NOTHING",
    )
    .bind(consumer)
    .bind(&positions)
    .bind(&reasons)
    .bind(&payloads)
    .execute(pool)
    .await?
    .rows_affected())
}

/// [`park_in_postgres`] for the embedded SQLite stores.
pub async fn park_in_sqlite(
    pool: &sqlx::SqlitePool,
    consumer: &str,
    letters: &[DeadLetter],
) -> Result<u64, sqlx::Error> {
    let mut parked = 0;
    for letter in letters {
        parked += sqlx::query(
            "INSERT INTO feed_dead_letters (consumer, position, reason, payload, parked_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (consumer, position) DO NOTHING",
        )
        .bind(consumer)
        .bind(&letter.position)
        .bind(&letter.reason)
        .bind(&letter.payload)
        .bind(chrono::Utc::now().timestamp_micros())
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(parked)
}

/// Labels of the dead-letter counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct FeedLabels {
    feed: &'static str,
}

type FeedCounter = prometheus_client::metrics::family::Family<
    FeedLabels,
    prometheus_client::metrics::counter::Counter,
>;

/// The counters of every feed a service follows, by feed:
/// `tierline_feed_dead_letters_total{feed}`, events parked because they could not be read, and
/// `tierline_feed_cursor_refusals_total{feed}`, times the upstream refused the stored cursor.
#[derive(Clone, Debug, Default)]
pub struct FeedCounters {
    dead_letters: FeedCounter,
    refusals: FeedCounter,
}

impl FeedCounters {
    /// The counters, registered in `metrics` (once per process; every feed of it shares them).
    pub fn register(metrics: &crate::metrics::Metrics) -> Self {
        let counters = Self::default();
        metrics.register(
            "tierline_feed_dead_letters",
            "Feed events parked in the dead-letter table because they could not be read",
            counters.dead_letters.clone(),
        );
        metrics.register(
            "tierline_feed_cursor_refusals",
            "Times the upstream refused a feed consumer's stored cursor (another database cluster, or beyond the feed)",
            counters.refusals.clone(),
        );
        counters
    }

    fn add(&self, feed: &'static str, parked: u64) {
        self.dead_letters
            .get_or_create(&FeedLabels { feed })
            .inc_by(parked);
    }

    fn refused(&self, feed: &'static str) {
        self.refusals.get_or_create(&FeedLabels { feed }).inc();
    }
}

/// How a follower takes its feed in.
#[derive(Debug)]
pub struct Batching<'a> {
    /// The feed's name, in logs and the dead-letter counter.
    pub feed: &'static str,
    /// Most events applied at once (fewer when fewer are waiting).
    pub batch_size: usize,
    /// Stops the follower.
    pub shutdown: &'a CancellationToken,
    /// Counts the events parked.
    pub counters: &'a FeedCounters,
}

/// Reads `feed` in batches of what is waiting (at most `batching.batch_size`), converts each
/// message (`Ok(None)`: nothing for this consumer; `Err(reason)`: unreadable), parks the
/// unreadable ones (`park` returns how many it had not parked before: a replay parks nothing
/// twice, and each is logged and counted once), and applies each batch with the position of its
/// last message, until the stream ends (`Ok`), fails, or the follower stops.
pub async fn apply_batches<M, T, E, P, PFut, A, AFut>(
    feed: impl futures::Stream<Item = Result<M, tonic::Status>>,
    batching: Batching<'_>,
    upstream_failed: impl Fn(tonic::Status) -> E,
    position_of: impl Fn(&M) -> String,
    convert: impl Fn(&M) -> Result<Option<T>, String>,
    mut park: P,
    mut apply: A,
) -> Result<(), E>
where
    M: tierline_proto::prost::Message,
    P: FnMut(Vec<DeadLetter>) -> PFut,
    PFut: Future<Output = Result<u64, E>>,
    A: FnMut(Vec<T>, String) -> AFut,
    AFut: Future<Output = Result<(), E>>,
{
    use futures::StreamExt;

    let mut batches = std::pin::pin!(feed.ready_chunks(batching.batch_size.max(1)));
    loop {
        let batch = tokio::select! {
            () = batching.shutdown.cancelled() => return Ok(()),
            batch = batches.next() => batch,
        };
        let Some(batch) = batch else {
            return Ok(());
        };
        let mut items = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        let mut position = None;
        for message in batch {
            let message = message.map_err(&upstream_failed)?;
            let at = position_of(&message);
            match convert(&message) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {}
                Err(reason) => dead.push(DeadLetter {
                    position: at.clone(),
                    reason,
                    payload: message.encode_to_vec(),
                }),
            }
            position = Some(at);
        }
        if !dead.is_empty() {
            let letters = dead.len();
            let first = dead[0].clone();
            let parked = park(dead).await?;
            if parked > 0 {
                batching.counters.add(batching.feed, parked);
                tracing::error!(
                    feed = batching.feed,
                    parked,
                    letters,
                    position = %first.position,
                    reason = %first.reason,
                    "feed events could not be read: parked in the dead-letter table"
                );
            }
        }
        if let Some(position) = position {
            apply(items, position).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tierline_proto::prost_types::Timestamp;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_refused_cursor_stops_the_consumer_counts_and_asks_again_only_a_minute_later() {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let counters = FeedCounters::default();
        let shutdown = CancellationToken::new();
        let seen = attempts.clone();
        lead(
            "test",
            shutdown.clone(),
            counters.clone(),
            || async { Ok::<_, String>(Some(HeldLock::new(()))) },
            move |_| {
                let seen = seen.clone();
                async move {
                    seen.lock().expect("lock").push(tokio::time::Instant::now());
                    Err(Stopped::Refused(
                        "after_cursor is ahead of this feed".to_owned(),
                    ))
                }
            },
        );
        tokio::time::sleep(Duration::from_secs(150)).await;
        shutdown.cancel();
        let attempts = attempts.lock().expect("lock").clone();
        assert_eq!(attempts.len(), 3, "at 0, 60 and 120 s: {attempts:?}");
        assert!(
            attempts
                .windows(2)
                .all(|pair| pair[1] - pair[0] >= REFUSED_RECHECK)
        );
        assert_eq!(
            counters
                .refusals
                .get_or_create(&FeedLabels { feed: "test" })
                .get(),
            3
        );
        // An upstream's FAILED_PRECONDITION is a refusal; anything else a failure to retry.
        let refused =
            Stopped::<String>::opening(tonic::Status::failed_precondition("x"), |s| s.to_string());
        assert!(matches!(refused, Stopped::Refused(reason) if reason == "x"));
        let failed =
            Stopped::<String>::opening(tonic::Status::unavailable("y"), |_| "retry".to_owned());
        assert!(matches!(failed, Stopped::Failed(error) if error == "retry"));
    }

    #[tokio::test]
    async fn an_unreadable_event_is_parked_once_and_the_feed_goes_on() {
        // Timestamps stand for feed messages: seconds are the position, a negative one is
        // unreadable.
        let messages: Vec<Result<Timestamp, tonic::Status>> = [1, 2, -3, 4]
            .into_iter()
            .map(|seconds| Ok(Timestamp { seconds, nanos: 0 }))
            .collect();
        let parked = Arc::new(Mutex::new(Vec::new()));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let counter = FeedCounters::default();
        let shutdown = CancellationToken::new();
        let outcome: Result<(), String> = apply_batches(
            futures::stream::iter(messages),
            Batching {
                feed: "test",
                batch_size: 10,
                shutdown: &shutdown,
                counters: &counter,
            },
            |status| status.to_string(),
            |message| message.seconds.to_string(),
            |message| {
                if message.seconds < 0 {
                    Err("negative".to_owned())
                } else {
                    Ok(Some(message.seconds))
                }
            },
            |letters| {
                let parked = parked.clone();
                async move {
                    parked.lock().expect("lock").extend(letters);
                    Ok(1)
                }
            },
            |items, position| {
                let applied = applied.clone();
                async move {
                    applied.lock().expect("lock").push((items, position));
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!(outcome, Ok(()), "the stream ended");
        let parked = parked.lock().expect("lock").clone();
        assert_eq!(parked.len(), 1);
        assert_eq!(
            (parked[0].position.as_str(), parked[0].reason.as_str()),
            ("-3", "negative")
        );
        assert!(!parked[0].payload.is_empty(), "the message as received");
        assert_eq!(
            *applied.lock().expect("lock"),
            [(vec![1, 2, 4], "4".to_owned())],
            "the others applied, the cursor past the parked one"
        );
        assert_eq!(
            counter
                .dead_letters
                .get_or_create(&FeedLabels { feed: "test" })
                .get(),
            1
        );
    }
}
