//! The Postgres unit of work of the activity-feed consumer, and what else the consumer needs
//! (its leader lock, its progress, the dead-letter table).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{
    PgScoringStore,
    months::{MonthColumns, month_columns},
    rows::{MEMBER_COLUMNS, MemberRow, STATE_COLUMNS, StateRow, db_rank},
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

/// A transaction on the scoring schema.
#[derive(Debug)]
pub struct PgScoringTx {
    pub(super) tx: Transaction<'static, Postgres>,
    /// Where the states of the feed batch loaded in this transaction lie, for its write.
    pub(super) locked_states: super::feed_batch::LockedStates,
}

/// A transaction whose statements find their rows by key. A unit of work reads and writes the
/// rows a batch names, joined from arrays (`unnest`); past some thousands of them the planner
/// would rather hash the whole table than look each row up: a feed batch's 10,000 states took
/// 369 ms that way against 91 ms by the key, and an evaluation chunk's 20,000 reviews 461 to
/// 520 ms against 152 to 165 ms, with a million members (docs/BENCHMARKS.md). Hash and merge
/// joins are off for the transaction only.
pub(super) async fn begin_by_key(
    pool: &sqlx::PgPool,
) -> Result<Transaction<'static, Postgres>, ScoringError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)",
    )
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

/// The advisory lock key of the activity-feed leader ("tierline" "feed" in ASCII).
const FEED_LEADER_LOCK: i64 = 0x7469_6572_6c66_6565;

#[async_trait]
impl ScoringTx for PgScoringTx {
    async fn upsert_member(&mut self, member: Member) -> Result<(), ScoringError> {
        sqlx::query(
            "INSERT INTO members (customer_id, joined_at, erased) VALUES ($1, $2, $3)
             ON CONFLICT (customer_id) DO UPDATE SET erased = members.erased OR EXCLUDED.erased,
                 joined_at = LEAST(members.joined_at, EXCLUDED.joined_at)",
        )
        .bind(member.customer_id)
        .bind(member.joined_at)
        .bind(member.erased)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn member(&mut self, customer_id: Uuid) -> Result<Option<Member>, ScoringError> {
        let row: Option<MemberRow> = sqlx::query_as(&format!(
            "SELECT {MEMBER_COLUMNS} FROM members WHERE customer_id = $1"
        ))
        .bind(customer_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(Member::from))
    }

    async fn lock_or_create_state(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
        initial: &TierState,
    ) -> Result<StoredState, ScoringError> {
        // Insert-if-absent first: a plain SELECT … FOR UPDATE locks nothing when the row does
        // not exist, and two first writers would then overwrite each other.
        sqlx::query(
            "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, version, updated_at)
             VALUES ($1, $2, $3, $4, 0, $4) ON CONFLICT (program_id, customer_id) DO NOTHING",
        )
        .bind(program_id)
        .bind(customer_id)
        .bind(db_rank(initial.earned_rank))
        .bind(initial.since)
        .execute(&mut *self.tx)
        .await?;
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM tier_states WHERE program_id = $1 AND customer_id = $2 FOR UPDATE"
        );
        let row: StateRow = sqlx::query_as(&sql)
            .bind(program_id)
            .bind(customer_id)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(StoredState::from(row))
    }

    async fn guard_buckets(&mut self) -> Result<(), ScoringError> {
        super::months::guard_months(&mut self.tx, false).await?;
        Ok(())
    }

