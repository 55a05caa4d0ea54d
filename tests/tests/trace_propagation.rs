//! W3C trace context crosses service boundaries: a caller's `traceparent` becomes the parent of
//! the server's span, and a call made inside a span with [`TraceContextInterceptor`] continues
//! the caller's trace. This is what lets one trace span customer → scoring → campaign.

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{InMemorySpanExporter, SdkTracerProvider},
};
use tierline_customer::{Application, CustomerConfig};
use tierline_proto::customer::v1::{
    CreateCustomerRequest, customer_service_client::CustomerServiceClient,
};
use tierline_runtime::{config::ConfigSource, telemetry::propagation::TraceContextInterceptor};
use tierline_testkit::TestDatabase;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const METHOD_SPAN: &str = "tierline.customer.v1.CustomerService/CreateCustomer";

#[tokio::test]
async fn trace_context_flows_into_and_out_of_services() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e")));
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test binary");

    let database = TestDatabase::create().await.expect("database");
    let source = ConfigSource::from_pairs([
        ("TIERLINE_GRPC_ADDR", "127.0.0.1:0"),
        ("TIERLINE_METRICS_ADDR", "off"),
        ("TIERLINE_DATABASE_URL", database.url()),
        ("TIERLINE_AUTH_MODE", "disabled"),
    ]);
    let app = Application::build(CustomerConfig::from_source(&source).expect("config"))
        .await
        .expect("builds");
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move {
            app.run_until(async move { stop.cancelled().await })
                .await
                .expect("serves")
        })
    };
    tierline_testkit::wait_until_serving(addr).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    // 1. An incoming traceparent becomes the parent of the server's span.
    let remote_trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id");
    let remote_span = SpanId::from_hex("00f067aa0ba902b7").expect("span id");
    let mut plain = CustomerServiceClient::new(channel.clone());
    let mut request = tonic::Request::new(CreateCustomerRequest {
        name: "Traced".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .expect("ascii"),
    );
    let answered = plain.create_customer(request).await;
    answered.expect("created");
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let server_span = spans
        .iter()
        .find(|span| span.name == METHOD_SPAN && span.span_context.trace_id() == remote_trace)
        .unwrap_or_else(|| {
            panic!(
                "no server span in the caller's trace among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(server_span.parent_span_id, remote_span);
    exporter.reset();

    // 2. A call made inside a span, through the interceptor, continues that span's trace.
    let mut traced = CustomerServiceClient::with_interceptor(channel, TraceContextInterceptor);
    let caller = tracing::info_span!("scoring_applies_activity");
    async {
        traced
            .create_customer(CreateCustomerRequest {
                name: "Chained".into(),
                ..Default::default()
            })
            .await
            .expect("created")
    }
    .instrument(caller)
    .await;
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let caller_span = spans
        .iter()
        .find(|span| span.name == "scoring_applies_activity")
        .expect("caller span");
    let server_span = spans
        .iter()
        .find(|span| span.name == METHOD_SPAN)
        .expect("server span");
    assert_eq!(
        server_span.span_context.trace_id(),
        caller_span.span_context.trace_id(),
        "one trace across the call"
    );
    assert_eq!(
        server_span.parent_span_id,
        caller_span.span_context.span_id()
    );

    stop.cancel();
    server.await.expect("server task");
}
