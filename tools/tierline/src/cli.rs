//! The command line: global flags (endpoints, token, `--json`) and one subcommand per thing
//! operators do.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate a Tierline deployment over gRPC.
#[derive(Debug, Parser)]
#[command(name = "tierline", version, about)]
pub(crate) struct Cli {
    /// The customer service.
    #[arg(
        long = "customer-endpoint",
        global = true,
        env = "TIERLINE_CUSTOMER_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub(crate) customer_endpoint: String,
    /// The scoring service.
    #[arg(
        long = "scoring-endpoint",
        global = true,
        env = "TIERLINE_SCORING_ENDPOINT",
        default_value = "http://127.0.0.1:50052"
    )]
    pub(crate) scoring_endpoint: String,
    /// The campaign service.
    #[arg(
        long = "campaign-endpoint",
        global = true,
        env = "TIERLINE_CAMPAIGN_ENDPOINT",
        default_value = "http://127.0.0.1:50053"
    )]
    pub(crate) campaign_endpoint: String,
    /// Bearer token presented to every service (not needed when auth is off).
    #[arg(long, global = true, env = "TIERLINE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Print answers as protobuf JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Health of the three services (exit 7 when one is not serving).
    Status,
    /// Customers and consents.
    #[command(subcommand)]
    Customers(Customers),
    /// Purchases and refunds.
    #[command(subcommand)]
    Activity(Activity),
    /// Tiers: the current one, why, and the history.
    #[command(subcommand)]
    Tiers(Tiers),
    /// Tier programs and their policies.
    #[command(subcommand)]
    Programs(Programs),
    /// Campaigns.
    #[command(subcommand)]
    Campaigns(Campaigns),
    /// Runs all three services in this process on embedded SQLite, with no Postgres and no
    /// Redis, for trying Tierline (`--demo` loads a synthetic business).
    Dev(DevArgs),
    /// Mints an HS256 bearer token signed with the secret a deployment trusts
    /// (`TIERLINE_AUTH_HS256_SECRET`), for development and smoke tests; production tokens come
    /// from your identity provider (RS256).
    Token(TokenArgs),
    /// Prints the completion script of a shell, e.g.
    /// `tierline completions bash > /etc/bash_completion.d/tierline`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `tierline token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Who the token is for (the `sub` claim).
    #[arg(long, default_value = "developer")]
    pub(crate) subject: String,
    /// A scope to grant; repeat for several (customers:read, customers:write, activity:write,
    /// feed:read, tiers:read, programs:admin, campaigns:admin, deliveries:write).
    #[arg(long = "scope", required = true)]
    pub(crate) scopes: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) ttl: u64,
    /// The signing secret (at least 32 bytes).
    #[arg(long, env = "TIERLINE_AUTH_HS256_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    /// Issuer claim, when the deployment requires one.
    #[arg(long)]
    pub(crate) issuer: Option<String>,
    /// Audience claim, when the deployment requires one.
    #[arg(long)]
    pub(crate) audience: Option<String>,
}

