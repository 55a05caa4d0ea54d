//! The campaign service's view of the other services, over gRPC: the program's facts and the
//! audience from the scoring service; consents, erasure and customer records from the customer
//! service. Converts their messages into the domain's terms, so nothing else here touches them.

use std::collections::HashMap;

use futures::{Stream, StreamExt};
use tierline_proto::{
    customer::v1::{self as customer, customer_service_client::CustomerServiceClient},
    scoring::v1::{self as scoring, scoring_service_client::ScoringServiceClient},
    tonic::{self, service::interceptor::InterceptedService, transport::Channel as GrpcChannel},
};
use tierline_runtime::client::{ClientSettings, Outgoing, channel};
use uuid::Uuid;

use crate::{
    CampaignError,
    domain::campaign::{Channel, ProgramFacts, Range, ScoringRule},
};

type Scoring = ScoringServiceClient<InterceptedService<GrpcChannel, Outgoing>>;
type Customers = CustomerServiceClient<InterceptedService<GrpcChannel, Outgoing>>;

/// Where the other services are.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The scoring service (scopes programs:admin, tiers:read, feed:read).
    pub scoring: ClientSettings,
    /// The customer service (scopes customers:read, feed:read).
    pub customer: ClientSettings,
    /// `TIERLINE_CLOCK_SKEW`: how far ahead of its now the customer service accepts a purchase's
    /// date (keep it at the customer service's value). Attribution waits for such a date, at most
    /// this long.
    pub clock_skew: std::time::Duration,
}

/// What the customer service says about one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFacts {
    /// Erased customers have no consent and are never contacted.
    pub erased: bool,
    /// Channels the customer consented to.
    pub consents: Vec<Channel>,
    /// Attributes (read only when the audience needs them).
    pub attributes: HashMap<String, String>,
    /// Month of birth, 1 to 12 (read only when the audience needs it).
    pub birth_month: Option<u32>,
    /// Day of birth, 1 to 31 (as `birth_month`).
    pub birth_day: Option<u32>,
}

/// Clients of the scoring and customer services.
#[derive(Debug, Clone)]
pub struct Upstream {
    scoring: Scoring,
    customers: Customers,
}

/// A scoring-service failure of a call about `program_id`: an unknown program, a rule the
/// program rejects (fields named inside the campaign's audience), or unavailable.
fn scoring_failure(program_id: Uuid) -> impl Fn(tonic::Status) -> CampaignError {
    move |status| match status.code() {
        tonic::Code::NotFound => CampaignError::not_found("program", program_id),
        tonic::Code::InvalidArgument => CampaignError::InvalidArgument(
            tierline_runtime::status::field_violations(&status)
                .into_iter()
                .map(|mut violation| {
                    violation.field = format!("campaign.audience.scoring_rule.{}", violation.field);
                    violation
                })
                .collect(),
        ),
        _ => transient_or_internal("scoring service", &status),
    }
}

/// A customer-service failure: nothing the caller sent can cause one, so it is unavailable when
/// retrying may help and internal otherwise.
fn customer_failure(status: tonic::Status) -> CampaignError {
    transient_or_internal("customer service", &status)
}

fn transient_or_internal(service: &str, status: &tonic::Status) -> CampaignError {
    match status.code() {
        tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::ResourceExhausted
        | tonic::Code::Aborted
        | tonic::Code::Cancelled
        | tonic::Code::Unknown => CampaignError::Unavailable(format!("{service}: {status}")),
        _ => CampaignError::Internal(format!("{service}: {status}")),
    }
}

fn score_range(range: Option<Range>) -> Option<scoring::ScoreRange> {
    range.map(|r| scoring::ScoreRange {
        min: r.min.and_then(|v| i32::try_from(v).ok()),
        max: r.max.and_then(|v| i32::try_from(v).ok()),
    })
}

fn int_range(range: Option<Range>) -> Option<scoring::Int64Range> {
    range.map(|r| scoring::Int64Range {
        min: r.min,
        max: r.max,
    })
}

/// The scoring contract's form of a rule.
pub fn audience_rule(program_id: Uuid, rule: &ScoringRule) -> scoring::AudienceRule {
    scoring::AudienceRule {
        program_id: program_id.to_string(),
        tier_codes: rule.tier_codes.clone(),
        segments: rule.segments.clone(),
        lifecycle_states: rule.lifecycle_states.clone(),
        r_score: score_range(rule.r_score),
        f_score: score_range(rule.f_score),
        m_score: score_range(rule.m_score),
        net_spend_minor: int_range(rule.net_spend_minor),
        days_since_last_purchase: int_range(rule.days_since_last_purchase),
        probability_alive: rule.probability_alive.map(|r| scoring::DoubleRange {
            min: r.min,
            max: r.max,
        }),
        predicted_value_minor: int_range(rule.predicted_value_minor),
    }
}

fn parse_id(text: &str) -> Result<Uuid, CampaignError> {
    Uuid::parse_str(text)
        .map_err(|_| CampaignError::Internal(format!("upstream sent a malformed id {text:?}")))
}

