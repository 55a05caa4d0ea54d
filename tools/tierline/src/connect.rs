//! Where the services are and the token to present: from flags or the environment
//! (`TIERLINE_CUSTOMER_ENDPOINT`, `TIERLINE_SCORING_ENDPOINT`, `TIERLINE_CAMPAIGN_ENDPOINT`,
//! `TIERLINE_TOKEN`), on the runtime's client channels (TLS when the endpoint is `https://`).

use tierline_proto::{
    campaign::v1::campaign_service_client::CampaignServiceClient,
    customer::v1::customer_service_client::CustomerServiceClient,
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use tierline_runtime::{
    client::{ClientSettings, Outgoing, channel},
    config::Secret,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::exit::Failure;

/// A channel with the bearer token on every call.
pub(crate) type Authorized = InterceptedService<Channel, Outgoing>;

/// The three endpoints and the token.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub(crate) customer: String,
    pub(crate) scoring: String,
    pub(crate) campaign: String,
    pub(crate) token: Option<String>,
}

impl Endpoints {
    fn settings(&self, endpoint: &str) -> ClientSettings {
        ClientSettings {
            endpoint: endpoint.to_owned(),
            ca_file: None,
            identity: None,
            domain: None,
            token: self.token.clone().map(Secret::new),
        }
    }

    fn open(&self, endpoint: &str) -> Result<(Channel, Outgoing), Failure> {
        let settings = self.settings(endpoint);
        let channel = channel(&settings)
            .map_err(|error| Failure::Input(format!("endpoint {endpoint}: {error}")))?;
        Ok((channel, Outgoing::new(&settings)))
    }

    /// The customer service.
    pub(crate) fn customer(&self) -> Result<CustomerServiceClient<Authorized>, Failure> {
        let (channel, outgoing) = self.open(&self.customer)?;
        Ok(CustomerServiceClient::with_interceptor(channel, outgoing))
    }

    /// The scoring service.
    pub(crate) fn scoring(&self) -> Result<ScoringServiceClient<Authorized>, Failure> {
        let (channel, outgoing) = self.open(&self.scoring)?;
        Ok(ScoringServiceClient::with_interceptor(channel, outgoing))
    }

    /// The campaign service.
    pub(crate) fn campaign(&self) -> Result<CampaignServiceClient<Authorized>, Failure> {
        let (channel, outgoing) = self.open(&self.campaign)?;
        Ok(CampaignServiceClient::with_interceptor(channel, outgoing))
    }

    /// A plain channel (health checks need no token).
    pub(crate) fn plain(&self, endpoint: &str) -> Result<Channel, Failure> {
        Ok(self.open(endpoint)?.0)
    }
}
