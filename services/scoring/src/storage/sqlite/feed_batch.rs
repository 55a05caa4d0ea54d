//! A feed batch's loads and writes on SQLite: one statement per kind of row, whatever the batch
//! size, the keys and rows bound as one JSON parameter each (`tierline_runtime::sqlite::rows_param`:
//! a statement is a round trip to sqlx's worker thread, which is what a row at a time paid for).
//! The transaction holds SQLite's write lock, so the locks Postgres takes row by row are implied.

use chrono::{DateTime, Utc};
use tierline_runtime::instant::micros;
use tierline_runtime::sqlite::rows_param;
use uuid::Uuid;

use super::{
    Write,
    buckets::add_to_buckets,
    rows::{
        COUNTED_COLUMNS, CountedRow, MEMBER_COLUMNS, MemberRow, ProfileRow, STATE_COLUMNS, db_rank,
    },
};
use crate::{
    ScoringError,
    domain::{
        accrual::CountedPurchase,
        feed_batch::{FeedKeys, FeedLoad, FeedWrites, Pair, StateWrite},
        month::Month,
        state::Member,
    },
    storage::feed_load::{KeyedBucket, KeyedState, feed_load},
};

/// Every (program, id) pair of the programs in force and `ids`.
fn every_program(keys: &FeedKeys, ids: &[Uuid]) -> Vec<Pair> {
    keys.programs
        .iter()
        .flat_map(|(program, _)| ids.iter().map(move |id| (*program, *id)))
        .collect()
}

/// Loads what `keys` name.
#[tracing::instrument(skip_all, fields(customers = keys.customers.len(), states = keys.states.len()))]
pub(super) async fn load(write: &mut Write, keys: &FeedKeys) -> Result<FeedLoad, ScoringError> {
    let members: Vec<MemberRow> = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members
         WHERE customer_id IN (SELECT unhex(value, '-') FROM json_each(?1))"
    ))
    .bind(rows_param(&keys.customers))
    .fetch_all(&mut *write.tx)
    .await?;
    let states_param = rows_param(&keys.states);
    let states: Vec<KeyedState> = sqlx::query_as(&format!(
        "SELECT s.program_id, s.customer_id, {STATE_COLUMNS}
         FROM json_each(?1) k
              JOIN tier_states s ON s.program_id = unhex(k.value ->> 0, '-') AND s.customer_id = unhex(k.value ->> 1, '-')"
    ))
    .bind(&states_param)
    .fetch_all(&mut *write.tx)
    .await?;
    let buckets: Vec<KeyedBucket> = sqlx::query_as(
        "SELECT b.program_id, b.customer_id, b.month, b.net_spend_minor, b.points, b.purchases
         FROM json_each(?1) k
              JOIN buckets b ON b.program_id = unhex(k.value ->> 0, '-') AND b.customer_id = unhex(k.value ->> 1, '-')
         ORDER BY b.program_id, b.customer_id, b.month",
    )
    .bind(&states_param)
    .fetch_all(&mut *write.tx)
    .await?;
    let counted: Vec<CountedRow> = sqlx::query_as(&format!(
        "SELECT {COUNTED_COLUMNS}
         FROM json_each(?1) k
              JOIN counted_purchases ON program_id = unhex(k.value ->> 0, '-') AND activity_id = unhex(k.value ->> 1, '-')"
    ))
    .bind(rows_param(&every_program(keys, &keys.purchases)))
    .fetch_all(&mut *write.tx)
    .await?;
    let applied: Vec<Pair> = if keys.refunds.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT r.program_id, r.activity_id
             FROM json_each(?1) k
                  JOIN applied_refunds r
                       ON r.program_id = unhex(k.value ->> 0, '-') AND r.activity_id = unhex(k.value ->> 1, '-')",
        )
        .bind(rows_param(&every_program(keys, &keys.refunds)))
        .fetch_all(&mut *write.tx)
        .await?
    };
    let profiles = super::purchase_profiles::load(&mut write.tx, &keys.states)
        .await?
        .into_iter()
        .map(ProfileRow::keyed)
        .collect();
    let buckets = buckets.into_iter().map(KeyedBucket::keyed).collect();
    Ok(feed_load(
        keys, members, states, buckets, counted, applied, profiles,
    ))
}

/// Writes what a batch changed.
#[tracing::instrument(skip_all, fields(states = writes.states.len(), purchases = writes.counted.len()))]
pub(super) async fn write(
    write: &mut Write,
    writes: &FeedWrites,
    now: DateTime<Utc>,
) -> Result<(), ScoringError> {
    write_members(write, &writes.members).await?;
    write_counted(write, &writes.counted).await?;
    write_refunds(write, writes).await?;
    add_to_buckets(&mut write.tx, &writes.buckets).await?;
    add_to_buckets(&mut write.tx, &writes.new_buckets).await?;
    super::purchase_profiles::write(&mut write.tx, &writes.profiles).await?;
    super::purchase_profiles::write(&mut write.tx, &writes.new_profiles).await?;
    super::purchase_profiles::recount(&mut write.tx, &writes.recounted_profiles).await?;
    write_states(write, &writes.states, now).await?;
    super::history::insert(write, &writes.history).await
}

async fn write_members(write: &mut Write, members: &[Member]) -> Result<(), ScoringError> {
    if members.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = members
        .iter()
        .map(|m| (m.customer_id, micros(m.joined_at), m.erased))
        .collect();
    sqlx::query(
        "INSERT INTO members (customer_id, joined_at, erased)
         SELECT unhex(value ->> 0, '-'), value ->> 1, value ->> 2 FROM json_each(?1) WHERE true
         ON CONFLICT (customer_id) DO UPDATE SET erased = members.erased OR excluded.erased,
             joined_at = min(members.joined_at, excluded.joined_at)",
    )
    .bind(rows_param(&rows))
    .execute(&mut *write.tx)
    .await?;
    Ok(())
}

