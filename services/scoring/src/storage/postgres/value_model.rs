//! The value model's port in Postgres: a program's purchases leave as binary COPY (a million
//! customers' purchases in about a second, without Postgres grouping them by customer and day,
//! which costs several) and are summarised by the domain; fitted models are versioned rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::TryStreamExt;
use uuid::Uuid;

use super::PgScoringStore;
use crate::{
    ScoringError,
    domain::value::{
        ValueModel,
        store::ValueModelStore,
        summary::{DatedPurchase, PopulationSummary, PurchaseSummary, summarise},
    },
    storage::{
        DatedRow, VALUE_MODEL_COLUMNS, ValueModelParameters, ValueModelRow, dated_purchases,
        duration_micros,
    },
};

/// Purchases not refunded in full up to an instant, as `(customer, occurred_at, net)`.
const PURCHASES: &str =
    "SELECT customer_id, occurred_at, amount_minor - refunded_minor FROM counted_purchases
     WHERE program_id = $1 AND refunded_minor < amount_minor AND occurred_at <= $2";

/// Postgres's binary COPY rows of `(uuid, timestamptz, int8)` (the format's documentation:
/// "COPY", "Binary Format"): a signature and header, then per row a field count and each field
/// as its length and bytes, then -1.
#[derive(Debug, Default)]
struct BinaryCopy {
    pending: Vec<u8>,
    header_read: bool,
}

/// Microseconds from the Unix epoch to Postgres's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl BinaryCopy {
    /// Appends `chunk` and decodes every complete row in what has arrived.
    fn feed(&mut self, chunk: &[u8], rows: &mut Vec<DatedPurchase>) -> Result<(), ScoringError> {
        const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
        // A row: field count (2), then three fields of length (4) and 16, 8 and 8 bytes.
        const ROW: usize = 2 + 4 + 16 + 4 + 8 + 4 + 8;
        let malformed = || ScoringError::Internal("malformed COPY data from Postgres".into());
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        if !self.header_read {
            // Signature, flags, header extension length, extension.
            if self.pending.len() < SIGNATURE.len() + 8 {
                return Ok(());
            }
            if !self.pending.starts_with(SIGNATURE) {
                return Err(malformed());
            }
            let extension = u32::from_be_bytes(
                self.pending[SIGNATURE.len() + 4..SIGNATURE.len() + 8]
                    .try_into()
                    .map_err(|_| malformed())?,
            ) as usize;
            at = SIGNATURE.len() + 8 + extension;
            if self.pending.len() < at {
                return Ok(());
            }
            self.header_read = true;
        }
        // The `len` bytes of a field at `offset`, whose length prefix must say `len`.
        fn field(bytes: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
            let declared = i32::from_be_bytes(bytes.get(offset..offset + 4)?.try_into().ok()?);
            (usize::try_from(declared).ok()? == len)
                .then(|| bytes.get(offset + 4..offset + 4 + len))?
        }
        while self.pending.len() >= at + 2 {
            let fields = i16::from_be_bytes([self.pending[at], self.pending[at + 1]]);
            if fields == -1 {
                at += 2;
                break;
            }
            if fields != 3 {
                return Err(malformed());
            }
            if self.pending.len() < at + ROW {
                break;
            }
            let row = &self.pending[at..at + ROW];
            let integer = |offset| {
                field(row, offset, 8)
                    .and_then(|bytes| bytes.try_into().ok())
                    .map(i64::from_be_bytes)
                    .ok_or_else(malformed)
            };
            let customer_id = field(row, 2, 16)
                .and_then(|bytes| Uuid::from_slice(bytes).ok())
                .ok_or_else(malformed)?;
            let (micros, net_minor) = (integer(22)?, integer(34)?);
            rows.push(DatedPurchase {
                customer_id,
                occurred_at: DateTime::from_timestamp_micros(micros + POSTGRES_EPOCH_MICROS)
                    .ok_or_else(malformed)?,
                net_minor,
            });
            at += ROW;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

#[async_trait]
impl ValueModelStore for PgScoringStore {
    #[tracing::instrument(skip(self))]
    async fn population_summary(
        &self,
        program_id: Uuid,
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<PopulationSummary, ScoringError> {
        // COPY takes no parameters: both values are formatted from typed values, never text.
        let statement = format!(
            "COPY ({}) TO STDOUT (FORMAT binary)",
            PURCHASES
                .replace("$1", &format!("'{program_id}'::uuid"))
                .replace("$2", &format!("'{}'::timestamptz", as_of.to_rfc3339()))
        );
        let mut connection = self.pool.acquire().await?;
        let mut purchases = Vec::new();
        let mut decoder = BinaryCopy::default();
        let mut stream = connection.copy_out_raw(&statement).await?;
        while let Some(chunk) = stream.try_next().await? {
            decoder.feed(&chunk, &mut purchases)?;
        }
        drop(stream);
        let summaries = tokio::task::spawn_blocking(move || summarise(&mut purchases, zone, as_of))
            .await
            .map_err(|error| ScoringError::Internal(format!("summary task: {error}")))?;
        Ok(PopulationSummary::of(summaries))
    }

    #[tracing::instrument(skip_all, fields(%program_id, customers = customer_ids.len()))]
    async fn purchase_summaries(
        &self,
        program_id: Uuid,
        customer_ids: &[Uuid],
        zone: Tz,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, PurchaseSummary)>, ScoringError> {
        let rows: Vec<DatedRow> = sqlx::query_as(&format!("{PURCHASES} AND customer_id = ANY($3)"))
            .bind(program_id)
            .bind(as_of)
            .bind(customer_ids)
            .fetch_all(&self.pool)
            .await?;
        let mut purchases = dated_purchases(rows);
        Ok(summarise(&mut purchases, zone, as_of))
    }

    #[tracing::instrument(skip_all, fields(program_id = %model.program_id))]
    async fn store_value_model(&self, model: &ValueModel) -> Result<i64, ScoringError> {
        let sql = format!(
            "INSERT INTO value_models ({VALUE_MODEL_COLUMNS})
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
             FROM value_models WHERE program_id = $1
             RETURNING version"
        );
        let insert = sqlx::query_scalar(&sql).bind(model.program_id);
        Ok(ValueModelParameters::from(&model.fitted)
            .bind(insert)
            .bind(model.customers)
            .bind(model.repeat_customers)
            .bind(model.as_of)
            .bind(duration_micros(model.summary_duration))
            .bind(duration_micros(model.fit_duration))
            .bind(model.evaluation_run_id)
            .fetch_one(&self.pool)
            .await?)
    }

    #[tracing::instrument(skip(self))]
    async fn value_model(&self, program_id: Uuid) -> Result<Option<ValueModel>, ScoringError> {
        let row: Option<ValueModelRow> = sqlx::query_as(&format!(
            "SELECT {VALUE_MODEL_COLUMNS} FROM value_models WHERE program_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(program_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(ValueModel::from))
    }
}
