//! Wiring: configuration → store, cache, domain, background work and gRPC routes, on the
//! runtime's one application (`tierline_runtime::app`).

use std::sync::Arc;

use sqlx::PgPool;
use tierline_proto::scoring::v1::scoring_service_server::{SERVICE_NAME, ScoringServiceServer};
use tierline_runtime::{
    app::{Backend, CommonSettings, RunContext, Service},
    config::{ConfigError, ConfigSource},
    follower::FeedCounters,
    metrics::Metrics,
    service::ServiceSpec,
};
use tokio_util::sync::CancellationToken;

pub use tierline_runtime::service::StartError;

use crate::{
    cache::TierCache,
    config::ScoringConfig,
    domain::{in_force::ProgramRegistry, service::Scoring},
    grpc::{SCOPES, ScoringApi},
    storage::{
        ScoringStore,
        postgres::{MIGRATOR, PgScoringStore, SCHEMA},
        sqlite::SqliteScoringStore,
    },
};

/// The scoring service, as the runtime runs it.
#[derive(Debug)]
pub struct ScoringService;

/// A built scoring service, bound to its ports and ready to run.
pub type Application = tierline_runtime::app::Application<ScoringService>;

impl Service for ScoringService {
    type Config = ScoringConfig;
    type Store = dyn ScoringStore;
    type Prepared = ();
    const SPEC: ServiceSpec = ServiceSpec {
        name: "tierline-scoring",
        grpc_service: SERVICE_NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        scopes: SCOPES,
    };
    const ABOUT: &'static str = "Tierline scoring service";

    fn config(source: &ConfigSource, backend: Backend) -> Result<ScoringConfig, ConfigError> {
        match backend {
            Backend::Postgres => ScoringConfig::from_source(source),
            Backend::Embedded => ScoringConfig::embedded_from_source(source),
        }
    }

    async fn open_embedded(url: &str) -> Result<Arc<dyn ScoringStore>, StartError> {
        let store = SqliteScoringStore::open(url)
            .await
            .map_err(|error| StartError::Service(format!("opening {url}: {error}")))?;
        Ok(Arc::new(store))
    }

    fn common(config: &ScoringConfig) -> CommonSettings<'_> {
        CommonSettings {
            grpc: &config.grpc,
            auth: &config.auth,
            telemetry: &config.telemetry,
            database: config.database.as_ref(),
        }
    }

    fn prepare(config: &mut ScoringConfig, backend: Backend) -> Result<(), StartError> {
        // The embedded store has one writer: a second partition's transaction would only wait
        // for the first.
        if backend == Backend::Embedded
            && let Some(consumer) = config.consumer.as_mut()
        {
            consumer.partitions = 1;
        }
        Ok(())
    }

    fn postgres_store(
        _: &ScoringConfig,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> Arc<dyn ScoringStore> {
        Arc::new(PgScoringStore::new(pool, shutdown))
    }

    fn routes(
        config: ScoringConfig,
        (): (),
        store: Arc<dyn ScoringStore>,
        context: RunContext,
    ) -> tonic::service::Routes {
        // Redis (or none) as configured on Postgres; in this process beside an embedded store.
        let cache = match context.backend {
            Backend::Postgres => TierCache::start(&config.cache, &context.metrics),
            Backend::Embedded => in_process_cache(&config, &context.metrics),
        };
        let counters = FeedCounters::register(&context.metrics);
        routes(&config, store, cache, counters, context.shutdown)
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
        crate::activity_follower::spawn(
            store.clone(),
            cache.clone(),
            consumer.clone(),
            counters.clone(),
            shutdown.clone(),
        );
        Arc::new(crate::activity_follower::FeedHistory::new(
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
    tierline_runtime::app::migrate_only::<ScoringService>(config).await
}
