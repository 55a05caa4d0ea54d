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
pub(crate) use tierline_testkit::eventually;
use tierline_testkit::{TestDatabase, TestSqliteFile, tokens};
use tierline_topology::{Running, Storage, Topology};
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
    /// Left out by [`start_tiers`].
    campaign: Option<CampaignServiceClient<Channel>>,
    pub(crate) database_url: String,
    topology: Topology,
    running: Running,
    stop: CancellationToken,
    _database: TestDatabase,
    _files: [TestSqliteFile; 3],
}

impl Services {
    /// A client of the campaign service (clients share one connection).
    pub(crate) fn campaign(&self) -> CampaignServiceClient<Channel> {
        self.campaign
            .clone()
            .expect("the scenario started the campaign service")
    }

    /// Another scoring replica with the first one's settings (on Postgres it stands by for the
    /// feed); its client.
    pub(crate) async fn scoring_replica(&mut self) -> ScoringServiceClient<Channel> {
        let addr = self
            .topology
            .start_scoring_replica(&mut self.running, &self.stop)
            .await
            .expect("the replica starts");
        ScoringServiceClient::new(connect(addr).await)
    }
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

/// Starts the customer and scoring services on Postgres, as the tier scenarios need them;
/// `scoring_extra` adds scoring settings (Redis, the sweep's interval).
pub(crate) async fn start_tiers(scoring_extra: &[(&str, &str)]) -> Services {
    let database = TestDatabase::create().await.expect("database");
    let mut topology = Topology::new(Storage::Postgres {
        url: database.url().to_owned(),
    })
    .without_campaign();
    for (key, value) in scoring_extra {
        topology = topology.scoring_setting(key, value);
    }
    started(topology, database, files()).await
}

/// As [`start`], with the services' data where `stores` says: the one topology `tierline dev`
/// runs too (`tierline_topology`), with auth on (the test tokens' secret).
pub(crate) async fn start_on(stores: Stores, campaign_extra: &[(&str, &str)]) -> Services {
    let files = files();
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
    let mut topology = Topology::new(storage).campaign_setting("TIERLINE_SCHEDULER_TICK", "200ms");
    for (key, value) in campaign_extra {
        topology = topology.campaign_setting(key, value);
    }
    started(topology, database, files).await
}

/// Three SQLite files, one per service, removed when dropped.
fn files() -> [TestSqliteFile; 3] {
    [
        TestSqliteFile::new(),
        TestSqliteFile::new(),
        TestSqliteFile::new(),
    ]
}

/// Starts `topology` with auth on (the test tokens' secret) and connects to what it started.
async fn started(
    topology: Topology,
    database: TestDatabase,
    files: [TestSqliteFile; 3],
) -> Services {
    tierline_testkit::init_logging();
    let topology = topology.with_auth(tokens::SECRET);
    let stop = CancellationToken::new();
    let running = topology
        .clone()
        .start(&stop)
        .await
        .expect("the services start");
    let campaign = match running.campaign {
        Some(addr) => Some(CampaignServiceClient::new(connect(addr).await)),
        None => None,
    };
    Services {
        customer: CustomerServiceClient::new(connect(running.customer).await),
        scoring: ScoringServiceClient::new(connect(running.scoring).await),
        campaign,
        database_url: database.url().to_owned(),
        topology,
        running,
        stop,
        _database: database,
        _files: files,
    }
}
