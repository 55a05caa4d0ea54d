//! The gRPC adapter: converts messages, calls the domain, maps errors. No business rule lives
//! here.
//!
//! Every RPC of the scoring service is built.

mod convert;
mod scopes;

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tierline_proto::scoring::v1::{self as pb, scoring_service_server::ScoringService};
use tonic::{Request, Response, Status};

pub use scopes::SCOPES;

use crate::domain::service::{OverrideRequest, PolicySelector, Scoring, SimulationSource};

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The scoring service's gRPC API.
#[derive(Debug, Clone)]
pub struct ScoringApi {
    scoring: Scoring,
    shutdown: tokio_util::sync::CancellationToken,
}

impl ScoringApi {
    /// The API over the domain.
    pub fn new(scoring: Scoring, shutdown: tokio_util::sync::CancellationToken) -> Self {
        Self { scoring, shutdown }
    }
}

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    #[tracing::instrument(skip_all)]
    async fn create_program(
        &self,
        request: Request<pb::CreateProgramRequest>,
    ) -> Result<Response<pb::Program>, Status> {
        let request = request.into_inner();
        let input = convert::program_input(request.program.unwrap_or_default());
        let program = self
            .scoring
            .create_program(input, &request.idempotency_key)
            .await?;
        Ok(Response::new(convert::program_to_proto(program, None)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_program(
        &self,
        request: Request<pb::GetProgramRequest>,
    ) -> Result<Response<pb::Program>, Status> {
        let (program, active) = self
            .scoring
            .program(&request.into_inner().program_id)
            .await?;
        Ok(Response::new(convert::program_to_proto(
            program,
            active.as_ref(),
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn list_programs(
        &self,
        request: Request<pb::ListProgramsRequest>,
    ) -> Result<Response<pb::ListProgramsResponse>, Status> {
        let request = request.into_inner();
        let (programs, next_page_token) = self
            .scoring
            .list_programs(request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListProgramsResponse {
            programs: programs
                .into_iter()
                .map(|(program, active)| convert::program_to_proto(program, active.as_ref()))
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_policy_version(
        &self,
        request: Request<pb::CreatePolicyVersionRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        let request = request.into_inner();
        let document = convert::policy_input(request.rules.unwrap_or_default());
        let policy = self
            .scoring
            .create_policy(
                &request.program_id,
                document,
                &request.description,
                &request.created_by,
                &request.idempotency_key,
            )
            .await?;
        Ok(Response::new(convert::policy_to_proto(policy)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        let selector = match request.into_inner().selector {
            Some(pb::get_policy_request::Selector::PolicyVersionId(id)) => {
                PolicySelector::Version(id)
            }
            Some(pb::get_policy_request::Selector::ActiveForProgramId(id)) => {
                PolicySelector::ActiveFor(id)
            }
            None => {
                return Err(crate::ScoringError::invalid(
                    "selector",
                    "give policy_version_id or active_for_program_id",
                )
                .into());
            }
        };
        Ok(Response::new(convert::policy_to_proto(
            self.scoring.policy(selector).await?,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn list_policy_versions(
        &self,
        request: Request<pb::ListPolicyVersionsRequest>,
    ) -> Result<Response<pb::ListPolicyVersionsResponse>, Status> {
        let request = request.into_inner();
        let status = convert::status_from_proto(request.status);
        let (versions, next_page_token) = self
            .scoring
            .list_policies(
                &request.program_id,
                status,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListPolicyVersionsResponse {
            policy_versions: versions.into_iter().map(convert::policy_to_proto).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_draft_policy(
        &self,
        request: Request<pb::UpdateDraftPolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        let request = request.into_inner();
        let document = convert::policy_input(request.rules.unwrap_or_default());
        let policy = self
            .scoring
            .update_draft(
                &request.policy_version_id,
                document,
                request.description.as_deref(),
                request.expected_revision,
            )
            .await?;
        Ok(Response::new(convert::policy_to_proto(policy)))
    }

    #[tracing::instrument(skip_all)]
    async fn activate_policy(
        &self,
        request: Request<pb::ActivatePolicyRequest>,
    ) -> Result<Response<pb::ActivatePolicyResponse>, Status> {
        let request = request.into_inner();
        let activation = self
            .scoring
            .activate(
                &request.policy_version_id,
                &request.activated_by,
                request.expected_revision,
            )
            .await?;
        let run_id = activation.run.id.to_string();
        let mut policy = convert::policy_to_proto(activation.policy);
        policy.activation_run_id = Some(run_id.clone());
        Ok(Response::new(pb::ActivatePolicyResponse {
            policy_version: Some(policy),
            evaluation_run_id: run_id,
            retired_policy_version_id: activation.retired.map(|id| id.to_string()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn retire_policy(
        &self,
        request: Request<pb::RetirePolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        let request = request.into_inner();
        let policy = self
            .scoring
            .retire(&request.policy_version_id, &request.retired_by)
            .await?;
        Ok(Response::new(convert::policy_to_proto(policy)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_tier(
        &self,
        request: Request<pb::GetTierRequest>,
    ) -> Result<Response<pb::CustomerTier>, Status> {
        let request = request.into_inner();
        let (in_force, view) = self
            .scoring
            .tier(&request.program_id, &request.customer_id)
            .await?;
        let (_, rules) = in_force.active()?;
        Ok(Response::new(convert::tier_to_proto(
            &in_force.program,
            rules,
            view,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn batch_get_tiers(
        &self,
        request: Request<pb::BatchGetTiersRequest>,
    ) -> Result<Response<pb::BatchGetTiersResponse>, Status> {
        let request = request.into_inner();
        let (in_force, views, missing) = self
            .scoring
            .tiers(&request.program_id, &request.customer_ids)
            .await?;
        let (_, rules) = in_force.active()?;
        Ok(Response::new(pb::BatchGetTiersResponse {
            tiers: views
                .into_iter()
                .map(|view| convert::tier_to_proto(&in_force.program, rules, view))
                .collect(),
            not_found_customer_ids: missing.into_iter().map(|id| id.to_string()).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_tier_history(
        &self,
        request: Request<pb::GetTierHistoryRequest>,
    ) -> Result<Response<pb::GetTierHistoryResponse>, Status> {
        let request = request.into_inner();
        let (program, records, next_page_token) = self
            .scoring
            .history(
                &request.program_id,
                &request.customer_id,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::GetTierHistoryResponse {
            records: records
                .into_iter()
                .map(|record| convert::history_to_proto(&program, record))
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn explain_tier(
        &self,
        request: Request<pb::ExplainTierRequest>,
    ) -> Result<Response<pb::ExplainTierResponse>, Status> {
        let request = request.into_inner();
        let explanation = self
            .scoring
            .explain(
                &request.program_id,
                &request.customer_id,
                request.max_history,
                request.max_activities,
            )
            .await?;
        Ok(Response::new(convert::explanation_to_proto(explanation)))
    }

    #[tracing::instrument(skip_all)]
    async fn set_tier_override(
        &self,
        request: Request<pb::SetTierOverrideRequest>,
    ) -> Result<Response<pb::CustomerTier>, Status> {
        let request = request.into_inner();
        let until = request.expires_at.as_ref().and_then(convert::datetime);
        let (program, rules, view) = self
            .scoring
            .set_override(OverrideRequest {
                program_id: &request.program_id,
                customer_id: &request.customer_id,
                tier_code: &request.tier_code,
                until,
                reason: &request.reason,
                operator: &request.operator_name,
                idempotency_key: &request.idempotency_key,
            })
            .await?;
        Ok(Response::new(convert::tier_to_proto(
            &program, &rules, view,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn clear_tier_override(
        &self,
        request: Request<pb::ClearTierOverrideRequest>,
    ) -> Result<Response<pb::CustomerTier>, Status> {
        let request = request.into_inner();
        let (program, rules, view) = self
            .scoring
            .clear_override(
                &request.program_id,
                &request.customer_id,
                &request.reason,
                &request.operator_name,
                &request.idempotency_key,
            )
            .await?;
        Ok(Response::new(convert::tier_to_proto(
            &program, &rules, view,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn evaluate_now(
        &self,
        request: Request<pb::EvaluateNowRequest>,
    ) -> Result<Response<pb::EvaluationRun>, Status> {
        let request = request.into_inner();
        let run = self
            .scoring
            .evaluate_now(
                &request.program_id,
                &request.requested_by,
                &request.idempotency_key,
            )
            .await?;
        Ok(Response::new(convert::run_to_proto(run)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_evaluation_run(
        &self,
        request: Request<pb::GetEvaluationRunRequest>,
    ) -> Result<Response<pb::EvaluationRun>, Status> {
        let run = self
            .scoring
            .run(&request.into_inner().evaluation_run_id)
            .await?;
        Ok(Response::new(convert::run_to_proto(run)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_evaluation_runs(
        &self,
        request: Request<pb::ListEvaluationRunsRequest>,
    ) -> Result<Response<pb::ListEvaluationRunsResponse>, Status> {
        let request = request.into_inner();
        let status = convert::run_status_from_proto(request.status);
        let (runs, next_page_token) = self
            .scoring
            .list_runs(
                &request.program_id,
                status,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListEvaluationRunsResponse {
            runs: runs.into_iter().map(convert::run_to_proto).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_scores(
        &self,
        request: Request<pb::GetScoresRequest>,
    ) -> Result<Response<pb::GetScoresResponse>, Status> {
        let request = request.into_inner();
        let scores = self
            .scoring
            .scores(&request.program_id, &request.customer_ids)
            .await?;
        Ok(Response::new(convert::scores_response(scores)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_value_model(
        &self,
        request: Request<pb::GetValueModelRequest>,
    ) -> Result<Response<pb::ValueModel>, Status> {
        let request = request.into_inner();
        let model = self.scoring.value_model(&request.program_id).await?;
        Ok(Response::new(convert::value_model_to_proto(model)))
    }

    #[tracing::instrument(skip_all)]
    async fn fit_value_model(
        &self,
        request: Request<pb::FitValueModelRequest>,
    ) -> Result<Response<pb::ValueModel>, Status> {
        let request = request.into_inner();
        let model = self.scoring.fit_value_model(&request.program_id).await?;
        Ok(Response::new(convert::value_model_to_proto(model)))
    }

    type QueryAudienceStream = ResponseStream<pb::QueryAudienceResponse>;

    #[tracing::instrument(skip_all)]
    async fn query_audience(
        &self,
        request: Request<pb::QueryAudienceRequest>,
    ) -> Result<Response<Self::QueryAudienceStream>, Status> {
        let request = request.into_inner();
        let rule = request.rule.unwrap_or_default();
        let program_id = rule.program_id.clone();
        let (program, members) = self
            .scoring
            .query_audience(
                &program_id,
                convert::audience_rule(rule),
                &request.after_customer_id,
                request.limit,
            )
            .await?;
        let stream = members.map(move |chunk| {
            chunk
                .map(|members| pb::QueryAudienceResponse {
                    members: members
                        .into_iter()
                        .map(|member| convert::audience_member_to_proto(&program, member))
                        .collect(),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all)]
    async fn simulate_policy(
        &self,
        request: Request<pb::SimulatePolicyRequest>,
    ) -> Result<Response<pb::SimulatePolicyResponse>, Status> {
        let request = request.into_inner();
        let source = match request.policy {
            Some(pb::simulate_policy_request::Policy::PolicyVersionId(id)) => {
                SimulationSource::Version(id)
            }
            Some(pb::simulate_policy_request::Policy::Rules(rules)) => {
                SimulationSource::Rules(convert::policy_input(rules))
            }
            None => SimulationSource::Missing,
        };
        let simulation = self.scoring.simulate(&request.program_id, source).await?;
        Ok(Response::new(convert::simulation_to_proto(simulation)))
    }

    type WatchTierChangesStream = ResponseStream<pb::TierFeedEvent>;

    #[tracing::instrument(skip_all)]
    async fn watch_tier_changes(
        &self,
        request: Request<pb::WatchTierChangesRequest>,
    ) -> Result<Response<Self::WatchTierChangesStream>, Status> {
        let request = request.into_inner();
        let (identity, changes) = self
            .scoring
            .watch_tier_changes(
                &request.after_cursor,
                &request.program_id,
                self.shutdown.clone(),
            )
            .await?;
        let stream = changes.map(move |item| {
            item.map(|(cursor, change)| {
                convert::tier_change_to_proto(cursor.served(identity), change)
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
