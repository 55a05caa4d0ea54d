//! Wiring: configuration → store, domain and gRPC routes, on the runtime's service bootstrap
//! (ports, pool, migrations, health, metrics, drain).

use std::{net::SocketAddr, sync::Arc};

use tierline_proto::customer::v1::customer_service_server::{CustomerServiceServer, SERVICE_NAME};
use tierline_runtime::{
    embedded::EmbeddedService,
    service::{BoundService, ServiceSpec},
};

pub use tierline_runtime::service::StartError;

use crate::{
    config::CustomerConfig,
    domain::{Customers, service::Rules},
    feed::FeedWatcher,
    grpc::{CustomerApi, SCOPES},
    storage::{
        CustomerStore,
        postgres::{MIGRATOR, PgCustomerStore, SCHEMA},
    },
};

/// What the runtime needs to know about the customer service.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "tierline-customer",
    grpc_service: SERVICE_NAME,
    schema: SCHEMA,
    migrator: &MIGRATOR,
    scopes: SCOPES,
};

/// A built customer service, bound to its ports and ready to run.
#[derive(Debug)]
pub struct Application {
    config: CustomerConfig,
    runner: Runner,
}

#[derive(Debug)]
enum Runner {
    /// Postgres, the deployment: pool, migrations and readiness from the runtime.
    Postgres(BoundService),
    /// A store opened in this process (the development mode).
    Embedded(EmbeddedService, Arc<dyn CustomerStore>),
}

fn no_database() -> StartError {
    StartError::Service("TIERLINE_DATABASE_URL is required".into())
}

impl Application {
    /// Binds the ports and opens the pool (lazily: the database may still be starting).
    pub async fn build(config: CustomerConfig) -> Result<Self, StartError> {
        let database = config.database.as_ref().ok_or_else(no_database)?;
        let bound = BoundService::bind(SPEC, &config.grpc, &config.auth, database).await?;
        Ok(Self {
            config,
            runner: Runner::Postgres(bound),
        })
    }

    /// Binds the API port over a store already open in this process (the development mode).
    pub async fn embedded(
        config: CustomerConfig,
        store: Arc<dyn CustomerStore>,
    ) -> Result<Self, StartError> {
        let service = EmbeddedService::bind(SPEC, &config.grpc, &config.auth).await?;
        Ok(Self {
            config,
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
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let config = self.config;
        match self.runner {
            Runner::Postgres(bound) => {
                bound
                    .run(
                        move |context| async move {
                            let store = Arc::new(PgCustomerStore::new(
                                context.pool,
                                context.shutdown.clone(),
                                config.purchase_writers,
                            ));
                            Ok(routes(&config, store, context.shutdown))
                        },
                        stop,
                    )
                    .await
            }
            Runner::Embedded(service, store) => {
                service
                    .run(
                        move |context| routes(&config, store, context.shutdown),
                        stop,
                    )
                    .await
            }
        }
    }
}

fn routes(
    config: &CustomerConfig,
    store: Arc<dyn CustomerStore>,
    shutdown: tokio_util::sync::CancellationToken,
) -> tonic::service::Routes {
    let rules = Rules {
        clock_skew: chrono::Duration::from_std(config.clock_skew)
            .unwrap_or(chrono::Duration::minutes(5)),
        phone_region: config.phone_region,
    };
    let customers = Customers::new(store, rules, FeedWatcher::new(config.feed));
    let service = CustomerServiceServer::new(CustomerApi::new(customers, shutdown))
        .max_decoding_message_size(config.grpc.max_message_bytes)
        .max_encoding_message_size(config.grpc.max_message_bytes);
    tonic::service::Routes::new(service)
}

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &CustomerConfig) -> Result<(), StartError> {
    let database = config.database.as_ref().ok_or_else(no_database)?;
    tierline_runtime::service::migrate_only(SPEC, database).await
}
