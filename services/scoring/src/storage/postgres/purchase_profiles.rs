//! Purchase profiles on Postgres, kept on the tier states (migrations `20261206100026` and
//! `20261206100027`): read with a feed batch's states and written with them (`feed_batch.rs`),
//! and counted again from the purchases, set-based, for the pairs a batch cannot add to in place
//! and for the customers a bucket rebuild covers.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    ScoringError,
    domain::{
        feed_batch::{Pair, PurchaseDay},
        purchase_profile::PurchaseProfile,
    },
};

/// The profile columns of `tier_states`, in the order [`ProfileColumns`] binds them.
pub(super) const STATE_PROFILE_COLUMNS: &str = "last_purchase_at, first_day, last_day, purchase_days, repeat_spend_minor, first_day_spend_minor";

/// A tier state's profile columns ([`STATE_PROFILE_COLUMNS`]): all NULL when its customer has
/// no purchase that counts, all but the first day's spend set otherwise.
#[derive(sqlx::FromRow)]
pub(super) struct StateProfileRow {
    last_purchase_at: Option<DateTime<Utc>>,
    first_day: Option<NaiveDate>,
    last_day: Option<NaiveDate>,
    purchase_days: Option<i32>,
    repeat_spend_minor: Option<i64>,
    first_day_spend_minor: Option<i64>,
}

impl StateProfileRow {
    /// The profile, if the state has one.
    pub(super) fn profile(self) -> Option<PurchaseProfile> {
        Some(PurchaseProfile {
            last_purchase_at: self.last_purchase_at?,
            first_day: self.first_day?,
            last_day: self.last_day?,
            purchase_days: u32::try_from(self.purchase_days?).unwrap_or(u32::MAX),
            repeat_spend_minor: self.repeat_spend_minor?,
            first_day_spend_minor: self.first_day_spend_minor,
        })
    }
}

/// Profiles as column arrays to bind and unnest, one entry per state written: NULLs where a
/// state's profile is not written.
pub(super) struct ProfileColumns {
    last_purchase_at: Vec<Option<DateTime<Utc>>>,
    first_day: Vec<Option<NaiveDate>>,
    last_day: Vec<Option<NaiveDate>>,
    purchase_days: Vec<Option<i32>>,
    repeat_spend_minor: Vec<Option<i64>>,
    first_day_spend_minor: Vec<Option<i64>>,
}

impl ProfileColumns {
    /// The columns of `profiles`, one entry each.
    pub(super) fn of<'a>(profiles: impl Iterator<Item = Option<&'a PurchaseProfile>>) -> Self {
        let mut columns = Self {
            last_purchase_at: Vec::new(),
            first_day: Vec::new(),
            last_day: Vec::new(),
            purchase_days: Vec::new(),
            repeat_spend_minor: Vec::new(),
            first_day_spend_minor: Vec::new(),
        };
        for profile in profiles {
            columns
                .last_purchase_at
                .push(profile.map(|p| p.last_purchase_at));
            columns.first_day.push(profile.map(|p| p.first_day));
            columns.last_day.push(profile.map(|p| p.last_day));
            columns
                .purchase_days
                .push(profile.map(|p| i32::try_from(p.purchase_days).unwrap_or(i32::MAX)));
            columns
                .repeat_spend_minor
                .push(profile.map(|p| p.repeat_spend_minor));
            columns
                .first_day_spend_minor
                .push(profile.and_then(|p| p.first_day_spend_minor));
        }
        columns
    }

    /// Binds the columns to `query` after what it has bound, in the order of
    /// [`STATE_PROFILE_COLUMNS`].
    pub(super) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.last_purchase_at)
            .bind(&self.first_day)
            .bind(&self.last_day)
            .bind(&self.purchase_days)
            .bind(&self.repeat_spend_minor)
            .bind(&self.first_day_spend_minor)
    }
}

/// Those of `days` on which their pair has a counted purchase not refunded in full: one probe
/// of the purchases' per-customer key each.
#[tracing::instrument(skip_all, fields(days = days.len()))]
pub(super) async fn known_days(
    tx: &mut Transaction<'static, Postgres>,
    days: &[PurchaseDay],
) -> Result<Vec<(Pair, NaiveDate)>, ScoringError> {
    let column = |f: &dyn Fn(&PurchaseDay) -> DateTime<Utc>| -> Vec<DateTime<Utc>> {
        days.iter().map(f).collect()
    };
    let rows: Vec<(Uuid, Uuid, NaiveDate)> = sqlx::query_as(
        "SELECT k.p, k.c, k.d
         FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::timestamptz[], $5::timestamptz[]) AS k(p, c, d, s, e)
         WHERE EXISTS (SELECT 1 FROM counted_purchases cp
                       WHERE cp.program_id = k.p AND cp.customer_id = k.c AND cp.occurred_at >= k.s
                         AND cp.occurred_at < k.e AND cp.refunded_minor < cp.amount_minor)",
    )
    .bind(days.iter().map(|day| day.pair.0).collect::<Vec<Uuid>>())
    .bind(days.iter().map(|day| day.pair.1).collect::<Vec<Uuid>>())
    .bind(days.iter().map(|day| day.day).collect::<Vec<NaiveDate>>())
    .bind(column(&|day| day.starts_at))
    .bind(column(&|day| day.ends_at))
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(program, customer, day)| ((program, customer), day))
        .collect())
}

