//! Names people type instead of ids: a program's code (`INNISFREE`), a customer's external id
//! (`demo-00042`), a campaign's name. A UUID is taken as an id as it is; anything else is looked
//! up, and an unknown name is NOT_FOUND (exit code 3) like an unknown id.

use tierline_proto::{campaign::v1 as campaign, customer::v1 as customer, scoring::v1 as scoring};

use crate::{connect::Endpoints, exit::Failure};

fn is_id(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

fn not_found(what: &str, text: &str) -> Failure {
    Failure::Server(tonic::Status::not_found(format!("no {what} {text:?}")))
}

/// A program id, from an id or a program code.
pub(super) async fn program(endpoints: &Endpoints, text: String) -> Result<String, Failure> {
    if is_id(&text) {
        return Ok(text);
    }
    let listed = endpoints
        .scoring()?
        .list_programs(scoring::ListProgramsRequest {
            page_size: 1_000,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    listed
        .programs
        .into_iter()
        .find(|program| program.code.eq_ignore_ascii_case(&text))
        .map(|program| program.id)
        .ok_or_else(|| not_found("program with code", &text))
}

/// A customer id, from an id or the customer's external id.
pub(super) async fn customer(endpoints: &Endpoints, text: String) -> Result<String, Failure> {
    if is_id(&text) {
        return Ok(text);
    }
    let found = endpoints
        .customer()?
        .get_customer(customer::GetCustomerRequest {
            lookup: Some(customer::get_customer_request::Lookup::ExternalId(text)),
        })
        .await?
        .into_inner();
    Ok(found.id)
}

/// A campaign id, from an id or the campaign's name (the newest campaign of that name).
pub(super) async fn campaign(endpoints: &Endpoints, text: String) -> Result<String, Failure> {
    if is_id(&text) {
        return Ok(text);
    }
    let mut client = endpoints.campaign()?;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_campaigns(campaign::ListCampaignsRequest {
                page_size: 1_000,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        if let Some(found) = page.campaigns.into_iter().find(|c| c.name == text) {
            return Ok(found.id);
        }
        if page.next_page_token.is_empty() {
            return Err(not_found("campaign named", &text));
        }
        page_token = page.next_page_token;
    }
}
