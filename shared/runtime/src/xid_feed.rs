//! Feeds read from Postgres tables in (writing transaction id, sequence) order, behind the
//! transaction-id watermark, so that no committed row is ever skipped or repeated whatever the
//! commit order (docs/FEED.md). The customer service's activity feed and the scoring service's
//! tier-change feed are both served this way.
//!
//! A source says how to read a page after a cursor and gives a signal that ticks when new rows
//! may have committed (a `LISTEN` on the channel its insert trigger notifies, see
//! [`spawn_listener`]); [`watch`] turns it into a live stream: read, send, and when caught up sleep
//! until the signal ticks. When committed rows are held back behind an older transaction still
//! running, the watcher looks again after a short, growing pause instead of waiting for a
//! notification that the older transaction may never send.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch as signal};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::notify::Notice;

/// A position in a feed: after the row written by transaction `xid` with number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeedCursor {
    /// Writing transaction id (64-bit, never wraps).
    pub xid: i64,
    /// Sequence number within the feed.
    pub seq: i64,
}

impl FeedCursor {
    /// The position before every event.
    pub const START: Self = Self { xid: 0, seq: 0 };

    /// Parses the opaque text form, with the identity of the feed it came from when it says
    /// (`v2.<identity>.<xid>.<seq>`; `v1.<xid>.<seq>` cursors, from before feeds had one, do
    /// not); empty means [`FeedCursor::START`].
    pub fn parse(text: &str) -> Option<(Option<FeedIdentity>, Self)> {
        if text.is_empty() {
            return Some((None, Self::START));
        }
        let (identity, position) = match text.strip_prefix("v2.") {
            Some(rest) => {
                let (identity, position) = rest.split_once('.')?;
                (
                    Some(FeedIdentity(u64::from_str_radix(identity, 16).ok()?)),
                    position,
                )
            }
            None => (None, text.strip_prefix("v1.")?),
        };
        let (xid, seq) = position.split_once('.')?;
        let cursor = Self {
            xid: xid.parse().ok()?,
            seq: seq.parse().ok()?,
        };
        (cursor.xid >= 0 && cursor.seq >= 0).then_some((identity, cursor))
    }

    /// The cursor a watcher asks to resume after, checked against the feed it asks: refused
    /// when it is not a cursor, comes from another database cluster (a restore or a move to a
    /// new cluster starts transaction ids afresh, so its position means nothing here), or lies
    /// beyond anything this feed has written. Refusing is what keeps a consumer from skipping
    /// every event silently (docs/FEED.md, "Cursors that know their cluster").
    pub fn resume(text: &str, origin: FeedOrigin) -> Result<Self, CursorRefusal> {
        let (identity, cursor) = Self::parse(text).ok_or(CursorRefusal::Malformed)?;
        if let Some(identity) = identity.filter(|identity| *identity != origin.identity) {
            return Err(CursorRefusal::OtherCluster {
                cursor: identity,
                feed: origin.identity,
            });
        }
        if cursor.xid >= origin.next_xid {
            return Err(CursorRefusal::Ahead {
                cursor_xid: cursor.xid,
                next_xid: origin.next_xid,
            });
        }
        Ok(cursor)
    }

    /// The text form a watcher gets, naming the feed's identity.
    pub fn served(self, identity: FeedIdentity) -> String {
        format!("v2.{:x}.{}.{}", identity.0, self.xid, self.seq)
    }
}

impl fmt::Display for FeedCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}.{}", self.xid, self.seq)
    }
}

/// The database cluster a feed's transaction ids come from: Postgres's system identifier,
/// which every cluster gets at `initdb` and a streaming replica shares with its primary (so a
/// failover keeps it, as it keeps the ids), while a restore from a dump or a logical-replication
/// move lands in a cluster with another. The embedded SQLite stores have [`FeedIdentity::EMBEDDED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedIdentity(pub u64);

impl FeedIdentity {
    /// The identity of an embedded (SQLite) feed: its file carries its own counter along.
    pub const EMBEDDED: Self = Self(0);
}

/// Where a feed stands: whose transaction ids it orders by, and the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedOrigin {
    /// The cluster.
    pub identity: FeedIdentity,
    /// No row of the feed has a transaction id at or above this.
    pub next_xid: i64,
}

