//! `tierline-token`: mints an HS256 bearer token for local use and tests, signed with the secret a
//! deployment trusts (`TIERLINE_AUTH_HS256_SECRET`). Production tokens come from your identity
//! provider (RS256); this is for development and smoke tests.
//!
//! Example: `TIERLINE_AUTH_HS256_SECRET=... cargo run -q -p tierline-tools --bin tierline-token -- \
//!     --subject pos-17 --scope customers:read --scope activity:write`

use clap::Parser;
use tierline_runtime::auth::{Claims, epoch_seconds};

#[derive(Debug, Parser)]
#[command(
    name = "tierline-token",
    about = "Mint an HS256 bearer token for Tierline",
    version
)]
struct Args {
    /// Who the token is for (the `sub` claim).
    #[arg(long, default_value = "developer")]
    subject: String,
    /// A scope to grant; repeat for several (customers:read, customers:write, activity:write,
    /// feed:read, tiers:read, programs:admin, campaigns:admin, deliveries:write).
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// The signing secret (at least 32 bytes).
    #[arg(long, env = "TIERLINE_AUTH_HS256_SECRET", hide_env_values = true)]
    secret: String,
    /// Issuer claim, when the deployment requires one.
    #[arg(long)]
    issuer: Option<String>,
    /// Audience claim, when the deployment requires one.
    #[arg(long)]
    audience: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.secret.len() >= 32,
        "the secret must be at least 32 bytes"
    );
    let claims = Claims {
        iss: args.issuer,
        aud: args.audience.map(Into::into),
        ..Claims::granting(&args.subject, &args.scopes, epoch_seconds() + args.ttl)
    };
    let token = claims.sign_hs256(&args.secret)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{token}");
    }
    Ok(())
}
