//! The tier-change feed (`WatchTierChanges`): every change of the tier shown, exactly once, in a
//! stable order, resumable from any cursor, live — served by the runtime's transaction-id
//! watermark feed over the history and the lifecycle changes found by sweeps.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use tierline_runtime::xid_feed::{self, FeedCursor, FeedPage, FeedSettings, FeedSource};
use tokio::sync::{Mutex, watch};
use uuid::Uuid;

use super::{program::Program, state::TierFeedItem};
use crate::{ScoringError, domain::ports::ScoringStore};

/// One tier or lifecycle change with its program (for tier codes and names).
#[derive(Debug, Clone)]
pub struct TierChange {
    /// The change.
    pub item: TierFeedItem,
    /// Its program.
    pub program: Arc<Program>,
}

/// The stream a watcher reads.
pub type TierChangeStream = xid_feed::FeedStream<TierChange, ScoringError>;

struct TierFeed {
    store: Arc<dyn ScoringStore>,
    program_id: Option<Uuid>,
    programs: Mutex<HashMap<Uuid, Arc<Program>>>,
}

impl TierFeed {
    async fn program(&self, id: Uuid) -> Result<Arc<Program>, ScoringError> {
        let mut programs = self.programs.lock().await;
        if let Some(program) = programs.get(&id) {
            return Ok(program.clone());
        }
        let program = Arc::new(
            self.store
                .program(id)
                .await?
                .ok_or_else(|| ScoringError::not_found("program", id))?,
        );
        programs.insert(id, program.clone());
        Ok(program)
    }
}

#[async_trait]
impl FeedSource for TierFeed {
    type Event = TierChange;
    type Error = ScoringError;

    async fn read(
        &self,
        after: FeedCursor,
        limit: u32,
    ) -> Result<FeedPage<TierChange>, ScoringError> {
        let page = self
            .store
            .read_tier_feed(after, self.program_id, limit)
            .await?;
        let mut events = Vec::with_capacity(page.events.len());
        for (cursor, item) in page.events {
            let program = self.program(item.program_id()).await?;
            events.push((cursor, TierChange { item, program }));
        }
        Ok(FeedPage {
            events,
            held_back: page.held_back,
            caught_up_to: None,
        })
    }

    fn signal(&self) -> watch::Receiver<u64> {
        self.store.tier_feed_signal()
    }

    fn shutting_down(&self) -> ScoringError {
        ScoringError::Unavailable(
            "the server is shutting down; reconnect to another replica".into(),
        )
    }
}

/// Streams tier changes after `cursor` (of one program when given) until `shutdown`.
pub fn watch_tier_changes(
    store: Arc<dyn ScoringStore>,
    cursor: FeedCursor,
    program_id: Option<Uuid>,
    shutdown: tokio_util::sync::CancellationToken,
) -> TierChangeStream {
    let source = TierFeed {
        store,
        program_id,
        programs: Mutex::new(HashMap::new()),
    };
    xid_feed::watch(Arc::new(source), cursor, FeedSettings::default(), shutdown)
}
