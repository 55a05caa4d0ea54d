//! Wiring: configuration → store, domain and gRPC routes, on the runtime's one application
//! (`tierline_runtime::app`: ports, pool, migrations, health, metrics, drain).

use std::sync::Arc;

use sqlx::PgPool;
use tierline_proto::customer::v1::customer_service_server::{CustomerServiceServer, SERVICE_NAME};
use tierline_runtime::{
    app::{Backend, CommonSettings, RunContext, Service},
    config::{ConfigError, ConfigSource},
    service::ServiceSpec,
};
use tokio_util::sync::CancellationToken;

pub use tierline_runtime::service::StartError;

use crate::{
    config::CustomerConfig,
    domain::{Customers, service::Rules},
    feed_server::FeedWatcher,
    grpc::{CustomerApi, SCOPES},
    storage::{
        CustomerStore,
        postgres::{MIGRATOR, PgCustomerStore, SCHEMA},
        sqlite::SqliteCustomerStore,
    },
};

/// The customer service, as the runtime runs it.
#[derive(Debug)]
pub struct CustomerService;

/// A built customer service, bound to its ports and ready to run.
pub type Application = tierline_runtime::app::Application<CustomerService>;

impl Service for CustomerService {
    type Config = CustomerConfig;
    type Store = dyn CustomerStore;
    type Prepared = ();
    const SPEC: ServiceSpec = ServiceSpec {
        name: "tierline-customer",
        grpc_service: SERVICE_NAME,
        schema: SCHEMA,
        migrator: &MIGRATOR,
        scopes: SCOPES,
    };
    const ABOUT: &'static str = "Tierline customer service";

    fn config(source: &ConfigSource, backend: Backend) -> Result<CustomerConfig, ConfigError> {
        match backend {
            Backend::Postgres => CustomerConfig::from_source(source),
            Backend::Embedded => CustomerConfig::embedded_from_source(source),
        }
    }

    async fn open_embedded(url: &str) -> Result<Arc<dyn CustomerStore>, StartError> {
        let store = SqliteCustomerStore::open(url)
            .await
            .map_err(|error| StartError::Service(format!("opening {url}: {error}")))?;
        Ok(Arc::new(store))
    }

    fn common(config: &CustomerConfig) -> CommonSettings<'_> {
        CommonSettings {
            grpc: &config.grpc,
            auth: &config.auth,
            telemetry: &config.telemetry,
            database: config.database.as_ref(),
        }
    }

    fn prepare(_: &mut CustomerConfig, _: Backend) -> Result<(), StartError> {
        Ok(())
    }

    fn postgres_store(
        config: &CustomerConfig,
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> Arc<dyn CustomerStore> {
        Arc::new(PgCustomerStore::new(
            pool,
            shutdown,
            config.purchase_writers,
        ))
    }

    fn routes(
        config: CustomerConfig,
        (): (),
        store: Arc<dyn CustomerStore>,
        context: RunContext,
    ) -> tonic::service::Routes {
        let rules = Rules {
            clock_skew: chrono::Duration::from_std(config.clock_skew)
                .unwrap_or(chrono::Duration::minutes(5)),
            phone_region: config.phone_region,
        };
        let customers = Customers::new(store, rules, FeedWatcher::new(config.feed));
        let service = CustomerServiceServer::new(CustomerApi::new(customers, context.shutdown))
            .max_decoding_message_size(config.grpc.max_message_bytes)
            .max_encoding_message_size(config.grpc.max_message_bytes);
        tonic::service::Routes::new(service)
    }
}

/// Applies pending migrations and returns (the `migrate` subcommand).
pub async fn migrate_only(config: &CustomerConfig) -> Result<(), StartError> {
    tierline_runtime::app::migrate_only::<CustomerService>(config).await
}
