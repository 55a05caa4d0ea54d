//! Outgoing gRPC connections between services: one place that applies TLS (optionally mutual)
//! and forwards the caller's trace context, so every internal call is configured alike.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use tonic::{
    metadata::AsciiMetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{
    config::{ConfigReader, Secret},
    telemetry::propagation::inject_current_context,
};

/// How to reach another service.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `http://host:port`, or `https://host:port` for TLS.
    pub endpoint: String,
    /// CA that signed the server's certificate (TLS); the system roots are not used.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, for servers that require mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Name to verify in the server's certificate, when it differs from the endpoint's host.
    pub domain: Option<String>,
    /// Bearer token this service presents to the other one.
    pub token: Option<Secret>,
}

impl ClientSettings {
    /// Reads `TIERLINE_<NAME>_ENDPOINT` and the optional `TIERLINE_<NAME>_TOKEN`,
    /// `TIERLINE_<NAME>_TLS_CA_FILE`, `TIERLINE_<NAME>_TLS_CERT_FILE`, `TIERLINE_<NAME>_TLS_KEY_FILE`,
    /// `TIERLINE_<NAME>_TLS_DOMAIN`.
    pub fn read(reader: &mut ConfigReader<'_>, name: &str, default_endpoint: &str) -> Self {
        let key = |suffix: &str| format!("TIERLINE_{name}_{suffix}");
        let endpoint = reader.string(&key("ENDPOINT"), default_endpoint);
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            reader.problem(format!(
                "{}={endpoint:?} must start with http:// or https://",
                key("ENDPOINT")
            ));
        }
        let identity = match (
            reader.optional_string(&key("TLS_CERT_FILE")),
            reader.optional_string(&key("TLS_KEY_FILE")),
        ) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
            (None, None) => None,
            _ => {
                reader.problem(format!(
                    "{} and {} must be set together",
                    key("TLS_CERT_FILE"),
                    key("TLS_KEY_FILE")
                ));
                None
            }
        };
        Self {
            endpoint,
            ca_file: reader
                .optional_string(&key("TLS_CA_FILE"))
                .map(PathBuf::from),
            identity,
            domain: reader.optional_string(&key("TLS_DOMAIN")),
            token: reader.optional_secret(&key("TOKEN")),
        }
    }
}

/// A channel that could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A TLS file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The endpoint or TLS settings are invalid.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// The server did not report SERVING in time.
    #[error("{0}")]
    NotServing(String),
}

/// Waits, on the grpc.health.v1 watch stream of the plaintext server at `addr`, until it reports
/// SERVING (its migrations done, its database reachable), for at most `limit`: how a process that
/// starts services in dependency order knows the next may rely on the last.
pub async fn until_serving(addr: SocketAddr, limit: Duration) -> Result<(), ClientError> {
    use tierline_proto::tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let serving = async {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .map_err(|error| ClientError::NotServing(error.to_string()))?
            .connect()
            .await?;
        let mut updates = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|status| ClientError::NotServing(format!("health watch: {status}")))?
            .into_inner();
        while let Some(update) = updates
            .message()
            .await
            .map_err(|status| ClientError::NotServing(format!("health update: {status}")))?
        {
            if update.status() == ServingStatus::Serving {
                return Ok(());
            }
        }
        Err(ClientError::NotServing(format!(
            "{addr}: the health stream ended before SERVING"
        )))
    };
    tokio::time::timeout(limit, serving).await.map_err(|_| {
        ClientError::NotServing(format!("{addr} did not report SERVING within {limit:?}"))
    })?
}

/// Builds a lazily connecting channel: the other service may start after this one, and tonic
/// reconnects by itself after a failure. Wrap clients with [`Outgoing`].
pub fn channel(settings: &ClientSettings) -> Result<Channel, ClientError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| ClientError::File {
            path: path.display().to_string(),
            source,
        })
    };
    let mut endpoint = Endpoint::from_shared(settings.endpoint.clone())?.tcp_nodelay(true);
    if settings.ca_file.is_some()
        || settings.identity.is_some()
        || settings.endpoint.starts_with("https://")
    {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &settings.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let Some((cert, key)) = &settings.identity {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &settings.domain {
            tls = tls.domain_name(domain.clone());
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect_lazy())
}

/// What every outgoing call carries: the caller's trace context and, when configured, this
/// service's bearer token. Use as `XClient::with_interceptor(channel, Outgoing::new(&settings))`.
#[derive(Debug, Clone)]
pub struct Outgoing {
    authorization: Option<AsciiMetadataValue>,
}

impl Outgoing {
    /// The interceptor for calls described by `settings`.
    pub fn new(settings: &ClientSettings) -> Self {
        let authorization = settings.token.as_ref().and_then(|token| {
            AsciiMetadataValue::try_from(format!("Bearer {}", token.expose())).ok()
        });
        Self { authorization }
    }
}

impl tonic::service::Interceptor for Outgoing {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current_context(request.metadata_mut());
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        Ok(request)
    }
}
