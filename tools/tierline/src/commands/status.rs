//! `tierline status`: the gRPC health of each service.

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::output::outln;
use crate::{
    connect::Endpoints,
    exit::Failure,
    render::{Render, table},
};

pub(super) async fn run(endpoints: &Endpoints, render: Render) -> Result<(), Failure> {
    let services = [
        (
            "customer",
            &endpoints.customer,
            tierline_proto::customer::v1::customer_service_server::SERVICE_NAME,
        ),
        (
            "scoring",
            &endpoints.scoring,
            tierline_proto::scoring::v1::scoring_service_server::SERVICE_NAME,
        ),
        (
            "campaign",
            &endpoints.campaign,
            tierline_proto::campaign::v1::campaign_service_server::SERVICE_NAME,
        ),
    ];
    let mut rows = Vec::new();
    let mut all_serving = true;
    for (name, endpoint, service) in services {
        let state = match endpoints.plain(endpoint) {
            Ok(channel) => {
                let answer = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    HealthClient::new(channel).check(HealthCheckRequest {
                        service: service.to_owned(),
                    }),
                )
                .await;
                match answer {
                    Ok(Ok(response)) => match response.into_inner().status() {
                        ServingStatus::Serving => "SERVING".to_owned(),
                        other => other.as_str_name().to_owned(),
                    },
                    Ok(Err(status)) => format!("unreachable: {}", status.message()),
                    Err(_) => "no answer within 5 s".to_owned(),
                }
            }
            Err(Failure::Input(message)) => message,
            Err(other) => return Err(other),
        };
        all_serving &= state == "SERVING";
        rows.push(vec![name.to_owned(), endpoint.clone(), state]);
    }
    if render.json {
        let value: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| serde_json::json!({"service": row[0], "endpoint": row[1], "status": row[2]}))
            .collect();
        #[allow(clippy::print_stdout)]
        {
            outln!("{}", serde_json::Value::Array(value));
        }
    } else {
        table(&["SERVICE", "ENDPOINT", "STATUS"], &rows);
    }
    if all_serving {
        Ok(())
    } else {
        Err(Failure::NotServing)
    }
}
