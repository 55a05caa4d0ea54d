//! Opens the three SQLite stores, starts the three services in this process, prints where they
//! are, optionally loads the demo, and runs until Ctrl-C or SIGTERM.

use std::{net::SocketAddr, path::Path, time::Duration};

use anyhow::Context;
use tierline_runtime::config::ConfigSource;
use tierline_topology::{Running, Storage, Topology};
use tokio_util::sync::CancellationToken;

use super::{demo, say, token};
use crate::{cli::DevArgs, connect::Endpoints, exit::Failure};

/// The SQLite files, in `--data-dir` or, for `--memory`, a temporary directory removed when the
/// run ends.
fn storage(args: &DevArgs) -> anyhow::Result<(Storage, Option<Throwaway>)> {
    // A throwaway run keeps its SQLite files in a temporary directory rather than in SQLite's
    // memory: an in-memory database has one connection, and the services' feeds and lookups
    // read while a writer works.
    let (directory, throwaway) = if args.memory {
        let directory = std::env::temp_dir().join(format!("tierline-dev-{}", uuid::Uuid::new_v4()));
        (directory.clone(), Some(Throwaway(directory)))
    } else {
        (args.data_dir.clone(), None)
    };
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("creating {}", directory.display()))?;
    let file = |name: &str| format!("sqlite://{}", directory.join(name).display());
    let storage = Storage::Sqlite {
        customer: file("customer.db"),
        scoring: file("scoring.db"),
        campaign: file("campaign.db"),
    };
    Ok((storage, throwaway))
}

/// A temporary directory removed on drop.
struct Throwaway(std::path::PathBuf);

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `tierline dev`.
pub(crate) async fn run(args: DevArgs) -> Result<(), Failure> {
    let _telemetry = quiet_logs(&args)?;
    let (storage, _throwaway) = storage(&args)?;
    let secret = args
        .auth_secret
        .as_ref()
        .map(|secret| secret.expose().to_owned());
    let mut topology = Topology::new(storage)
        .listening_at(SocketAddr::new(args.host, args.port))
        .setting("TIERLINE_LOG", &args.log)
        // The scheduler and the feeds react within a second, as a person trying it expects.
        .setting("TIERLINE_SCHEDULER_TICK", "1s")
        // Phone numbers as Korean customers type them (010-1234-5678), as in the demo business.
        .customer_setting("TIERLINE_PHONE_REGION", "KR");
    if let Some(secret) = &secret {
        topology = topology.with_auth(secret);
    }
    let stop = CancellationToken::new();
    let Running {
        customer,
        scoring,
        campaign,
        tasks: mut running,
    } = topology.start(&stop).await?;

    let endpoints = Endpoints {
        customer: format!("http://{customer}"),
        scoring: format!("http://{scoring}"),
        campaign: format!(
            "http://{}",
            campaign.context("the development mode starts the campaign service")?
        ),
        token: secret
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
