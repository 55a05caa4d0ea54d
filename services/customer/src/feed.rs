//! Serving the activity feed to watchers: read a page after the cursor, send it, and when caught
//! up sleep until the store signals a commit. No polling loop runs while nothing happens; a slow
//! re-check (`idle_recheck`) only guards against a lost notification.
//!
//! When committed events are held back behind an older transaction still running, the watcher
//! looks again after a short, growing pause, since that transaction's commit may notify nothing
//! (it may not touch the feed at all).

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::{
    CustomerError,
    domain::feed::{FeedCursor, FeedEvent},
    storage::CustomerStore,
};

/// The stream a watcher reads; it ends when the server shuts down.
pub type FeedStream = ReceiverStream<Result<FeedEvent, CustomerError>>;

/// How watchers read the feed.
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
            held_back_min: Duration::from_millis(5),
            held_back_max: Duration::from_millis(200),
        }
    }
}

/// Starts feed watchers.
#[derive(Debug, Clone)]
pub struct FeedWatcher {
    settings: FeedSettings,
}

impl FeedWatcher {
    /// Watchers with these settings.
    pub fn new(settings: FeedSettings) -> Self {
        Self { settings }
    }

    /// Streams events after `cursor` from `store` until the receiver is dropped or `shutdown`.
    pub fn watch(
        &self,
        store: Arc<dyn CustomerStore>,
        mut cursor: FeedCursor,
        shutdown: CancellationToken,
    ) -> FeedStream {
        let settings = self.settings;
        // A small buffer: a slow reader slows the reads instead of filling memory.
        let (sender, receiver) = mpsc::channel(settings.batch_size as usize);
        tokio::spawn(async move {
            let shutting_down = || Err(CustomerError::ShuttingDown);
            let mut signal = store.feed_signal();
            let mut held_back_pause = settings.held_back_min;
            loop {
                // Mark the signal seen before reading, so a commit during the read wakes us again.
                signal.borrow_and_update();
                let page = match store.read_feed(cursor, settings.batch_size).await {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                };
                let full = page.events.len() == settings.batch_size as usize;
                for event in page.events {
                    cursor = event.cursor;
                    tokio::select! {
                        () = shutdown.cancelled() => {
                            let _ = sender.try_send(shutting_down());
                            return;
                        }
                        sent = sender.send(Ok(event)) => if sent.is_err() { return },
                    }
                }
                if full {
                    continue;
                }
                // While an older transaction holds the watermark back, commits do not help: wait
                // out a short, growing pause instead of re-reading on every notification.
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
                        // UNAVAILABLE tells the watcher to reconnect (to another replica), unlike
                        // a plain end of stream.
                        let _ = sender.try_send(shutting_down());
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
}
