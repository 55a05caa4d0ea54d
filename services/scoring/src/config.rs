//! The scoring service's configuration: the shared groups (docs/CONFIGURATION.md). Its own
//! settings (the customer service endpoint for the feed, Redis, the scheduler) come with the
//! parts of the service that use them.

use tierline_runtime::{
    client::ClientSettings,
    config::{
        AuthSettings, ConfigError, ConfigSource, DatabaseSettings, GrpcSettings, TelemetrySettings,
    },
};

use crate::{
    activity_follower::ConsumerSettings,
    cache::{CacheSettings, RedisTopology},
    domain::evaluation::FeedWait,
};

/// The gRPC port the scoring service listens on by default.
pub const DEFAULT_GRPC_PORT: u16 = 50052;
/// The metrics port by default.
pub const DEFAULT_METRICS_PORT: u16 = 9152;

/// Everything the scoring service reads at start.
#[derive(Debug, Clone)]
pub struct ScoringConfig {
    /// gRPC server.
    pub grpc: GrpcSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Token checks.
    pub auth: AuthSettings,
    /// Postgres; `None` when the store is embedded (the development mode).
    pub database: Option<DatabaseSettings>,
    /// `TIERLINE_FEED_CONSUMER`: whether this replica takes part in consuming the activity feed
    /// (one replica leads at a time); `TIERLINE_CUSTOMER_*`: where the feed comes from.
    pub consumer: Option<ConsumerSettings>,
    /// `TIERLINE_REDIS_*`, `TIERLINE_CACHE_TTL`, `TIERLINE_NEAR_CACHE_*`: the tier cache.
    pub cache: CacheSettings,
    /// `TIERLINE_SCHEDULER`: whether this replica runs the evaluation scheduler (every replica
    /// may: each due time runs once).
    pub scheduler: bool,
    /// `TIERLINE_LIFECYCLE_SWEEP`: how often members' lifecycle states are swept (with the
    /// scheduler).
    pub lifecycle_sweep: std::time::Duration,
    /// `TIERLINE_EVALUATION_FEED_MARGIN`, `TIERLINE_EVALUATION_FEED_WAIT`: how long a scheduled
    /// evaluation waits for the activity feed to bring the period it judges.
    pub evaluation_feed: FeedWait,
}

impl ScoringConfig {
    /// Reads and validates the configuration; every problem is reported at once.
    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        Self::read(source, true)
    }

    /// Reads the configuration of a service whose store is embedded: the same settings without
    /// the database group (`TIERLINE_DATABASE_*` is neither required nor read).
    pub fn embedded_from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        Self::read(source, false)
    }

    fn read(source: &ConfigSource, with_database: bool) -> Result<Self, ConfigError> {
        let mut reader = source.reader();
        let config = Self {
            grpc: GrpcSettings::read(&mut reader, DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT),
            telemetry: TelemetrySettings::read(&mut reader, "tierline-scoring"),
            auth: AuthSettings::read(&mut reader),
            database: with_database.then(|| DatabaseSettings::read(&mut reader)),
            consumer: None,
            scheduler: reader.bool("TIERLINE_SCHEDULER", true),
            lifecycle_sweep: reader.duration(
                "TIERLINE_LIFECYCLE_SWEEP",
                std::time::Duration::from_secs(3600),
            ),
            evaluation_feed: FeedWait {
                margin: reader.duration(
                    "TIERLINE_EVALUATION_FEED_MARGIN",
                    std::time::Duration::from_secs(300),
                ),
                limit: reader.duration(
                    "TIERLINE_EVALUATION_FEED_WAIT",
                    std::time::Duration::from_secs(1800),
                ),
            },
            cache: CacheSettings {
                url: reader.optional_secret("TIERLINE_REDIS_URL"),
                topology: match reader.choice(
                    "TIERLINE_REDIS_TOPOLOGY",
                    "standalone",
                    &["standalone", "cluster"],
                ) {
                    "cluster" => RedisTopology::Cluster,
                    _ => RedisTopology::Standalone,
                },
                timeout: reader.duration(
                    "TIERLINE_REDIS_TIMEOUT",
                    std::time::Duration::from_millis(50),
                ),
                ttl: reader.duration("TIERLINE_CACHE_TTL", std::time::Duration::from_secs(3600)),
                near_records: reader.number_in(
                    "TIERLINE_NEAR_CACHE_RECORDS",
                    1_000_000,
                    0..=100_000_000,
                ),
                near_ttl: reader.duration(
                    "TIERLINE_NEAR_CACHE_TTL",
                    std::time::Duration::from_secs(300),
                ),
            },
        };
        let mut config = config;
        if reader.bool("TIERLINE_FEED_CONSUMER", true) {
            config.consumer = Some(ConsumerSettings {
                customer: ClientSettings::read(&mut reader, "CUSTOMER", "http://127.0.0.1:50051"),
                batch_size: reader.number_in("TIERLINE_FEED_CONSUMER_BATCH", 5_000, 1..=10_000),
                partitions: reader.number_in("TIERLINE_FEED_CONSUMER_PARTITIONS", 2, 1..=16),
            });
        }
        reader.finish()?;
        Ok(config)
    }
}
