//! The setting groups every service has: gRPC server, telemetry, auth, database.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use super::{ConfigReader, Secret};

/// The gRPC server and its limits.
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    /// `TIERLINE_GRPC_ADDR`: where the business API listens (port 0 picks a free port).
    pub addr: SocketAddr,
    /// `TIERLINE_METRICS_ADDR`: where Prometheus scrapes `/metrics`; `off` disables it.
    pub metrics_addr: Option<SocketAddr>,
    /// `TIERLINE_GRPC_MAX_MESSAGE_BYTES`: largest request or response message.
    pub max_message_bytes: usize,
    /// `TIERLINE_GRPC_CONCURRENCY_LIMIT`: most requests served at once by this replica.
    pub concurrency_limit: usize,
    /// `TIERLINE_GRPC_REQUEST_TIMEOUT`: unary calls still running after this fail with CANCELLED.
    pub request_timeout: Duration,
    /// `TIERLINE_GRPC_REFLECTION`: serve grpc.reflection.v1 and v1alpha (for grpcurl and similar
    /// tools).
    pub reflection: bool,
    /// `TIERLINE_SHUTDOWN_GRACE`: how long in-flight calls may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// `TIERLINE_SHUTDOWN_DELAY`: how long to keep accepting calls after reporting NOT_SERVING,
    /// so that load balancers stop routing here first (5s suits Kubernetes).
    pub shutdown_delay: Duration,
    /// `TIERLINE_TLS_*`: serve TLS (and require client certificates) when set.
    pub tls: Option<TlsSettings>,
}

/// TLS for the server, optionally mutual.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `TIERLINE_TLS_CERT_FILE`: PEM certificate chain.
    pub cert_file: PathBuf,
    /// `TIERLINE_TLS_KEY_FILE`: PEM private key.
    pub key_file: PathBuf,
    /// `TIERLINE_TLS_CLIENT_CA_FILE`: when set, clients must present a certificate signed by it.
    pub client_ca_file: Option<PathBuf>,
}

impl GrpcSettings {
    /// Reads the gRPC settings; `default_port` and `default_metrics_port` differ per service.
    pub fn read(
        reader: &mut ConfigReader<'_>,
        default_port: u16,
        default_metrics_port: u16,
    ) -> Self {
        let addr = reader.parse(
            "TIERLINE_GRPC_ADDR",
            SocketAddr::from(([0, 0, 0, 0], default_port)),
        );
        let metrics_raw = reader.string(
            "TIERLINE_METRICS_ADDR",
            &format!("0.0.0.0:{default_metrics_port}"),
        );
        let metrics_addr = if metrics_raw.eq_ignore_ascii_case("off") {
            None
        } else {
            match metrics_raw.parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    reader.problem(format!(
                        "TIERLINE_METRICS_ADDR={metrics_raw:?} is not host:port or off"
                    ));
                    None
                }
            }
        };
        let tls = match (
            reader.optional_string("TIERLINE_TLS_CERT_FILE"),
            reader.optional_string("TIERLINE_TLS_KEY_FILE"),
        ) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert_file: cert.into(),
                key_file: key.into(),
                client_ca_file: reader
                    .optional_string("TIERLINE_TLS_CLIENT_CA_FILE")
                    .map(PathBuf::from),
            }),
            (None, None) => None,
            _ => {
                reader.problem(
                    "TIERLINE_TLS_CERT_FILE and TIERLINE_TLS_KEY_FILE must be set together",
                );
                None
            }
        };
        Self {
            addr,
            metrics_addr,
            max_message_bytes: reader.number_in(
                "TIERLINE_GRPC_MAX_MESSAGE_BYTES",
                16 * 1024 * 1024,
                1024..=256 * 1024 * 1024,
            ),
            concurrency_limit: reader.number_in(
                "TIERLINE_GRPC_CONCURRENCY_LIMIT",
                1024,
                1..=1_000_000,
            ),
            request_timeout: reader
                .duration("TIERLINE_GRPC_REQUEST_TIMEOUT", Duration::from_secs(30)),
            reflection: reader.bool("TIERLINE_GRPC_REFLECTION", true),
            shutdown_grace: reader.duration("TIERLINE_SHUTDOWN_GRACE", Duration::from_secs(20)),
            shutdown_delay: reader.duration("TIERLINE_SHUTDOWN_DELAY", Duration::ZERO),
            tls,
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs and traces.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// The service name in logs and traces.
    pub service_name: String,
    /// `TIERLINE_LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `TIERLINE_LOG`: a filter of the logs only, such as `info` or
    /// `info,tierline_customer=debug`.
    pub log_filter: String,
    /// `TIERLINE_OTLP_ENDPOINT`: OTLP/gRPC collector (e.g. `http://otel-collector:4317`); traces are
    /// not exported when unset.
    pub otlp_endpoint: Option<String>,
    /// `TIERLINE_TRACE_FILTER`: which spans are traced, as a filter of its own (the logs' does not
    /// apply to traces).
    pub trace_filter: String,
    /// `TIERLINE_TRACE_SAMPLE_RATIO`: the share of new traces kept, 0 to 1; a call that arrives
    /// inside a trace follows its caller's sampled flag.
    pub trace_sample_ratio: f64,
}

