//! Opens the three SQLite stores, starts the three services in this process, prints where they
//! are, optionally loads the demo, and runs until Ctrl-C or SIGTERM.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use tierline_campaign::{
    Application as CampaignApp, CampaignConfig, storage::sqlite::SqliteCampaignStore,
};
use tierline_customer::{
    Application as CustomerApp, CustomerConfig, storage::sqlite::SqliteCustomerStore,
};
use tierline_runtime::{auth::scopes, config::ConfigSource};
use tierline_scoring::{
    Application as ScoringApp, ScoringConfig, storage::sqlite::SqliteScoringStore,
};
use tokio_util::sync::CancellationToken;

use super::{demo, token};
use crate::{cli::DevArgs, connect::Endpoints, exit::Failure};

/// Where each service keeps its data.
struct Stores {
    customer: String,
    scoring: String,
    campaign: String,
    /// A throwaway run's directory, removed when the run ends.
    _throwaway: Option<Throwaway>,
}

/// A temporary directory removed on drop.
struct Throwaway(std::path::PathBuf);

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Stores {
    fn at(args: &DevArgs) -> anyhow::Result<Self> {
        // A throwaway run keeps its SQLite files in a temporary directory rather than in SQLite's
        // memory: an in-memory database has one connection, and the services' feeds and lookups
        // read while a writer works.
        let (directory, throwaway) = if args.memory {
            let directory =
                std::env::temp_dir().join(format!("tierline-dev-{}", uuid::Uuid::new_v4()));
            (directory.clone(), Some(Throwaway(directory)))
        } else {
            (args.data_dir.clone(), None)
        };
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        let file = |name: &str| format!("sqlite://{}", directory.join(name).display());
        Ok(Self {
            customer: file("customer.db"),
            scoring: file("scoring.db"),
            campaign: file("campaign.db"),
            _throwaway: throwaway,
        })
    }
}

/// Settings every service gets, and how the services reach each other.
struct Settings {
    common: Vec<(String, String)>,
    /// When auth is on: a token per calling service, minted with the dev secret.
    secret: Option<String>,
}

impl Settings {
    fn new(args: &DevArgs, telemetry_filter: &str) -> Self {
        let mut common = vec![
            ("TIERLINE_METRICS_ADDR".to_owned(), "off".to_owned()),
            ("TIERLINE_LOG".to_owned(), telemetry_filter.to_owned()),
            // The scheduler and the feeds react within a second, as a person trying it expects.
            ("TIERLINE_SCHEDULER_TICK".to_owned(), "1s".to_owned()),
        ];
        match &args.auth_secret {
            Some(secret) => common.push((
                "TIERLINE_AUTH_HS256_SECRET".to_owned(),
                secret.expose().to_owned(),
            )),
            None => common.push(("TIERLINE_AUTH_MODE".to_owned(), "disabled".to_owned())),
        }
        Self {
            common,
            secret: args
                .auth_secret
                .as_ref()
                .map(|secret| secret.expose().to_owned()),
        }
    }

    fn source(&self, port: u16, args: &DevArgs, extra: Vec<(String, String)>) -> ConfigSource {
        let mut pairs = self.common.clone();
        pairs.push((
            "TIERLINE_GRPC_ADDR".to_owned(),
            SocketAddr::new(args.host, port).to_string(),
        ));
        pairs.extend(extra);
        ConfigSource::from_pairs(pairs)
    }

    /// The endpoint and token settings of a client `name` (CUSTOMER, SCORING) for `caller`.
    fn upstream(
        &self,
        name: &str,
        address: SocketAddr,
        caller: &str,
        granted: &[&str],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut pairs = vec![(
            format!("TIERLINE_{name}_ENDPOINT"),
            format!("http://{address}"),
        )];
        if let Some(secret) = &self.secret {
            pairs.push((
                format!("TIERLINE_{name}_TOKEN"),
                super::token::mint(secret, caller, granted)?,
            ));
        }
        Ok(pairs)
    }
}

fn next_port(base: u16, offset: u16) -> u16 {
    if base == 0 {
        0
    } else {
        base.saturating_add(offset)
    }
}