impl Upstream {
    /// Clients on lazily connected channels.
    pub fn connect(settings: &UpstreamSettings) -> Result<Self, CampaignError> {
        let open = |client: &ClientSettings| {
            channel(client).map_err(|error| CampaignError::Unavailable(error.to_string()))
        };
        Ok(Self {
            scoring: ScoringServiceClient::with_interceptor(
                open(&settings.scoring)?,
                Outgoing::new(&settings.scoring),
            ),
            customers: CustomerServiceClient::with_interceptor(
                open(&settings.customer)?,
                Outgoing::new(&settings.customer),
            ),
        })
    }

    /// The program's currency, tiers and scope; `NotFound` for an unknown program.
    #[tracing::instrument(skip(self))]
    pub async fn program(&self, program_id: Uuid) -> Result<ProgramFacts, CampaignError> {
        let program = self
            .scoring
            .clone()
            .get_program(scoring::GetProgramRequest {
                program_id: program_id.to_string(),
            })
            .await
            .map_err(scoring_failure(program_id))?
            .into_inner();
        let scope = program.scope.unwrap_or_default();
        Ok(ProgramFacts {
            currency: program.currency,
            tier_codes: program.tiers.into_iter().map(|tier| tier.code).collect(),
            brands: scope.brands,
            sales_channels: scope.sales_channels,
        })
    }

    /// The customers matching `rule`, in ascending id order after `after`, in pages of up to
    /// 1,000.
    pub async fn audience(
        &self,
        program_id: Uuid,
        rule: &ScoringRule,
        after: Option<Uuid>,
    ) -> Result<impl Stream<Item = Result<Vec<Uuid>, CampaignError>> + use<>, CampaignError> {
        let stream = self
            .scoring
            .clone()
            .query_audience(scoring::QueryAudienceRequest {
                rule: Some(audience_rule(program_id, rule)),
                after_customer_id: after.map(|id| id.to_string()).unwrap_or_default(),
                limit: None,
            })
            .await
            .map_err(scoring_failure(program_id))?
            .into_inner();
        Ok(stream.map(move |page| {
            let page = page.map_err(scoring_failure(program_id))?;
            page.members
                .iter()
                .map(|member| parse_id(&member.customer_id))
                .collect::<Result<Vec<_>, _>>()
        }))
    }

    /// Whether `customer` matches `rule` now: the first match after the id just below it.
    #[tracing::instrument(skip(self, rule))]
    pub async fn matches(
        &self,
        program_id: Uuid,
        rule: &ScoringRule,
        customer: Uuid,
    ) -> Result<bool, CampaignError> {
        let Some(below) = customer.as_u128().checked_sub(1) else {
            return Ok(false);
        };
        let mut stream = self
            .scoring
            .clone()
            .query_audience(scoring::QueryAudienceRequest {
                rule: Some(audience_rule(program_id, rule)),
                after_customer_id: Uuid::from_u128(below).to_string(),
                limit: Some(1),
            })
            .await
            .map_err(scoring_failure(program_id))?
            .into_inner();
        match stream.next().await {
            Some(page) => {
                let page = page.map_err(scoring_failure(program_id))?;
                Ok(page
                    .members
                    .first()
                    .is_some_and(|member| member.customer_id == customer.to_string()))
            }
            None => Ok(false),
        }
    }

    /// What the customer service says about `ids` (at most 1,000); unknown ids are absent. The
    /// customer records are read only when `with_records` (attributes, birth dates).
    #[tracing::instrument(skip(self, ids), fields(ids = ids.len()))]
    pub async fn customers(
        &self,
        ids: &[Uuid],
        with_records: bool,
    ) -> Result<HashMap<Uuid, CustomerFacts>, CampaignError> {
        let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let consents = self
            .customers
            .clone()
            .batch_get_consents(customer::BatchGetConsentsRequest {
                customer_ids: texts.clone(),
            })
            .await
            .map_err(customer_failure)?
            .into_inner();
        let mut facts = HashMap::with_capacity(ids.len());
        for entry in consents.customers {
            let granted = entry
                .consents
                .iter()
                .filter(|consent| consent.granted)
                .filter_map(|consent| match consent.channel {
                    1 => Some(Channel::Email),
                    2 => Some(Channel::Sms),
                    3 => Some(Channel::Push),
                    _ => None,
                })
                .collect();
            facts.insert(
                parse_id(&entry.customer_id)?,
                CustomerFacts {
                    erased: entry.erased,
                    consents: granted,
                    attributes: HashMap::new(),
                    birth_month: None,
                    birth_day: None,
                },
            );
        }
        if with_records && !facts.is_empty() {
            let records = self
                .customers
                .clone()
                .batch_get_customers(customer::BatchGetCustomersRequest { ids: texts })
                .await
                .map_err(customer_failure)?
                .into_inner();
            for record in records.customers {
                if let Some(fact) = facts.get_mut(&parse_id(&record.id)?) {
                    fact.birth_month = record
                        .birth_date
                        .as_ref()
                        .and_then(|d| u32::try_from(d.month).ok());
                    fact.birth_day = record
                        .birth_date
                        .as_ref()
                        .and_then(|d| u32::try_from(d.day).ok());
                    fact.attributes = record.attributes;
                }
            }
        }
        Ok(facts)
    }
}

/// Whether `facts` consents to `channel`.
pub fn consents_to(facts: &CustomerFacts, channel: Channel) -> bool {
    facts.consents.contains(&channel)
}
