//! Every bound that customer.proto states for a request field, from both sides: a table of cases,
//! each a valid request with one field set at its bound or just past it, and what the contract
//! promises for it: accepted, or INVALID_ARGUMENT naming exactly that field (or the other code the
//! contract gives, e.g. FAILED_PRECONDITION for a refund beyond what remains).

use std::collections::HashMap;

use chrono::Datelike;
use tierline_proto::{
    common::v1::{Channel, Date, Money},
    customer::v1 as pb,
    prost_types::{FieldMask, Timestamp},
};
use tonic::{Code, Status};

use crate::support::{Client, TestApp, ago, new_customer, purchase, refund};

use tierline_testkit::bounds::{
    Expect::{self, Accepted, Invalid, Refused},
    verdict,
};

/// One request, of any RPC.
#[derive(Debug)]
enum Call {
    Create(pb::CreateCustomerRequest),
    Get(pb::GetCustomerRequest),
    BatchGet(pb::BatchGetCustomersRequest),
    Update(pb::UpdateCustomerRequest),
    List(pb::ListCustomersRequest),
    Erase(pb::EraseCustomerRequest),
    SetConsent(pb::SetConsentRequest),
    ConsentHistory(pb::ListConsentHistoryRequest),
    BatchConsents(pb::BatchGetConsentsRequest),
    Purchase(pb::RecordPurchaseRequest),
    Refund(pb::RecordRefundRequest),
    Activities(pb::ListActivitiesRequest),
    Import(pb::ImportActivitiesRequest),
}

async fn send(client: &mut Client, call: Call) -> Result<(), Status> {
    match call {
        Call::Create(request) => client.create_customer(request).await.map(|_| ()),
        Call::Get(request) => client.get_customer(request).await.map(|_| ()),
        Call::BatchGet(request) => client.batch_get_customers(request).await.map(|_| ()),
        Call::Update(request) => client.update_customer(request).await.map(|_| ()),
        Call::List(request) => client.list_customers(request).await.map(|_| ()),
        Call::Erase(request) => client.erase_customer(request).await.map(|_| ()),
        Call::SetConsent(request) => client.set_consent(request).await.map(|_| ()),
        Call::ConsentHistory(request) => client.list_consent_history(request).await.map(|_| ()),
        Call::BatchConsents(request) => client.batch_get_consents(request).await.map(|_| ()),
        Call::Purchase(request) => client.record_purchase(request).await.map(|_| ()),
        Call::Refund(request) => client.record_refund(request).await.map(|_| ()),
        Call::Activities(request) => client.list_activities(request).await.map(|_| ()),
        Call::Import(request) => {
            // One batch; its answer (or the status that ends the stream) is the outcome.
            let mut responses = client
                .import_activities(tokio_stream::iter([request]))
                .await?
                .into_inner();
            match responses.message().await? {
                Some(_) => Ok(()),
                None => Err(Status::internal("the import ended without an answer")),
            }
        }
    }
}

/// What the cases work on, made before they run.
struct Fixtures {
    /// An active customer most cases use.
    customer: String,
    /// A customer the EraseCustomer cases erase.
    erasable: String,
    /// A purchase of 1,000,000 KRW by `customer` that refunds draw on.
    purchase: String,
    /// When `purchase` happened.
    purchase_at: Timestamp,
    /// A purchase of 1,000 KRW by `customer`, for "at most what remains".
    small_purchase: String,
}

impl Fixtures {
    async fn create(client: &mut Client) -> Self {
        let customer = new_customer(client).await.id;
        let erasable = new_customer(client).await.id;
        let recorded = client
            .record_purchase(purchase("bounds-purchase", &customer, 1_000_000))
            .await
            .expect("purchase")
            .into_inner()
            .activity
            .expect("activity");
        let small_purchase = client
            .record_purchase(purchase("bounds-small-purchase", &customer, 1_000))
            .await
            .expect("small purchase")
            .into_inner()
            .activity
            .expect("activity")
            .id;
        Self {
            customer,
            erasable,
            purchase: recorded.id,
            purchase_at: recorded.occurred_at.expect("occurred_at"),
            small_purchase,
        }
    }
}

