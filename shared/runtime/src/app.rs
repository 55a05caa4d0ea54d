//! The one application every Tierline service is. A service says what is its own (its
//! configuration, its Postgres store, its routes and background work) by implementing
//! [`Service`]; [`Application`] does the rest the same way for all three: bind the ports (port 0
//! reports the real one), run on Postgres with the runtime's pool, migrations, readiness, metrics
//! and drain, or over a store already open in this process (the development mode), and [`main`]
//! is the binary's whole body: `serve` (the default) or `migrate`.

use std::{future::Future, net::SocketAddr, sync::Arc};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{
        AuthSettings, ConfigError, ConfigSource, DatabaseSettings, GrpcSettings, TelemetrySettings,
    },
    embedded::EmbeddedService,
    metrics::Metrics,
    service::{BoundService, ServiceSpec, StartError},
};

/// Where a service's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Postgres, the deployment.
    Postgres,
    /// A store opened in this process (the development mode's SQLite).
    Embedded,
}

/// The settings every service's configuration has.
#[derive(Debug, Clone, Copy)]
pub struct CommonSettings<'a> {
    /// The gRPC server.
    pub grpc: &'a GrpcSettings,
    /// Token checks.
    pub auth: &'a AuthSettings,
    /// Logs and traces.
    pub telemetry: &'a TelemetrySettings,
    /// Postgres; `None` when the store is embedded.
    pub database: Option<&'a DatabaseSettings>,
}

/// What a service's routes are built with once it runs.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Cancelled when the service shuts down: background work stops on it.
    pub shutdown: CancellationToken,
    /// The metrics registry, for the service's own metrics.
    pub metrics: Metrics,
    /// Where the store lives.
    pub backend: Backend,
}

/// What is a service's own; everything else is the runtime's.
pub trait Service: 'static {
    /// Its configuration, read and validated from the environment at startup.
    type Config: Send + 'static;
    /// Its store, as its domain sees it (a `dyn` port).
    type Store: ?Sized + Send + Sync + 'static;
    /// What it readies before it binds, beside its store (upstream channels); `()` for nothing.
    type Prepared: Send + 'static;
    /// Name, gRPC service, schema, migrations and scopes.
    const SPEC: ServiceSpec;
    /// One line for `--help`.
    const ABOUT: &'static str;

    /// Reads and checks the configuration for `backend` (an embedded store needs no database
    /// settings).
    fn config(source: &ConfigSource, backend: Backend) -> Result<Self::Config, ConfigError>;

    /// Opens the service's embedded store at `url` (`sqlite://path`), applying its migrations.
    fn open_embedded(
        url: &str,
    ) -> impl Future<Output = Result<Arc<Self::Store>, StartError>> + Send;

    /// The settings every service has.
    fn common(config: &Self::Config) -> CommonSettings<'_>;

    /// Readies what the service needs beside its store, adjusting the configuration to the
    /// backend where it must; runs before the ports are bound.
    fn prepare(config: &mut Self::Config, backend: Backend) -> Result<Self::Prepared, StartError>;

    /// The service's store on the runtime's pool.
    fn postgres_store(
        config: &Self::Config,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> Arc<Self::Store>;

    /// The gRPC routes over `store`, with whatever background work the service runs.
    fn routes(
        config: Self::Config,
        prepared: Self::Prepared,
        store: Arc<Self::Store>,
        context: RunContext,
    ) -> tonic::service::Routes;
}

/// A built service, bound to its ports and ready to run.
pub struct Application<S: Service> {
    config: S::Config,
    prepared: S::Prepared,
    runner: Runner<S::Store>,
}

enum Runner<St: ?Sized> {
    /// Postgres: pool, migrations and readiness from the runtime.
    Postgres(BoundService),
    /// A store opened in this process.
    Embedded(EmbeddedService, Arc<St>),
}

impl<S: Service> std::fmt::Debug for Application<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.runner {
            Runner::Postgres(_) => Backend::Postgres,
            Runner::Embedded(..) => Backend::Embedded,
        };
        f.debug_struct("Application")
            .field("service", &S::SPEC.name)
            .field("backend", &backend)
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

