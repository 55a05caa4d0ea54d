//! Wiring: configuration → store, domain and gRPC routes, on the runtime's service bootstrap.

use std::{net::SocketAddr, sync::Arc};

use tierline_proto::scoring::v1::scoring_service_server::{SERVICE_NAME, ScoringServiceServer};
use tierline_runtime::service::{BoundService, ServiceContext, ServiceSpec};

pub use tierline_runtime::service::StartError;

use crate::{
    cache::TierCache,
    config::ScoringConfig,
    domain::service::Scoring,
    grpc::{SCOPES, ScoringApi},
    storage::postgres::{MIGRATOR, PgScoringStore, SCHEMA},
};

/// What the runtime needs to know about the scoring service.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "tierline-scoring",
    grpc_service: SERVICE_NAME,
    schema: SCHEMA,
    migrator: &MIGRATOR,
    scopes: SCOPES,
};

/// A built scoring service, bound to its ports and ready to run.
#[derive(Debug)]
pub struct Application {
    config: ScoringConfig,
    bound: BoundService,
}

impl Application {
    /// Binds the ports and opens the pool (lazily).
    pub async fn build(config: ScoringConfig) -> Result<Self, StartError> {
        let bound = BoundService::bind(SPEC, &config.grpc, &config.auth, &config.database).await?;
        Ok(Self { config, bound })
    }

    /// The address the gRPC API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound.local_addr()
    }

    /// Runs until `stop` resolves.
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

fn routes(config: &ScoringConfig, context: ServiceContext) -> tonic::service::Routes {
    let store = Arc::new(PgScoringStore::new(
        context.pool.clone(),
        context.shutdown.clone(),
    ));
    let cache = TierCache::start(&config.cache, &context.metrics);
    if let Some(consumer) = &config.consumer {
        crate::feed::spawn(
            store.clone(),
            cache.clone(),
            context.pool,
            consumer.clone(),
            context.shutdown.clone(),
        );
    }
    let scoring = Scoring::new(store.clone(), cache);
    if config.scheduler {
        crate::scheduler::spawn(
            store.clone(),
            scoring.evaluator().clone(),
            context.shutdown.clone(),
        );
        crate::scheduler::spawn_lifecycle_sweep(
            store,
            config.lifecycle_sweep,
            context.shutdown.clone(),
        );
    }
    let service = ScoringServiceServer::new(ScoringApi::new(scoring, context.shutdown))
        .max_decoding_message_size(config.grpc.max_message_bytes)
        .max_encoding_message_size(config.grpc.max_message_bytes);
    tonic::service::Routes::new(service)
}

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &ScoringConfig) -> Result<(), StartError> {
    tierline_runtime::service::migrate_only(SPEC, &config.database).await
}
