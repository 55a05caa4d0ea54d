//! The scoring service's configuration: the shared groups (docs/CONFIGURATION.md). Its own
//! settings (the customer service endpoint for the feed, Redis, the scheduler) come with the
//! parts of the service that use them.

use tierline_runtime::config::{
    AuthSettings, ConfigError, ConfigSource, DatabaseSettings, GrpcSettings, TelemetrySettings,
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
    /// Postgres.
    pub database: DatabaseSettings,
}

impl ScoringConfig {
    /// Reads and validates the configuration; every problem is reported at once.
    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        let mut reader = source.reader();
        let config = Self {
            grpc: GrpcSettings::read(&mut reader, DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT),
            telemetry: TelemetrySettings::read(&mut reader, "tierline-scoring"),
            auth: AuthSettings::read(&mut reader),
            database: DatabaseSettings::read(&mut reader),
        };
        reader.finish()?;
        Ok(config)
    }

    /// Reads the configuration from the environment (and `TIERLINE_CONFIG_FILE`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ConfigSource::from_env()?)
    }
}
