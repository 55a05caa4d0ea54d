//! Traces on their own terms: with the logs quieted to warnings (`TIERLINE_LOG=warn`), the three
//! services still export their spans over OTLP, and one campaign call makes one trace that crosses
//! campaign, scoring and customer. The receiver is a real OTLP/gRPC trace service in this test.

mod support;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use support::business::{self, Person};
use tierline_proto::{campaign::v1 as campaign, scoring::v1 as scoring};
use tierline_runtime::{config::ConfigSource, telemetry};

/// Spans received, as (trace id, span name).
type Received = Arc<Mutex<Vec<(Vec<u8>, String)>>>;

#[derive(Clone, Default)]
struct Receiver(Received);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().expect("lock");
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    received.push((span.trace_id, span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn start_receiver() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let receiver = Receiver::default();
    let received = receiver.0.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, received)
}

// Several workers: the exporter's shutdown, at the end, blocks one thread while another drives
// its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_logs_at_warn_one_campaign_call_is_one_trace_across_the_three_services() {
    let (receiver, received) = start_receiver().await;
    let endpoint = format!("http://{receiver}");
    let source = ConfigSource::from_pairs([
        ("TIERLINE_LOG", "warn"),
        ("TIERLINE_OTLP_ENDPOINT", endpoint.as_str()),
        ("TIERLINE_TRACE_SAMPLE_RATIO", "1"),
    ]);
    let mut reader = source.reader();
    let settings = tierline_runtime::config::TelemetrySettings::read(&mut reader, "e2e");
    reader.finish().expect("settings");
    let guard = telemetry::init(&settings).expect("telemetry");

    let mut services = support::start(&[("TIERLINE_MIN_ARM_SIZE", "2")]).await;
    let program_id = business::program(
        &mut services,
        "TRACED",
        "KRW",
        &[("WELCOME", 0), ("GREEN", 100_000)],
    )
    .await;
    let people = vec![
        Person {
            email_consent: true,
            purchases: vec![(150_000, 10)],
            ..Person::default()
        };
        3
    ];
    business::customers(&services, "KRW", &people).await;
    let audience = campaign::CampaignAudience {
        scoring_rule: Some(scoring::AudienceRule {
            tier_codes: vec!["GREEN".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = business::create(
        &mut services,
        business::one_shot(&program_id, "KRW", audience, 0),
    )
    .await;
    business::preview_until(
        &services,
        campaign::preview_audience_request::Target::CampaignId(created.id.clone()),
        Some(0),
        |preview| preview.eligible == 3,
    )
    .await;
    business::launch(&mut services, &created.id).await;
    // Dropping the guard shuts the exporter down, which sends what it holds.
    drop(guard);

    let received = received.lock().expect("lock").clone();
    let mut by_trace: HashMap<Vec<u8>, HashSet<&str>> = HashMap::new();
    for (trace, name) in &received {
        let service = ["campaign", "scoring", "customer"]
            .into_iter()
            .find(|service| name.starts_with(&format!("tierline.{service}.v1.")));
        if let Some(service) = service {
            by_trace.entry(trace.clone()).or_default().insert(service);
        }
    }
    assert!(
        by_trace.values().any(|services| services.len() == 3),
        "no trace crosses the three services among {} spans: {by_trace:?}",
        received.len()
    );
}