    async fn save_state(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
        stored: &StoredState,
        now: DateTime<Utc>,
    ) -> Result<i64, ScoringError> {
        let state = &stored.state;
        let manual = state.manual.as_ref();
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, last_qualified_at, override_rank, override_until,
                                      override_reason, override_operator, override_set_at, lapsed_at, version, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12)
             ON CONFLICT (program_id, customer_id) DO UPDATE SET
                 earned_rank = EXCLUDED.earned_rank, since = EXCLUDED.since, last_qualified_at = EXCLUDED.last_qualified_at,
                 override_rank = EXCLUDED.override_rank, override_until = EXCLUDED.override_until,
                 override_reason = EXCLUDED.override_reason, override_operator = EXCLUDED.override_operator,
                 override_set_at = EXCLUDED.override_set_at, lapsed_at = EXCLUDED.lapsed_at,
                 version = tier_states.version + 1, updated_at = EXCLUDED.updated_at
             RETURNING version",
        )
        .bind(program_id)
        .bind(customer_id)
        .bind(db_rank(state.earned_rank))
        .bind(state.since)
        .bind(state.last_qualified_at)
        .bind(manual.map(|m| db_rank(m.rank)))
        .bind(manual.map(|m| m.until))
        .bind(manual.map(|m| m.reason.clone()))
        .bind(manual.map(|m| m.operator.clone()))
        .bind(manual.map(|m| m.set_at))
        .bind(state.lapsed_at)
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(version)
    }

    async fn record(&mut self, record: &HistoryRecord) -> Result<(), ScoringError> {
        super::history::insert(&mut self.tx, std::slice::from_ref(record)).await
    }

    async fn load_feed_batch(&mut self, keys: &FeedKeys) -> Result<FeedLoad, ScoringError> {
        let (loaded, locked) = super::feed_batch::load(&mut self.tx, keys).await?;
        self.locked_states = locked;
        Ok(loaded)
    }

    async fn known_purchase_days(
        &mut self,
        days: &[PurchaseDay],
    ) -> Result<Vec<(Pair, NaiveDate)>, ScoringError> {
        super::purchase_profiles::known_days(&mut self.tx, days).await
    }

    async fn write_feed_batch(
        &mut self,
        writes: &FeedWrites,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        // The locations serve this one write: it moves the rows, and a later write in the same
        // transaction locates them again.
        let locked = std::mem::take(&mut self.locked_states);
        super::feed_batch::write(&mut self.tx, writes, &locked, now).await
    }

    async fn buckets(
        &mut self,
        program_id: Uuid,
        customer_id: Uuid,
    ) -> Result<Vec<Bucket>, ScoringError> {
        let months: Option<MonthColumns> = sqlx::query_as(&format!(
            "SELECT {months} FROM tier_states s WHERE program_id = $1 AND customer_id = $2",
            months = month_columns("s"),
        ))
        .bind(program_id)
        .bind(customer_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(months.map(|months| months.buckets()).unwrap_or_default())
    }

    async fn save_cursor(
        &mut self,
        consumer: &str,
        position: &str,
        caught_up_to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), ScoringError> {
        sqlx::query(
            "INSERT INTO feed_cursors (consumer, position, caught_up_to, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (consumer) DO UPDATE SET position = EXCLUDED.position,
                 caught_up_to = COALESCE(EXCLUDED.caught_up_to, feed_cursors.caught_up_to), updated_at = EXCLUDED.updated_at",
        )
        .bind(consumer)
        .bind(position)
        .bind(caught_up_to)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn claim(
        &mut self,
        request: &IdempotentRequest,
        resource_id: Uuid,
    ) -> Result<Option<PriorRequest>, ScoringError> {
        super::idempotency::claim(&mut self.tx, request, resource_id).await
    }

    async fn queue_cache_repair(
        &mut self,
        program_id: Uuid,
        generation: i32,
        customer_ids: &[Uuid],
    ) -> Result<i64, ScoringError> {
        super::cache_repairs::queue(&mut self.tx, program_id, generation, customer_ids).await
    }

    async fn commit(self: Box<Self>) -> Result<(), ScoringError> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl ActivityConsumption for PgScoringStore {
    async fn try_lock_feed_consumer(
        &self,
    ) -> Result<Option<crate::storage::RunLock>, ScoringError> {
        // Ends with its connection, also when this replica dies: another replica then leads.
        Ok(tierline_runtime::lock::try_session_lock(&self.pool, FEED_LEADER_LOCK).await?)
    }

    async fn begin(&self) -> Result<Box<dyn ScoringTx>, ScoringError> {
        Ok(Box::new(PgScoringTx {
            tx: begin_by_key(&self.pool).await?,
            locked_states: Default::default(),
        }))
    }

    async fn park_dead_letters(
        &self,
        consumer: &str,
        letters: &[tierline_runtime::follower::DeadLetter],
    ) -> Result<u64, ScoringError> {
        Ok(tierline_runtime::follower::park_in_postgres(&self.pool, consumer, letters).await?)
    }

    async fn feed_progress(&self, consumer: &str) -> Result<Option<FeedProgress>, ScoringError> {
        let row: Option<(String, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT position, caught_up_to FROM feed_cursors WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(position, caught_up_to)| FeedProgress {
            position,
            caught_up_to,
        }))
    }
}
