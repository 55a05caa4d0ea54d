//! Customer profiles in SQLite.

use crate::storage::CustomerRecords;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, types::Json};
use tierline_runtime::instant::micros;
use uuid::Uuid;

use super::{
    SqliteCustomerStore, Write,
    rows::{CUSTOMER_COLUMNS, CustomerRow},
};
use crate::{
    CustomerError,
    domain::customer::{
        self, Customer, CustomerFilter, CustomerPatch, CustomerStatus, NewCustomer,
    },
};

async fn external_id_taken(
    connection: &mut SqliteConnection,
    external_id: Option<&str>,
    except: Uuid,
) -> Result<bool, CustomerError> {
    let Some(external_id) = external_id else {
        return Ok(false);
    };
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM customers WHERE external_id = ? AND id <> ?)",
    )
    .bind(external_id)
    .bind(except)
    .fetch_one(connection)
    .await?)
}

fn taken() -> CustomerError {
    CustomerError::AlreadyExists {
        entity: "customer",
        field: "external_id",
    }
}

pub(super) async fn status_of(
    connection: &mut SqliteConnection,
    id: Uuid,
) -> Result<Option<CustomerStatus>, CustomerError> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM customers WHERE id = ?")
        .bind(id)
        .fetch_optional(connection)
        .await?;
    Ok(status.as_deref().and_then(CustomerStatus::parse))
}

/// Fails unless the customer exists and is active (`domain::customer::ensure_active`).
pub(super) async fn ensure_active(
    connection: &mut SqliteConnection,
    id: Uuid,
) -> Result<(), CustomerError> {
    customer::ensure_active(id, status_of(connection, id).await?)
}

pub(super) async fn add_event(
    write: &mut Write,
    customer_id: Uuid,
    kind: &str,
    occurred_at: DateTime<Utc>,
) -> Result<(), CustomerError> {
    let seq = write.next_seq().await?;
    sqlx::query("INSERT INTO customer_events (seq, xid, customer_id, kind, occurred_at) VALUES (?, ?, ?, ?, ?)")
        .bind(seq)
        .bind(write.xid)
        .bind(customer_id)
        .bind(kind)
        .bind(micros(occurred_at))
        .execute(&mut *write.tx)
        .await?;
    Ok(())
}

