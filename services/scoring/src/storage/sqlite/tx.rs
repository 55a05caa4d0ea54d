//! The SQLite unit of work. It holds SQLite's write lock from its first statement, so the row
//! and table locks the Postgres unit of work takes (`FOR UPDATE`, the bucket guard) are already
//! implied: nobody else writes until it ends.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tierline_runtime::instant::{from_micros, micros};
use uuid::Uuid;

use super::SqliteScoringStore;
use super::{
    Write,
    rows::{
        BUCKET_COLUMNS, BucketRow, MEMBER_COLUMNS, MemberRow, STATE_COLUMNS, StateRow, db_rank,
    },
};
use crate::domain::ports::ActivityConsumption;
use crate::domain::ports::FeedProgress;
use crate::{
    ScoringError,
    domain::{
        decision::TierState,
        feed_batch::{FeedKeys, FeedLoad, FeedWrites, Pair, PurchaseDay},
        idempotency::{IdempotentRequest, PriorRequest},
        state::{HistoryRecord, Member, StoredState},
        window::Bucket,
    },
    storage::tx::ScoringTx,
};

/// A writing transaction on the scoring tables.
pub struct SqliteScoringTx {
    pub(super) write: Write,
}

impl std::fmt::Debug for SqliteScoringTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteScoringTx")
            .field("xid", &self.write.xid)
            .finish_non_exhaustive()
    }
}

/// Saves a state in a transaction: inserts at version 1, or raises the version by one.
pub(super) async fn upsert_state(
    write: &mut Write,
    program_id: Uuid,
    customer_id: Uuid,
    stored: &StoredState,
    now: DateTime<Utc>,
    changed_by_run: Option<Uuid>,
) -> Result<i64, ScoringError> {
    let state = &stored.state;
    let manual = state.manual.as_ref();
    Ok(sqlx::query_scalar(
        "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, last_qualified_at, override_rank, override_until,
                                  override_reason, override_operator, override_set_at, version, updated_at, changed_by_run,
                                  lapsed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12, ?13)
         ON CONFLICT (program_id, customer_id) DO UPDATE SET
             earned_rank = excluded.earned_rank, since = excluded.since, last_qualified_at = excluded.last_qualified_at,
             override_rank = excluded.override_rank, override_until = excluded.override_until,
             override_reason = excluded.override_reason, override_operator = excluded.override_operator,
             override_set_at = excluded.override_set_at, lapsed_at = excluded.lapsed_at,
             version = tier_states.version + 1, updated_at = excluded.updated_at,
             changed_by_run = COALESCE(excluded.changed_by_run, tier_states.changed_by_run)
         RETURNING version",
    )
    .bind(program_id)
    .bind(customer_id)
    .bind(db_rank(state.earned_rank))
    .bind(micros(state.since))
    .bind(state.last_qualified_at.map(micros))
    .bind(manual.map(|m| db_rank(m.rank)))
    .bind(manual.map(|m| micros(m.until)))
    .bind(manual.map(|m| m.reason.clone()))
    .bind(manual.map(|m| m.operator.clone()))
    .bind(manual.map(|m| micros(m.set_at)))
    .bind(micros(now))
    .bind(changed_by_run)
    .bind(state.lapsed_at.map(micros))
    .fetch_one(&mut *write.tx)
    .await?)
}

/// Records a member: the join time only moves earlier and erasure is kept.
pub(super) async fn upsert_member(write: &mut Write, member: Member) -> Result<(), ScoringError> {
    sqlx::query(
        "INSERT INTO members (customer_id, joined_at, erased) VALUES (?1, ?2, ?3)
         ON CONFLICT (customer_id) DO UPDATE SET erased = members.erased OR excluded.erased,
             joined_at = min(members.joined_at, excluded.joined_at)",
    )
    .bind(member.customer_id)
    .bind(micros(member.joined_at))
    .bind(member.erased)
    .execute(&mut *write.tx)
    .await?;
    Ok(())
}

#[async_trait]
impl ScoringTx for SqliteScoringTx {
    async fn upsert_member(&mut self, member: Member) -> Result<(), ScoringError> {
        upsert_member(&mut self.write, member).await
    }

    async fn member(&mut self, customer_id: Uuid) -> Result<Option<Member>, ScoringError> {
        let row: Option<MemberRow> = sqlx::query_as(&format!(
            "SELECT {MEMBER_COLUMNS} FROM members WHERE customer_id = ?1"
        ))
        .bind(customer_id)
        .fetch_optional(&mut *self.write.tx)
        .await?;
        Ok(row.map(Member::from))
    }

