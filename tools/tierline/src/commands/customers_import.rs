//! `tierline customers import FILE.csv`: onboarding a membership through the streaming
//! `ImportCustomers`, with progress and a summary of created, unchanged, updated and rejected
//! rows. The header is
//! `external_id,name,email,phone,birth_date,joined_at,attributes,email_consent,sms_consent,push_consent`:
//! `birth_date` as YYYY-MM-DD, `joined_at` in RFC 3339, `attributes` as `key=value` pairs
//! separated by `;`, and each consent `yes`, `no` or empty (not given).

use tierline_proto::{common::v1 as common, customer::v1 as pb};

use super::{birth_date, csv_import::Batches, timestamp};
use crate::{connect::Endpoints, exit::Failure, render::Render};

const COLUMNS: [&str; 10] = [
    "external_id",
    "name",
    "email",
    "phone",
    "birth_date",
    "joined_at",
    "attributes",
    "email_consent",
    "sms_consent",
    "push_consent",
];

fn item(
    record: &csv::StringRecord,
    line: u64,
    source: &str,
) -> Result<pb::ImportCustomerItem, Failure> {
    let field = |i: usize| record.get(i).unwrap_or("").trim().to_owned();
    let bad = |what: &str| Failure::Input(format!("line {line}: {what}"));
    let attributes = field(6)
        .split(';')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
                .ok_or_else(|| bad("attributes are key=value pairs separated by ;"))
        })
        .collect::<Result<_, _>>()?;
    let mut consents = Vec::new();
    for (column, channel) in [
        (7, common::Channel::Email),
        (8, common::Channel::Sms),
        (9, common::Channel::Push),
    ] {
        let granted = match field(column).to_ascii_lowercase().as_str() {
            "" => continue,
            "yes" | "y" | "true" | "1" => true,
            "no" | "n" | "false" | "0" => false,
            other => {
                return Err(bad(&format!(
                    "{} {other:?} is not yes, no or empty",
                    COLUMNS[column]
                )));
            }
        };
        consents.push(pb::ImportedConsent {
            channel: channel.into(),
            granted,
            source: source.to_owned(),
            changed_at: None,
        });
    }
    let birth = field(4);
    let joined = field(5);
    Ok(pb::ImportCustomerItem {
        customer: Some(pb::CreateCustomerRequest {
            external_id: field(0),
            name: field(1),
            email: field(2),
            phone: field(3),
            birth_date: (!birth.is_empty())
                .then(|| birth_date(&birth))
                .transpose()
                .map_err(|_| bad("birth_date is not YYYY-MM-DD"))?,
            joined_at: (!joined.is_empty())
                .then(|| timestamp("joined_at", &joined))
                .transpose()
                .map_err(|_| bad("joined_at is not RFC 3339"))?,
            attributes,
        }),
        consents,
    })
}

pub(super) async fn import(
    endpoints: &Endpoints,
    render: Render,
    file: &str,
    batch: usize,
    source: &str,
) -> Result<(), Failure> {
    let read = Batches::read(file, &COLUMNS, batch, |record, line| {
        item(record, line, source)
    })?;
    let requests = read.batches.iter().map(|items| pb::ImportCustomersRequest {
        items: items.clone(),
    });
    let mut client = endpoints.customer()?;
    let mut responses = client
        .import_customers(tokio_stream::iter(requests.collect::<Vec<_>>()))
        .await?
        .into_inner();
    let mut tally = read.tally(&["created", "unchanged", "updated", "rejected"]);
    while let Some(response) = responses.message().await? {
        tally.add("created", response.created);
        tally.add("unchanged", response.unchanged);
        tally.add("updated", response.updated);
        tally.add("rejected", response.rejected);
        for result in &response.results {
            if result.outcome == pb::ImportCustomerOutcome::Rejected as i32 {
                let line = read.line(&tally, result.index);
                tally.reject(line, &result.field, &result.reason);
            }
        }
        tally.batch_done(read.size(response.batch), render, "customers imported");
    }
    tally.finish(render)
}
