//! The life of a service process, the same for every Tierline service: bind the ports, open the
//! database, then — when run — answer probes at once, migrate (or wait for the migration job),
//! report readiness, serve the routes the service builds, and drain on shutdown. A service only says what is its own (name, schema, migrations, scope
//! table, and how to build its routes from the pool).

use std::{future::Future, net::SocketAddr, sync::Arc};

use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{Authenticator, ScopeTable},
    config::{AuthMode, AuthSettings, DatabaseSettings, GrpcSettings},
    metrics::Metrics,
    server::{DeferredRoutes, GrpcServer, Health, ServerError},
};

/// What is particular to one service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Process name, for logs and the database's `application_name`, e.g. `tierline-customer`.
    pub name: &'static str,
    /// Fully-qualified gRPC service name reported by health, e.g.
    /// `tierline.customer.v1.CustomerService`.
    pub grpc_service: &'static str,
    /// The service's own Postgres schema.
    pub schema: &'static str,
    /// Its migrations.
    pub migrator: &'static Migrator,
    /// The scope each RPC needs.
    pub scopes: ScopeTable,
}

/// The service could not start, or failed while serving.
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
    Server(#[from] ServerError),
    /// The service's own start-up failed.
    #[error("{0}")]
    Service(String),
}

/// What a service gets to build its routes.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// The business pool (search path: the service's schema).
    pub pool: PgPool,
    /// Cancelled when the service shuts down.
    pub shutdown: CancellationToken,
    /// The metrics registry, for the service's own metrics.
    pub metrics: Metrics,
}

/// A service bound to its ports with its pool open (lazily), ready to run.
#[derive(Debug)]
pub struct BoundService {
    spec: ServiceSpec,
    grpc: GrpcSettings,
    database: DatabaseSettings,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    pool: PgPool,
    authenticator: Arc<Authenticator>,
}

/// How a service tells that auth is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthOffNotice {
    /// A warning in the log: a deployed service must not run so unnoticed.
    Warn,
    /// An info line: the embedding host (`tierline dev`) says so itself, in its banner.
    HostSaysSo,
}

/// The token checker `auth` asks for (warning loudly when auth is off, unless `notice` says the
/// host tells).
pub(crate) fn authenticator(
    spec: &ServiceSpec,
    auth: &AuthSettings,
    notice: AuthOffNotice,
) -> Result<Arc<Authenticator>, StartError> {
    Ok(match auth.mode {
        AuthMode::Jwt => Arc::new(Authenticator::new(auth).map_err(StartError::Auth)?),
        AuthMode::Disabled => {
            const MESSAGE: &str = "authentication is DISABLED by TIERLINE_AUTH_MODE=disabled: every caller may do everything";
            match notice {
                AuthOffNotice::Warn => tracing::warn!(service = spec.name, "{MESSAGE}"),
                AuthOffNotice::HostSaysSo => tracing::info!(service = spec.name, "{MESSAGE}"),
            }
            Arc::new(Authenticator::disabled())
        }
    })
}

pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

impl BoundService {
    /// Binds the API and metrics ports, builds the token checker and opens the pool lazily (the
    /// database may still be starting: readiness says so).
    pub async fn bind(
        spec: ServiceSpec,
        grpc: &GrpcSettings,
        auth: &AuthSettings,
        database: &DatabaseSettings,
    ) -> Result<Self, StartError> {
        let listener = bind(grpc.addr).await?;
        let metrics_listener = match grpc.metrics_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let authenticator = authenticator(&spec, auth, AuthOffNotice::Warn)?;
        let pool = crate::db::connect_lazy(database, spec.name, spec.schema)?;
        Ok(Self {
            spec,
            grpc: grpc.clone(),
            database: database.clone(),
            listener,
            metrics_listener,
            pool,
            authenticator,
        })
    }

    /// The address the gRPC API listens on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.grpc.addr)
    }

    /// The address of `/metrics`, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Runs until `stop` resolves: serves metrics, migrates (when configured), reports SERVING
    /// once migrations are done and the database answers, serves the routes `build` returns, and
    /// drains on shutdown.
    pub async fn run<B, F>(
        self,
        build: B,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError>
    where
        B: FnOnce(ServiceContext) -> F,
        F: Future<Output = Result<tonic::service::Routes, StartError>>,
    {
        let Self {
            spec,
            grpc,
            database,
            listener,
            metrics_listener,
            pool,
            authenticator,
        } = self;
        let shutdown = CancellationToken::new();
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                stop.await;
                shutdown.cancel();
            });
        }
        let metrics = Metrics::new();
        let health = Health::new(spec.grpc_service).await;
        if let Some(listener) = metrics_listener {
            let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(error) = metrics.serve(listener, shutdown).await {
                    tracing::error!(%error, "metrics server failed");
                }
            });
        }
        metrics.watch_pool(pool.clone(), shutdown.clone());

        // The server answers from the start: health says NOT_SERVING and business calls get
        // UNAVAILABLE until the schema is this binary's and the routes are built.
        let grpc_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: grpc.addr,
            source,
        })?;
        let deferred = DeferredRoutes::default();
        let serving = GrpcServer::new(
            grpc,
            authenticator,
            spec.scopes,
            metrics.clone(),
            health.clone(),
        )
        .serve(listener, deferred.routes(), shutdown.clone());
        tokio::pin!(serving);
        let start = async {
            let waited = if database.migrate_on_start {
                crate::db::migrate_when_reachable(&pool, spec.schema, spec.migrator, &shutdown)
                    .await?
            } else {
                crate::db::await_migrations(&pool, spec.schema, spec.migrator, &shutdown).await?
            };
            if waited == crate::db::Waited::Stopped {
                return Ok(());
            }
            tracing::info!(schema = spec.schema, "schema ready");
            health.monitor_database(
                crate::db::connect_probe(&database, spec.name)?,
                shutdown.clone(),
            );
            let context = ServiceContext {
                pool,
                shutdown: shutdown.clone(),
                metrics,
            };
            deferred.set(build(context).await?);
            tracing::info!(service = spec.name, %grpc_addr, "serving");
            Ok::<(), StartError>(())
        };
        tokio::select! {
            served = &mut serving => {
                // Stopped before the service was ready.
                served?;
                return Ok(());
            }
            started = start => {
                if let Err(error) = started {
                    shutdown.cancel();
                    let _ = serving.await;
                    return Err(error);
                }
            }
        }
        serving.await?;
        Ok(())
    }
}

/// Applies pending migrations and returns (the `migrate` subcommand of every service).
pub async fn migrate_only(
    spec: ServiceSpec,
    database: &DatabaseSettings,
) -> Result<(), StartError> {
    let pool = crate::db::connect_lazy(database, spec.name, spec.schema)?;
    crate::db::migrate(&pool, spec.schema, spec.migrator).await?;
    pool.close().await;
    Ok(())
}
