//! The three services wired to one another in one process, as `tierline dev`, the end-to-end
//! tests and the benchmarks run them: each service's store (Postgres or its SQLite file), where
//! it listens, the endpoints each caller reaches the others at, and, with auth on, the token each
//! presents, with the scopes a deployment would grant it (docs/CONFIGURATION.md). One place to
//! change when a service gains a setting or a caller a scope.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use tierline_campaign::app::CampaignService;
use tierline_customer::app::CustomerService;
use tierline_runtime::{
    app::{Application, Backend, Service},
    auth::{Claims, epoch_seconds, scopes},
    client::until_serving,
    config::ConfigSource,
    service::StartError,
};
use tierline_scoring::app::ScoringService;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The scopes the scoring service's token for the customer service carries.
pub const SCORING_TO_CUSTOMER: &[&str] = &[scopes::FEED_READ];
/// The scopes the campaign service's token for the customer service carries.
pub const CAMPAIGN_TO_CUSTOMER: &[&str] = &[scopes::CUSTOMERS_READ, scopes::FEED_READ];
/// The scopes the campaign service's token for the scoring service carries.
pub const CAMPAIGN_TO_SCORING: &[&str] = &[
    scopes::PROGRAMS_ADMIN,
    scopes::TIERS_READ,
    scopes::FEED_READ,
];

/// How long a service may take to report SERVING (its migrations) before the start fails.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Service-to-service tokens outlive any process that mints them here.
const TOKEN_LIFETIME_SECONDS: u64 = 365 * 24 * 3600;

/// Where the services keep their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Every service on one Postgres database (each in its own schema), as deployed.
    Postgres {
        /// The database.
        url: String,
    },
    /// The development mode's: each service on its own SQLite file (`sqlite://path`).
    Sqlite {
        /// The customer service's file.
        customer: String,
        /// The scoring service's file.
        scoring: String,
        /// The campaign service's file.
        campaign: String,
    },
}

/// The three services to start: settings for all, settings for each, and the auth secret.
#[derive(Debug, Clone)]
pub struct Topology {
    storage: Storage,
    /// Where the customer service listens; the scoring and campaign services take the next two
    /// ports (port 0: any free port for each).
    customer_addr: SocketAddr,
    all: Vec<(String, String)>,
    customer: Vec<(String, String)>,
    scoring: Vec<(String, String)>,
    campaign: Vec<(String, String)>,
    secret: Option<String>,
    /// Whether the campaign service starts too (the tier scenarios need only the first two).
    with_campaign: bool,
}

/// The services running, until the stop token given to [`Topology::start`] is cancelled.
#[derive(Debug)]
pub struct Running {
    /// Where the customer service listens.
    pub customer: SocketAddr,
    /// Where the scoring service listens.
    pub scoring: SocketAddr,
    /// Where the campaign service listens, when it was started.
    pub campaign: Option<SocketAddr>,
    /// The three services; each ends when the stop token is cancelled, or on its own error.
    pub tasks: JoinSet<Result<(), StartError>>,
}

fn pair(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_owned(), value.into())
}

impl Topology {
    /// The three services on `storage`, on 127.0.0.1 with free ports, metrics off, auth off.
    pub fn new(storage: Storage) -> Self {
        let mut all = vec![
            pair("TIERLINE_METRICS_ADDR", "off"),
            pair("TIERLINE_AUTH_MODE", "disabled"),
        ];
        if let Storage::Postgres { url } = &storage {
            all.push(pair("TIERLINE_DATABASE_URL", url.clone()));
        }
        Self {
            storage,
            customer_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            all,
            customer: Vec::new(),
            scoring: Vec::new(),
            campaign: Vec::new(),
            secret: None,
            with_campaign: true,
        }
    }

    /// Listens at `customer_addr`, and the next two ports (any free ports when its port is 0).
    #[must_use]
    pub fn listening_at(mut self, customer_addr: SocketAddr) -> Self {
        self.customer_addr = customer_addr;
        self
    }

