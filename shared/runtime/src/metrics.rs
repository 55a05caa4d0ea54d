//! Prometheus metrics, served on their own HTTP port (`/metrics`), apart from the business API.
//!
//! The runtime records per-RPC counts, errors by gRPC code and latency; services register their
//! own metrics (pool gauges, cache counters) into the same registry with [`Metrics::register`].

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Metric, Registry},
};
use tokio_util::sync::CancellationToken;

/// Labels of the per-RPC request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Fully-qualified gRPC service, e.g. `tierline.customer.v1.CustomerService`.
    pub service: String,
    /// Method name, e.g. `RecordPurchase`.
    pub method: String,
    /// gRPC status code name, e.g. `OK`, `NOT_FOUND`.
    pub code: String,
}

/// Labels of the per-RPC latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// Fully-qualified gRPC service.
    pub service: String,
    /// Method name.
    pub method: String,
}

/// Labels of the connection pool gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// The metrics registry of one service process. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// `grpc_server_requests_total{service,method,code}`.
    pub rpc_requests: Family<RpcLabels, Counter>,
    /// `grpc_server_request_duration_seconds{service,method}`.
    pub rpc_duration: Family<MethodLabels, Histogram>,
    /// `grpc_server_in_flight_requests`.
    pub rpc_in_flight: Gauge,
    db_pool: Family<PoolLabels, Gauge>,
}

impl Metrics {
    /// A registry holding the standard gRPC server metrics, prefixed with `tierline`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tierline");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_duration = Family::<MethodLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let rpc_in_flight = Gauge::default();
        let db_pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "grpc_server_requests",
            "gRPC requests handled, by method and status code",
            rpc_requests.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "Time to the response headers of gRPC requests",
            rpc_duration.clone(),
        );
        registry.register(
            "grpc_server_in_flight_requests",
            "gRPC requests being served",
            rpc_in_flight.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            db_pool.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            rpc_requests,
            rpc_duration,
            rpc_in_flight,
            db_pool,
        }
    }

    /// Adds a service-specific metric (name without the `tierline_` prefix).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }

    /// Keeps the `db_pool_connections` gauges up to date until `shutdown`.
    pub fn watch_pool(&self, pool: sqlx::PgPool, shutdown: CancellationToken) {
        let gauges = self.db_pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
                        let size = i64::from(pool.size());
                        gauges.get_or_create(&PoolLabels { state: "idle" }).set(idle);
                        gauges.get_or_create(&PoolLabels { state: "in_use" }).set(size - idle);
                    }
                }
            }
        });
    }

    /// Serves `/metrics` on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(render_metrics))
            .with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }

    /// Binds the metrics port, when one is configured.
    pub async fn bind(
        addr: Option<SocketAddr>,
    ) -> std::io::Result<Option<tokio::net::TcpListener>> {
        match addr {
            Some(addr) => Ok(Some(tokio::net::TcpListener::bind(addr).await?)),
            None => Ok(None),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets from 100 µs to about 13 s: lookups live at the low end, bulk batches at the high end.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 18,
    ))
}

async fn render_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}
