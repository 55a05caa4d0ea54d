//! The three services started together as deployed (each on 127.0.0.1:0, one fresh database,
//! real Redis off), with clients, tokens and the business set-up the scenarios share.

#![allow(dead_code)]

pub(crate) mod business;

use std::net::SocketAddr;

use tierline_proto::{
    campaign::v1::campaign_service_client::CampaignServiceClient,
    customer::v1::customer_service_client::CustomerServiceClient, prost_types::Timestamp,
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use tierline_runtime::service::StartError;
pub(crate) use tierline_testkit::eventually;
use tierline_testkit::{TestDatabase, TestSqliteFile, tokens};
use tierline_topology::{Storage, Topology};
use tokio::task::JoinSet;
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
    _tasks: JoinSet<Result<(), StartError>>,
    _database: TestDatabase,
    _files: [TestSqliteFile; 3],
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop.cancel();
    }
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

/// As [`start`], with the services' data where `stores` says: the one topology `tierline dev`
/// runs too (`tierline_topology`), with auth on (the test tokens' secret).
pub(crate) async fn start_on(stores: Stores, campaign_extra: &[(&str, &str)]) -> Services {
    tierline_testkit::init_logging();
    let files = [
        TestSqliteFile::new(),
        TestSqliteFile::new(),
        TestSqliteFile::new(),
    ];
    let database = TestDatabase::create().await.expect("database");
    let storage = match stores {
        Stores::Postgres => Storage::Postgres {
            url: database.url().to_owned(),
        },
        Stores::Sqlite => Storage::Sqlite {
            customer: files[0].url(),
            scoring: files[2].url(),
            campaign: files[1].url(),
        },
    };
    let mut topology = Topology::new(storage)
        .with_auth(tokens::SECRET)
        .campaign_setting("TIERLINE_SCHEDULER_TICK", "200ms");
    for (key, value) in campaign_extra {
        topology = topology.campaign_setting(key, value);
    }
    let stop = CancellationToken::new();
    let running = topology.start(&stop).await.expect("the services start");
    Services {
        customer: CustomerServiceClient::new(connect(running.customer).await),
        scoring: ScoringServiceClient::new(connect(running.scoring).await),
        campaign: CampaignServiceClient::new(connect(running.campaign).await),
        database_url: database.url().to_owned(),
        stop,
        _tasks: running.tasks,
        _database: database,
        _files: files,
    }
}
