//! The three services started together as deployed (each on 127.0.0.1:0, one fresh database,
//! real Redis off), with clients, tokens and the business set-up the scenarios share.

#![allow(dead_code)]

pub(crate) mod business;

use std::{net::SocketAddr, sync::Arc};

use tierline_campaign::storage::sqlite::SqliteCampaignStore;
use tierline_campaign::{Application as CampaignApp, CampaignConfig};
use tierline_customer::storage::sqlite::SqliteCustomerStore;
use tierline_customer::{Application as CustomerApp, CustomerConfig};
use tierline_proto::{
    campaign::v1::campaign_service_client::CampaignServiceClient,
    customer::v1::customer_service_client::CustomerServiceClient, prost_types::Timestamp,
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use tierline_runtime::{
    auth::scopes::{CUSTOMERS_READ, FEED_READ, PROGRAMS_ADMIN, TIERS_READ},
    config::ConfigSource,
};
use tierline_scoring::storage::sqlite::SqliteScoringStore;
use tierline_scoring::{Application as ScoringApp, ScoringConfig};
pub(crate) use tierline_testkit::eventually;
use tierline_testkit::{TestDatabase, TestSqliteFile, tokens, wait_until_serving};
use tokio_util::sync::CancellationToken;
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// A request carrying a token with `scopes`.
pub(crate) fn authorized<T>(message: T, scopes: &[&str]) -> Request<T> {
    let mut request = Request::new(message);
    let value =
        MetadataValue::try_from(format!("Bearer {}", tokens::token("e2e", scopes))).expect("ascii");
    request.metadata_mut().insert("authorization", value);
    request
}

/// `days` days before now (negative: after).
pub(crate) fn days_ago(days: i64) -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    Timestamp {
        seconds: i64::try_from(now.as_secs()).expect("secs") - days * 86_400,
        nanos: i32::try_from(now.subsec_nanos()).expect("nanos"),
    }
}

/// The running services and their clients; everything stops when dropped.
pub(crate) struct Services {
    pub(crate) customer: CustomerServiceClient<Channel>,
    pub(crate) scoring: ScoringServiceClient<Channel>,
    pub(crate) campaign: CampaignServiceClient<Channel>,
    pub(crate) database_url: String,
    stop: CancellationToken,
    _database: TestDatabase,
    _files: [TestSqliteFile; 3],
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve<F>(addr: SocketAddr, run: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(run);
    wait_until_serving(addr).await;
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// Where the services keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stores {
    /// Every service on Postgres, as deployed.
    Postgres,
    /// The development mode's topology: every service on the embedded bootstrap over its SQLite
    /// store, the scoring service with its in-process tier cache.
    Sqlite,
}

/// Starts the customer, scoring and campaign services; `campaign_extra` adds campaign settings.
pub(crate) async fn start(campaign_extra: &[(&str, &str)]) -> Services {
    start_on(Stores::Postgres, campaign_extra).await
}

/// As [`start`], with the services' data where `stores` says.
pub(crate) async fn start_on(stores: Stores, campaign_extra: &[(&str, &str)]) -> Services {
    tierline_testkit::init_logging();
    let files = [
        TestSqliteFile::new(),
        TestSqliteFile::new(),
        TestSqliteFile::new(),
    ];
    let database = TestDatabase::create().await.expect("database");
    let stop = CancellationToken::new();
    let common = vec![
        ("TIERLINE_GRPC_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("TIERLINE_METRICS_ADDR".to_owned(), "off".to_owned()),
        (
            "TIERLINE_DATABASE_URL".to_owned(),
            database.url().to_owned(),
        ),
        (
            "TIERLINE_AUTH_HS256_SECRET".to_owned(),
            tokens::SECRET.to_owned(),
        ),
    ];
    let with = |extra: Vec<(String, String)>| {
        let mut pairs = common.clone();
        pairs.extend(extra);
        ConfigSource::from_pairs(pairs)
    };

    let customer = match stores {
        Stores::Postgres => {
            CustomerApp::build(CustomerConfig::from_source(&with(vec![])).expect("config")).await
        }
        Stores::Sqlite => {
            let store = SqliteCustomerStore::open(&files[0].url())
                .await
                .expect("customer store");
            CustomerApp::embedded(
                CustomerConfig::embedded_from_source(&with(vec![])).expect("config"),
                Arc::new(store),
            )
            .await
        }
    }
    .expect("customer builds");
    let customer_addr = customer.local_addr();
    let token = stop.clone();
    serve(customer_addr, async move {
        customer
            .run_until(async move { token.cancelled().await })
            .await
            .expect("customer runs");
    })
    .await;

    let scoring_source = with(vec![
        (
            "TIERLINE_CUSTOMER_ENDPOINT".into(),
            format!("http://{customer_addr}"),
        ),
        (
            "TIERLINE_CUSTOMER_TOKEN".into(),
            tokens::token("scoring", &[FEED_READ]),
        ),
    ]);
    let scoring = match stores {
        Stores::Postgres => {
            ScoringApp::build(ScoringConfig::from_source(&scoring_source).expect("config")).await
        }
        Stores::Sqlite => {
            let config = ScoringConfig::embedded_from_source(&scoring_source).expect("config");
            let store = SqliteScoringStore::open(&files[2].url())
                .await
                .expect("scoring store");
            ScoringApp::embedded(config, Arc::new(store)).await
        }
    }
    .expect("scoring builds");
    let scoring_addr = scoring.local_addr();
    let token = stop.clone();
    serve(scoring_addr, async move {
        scoring
            .run_until(async move { token.cancelled().await })
            .await
            .expect("scoring runs");
    })
    .await;

    let mut campaign_settings = vec![
        (
            "TIERLINE_CUSTOMER_ENDPOINT".to_owned(),
            format!("http://{customer_addr}"),
        ),
        (
            "TIERLINE_CUSTOMER_TOKEN".to_owned(),
            tokens::token("campaign", &[CUSTOMERS_READ, FEED_READ]),
        ),
        (
            "TIERLINE_SCORING_ENDPOINT".to_owned(),
            format!("http://{scoring_addr}"),
        ),
        (
            "TIERLINE_SCORING_TOKEN".to_owned(),
            tokens::token("campaign", &[PROGRAMS_ADMIN, TIERS_READ, FEED_READ]),
        ),
        ("TIERLINE_SCHEDULER_TICK".to_owned(), "200ms".to_owned()),
    ];
    campaign_settings.extend(
        campaign_extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let campaign_source = with(campaign_settings);
    let campaign = match stores {
        Stores::Postgres => {
            CampaignApp::build(CampaignConfig::from_source(&campaign_source).expect("config")).await
        }
        Stores::Sqlite => {
            let store = SqliteCampaignStore::open(&files[1].url())
                .await
                .expect("campaign store");
            CampaignApp::embedded(
                CampaignConfig::embedded_from_source(&campaign_source).expect("config"),
                Arc::new(store),
            )
            .await
        }
    }
    .expect("campaign builds");
    let campaign_addr = campaign.local_addr();
    let token = stop.clone();
    serve(campaign_addr, async move {
        campaign
            .run_until(async move { token.cancelled().await })
            .await
            .expect("campaign runs");
    })
    .await;

    Services {
        customer: CustomerServiceClient::new(connect(customer_addr).await),
        scoring: ScoringServiceClient::new(connect(scoring_addr).await),
        campaign: CampaignServiceClient::new(connect(campaign_addr).await),
        database_url: database.url().to_owned(),
        stop,
        _database: database,
        _files: files,
    }
}
