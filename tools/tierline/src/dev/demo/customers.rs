//! The demo's customers, onboarded through the customer service's `ImportCustomers` with their
//! e-mail consents, as a migration from an existing CRM would bring them.

use tierline_proto::{
    common::v1::{Channel, Date},
    customer::v1 as pb,
    prost_types::Timestamp,
};

use super::{business::Person, progress::Progress};
use crate::{connect::Endpoints, exit::Failure};

/// Customers per batch (one transaction each).
const BATCH: usize = 2_000;

fn item(person: &Person) -> pb::ImportCustomerItem {
    let joined = Timestamp {
        seconds: person.joined_at.timestamp(),
        nanos: 0,
    };
    pb::ImportCustomerItem {
        customer: Some(pb::CreateCustomerRequest {
            external_id: person.external_id.clone(),
            name: person.name.clone(),
            email: person.email.clone(),
            phone: String::new(),
            birth_date: Some(Date {
                year: chrono::Datelike::year(&person.birth_date),
                month: i32::try_from(chrono::Datelike::month(&person.birth_date)).unwrap_or(1),
                day: i32::try_from(chrono::Datelike::day(&person.birth_date)).unwrap_or(1),
            }),
            joined_at: Some(joined),
            attributes: [("city".to_owned(), person.city.to_owned())].into(),
        }),
        consents: person
            .email_consent
            .then(|| pb::ImportedConsent {
                channel: Channel::Email.into(),
                granted: true,
                source: "signup-form".into(),
                changed_at: Some(joined),
            })
            .into_iter()
            .collect(),
    }
}

/// Creates `people` (consents included) and returns their ids, in the same order.
pub(crate) async fn create(
    endpoints: &Endpoints,
    people: &[Person],
) -> Result<Vec<String>, Failure> {
    let mut client = endpoints.customer()?;
    let mut progress = Progress::start("customers", people.len() as u64);
    let batches: Vec<pb::ImportCustomersRequest> = people
        .chunks(BATCH)
        .map(|chunk| pb::ImportCustomersRequest {
            items: chunk.iter().map(item).collect(),
        })
        .collect();
    let mut responses = client
        .import_customers(tokio_stream::iter(batches))
        .await?
        .into_inner();
    let mut ids = Vec::with_capacity(people.len());
    while let Some(response) = responses.message().await? {
        if let Some(rejected) = response.results.iter().find(|r| !r.reason.is_empty()) {
            return Err(Failure::Other(anyhow::anyhow!(
                "a demo customer was refused: {} {}",
                rejected.field,
                rejected.reason
            )));
        }
        progress.advance(response.results.len() as u64);
        ids.extend(
            response
                .results
                .into_iter()
                .map(|result| result.customer_id),
        );
    }
    progress.finish();
    Ok(ids)
}