/// Runs `tierline dev`.
pub(crate) async fn run(args: DevArgs) -> Result<(), Failure> {
    let _telemetry = quiet_logs(&args)?;
    let stores = Stores::at(&args)?;
    let settings = Settings::new(&args, &args.log);
    let stop = CancellationToken::new();
    let mut running = tokio::task::JoinSet::new();

    let customer_store = SqliteCustomerStore::open(&stores.customer)
        .await
        .map_err(|error| anyhow::anyhow!("customer store: {error}"))?;
    let customer = CustomerApp::embedded(
        // Phone numbers as Korean customers type them (010-1234-5678), as in the demo business.
        CustomerConfig::embedded_from_source(&settings.source(
            args.port,
            &args,
            vec![("TIERLINE_PHONE_REGION".to_owned(), "KR".to_owned())],
        ))
        .context("customer settings")?,
        Arc::new(customer_store),
    )
    .await
    .context("starting the customer service")?;
    let customer_addr = customer.local_addr();
    let token = stop.clone();
    running.spawn(async move { customer.run_until(token.cancelled_owned()).await });

    let scoring_store = SqliteScoringStore::open(&stores.scoring)
        .await
        .map_err(|error| anyhow::anyhow!("scoring store: {error}"))?;
    let scoring = ScoringApp::embedded(
        ScoringConfig::embedded_from_source(&settings.source(
            next_port(args.port, 1),
            &args,
            settings.upstream("CUSTOMER", customer_addr, "scoring", &[scopes::FEED_READ])?,
        ))
        .context("scoring settings")?,
        Arc::new(scoring_store),
    )
    .await
    .context("starting the scoring service")?;
    let scoring_addr = scoring.local_addr();
    let token = stop.clone();
    running.spawn(async move { scoring.run_until(token.cancelled_owned()).await });

    let campaign_store = SqliteCampaignStore::open(&stores.campaign)
        .await
        .map_err(|error| anyhow::anyhow!("campaign store: {error}"))?;
    let mut upstreams = settings.upstream(
        "CUSTOMER",
        customer_addr,
        "campaign",
        &[scopes::CUSTOMERS_READ, scopes::FEED_READ],
    )?;
    upstreams.extend(settings.upstream(
        "SCORING",
        scoring_addr,
        "campaign",
        &[
            scopes::PROGRAMS_ADMIN,
            scopes::TIERS_READ,
            scopes::FEED_READ,
        ],
    )?);
    let campaign = CampaignApp::embedded(
        CampaignConfig::embedded_from_source(&settings.source(
            next_port(args.port, 2),
            &args,
            upstreams,
        ))
        .context("campaign settings")?,
        Arc::new(campaign_store),
    )
    .await
    .context("starting the campaign service")?;
    let campaign_addr = campaign.local_addr();
    let token = stop.clone();
    running.spawn(async move { campaign.run_until(token.cancelled_owned()).await });

    let endpoints = Endpoints {
        customer: format!("http://{customer_addr}"),
        scoring: format!("http://{scoring_addr}"),
        campaign: format!("http://{campaign_addr}"),
        token: settings
            .secret
            .as_deref()
            .map(|secret| token::mint(secret, "tierline-dev", token::ALL))
            .transpose()?,
    };
    banner(&args, &endpoints);

    if args.demo {
        tokio::select! {
            loaded = demo::load(&endpoints, args.demo_customers) => loaded?,
            () = tierline_runtime::server::shutdown_signal() => {
                stop.cancel();
                return Ok(());
            }
        }
    }
    say("Ready. Ctrl-C stops.");

    tokio::select! {
        () = tierline_runtime::server::shutdown_signal() => {}
        Some(ended) = running.join_next() => {
            // A service stopped on its own: say why rather than serving two thirds of the API.
            stop.cancel();
            ended
                .context("a service task panicked")?
                .context("a service stopped")?;
        }
    }
    stop.cancel();
    // Each service drains its calls and stops its feeds; give them a moment, no more.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while running.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Service logs at `--log` (warnings by default), so the banner and progress stay readable.
fn quiet_logs(args: &DevArgs) -> anyhow::Result<tierline_runtime::telemetry::TelemetryGuard> {
    let source = ConfigSource::from_pairs([("TIERLINE_LOG", args.log.as_str())]);
    let mut reader = source.reader();
    let settings = tierline_runtime::config::TelemetrySettings::read(&mut reader, "tierline-dev");
    reader.finish().context("log settings")?;
    Ok(tierline_runtime::telemetry::init(&settings)?)
}

fn banner(args: &DevArgs, endpoints: &Endpoints) {
    let data = if args.memory {
        "in a temporary directory, deleted on exit (--memory)".to_owned()
    } else {
        format!("in {} (kept across restarts)", display(&args.data_dir))
    };
    let auth = if args.auth_secret.is_some() {
        "ON: callers need a token signed with the dev secret (tierline token)"
    } else {
        "OFF: every caller may do everything (--auth-secret turns it on)"
    };
    say(&format!(
        "Tierline dev: customer, scoring and campaign services in this process, no Postgres, no Redis.\n\
         Data: SQLite {data}.\n\
         Auth: {auth}.\n\
         customer  {}\n\
         scoring   {}\n\
         campaign  {}",
        endpoints.customer, endpoints.scoring, endpoints.campaign
    ));
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Prints a line for the person at the terminal (and for tests that read the endpoints).
pub(super) fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout (piped into `head`) is no reason to stop the services.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
