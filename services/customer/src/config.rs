//! The customer service's configuration: the shared groups plus its own settings. Every
//! variable is listed in docs/CONFIGURATION.md.

use std::time::Duration;

use tierline_runtime::config::{
    AuthSettings, ConfigError, ConfigSource, DatabaseSettings, GrpcSettings, TelemetrySettings,
};

use crate::{domain::validate::PhoneRegion, feed_server::FeedSettings};

/// The gRPC port the customer service listens on by default.
pub const DEFAULT_GRPC_PORT: u16 = 50051;
/// The metrics port by default.
pub const DEFAULT_METRICS_PORT: u16 = 9151;

/// Everything the customer service reads at start.
#[derive(Debug, Clone)]
pub struct CustomerConfig {
    /// gRPC server.
    pub grpc: GrpcSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Token checks.
    pub auth: AuthSettings,
    /// Postgres; `None` when the store is embedded (the development mode).
    pub database: Option<DatabaseSettings>,
    /// `TIERLINE_CLOCK_SKEW`: how far in the future an occurred_at may lie.
    pub clock_skew: Duration,
    /// `TIERLINE_FEED_*`: how feed watchers read.
    pub feed: FeedSettings,
    /// `TIERLINE_PHONE_REGION`: the region (ISO 3166 code such as `KR`) whose national phone
    /// formats are accepted (`010-1234-5678`); unset, only international forms are.
    pub phone_region: Option<PhoneRegion>,
    /// `TIERLINE_PURCHASE_WRITERS`: transactions writing single purchases at once; concurrent
    /// calls beyond that are coalesced into these transactions.
    pub purchase_writers: usize,
}

impl CustomerConfig {
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
        let defaults = FeedSettings::default();
        let config = Self {
            grpc: GrpcSettings::read(&mut reader, DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT),
            telemetry: TelemetrySettings::read(&mut reader, "tierline-customer"),
            auth: AuthSettings::read(&mut reader),
            database: with_database.then(|| DatabaseSettings::read(&mut reader)),
            clock_skew: reader.duration("TIERLINE_CLOCK_SKEW", Duration::from_secs(300)),
            phone_region: reader
                .optional_string("TIERLINE_PHONE_REGION")
                .and_then(|region| match PhoneRegion::parse(&region) {
                    Some(region) => Some(region),
                    None => {
                        reader.problem(format!(
                            "TIERLINE_PHONE_REGION={region} is not a region code such as KR or US"
                        ));
                        None
                    }
                }),
            purchase_writers: reader.number_in("TIERLINE_PURCHASE_WRITERS", 2, 1..=64),
            feed: FeedSettings {
                batch_size: reader.number_in(
                    "TIERLINE_FEED_BATCH_SIZE",
                    defaults.batch_size,
                    1..=10_000,
                ),
                idle_recheck: reader.duration("TIERLINE_FEED_IDLE_RECHECK", defaults.idle_recheck),
                ..defaults
            },
        };
        if config.clock_skew > Duration::from_secs(24 * 3600) {
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
    fn minimal_configuration_and_defaults() {
        let source = ConfigSource::from_pairs([
            ("TIERLINE_DATABASE_URL", "postgres://u:hunter2@localhost/db"),
            ("TIERLINE_AUTH_MODE", "disabled"),
        ]);
        let config = CustomerConfig::from_source(&source).expect("valid");
        assert_eq!(config.grpc.addr.port(), DEFAULT_GRPC_PORT);
        assert_eq!(config.clock_skew, Duration::from_secs(300));
        assert!(
            !format!("{config:?}").contains("hunter2"),
            "the database URL must not print"
        );
    }

    #[test]
    fn all_problems_are_listed() {
        let source = ConfigSource::from_pairs([
            ("TIERLINE_GRPC_ADDR", "nowhere"),
            ("TIERLINE_CLOCK_SKEW", "2d"),
        ]);
        let error = CustomerConfig::from_source(&source)
            .expect_err("invalid")
            .to_string();
        for expected in [
            "TIERLINE_GRPC_ADDR",
            "TIERLINE_CLOCK_SKEW",
            "TIERLINE_DATABASE_URL",
            "TIERLINE_AUTH_HS256_SECRET",
        ] {
            assert!(error.contains(expected), "{expected} missing from: {error}");
        }
    }
}
