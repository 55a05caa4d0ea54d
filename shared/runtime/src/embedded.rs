//! The life of a service whose store lives in the process (the development mode's SQLite):
//! bind the API port, serve the routes the service builds, report SERVING at once (the store
//! was opened and migrated before), drain on shutdown. The same gRPC stack as
//! [`crate::service::BoundService`] — auth, limits, metrics, health, reflection — without a pool.

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Authenticator,
    config::{AuthSettings, GrpcSettings},
    metrics::Metrics,
    server::{GrpcServer, Health},
    service::{AuthOffNotice, ServiceSpec, StartError, authenticator, bind},
};

/// What an embedded service gets to build its routes.
#[derive(Debug, Clone)]
pub struct EmbeddedContext {
    /// Cancelled when the service shuts down.
    pub shutdown: CancellationToken,
    /// The metrics registry, for the service's own metrics.
    pub metrics: Metrics,
}

/// A service bound to its API port, its store already open, ready to run.
#[derive(Debug)]
pub struct EmbeddedService {
    spec: ServiceSpec,
    grpc: GrpcSettings,
    listener: TcpListener,
    authenticator: Arc<Authenticator>,
}

impl EmbeddedService {
    /// Binds the API port (metrics are not served: the process's host has one registry per
    /// service, read through the services' own metrics ports in a deployment) and builds the
    /// token checker.
    pub async fn bind(
        spec: ServiceSpec,
        grpc: &GrpcSettings,
        auth: &AuthSettings,
    ) -> Result<Self, StartError> {
        Ok(Self {
            listener: bind(grpc.addr).await?,
            authenticator: authenticator(&spec, auth, AuthOffNotice::HostSaysSo)?,
            spec,
            grpc: grpc.clone(),
        })
    }

    /// The address the gRPC API listens on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.grpc.addr)
    }

    /// Serves the routes `build` returns until `stop` resolves, then drains.
    pub async fn run<B>(
        self,
        build: B,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError>
    where
        B: FnOnce(EmbeddedContext) -> tonic::service::Routes,
    {
        let shutdown = CancellationToken::new();
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                stop.await;
                shutdown.cancel();
            });
        }
        let metrics = Metrics::new();
        let health = Health::new(self.spec.grpc_service).await;
        let routes = build(EmbeddedContext {
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
        });
        health.set_serving().await;
        tracing::info!(service = self.spec.name, grpc_addr = %self.local_addr(), "serving (embedded store)");
        GrpcServer::new(
            self.grpc,
            self.authenticator,
            self.spec.scopes,
            metrics,
            health,
        )
        .serve(self.listener, routes, shutdown)
        .await?;
        Ok(())
    }
}
