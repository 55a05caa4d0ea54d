//! The demo's customers, created through the customer service with their e-mail consents, a few
//! calls in flight at a time.

use futures::{StreamExt, TryStreamExt};
use tierline_proto::{
    common::v1::{Channel, Date},
    customer::v1 as pb,
    prost_types::Timestamp,
};

use super::{business::Person, progress::Progress};
use crate::{connect::Endpoints, exit::Failure};

/// Calls in flight: enough to keep the service busy, few enough to leave it responsive.
const IN_FLIGHT: usize = 16;

/// Creates `people` (consents included) and returns their ids, in the same order.
pub(crate) async fn create(
    endpoints: &Endpoints,
    people: &[Person],
) -> Result<Vec<String>, Failure> {
    let client = endpoints.customer()?;
    let progress = std::sync::Mutex::new(Progress::start("customers", people.len() as u64));
    let ids: Vec<String> = futures::stream::iter(people)
        .map(|person| {
            let mut client = client.clone();
            let progress = &progress;
            async move {
                let joined = Timestamp {
                    seconds: person.joined_at.timestamp(),
                    nanos: 0,
                };
                let created = client
                    .create_customer(pb::CreateCustomerRequest {
                        external_id: person.external_id.clone(),
                        name: person.name.clone(),
                        email: person.email.clone(),
                        phone: String::new(),
                        birth_date: Some(Date {
                            year: chrono::Datelike::year(&person.birth_date),
                            month: i32::try_from(chrono::Datelike::month(&person.birth_date))
                                .unwrap_or(1),
                            day: i32::try_from(chrono::Datelike::day(&person.birth_date))
                                .unwrap_or(1),
                        }),
                        joined_at: Some(joined),
                        attributes: [("city".to_owned(), person.city.to_owned())].into(),
                    })
                    .await?
                    .into_inner();
                if person.email_consent {
                    client
                        .set_consent(pb::SetConsentRequest {
                            customer_id: created.id.clone(),
                            channel: Channel::Email.into(),
                            granted: true,
                            source: "signup-form".into(),
                            changed_at: Some(joined),
                        })
                        .await?;
                }
                if let Ok(mut progress) = progress.lock() {
                    progress.advance(1);
                }
                Ok::<_, Failure>(created.id)
            }
        })
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    if let Ok(progress) = progress.into_inner() {
        progress.finish();
    }
    Ok(ids)
}
