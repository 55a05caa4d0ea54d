//! Typed configuration shared by every service, read from `TIERLINE_*` environment variables (and
//! an optional file), validated once at start. Each service adds its own settings next to these.
//! docs/CONFIGURATION.md lists every variable.

mod secret;
mod settings;
mod source;

pub use secret::Secret;
pub use settings::{
    AuthMode, AuthSettings, DatabaseSettings, GrpcSettings, LogFormat, TelemetrySettings,
    TlsSettings,
};
pub use source::{
    CONFIG_FILE_VAR, ConfigError, ConfigReader, ConfigSource, PREFIX, parse_duration,
};