/// `tierline dev`.
#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Directory of the SQLite files, kept across restarts.
    #[arg(long, default_value = ".tierline")]
    pub(crate) data_dir: std::path::PathBuf,
    /// A throwaway run: nothing survives the process (the files live in a temporary directory).
    #[arg(long)]
    pub(crate) memory: bool,
    /// Load a synthetic business first: customers, a year of purchases, both example programs
    /// and a finished campaign with a holdout.
    #[arg(long)]
    pub(crate) demo: bool,
    /// Customers the demo creates.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    pub(crate) demo_customers: u32,
    /// Address the services listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: std::net::IpAddr,
    /// Port of the customer service; the scoring and campaign services take the next two. 0
    /// picks three free ports (the banner says which).
    #[arg(long, default_value_t = 50051)]
    pub(crate) port: u16,
    /// Turns authentication on: callers need HS256 tokens signed with this secret (at least 32
    /// bytes; `tierline token` mints them).
    #[arg(long, env = "TIERLINE_AUTH_HS256_SECRET", hide_env_values = true)]
    pub(crate) auth_secret: Option<tierline_runtime::config::Secret>,
    /// Log filter of the services (`info`, `debug`, `tierline_scoring=debug`, …).
    #[arg(long, env = "TIERLINE_LOG", default_value = "warn")]
    pub(crate) log: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Customers {
    /// Creates a customer.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// E-mail address.
        #[arg(long, default_value = "")]
        email: String,
        /// Phone number: E.164, an international form, or the service region's national form.
        #[arg(long, default_value = "")]
        phone: String,
        /// Date of birth, YYYY-MM-DD.
        #[arg(long)]
        birth_date: Option<String>,
        /// The caller's own id.
        #[arg(long, default_value = "")]
        external_id: String,
        /// Attributes, `key=value`, repeatable.
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// Gets a customer by id.
    Get {
        /// Customer id.
        id: String,
    },
    /// Lists customers in creation order, a page at a time (the next page's token goes to
    /// stderr).
    List {
        /// Only active or only erased customers.
        #[arg(long, value_enum)]
        status: Option<CustomerState>,
        /// Customers per page, 1 to 1,000.
        #[arg(long, default_value_t = 100)]
        page_size: i32,
        /// The token a previous page printed.
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Finds customers by e-mail, phone (any accepted form) or external id: the call centre's
    /// first question.
    #[command(group(clap::ArgGroup::new("by").required(true).multiple(true)))]
    Find {
        /// E-mail address (any case).
        #[arg(long, group = "by")]
        email: Option<String>,
        /// Phone number, e.g. 010-1234-5678 or +82 10-1234-5678.
        #[arg(long, group = "by")]
        phone: Option<String>,
        /// The caller's own id (a card number).
        #[arg(long, group = "by")]
        external_id: Option<String>,
    },
    /// Onboards customers from a CSV file through ImportCustomers, idempotent by external id
    /// (header: external_id,name,email,phone,birth_date,joined_at,attributes,email_consent,
    /// sms_consent,push_consent); progress on stderr, then created, unchanged, updated and
    /// rejected rows.
    Import {
        /// The CSV file.
        file: String,
        /// Customers per batch (one transaction each), 1 to 10,000.
        #[arg(long, default_value_t = 5_000)]
        batch: usize,
        /// The source recorded with the consents.
        #[arg(long, default_value = "csv-import")]
        source: String,
    },
    /// Grants or revokes consent for a channel.
    Consent {
        /// Customer id.
        id: String,
        /// The channel.
        #[arg(long, value_enum)]
        channel: ContactChannel,
        /// Revoke instead of grant.
        #[arg(long)]
        revoke: bool,
        /// Where the change comes from.
        #[arg(long, default_value = "cli")]
        source: String,
    },
}

/// A contact channel.
/// A customer's status, as a filter.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CustomerState {
    /// Not erased.
    Active,
    /// Erased (personal data removed).
    Erased,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ContactChannel {
    Email,
    Sms,
    Push,
}

#[derive(Debug, Args)]
pub(crate) struct Money {
    /// Amount in minor units (cents, won).
    #[arg(long)]
    pub(crate) amount: i64,
    /// ISO 4217 currency.
    #[arg(long)]
    pub(crate) currency: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Activity {
    /// Records a purchase.
    Purchase {
        /// Customer id.
        #[arg(long)]
        customer: String,
        #[command(flatten)]
        money: Money,
        /// Idempotency key, unique per purchase.
        #[arg(long)]
        key: String,
        /// When it happened (RFC 3339); now when absent.
        #[arg(long)]
        at: Option<String>,
        /// Brand.
        #[arg(long, default_value = "")]
        brand: String,
        /// Sales channel (store, online, app, …).
        #[arg(long, default_value = "")]
        sales_channel: String,
    },
    /// Records a refund of (part of) a purchase.
    Refund {
        /// Customer id.
        #[arg(long)]
        customer: String,
        /// The purchase refunded.
        #[arg(long)]
        purchase: String,
        #[command(flatten)]
        money: Money,
        /// Idempotency key, unique per refund.
        #[arg(long)]
        key: String,
        /// When it happened (RFC 3339); now when absent.
        #[arg(long)]
        at: Option<String>,
    },
    /// Imports purchases and refunds from a CSV file with the header
    /// `kind,key,customer_id,amount_minor,currency,occurred_at,brand,sales_channel,purchase_id`.
    Import {
        /// The CSV file.
        file: String,
        /// Rows per batch (1 to 10,000).
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TierTarget {
    /// Program id or code.
    #[arg(long)]
    pub(crate) program: String,
    /// Customer id or external id.
    pub(crate) customer: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Tiers {
    /// The customer's tier now, with the gap to the next one.
    Get(TierTarget),
    /// Why the customer holds the tier.
    Explain(TierTarget),
    /// The customer's tier history, newest first.
    History(TierTarget),
    /// The customer's scores: RFM, segment, lifecycle and predicted value.
    Scores(TierTarget),
}

#[derive(Debug, Subcommand)]
pub(crate) enum Programs {
    /// Lists programs.
    List,
    /// Shows one program.
    Show {
        /// Program code or id.
        id: String,
    },
    /// Creates a program from a protobuf JSON file (`tierline.scoring.v1.CreateProgramRequest`).
    Create {
        /// The file, e.g. examples/programs/innisfree/program.json.
        file: String,
    },
    /// Loads a policy file (`tierline.scoring.v1.PolicyRules`) as a new draft version.
    LoadPolicy {
        /// Program code or id.
        program: String,
        /// The file, e.g. examples/programs/innisfree/policy.json.
        file: String,
    },
    /// What activating a policy version would do: the migration matrix.
    Simulate {
        /// Program code or id.
        program: String,
        /// The policy version (usually a draft).
        policy_version: String,
    },
    /// Activates a draft policy version.
    Activate {
        /// The policy version.
        policy_version: String,
    },
    /// The program's customer value model (BG/NBD and Gamma-Gamma) as last fitted.
    ValueModel {
        /// Program code or id.
        program: String,
        /// Fit it again now, on the whole population, first.
        #[arg(long)]
        fit: bool,
    },
    /// Starts an evaluation of every member now.
    Evaluate {
        /// Program code or id.
        program: String,
        /// Idempotency key (a retry with the same key returns the first run instead of opening
        /// a second).
        #[arg(long, default_value = "")]
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Campaigns {
    /// Creates a campaign from a protobuf JSON file (`tierline.campaign.v1.Campaign`).
    Create {
        /// The file.
        file: String,
        /// Idempotency key (a retry with the same key returns the first campaign).
        #[arg(long, default_value = "")]
        key: String,
    },
    /// Previews a stored campaign's audience.
    Preview {
        /// Campaign id or name.
        id: String,
    },
    /// Launches a campaign now.
    Launch {
        /// Campaign id or name.
        id: String,
    },
    /// The campaign's measured effect.
    Report {
        /// Campaign id or name.
        id: String,
    },
}
