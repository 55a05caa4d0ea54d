//! The gRPC adapter: converts messages, calls the domain, maps errors. No business rule lives
//! here.

mod convert;
mod scopes;

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tierline_proto::customer::v1::{self as pb, customer_service_server::CustomerService};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

pub use scopes::SCOPES;

use crate::domain::Customers;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The customer service's gRPC API.
#[derive(Debug, Clone)]
pub struct CustomerApi {
    customers: Customers,
    shutdown: CancellationToken,
}

impl CustomerApi {
    /// The API over the domain; streams end when `shutdown` is cancelled.
    pub fn new(customers: Customers, shutdown: CancellationToken) -> Self {
        Self {
            customers,
            shutdown,
        }
    }
}

#[tonic::async_trait]
impl CustomerService for CustomerApi {
    #[tracing::instrument(skip_all)]
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let customer = self
            .customers
            .create(convert::profile_from_create(request.into_inner()))
            .await?;
        Ok(Response::new(convert::customer_to_proto(customer)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let customer = match request.into_inner().lookup {
            Some(pb::get_customer_request::Lookup::Id(id)) => self.customers.get(&id).await?,
            Some(pb::get_customer_request::Lookup::ExternalId(external_id)) => {
                self.customers.get_by_external_id(&external_id).await?
            }
            None => {
                return Err(crate::CustomerError::invalid(
                    "lookup",
                    "give an id or an external_id",
                )
                .into());
            }
        };
        Ok(Response::new(convert::customer_to_proto(customer)))
    }

    #[tracing::instrument(skip_all)]
    async fn batch_get_customers(
        &self,
        request: Request<pb::BatchGetCustomersRequest>,
    ) -> Result<Response<pb::BatchGetCustomersResponse>, Status> {
        let (customers, missing) = self.customers.batch_get(&request.into_inner().ids).await?;
        Ok(Response::new(pb::BatchGetCustomersResponse {
            customers: customers
                .into_iter()
                .map(convert::customer_to_proto)
                .collect(),
            missing_ids: missing.into_iter().map(|id| id.to_string()).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let request = request.into_inner();
        let mask = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let input = convert::profile_from_customer(request.customer.unwrap_or_default());
        let customer = self.customers.update(&request.id, input, &mask).await?;
        Ok(Response::new(convert::customer_to_proto(customer)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResponse>, Status> {
        let request = request.into_inner();
        let filter = convert::filter_from_list(&request);
        let (customers, next_page_token) = self
            .customers
            .list(filter, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListCustomersResponse {
            customers: customers
                .into_iter()
                .map(convert::customer_to_proto)
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn erase_customer(
        &self,
        request: Request<pb::EraseCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let request = request.into_inner();
        let customer = self.customers.erase(&request.id, &request.reason).await?;
        Ok(Response::new(convert::customer_to_proto(customer)))
    }

    #[tracing::instrument(skip_all)]
    async fn export_customer(
        &self,
        request: Request<pb::ExportCustomerRequest>,
    ) -> Result<Response<pb::CustomerExport>, Status> {
        let export = self.customers.export(&request.into_inner().id).await?;
        Ok(Response::new(convert::export_to_proto(export)))
    }

    #[tracing::instrument(skip_all)]
    async fn set_consent(
        &self,
        request: Request<pb::SetConsentRequest>,
    ) -> Result<Response<pb::Consent>, Status> {
        let request = request.into_inner();
        let customer_id = Customers::customer_id("customer_id", &request.customer_id)?;
        let consent = self
            .customers
            .set_consent(convert::consent_input(request, customer_id))
            .await?;
        Ok(Response::new(convert::consent_to_proto(consent)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_consent_history(
        &self,
        request: Request<pb::ListConsentHistoryRequest>,
    ) -> Result<Response<pb::ListConsentHistoryResponse>, Status> {
        let request = request.into_inner();
        let (changes, next_page_token) = self
            .customers
            .consent_history(&request.customer_id, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListConsentHistoryResponse {
            changes: changes
                .into_iter()
                .map(|recorded| convert::consent_change_to_proto(recorded.change))
                .collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn batch_get_consents(
        &self,
        request: Request<pb::BatchGetConsentsRequest>,
    ) -> Result<Response<pb::BatchGetConsentsResponse>, Status> {
        let (consents, missing) = self
            .customers
            .batch_consents(&request.into_inner().customer_ids)
            .await?;
        Ok(Response::new(pb::BatchGetConsentsResponse {
            customers: consents
                .into_iter()
                .map(convert::customer_consents_to_proto)
                .collect(),
            missing_ids: missing.into_iter().map(|id| id.to_string()).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_purchase(
        &self,
        request: Request<pb::RecordPurchaseRequest>,
    ) -> Result<Response<pb::RecordActivityResponse>, Status> {
        let recorded = self
            .customers
            .record_purchase(convert::purchase_input(request.into_inner()))
            .await?;
        Ok(Response::new(pb::RecordActivityResponse {
            activity: Some(convert::activity_to_proto(recorded.activity)),
            replayed: recorded.replayed,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_refund(
        &self,
        request: Request<pb::RecordRefundRequest>,
    ) -> Result<Response<pb::RecordActivityResponse>, Status> {
        let recorded = self
            .customers
            .record_refund(convert::refund_input(request.into_inner()))
            .await?;
        Ok(Response::new(pb::RecordActivityResponse {
            activity: Some(convert::activity_to_proto(recorded.activity)),
            replayed: recorded.replayed,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_activity(
        &self,
        request: Request<pb::GetActivityRequest>,
    ) -> Result<Response<pb::Activity>, Status> {
        let activity = self.customers.activity(&request.into_inner().id).await?;
        Ok(Response::new(convert::activity_to_proto(activity)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_activities(
        &self,
        request: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ListActivitiesResponse>, Status> {
        let request = request.into_inner();
        let (activities, next_page_token) = self
            .customers
            .list_activities(&request.customer_id, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListActivitiesResponse {
            activities: activities
                .into_iter()
                .map(convert::activity_to_proto)
                .collect(),
            next_page_token,
        }))
    }

    type ImportActivitiesStream = ResponseStream<pb::ImportActivitiesResponse>;

    #[tracing::instrument(skip_all)]
    async fn import_activities(
        &self,
        request: Request<Streaming<pb::ImportActivitiesRequest>>,
    ) -> Result<Response<Self::ImportActivitiesStream>, Status> {
        let customers = self.customers.clone();
        Ok(Response::new(batch_stream(
            request.into_inner(),
            self.shutdown.clone(),
            move |number, batch: pb::ImportActivitiesRequest| {
                let customers = customers.clone();
                async move {
                    let items = batch.items.into_iter().map(convert::import_input).collect();
                    customers
                        .import_batch(items)
                        .await
                        .map(|outcomes| convert::import_response(number, outcomes))
                }
            },
        )))
    }

    type ImportCustomersStream = ResponseStream<pb::ImportCustomersResponse>;

    #[tracing::instrument(skip_all)]
    async fn import_customers(
        &self,
        request: Request<Streaming<pb::ImportCustomersRequest>>,
    ) -> Result<Response<Self::ImportCustomersStream>, Status> {
        let customers = self.customers.clone();
        Ok(Response::new(batch_stream(
            request.into_inner(),
            self.shutdown.clone(),
            move |number, batch: pb::ImportCustomersRequest| {
                let customers = customers.clone();
                async move {
                    let items = batch
                        .items
                        .into_iter()
                        .map(convert::onboarding_input)
                        .collect();
                    customers
                        .onboard_batch(items)
                        .await
                        .map(|outcomes| convert::onboarding_response(number, outcomes))
                }
            },
        )))
    }

    type WatchActivitiesStream = ResponseStream<pb::FeedEvent>;

    #[tracing::instrument(skip_all)]
    async fn watch_activities(
        &self,
        request: Request<pb::WatchActivitiesRequest>,
    ) -> Result<Response<Self::WatchActivitiesStream>, Status> {
        let (identity, events) = self
            .customers
            .watch(&request.into_inner().after_cursor, self.shutdown.clone())
            .await?;
        let stream = events.map(move |event| {
            event
                .map(|(cursor, payload)| {
                    convert::feed_event_to_proto(
                        crate::domain::feed::FeedEvent { cursor, payload },
                        identity,
                    )
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Answers a stream of batches one response per batch, in order, each once `apply` has
/// committed it; the stream ends at the first failed batch (its error is the last message), at
/// shutdown (UNAVAILABLE), or with RESOURCE_EXHAUSTED for a batch over the message size limit.
fn batch_stream<B, R, F, Fut>(
    mut batches: Streaming<B>,
    shutdown: tokio_util::sync::CancellationToken,
    apply: F,
) -> ResponseStream<R>
where
    B: Send + 'static,
    R: Send + 'static,
    F: Fn(i64, B) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, crate::CustomerError>> + Send,
    Streaming<B>: futures::Stream<Item = Result<B, Status>> + Unpin + Send,
{
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut batch_number = 0_i64;
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = sender.send(Err(Status::from(crate::CustomerError::ShuttingDown))).await;
                    return;
                }
                message = batches.next() => message,
            };
            let batch = match message {
                None => return,
                Some(Ok(batch)) => batch,
                Some(Err(status)) => {
                    // A batch over the size limit (or a broken request stream) must not end the
                    // call with OK; if the client has gone, the send just fails.
                    tracing::debug!(%status, "import stream ended by a request error");
                    let status = tierline_runtime::server::resource_exhausted_if_size_limit(status);
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            };
            let response = apply(batch_number, batch).await.map_err(Status::from);
            let failed = response.is_err();
            if sender.send(response).await.is_err() || failed {
                return;
            }
            batch_number += 1;
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}
