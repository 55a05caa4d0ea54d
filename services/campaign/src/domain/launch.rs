//! Launching a one-shot campaign: stream the audience from the scoring service in id order,
//! enrol each page (see [`super::enrolment`]) and move the launch cursor in the same
//! transaction. A crash loses at most the page in flight; whoever holds the launch lock next
//! resumes after the cursor, and inserts that exist are left alone, so nobody is enrolled or
//! contacted twice. A campaign cancelled or completed meanwhile stops the launch at the next
//! page (its status is checked, and held, in each page's transaction).

use std::sync::Arc;

use futures::StreamExt;
use uuid::Uuid;

use super::{
    campaign::{Campaign, Status},
    enrolment::{ChunkDecision, Enroller},
};
use crate::{
    CampaignError,
    domain::ports::{CampaignStore, LaunchLock},
};

/// The occasion of a one-shot launch's suppressions.
pub const LAUNCH_OCCASION: &str = "launch";

/// Pages checked ahead of the one being written.
const PAGES_AHEAD: usize = 2;

type DecidedPage = Result<(ChunkDecision, Uuid), CampaignError>;

/// Streams the audience after the launch cursor and sends each page's customer-side decision
/// with its last id, in order; stops at the first error (sent on) or when nobody listens.
async fn decide_pages(
    enroller: Enroller,
    campaign: Campaign,
    decided: tokio::sync::mpsc::Sender<DecidedPage>,
) {
    let definition = &campaign.definition;
    let pages = enroller
        .upstream()
        .audience(
            definition.program_id,
            &definition.audience.scoring,
            campaign.launch.cursor,
        )
        .await;
    let mut pages = match pages {
        Ok(pages) => Box::pin(pages),
        Err(error) => {
            let _ = decided.send(Err(error)).await;
            return;
        }
    };
    while let Some(page) = pages.next().await {
        let result = match page {
            Ok(ids) => {
                let Some(last) = ids.last().copied() else {
                    continue;
                };
                enroller
                    .decide(&campaign, &ids)
                    .await
                    .map(|decision| (decision, last))
            }
            Err(error) => Err(error),
        };
        let failed = result.is_err();
        if decided.send(result).await.is_err() || failed {
            return;
        }
    }
}

/// Runs launches.
#[derive(Debug, Clone)]
pub struct Launcher {
    store: Arc<dyn CampaignStore>,
    enroller: Enroller,
}

impl Launcher {
    /// A launcher.
    pub fn new(store: Arc<dyn CampaignStore>, enroller: Enroller) -> Self {
        Self { store, enroller }
    }

    /// Goes on with the launch of `campaign_id` while holding `lock`, until the audience is
    /// exhausted; then marks it complete.
    #[tracing::instrument(skip(self, _lock))]
    pub async fn run(&self, campaign_id: Uuid, _lock: LaunchLock) -> Result<(), CampaignError> {
        // Read under the lock: the cursor is where the last launcher stopped.
        let campaign = self
            .store
            .campaign(campaign_id)
            .await?
            .ok_or_else(|| CampaignError::not_found("campaign", campaign_id))?;
        if campaign.launch.complete || campaign.status != Status::Running {
            return Ok(());
        }
        // The customer-side checks of the next page (two upstream calls) overlap with the
        // commit of this one: a bounded channel of decided pages, in audience order.
        let (decided, mut pages) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        let producer = tokio::spawn(decide_pages(
            self.enroller.clone(),
            campaign.clone(),
            decided,
        ));
        let outcome = async {
            while let Some(page) = pages.recv().await {
                let (decision, last) = page?;
                let matched = decision.matched;
                let mut tx = self.store.begin_enrolment().await?;
                tx.lock_contacts().await?;
                let written = self
                    .enroller
                    .write(tx.as_mut(), &campaign, decision, LAUNCH_OCCASION)
                    .await?;
                if written.stopped {
                    tracing::info!("campaign no longer running; launch stops");
                    return Ok(false);
                }
                tx.advance_launch(campaign_id, matched, last).await?;
                tx.commit().await?;
            }
            Ok::<_, CampaignError>(true)
        }
        .await;
        // Stopping early (or failing) drops the receiver, which ends the producer.
        drop(pages);
        producer.abort();
        if !outcome? {
            return Ok(());
        }
        self.store.complete_launch(campaign_id).await?;
        tracing::info!("launch complete");
        Ok(())
    }
}
