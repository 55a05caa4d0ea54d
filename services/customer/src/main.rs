//! `tierline-customer`: serve the customer service (default) or apply its migrations.

use clap::{Parser, Subcommand};
use tierline_customer::{Application, CustomerConfig, app::migrate_only};

#[derive(Debug, Parser)]
#[command(
    name = "tierline-customer",
    about = "Tierline customer service",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gRPC API until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}

tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = CustomerConfig::from_env()?;
    let _telemetry = tierline_runtime::telemetry::init(&config.telemetry)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            migrate_only(&config).await?;
            tracing::info!("migrations applied");
        }
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until(tierline_runtime::server::shutdown_signal())
                .await?;
        }
    }
    Ok(())
}
