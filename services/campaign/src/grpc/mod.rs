//! The gRPC adapter: converts messages, calls the domain, maps errors. No business rule lives
//! here.

mod convert;
mod scopes;

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tierline_proto::campaign::v1::{self as pb, campaign_service_server::CampaignService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub use scopes::SCOPES;

use crate::{
    CampaignError,
    domain::ports::CampaignFilter,
    domain::{deliveries::DeliveryRequest, service::Campaigns},
};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The campaign service's gRPC API.
#[derive(Debug, Clone)]
pub struct CampaignApi {
    campaigns: Campaigns,
    shutdown: tokio_util::sync::CancellationToken,
}

impl CampaignApi {
    /// The API over the domain.
    pub fn new(campaigns: Campaigns, shutdown: tokio_util::sync::CancellationToken) -> Self {
        Self {
            campaigns,
            shutdown,
        }
    }

    async fn with_summary(
        &self,
        campaign: crate::domain::campaign::Campaign,
    ) -> Result<pb::Campaign, CampaignError> {
        let summary = match campaign.launched_at {
            Some(_) => Some(convert::summary_to_proto(
                &self.campaigns.summary(&campaign).await?,
            )),
            None => None,
        };
        Ok(convert::campaign_to_proto(campaign, summary))
    }
}

#[tonic::async_trait]
impl CampaignService for CampaignApi {
    #[tracing::instrument(skip_all)]
    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let request = request.into_inner();
        let input = convert::campaign_input(request.campaign.unwrap_or_default())?;
        let campaign = self
            .campaigns
            .create(input, &request.created_by, &request.idempotency_key)
            .await?;
        Ok(Response::new(self.with_summary(campaign).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn get_campaign(
        &self,
        request: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let campaign = self
            .campaigns
            .get(&request.into_inner().campaign_id)
            .await?;
        Ok(Response::new(self.with_summary(campaign).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_campaigns(
        &self,
        request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        let request = request.into_inner();
        let program_id = match request.program_id.as_str() {
            "" => None,
            id => Some(
                uuid::Uuid::parse_str(id)
                    .map_err(|_| CampaignError::invalid("program_id", "must be a UUID"))?,
            ),
        };
        let filter = CampaignFilter {
            status: convert::status_from_proto(request.status),
            program_id,
            kind: convert::kind_filter(request.kind),
        };
        let (campaigns, next_page_token) = self
            .campaigns
            .list(filter, request.page_size, &request.page_token)
            .await?;
        let mut listed = Vec::with_capacity(campaigns.len());
        for campaign in campaigns {
            listed.push(self.with_summary(campaign).await?);
        }
        Ok(Response::new(pb::ListCampaignsResponse {
            campaigns: listed,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_campaign(
        &self,
        request: Request<pb::UpdateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let request = request.into_inner();
        let id = request.campaign_id.clone();
        let expected = request.expected_revision;
        let patch = convert::patch(request)?;
        let campaign = self.campaigns.update(&id, expected, patch).await?;
        Ok(Response::new(self.with_summary(campaign).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn schedule_campaign(
        &self,
        request: Request<pb::ScheduleCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let request = request.into_inner();
        let mut violations = Vec::new();
        let start_at =
            convert::checked_datetime(request.start_at.as_ref(), "start_at", &mut violations);
        if !violations.is_empty() {
            return Err(CampaignError::InvalidArgument(violations).into());
        }
        let campaign = self
            .campaigns
            .schedule(&request.campaign_id, start_at)
            .await?;
        Ok(Response::new(self.with_summary(campaign).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn launch_campaign(
        &self,
        request: Request<pb::LaunchCampaignRequest>,
    ) -> Result<Response<pb::LaunchCampaignResponse>, Status> {
        let (campaign, summary) = self
            .campaigns
            .launch(&request.into_inner().campaign_id)
            .await?;
        let summary = convert::summary_to_proto(&summary);
        Ok(Response::new(pb::LaunchCampaignResponse {
            campaign: Some(convert::campaign_to_proto(campaign, Some(summary.clone()))),
            summary: Some(summary),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_campaign(
        &self,
        request: Request<pb::CancelCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let request = request.into_inner();
        let campaign = self
            .campaigns
            .cancel(&request.campaign_id, &request.reason)
            .await?;
        Ok(Response::new(self.with_summary(campaign).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_campaign(
        &self,
        request: Request<pb::CompleteCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let campaign = self
            .campaigns
            .complete(&request.into_inner().campaign_id)
            .await?;
        Ok(Response::new(self.with_summary(campaign).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn preview_audience(
        &self,
        request: Request<pb::PreviewAudienceRequest>,
    ) -> Result<Response<pb::PreviewAudienceResponse>, Status> {
        let request = request.into_inner();
        let target = convert::preview_target(request.target)?;
        let preview = self.campaigns.preview(target, request.sample_size).await?;
        Ok(Response::new(convert::preview_to_proto(preview)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let request = request.into_inner();
        let (rows, next_page_token) = self
            .campaigns
            .members(
                &request.campaign_id,
                convert::arm_from_proto(request.arm),
                request.page_size,
                &request.page_token,
            )
            .await?;
        let campaign = self.campaigns.get(&request.campaign_id).await?;
        Ok(Response::new(pb::ListMembersResponse {
            members: rows
                .into_iter()
                .map(|row| convert::member_to_proto(&campaign, row))
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_suppressions(
        &self,
        request: Request<pb::ListSuppressionsRequest>,
    ) -> Result<Response<pb::ListSuppressionsResponse>, Status> {
        let request = request.into_inner();
        let (rows, next_page_token) = self
            .campaigns
            .suppressions(
                &request.campaign_id,
                convert::reason_from_proto(request.reason),
                request.page_size,
                &request.page_token,
            )
            .await?;
        let campaign = self.campaigns.get(&request.campaign_id).await?;
        Ok(Response::new(pb::ListSuppressionsResponse {
            suppressions: rows
                .into_iter()
                .map(|row| convert::suppression_to_proto(&campaign, row))
                .collect(),
            next_page_token,
        }))
    }

    type StreamDeliveriesStream = ResponseStream<pb::Delivery>;

    #[tracing::instrument(skip_all)]
    async fn stream_deliveries(
        &self,
        request: Request<pb::StreamDeliveriesRequest>,
    ) -> Result<Response<Self::StreamDeliveriesStream>, Status> {
        let request = request.into_inner();
        let channel = convert::channel_from_proto(request.channel)
            .ok_or_else(|| CampaignError::invalid("channel", "must be EMAIL, SMS or PUSH"))?;
        let deliveries = self.campaigns.stream_deliveries(
            DeliveryRequest {
                channel,
                adapter_id: request.adapter_id,
                max_in_flight: request
                    .max_in_flight
                    .map_or(100, |n| u32::try_from(n).unwrap_or(0)),
                lease: chrono::Duration::seconds(i64::from(request.lease_seconds.unwrap_or(60))),
            },
            self.shutdown.clone(),
        )?;
        let stream = ReceiverStream::new(deliveries)
            .map(|item| item.map(convert::delivery_to_proto).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all)]
    async fn ack_deliveries(
        &self,
        request: Request<pb::AckDeliveriesRequest>,
    ) -> Result<Response<pb::AckDeliveriesResponse>, Status> {
        let request = request.into_inner();
        let acks = request.acks.into_iter().map(convert::ack_input).collect();
        let results = self.campaigns.ack(&request.adapter_id, acks).await?;
        Ok(Response::new(pb::AckDeliveriesResponse {
            results: results.into_iter().map(convert::ack_result).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_campaign_report(
        &self,
        request: Request<pb::GetCampaignReportRequest>,
    ) -> Result<Response<pb::CampaignReport>, Status> {
        let report = self
            .campaigns
            .report(&request.into_inner().campaign_id)
            .await?;
        Ok(Response::new(convert::report_to_proto(report)))
    }
}
