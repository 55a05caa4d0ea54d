//! The campaign service's configuration: the shared groups (docs/CONFIGURATION.md) and its own
//! settings — where the scoring and customer services are, the frequency cap, the report's
//! minimum arm size, how long a launch call waits, and which background work this replica does.

use std::time::Duration;

use tierline_runtime::{
    client::ClientSettings,
    config::{
        AuthSettings, ConfigError, ConfigSource, DatabaseSettings, GrpcSettings, TelemetrySettings,
    },
};

use crate::{domain::enrolment::FrequencyCap, upstream::UpstreamSettings};

/// The gRPC port the campaign service listens on by default.
pub const DEFAULT_GRPC_PORT: u16 = 50053;
/// The metrics port by default.
pub const DEFAULT_METRICS_PORT: u16 = 9153;

/// Everything the campaign service reads at start.
#[derive(Debug, Clone)]
pub struct CampaignConfig {
    /// gRPC server.
    pub grpc: GrpcSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Token checks.
    pub auth: AuthSettings,
    /// Postgres; `None` when the store is embedded (the development mode).
    pub database: Option<DatabaseSettings>,
    /// `TIERLINE_SCORING_*` and `TIERLINE_CUSTOMER_*`: the services read for audiences,
    /// eligibility, triggers and attribution.
    pub upstream: UpstreamSettings,
    /// `TIERLINE_FREQUENCY_CAP_CONTACTS` per `TIERLINE_FREQUENCY_CAP_DAYS`.
    pub frequency_cap: FrequencyCap,
    /// `TIERLINE_MIN_ARM_SIZE`: the smallest arm for which uplift is reported.
    pub min_arm_size: i64,
    /// `TIERLINE_LAUNCH_WAIT`: how long `LaunchCampaign` waits before answering with progress.
    pub launch_wait: Duration,
    /// `TIERLINE_SCHEDULER`: whether this replica launches due campaigns, completes ended ones,
    /// resumes interrupted launches and runs the birthday sweep (every replica may).
    pub scheduler: bool,
    /// `TIERLINE_SCHEDULER_TICK`: how often the scheduler looks.
    pub scheduler_tick: Duration,
    /// `TIERLINE_FEED_CONSUMER`: whether this replica takes part in consuming the activity feed
    /// (attribution) and the tier-change feed (triggers); one replica leads each.
    pub feed_consumer: bool,
    /// `TIERLINE_FEED_CONSUMER_BATCH`: most feed events handled in one transaction.
    pub feed_batch: usize,
}

impl CampaignConfig {
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
            telemetry: TelemetrySettings::read(&mut reader, "tierline-campaign"),
            auth: AuthSettings::read(&mut reader),
            database: with_database.then(|| DatabaseSettings::read(&mut reader)),
            upstream: UpstreamSettings {
                scoring: ClientSettings::read(&mut reader, "SCORING", "http://127.0.0.1:50052"),
                customer: ClientSettings::read(&mut reader, "CUSTOMER", "http://127.0.0.1:50051"),
                clock_skew: reader.duration("TIERLINE_CLOCK_SKEW", Duration::from_secs(300)),
            },
            frequency_cap: FrequencyCap {
                contacts: reader.number_in("TIERLINE_FREQUENCY_CAP_CONTACTS", 3, 1..=1_000),
                days: reader.number_in("TIERLINE_FREQUENCY_CAP_DAYS", 7, 1..=365),
            },
            min_arm_size: reader.number_in("TIERLINE_MIN_ARM_SIZE", 30, 2..=10_000_000),
            launch_wait: reader.duration("TIERLINE_LAUNCH_WAIT", Duration::from_secs(20)),
            scheduler: reader.bool("TIERLINE_SCHEDULER", true),
            scheduler_tick: reader.duration("TIERLINE_SCHEDULER_TICK", Duration::from_secs(5)),
            feed_consumer: reader.bool("TIERLINE_FEED_CONSUMER", true),
            feed_batch: reader.number_in("TIERLINE_FEED_CONSUMER_BATCH", 500, 1..=10_000),
        };
        if config.scheduler_tick.is_zero() {
            reader.problem("TIERLINE_SCHEDULER_TICK must be longer than 0");
        }
        if config.upstream.clock_skew > Duration::from_secs(24 * 3600) {
            reader.problem("TIERLINE_CLOCK_SKEW must be at most 24h");
        }
        reader.finish()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_problem_at_once() {
        let required = [
            (
                "TIERLINE_AUTH_HS256_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            ("TIERLINE_DATABASE_URL", "postgres://127.0.0.1/tierline"),
        ];
        let config =
            CampaignConfig::from_source(&ConfigSource::from_pairs(required)).expect("valid");
        assert_eq!(config.grpc.addr.port(), DEFAULT_GRPC_PORT);
        assert_eq!(
            config.frequency_cap,
            FrequencyCap {
                contacts: 3,
                days: 7
            }
        );
        assert_eq!(config.min_arm_size, 30);
        assert_eq!(config.upstream.clock_skew, Duration::from_secs(300));
        assert_eq!(config.upstream.scoring.endpoint, "http://127.0.0.1:50052");

        let error = CampaignConfig::from_source(&ConfigSource::from_pairs([
            required[0],
            required[1],
            ("TIERLINE_FREQUENCY_CAP_CONTACTS", "0"),
            ("TIERLINE_SCORING_ENDPOINT", "scoring:50052"),
            ("TIERLINE_CLOCK_SKEW", "25h"),
        ]))
        .expect_err("invalid");
        let text = error.to_string();
        assert!(text.contains("TIERLINE_FREQUENCY_CAP_CONTACTS"), "{text}");
        assert!(
            text.contains("TIERLINE_CLOCK_SKEW must be at most 24h"),
            "{text}"
        );
        assert!(text.contains("TIERLINE_SCORING_ENDPOINT"), "{text}");
    }
}
