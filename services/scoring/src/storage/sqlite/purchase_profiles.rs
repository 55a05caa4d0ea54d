//! Purchase profiles on SQLite: loaded and written with a feed batch (one JSON parameter per
//! statement), and counted again from the purchases by the domain's own fold
//! ([`PurchaseProfile::of`]), as SQLite knows no time zones: for the pairs a batch cannot add to
//! in place, for the customers a bucket rebuild covers, and, when the store opens, for
//! purchases counted before profiles were kept.

use std::collections::HashMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use sqlx::{Sqlite, Transaction};
use tierline_runtime::{
    instant::{StoredInstant, micros},
    sqlite::rows_param,
};
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
#[tracing::instrument(skip_all, fields(pairs = pairs.len()))]
pub(super) async fn load(
    tx: &mut Transaction<'static, Sqlite>,
    pairs: &[Pair],
) -> Result<Vec<ProfileRow>, ScoringError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PROFILE_COLUMNS}
         FROM json_each(?1) k
              JOIN purchase_profiles ON program_id = unhex(k.value ->> 0, '-') AND customer_id = unhex(k.value ->> 1, '-')"
    ))
    .bind(rows_param(pairs))
    .fetch_all(&mut **tx)
    .await?)
}

/// Those of `days` on which their pair has a counted purchase not refunded in full.
#[tracing::instrument(skip_all, fields(days = days.len()))]
pub(super) async fn known_days(
    tx: &mut Transaction<'static, Sqlite>,
    days: &[PurchaseDay],
) -> Result<Vec<(Pair, NaiveDate)>, ScoringError> {
    let rows: Vec<_> = days
        .iter()
        .map(|day| {
            (
                day.pair.0,
                day.pair.1,
                day.day,
                micros(day.starts_at),
                micros(day.ends_at),
            )
        })
        .collect();
    let found: Vec<(Uuid, Uuid, NaiveDate)> = sqlx::query_as(
        "SELECT unhex(k.value ->> 0, '-'), unhex(k.value ->> 1, '-'), k.value ->> 2
         FROM json_each(?1) k
         WHERE EXISTS (SELECT 1 FROM counted_purchases cp
                       WHERE cp.program_id = unhex(k.value ->> 0, '-') AND cp.customer_id = unhex(k.value ->> 1, '-')
                         AND cp.occurred_at >= k.value ->> 3 AND cp.occurred_at < k.value ->> 4
                         AND cp.refunded_minor < cp.amount_minor)",
    )
    .bind(rows_param(&rows))
    .fetch_all(&mut **tx)
    .await?;
    Ok(found
        .into_iter()
        .map(|(program, customer, day)| ((program, customer), day))
        .collect())
}

/// Saves `profiles` as they are.
#[tracing::instrument(skip_all, fields(profiles = profiles.len()))]
pub(super) async fn write(
    tx: &mut Transaction<'static, Sqlite>,
    profiles: &[(Pair, PurchaseProfile)],
) -> Result<(), ScoringError> {
    if profiles.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = profiles
        .iter()
        .map(|((program_id, customer_id), profile)| {
            (
                program_id,
                customer_id,
                micros(profile.last_purchase_at),
                profile.first_day,
                profile.last_day,
                profile.purchase_days,
                profile.repeat_spend_minor,
                profile.first_day_spend_minor,
            )
        })
        .collect();
    sqlx::query(&format!(
        "INSERT INTO purchase_profiles ({PROFILE_COLUMNS})
         SELECT unhex(value ->> 0, '-'), unhex(value ->> 1, '-'), value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                value ->> 6, value ->> 7
         FROM json_each(?1) WHERE true
         ON CONFLICT (program_id, customer_id) DO UPDATE SET
             last_purchase_at = excluded.last_purchase_at, first_day = excluded.first_day, last_day = excluded.last_day,
             purchase_days = excluded.purchase_days, repeat_spend_minor = excluded.repeat_spend_minor,
             first_day_spend_minor = excluded.first_day_spend_minor"
    ))
    .bind(rows_param(&rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Counts the profiles of `pairs` again from their purchases, days in each pair's zone (a
/// customer without a purchase that counts is left without a profile). The caller holds the
/// write lock.
#[tracing::instrument(skip_all, fields(pairs = pairs.len()))]
pub(super) async fn recount(
    tx: &mut Transaction<'static, Sqlite>,
    pairs: &[(Pair, Tz)],
) -> Result<(), ScoringError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let keys: Vec<Pair> = pairs.iter().map(|(pair, _)| *pair).collect();
    let zones: HashMap<Pair, Tz> = pairs.iter().copied().collect();
    let purchases: Vec<(Uuid, Uuid, StoredInstant, i64)> = sqlx::query_as(
        "SELECT c.program_id, c.customer_id, c.occurred_at, c.amount_minor - c.refunded_minor
         FROM json_each(?1) k
              JOIN counted_purchases c ON c.program_id = unhex(k.value ->> 0, '-') AND c.customer_id = unhex(k.value ->> 1, '-')
         WHERE c.refunded_minor < c.amount_minor
         ORDER BY c.program_id, c.customer_id, c.occurred_at",
    )
    .bind(rows_param(&keys))
    .fetch_all(&mut **tx)
    .await?;
    let profiles: Vec<(Pair, PurchaseProfile)> = purchases
        .chunk_by(|one, next| (one.0, one.1) == (next.0, next.1))
        .filter_map(|own| {
            let pair = (own[0].0, own[0].1);
            let zone = zones.get(&pair).copied().unwrap_or(Tz::UTC);
            let profile = PurchaseProfile::of(own.iter().map(|p| (p.2.into(), p.3)), zone)?;
            Some((pair, profile))
        })
        .collect();
    sqlx::query(
        "DELETE FROM purchase_profiles
         WHERE (program_id, customer_id) IN (SELECT unhex(value ->> 0, '-'), unhex(value ->> 1, '-') FROM json_each(?1))",
    )
    .bind(rows_param(&keys))
    .execute(&mut **tx)
    .await?;
    write(tx, &profiles).await
}

/// Counts the profiles of every customer with a counted purchase and no profile, or a profile
/// without its first day's spend, days in the zone of the program's policy in force (UTC
/// without one): the purchases counted before this store kept profiles, or that spend.
#[tracing::instrument(skip_all)]
pub(super) async fn count_missing(
    tx: &mut Transaction<'static, Sqlite>,
) -> Result<(), ScoringError> {
    let missing: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT c.program_id, c.customer_id,
                (SELECT v.rules ->> '$.time_zone' FROM policy_versions v
                 WHERE v.program_id = c.program_id AND v.status = 'active')
         FROM counted_purchases c
         WHERE c.refunded_minor < c.amount_minor
           AND NOT EXISTS (SELECT 1 FROM purchase_profiles f
                           WHERE f.program_id = c.program_id AND f.customer_id = c.customer_id
                             AND f.first_day_spend_minor IS NOT NULL)",
    )
    .fetch_all(&mut **tx)
    .await?;
    let pairs: Vec<(Pair, Tz)> = missing
        .into_iter()
        .map(|(program_id, customer_id, zone)| {
            let zone = zone.and_then(|name| name.parse().ok()).unwrap_or(Tz::UTC);
            ((program_id, customer_id), zone)
        })
        .collect();
    recount(tx, &pairs).await
}