fn no_database() -> StartError {
    StartError::Service("TIERLINE_DATABASE_URL is required".into())
}

impl<S: Service> Application<S> {
    /// Binds the ports and opens the pool (lazily: the database may still be starting).
    pub async fn build(mut config: S::Config) -> Result<Self, StartError> {
        let prepared = S::prepare(&mut config, Backend::Postgres)?;
        let common = S::common(&config);
        let database = common.database.ok_or_else(no_database)?;
        let bound = BoundService::bind(S::SPEC, common.grpc, common.auth, database).await?;
        Ok(Self {
            config,
            prepared,
            runner: Runner::Postgres(bound),
        })
    }

    /// Binds the API port over a store already open in this process (the development mode).
    pub async fn embedded(mut config: S::Config, store: Arc<S::Store>) -> Result<Self, StartError> {
        let prepared = S::prepare(&mut config, Backend::Embedded)?;
        let common = S::common(&config);
        let service = EmbeddedService::bind(S::SPEC, common.grpc, common.auth).await?;
        Ok(Self {
            config,
            prepared,
            runner: Runner::Embedded(service, store),
        })
    }

    /// The address the gRPC API listens on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.runner {
            Runner::Postgres(bound) => bound.local_addr(),
            Runner::Embedded(service, _) => service.local_addr(),
        }
    }

    /// The address of `/metrics`, when enabled (not in the embedded mode).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        match &self.runner {
            Runner::Postgres(bound) => bound.metrics_addr(),
            Runner::Embedded(..) => None,
        }
    }

    /// Runs until `stop` resolves; readiness turns SERVING once migrations are done and the
    /// database answers (at once for an embedded store).
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let Self {
            config,
            prepared,
            runner,
        } = self;
        match runner {
            Runner::Postgres(bound) => {
                bound
                    .run(
                        move |context| async move {
                            let store =
                                S::postgres_store(&config, context.pool, context.shutdown.clone());
                            let context = RunContext {
                                shutdown: context.shutdown,
                                metrics: context.metrics,
                                backend: Backend::Postgres,
                            };
                            Ok(S::routes(config, prepared, store, context))
                        },
                        stop,
                    )
                    .await
            }
            Runner::Embedded(service, store) => {
                service
                    .run(
                        move |context| {
                            let context = RunContext {
                                shutdown: context.shutdown,
                                metrics: context.metrics,
                                backend: Backend::Embedded,
                            };
                            S::routes(config, prepared, store, context)
                        },
                        stop,
                    )
                    .await
            }
        }
    }
}

/// Applies the service's pending migrations and returns (the `migrate` subcommand, and the
/// migration Job in Kubernetes).
pub async fn migrate_only<S: Service>(config: &S::Config) -> Result<(), StartError> {
    let database = S::common(config).database.ok_or_else(no_database)?;
    crate::service::migrate_only(S::SPEC, database).await
}

/// The whole body of a service's binary: `serve` (the default) runs until SIGTERM or Ctrl-C,
/// `migrate` applies the pending migrations and exits. The configuration comes from the
/// environment and is checked before anything starts.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    let matches = clap::Command::new(S::SPEC.name)
        .about(S::ABOUT)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand(
            clap::Command::new("serve")
                .about("Serve the gRPC API until SIGTERM or Ctrl-C (the default)"),
        )
        .subcommand(
            clap::Command::new("migrate").about("Apply pending database migrations, then exit"),
        )
        .get_matches();
    let config = S::config(&ConfigSource::from_env()?, Backend::Postgres)?;
    let _telemetry = crate::telemetry::init(S::common(&config).telemetry)?;
    if matches.subcommand_name() == Some("migrate") {
        migrate_only::<S>(&config).await?;
        tracing::info!("migrations applied");
    } else {
        Application::<S>::build(config)
            .await?
            .run_until(crate::server::shutdown_signal())
            .await?;
    }
    Ok(())
}
