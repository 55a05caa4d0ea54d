//! Logs and traces: a `tracing` subscriber writing text or JSON, and, when an OTLP endpoint is
//! configured, OpenTelemetry spans exported to it. W3C trace context crosses service boundaries
//! through gRPC metadata (see [`propagation`]).

pub mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracerProvider},
};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, TelemetrySettings};

/// Telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `TIERLINE_LOG` or `TIERLINE_TRACE_FILTER` is not a valid filter.
    #[error("TIERLINE_LOG or TIERLINE_TRACE_FILTER is not a valid filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the trace exporter alive; dropping it flushes spans not yet sent.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "trace exporter did not shut down cleanly");
        }
    }
}

/// Installs the global subscriber (logs, and traces when `otlp_endpoint` is set) and the W3C trace
/// context propagator. Call once, at the start of `main`.
///
/// Logs and traces are filtered apart: `TIERLINE_LOG=warn` quiets the logs and leaves the traces
/// as `TIERLINE_TRACE_FILTER` says. Which traces are kept is the sampler's: a ratio of new
/// traces, and the caller's decision for a call that arrives inside a trace, so one trace is kept
/// or dropped whole across the services. Text logs are coloured only on a terminal.
pub fn init(settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    use std::io::IsTerminal as _;

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let log_filter = EnvFilter::builder().parse(&settings.log_filter)?;

    let fmt_layer = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_ansi(std::io::stdout().is_terminal())
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(log_filter)
            .boxed(),
    };

    let (otel_layer, provider) = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                    settings.trace_sample_ratio,
                ))))
                .with_resource(
                    Resource::builder()
                        .with_service_name(settings.service_name.clone())
                        .build(),
                )
                .build();
            opentelemetry::global::set_tracer_provider(provider.clone());
            let tracer = provider.tracer(settings.service_name.clone());
            let trace_filter = EnvFilter::builder().parse(&settings.trace_filter)?;
            (
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(trace_filter),
                ),
                Some(provider),
            )
        }
        None => (None, None),
    };

    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    if let Some(endpoint) = &settings.otlp_endpoint {
        tracing::info!(otlp_endpoint = %endpoint, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard { provider })
}
