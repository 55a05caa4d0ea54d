//! The outermost layer of every gRPC server: one span per call (child of the caller's trace when
//! `traceparent` is present) and the per-RPC metrics.

use std::{
    task::{Context, Poll},
    time::Instant,
};

use futures::future::{BoxFuture, FutureExt};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::{
    metrics::{MethodLabels, Metrics, RpcLabels},
    telemetry::propagation::adopt_remote_parent,
};

/// Wraps services with [`RpcService`].
#[derive(Debug, Clone)]
pub struct RpcLayer {
    metrics: Metrics,
}

impl RpcLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Traces and measures each call.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, RB> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let (service, method) = (service.to_owned(), method.to_owned());
        let span = tracing::info_span!(
            "grpc",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        adopt_remote_parent(&span, request.headers());

        let metrics = self.metrics.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        async move {
            let started = Instant::now();
            metrics.rpc_in_flight.inc();
            let mut result = inner.call(request).await;
            metrics.rpc_in_flight.dec();
            if let Ok(response) = &mut result {
                super::message_size::resource_exhausted_for_size_limit(response.headers_mut());
            }
            let code = match &result {
                Ok(response) => status_code_name(response.headers()),
                Err(_) => "INTERNAL",
            };
            tracing::Span::current().record("rpc.grpc.status_code", code);
            metrics
                .rpc_duration
                .get_or_create(&MethodLabels {
                    service: service.clone(),
                    method: method.clone(),
                })
                .observe(started.elapsed().as_secs_f64());
            metrics
                .rpc_requests
                .get_or_create(&RpcLabels {
                    service,
                    method,
                    code: code.to_owned(),
                })
                .inc();
            result
        }
        .instrument(span)
        .boxed()
    }
}

/// The status of a call as far as the response headers tell: errors of unary calls travel in the
/// headers ("trailers-only"); a successful call's status comes later in the trailers, so a missing
/// `grpc-status` header means the call got as far as a response.
fn status_code_name(headers: &http::HeaderMap) -> &'static str {
    let code = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .unwrap_or(0);
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
