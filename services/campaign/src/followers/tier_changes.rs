//! The tier-change feed of the scoring service, converted for triggers and applied in batches.

use std::sync::Arc;
use tierline_proto::scoring::v1::{
    self as scoring, WatchTierChangesRequest, scoring_service_client::ScoringServiceClient,
};

use tierline_runtime::{
    client::{ClientSettings, Outgoing, channel},
    follower::{Batching, Stopped},
};

use super::id;
use crate::{
    CampaignError,
    domain::triggers::{TierChange, TierEvent, TriggerApplier},
    storage::CampaignStore,
};

fn unavailable(status: tonic::Status) -> CampaignError {
    CampaignError::Unavailable(format!("scoring service: {status}"))
}

/// The consumer's name, for its lock, cursor and dead letters.
pub(super) const FEED: &str = "tier_changes";

/// Follows the feed until it ends (`Ok`), fails, or its cursor is refused.
pub(super) async fn consume(
    applier: &TriggerApplier,
    store: &Arc<dyn CampaignStore>,
    settings: &ClientSettings,
    batching: Batching<'_>,
) -> Result<(), Stopped<CampaignError>> {
    let channel =
        channel(settings).map_err(|error| CampaignError::Unavailable(error.to_string()))?;
    let mut client = ScoringServiceClient::with_interceptor(channel, Outgoing::new(settings));
    let after_cursor = applier.cursor().await?.unwrap_or_default();
    let stream = client
        .watch_tier_changes(WatchTierChangesRequest {
            after_cursor,
            program_id: String::new(),
        })
        .await
        .map_err(|status| Stopped::opening(status, unavailable))?
        .into_inner();
    tierline_runtime::follower::apply_batches(
        stream,
        batching,
        unavailable,
        |event| event.cursor.clone(),
        convert,
        |letters| async move { store.park_dead_letters(FEED, &letters).await },
        |events, position| async move { applier.apply(&events, &position).await },
    )
    .await?;
    Ok(())
}

/// The feed event as triggers see it; changes no trigger fires on are dropped; the reason when
/// it cannot be read.
fn convert(event: &scoring::TierFeedEvent) -> Result<Option<TierEvent>, String> {
    let change = match &event.change {
        Some(scoring::tier_feed_event::Change::TierChanged(changed)) => {
            let code = |tier: &Option<scoring::TierRef>| {
                tier.as_ref().map(|t| t.code.clone()).unwrap_or_default()
            };
            match scoring::TierChangeDirection::try_from(changed.direction) {
                Ok(scoring::TierChangeDirection::Upgrade) => TierChange::Upgrade {
                    to_tier_code: code(&changed.to_tier),
                },
                Ok(scoring::TierChangeDirection::Downgrade) => TierChange::Downgrade {
                    from_tier_code: code(&changed.from_tier),
                },
                _ => return Ok(None),
            }
        }
        Some(scoring::tier_feed_event::Change::LifecycleChanged(changed)) => {
            TierChange::Lifecycle {
                became: changed.to_state,
            }
        }
        None => return Ok(None),
    };
    let occurred_at = event
        .occurred_at
        .as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .ok_or_else(|| "occurred_at is missing or not a time".to_owned())?;
    Ok(Some(TierEvent {
        customer_id: id("customer_id", &event.customer_id)?,
        program_id: id("program_id", &event.program_id)?,
        occurred_at,
        change,
    }))
}
