//! Wiring: configuration → store, upstream clients, domain, background work and gRPC routes, on
//! the runtime's service bootstrap.

use std::{net::SocketAddr, sync::Arc};

use tierline_proto::campaign::v1::campaign_service_server::{CampaignServiceServer, SERVICE_NAME};
use tierline_runtime::{
    embedded::EmbeddedService,
    follower::FeedCounters,
    service::{BoundService, ServiceSpec},
};

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
    },
    upstream::Upstream,
};

/// What the runtime needs to know about the campaign service.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: "tierline-campaign",
    grpc_service: SERVICE_NAME,
    schema: SCHEMA,
    migrator: &MIGRATOR,
    scopes: SCOPES,
};

/// A built campaign service, bound to its ports and ready to run.
#[derive(Debug)]
pub struct Application {
    config: CampaignConfig,
    upstream: Upstream,
    runner: Runner,
}

#[derive(Debug)]
enum Runner {
    /// Postgres, the deployment: pool, migrations and readiness from the runtime.
    Postgres(BoundService),
    /// A store opened in this process (the development mode).
    Embedded(EmbeddedService, Arc<dyn CampaignStore>),
}

fn no_database() -> StartError {
    StartError::Service("TIERLINE_DATABASE_URL is required".into())
}

impl Application {
    /// Binds the ports, opens the pool (lazily) and the upstream channels (lazily).
    pub async fn build(config: CampaignConfig) -> Result<Self, StartError> {
        let upstream = Upstream::connect(&config.upstream)
            .map_err(|error| StartError::Service(error.to_string()))?;
        let database = config.database.as_ref().ok_or_else(no_database)?;
        let bound = BoundService::bind(SPEC, &config.grpc, &config.auth, database).await?;
        Ok(Self {
            config,
            upstream,
            runner: Runner::Postgres(bound),
        })
    }

    /// Binds the API port over a store already open in this process (the development mode).
    pub async fn embedded(
        config: CampaignConfig,
        store: Arc<dyn CampaignStore>,
    ) -> Result<Self, StartError> {
        let upstream = Upstream::connect(&config.upstream)
            .map_err(|error| StartError::Service(error.to_string()))?;
        let service = EmbeddedService::bind(SPEC, &config.grpc, &config.auth).await?;
        Ok(Self {
            config,
            upstream,
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
        let Self {
            config,
            upstream,
            runner,
        } = self;
        match runner {
            Runner::Postgres(bound) => {
                bound
                    .run(
                        move |context| async move {
                            let store: Arc<dyn CampaignStore> = Arc::new(PgCampaignStore::new(
                                context.pool.clone(),
                                context.shutdown.clone(),
                            ));
                            let counters = FeedCounters::register(&context.metrics);
                            Ok(routes(&config, upstream, store, counters, context.shutdown))
                        },
                        stop,
                    )
                    .await
            }
            Runner::Embedded(service, store) => {
                service
                    .run(
                        move |context| {
                            let counters = FeedCounters::register(&context.metrics);
                            routes(&config, upstream, store, counters, context.shutdown)
                        },
                        stop,
                    )
                    .await
            }
        }
    }
}

fn routes(
    config: &CampaignConfig,
    upstream: Upstream,
    store: Arc<dyn CampaignStore>,
    counters: FeedCounters,
    shutdown: tokio_util::sync::CancellationToken,
) -> tonic::service::Routes {
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
        crate::feeds::spawn(
            store,
            enroller,
            &config.upstream,
            config.feed_batch,
            counters,
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

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &CampaignConfig) -> Result<(), StartError> {
    let database = config.database.as_ref().ok_or_else(no_database)?;
    tierline_runtime::service::migrate_only(SPEC, database).await
}
