//! Wiring: configuration → store, upstream clients, domain, background work and gRPC routes, on
//! the runtime's one application (`tierline_runtime::app`).

use std::sync::Arc;

use sqlx::PgPool;
use tierline_proto::campaign::v1::campaign_service_server::{CampaignServiceServer, SERVICE_NAME};
use tierline_runtime::{
    app::{Backend, CommonSettings, RunContext, Service},
    config::{ConfigError, ConfigSource},
    follower::FeedCounters,
    service::ServiceSpec,
};
use tokio_util::sync::CancellationToken;

pub use tierline_runtime::service::StartError;

use crate::{
    config::CampaignConfig,
    domain::{
        enrolment::Enroller,
        service::{Campaigns, Settings},
    },
    grpc::{CampaignApi, SCOPES},
    storage::{
        CampaignStore,
        postgres::{MIGRATOR, PgCampaignStore, SCHEMA},
        sqlite::SqliteCampaignStore,
    },
    upstream::Upstream,
};

/// The campaign service, as the runtime runs it.
#[derive(Debug)]
pub struct CampaignService;

/// A built campaign service, bound to its ports and ready to run.
pub type Application = tierline_runtime::app::Application<CampaignService>;

impl Service for CampaignService {
    type Config = CampaignConfig;
    type Store = dyn CampaignStore;
    /// The channels to the customer and scoring services (opened lazily).
    type Prepared = Upstream;
    const SPEC: ServiceSpec = ServiceSpec {
        name: "tierline-campaign",
        grpc_service: SERVICE_NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        scopes: SCOPES,
    };
    const ABOUT: &'static str = "Tierline campaign service";

    fn config(source: &ConfigSource, backend: Backend) -> Result<CampaignConfig, ConfigError> {
        match backend {
            Backend::Postgres => CampaignConfig::from_source(source),
            Backend::Embedded => CampaignConfig::embedded_from_source(source),
        }
    }

    async fn open_embedded(url: &str) -> Result<Arc<dyn CampaignStore>, StartError> {
        let store = SqliteCampaignStore::open(url)
            .await
            .map_err(|error| StartError::Service(format!("opening {url}: {error}")))?;
        Ok(Arc::new(store))
    }

    fn common(config: &CampaignConfig) -> CommonSettings<'_> {
        CommonSettings {
            grpc: &config.grpc,
            auth: &config.auth,
            telemetry: &config.telemetry,
            database: config.database.as_ref(),
        }
    }

    fn prepare(config: &mut CampaignConfig, _: Backend) -> Result<Upstream, StartError> {
        Upstream::connect(&config.upstream).map_err(|error| StartError::Service(error.to_string()))
    }

    fn postgres_store(
        _: &CampaignConfig,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> Arc<dyn CampaignStore> {
        Arc::new(PgCampaignStore::new(pool, shutdown))
    }

    fn routes(
        config: CampaignConfig,
        upstream: Upstream,
        store: Arc<dyn CampaignStore>,
        context: RunContext,
    ) -> tonic::service::Routes {
        let RunContext {
            shutdown, metrics, ..
        } = context;
        let enroller = Enroller::new(upstream, config.frequency_cap);
        let campaigns = Campaigns::new(
            store.clone(),
            enroller.clone(),
            Settings {
                min_arm_size: config.min_arm_size,
                launch_wait: config.launch_wait,
            },
            shutdown.clone(),
        );
        if config.feed_consumer {
            crate::followers::spawn(
                store,
                enroller,
                &config.upstream,
                config.feed_batch,
                FeedCounters::register(&metrics),
                shutdown.clone(),
            );
        }
        if config.scheduler {
            crate::scheduler::spawn(campaigns.clone(), config.scheduler_tick, shutdown.clone());
        }
        let service = CampaignServiceServer::new(CampaignApi::new(campaigns, shutdown))
            .max_decoding_message_size(config.grpc.max_message_bytes)
            .max_encoding_message_size(config.grpc.max_message_bytes);
        tonic::service::Routes::new(service)
    }
}

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &CampaignConfig) -> Result<(), StartError> {
    tierline_runtime::app::migrate_only::<CampaignService>(config).await
}
