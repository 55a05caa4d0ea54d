//! `tierline customers`: create, get, list, find, consent; `import` is `customers_import`.

use tierline_proto::{common::v1 as common, customer::v1 as pb};

use crate::{
    cli::{ContactChannel, CustomerState, Customers},
    connect::Endpoints,
    exit::Failure,
    render::Render,
};

pub(crate) fn channel(channel: ContactChannel) -> i32 {
    match channel {
        ContactChannel::Email => common::Channel::Email,
        ContactChannel::Sms => common::Channel::Sms,
        ContactChannel::Push => common::Channel::Push,
    }
    .into()
}

pub(super) async fn run(
    endpoints: &Endpoints,
    render: Render,
    command: Customers,
) -> Result<(), Failure> {
    let mut client = endpoints.customer()?;
    match command {
        Customers::Import {
            file,
            batch,
            source,
        } => super::customers_import::import(endpoints, render, &file, batch, &source).await,
        Customers::Create {
            name,
            email,
            phone,
            birth_date: birth,
            external_id,
            attributes,
        } => {
            let attributes = attributes
                .iter()
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| {
                            Failure::Input(format!("--attribute {pair:?} is not KEY=VALUE"))
                        })
                })
                .collect::<Result<_, _>>()?;
            let customer = client
                .create_customer(pb::CreateCustomerRequest {
                    external_id,
                    name,
                    email,
                    phone,
                    birth_date: birth.as_deref().map(super::birth_date).transpose()?,
                    joined_at: None,
                    attributes,
                })
                .await?
                .into_inner();
            render.lines(&customer, &super::customer_card::customer_card(&customer))
        }
        Customers::Get { id } => {
            let customer = client
                .get_customer(pb::GetCustomerRequest {
                    lookup: Some(pb::get_customer_request::Lookup::Id(id)),
                })
                .await?
                .into_inner();
            render.lines(&customer, &super::customer_card::customer_card(&customer))
        }
        Customers::Find {
            email,
            phone,
            external_id,
        } => {
            let found = client
                .list_customers(pb::ListCustomersRequest {
                    email: email.unwrap_or_default(),
                    phone: phone.unwrap_or_default(),
                    external_id: external_id.unwrap_or_default(),
                    page_size: 100,
                    ..Default::default()
                })
                .await?
                .into_inner();
            render.table(&found, &CUSTOMER_HEADERS, customer_rows(&found.customers))
        }
        Customers::List {
            status,
            page_size,
            page_token,
        } => {
            let listed = client
                .list_customers(pb::ListCustomersRequest {
                    status: match status {
                        None => pb::CustomerStatus::Unspecified,
                        Some(CustomerState::Active) => pb::CustomerStatus::Active,
                        Some(CustomerState::Erased) => pb::CustomerStatus::Erased,
                    }
                    .into(),
                    page_size,
                    page_token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if !render.json && !listed.next_page_token.is_empty() {
                eprintln!("next page: --page-token {}", listed.next_page_token);
            }
            render.table(&listed, &CUSTOMER_HEADERS, customer_rows(&listed.customers))
        }
        Customers::Consent {
            id,
            channel: which,
            revoke,
            source,
        } => {
            let consent = client
                .set_consent(pb::SetConsentRequest {
                    customer_id: id,
                    channel: channel(which),
                    granted: !revoke,
                    source,
                    changed_at: None,
                })
                .await?
                .into_inner();
            render.lines(&consent, &[super::customer_card::consent_line(&consent)])
        }
    }
}

/// The columns of a customer table.
const CUSTOMER_HEADERS: [&str; 5] = ["ID", "EXTERNAL ID", "NAME", "E-MAIL", "PHONE"];

/// One row per customer, as [`CUSTOMER_HEADERS`] name them.
fn customer_rows(customers: &[pb::Customer]) -> Vec<Vec<String>> {
    customers
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.external_id.clone(),
                c.name.clone(),
                c.email.clone(),
                c.phone.clone(),
            ]
        })
        .collect()
}