async fn write_counted(
    write: &mut Write,
    counted: &[(Uuid, CountedPurchase)],
) -> Result<(), ScoringError> {
    if counted.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = counted
        .iter()
        .map(|(program_id, p)| {
            (
                program_id,
                p.activity_id,
                p.customer_id,
                micros(p.occurred_at),
                p.amount_minor,
                p.refunded_minor,
                p.points,
                &p.brand,
                &p.sales_channel,
            )
        })
        .collect();
    let inserted = sqlx::query(
        "INSERT INTO counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, refunded_minor, points,
                                        brand, sales_channel)
         SELECT unhex(value ->> 0, '-'), unhex(value ->> 1, '-'), unhex(value ->> 2, '-'), value ->> 3, value ->> 4,
                value ->> 5, value ->> 6, value ->> 7, value ->> 8
         FROM json_each(?1) WHERE true
         ON CONFLICT DO NOTHING",
    )
    .bind(rows_param(&rows))
    .execute(&mut *write.tx)
    .await?
    .rows_affected();
    if inserted != counted.len() as u64 {
        return Err(ScoringError::Aborted(
            "purchases of the batch were counted by another writer meanwhile".into(),
        ));
    }
    Ok(())
}

async fn write_refunds(write: &mut Write, writes: &FeedWrites) -> Result<(), ScoringError> {
    if !writes.refunded.is_empty() {
        sqlx::query(
            "UPDATE counted_purchases SET refunded_minor = k.value ->> 2
             FROM json_each(?1) k
             WHERE counted_purchases.program_id = unhex(k.value ->> 0, '-')
               AND counted_purchases.activity_id = unhex(k.value ->> 1, '-')",
        )
        .bind(rows_param(&writes.refunded))
        .execute(&mut *write.tx)
        .await?;
    }
    if !writes.applied_refunds.is_empty() {
        let inserted = sqlx::query(
            "INSERT INTO applied_refunds (program_id, activity_id)
             SELECT unhex(value ->> 0, '-'), unhex(value ->> 1, '-') FROM json_each(?1) WHERE true
             ON CONFLICT DO NOTHING",
        )
        .bind(rows_param(&writes.applied_refunds))
        .execute(&mut *write.tx)
        .await?
        .rows_affected();
        if inserted != writes.applied_refunds.len() as u64 {
            return Err(ScoringError::Aborted(
                "refunds of the batch were applied by another writer meanwhile".into(),
            ));
        }
    }
    Ok(())
}

/// Saves the states in one statement: a new one at version 1, an existing one a version higher,
/// each with its review.
async fn write_states(
    write: &mut Write,
    states: &[StateWrite],
    now: DateTime<Utc>,
) -> Result<(), ScoringError> {
    if states.is_empty() {
        return Ok(());
    }
    let new: Vec<Pair> = states
        .iter()
        .filter(|state| state.is_new)
        .map(|state| state.pair)
        .collect();
    if !new.is_empty() {
        let created: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM json_each(?1) k
                 JOIN tier_states s ON s.program_id = unhex(k.value ->> 0, '-') AND s.customer_id = unhex(k.value ->> 1, '-')",
        )
        .bind(rows_param(&new))
        .fetch_one(&mut *write.tx)
        .await?;
        if created > 0 {
            return Err(ScoringError::Aborted(
                "a tier state of the batch was created by another writer meanwhile".into(),
            ));
        }
    }
    let rows: Vec<serde_json::Value> = states
        .iter()
        .map(|write| {
            let state = &write.stored.state;
            let manual = state.manual.as_ref();
            serde_json::json!([
                write.pair.0,
                write.pair.1,
                db_rank(state.earned_rank),
                micros(state.since),
                state.last_qualified_at.map(micros),
                manual.map(|m| db_rank(m.rank)),
                manual.map(|m| micros(m.until)),
                manual.map(|m| &m.reason),
                manual.map(|m| &m.operator),
                manual.map(|m| micros(m.set_at)),
                state.lapsed_at.map(micros),
                write
                    .review
                    .and_then(|review| review.month)
                    .map(Month::first_day),
                write.review.map(|review| review.policy_version_id),
            ])
        })
        .collect();
    sqlx::query(
        "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, last_qualified_at, override_rank, override_until,
                                  override_reason, override_operator, override_set_at, lapsed_at, review_month, reviewed_under,
                                  version, updated_at)
         SELECT unhex(value ->> 0, '-'), unhex(value ->> 1, '-'), value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, unhex(value ->> 12, '-'),
                1, ?2
         FROM json_each(?1) WHERE true
         ON CONFLICT (program_id, customer_id) DO UPDATE SET
             earned_rank = excluded.earned_rank, since = excluded.since, last_qualified_at = excluded.last_qualified_at,
             override_rank = excluded.override_rank, override_until = excluded.override_until,
             override_reason = excluded.override_reason, override_operator = excluded.override_operator,
             override_set_at = excluded.override_set_at, lapsed_at = excluded.lapsed_at,
             review_month = excluded.review_month, reviewed_under = excluded.reviewed_under,
             version = tier_states.version + 1, updated_at = excluded.updated_at",
    )
    .bind(rows_param(&rows))
    .bind(micros(now))
    .execute(&mut *write.tx)
    .await?;
    Ok(())
}
