//! Wiring: configuration → store, domain and gRPC routes, on the runtime's service bootstrap.

use std::{net::SocketAddr, sync::Arc};

use tierline_proto::scoring::v1::scoring_service_server::{SERVICE_NAME, ScoringServiceServer};
use tierline_runtime::{
    embedded::EmbeddedService,
    follower::FeedCounters,
    metrics::Metrics,
    service::{BoundService, ServiceSpec},
};

pub use tierline_runtime::service::StartError;

use crate::{
    cache::TierCache,
    config::ScoringConfig,
    domain::{in_force::ProgramRegistry, service::Scoring},
    grpc::{SCOPES, ScoringApi},
    storage::{
        ScoringStore,
        postgres::{MIGRATOR, PgScoringStore, SCHEMA},
    },
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
    runner: Runner,
}

#[derive(Debug)]
enum Runner {
    /// Postgres, the deployment: pool, migrations and readiness from the runtime; the tier
    /// cache from the configuration (Redis or none).
    Postgres(BoundService),
    /// A store opened in this process (the development mode), with an in-process tier cache.
    Embedded(EmbeddedService, Arc<dyn ScoringStore>),
}

fn no_database() -> StartError {
    StartError::Service("TIERLINE_DATABASE_URL is required".into())
}

impl Application {
    /// Binds the ports and opens the pool (lazily).
    pub async fn build(config: ScoringConfig) -> Result<Self, StartError> {
        let database = config.database.as_ref().ok_or_else(no_database)?;
        let bound = BoundService::bind(SPEC, &config.grpc, &config.auth, database).await?;
        Ok(Self {
            config,
            runner: Runner::Postgres(bound),
        })
    }

    /// Binds the API port over a store already open in this process (the development mode).
    pub async fn embedded(
        mut config: ScoringConfig,
        store: Arc<dyn ScoringStore>,
    ) -> Result<Self, StartError> {
        // The embedded store has one writer: a second partition's transaction would only wait
        // for the first.
        if let Some(consumer) = config.consumer.as_mut() {
            consumer.partitions = 1;
        }
        let service = EmbeddedService::bind(SPEC, &config.grpc, &config.auth).await?;
        Ok(Self {
            config,
            runner: Runner::Embedded(service, store),
        })
    }

    /// The address the gRPC API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        match &self.runner {
            Runner::Postgres(bound) => bound.local_addr(),
            Runner::Embedded(service, _) => service.local_addr(),
        }
    }

    /// Runs until `stop` resolves.
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
                            let store: Arc<dyn ScoringStore> = Arc::new(PgScoringStore::new(
                                context.pool.clone(),
                                context.shutdown.clone(),
                            ));
                            let cache = TierCache::start(&config.cache, &context.metrics);
                            let counters = FeedCounters::register(&context.metrics);
                            Ok(routes(&config, store, cache, counters, context.shutdown))
                        },
                        stop,
                    )
                    .await
            }
            Runner::Embedded(service, store) => {
                service
                    .run(
                        move |context| {
                            let cache = in_process_cache(&config, &context.metrics);
                            let counters = FeedCounters::register(&context.metrics);
                            routes(&config, store, cache, counters, context.shutdown)
                        },
                        stop,
                    )
                    .await
            }
        }
    }
}

fn in_process_cache(config: &ScoringConfig, metrics: &Metrics) -> TierCache {
    TierCache::in_process(config.cache.near_records, config.cache.near_ttl, metrics)
}

fn routes(
    config: &ScoringConfig,
    store: Arc<dyn ScoringStore>,
    cache: TierCache,
    counters: FeedCounters,
    shutdown: tokio_util::sync::CancellationToken,
) -> tonic::service::Routes {
    let history = config.consumer.as_ref().map(|consumer| {
        crate::feed::spawn(
            store.clone(),
            cache.clone(),
            consumer.clone(),
            counters.clone(),
            shutdown.clone(),
        );
        Arc::new(crate::feed::FeedHistory::new(
            store.clone(),
            cache.clone(),
            consumer.clone(),
            counters,
            shutdown.clone(),
        )) as Arc<dyn crate::domain::backfill::ActivityHistory>
    });
    crate::domain::cache_writes::spawn_repairer(store.clone(), cache.clone(), shutdown.clone());
    let programs = ProgramRegistry::start(store.clone(), shutdown.clone());
    let scoring = Scoring::new(
        store.clone(),
        cache,
        programs,
        config.evaluation_feed,
        history,
    );
    if config.scheduler {
        crate::scheduler::spawn(store.clone(), scoring.evaluator().clone(), shutdown.clone());
        crate::scheduler::spawn_lifecycle_sweep(store, config.lifecycle_sweep, shutdown.clone());
    }
    let service = ScoringServiceServer::new(ScoringApi::new(scoring, shutdown))
        .max_decoding_message_size(config.grpc.max_message_bytes)
        .max_encoding_message_size(config.grpc.max_message_bytes);
    tonic::service::Routes::new(service)
}

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &ScoringConfig) -> Result<(), StartError> {
    let database = config.database.as_ref().ok_or_else(no_database)?;
    tierline_runtime::service::migrate_only(SPEC, database).await
}
