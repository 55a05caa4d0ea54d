//! Rows as both backends return them (instants as [`StoredInstant`]: `timestamptz` in Postgres,
//! microseconds in SQLite), and their conversion into domain records.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use tierline_runtime::{instant::StoredInstant, xid_feed::first_of_merge};
use uuid::Uuid;

use crate::{
    CustomerError,
    domain::{
        activity::{Activity, ActivityKind, LineItem, Recorded, RefundTarget},
        customer::{Customer, CustomerStatus},
        feed::{CustomerEvent, CustomerEventKind, FeedCursor, FeedEvent, FeedPayload},
    },
};

/// The columns of [`CustomerRow`], for `SELECT` and `RETURNING`.
pub(super) const CUSTOMER_COLUMNS: &str = "id, external_id, name, email, phone, birth_date, joined_at, attributes, status, created_at, updated_at, erased_at";

/// The columns of [`ActivityRow`].
pub(super) const ACTIVITY_COLUMNS: &str = "id, customer_id, kind, idempotency_key, fingerprint, amount_minor, currency, \
     occurred_at, recorded_at, brand, sales_channel, store_id, line_items, refunded_purchase_id, refunded_amount_minor, \
     purchase_occurred_at, xid, seq";

#[derive(Debug, sqlx::FromRow)]
pub(super) struct CustomerRow {
    id: Uuid,
    external_id: Option<String>,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    birth_date: Option<NaiveDate>,
    joined_at: StoredInstant,
    attributes: Json<BTreeMap<String, String>>,
    status: String,
    created_at: StoredInstant,
    updated_at: StoredInstant,
    erased_at: Option<StoredInstant>,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = CustomerError;