/// Reads a Postgres feed's origin (any role may call `pg_control_system`).
pub async fn origin(pool: &sqlx::PgPool) -> Result<FeedOrigin, sqlx::Error> {
    let (identity, next_xid): (i64, i64) = sqlx::query_as(
        "SELECT system_identifier, pg_snapshot_xmax(pg_current_snapshot())::text::bigint FROM pg_control_system()",
    )
    .fetch_one(pool)
    .await?;
    Ok(FeedOrigin {
        identity: FeedIdentity(identity.cast_unsigned()),
        next_xid,
    })
}

/// Why a cursor to resume after was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorRefusal {
    /// Not a cursor of any feed.
    Malformed,
    /// A cursor of the same feed in another database cluster.
    OtherCluster {
        /// The cluster the cursor names.
        cursor: FeedIdentity,
        /// This feed's.
        feed: FeedIdentity,
    },
    /// A position this feed has not reached: its transaction ids restarted below it.
    Ahead {
        /// The cursor's transaction id.
        cursor_xid: i64,
        /// The next id this feed will give.
        next_xid: i64,
    },
}

impl fmt::Display for CursorRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => write!(f, "is not a cursor from this feed"),
            Self::OtherCluster { cursor, feed } => write!(
                f,
                "comes from another database cluster (system identifier {:x}, this feed's is {:x}): \
                 the database was restored or moved; see docs/FEED.md to resume",
                cursor.0, feed.0
            ),
            Self::Ahead {
                cursor_xid,
                next_xid,
            } => write!(
                f,
                "is ahead of this feed (transaction {cursor_xid}, the feed's next is {next_xid}): \
                 the database was restored or moved; see docs/FEED.md to resume"
            ),
        }
    }
}

/// The watermark: the oldest transaction still running **in this database** (or the next
/// transaction id when none is). Rows written by older transactions can no longer appear, so a
/// reader may consume rows with `xid` below it.
///
/// A transaction in another database of the same server cannot write this database's tables, so
/// it is left out: a backup, an analytics query or a migration elsewhere on a shared server does
/// not hold the feed back (docs/FEED.md). The running transactions are read from
/// `pg_stat_activity` (whose `backend_xid` any role may read) and `pg_prepared_xacts`; their
/// 32-bit ids are widened to 64 bits against the statement's snapshot. Every transaction older
/// than the snapshot's `xmax` that is still running is in those views when they are read, after the
/// snapshot was taken, so none is missed.
///
/// It takes the pool, not a transaction: `pg_stat_activity` is read once per transaction and
/// kept, so a second read in one transaction would miss transactions begun since.
pub async fn watermark(pool: &sqlx::PgPool) -> Result<Watermark, sqlx::Error> {
    let (xid, taken_at) = sqlx::query_as(
        "SELECT LEAST(n.next, min(n.next + CASE WHEN d.ahead < 2147483648 THEN d.ahead ELSE d.ahead - 4294967296 END)),
                statement_timestamp()
         FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next) n
         LEFT JOIN LATERAL (
             SELECT ((r.xid32 - n.next % 4294967296) + 4294967296) % 4294967296 AS ahead
             FROM (SELECT backend_xid::text::bigint AS xid32 FROM pg_stat_activity
                   WHERE datname = current_database() AND backend_xid IS NOT NULL
                   UNION ALL
                   SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE database = current_database()) r
         ) d ON true
         GROUP BY n.next",
    )
    .fetch_one(pool)
    .await?;
    Ok(Watermark { xid, taken_at })
}

/// Where a feed could be read up to, and when that was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// Rows of transactions below this id can be read: none of them can appear any more.
    pub xid: i64,
    /// When it was taken (the database's clock, at the start of the statement, so before its
    /// snapshot): every transaction that committed before this instant is visible to reads made
    /// after it.
    pub taken_at: DateTime<Utc>,
}

impl Watermark {
    /// The instant a read behind this watermark is complete up to: when the read returned fewer
    /// rows than asked (nothing left below the watermark) and no committed row was held back
    /// (every committed row was below it), every transaction committed before `taken_at` has been
    /// read.
    pub fn caught_up_to(self, full: bool, held_back: bool) -> Option<DateTime<Utc>> {
        (!full && !held_back).then_some(self.taken_at)
    }
}

