//! The scheduler, on every replica that enables it: each tick it launches scheduled campaigns
//! whose start has come, completes running ones whose end has come, resumes one-shot launches
//! whose launcher died (their lock is free), and sweeps birthdays for birthday-triggered
//! campaigns. Replicas never do the same work twice: transitions are saved by revision and
//! launches and sweeps run under per-campaign locks.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::{
    CampaignError,
    domain::{
        birthday::{BirthdaySweep, sweep_consumer},
        campaign::{Kind, Status, Trigger},
        service::Campaigns,
        triggers::running_triggered,
    },
};

/// Starts the scheduler; it stops at `shutdown`.
pub fn spawn(campaigns: Campaigns, tick: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if let Err(error) = run_once(&campaigns).await {
                tracing::warn!(%error, "scheduler tick failed");
            }
        }
    });
}

/// One tick: due transitions and launches, then birthday sweeps.
#[tracing::instrument(skip_all)]
pub async fn run_once(campaigns: &Campaigns) -> Result<(), CampaignError> {
    let now = Utc::now();
    for id in campaigns.store().due(now).await? {
        let Some(campaign) = campaigns.store().campaign(id).await? else {
            continue;
        };
        match campaign.status {
            Status::Scheduled => {
                let campaign = campaigns.start_running(id).await?;
                if campaign.definition.kind == Kind::OneShot {
                    campaigns.drive_launch(id, Some(Duration::ZERO)).await?;
                }
            }
            Status::Running if campaign.definition.end_at.is_some_and(|end| end <= now) => {
                campaigns.complete_id(id).await?;
                tracing::info!(campaign_id = %id, "campaign reached its end");
            }
            // Launching a triggered campaign is only the status change; finish one whose
            // launcher died between the two writes.
            Status::Running
                if !campaign.launch.complete && campaign.definition.kind == Kind::Triggered =>
            {
                campaigns.store().complete_launch(id).await?;
            }
            Status::Running
                if !campaign.launch.complete
                    && campaigns.drive_launch(id, Some(Duration::ZERO)).await? =>
            {
                tracing::info!(campaign_id = %id, "resuming an interrupted launch");
            }
            _ => {}
        }
    }
    sweep_birthdays(campaigns).await
}

async fn sweep_birthdays(campaigns: &Campaigns) -> Result<(), CampaignError> {
    let running = running_triggered(campaigns.store().as_ref()).await?;
    for campaign in running {
        if !matches!(campaign.definition.trigger, Some(Trigger::Birthday { .. })) {
            continue;
        }
        let Some(lock) = campaigns
            .store()
            .try_lock_consumer(&sweep_consumer(&campaign))
            .await?
        else {
            continue;
        };
        let sweep = BirthdaySweep::new(campaigns.store().clone(), campaigns.enroller().clone());
        // A sweep over a large audience takes a while: it must not hold up the next tick.
        tokio::spawn(async move {
            let _lock = lock;
            if let Err(error) = sweep.run(&campaign, Utc::now()).await {
                tracing::warn!(%error, campaign_id = %campaign.id, "birthday sweep failed; retried next tick");
            }
        });
    }
    Ok(())
}
