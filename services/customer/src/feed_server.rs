//! Serving the activity feed to watchers, on the runtime's transaction-id watermark feed
//! (`tierline_runtime::xid_feed`): this module only adapts the customer store to it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
pub use tierline_runtime::xid_feed::FeedSettings;
use tierline_runtime::xid_feed::{self, FeedPage as RawPage, FeedSource};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    CustomerError,
    domain::{
        feed::{FeedCursor, FeedPayload},
        ports::CustomerStore,
    },
};

/// The stream a watcher reads: events with their cursors; it ends when the server shuts down
/// (with UNAVAILABLE, so watchers reconnect elsewhere).
pub type FeedStream = xid_feed::FeedStream<FeedPayload, CustomerError>;

/// The customer store as a feed source.
#[derive(Debug)]
struct ActivityFeed(Arc<dyn CustomerStore>);

#[async_trait]
impl FeedSource for ActivityFeed {
    type Event = FeedPayload;
    type Error = CustomerError;

    async fn read(
        &self,
        after: FeedCursor,
        limit: u32,
    ) -> Result<RawPage<FeedPayload>, CustomerError> {
        let page = self.0.read_feed(after, limit).await?;
        Ok(RawPage {
            events: page
                .events
                .into_iter()
                .map(|event| (event.cursor, event.payload))
                .collect(),
            held_back: page.held_back,
            caught_up_to: page.caught_up_to,
        })
    }

    fn checkpoint(&self, at: DateTime<Utc>) -> Option<FeedPayload> {
        Some(FeedPayload::CaughtUp(at))
    }

    fn signal(&self) -> watch::Receiver<u64> {
        self.0.feed_signal()
    }

    fn shutting_down(&self) -> CustomerError {
        CustomerError::ShuttingDown
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
        cursor: FeedCursor,
        shutdown: CancellationToken,
    ) -> FeedStream {
        xid_feed::watch(
            Arc::new(ActivityFeed(store)),
            cursor,
            self.settings,
            shutdown,
        )
    }
}