/// One read of a feed.
#[derive(Debug, Clone)]
pub struct FeedPage<E> {
    /// Events after the requested cursor, in feed order, each with its own cursor.
    pub events: Vec<(FeedCursor, E)>,
    /// Whether committed events exist that cannot be delivered yet because an older transaction
    /// is still running.
    pub held_back: bool,
    /// When set, this page and the ones before it hold every event committed before this instant
    /// ([`Watermark::caught_up_to`]).
    pub caught_up_to: Option<DateTime<Utc>>,
}

/// The first `limit` events of a feed served from several tables, each of which gave its first
/// `limit` rows after the cursor, in feed order: no table holds an earlier event it did not
/// return, so the first `limit` of the merge are the first `limit` of the feed. `cursor` says
/// where an event stands.
pub fn first_of_merge<E>(
    mut events: Vec<E>,
    cursor: impl FnMut(&E) -> FeedCursor,
    limit: u32,
) -> Vec<E> {
    events.sort_by_key(cursor);
    events.truncate(limit as usize);
    events
}

/// Something a feed can be read from.
#[async_trait]
pub trait FeedSource: Send + Sync + 'static {
    /// What the feed carries.
    type Event: Send + 'static;
    /// What can go wrong reading it.
    type Error: Send + 'static;
    /// Events after `after`, at most `limit`.
    async fn read(
        &self,
        after: FeedCursor,
        limit: u32,
    ) -> Result<FeedPage<Self::Event>, Self::Error>;
    /// Ticks whenever new events may have committed.
    fn signal(&self) -> signal::Receiver<u64>;
    /// The error a watcher receives when the server shuts down (UNAVAILABLE: reconnect elsewhere).
    fn shutting_down(&self) -> Self::Error;
    /// The event that tells a watcher the feed is complete up to `at` (sent after a page that
    /// says so, with the cursor of the last event sent); `None` for a feed that sends none.
    fn checkpoint(&self, at: DateTime<Utc>) -> Option<Self::Event> {
        let _ = at;
        None
    }
}

/// How watchers read.
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    /// Events read per query.
    pub batch_size: u32,
    /// Re-check after this long without any notification.
    pub idle_recheck: Duration,
    /// First pause when events are held back; doubles up to `held_back_max`.
    pub held_back_min: Duration,
    /// Longest pause when events are held back.
    pub held_back_max: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            idle_recheck: Duration::from_secs(5),
            // Held back is common under load (any writing transaction of the database that began
            // before the newest commit holds it); a pause that grew to 200 ms put up to that much
            // on a tier's freshness, while a read costs about a millisecond.
            held_back_min: Duration::from_millis(2),
            held_back_max: Duration::from_millis(20),
        }
    }
}

/// The stream a watcher reads; it ends when the receiver is dropped or the server shuts down.
pub type FeedStream<E, Err> = ReceiverStream<Result<(FeedCursor, E), Err>>;