/// Counts the profiles of `pairs` again from their purchases, days in each pair's zone: the
/// arithmetic of `PurchaseProfile::of`, set-based (a customer without a purchase that counts
/// is left without a profile). A buyer without a tier state (a population loaded around the
/// feed) gets the state the feed gives a first purchase, the base tier since joining. The
/// caller holds what keeps the purchases from changing meanwhile (the batch's locks, or the
/// bucket rebuild's), and has written the batch's states.
#[tracing::instrument(skip_all, fields(pairs = pairs.len()))]
pub(super) async fn recount(
    tx: &mut Transaction<'static, Postgres>,
    pairs: &[(Pair, Tz)],
) -> Result<(), ScoringError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let programs: Vec<Uuid> = pairs.iter().map(|((program, _), _)| *program).collect();
    let customers: Vec<Uuid> = pairs.iter().map(|((_, customer), _)| *customer).collect();
    let zones: Vec<&str> = pairs.iter().map(|(_, zone)| zone.name()).collect();
    // One statement: the counts are written over the states' profiles in place, and the pairs
    // left with no purchase that counts lose theirs. The second update sees the states as they
    // were before the upsert (one snapshot for the whole statement), and leaves alone every pair
    // the upsert wrote. The profile is not part of a cached record, so the state's version
    // stays; `updated_at` moves, as with every rewrite of a state (a run walking the states by
    // block looks again at those rewritten since it started). The states are matched by key
    // alone: a condition on their profile columns, which a bulk recount fills faster than
    // statistics follow, had the planner expect one state where there were hundreds of
    // thousands; a pair with no profile to clear (rare: every purchase refunded in full, its
    // profile already cleared) is rewritten unchanged. `NOT IN` over the upserted keys is one hashed subplan, which the feed's key-by-key
    // planning (hash joins off) leaves alone; an anti-join would walk the upserted keys once for
    // every pair.
    sqlx::query(&format!(
        "WITH counted AS (
             INSERT INTO tier_states (program_id, customer_id, earned_rank, since, version, updated_at, {STATE_PROFILE_COLUMNS})
             SELECT p, c, 0, COALESCE(m.joined_at, last_at), 1, now(), last_at, first_day, last_day, days,
                    total - first_day_spend, first_day_spend
             FROM (SELECT p, c, max(last_at) AS last_at, min(day) AS first_day, max(day) AS last_day, count(*) AS days,
                          sum(spend) AS total, (array_agg(spend ORDER BY day))[1] AS first_day_spend
                   FROM (SELECT k.p, k.c, (cp.occurred_at AT TIME ZONE k.z)::date AS day,
                                sum(cp.amount_minor - cp.refunded_minor) AS spend, max(cp.occurred_at) AS last_at
                         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(p, c, z)
                              JOIN counted_purchases cp ON cp.program_id = k.p AND cp.customer_id = k.c
                         WHERE cp.refunded_minor < cp.amount_minor
                         GROUP BY 1, 2, 3) days
                   GROUP BY p, c) counts
                  LEFT JOIN members m ON m.customer_id = c
             ON CONFLICT (program_id, customer_id) DO UPDATE SET
                 last_purchase_at = EXCLUDED.last_purchase_at, first_day = EXCLUDED.first_day,
                 last_day = EXCLUDED.last_day, purchase_days = EXCLUDED.purchase_days,
                 repeat_spend_minor = EXCLUDED.repeat_spend_minor,
                 first_day_spend_minor = EXCLUDED.first_day_spend_minor, updated_at = EXCLUDED.updated_at
             RETURNING program_id, customer_id)
         UPDATE tier_states s SET last_purchase_at = NULL, first_day = NULL, last_day = NULL, purchase_days = NULL,
             repeat_spend_minor = NULL, first_day_spend_minor = NULL, updated_at = now()
         FROM unnest($1::uuid[], $2::uuid[]) AS k(p, c)
         WHERE s.program_id = k.p AND s.customer_id = k.c
           AND (k.p, k.c) NOT IN (SELECT program_id, customer_id FROM counted)"
    ))
    .bind(&programs)
    .bind(&customers)
    .bind(&zones)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl super::PgScoringStore {
    /// Counts every purchase profile of `program_id` again from its purchases, days in `zone`,
    /// `chunk` customers per transaction; returns the customers counted. A repair for purchases
    /// changed outside the feed (a data fix, a partial restore), and how the benchmarks give a
    /// population loaded in bulk its profiles; the feed and the bucket rebuild keep profiles
    /// themselves. Each chunk holds off the feed's writes as a bucket rebuild's does.
    #[tracing::instrument(skip(self))]
    pub async fn recount_purchase_profiles(
        &self,
        program_id: Uuid,
        zone: Tz,
        chunk: u32,
    ) -> Result<u64, ScoringError> {
        let (mut after, mut counted) = (Uuid::nil(), 0);
        loop {
            let mut tx = self.pool.begin().await?;
            let customers =
                super::buyer_chunks::lock_next_buyers(&mut tx, program_id, after, chunk).await?;
            let pairs: Vec<_> = customers
                .iter()
                .map(|customer| ((program_id, *customer), zone))
                .collect();
            recount(&mut tx, &pairs).await?;
            tx.commit().await?;
            counted += customers.len() as u64;
            match customers.last() {
                Some(last) if customers.len() == chunk as usize => after = *last,
                _ => return Ok(counted),
            }
        }
    }
}
