//! The tier-change feed of the scoring service, converted for triggers and applied in batches.

use tierline_proto::scoring::v1::{
    self as scoring, WatchTierChangesRequest, scoring_service_client::ScoringServiceClient,
};
use tierline_runtime::client::{ClientSettings, Outgoing, channel};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    CampaignError,
    domain::triggers::{TierChange, TierEvent, TriggerApplier},
};

fn unavailable(status: tonic::Status) -> CampaignError {
    CampaignError::Unavailable(format!("scoring service: {status}"))
}

/// Follows the feed until it ends (`Ok`) or fails.
pub(super) async fn consume(
    applier: &TriggerApplier,
    settings: &ClientSettings,
    batch_size: usize,
    shutdown: &CancellationToken,
) -> Result<(), CampaignError> {
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
        .map_err(unavailable)?
        .into_inner();
    super::apply_batches(
        stream,
        "scoring service",
        batch_size,
        shutdown,
        |event| event.cursor.clone(),
        convert,
        |events, position| async move { applier.apply(&events, &position).await },
    )
    .await
}

fn id(text: &str) -> Result<Uuid, CampaignError> {
    Uuid::parse_str(text).map_err(|_| {
        CampaignError::Internal(format!("tier-change feed sent a malformed id {text:?}"))
    })
}

/// The feed event as triggers see it; changes no trigger fires on are dropped.
fn convert(event: scoring::TierFeedEvent) -> Result<Option<TierEvent>, CampaignError> {
    let change = match event.change {
        Some(scoring::tier_feed_event::Change::TierChanged(changed)) => {
            let code = |tier: Option<scoring::TierRef>| tier.map(|t| t.code).unwrap_or_default();
            match scoring::TierChangeDirection::try_from(changed.direction) {
                Ok(scoring::TierChangeDirection::Upgrade) => TierChange::Upgrade {
                    to_tier_code: code(changed.to_tier),
                },
                Ok(scoring::TierChangeDirection::Downgrade) => TierChange::Downgrade {
                    from_tier_code: code(changed.from_tier),
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
        .ok_or_else(|| CampaignError::Internal("tier change without a time".into()))?;
    Ok(Some(TierEvent {
        customer_id: id(&event.customer_id)?,
        program_id: id(&event.program_id)?,
        occurred_at,
        change,
    }))
}