/// Streams events of `source` after `cursor`, live, until the receiver is dropped or `shutdown`.
pub fn watch<S: FeedSource>(
    source: Arc<S>,
    mut cursor: FeedCursor,
    settings: FeedSettings,
    shutdown: CancellationToken,
) -> FeedStream<S::Event, S::Error> {
    // A small buffer: a slow reader slows the reads instead of filling memory.
    let (sender, receiver) = mpsc::channel(settings.batch_size.max(1) as usize);
    tokio::spawn(async move {
        let mut signal = source.signal();
        let mut held_back_pause = settings.held_back_min;
        loop {
            // Mark the signal seen before reading, so a commit during the read wakes us again.
            signal.borrow_and_update();
            let page = match source.read(cursor, settings.batch_size).await {
                Ok(page) => page,
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            let full = page.events.len() == settings.batch_size as usize;
            let checkpoint = page.caught_up_to.and_then(|at| source.checkpoint(at));
            for (position, event) in page.events {
                cursor = position;
                tokio::select! {
                    () = shutdown.cancelled() => {
                        let _ = sender.try_send(Err(source.shutting_down()));
                        return;
                    }
                    sent = sender.send(Ok((position, event))) => if sent.is_err() { return },
                }
            }
            // Sent at the position of the last event sent: resuming after it skips nothing.
            if let Some(checkpoint) = checkpoint {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        let _ = sender.try_send(Err(source.shutting_down()));
                        return;
                    }
                    sent = sender.send(Ok((cursor, checkpoint))) => if sent.is_err() { return },
                }
            }
            if full {
                continue;
            }
            // While an older transaction holds the watermark back, commits do not help: wait out
            // a short, growing pause instead of re-reading on every notification.
            let woken_by_commits = !page.held_back;
            let pause = if page.held_back {
                let pause = held_back_pause;
                held_back_pause = (held_back_pause * 2).min(settings.held_back_max);
                pause
            } else {
                held_back_pause = settings.held_back_min;
                settings.idle_recheck
            };
            tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = sender.try_send(Err(source.shutting_down()));
                    return;
                }
                () = sender.closed() => return,
                changed = signal.changed(), if woken_by_commits => if changed.is_err() { return },
                () = tokio::time::sleep(pause) => {}
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// Listens on `channel` until `shutdown` and ticks `signal` on each notification, and whenever
/// listening starts again after a lost connection (notifications may have been missed meanwhile).
pub fn spawn_listener(
    pool: sqlx::PgPool,
    channel: &'static str,
    signal: signal::Sender<u64>,
    shutdown: CancellationToken,
) {
    let mut notices = crate::notify::listen(pool, channel, shutdown);
    tokio::spawn(async move {
        while let Some(notice) = notices.recv().await {
            if notice != Notice::Lost {
                signal.send_modify(|count| *count = count.wrapping_add(1));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = FeedCursor {
            xid: 7_345,
            seq: 99,
        };
        assert_eq!(FeedCursor::parse(&cursor.to_string()), Some((None, cursor)));
        let identity = FeedIdentity(0x6b09_46d1_a2f3_0001);
        assert_eq!(
            FeedCursor::parse(&cursor.served(identity)),
            Some((Some(identity), cursor))
        );
        assert_eq!(FeedCursor::parse(""), Some((None, FeedCursor::START)));
        for bad in [
            "7345.99",
            "v1.x.1",
            "v1.1",
            "v1.-1.2",
            "v2.1.2",
            "v2.zz.1.2",
            "v3.1.1.2",
        ] {
            assert_eq!(FeedCursor::parse(bad), None, "{bad}");
        }
        assert!(FeedCursor { xid: 5, seq: 100 } < FeedCursor { xid: 6, seq: 1 });
    }

    #[test]
    fn a_merge_keeps_the_first_events_in_feed_order() {
        let at = |xid, seq| FeedCursor { xid, seq };
        // Two tables' first three rows after the cursor, one after the other.
        let events = vec![
            (at(3, 1), "a"),
            (at(5, 2), "b"),
            (at(9, 1), "c"),
            (at(3, 2), "x"),
            (at(4, 1), "y"),
            (at(8, 1), "z"),
        ];
        assert_eq!(
            first_of_merge(events, |(cursor, _)| *cursor, 4),
            vec![
                (at(3, 1), "a"),
                (at(3, 2), "x"),
                (at(4, 1), "y"),
                (at(5, 2), "b")
            ]
        );
    }

    #[test]
    fn a_cursor_from_another_cluster_or_beyond_the_feed_is_refused() {
        let here = FeedOrigin {
            identity: FeedIdentity(0xaaaa),
            next_xid: 1_000,
        };
        let cursor = FeedCursor { xid: 900, seq: 3 };
        assert_eq!(
            FeedCursor::resume(&cursor.served(here.identity), here),
            Ok(cursor)
        );
        assert_eq!(FeedCursor::resume("", here), Ok(FeedCursor::START));
        assert_eq!(
            FeedCursor::resume(&cursor.to_string(), here),
            Ok(cursor),
            "a cursor from before identities is still taken where it can be"
        );
        assert_eq!(
            FeedCursor::resume(&cursor.served(FeedIdentity(0xbbbb)), here),
            Err(CursorRefusal::OtherCluster {
                cursor: FeedIdentity(0xbbbb),
                feed: here.identity
            })
        );
        // A restored cluster counts its transactions afresh: the stored position lies ahead.
        let restored = FeedOrigin {
            identity: here.identity,
            next_xid: 40,
        };
        assert_eq!(
            FeedCursor::resume(&cursor.to_string(), restored),
            Err(CursorRefusal::Ahead {
                cursor_xid: 900,
                next_xid: 40
            })
        );
        assert_eq!(
            FeedCursor::resume("v1.x", here),
            Err(CursorRefusal::Malformed)
        );
    }
}
