//! One module per subcommand family; each sends its requests and renders the answers.

mod activity;
mod campaign_card;
mod campaigns;
mod csv_import;
mod customer_card;
mod customers;
mod customers_import;
mod format;
mod program_card;
mod programs;
mod resolve;
mod status;
mod tier_card;
mod tier_trail;
mod tiers;
mod token;

use std::str::FromStr;

use tierline_proto::prost_types::Timestamp;

use crate::{
    cli::{Cli, Command},
    connect::Endpoints,
    exit::Failure,
    render::Render,
};

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let endpoints = Endpoints {
        customer: cli.customer_endpoint,
        scoring: cli.scoring_endpoint,
        campaign: cli.campaign_endpoint,
        token: cli.token,
    };
    let render = Render { json: cli.json };
    match cli.command {
        Command::Status => status::run(&endpoints, render).await,
        Command::Customers(command) => customers::run(&endpoints, render, command).await,
        Command::Activity(command) => activity::run(&endpoints, render, command).await,
        Command::Tiers(command) => tiers::run(&endpoints, render, command).await,
        Command::Programs(command) => programs::run(&endpoints, render, command).await,
        Command::Campaigns(command) => campaigns::run(&endpoints, render, command).await,
        Command::Dev(args) => crate::dev::run(args).await,
        Command::Token(args) => token::run(&args),
        Command::Completions { shell } => {
            completions(shell);
            Ok(())
        }
    }
}

/// Writes the completion script of `shell` to stdout (through the output's writer, so a closed
/// pipe ends it quietly).
fn completions(shell: clap_complete::Shell) {
    use clap::CommandFactory as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tierline", &mut script);
    crate::output::outln!("{}", String::from_utf8_lossy(&script).trim_end());
}

/// A `--birth-date` (or import column) as YYYY-MM-DD.
pub(crate) fn birth_date(text: &str) -> Result<tierline_proto::common::v1::Date, Failure> {
    let parts: Vec<i32> = text
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| Failure::Input(format!("--birth-date {text:?} is not YYYY-MM-DD")))?;
    match parts.as_slice() {
        [year, month, day] => Ok(tierline_proto::common::v1::Date {
            year: *year,
            month: *month,
            day: *day,
        }),
        _ => Err(Failure::Input(format!(
            "--birth-date {text:?} is not YYYY-MM-DD"
        ))),
    }
}

/// An RFC 3339 time flag.
pub(crate) fn timestamp(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    Timestamp::from_str(text)
        .map_err(|_| Failure::Input(format!("{flag} {text:?} is not an RFC 3339 time")))
}