    fn try_from(row: CustomerRow) -> Result<Self, Self::Error> {
        let status = CustomerStatus::parse(&row.status).ok_or_else(|| {
            CustomerError::Internal(format!("unknown customer status {:?}", row.status))
        })?;
        Ok(Self {
            id: row.id,
            external_id: row.external_id,
            name: row.name,
            email: row.email,
            phone: row.phone,
            birth_date: row.birth_date,
            joined_at: row.joined_at.into(),
            attributes: row.attributes.0,
            status,
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
            erased_at: row.erased_at.map(Into::into),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ActivityRow {
    pub(super) id: Uuid,
    customer_id: Uuid,
    kind: String,
    idempotency_key: String,
    fingerprint: Vec<u8>,
    amount_minor: i64,
    currency: String,
    occurred_at: StoredInstant,
    recorded_at: StoredInstant,
    brand: String,
    sales_channel: String,
    store_id: String,
    line_items: Json<Vec<LineItem>>,
    refunded_purchase_id: Option<Uuid>,
    refunded_amount_minor: i64,
    purchase_occurred_at: StoredInstant,
    xid: i64,
    seq: i64,
}

impl TryFrom<ActivityRow> for Activity {
    type Error = CustomerError;

    fn try_from(row: ActivityRow) -> Result<Self, Self::Error> {
        let kind = ActivityKind::parse(&row.kind).ok_or_else(|| {
            CustomerError::Internal(format!("unknown activity kind {:?}", row.kind))
        })?;
        Ok(Self {
            id: row.id,
            customer_id: row.customer_id,
            kind,
            idempotency_key: row.idempotency_key,
            amount_minor: row.amount_minor,
            currency: row.currency,
            occurred_at: row.occurred_at.into(),
            recorded_at: row.recorded_at.into(),
            brand: row.brand,
            sales_channel: row.sales_channel,
            store_id: row.store_id,
            line_items: row.line_items.0,
            refunded_purchase_id: row.refunded_purchase_id,
            refunded_amount_minor: row.refunded_amount_minor,
            purchase_occurred_at: row.purchase_occurred_at.into(),
        })
    }
}

impl ActivityRow {
    /// What a request with `fingerprint` under `key`, the key this activity is stored under,
    /// gets: [`Recorded::replay`].
    pub(super) fn into_replay(
        mut self,
        key: &str,
        fingerprint: &[u8; 32],
    ) -> Result<Recorded, CustomerError> {
        let stored = std::mem::take(&mut self.fingerprint);
        Recorded::replay(key, &stored, fingerprint, || Activity::try_from(self))
    }
}

/// The activities stored under a purchase batch's keys, each with its fingerprint, as
/// `PurchaseBatch::judge` takes them.
pub(super) fn stored_under_keys(
    rows: Vec<ActivityRow>,
) -> Result<Vec<(Vec<u8>, Activity)>, CustomerError> {
    rows.into_iter()
        .map(|mut row| {
            let fingerprint = std::mem::take(&mut row.fingerprint);
            Ok((fingerprint, Activity::try_from(row)?))
        })
        .collect()
}

/// The columns of [`RefundTargetRow`].
pub(super) const REFUND_TARGET_COLUMNS: &str = "kind, customer_id, amount_minor, refunded_amount_minor, currency, \
     occurred_at, brand, sales_channel, store_id";

/// The purchase a refund names ([`REFUND_TARGET_COLUMNS`]): what the refund is checked against,
/// and what it copies from it.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RefundTargetRow {
    kind: String,
    customer_id: Uuid,
    amount_minor: i64,
    refunded_amount_minor: i64,
    currency: String,
    occurred_at: StoredInstant,
    pub(super) brand: String,
    pub(super) sales_channel: String,
    pub(super) store_id: String,
}

impl RefundTargetRow {
    /// What the refund rules check; a kind this build does not know is an internal error.
    pub(super) fn target(&self) -> Result<RefundTarget, CustomerError> {
        let kind = ActivityKind::parse(&self.kind)
            .ok_or_else(|| CustomerError::Internal(format!("unknown kind {:?}", self.kind)))?;
        Ok(RefundTarget {
            kind,
            customer_id: self.customer_id,
            amount_minor: self.amount_minor,
            refunded_amount_minor: self.refunded_amount_minor,
            currency: self.currency.clone(),
            occurred_at: self.occurred_at(),
        })
    }

    /// When the purchase happened (its refunds carry it).
    pub(super) fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at.into()
    }
}

pub(super) fn customers_from_rows(rows: Vec<CustomerRow>) -> Result<Vec<Customer>, CustomerError> {
    rows.into_iter().map(Customer::try_from).collect()
}

/// The columns of [`CustomerEventRow`], of `customer_events e JOIN customers c`.
pub(super) const CUSTOMER_EVENT_COLUMNS: &str =
    "e.xid, e.seq, e.customer_id, e.kind, e.occurred_at, c.joined_at";

/// A customer created or erased, at its feed position, with the customer's join time.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct CustomerEventRow {
    xid: i64,
    seq: i64,
    customer_id: Uuid,
    kind: String,
    occurred_at: StoredInstant,
    joined_at: StoredInstant,
}

impl TryFrom<CustomerEventRow> for FeedEvent {
    type Error = CustomerError;

    fn try_from(row: CustomerEventRow) -> Result<Self, Self::Error> {
        let kind = CustomerEventKind::parse(&row.kind).ok_or_else(|| {
            CustomerError::Internal(format!("unknown customer event {:?}", row.kind))
        })?;
        Ok(Self {
            cursor: FeedCursor {
                xid: row.xid,
                seq: row.seq,
            },
            payload: FeedPayload::Customer(CustomerEvent {
                customer_id: row.customer_id,
                kind,
                occurred_at: row.occurred_at.into(),
                joined_at: row.joined_at.into(),
            }),
        })
    }
}

/// A page of the feed from each table's first `limit` rows after the cursor.
pub(super) fn feed_events(
    activities: Vec<ActivityRow>,
    customer_events: Vec<CustomerEventRow>,
    limit: u32,
) -> Result<Vec<FeedEvent>, CustomerError> {
    let mut events = Vec::with_capacity(activities.len() + customer_events.len());
    for row in activities {
        let cursor = FeedCursor {
            xid: row.xid,
            seq: row.seq,
        };
        events.push(FeedEvent {
            cursor,
            payload: FeedPayload::Activity(Box::new(Activity::try_from(row)?)),
        });
    }
    for row in customer_events {
        events.push(FeedEvent::try_from(row)?);
    }
    Ok(first_of_merge(events, |event| event.cursor, limit))
}