    /// Turns auth on: callers need HS256 tokens signed with `secret`, and each service presents
    /// one to the others, with the scopes a deployment grants it.
    #[must_use]
    pub fn with_auth(mut self, secret: &str) -> Self {
        self.all.retain(|(key, _)| key != "TIERLINE_AUTH_MODE");
        self.all.push(pair("TIERLINE_AUTH_HS256_SECRET", secret));
        self.secret = Some(secret.to_owned());
        self
    }

    /// Starts the customer and scoring services only.
    #[must_use]
    pub fn without_campaign(mut self) -> Self {
        self.with_campaign = false;
        self
    }

    /// A setting for every service.
    #[must_use]
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.all.push(pair(key, value));
        self
    }

    /// A setting for the customer service.
    #[must_use]
    pub fn customer_setting(mut self, key: &str, value: &str) -> Self {
        self.customer.push(pair(key, value));
        self
    }

    /// A setting for the scoring service.
    #[must_use]
    pub fn scoring_setting(mut self, key: &str, value: &str) -> Self {
        self.scoring.push(pair(key, value));
        self
    }

    /// A setting for the campaign service.
    #[must_use]
    pub fn campaign_setting(mut self, key: &str, value: &str) -> Self {
        self.campaign.push(pair(key, value));
        self
    }

    /// The address the service `offset` places after the customer service listens at.
    fn addr(&self, offset: u16) -> SocketAddr {
        let port = match self.customer_addr.port() {
            0 => 0,
            port => port.saturating_add(offset),
        };
        SocketAddr::new(self.customer_addr.ip(), port)
    }

    /// The settings of one service: all, its address, what it reaches, its own.
    fn source(
        &self,
        addr: SocketAddr,
        upstreams: Vec<(String, String)>,
        own: &[(String, String)],
    ) -> ConfigSource {
        let mut pairs = self.all.clone();
        pairs.push(pair("TIERLINE_GRPC_ADDR", addr.to_string()));
        pairs.extend(upstreams);
        pairs.extend(own.iter().cloned());
        ConfigSource::from_pairs(pairs)
    }

    /// The endpoint (and, with auth on, the token) `caller` reaches the service `name`
    /// (CUSTOMER, SCORING) at.
    fn upstream(
        &self,
        name: &str,
        addr: SocketAddr,
        caller: &str,
        granted: &[&str],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut pairs = vec![pair(
            &format!("TIERLINE_{name}_ENDPOINT"),
            format!("http://{addr}"),
        )];
        if let Some(secret) = &self.secret {
            let token = Claims::granting(caller, granted, epoch_seconds() + TOKEN_LIFETIME_SECONDS)
                .sign_hs256(secret)?;
            pairs.push(pair(&format!("TIERLINE_{name}_TOKEN"), token));
        }
        Ok(pairs)
    }

    /// Starts the customer, scoring and (unless left out) campaign services, in that order,
    /// each once the one before it reports SERVING (its migrations done): each reaches the ones
    /// before it, and a feed follower that starts against a service still migrating only backs
    /// off and starts late. They run until `stop` is cancelled.
    pub async fn start(self, stop: &CancellationToken) -> anyhow::Result<Running> {
        let mut tasks = JoinSet::new();
        let customer = self.start_customer(stop, &mut tasks).await?;
        let scoring = self.start_scoring(customer, stop, &mut tasks).await?;
        let campaign = if self.with_campaign {
            Some(
                self.start_campaign(customer, scoring, stop, &mut tasks)
                    .await?,
            )
        } else {
            None
        };
        Ok(Running {
            customer,
            scoring,
            campaign,
            tasks,
        })
    }

    /// Starts the customer service, running in `tasks` until `stop`; where it listens, once it
    /// reports SERVING.
    pub async fn start_customer(
        &self,
        stop: &CancellationToken,
        tasks: &mut JoinSet<Result<(), StartError>>,
    ) -> anyhow::Result<SocketAddr> {
        let file = match &self.storage {
            Storage::Postgres { .. } => None,
            Storage::Sqlite { customer, .. } => Some(customer),
        };
        let source = self.source(self.addr(0), Vec::new(), &self.customer);
        start_one::<CustomerService>(file, &source, stop, tasks).await
    }

    /// Starts a scoring service that reaches the customer service at `customer`, running in
    /// `tasks` until `stop`; where it listens, once it reports SERVING.
    pub async fn start_scoring(
        &self,
        customer: SocketAddr,
        stop: &CancellationToken,
        tasks: &mut JoinSet<Result<(), StartError>>,
    ) -> anyhow::Result<SocketAddr> {
        self.start_scoring_at(self.addr(1), customer, stop, tasks)
            .await
    }

    /// Starts one more scoring replica, on any free port, beside the `running` ones (on
    /// Postgres it stands by for the activity feed while the first replica leads); where it
    /// listens.
    pub async fn start_scoring_replica(
        &self,
        running: &mut Running,
        stop: &CancellationToken,
    ) -> anyhow::Result<SocketAddr> {
        let any_port = SocketAddr::new(self.customer_addr.ip(), 0);
        self.start_scoring_at(any_port, running.customer, stop, &mut running.tasks)
            .await
    }

    /// Starts a campaign service that reaches the customer and scoring services at `customer`
    /// and `scoring`, running in `tasks` until `stop`; where it listens, once it reports
    /// SERVING.
    pub async fn start_campaign(
        &self,
        customer: SocketAddr,
        scoring: SocketAddr,
        stop: &CancellationToken,
        tasks: &mut JoinSet<Result<(), StartError>>,
    ) -> anyhow::Result<SocketAddr> {
        let file = match &self.storage {
            Storage::Postgres { .. } => None,
            Storage::Sqlite { campaign, .. } => Some(campaign),
        };
        let mut upstreams =
            self.upstream("CUSTOMER", customer, "campaign", CAMPAIGN_TO_CUSTOMER)?;
        upstreams.extend(self.upstream("SCORING", scoring, "campaign", CAMPAIGN_TO_SCORING)?);
        let source = self.source(self.addr(2), upstreams, &self.campaign);
        start_one::<CampaignService>(file, &source, stop, tasks).await
    }

    /// Starts a scoring service at `addr` that reaches the customer service at `customer`.
    async fn start_scoring_at(
        &self,
        addr: SocketAddr,
        customer: SocketAddr,
        stop: &CancellationToken,
        tasks: &mut JoinSet<Result<(), StartError>>,
    ) -> anyhow::Result<SocketAddr> {
        let file = match &self.storage {
            Storage::Postgres { .. } => None,
            Storage::Sqlite { scoring, .. } => Some(scoring),
        };
        let upstreams = self.upstream("CUSTOMER", customer, "scoring", SCORING_TO_CUSTOMER)?;
        let source = self.source(addr, upstreams, &self.scoring);
        start_one::<ScoringService>(file, &source, stop, tasks).await
    }
}

/// Starts one service on Postgres, or on its SQLite file when there is one, runs it in `tasks`
/// until `stop`, and waits until it reports SERVING; where it listens.
async fn start_one<S: Service>(
    sqlite_file: Option<&String>,
    source: &ConfigSource,
    stop: &CancellationToken,
    tasks: &mut JoinSet<Result<(), StartError>>,
) -> anyhow::Result<SocketAddr> {
    let name = S::SPEC.name;
    let app = match sqlite_file {
        None => {
            let config =
                S::config(source, Backend::Postgres).with_context(|| format!("{name} settings"))?;
            Application::<S>::build(config).await
        }
        Some(file) => {
            let config =
                S::config(source, Backend::Embedded).with_context(|| format!("{name} settings"))?;
            let store = S::open_embedded(file).await?;
            Application::<S>::embedded(config, store).await
        }
    }
    .with_context(|| format!("starting {name}"))?;
    let addr = app.local_addr();
    tasks.spawn(app.run_until(stop.clone().cancelled_owned()));
    until_serving(addr, READY_WITHIN).await?;
    Ok(addr)
}