impl TelemetrySettings {
    /// Reads the telemetry settings for `service_name`.
    pub fn read(reader: &mut ConfigReader<'_>, service_name: &str) -> Self {
        let log_format = match reader.choice("TIERLINE_LOG_FORMAT", "text", &["text", "json"]) {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        Self {
            service_name: service_name.to_owned(),
            log_format,
            log_filter: reader.string("TIERLINE_LOG", "info"),
            otlp_endpoint: reader.optional_string("TIERLINE_OTLP_ENDPOINT"),
            trace_filter: reader.string("TIERLINE_TRACE_FILTER", "info"),
            trace_sample_ratio: reader.number_in("TIERLINE_TRACE_SAMPLE_RATIO", 1.0, 0.0..=1.0),
        }
    }
}

/// Whether callers must present a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer JWTs are required and checked for scopes.
    Jwt,
    /// Every call is allowed; only by explicit setting, and a warning is logged at start.
    Disabled,
}

/// Token verification.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `TIERLINE_AUTH_MODE`: `jwt` (default) or `disabled`.
    pub mode: AuthMode,
    /// `TIERLINE_AUTH_HS256_SECRET`: shared secret for HS256 tokens.
    pub hs256_secret: Option<Secret>,
    /// `TIERLINE_AUTH_RS256_PUBLIC_KEYS`: PEM public keys for RS256 tokens, read from the
    /// comma-separated files this names (rotation: list the old and the new key).
    pub rs256_public_keys_pem: Vec<String>,
    /// `TIERLINE_AUTH_ISSUER`: required `iss` claim, when set.
    pub issuer: Option<String>,
    /// `TIERLINE_AUTH_AUDIENCE`: required `aud` claim, when set.
    pub audience: Option<String>,
    /// `TIERLINE_AUTH_LEEWAY`: clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
}

impl AuthSettings {
    /// Reads and checks the auth settings: `jwt` mode needs at least one key.
    pub fn read(reader: &mut ConfigReader<'_>) -> Self {
        let mode = match reader.choice("TIERLINE_AUTH_MODE", "jwt", &["jwt", "disabled"]) {
            "disabled" => AuthMode::Disabled,
            _ => AuthMode::Jwt,
        };
        let hs256_secret = reader.optional_secret("TIERLINE_AUTH_HS256_SECRET");
        if hs256_secret
            .as_ref()
            .is_some_and(|secret| secret.expose().len() < crate::auth::MIN_HS256_SECRET_BYTES)
        {
            reader.problem(format!(
                "TIERLINE_AUTH_HS256_SECRET must be at least {} bytes",
                crate::auth::MIN_HS256_SECRET_BYTES
            ));
        }
        let mut rs256_public_keys_pem = Vec::new();
        for path in reader
            .string("TIERLINE_AUTH_RS256_PUBLIC_KEYS", "")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match std::fs::read_to_string(path) {
                Ok(pem) => rs256_public_keys_pem.push(pem),
                Err(error) => reader.problem(format!(
                    "TIERLINE_AUTH_RS256_PUBLIC_KEYS: cannot read {path}: {error}"
                )),
            }
        }
        if mode == AuthMode::Jwt && hs256_secret.is_none() && rs256_public_keys_pem.is_empty() {
            reader.problem(
                "TIERLINE_AUTH_MODE=jwt needs TIERLINE_AUTH_HS256_SECRET or TIERLINE_AUTH_RS256_PUBLIC_KEYS \
                 (or set TIERLINE_AUTH_MODE=disabled for local development)",
            );
        }
        Self {
            mode,
            hs256_secret,
            rs256_public_keys_pem,
            issuer: reader.optional_string("TIERLINE_AUTH_ISSUER"),
            audience: reader.optional_string("TIERLINE_AUTH_AUDIENCE"),
            leeway: reader.duration("TIERLINE_AUTH_LEEWAY", Duration::from_secs(30)),
        }
    }
}

/// The service's Postgres database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `TIERLINE_DATABASE_URL`: `postgres://user:password@host:port/database` (secret).
    pub url: Secret,
    /// `TIERLINE_DB_MAX_CONNECTIONS`: pool size per replica.
    pub max_connections: u32,
    /// `TIERLINE_DB_MIN_CONNECTIONS`: connections kept open when idle.
    pub min_connections: u32,
    /// `TIERLINE_DB_ACQUIRE_TIMEOUT`: how long a call waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// `TIERLINE_DB_STATEMENT_TIMEOUT`: Postgres `statement_timeout` of every connection.
    pub statement_timeout: Duration,
    /// `TIERLINE_MIGRATE_ON_START`: run pending migrations when serving starts.
    pub migrate_on_start: bool,
}

impl DatabaseSettings {
    /// Reads the database settings.
    pub fn read(reader: &mut ConfigReader<'_>) -> Self {
        let settings = Self {
            url: reader.required_secret("TIERLINE_DATABASE_URL"),
            max_connections: reader.number_in("TIERLINE_DB_MAX_CONNECTIONS", 20, 1..=1000),
            min_connections: reader.number_in("TIERLINE_DB_MIN_CONNECTIONS", 1, 0..=1000),
            acquire_timeout: reader.duration("TIERLINE_DB_ACQUIRE_TIMEOUT", Duration::from_secs(5)),
            statement_timeout: reader
                .duration("TIERLINE_DB_STATEMENT_TIMEOUT", Duration::from_secs(30)),
            migrate_on_start: reader.bool("TIERLINE_MIGRATE_ON_START", true),
        };
        if settings.min_connections > settings.max_connections {
            reader
                .problem("TIERLINE_DB_MIN_CONNECTIONS must not exceed TIERLINE_DB_MAX_CONNECTIONS");
        }
        let url = settings.url.expose();
        if !(url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            reader.problem("TIERLINE_DATABASE_URL must start with postgres:// or postgresql://");
        }
        settings
    }
}
