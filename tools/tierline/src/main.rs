//! `tierline`: the operator CLI. Talks gRPC to any Tierline deployment (local or Kubernetes):
//! customers and consents, purchases and refunds (one by one or a CSV import), tiers and their
//! explanations, programs and policies, campaigns and their reports, and the health of all three
//! services. Human tables by default, `--json` (protobuf JSON) for scripts; the exit code says
//! what happened (see [`exit`]). `tierline dev` runs the whole platform in this process on
//! embedded SQLite, for trying it (see [`dev`]).

mod cli;
mod commands;
mod connect;
mod dev;
mod exit;
mod json;
mod output;
mod render;

use clap::Parser;

tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let outcome = commands::run(cli).await;
    exit::report(outcome)
}
