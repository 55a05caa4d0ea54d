//! Purchase profiles on Postgres: loaded and written with a feed batch (arrays unnested, one
//! statement each), and counted again from the purchases, set-based, for the pairs a batch
//! cannot add to in place and for the customers a bucket rebuild covers.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::rows::{PROFILE_COLUMNS, ProfileRow};
use crate::{
    ScoringError,
    domain::{
        feed_batch::{Pair, PurchaseDay},
        purchase_profile::PurchaseProfile,
    },
};

/// The profiles of `pairs` that exist.
#[tracing::instrument(skip_all, fields(pairs = programs.len()))]
pub(super) async fn load(
    tx: &mut Transaction<'static, Postgres>,
    programs: &[Uuid],
    customers: &[Uuid],
) -> Result<Vec<ProfileRow>, ScoringError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PROFILE_COLUMNS}
         FROM purchase_profiles JOIN unnest($1::uuid[], $2::uuid[]) AS k(p, c) ON program_id = k.p AND customer_id = k.c"
    ))
    .bind(programs)
    .bind(customers)
    .fetch_all(&mut **tx)
    .await?)
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

/// Saves profiles as they are: `stored` over the rows the batch loaded, each found by its key
/// and rewritten (an `UPDATE` rewrites the row, where an upsert first locks it and then rewrites
/// it: two changes of the row, and of the WAL, for each), `new` as rows of their own (upserted,
/// as a first purchase is).
#[tracing::instrument(skip_all, fields(stored = stored.len(), new = new.len()))]
pub(super) async fn write(
    tx: &mut Transaction<'static, Postgres>,
    stored: &[(Pair, PurchaseProfile)],
    new: &[(Pair, PurchaseProfile)],
) -> Result<(), ScoringError> {
    if !stored.is_empty() {
        let rewritten = bind_profiles(
            sqlx::query(
                "UPDATE purchase_profiles f SET
                     last_purchase_at = u.l, first_day = u.f, last_day = u.d, purchase_days = u.n,
                     repeat_spend_minor = u.r, first_day_spend_minor = u.s
                 FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::date[], $5::date[], $6::int4[], $7::int8[],
                             $8::int8[]) AS u(p, c, l, f, d, n, r, s)
                 WHERE f.program_id = u.p AND f.customer_id = u.c",
            ),
            stored,
        )
        .execute(&mut **tx)
        .await?
        .rows_affected();
        // Every writer that deletes a profile holds the pair's state or the buckets' lock, as
        // this batch does; a profile gone from under it is a writer that did not.
        super::written::every_row_written(
            rewritten,
            stored.len(),
            "purchase profiles of the batch were deleted by another writer meanwhile",
        )?;
    }
    if !new.is_empty() {
        bind_profiles(
            sqlx::query(&format!(
                "INSERT INTO purchase_profiles ({PROFILE_COLUMNS})
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::date[], $5::date[], $6::int4[],
                                      $7::int8[], $8::int8[])
                 ON CONFLICT (program_id, customer_id) DO UPDATE SET
                     last_purchase_at = EXCLUDED.last_purchase_at, first_day = EXCLUDED.first_day,
                     last_day = EXCLUDED.last_day, purchase_days = EXCLUDED.purchase_days,
                     repeat_spend_minor = EXCLUDED.repeat_spend_minor,
                     first_day_spend_minor = EXCLUDED.first_day_spend_minor"
            )),
            new,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Binds `profiles` as eight arrays, in the order of [`PROFILE_COLUMNS`].
fn bind_profiles<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    profiles: &[(Pair, PurchaseProfile)],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    fn column<T>(
        profiles: &[(Pair, PurchaseProfile)],
        f: impl Fn(&PurchaseProfile) -> T,
    ) -> Vec<T> {
        profiles.iter().map(|(_, profile)| f(profile)).collect()
    }
    let (programs, customers): (Vec<Uuid>, Vec<Uuid>) =
        profiles.iter().map(|(pair, _)| *pair).unzip();
    query
        .bind(programs)
        .bind(customers)
        .bind(column(profiles, |profile| profile.last_purchase_at))
        .bind(column(profiles, |profile| profile.first_day))
        .bind(column(profiles, |profile| profile.last_day))
        .bind(column(profiles, |profile| {
            i32::try_from(profile.purchase_days).unwrap_or(i32::MAX)
        }))
        .bind(column(profiles, |profile| profile.repeat_spend_minor))
        .bind(column(profiles, |profile| profile.first_day_spend_minor))
}

/// Counts the profiles of `pairs` again from their purchases, days in each pair's zone: the
/// arithmetic of `PurchaseProfile::of`, set-based (a customer without a purchase that counts
/// is left without a profile). The caller holds what keeps the purchases from changing
/// meanwhile (the batch's locks, or the bucket rebuild's).
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
    // One statement: the counts are written over the profiles in place, and the pairs left with
    // no purchase that counts lose theirs. The delete sees the profiles as they were before the
    // upsert (one snapshot for the whole statement), and leaves alone every pair the upsert
    // wrote. A delete of every pair and an insert of the counts (as before) wrote a new row and
    // new index entries for each pair: in the feed bench, where purchases arrive in no order,
    // that was most of what the profiles cost the feed (docs/BENCHMARKS.md). `NOT IN` over the
    // upserted keys is one hashed subplan, which the feed's key-by-key planning (hash joins
    // off) leaves alone; an anti-join would walk the upserted keys once for every pair.
    sqlx::query(&format!(
        "WITH counted AS (
             INSERT INTO purchase_profiles ({PROFILE_COLUMNS})
             SELECT p, c, last_at, first_day, last_day, days, total - first_day_spend, first_day_spend
             FROM (SELECT p, c, max(last_at) AS last_at, min(day) AS first_day, max(day) AS last_day, count(*) AS days,
                          sum(spend) AS total, (array_agg(spend ORDER BY day))[1] AS first_day_spend
                   FROM (SELECT k.p, k.c, (cp.occurred_at AT TIME ZONE k.z)::date AS day,
                                sum(cp.amount_minor - cp.refunded_minor) AS spend, max(cp.occurred_at) AS last_at
                         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(p, c, z)
                              JOIN counted_purchases cp ON cp.program_id = k.p AND cp.customer_id = k.c
                         WHERE cp.refunded_minor < cp.amount_minor
                         GROUP BY 1, 2, 3) days
                   GROUP BY p, c) counts
             ON CONFLICT (program_id, customer_id) DO UPDATE SET
                 last_purchase_at = EXCLUDED.last_purchase_at, first_day = EXCLUDED.first_day,
                 last_day = EXCLUDED.last_day, purchase_days = EXCLUDED.purchase_days,
                 repeat_spend_minor = EXCLUDED.repeat_spend_minor,
                 first_day_spend_minor = EXCLUDED.first_day_spend_minor
             RETURNING program_id, customer_id)
         DELETE FROM purchase_profiles f USING unnest($1::uuid[], $2::uuid[]) AS k(p, c)
         WHERE f.program_id = k.p AND f.customer_id = k.c
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
