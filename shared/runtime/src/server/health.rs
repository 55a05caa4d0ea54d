//! grpc.health.v1: SERVING only while the database answers and migrations are done; NOT_SERVING
//! before that, when the database stops answering, and while draining.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};

/// How often the database is probed for readiness.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How long one probe may take before the database counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The health name a liveness probe asks for: SERVING as long as the process answers at all,
/// whatever the database does, so that a database outage never restarts every replica at once.
pub const LIVENESS: &str = "liveness";

/// The health state of one service, reported both for the service's name and for "" (the whole
/// server), which is what Kubernetes' native gRPC probes ask by default.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    server: HealthServer<HealthService>,
    service_name: &'static str,
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl Health {
    /// Health for the gRPC service named `service_name` (e.g.
    /// `tierline.customer.v1.CustomerService`); starts NOT_SERVING.
    pub async fn new(service_name: &'static str) -> Self {
        let reporter = HealthReporter::new();
        let server = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let health = Self {
            reporter,
            server,
            service_name,
            draining: Arc::new(AtomicBool::new(false)),
        };
        health.set(false).await;
        health
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        health
    }

    /// The grpc.health.v1 service to mount.
    pub fn server(&self) -> HealthServer<HealthService> {
        self.server.clone()
    }

    async fn set(&self, serving: bool) {
        let status = if serving && !self.draining.load(Ordering::SeqCst) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter
            .set_service_status(self.service_name, status)
            .await;
        self.reporter.set_service_status("", status).await;
    }

    /// Reports SERVING (unless draining): for a service whose store was opened in-process and
    /// has no database to probe.
    pub async fn set_serving(&self) {
        self.set(true).await;
    }

    /// Reports NOT_SERVING from now on, whatever the database does.
    pub async fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.set(false).await;
    }

    /// Probes the database until `shutdown`, reporting SERVING while it answers. Start it only
    /// once migrations are done; give it its own pool (`db::connect_probe`).
    pub fn monitor_database(&self, pool: sqlx::PgPool, shutdown: CancellationToken) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut was_serving = None;
            loop {
                let probe = sqlx::query("SELECT 1").execute(&pool);
                let serving = matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(_)));
                if was_serving != Some(serving) {
                    if serving {
                        tracing::info!("database reachable: serving");
                    } else {
                        tracing::warn!("database unreachable: not serving");
                    }
                    was_serving = Some(serving);
                }
                health.set(serving).await;
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(PROBE_INTERVAL) => {}
                }
            }
            health.set_draining().await;
        });
    }
}