    async fn lock_or_create_state(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
        initial: &TierState,
    ) -> Result<StoredState, ScoringError> {
        sqlx::query(
            "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, version, updated_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?4) ON CONFLICT (program_id, customer_id) DO NOTHING",
        )
        .bind(program_id)
        .bind(customer_id)
        .bind(db_rank(initial.earned_rank))
        .bind(micros(initial.since))
        .execute(&mut *self.write.tx)
        .await?;
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM tier_states WHERE program_id = ?1 AND customer_id = ?2"
        );
        let row: StateRow = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(customer_id)
            .fetch_one(&mut *self.write.tx)
            .await?;
        Ok(StoredState::from(row))
    }

    async fn guard_buckets(&mut self) -> Result<(), ScoringError> {
        // A rebuild is a writing transaction too: it cannot run while this one holds the lock.
        Ok(())
    }

    async fn save_state(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
        stored: &StoredState,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        upsert_state(&mut self.write, program_id, customer_id, stored, now, None).await
    }

    async fn record(&mut self, record: &HistoryRecord) -> Result<(), ScoringError> {
        super::history::insert(&mut self.write, std::slice::from_ref(record)).await
    }

    async fn load_feed_batch(&mut self, keys: &FeedKeys) -> Result<FeedLoad, ScoringError> {
        super::feed_batch::load(&mut self.write, keys).await
    }

    async fn known_purchase_days(
        &mut self,
        days: &[PurchaseDay],
    ) -> Result<Vec<(Pair, NaiveDate)>, ScoringError> {
        super::purchase_profiles::known_days(&mut self.write.tx, days).await
    }

    async fn write_feed_batch(
        &mut self,
        writes: &FeedWrites,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        super::feed_batch::write(&mut self.write, writes, now).await
    }

    async fn buckets(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
    ) -> Result<Vec<Bucket>, ScoringError> {
        let sql = format!(
            "SELECT {BUCKET_COLUMNS} FROM buckets WHERE program_id = ?1 AND customer_id = ?2 ORDER BY month"
        );
        let rows: Vec<BucketRow> = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(customer_id)
            .fetch_all(&mut *self.write.tx)
            .await?;
        Ok(rows.into_iter().map(Bucket::from).collect())
    }

    async fn save_cursor(
        &mut self,
        consumer: &str,
        position: &str,
        caught_up_to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        sqlx::query(
            "INSERT INTO feed_cursors (consumer, position, caught_up_to, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (consumer) DO UPDATE SET position = excluded.position,
                 caught_up_to = COALESCE(excluded.caught_up_to, feed_cursors.caught_up_to), updated_at = excluded.updated_at",
        )
        .bind(consumer)
        .bind(position)
        .bind(caught_up_to.map(micros))
        .bind(micros(now))
        .execute(&mut *self.write.tx)
        .await?;
        Ok(())
    }

    async fn claim(
        &mut self,
        request: &IdempotentRequest,
        resource_id: Uuid,
    ) -> Result<Option<PriorRequest>, ScoringError> {
        super::idempotency::claim(&mut self.write.tx, request, resource_id).await
    }

    async fn queue_cache_repair(
        &mut self,
        program_id: Uuid,
        generation: i32,
        customer_ids: &[Uuid],
    ) -> Result<i64, ScoringError> {
        super::cache_repairs::queue(&mut self.write.tx, program_id, generation, customer_ids).await
    }

    async fn commit(self: Box<Self>) -> Result<(), ScoringError> {
        self.write.commit().await
    }
}

#[async_trait]
impl ActivityConsumption for SqliteScoringStore {
    async fn try_lock_feed_consumer(
        &self,
    ) -> Result<Option<crate::storage::RunLock>, ScoringError> {
        Ok(self.locks.try_lock("activity-feed"))
    }

    async fn begin(&self) -> Result<Box<dyn ScoringTx>, ScoringError> {
        Ok(Box::new(SqliteScoringTx {
            write: self.begin_write().await?,
        }))
    }

    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, ScoringError> {
        Ok(tierline_runtime::follower::park_in_sqlite(&self.pool, consumer, letters).await?)
    }

    async fn feed_progress(&self, consumer: &str) -> Result<Option<FeedProgress>, ScoringError> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT position, caught_up_to FROM feed_cursors WHERE consumer = ?1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(position, caught_up_to)| FeedProgress {
            position,
            caught_up_to: caught_up_to.map(from_micros),
        }))
    }
}