/// A key no other case uses.
fn key(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

/// `n` unknown customer ids.
fn ids(n: usize) -> Vec<String> {
    (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect()
}

/// `n` attributes with valid keys and values.
fn attributes(n: usize) -> HashMap<String, String> {
    (0..n)
        .map(|i| (format!("key_{i}"), "value".to_owned()))
        .collect()
}

/// An e-mail address of exactly `length` characters (254 or more), valid but for its length.
fn email(length: usize) -> String {
    // 64 + 1 + 63 + 1 + 63 + 1 + (length - 197) + 4
    let last = length - 197;
    format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(last)
    )
}

fn date(day: chrono::NaiveDate) -> Date {
    Date {
        year: day.year(),
        month: i32::try_from(day.month()).expect("month"),
        day: i32::try_from(day.day()).expect("day"),
    }
}

fn shifted(at: &Timestamp, seconds: i64) -> Timestamp {
    Timestamp {
        seconds: at.seconds + seconds,
        nanos: at.nanos,
    }
}

fn create(edit: impl FnOnce(&mut pb::CreateCustomerRequest)) -> Call {
    let mut request = pb::CreateCustomerRequest {
        name: "Bounds".into(),
        ..Default::default()
    };
    edit(&mut request);
    Call::Create(request)
}

fn update(id: &str, path: &str, edit: impl FnOnce(&mut pb::Customer)) -> Call {
    let mut customer = pb::Customer {
        name: "Bounds".into(),
        ..Default::default()
    };
    edit(&mut customer);
    Call::Update(pb::UpdateCustomerRequest {
        id: id.to_owned(),
        customer: Some(customer),
        update_mask: Some(FieldMask {
            paths: vec![path.to_owned()],
        }),
    })
}

fn list(edit: impl FnOnce(&mut pb::ListCustomersRequest)) -> Call {
    let mut request = pb::ListCustomersRequest::default();
    edit(&mut request);
    Call::List(request)
}

fn consent(customer: &str, edit: impl FnOnce(&mut pb::SetConsentRequest)) -> Call {
    let mut request = pb::SetConsentRequest {
        customer_id: customer.to_owned(),
        channel: Channel::Email.into(),
        granted: true,
        source: "app".into(),
        changed_at: None,
    };
    edit(&mut request);
    Call::SetConsent(request)
}

fn record(customer: &str, edit: impl FnOnce(&mut pb::RecordPurchaseRequest)) -> Call {
    let mut request = purchase(&key("p"), customer, 10_000);
    edit(&mut request);
    Call::Purchase(request)
}

fn line_item() -> pb::LineItem {
    pb::LineItem {
        category: "skincare".into(),
        sku: String::new(),
        quantity: 1,
        amount_minor: 1_000,
    }
}

fn with_line(edit: impl FnOnce(&mut pb::LineItem)) -> Vec<pb::LineItem> {
    let mut item = line_item();
    edit(&mut item);
    vec![item]
}

fn give_back(
    customer: &str,
    purchase_id: &str,
    edit: impl FnOnce(&mut pb::RecordRefundRequest),
) -> Call {
    let mut request = refund(&key("r"), customer, purchase_id, 1);
    edit(&mut request);
    Call::Refund(request)
}

fn import(items: usize) -> Call {
    // Items that fail their own validation: the batch is answered (each item rejected) without
    // touching the database, so only the batch's size is at stake.
    Call::Import(pb::ImportActivitiesRequest {
        items: vec![pb::ImportItem { item: None }; items],
    })
}

fn cases(f: &Fixtures) -> Vec<(&'static str, Call, Expect)> {
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().expect("tomorrow");
    let customer = f.customer.as_str();
    vec![
        // ---- CreateCustomer (rules of Customer) ----
        (
            "create: name of 200 characters",
            create(|r| r.name = "가".repeat(200)),
            Accepted,
        ),
        (
            "create: name of 201 characters",
            create(|r| r.name = "가".repeat(201)),
            Invalid("name"),
        ),
        (
            "create: name empty",
            create(|r| r.name = String::new()),
            Invalid("name"),
        ),
        (
            "create: name blank",
            create(|r| r.name = "   ".into()),
            Invalid("name"),
        ),
        (
            "create: external_id of 128",
            create(|r| r.external_id = "a".repeat(128)),
            Accepted,
        ),
        (
            "create: external_id of 129",
            create(|r| r.external_id = "a".repeat(129)),
            Invalid("external_id"),
        ),
        (
            "create: external_id with a space",
            create(|r| r.external_id = "card 1".into()),
            Invalid("external_id"),
        ),
        (
            "create: email of 254",
            create(|r| r.email = email(254)),
            Accepted,
        ),
        (
            "create: email of 255",
            create(|r| r.email = email(255)),
            Invalid("email"),
        ),
        (
            "create: phone of 8 digits",
            create(|r| r.phone = "+12345678".into()),
            Accepted,
        ),
        (
            "create: phone of 7 digits",
            create(|r| r.phone = "+1234567".into()),
            Invalid("phone"),
        ),
        (
            "create: phone of 15 digits",
            create(|r| r.phone = "+123456789012345".into()),
            Accepted,
        ),
        (
            "create: phone of 16 digits",
            create(|r| r.phone = "+1234567890123456".into()),
            Invalid("phone"),
        ),
        (
            "create: born 1900-01-01",
            create(|r| {
                r.birth_date = Some(Date {
                    year: 1900,
                    month: 1,
                    day: 1,
                })
            }),
            Accepted,
        ),
        (
            "create: born 1899-12-31",
            create(|r| {
                r.birth_date = Some(Date {
                    year: 1899,
                    month: 12,
                    day: 31,
                })
            }),
            Invalid("birth_date"),
        ),
        (
            "create: born today",
            create(|r| r.birth_date = Some(date(today))),
            Accepted,
        ),
        (
            "create: born tomorrow",
            create(|r| r.birth_date = Some(date(tomorrow))),
            Invalid("birth_date"),
        ),
        (
            "create: joined a minute ago",
            create(|r| r.joined_at = Some(ago(60))),
            Accepted,
        ),
        (
            "create: joined in an hour",
            create(|r| r.joined_at = Some(ago(-3600))),
            Invalid("joined_at"),
        ),
        (
            "create: 50 attributes",
            create(|r| r.attributes = attributes(50)),
            Accepted,
        ),
        (
            "create: 51 attributes",
            create(|r| r.attributes = attributes(51)),
            Invalid("attributes"),
        ),
        (
            "create: attribute key of 64",
            create(|r| r.attributes = HashMap::from([("k".repeat(64), "v".into())])),
            Accepted,
        ),
        (
            "create: attribute key of 65",
            create(|r| r.attributes = HashMap::from([("k".repeat(65), "v".into())])),
            Invalid(
                "attributes[kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk]",
            ),
        ),
        (
            "create: attribute value of 256",
            create(|r| r.attributes = HashMap::from([("note".into(), "v".repeat(256))])),
            Accepted,
        ),
        (
            "create: attribute value of 257",
            create(|r| r.attributes = HashMap::from([("note".into(), "v".repeat(257))])),
            Invalid("attributes[note]"),
        ),
        // ---- GetCustomer ----
        (
            "get: external_id of 128 (unknown)",
            Call::Get(pb::GetCustomerRequest {
                lookup: Some(pb::get_customer_request::Lookup::ExternalId(
                    "z".repeat(128),
                )),
            }),
            Refused(Code::NotFound),
        ),
        (
            "get: external_id of 129",
            Call::Get(pb::GetCustomerRequest {
                lookup: Some(pb::get_customer_request::Lookup::ExternalId(
                    "z".repeat(129),
                )),
            }),
            Invalid("external_id"),
        ),
        (
            "get: no lookup",
            Call::Get(pb::GetCustomerRequest { lookup: None }),
            Invalid("lookup"),
        ),
        // ---- BatchGetCustomers ----
        (
            "batch get: 0 ids",
            Call::BatchGet(pb::BatchGetCustomersRequest { ids: ids(0) }),
            Invalid("ids"),
        ),
        (
            "batch get: 1 id",
            Call::BatchGet(pb::BatchGetCustomersRequest { ids: ids(1) }),
            Accepted,
        ),
        (
            "batch get: 1,000 ids",
            Call::BatchGet(pb::BatchGetCustomersRequest { ids: ids(1000) }),
            Accepted,
        ),
        (
            "batch get: 1,001 ids",
            Call::BatchGet(pb::BatchGetCustomersRequest { ids: ids(1001) }),
            Invalid("ids"),
        ),
        // ---- UpdateCustomer (fields named inside `customer`) ----
        (
            "update: empty mask",
            Call::Update(pb::UpdateCustomerRequest {
                id: customer.to_owned(),
                customer: Some(pb::Customer::default()),
                update_mask: Some(FieldMask { paths: vec![] }),
            }),
            Invalid("update_mask"),
        ),
        (
            "update: name of 200",
            update(customer, "name", |c| c.name = "가".repeat(200)),
            Accepted,
        ),
        (
            "update: name of 201",
            update(customer, "name", |c| c.name = "가".repeat(201)),
            Invalid("customer.name"),
        ),
        (
            "update: name cleared",
            update(customer, "name", |c| c.name = String::new()),
            Invalid("customer.name"),
        ),
        (
            "update: external_id of 128",
            update(customer, "external_id", |c| c.external_id = "b".repeat(128)),
            Accepted,
        ),
        (
            "update: external_id of 129",
            update(customer, "external_id", |c| c.external_id = "b".repeat(129)),
            Invalid("customer.external_id"),
        ),
        (
            "update: email of 254",
            update(customer, "email", |c| c.email = email(254)),
            Accepted,
        ),
        (
            "update: email of 255",
            update(customer, "email", |c| c.email = email(255)),
            Invalid("customer.email"),
        ),
        (
            "update: phone of 15 digits",
            update(customer, "phone", |c| c.phone = "+123456789012345".into()),
            Accepted,
        ),
        (
            "update: phone of 16 digits",
            update(customer, "phone", |c| c.phone = "+1234567890123456".into()),
            Invalid("customer.phone"),
        ),
        (
            "update: born 1900-01-01",
            update(customer, "birth_date", |c| {
                c.birth_date = Some(Date {
                    year: 1900,
                    month: 1,
                    day: 1,
                })
            }),
            Accepted,
        ),
        (
            "update: born 1899-12-31",
            update(customer, "birth_date", |c| {
                c.birth_date = Some(Date {
                    year: 1899,
                    month: 12,
                    day: 31,
                })
            }),
            Invalid("customer.birth_date"),
        ),
        (
            "update: born tomorrow",
            update(customer, "birth_date", |c| {
                c.birth_date = Some(date(tomorrow))
            }),
            Invalid("customer.birth_date"),
        ),
        (
            "update: joined a minute ago",
            update(customer, "joined_at", |c| c.joined_at = Some(ago(60))),
            Accepted,
        ),
        (
            "update: joined in an hour",
            update(customer, "joined_at", |c| c.joined_at = Some(ago(-3600))),
            Invalid("customer.joined_at"),
        ),
        (
            "update: 50 attributes",
            update(customer, "attributes", |c| c.attributes = attributes(50)),
            Accepted,
        ),
        (
            "update: 51 attributes",
            update(customer, "attributes", |c| c.attributes = attributes(51)),
            Invalid("customer.attributes"),
        ),
        // ---- ListCustomers ----
        ("list: page_size 0", list(|r| r.page_size = 0), Accepted),
        (
            "list: page_size 1,000",
            list(|r| r.page_size = 1000),
            Accepted,
        ),
        (
            "list: page_size 1,001",
            list(|r| r.page_size = 1001),
            Invalid("page_size"),
        ),
        (
            "list: page_size -1",
            list(|r| r.page_size = -1),
            Invalid("page_size"),
        ),
        ("list: birth_month 1", list(|r| r.birth_month = 1), Accepted),
        (
            "list: birth_month 12",
            list(|r| r.birth_month = 12),
            Accepted,
        ),
        (
            "list: birth_month 13",
            list(|r| r.birth_month = 13),
            Invalid("birth_month"),
        ),
        (
            "list: birth_month -1",
            list(|r| r.birth_month = -1),
            Invalid("birth_month"),
        ),
        (
            "list: birth_day 1",
            list(|r| {
                r.birth_month = 2;
                r.birth_day = 1;
            }),
            Accepted,
        ),
        (
            "list: birth_day 31",
            list(|r| {
                r.birth_month = 1;
                r.birth_day = 31;
            }),
            Accepted,
        ),
        (
            "list: birth_day 32",
            list(|r| {
                r.birth_month = 1;
                r.birth_day = 32;
            }),
            Invalid("birth_day"),
        ),
        (
            "list: birth_day -1",
            list(|r| {
                r.birth_month = 1;
                r.birth_day = -1;
            }),
            Invalid("birth_day"),
        ),
        (
            "list: birth_day without birth_month",
            list(|r| r.birth_day = 3),
            Invalid("birth_day"),
        ),
        // ---- EraseCustomer ----
        (
            "erase: reason of 201",
            Call::Erase(pb::EraseCustomerRequest {
                id: f.erasable.clone(),
                reason: "r".repeat(201),
            }),
            Invalid("reason"),
        ),
        (
            "erase: reason of 200",
            Call::Erase(pb::EraseCustomerRequest {
                id: f.erasable.clone(),
                reason: "r".repeat(200),
            }),
            Accepted,
        ),
        // ---- SetConsent ----
        (
            "consent: source of 64",
            consent(customer, |r| r.source = "s".repeat(64)),
            Accepted,
        ),
        (
            "consent: source of 65",
            consent(customer, |r| r.source = "s".repeat(65)),
            Invalid("source"),
        ),
        (
            "consent: source empty",
            consent(customer, |r| r.source = String::new()),
            Invalid("source"),
        ),
        (
            "consent: channel UNSPECIFIED",
            consent(customer, |r| r.channel = Channel::Unspecified.into()),
            Invalid("channel"),
        ),
        (
            "consent: changed a minute ago",
            consent(customer, |r| r.changed_at = Some(ago(60))),
            Accepted,
        ),
        (
            "consent: changed in an hour",
            consent(customer, |r| r.changed_at = Some(ago(-3600))),
            Invalid("changed_at"),
        ),
        // ---- ListConsentHistory ----
        (
            "consent history: page_size 1,000",
            Call::ConsentHistory(pb::ListConsentHistoryRequest {
                customer_id: customer.to_owned(),
                page_size: 1000,
                page_token: String::new(),
            }),
            Accepted,
        ),
        (
            "consent history: page_size 1,001",
            Call::ConsentHistory(pb::ListConsentHistoryRequest {
                customer_id: customer.to_owned(),
                page_size: 1001,
                page_token: String::new(),
            }),
            Invalid("page_size"),
        ),
        (
            "consent history: page_size -1",
            Call::ConsentHistory(pb::ListConsentHistoryRequest {
                customer_id: customer.to_owned(),
                page_size: -1,
                page_token: String::new(),
            }),
            Invalid("page_size"),
        ),
        // ---- BatchGetConsents ----
        (
            "batch consents: 0 ids",
            Call::BatchConsents(pb::BatchGetConsentsRequest {
                customer_ids: ids(0),
            }),
            Invalid("customer_ids"),
        ),
        (
            "batch consents: 1 id",
            Call::BatchConsents(pb::BatchGetConsentsRequest {
                customer_ids: ids(1),
            }),
            Accepted,
        ),
        (
            "batch consents: 1,000 ids",
            Call::BatchConsents(pb::BatchGetConsentsRequest {
                customer_ids: ids(1000),
            }),
            Accepted,
        ),
        (
            "batch consents: 1,001 ids",
            Call::BatchConsents(pb::BatchGetConsentsRequest {
                customer_ids: ids(1001),
            }),
            Invalid("customer_ids"),
        ),
        // ---- RecordPurchase ----
        (
            "purchase: key of 128",
            record(customer, |r| r.idempotency_key = "p".repeat(128)),
            Accepted,
        ),
        (
            "purchase: key of 129",
            record(customer, |r| r.idempotency_key = "p".repeat(129)),
            Invalid("idempotency_key"),
        ),
        (
            "purchase: key empty",
            record(customer, |r| r.idempotency_key = String::new()),
            Invalid("idempotency_key"),
        ),
        (
            "purchase: amount 1",
            record(customer, |r| {
                r.amount = Some(Money {
                    amount_minor: 1,
                    currency: "KRW".into(),
                })
            }),
            Accepted,
        ),
        (
            "purchase: amount 0",
            record(customer, |r| {
                r.amount = Some(Money {
                    amount_minor: 0,
                    currency: "KRW".into(),
                })
            }),
            Invalid("amount.amount_minor"),
        ),
        (
            "purchase: currency not ISO 4217",
            record(customer, |r| {
                r.amount = Some(Money {
                    amount_minor: 1,
                    currency: "WON".into(),
                })
            }),
            Invalid("amount.currency"),
        ),
        (
            "purchase: occurred a minute ahead",
            record(customer, |r| r.occurred_at = Some(ago(-60))),
            Accepted,
        ),
        (
            "purchase: occurred an hour ahead",
            record(customer, |r| r.occurred_at = Some(ago(-3600))),
            Invalid("occurred_at"),
        ),
        (
            "purchase: occurred_at missing",
            record(customer, |r| r.occurred_at = None),
            Invalid("occurred_at"),
        ),
        (
            "purchase: brand of 64",
            record(customer, |r| r.brand = "b".repeat(64)),
            Accepted,
        ),
        (
            "purchase: brand of 65",
            record(customer, |r| r.brand = "b".repeat(65)),
            Invalid("brand"),
        ),
        (
            "purchase: sales_channel of 64",
            record(customer, |r| r.sales_channel = "c".repeat(64)),
            Accepted,
        ),
        (
            "purchase: sales_channel of 65",
            record(customer, |r| r.sales_channel = "c".repeat(65)),
            Invalid("sales_channel"),
        ),
        (
            "purchase: store_id of 64",
            record(customer, |r| r.store_id = "s".repeat(64)),
            Accepted,
        ),
        (
            "purchase: store_id of 65",
            record(customer, |r| r.store_id = "s".repeat(65)),
            Invalid("store_id"),
        ),
        (
            "purchase: 500 line items",
            record(customer, |r| r.line_items = vec![line_item(); 500]),
            Accepted,
        ),
        (
            "purchase: 501 line items",
            record(customer, |r| r.line_items = vec![line_item(); 501]),
            Invalid("line_items"),
        ),
        (
            "purchase: category of 64",
            record(customer, |r| {
                r.line_items = with_line(|l| l.category = "c".repeat(64))
            }),
            Accepted,
        ),
        (
            "purchase: category of 65",
            record(customer, |r| {
                r.line_items = with_line(|l| l.category = "c".repeat(65))
            }),
            Invalid("line_items[0].category"),
        ),
        (
            "purchase: category empty",
            record(customer, |r| {
                r.line_items = with_line(|l| l.category = String::new())
            }),
            Invalid("line_items[0].category"),
        ),
        (
            "purchase: sku of 64",
            record(customer, |r| {
                r.line_items = with_line(|l| l.sku = "s".repeat(64))
            }),
            Accepted,
        ),
        (
            "purchase: sku of 65",
            record(customer, |r| {
                r.line_items = with_line(|l| l.sku = "s".repeat(65))
            }),
            Invalid("line_items[0].sku"),
        ),
        (
            "purchase: quantity 1",
            record(customer, |r| r.line_items = with_line(|l| l.quantity = 1)),
            Accepted,
        ),
        (
            "purchase: quantity 0",
            record(customer, |r| r.line_items = with_line(|l| l.quantity = 0)),
            Invalid("line_items[0].quantity"),
        ),
        (
            "purchase: line amount 0",
            record(customer, |r| {
                r.line_items = with_line(|l| l.amount_minor = 0)
            }),
            Accepted,
        ),
        (
            "purchase: line amount -1",
            record(customer, |r| {
                r.line_items = with_line(|l| l.amount_minor = -1)
            }),
            Invalid("line_items[0].amount_minor"),
        ),
        // ---- RecordRefund ----
        (
            "refund: key of 128",
            give_back(customer, &f.purchase, |r| {
                r.idempotency_key = "r".repeat(128)
            }),
            Accepted,
        ),
        (
            "refund: key of 129",
            give_back(customer, &f.purchase, |r| {
                r.idempotency_key = "r".repeat(129)
            }),
            Invalid("idempotency_key"),
        ),
        (
            "refund: amount 0",
            give_back(customer, &f.purchase, |r| {
                r.amount = Some(Money {
                    amount_minor: 0,
                    currency: "KRW".into(),
                })
            }),
            Invalid("amount.amount_minor"),
        ),
        (
            "refund: at the purchase's occurred_at",
            give_back(customer, &f.purchase, |r| {
                r.occurred_at = Some(f.purchase_at)
            }),
            Accepted,
        ),
        (
            "refund: a second before the purchase",
            give_back(customer, &f.purchase, |r| {
                r.occurred_at = Some(shifted(&f.purchase_at, -1))
            }),
            Invalid("occurred_at"),
        ),
        (
            "refund: an hour ahead",
            give_back(customer, &f.purchase, |r| r.occurred_at = Some(ago(-3600))),
            Invalid("occurred_at"),
        ),
        (
            "refund: one more than remains",
            give_back(customer, &f.small_purchase, |r| {
                r.amount = Some(Money {
                    amount_minor: 1_001,
                    currency: "KRW".into(),
                })
            }),
            Refused(Code::FailedPrecondition),
        ),
        (
            "refund: exactly what remains",
            give_back(customer, &f.small_purchase, |r| {
                r.amount = Some(Money {
                    amount_minor: 1_000,
                    currency: "KRW".into(),
                })
            }),
            Accepted,
        ),
        // ---- ListActivities ----
        (
            "activities: page_size 1,000",
            Call::Activities(pb::ListActivitiesRequest {
                customer_id: customer.to_owned(),
                page_size: 1000,
                page_token: String::new(),
            }),
            Accepted,
        ),
        (
            "activities: page_size 1,001",
            Call::Activities(pb::ListActivitiesRequest {
                customer_id: customer.to_owned(),
                page_size: 1001,
                page_token: String::new(),
            }),
            Invalid("page_size"),
        ),
        (
            "activities: page_size -1",
            Call::Activities(pb::ListActivitiesRequest {
                customer_id: customer.to_owned(),
                page_size: -1,
                page_token: String::new(),
            }),
            Invalid("page_size"),
        ),
        // ---- ImportActivities ----
        ("import: 0 items", import(0), Invalid("items")),
        ("import: 1 item", import(1), Accepted),
        ("import: 10,000 items", import(10_000), Accepted),
        ("import: 10,001 items", import(10_001), Invalid("items")),
    ]
}

#[tokio::test]
async fn every_documented_bound_holds_on_both_sides() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let fixtures = Fixtures::create(&mut client).await;
    let mut failures = Vec::new();
    for (case, call, expect) in cases(&fixtures) {
        let outcome = send(&mut client, call).await;
        if let Err(why) = verdict(expect, &outcome) {
            failures.push(format!("{case}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) broke the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