#[async_trait]
impl CustomerRecords for SqliteCustomerStore {
    async fn customers(&self, ids: &[Uuid]) -> Result<Vec<Customer>, CustomerError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(customer) = self.customer(*id).await? {
                found.push(customer);
            }
        }
        Ok(found)
    }

    async fn create_customer(&self, customer: &NewCustomer) -> Result<Customer, CustomerError> {
        let mut write = self.begin_write().await?;
        if external_id_taken(&mut write.tx, customer.external_id.as_deref(), customer.id).await? {
            return Err(taken());
        }
        sqlx::query(
            "INSERT INTO customers (id, external_id, name, email, phone, birth_date, joined_at, attributes, status,
                                    created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?9)",
        )
        .bind(customer.id)
        .bind(&customer.external_id)
        .bind(&customer.name)
        .bind(&customer.email)
        .bind(&customer.phone)
        .bind(customer.birth_date)
        .bind(micros(customer.joined_at))
        .bind(Json(&customer.attributes))
        .bind(micros(customer.created_at))
        .execute(&mut *write.tx)
        .await?;
        add_event(&mut write, customer.id, "created", customer.created_at).await?;
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?");
        let row: CustomerRow = sqlx::query_as(&sql)
            .bind(customer.id)
            .fetch_one(&mut *write.tx)
            .await?;
        self.commit_feed(write).await?;
        row.try_into()
    }

    async fn customer(&self, id: Uuid) -> Result<Option<Customer>, CustomerError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?");
        let row: Option<CustomerRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Customer::try_from).transpose()
    }

    async fn customer_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Customer>, CustomerError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE external_id = ?");
        let row: Option<CustomerRow> = sqlx::query_as(&sql)
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Customer::try_from).transpose()
    }

    async fn update_customer(
        &self,
        id: Uuid,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError> {
        let mut write = self.begin_write().await?;
        ensure_active(&mut write.tx, id).await?;
        if let Some(external_id) = &patch.external_id
            && external_id_taken(&mut write.tx, external_id.as_deref(), id).await?
        {
            return Err(taken());
        }
        sqlx::query(
            "UPDATE customers SET
                 external_id = CASE WHEN ?2 THEN ?3 ELSE external_id END,
                 name = COALESCE(?4, name),
                 email = CASE WHEN ?5 THEN ?6 ELSE email END,
                 phone = CASE WHEN ?7 THEN ?8 ELSE phone END,
                 birth_date = CASE WHEN ?9 THEN ?10 ELSE birth_date END,
                 joined_at = COALESCE(?11, joined_at),
                 attributes = COALESCE(?12, attributes),
                 updated_at = ?13
             WHERE id = ?1",
        )
        .bind(id)
        .bind(patch.external_id.is_some())
        .bind(patch.external_id.clone().flatten())
        .bind(&patch.name)
        .bind(patch.email.is_some())
        .bind(patch.email.clone().flatten())
        .bind(patch.phone.is_some())
        .bind(patch.phone.clone().flatten())
        .bind(patch.birth_date.is_some())
        .bind(patch.birth_date.flatten())
        .bind(patch.joined_at.map(micros))
        .bind(patch.attributes.as_ref().map(Json))
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?");
        let row: CustomerRow = sqlx::query_as(&sql)
            .bind(id)
            .fetch_one(&mut *write.tx)
            .await?;
        write.tx.commit().await?;
        row.try_into()
    }

    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Customer>, CustomerError> {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE 1"
        ));
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after);
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(email) = &filter.email {
            query.push(" AND email = ").push_bind(email.clone());
        }
        if let Some(phone) = &filter.phone {
            query.push(" AND phone = ").push_bind(phone.clone());
        }
        if let Some(external_id) = &filter.external_id {
            query
                .push(" AND external_id = ")
                .push_bind(external_id.clone());
        }
        if let Some(from) = filter.joined_from {
            query.push(" AND joined_at >= ").push_bind(micros(from));
        }
        if let Some(until) = filter.joined_until {
            query.push(" AND joined_at < ").push_bind(micros(until));
        }
        for (key, value) in &filter.attributes {
            query
                .push(" AND json_extract(attributes, ")
                .push_bind(format!("$.\"{key}\""))
                .push(") = ")
                .push_bind(value.clone());
        }
        if let Some(month) = filter.birth_month {
            query
                .push(" AND CAST(strftime('%m', birth_date) AS INTEGER) = ")
                .push_bind(i64::from(month));
        }
        if let Some(day) = filter.birth_day {
            query
                .push(" AND CAST(strftime('%d', birth_date) AS INTEGER) = ")
                .push_bind(i64::from(day));
        }
        query
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<CustomerRow> = query.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(Customer::try_from).collect()
    }

    async fn erase_customer(
        &self,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError> {
        let mut write = self.begin_write().await?;
        match status_of(&mut write.tx, id).await? {
            None => return Err(CustomerError::customer_not_found(id)),
            Some(CustomerStatus::Erased) => {
                drop(write);
                return self
                    .customer(id)
                    .await?
                    .ok_or_else(|| CustomerError::customer_not_found(id));
            }
            Some(CustomerStatus::Active) => {}
        }
        sqlx::query(
            "UPDATE customers SET external_id = NULL, name = '', email = NULL, phone = NULL, birth_date = NULL,
                 attributes = '{}', status = 'erased', erased_at = ?2, updated_at = ?2, erase_reason = ?3
             WHERE id = ?1",
        )
        .bind(id)
        .bind(micros(now))
        .bind(reason)
        .execute(&mut *write.tx)
        .await?;
        sqlx::query(
            "INSERT INTO consent_changes (customer_id, channel, granted, changed_at, source, recorded_at)
             SELECT customer_id, channel, 0, ?2, 'erasure', ?2 FROM consents WHERE customer_id = ?1 AND granted",
        )
        .bind(id)
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        sqlx::query(
            "UPDATE consents SET granted = 0, changed_at = ?2, source = 'erasure' WHERE customer_id = ?1 AND granted",
        )
        .bind(id)
        .bind(micros(now))
        .execute(&mut *write.tx)
        .await?;
        add_event(&mut write, id, "erased", now).await?;
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?");
        let row: CustomerRow = sqlx::query_as(&sql)
            .bind(id)
            .fetch_one(&mut *write.tx)
            .await?;
        self.commit_feed(write).await?;
        row.try_into()
    }
}
