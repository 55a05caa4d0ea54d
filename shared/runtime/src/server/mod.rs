//! The gRPC server bootstrap every service uses: health (grpc.health.v1), reflection, limits
//! (RESOURCE_EXHAUSTED for oversized messages), auth, tracing and metrics layers, optional TLS,
//! and a graceful drain on shutdown.

mod deferred;
mod health;
mod limit;
mod message_size;
mod rpc_layer;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    service::Routes,
    transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming},
};

pub use deferred::DeferredRoutes;
pub use health::{Health, LIVENESS};
pub use limit::{ConcurrencyLimit, ConcurrencyLimitLayer};
pub use message_size::resource_exhausted_if_size_limit;
pub use rpc_layer::{RpcLayer, RpcService};

use crate::{
    auth::{AuthLayer, Authenticator, ScopeTable},
    config::GrpcSettings,
    metrics::Metrics,
};

/// The server could not start or failed while serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    TlsFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built from the descriptor set.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Everything needed to serve one service's API.
#[derive(Debug)]
pub struct GrpcServer {
    settings: GrpcSettings,
    authenticator: Arc<Authenticator>,
    scope_table: ScopeTable,
    metrics: Metrics,
    health: Health,
}

impl GrpcServer {
    /// A server for the routes passed to [`GrpcServer::serve`], checking calls against
    /// `scope_table`.
    pub fn new(
        settings: GrpcSettings,
        authenticator: Arc<Authenticator>,
        scope_table: ScopeTable,
        metrics: Metrics,
        health: Health,
    ) -> Self {
        Self {
            settings,
            authenticator,
            scope_table,
            metrics,
            health,
        }
    }

    /// Serves `routes` (plus health and reflection) on `listener` until `shutdown` is cancelled,
    /// then reports NOT_SERVING, stops accepting, and waits up to the shutdown grace for calls in
    /// flight to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        routes: Routes,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        let Self {
            settings,
            authenticator,
            scope_table,
            metrics,
            health,
        } = self;
        let mut builder = Server::builder();
        if let Some(tls) = &settings.tls {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|source| ServerError::TlsFile {
                    path: path.display().to_string(),
                    source,
                })
            };
            let mut tls_config = ServerTlsConfig::new().identity(Identity::from_pem(
                read(&tls.cert_file)?,
                read(&tls.key_file)?,
            ));
            if let Some(ca) = &tls.client_ca_file {
                tls_config = tls_config.client_ca_root(Certificate::from_pem(read(ca)?));
            }
            builder = builder.tls_config(tls_config)?;
        }

        // Both protocols: grpcurl before 1.9, Postman, grpcui and most tools still ask for
        // v1alpha, newer ones for v1.
        let reflection = |builder: tonic_reflection::server::Builder<'static>| {
            builder
                .register_encoded_file_descriptor_set(tierline_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let (reflection_v1, reflection_v1alpha) = if settings.reflection {
            (
                Some(reflection(tonic_reflection::server::Builder::configure()).build_v1()?),
                Some(reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?),
            )
        } else {
            (None, None)
        };

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let shutdown_delay = settings.shutdown_delay;
        let drain_signal = {
            let shutdown = shutdown.clone();
            let health = health.clone();
            async move {
                shutdown.cancelled().await;
                health.set_draining().await;
                // Keep accepting while load balancers notice NOT_SERVING and stop sending.
                tokio::time::sleep(shutdown_delay).await;
                tracing::info!("shutting down: draining calls in flight");
            }
        };

        let router = builder
            .timeout(settings.request_timeout)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            // Outermost first: every call is traced and counted; refused calls never take a slot.
            .layer(RpcLayer::new(metrics))
            .layer(AuthLayer::new(authenticator, scope_table))
            .layer(ConcurrencyLimitLayer::new(settings.concurrency_limit))
            .add_routes(routes)
            .add_service(health.server())
            .add_optional_service(reflection_v1)
            .add_optional_service(reflection_v1alpha);

        let serving = router.serve_with_incoming_shutdown(incoming, drain_signal);
        let grace = settings.shutdown_grace;
        tokio::select! {
            result = serving => result?,
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_seconds = grace.as_secs(), "calls still in flight after the shutdown grace; stopping anyway");
            }
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "ctrl-c", "shutdown requested"),
        () = terminate => tracing::info!(signal = "sigterm", "shutdown requested"),
    }
}
