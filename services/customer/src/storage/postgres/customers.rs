//! Customer profiles in Postgres.

use crate::storage::CustomerRecords;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, types::Json};
use uuid::Uuid;

use super::{
    PgCustomerStore,
    rows::{CUSTOMER_COLUMNS, CustomerRow, customers_from_rows},
};
use crate::{
    CustomerError,
    domain::customer::{
        Customer, CustomerFilter, CustomerPatch, CustomerStatus, NewCustomer, ensure_active,
    },
};

#[async_trait]
impl CustomerRecords for PgCustomerStore {
    #[tracing::instrument(skip_all, fields(customer_id = %customer.id))]
    async fn create_customer(&self, customer: &NewCustomer) -> Result<Customer, CustomerError> {
        let sql = format!(
            "WITH inserted AS (
                 INSERT INTO customers (id, external_id, name, email, phone, birth_date, joined_at, attributes,
                                        status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $9)
                 RETURNING {CUSTOMER_COLUMNS}),
             event AS (
                 INSERT INTO customer_events (customer_id, kind, occurred_at)
                 SELECT id, 'created', created_at FROM inserted)
             SELECT {CUSTOMER_COLUMNS} FROM inserted"
        );
        let row: CustomerRow = sqlx::query_as(&sql)
            .bind(customer.id)
            .bind(&customer.external_id)
            .bind(&customer.name)
            .bind(&customer.email)
            .bind(&customer.phone)
            .bind(customer.birth_date)
            .bind(customer.joined_at)
            .bind(Json(&customer.attributes))
            .bind(customer.created_at)
            .fetch_one(&self.pool)
            .await?;
        row.try_into()
    }

    #[tracing::instrument(skip(self))]
    async fn customer(&self, id: Uuid) -> Result<Option<Customer>, CustomerError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1");
        let row: Option<CustomerRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Customer::try_from).transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn customer_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Customer>, CustomerError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE external_id = $1");
        let row: Option<CustomerRow> = sqlx::query_as(&sql)
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Customer::try_from).transpose()
    }

    #[tracing::instrument(skip_all, fields(count = ids.len()))]
    async fn customers(&self, ids: &[Uuid]) -> Result<Vec<Customer>, CustomerError> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ANY($1)");
        let rows: Vec<CustomerRow> = sqlx::query_as(&sql).bind(ids).fetch_all(&self.pool).await?;
        customers_from_rows(rows)
    }

    #[tracing::instrument(skip(self, patch))]
    async fn update_customer(
        &self,
        id: Uuid,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError> {
        let sql = format!(
            "UPDATE customers SET
                 external_id = CASE WHEN $2 THEN $3 ELSE external_id END,
                 name = COALESCE($4, name),
                 email = CASE WHEN $5 THEN $6 ELSE email END,
                 phone = CASE WHEN $7 THEN $8 ELSE phone END,
                 birth_date = CASE WHEN $9 THEN $10 ELSE birth_date END,
                 joined_at = COALESCE($11, joined_at),
                 attributes = COALESCE($12, attributes),
                 updated_at = $13
             WHERE id = $1 AND status = 'active'
             RETURNING {CUSTOMER_COLUMNS}"
        );
        let row: Option<CustomerRow> = sqlx::query_as(&sql)
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
            .bind(patch.joined_at)
            .bind(patch.attributes.as_ref().map(Json))
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => row.try_into(),
            None => Err(why_not_active(&self.pool, id).await?),
        }
    }

    /// Only the conditions actually given go into the SQL: `$n IS NULL OR …` placeholders would
    /// defeat the indexes once Postgres switches a prepared statement to a generic plan.
    #[tracing::instrument(skip(self))]
    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Customer>, CustomerError> {
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE TRUE"
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
            query.push(" AND joined_at >= ").push_bind(from);
        }
        if let Some(until) = filter.joined_until {
            query.push(" AND joined_at < ").push_bind(until);
        }
        if !filter.attributes.is_empty() {
            query
                .push(" AND attributes @> ")
                .push_bind(Json(filter.attributes.clone()));
        }
        if let Some(month) = filter.birth_month {
            query
                .push(" AND extract(month FROM birth_date) = ")
                .push_bind(i32::try_from(month).unwrap_or(0));
        }
        if let Some(day) = filter.birth_day {
            query
                .push(" AND extract(day FROM birth_date) = ")
                .push_bind(i32::try_from(day).unwrap_or(0));
        }
        query
            .push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<CustomerRow> = query.build_query_as().fetch_all(&self.pool).await?;
        customers_from_rows(rows)
    }

    #[tracing::instrument(skip(self, reason))]
    async fn erase_customer(
        &self,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Customer, CustomerError> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM customers WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match status.as_deref().and_then(CustomerStatus::parse) {
            None => return Err(CustomerError::customer_not_found(id)),
            Some(CustomerStatus::Erased) => {
                tx.rollback().await?;
                return self
                    .customer(id)
                    .await?
                    .ok_or_else(|| CustomerError::customer_not_found(id));
            }
            Some(CustomerStatus::Active) => {}
        }
        let sql = format!(
            "UPDATE customers SET external_id = NULL, name = '', email = NULL, phone = NULL, birth_date = NULL,
                 attributes = '{{}}'::jsonb, status = 'erased', erased_at = $2, updated_at = $2, erase_reason = $3
             WHERE id = $1
             RETURNING {CUSTOMER_COLUMNS}"
        );
        let row: CustomerRow = sqlx::query_as(&sql)
            .bind(id)
            .bind(now)
            .bind(reason)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO consent_changes (customer_id, channel, granted, changed_at, source, recorded_at)
             SELECT customer_id, channel, false, $2, 'erasure', $2 FROM consents WHERE customer_id = $1 AND granted",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE consents SET granted = false, changed_at = $2, source = 'erasure' WHERE customer_id = $1 AND granted")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO customer_events (customer_id, kind, occurred_at) VALUES ($1, 'erased', $2)")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into()
    }
}

/// Why `id` could not be changed: unknown, or erased.
pub(super) async fn why_not_active(
    pool: &PgPool,
    id: Uuid,
) -> Result<CustomerError, CustomerError> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM customers WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let refusal = ensure_active(id, status.as_deref().and_then(CustomerStatus::parse)).err();
    // Active after all: the change that missed it raced a concurrent one, and may be retried.
    Ok(refusal.unwrap_or_else(|| {
        CustomerError::Unavailable("the customer changed concurrently; retry".into())
    }))
}

/// Fails unless the customer `id` exists and is active (`ensure_active`), and keeps them so
/// until the transaction ends: the share lock waits for, and holds off, an erasure.
pub(super) async fn lock_active(
    connection: &mut PgConnection,
    id: Uuid,
) -> Result<(), CustomerError> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM customers WHERE id = $1 FOR SHARE")
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
    ensure_active(id, status.as_deref().and_then(CustomerStatus::parse))
}
