//! Wiring: configuration → store, domain and gRPC routes, on the runtime's service bootstrap
//! (ports, pool, migrations, health, metrics, drain).

use std::{net::SocketAddr, sync::Arc};

use tierline_proto::customer::v1::customer_service_server::{CustomerServiceServer, SERVICE_NAME};
use tierline_runtime::service::{BoundService, ServiceContext, ServiceSpec};

pub use tierline_runtime::service::StartError;

use crate::{
    config::CustomerConfig,
    domain::{Customers, service::Rules},
    feed::FeedWatcher,
    grpc::{CustomerApi, SCOPES},
    storage::postgres::{MIGRATOR, PgCustomerStore, SCHEMA},
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
    bound: BoundService,
}

impl Application {
    /// Binds the ports and opens the pool (lazily: the database may still be starting).
    pub async fn build(config: CustomerConfig) -> Result<Self, StartError> {
        let bound = BoundService::bind(SPEC, &config.grpc, &config.auth, &config.database).await?;
        Ok(Self { config, bound })
    }

    /// The address the gRPC API listens on (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// The address of `/metrics`, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.bound.metrics_addr()
    }

    /// Runs until `stop` resolves; readiness turns SERVING once migrations are done and the
    /// database answers.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let config = self.config;
        self.bound
            .run(
                move |context| async move { Ok(routes(&config, context)) },
                stop,
            )
            .await
    }
}

fn routes(config: &CustomerConfig, context: ServiceContext) -> tonic::service::Routes {
    let store = Arc::new(PgCustomerStore::new(
        context.pool,
        context.shutdown.clone(),
        config.purchase_writers,
    ));
    let rules = Rules {
        clock_skew: chrono::Duration::from_std(config.clock_skew)
            .unwrap_or(chrono::Duration::minutes(5)),
    };
    let customers = Customers::new(store, rules, FeedWatcher::new(config.feed));
    let service = CustomerServiceServer::new(CustomerApi::new(customers, context.shutdown))
        .max_decoding_message_size(config.grpc.max_message_bytes)
        .max_encoding_message_size(config.grpc.max_message_bytes);
    tonic::service::Routes::new(service)
}

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &CustomerConfig) -> Result<(), StartError> {
    tierline_runtime::service::migrate_only(SPEC, &config.database).await
}
