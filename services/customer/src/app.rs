//! Wiring: configuration → pool, migrations, store, domain, gRPC server, metrics.

use std::{net::SocketAddr, sync::Arc};

use tierline_proto::customer::v1::customer_service_server::{CustomerServiceServer, SERVICE_NAME};
use tierline_runtime::{
    auth::Authenticator,
    config::AuthMode,
    metrics::Metrics,
    server::{GrpcServer, Health},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::CustomerConfig,
    domain::{Customers, service::Rules},
    feed::FeedWatcher,
    grpc::{CustomerApi, SCOPES},
    storage::postgres::{MIGRATOR, PgCustomerStore, SCHEMA},
};

/// The application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Auth keys are invalid.
    #[error("auth: {0}")]
    Auth(String),
    /// The server failed.
    #[error(transparent)]
    Server(#[from] tierline_runtime::server::ServerError),
}

/// A built customer service, bound to its ports and ready to run.
#[derive(Debug)]
pub struct Application {
    config: CustomerConfig,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    pool: sqlx::PgPool,
    authenticator: Arc<Authenticator>,
    shutdown: CancellationToken,
}

impl Application {
    /// Binds the ports and opens the pool (lazily: the database may still be starting).
    pub async fn build(config: CustomerConfig) -> Result<Self, StartError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let listener = bind(config.grpc.addr).await?;
        let metrics_listener = match config.grpc.metrics_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let authenticator = match config.auth.mode {
            AuthMode::Jwt => Arc::new(Authenticator::new(&config.auth).map_err(StartError::Auth)?),
            AuthMode::Disabled => {
                tracing::warn!(
                    "authentication is DISABLED by TIERLINE_AUTH_MODE=disabled: every caller may do everything"
                );
                Arc::new(Authenticator::disabled())
            }
        };
        let pool =
            tierline_runtime::db::connect_lazy(&config.database, "tierline-customer", SCHEMA)?;
        Ok(Self {
            config,
            listener,
            metrics_listener,
            pool,
            authenticator,
            shutdown: CancellationToken::new(),
        })
    }

    /// The address the gRPC API listens on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.grpc.addr)
    }

    /// The address of `/metrics`, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// A token that stops the application when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until `stop` resolves: migrates (when configured), then serves; readiness turns
    /// SERVING once migrations are done and the database answers.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let Self {
            config,
            listener,
            metrics_listener,
            pool,
            authenticator,
            shutdown,
        } = self;
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                stop.await;
                shutdown.cancel();
            });
        }
        let metrics = Metrics::new();
        let health = Health::new(SERVICE_NAME).await;
        if let Some(listener) = metrics_listener {
            let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(error) = metrics.serve(listener, shutdown).await {
                    tracing::error!(%error, "metrics server failed");
                }
            });
        }
        metrics.watch_pool(pool.clone(), shutdown.clone());

        if config.database.migrate_on_start {
            tierline_runtime::db::migrate(&pool, SCHEMA, &MIGRATOR).await?;
            tracing::info!("migrations applied");
        }
        let probe_pool =
            tierline_runtime::db::connect_probe(&config.database, "tierline-customer-probe")?;
        health.monitor_database(probe_pool, shutdown.clone());

        let store = Arc::new(PgCustomerStore::new(
            pool,
            shutdown.clone(),
            config.purchase_writers,
        ));
        let rules = Rules {
            clock_skew: chrono::Duration::from_std(config.clock_skew)
                .unwrap_or(chrono::Duration::minutes(5)),
        };
        let customers = Customers::new(store, rules, FeedWatcher::new(config.feed));
        let api = CustomerApi::new(customers, shutdown.clone());
        let service = CustomerServiceServer::new(api)
            .max_decoding_message_size(config.grpc.max_message_bytes)
            .max_encoding_message_size(config.grpc.max_message_bytes);
        let routes = tonic::service::Routes::new(service);

        tracing::info!(grpc_addr = %listener.local_addr().map_err(|source| StartError::Bind { addr: config.grpc.addr, source })?, "customer service serving");
        let server = GrpcServer::new(config.grpc.clone(), authenticator, SCOPES, metrics, health);
        server.serve(listener, routes, shutdown).await?;
        Ok(())
    }
}

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &CustomerConfig) -> Result<(), StartError> {
    let pool =
        tierline_runtime::db::connect_lazy(&config.database, "tierline-customer-migrate", SCHEMA)?;
    tierline_runtime::db::migrate(&pool, SCHEMA, &MIGRATOR).await?;
    pool.close().await;
    Ok(())
}
