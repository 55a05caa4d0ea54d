//! A feed batch's loads and writes on Postgres: one statement per kind of row, whatever the batch
//! size (arrays bound as parameters and unnested), so a batch costs about a dozen round trips.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{
    history,
    months::{FlatMonths, MonthColumns, month_columns},
    purchase_profiles::{ProfileColumns, STATE_PROFILE_COLUMNS, StateProfileRow},
    rows::{COUNTED_COLUMNS, CountedRow, MEMBER_COLUMNS, MemberRow, STATE_COLUMNS, db_rank},
    written::every_row_written,
};
use crate::{
    ScoringError,
    domain::{
        accrual::CountedPurchase,
        feed_batch::{FeedKeys, FeedLoad, FeedWrites, Pair, StateWrite},
        month::Month,
        purchase_profile::PurchaseProfile,
        review::Review,
        state::{Member, StoredState},
        window::Bucket,
    },
    storage::feed_load::{KeyedState, feed_load},
};

/// A locked tier state with its purchase profile's and months' columns and where its row lies.
#[derive(sqlx::FromRow)]
struct StateWithProfile {
    #[sqlx(flatten)]
    state: KeyedState,
    #[sqlx(flatten)]
    profile: StateProfileRow,
    #[sqlx(flatten)]
    months: MonthColumns,
    /// The row's `ctid`, as text.
    location: String,
}

/// A locked state's row as the batch found it: where it lies and its months.
#[derive(Debug)]
struct Locked {
    location: String,
    months: Vec<Bucket>,
}

/// Where each state a batch locked lies in `tier_states` (its `ctid`, as text). A row locked
/// `FOR UPDATE` stays where it is until the transaction changes it (nobody else can update or
/// delete it, and the batch first rewrites it in its states' `UPDATE`; the profile recount
/// comes after), so that `UPDATE` reaches each row directly instead of looking it up by key
/// again: half the statement's time for 2,500 states in `psql` (docs/BENCHMARKS.md). The
/// locations serve one write: the write moves the rows. The months found with them are what
/// the batch's changes to months add to (they cannot change either while the row is locked).
#[derive(Debug, Default)]
pub(super) struct LockedStates(HashMap<Pair, Locked>);

fn unzip(pairs: &[Pair]) -> (Vec<Uuid>, Vec<Uuid>) {
    pairs.iter().copied().unzip()
}

/// Loads what `keys` name; the existing states and counted purchases among them stay locked.
#[tracing::instrument(skip_all, fields(customers = keys.customers.len(), states = keys.states.len()))]
pub(super) async fn load(
    tx: &mut Transaction<'static, Postgres>,
    keys: &FeedKeys,
) -> Result<(FeedLoad, LockedStates), ScoringError> {
    let members: Vec<MemberRow> = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE customer_id = ANY($1)"
    ))
    .bind(&keys.customers)
    .fetch_all(&mut **tx)
    .await?;
    // Locked in (program, customer) order, as every writer that locks several states does.
    let (state_programs, state_customers) = unzip(&keys.states);
    // Each with its purchase profile and its months, which live on the state.
    let rows: Vec<StateWithProfile> = sqlx::query_as(&format!(
        "SELECT s.program_id, s.customer_id, {STATE_COLUMNS}, {STATE_PROFILE_COLUMNS}, {months}, s.ctid::text AS location
         FROM tier_states s JOIN unnest($1::uuid[], $2::uuid[]) AS k(p, c) ON s.program_id = k.p AND s.customer_id = k.c
         ORDER BY s.program_id, s.customer_id FOR UPDATE OF s",
        months = month_columns("s"),
    ))
    .bind(&state_programs)
    .bind(&state_customers)
    .fetch_all(&mut **tx)
    .await?;
    let mut profiles = Vec::new();
    let mut buckets = Vec::new();
    let mut locked = LockedStates::default();
    let states: Vec<KeyedState> = rows
        .into_iter()
        .map(|row| {
            let pair = row.state.pair();
            if let Some(profile) = row.profile.profile() {
                profiles.push((pair, profile));
            }
            let months = row.months.buckets();
            buckets.extend(months.iter().map(|bucket| (pair, *bucket)));
            locked.0.insert(
                pair,
                Locked {
                    location: row.location,
                    months,
                },
            );
            row.state
        })
        .collect();
    // Joined with the keys, not filtered by `= ANY`: each key is one primary-key lookup,
    // whatever the statistics of a fast-growing table say about a program's share of it.
    let every_program = |ids: &[Uuid]| -> (Vec<Uuid>, Vec<Uuid>) {
        keys.programs
            .iter()
            .flat_map(|(program, _)| ids.iter().map(move |id| (*program, *id)))
            .unzip()
    };
    let (programs, purchases) = every_program(&keys.purchases);
    // None when the batch takes its purchases for new ones and has no refund.
    let counted: Vec<CountedRow> = if purchases.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(&format!(
        "SELECT {COUNTED_COLUMNS}
         FROM counted_purchases JOIN unnest($1::uuid[], $2::uuid[]) AS k(p, a) ON program_id = k.p AND activity_id = k.a
         ORDER BY program_id, activity_id FOR UPDATE OF counted_purchases"
    ))
        .bind(&programs)
        .bind(&purchases)
        .fetch_all(&mut **tx)
        .await?
    };
    let applied: Vec<(Uuid, Uuid)> = if keys.refunds.is_empty() {
        Vec::new()
    } else {
        let (programs, refunds) = every_program(&keys.refunds);
        sqlx::query_as(
            "SELECT r.program_id, r.activity_id
             FROM applied_refunds r JOIN unnest($1::uuid[], $2::uuid[]) AS k(p, a) ON r.program_id = k.p AND r.activity_id = k.a",
        )
        .bind(&programs)
        .bind(&refunds)
        .fetch_all(&mut **tx)
        .await?
    };
    Ok((
        feed_load(keys, members, states, buckets, counted, applied, profiles),
        locked,
    ))
}

/// Writes what a batch changed.
#[tracing::instrument(skip_all, fields(states = writes.states.len(), purchases = writes.counted.len()))]
pub(super) async fn write(
    tx: &mut Transaction<'static, Postgres>,
    writes: &FeedWrites,
    locked: &LockedStates,
    now: DateTime<Utc>,
) -> Result<(), ScoringError> {
    write_members(tx, &writes.members).await?;
    write_counted(tx, &writes.counted).await?;
    write_refunds(tx, writes).await?;
    write_states(tx, writes, locked, now).await?;
    // After the states: a pair's recount writes over the profile its state was written with.
    super::purchase_profiles::recount(tx, &writes.recounted_profiles).await?;
    history::insert(tx, &writes.history).await
}

async fn write_members(
    tx: &mut Transaction<'static, Postgres>,
    members: &[Member],
) -> Result<(), ScoringError> {
    if members.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = members.iter().map(|m| m.customer_id).collect();
    let joined: Vec<DateTime<Utc>> = members.iter().map(|m| m.joined_at).collect();
    let erased: Vec<bool> = members.iter().map(|m| m.erased).collect();
    sqlx::query(
        "INSERT INTO members (customer_id, joined_at, erased) SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::bool[])
         ON CONFLICT (customer_id) DO UPDATE SET erased = members.erased OR EXCLUDED.erased,
             joined_at = LEAST(members.joined_at, EXCLUDED.joined_at)",
    )
    .bind(&ids)
    .bind(&joined)
    .bind(&erased)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_counted(
    tx: &mut Transaction<'static, Postgres>,
    counted: &[(Uuid, CountedPurchase)],
) -> Result<(), ScoringError> {
    if counted.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&CountedPurchase) -> i64| -> Vec<i64> {
        counted.iter().map(|(_, p)| f(p)).collect()
    };
    let programs: Vec<Uuid> = counted.iter().map(|(program, _)| *program).collect();
    let activities: Vec<Uuid> = counted.iter().map(|(_, p)| p.activity_id).collect();
    let customers: Vec<Uuid> = counted.iter().map(|(_, p)| p.customer_id).collect();
    let occurred: Vec<DateTime<Utc>> = counted.iter().map(|(_, p)| p.occurred_at).collect();
    let brands: Vec<&str> = counted.iter().map(|(_, p)| p.brand.as_str()).collect();
    let channels: Vec<&str> = counted
        .iter()
        .map(|(_, p)| p.sales_channel.as_str())
        .collect();
    // A plain INSERT, with no conflict check of its own: the batch counts only purchases it did
    // not find counted, and one counted meanwhile (or one the batch did not look up, counted
    // before) violates the key, which refuses the batch (`Aborted`, storage/errors.rs).
    sqlx::query(
        "INSERT INTO counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, refunded_minor, points,
                                        brand, sales_channel)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::int8[], $6::int8[], $7::int8[],
                              $8::text[], $9::text[])",
    )
    .bind(&programs)
    .bind(&activities)
    .bind(&customers)
    .bind(&occurred)
    .bind(column(&|p| p.amount_minor))
    .bind(column(&|p| p.refunded_minor))
    .bind(column(&|p| p.points))
    .bind(&brands)
    .bind(&channels)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_refunds(
    tx: &mut Transaction<'static, Postgres>,
    writes: &FeedWrites,
) -> Result<(), ScoringError> {
    if !writes.refunded.is_empty() {
        let programs: Vec<Uuid> = writes.refunded.iter().map(|r| r.0).collect();
        let purchases: Vec<Uuid> = writes.refunded.iter().map(|r| r.1).collect();
        let totals: Vec<i64> = writes.refunded.iter().map(|r| r.2).collect();
        sqlx::query(
            "UPDATE counted_purchases c SET refunded_minor = u.refunded
             FROM unnest($1::uuid[], $2::uuid[], $3::int8[]) AS u(program_id, activity_id, refunded)
             WHERE c.program_id = u.program_id AND c.activity_id = u.activity_id",
        )
        .bind(&programs)
        .bind(&purchases)
        .bind(&totals)
        .execute(&mut **tx)
        .await?;
    }
    if !writes.applied_refunds.is_empty() {
        let (programs, refunds) = unzip(&writes.applied_refunds);
        let inserted = sqlx::query(
            "INSERT INTO applied_refunds (program_id, activity_id) SELECT * FROM unnest($1::uuid[], $2::uuid[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&programs)
        .bind(&refunds)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        every_row_written(
            inserted,
            writes.applied_refunds.len(),
            "refunds of the batch were applied by another writer meanwhile",
        )?;
    }
    Ok(())
}

/// Writes the batch's states, each with its purchase profile where the batch changed it (a
/// state whose profile it did not change keeps the stored one) and its months where the batch
/// changed them.
async fn write_states(
    tx: &mut Transaction<'static, Postgres>,
    writes: &FeedWrites,
    locked: &LockedStates,
    now: DateTime<Utc>,
) -> Result<(), ScoringError> {
    let mut profiles: HashMap<Pair, &PurchaseProfile> = writes
        .profiles
        .iter()
        .chain(&writes.new_profiles)
        .map(|(pair, profile)| (*pair, profile))
        .collect();
    let (new, existing): (Vec<&StateWrite>, Vec<&StateWrite>) =
        writes.states.iter().partition(|write| write.is_new);
    // A state the batch found stored was loaded, and locked, with its location and months; one
    // written without that load (a single write, a test's) is locked and located first.
    let unlocated: Vec<Pair> = existing
        .iter()
        .map(|write| write.pair)
        .filter(|pair| !locked.0.contains_key(pair))
        .collect();
    let located = lock_and_locate(tx, &unlocated).await?;
    let found = |pair: &Pair| locked.0.get(pair).or_else(|| located.0.get(pair));
    let mut months = months_after(writes, |pair| {
        found(pair).map(|state| state.months.as_slice())
    })?;
    let mut columns_of = |states: &[&StateWrite]| {
        let profile_columns =
            ProfileColumns::of(states.iter().map(|write| profiles.remove(&write.pair)));
        let state_columns = StateColumns::of(
            states
                .iter()
                .map(|write| (&write.stored, write.review.as_ref())),
        );
        let mut month_columns = FlatMonths::default();
        for write in states {
            match months.remove(&write.pair) {
                Some(columns) => month_columns.push(&columns),
                None if write.is_new => month_columns.push(&MonthColumns::default()),
                None => month_columns.keep(),
            }
        }
        let (programs, customers): (Vec<Uuid>, Vec<Uuid>) =
            states.iter().map(|write| write.pair).unzip();
        (
            programs,
            customers,
            state_columns,
            profile_columns,
            month_columns,
        )
    };
    let new_columns = columns_of(&new);
    let existing_columns = columns_of(&existing);
    // The domain writes the state of every pair whose profile or months it changes (a purchase
    // or a refund touches the pair's record); one left over would be lost.
    if !profiles.is_empty() || !months.is_empty() {
        return Err(ScoringError::Internal(format!(
            "{} purchase profiles and {} customers' months of the batch have no state written with them",
            profiles.len(),
            months.len()
        )));
    }
    if !new.is_empty() {
        let (programs, customers, states, profiles, months) = &new_columns;
        let sql = format!(
            "INSERT INTO tier_states (program_id, customer_id, earned_rank, since, last_qualified_at, override_rank, override_until,
                                      override_reason, override_operator, override_set_at, lapsed_at, review_month,
                                      reviewed_under, version, updated_at, {STATE_PROFILE_COLUMNS}, {month_columns})
             SELECT p, c, e, s, q, r, u, why, who, at, l, rm, ru, 1, $14, pl, pf, pd, pn, pr, ps, {month_values}
             FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::timestamptz[], $5::timestamptz[], $6::int[], $7::timestamptz[],
                         $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::date[], $13::uuid[],
                         $15::timestamptz[], $16::date[], $17::date[], $18::int4[], $19::int8[], $20::int8[],
                         $21::int4[], $22::int4[])
                  AS n(p, c, e, s, q, r, u, why, who, at, l, rm, ru, pl, pf, pd, pn, pr, ps, mf, mn)
             ON CONFLICT (program_id, customer_id) DO NOTHING",
            month_columns = month_columns(""),
            month_values = FlatMonths::values("n", 23, None),
        );
        let insert = sqlx::query(&sql).bind(programs).bind(customers);
        let inserted = months
            .bind(profiles.bind(states.bind(insert).bind(now)))
            .execute(&mut **tx)
            .await?
            .rows_affected();
        // Someone created one of these states after the batch looked: the batch decided on a
        // state that was not the latest, so it is applied again from the start.
        every_row_written(
            inserted,
            new.len(),
            "a tier state of the batch was created by another writer meanwhile",
        )?;
    }
    if !existing.is_empty() {
        let (programs, customers, states, profiles, months) = &existing_columns;
        let locations = existing
            .iter()
            .map(|write| found(&write.pair).map(|state| state.location.as_str()))
            .collect::<Option<Vec<&str>>>()
            .ok_or_else(|| {
                ScoringError::Internal("a stored state of the batch is not stored".into())
            })?;
        // Each row reached by its location (a TID scan), its customer checked; a written
        // profile has its last purchase set: a NULL there keeps the stored profile.
        let sql = format!(
            "UPDATE tier_states s SET earned_rank = u.e, since = u.s, last_qualified_at = u.q, override_rank = u.r,
                 override_until = u.u, override_reason = u.why, override_operator = u.who, override_set_at = u.at,
                 lapsed_at = u.l, review_month = u.rm, reviewed_under = u.ru, version = s.version + 1, updated_at = $14,
                 last_purchase_at = COALESCE(u.pl, s.last_purchase_at), first_day = COALESCE(u.pf, s.first_day),
                 last_day = COALESCE(u.pd, s.last_day), purchase_days = COALESCE(u.pn, s.purchase_days),
                 repeat_spend_minor = COALESCE(u.pr, s.repeat_spend_minor),
                 first_day_spend_minor = CASE WHEN u.pl IS NULL THEN s.first_day_spend_minor ELSE u.ps END,
                 ({month_columns}) = ({month_values})
             FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::timestamptz[], $5::timestamptz[], $6::int[], $7::timestamptz[],
                         $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::date[], $13::uuid[],
                         $15::timestamptz[], $16::date[], $17::date[], $18::int4[], $19::int8[], $20::int8[],
                         $21::int4[], $22::int4[], $27::text[])
                  AS u(p, c, e, s, q, r, u, why, who, at, l, rm, ru, pl, pf, pd, pn, pr, ps, mf, mn, t)
             WHERE s.ctid = u.t::tid AND s.customer_id = u.c",
            month_columns = month_columns(""),
            month_values = FlatMonths::values("u", 23, Some("s")),
        );
        let update = sqlx::query(&sql).bind(programs).bind(customers);
        let updated = months
            .bind(profiles.bind(states.bind(update).bind(now)))
            .bind(&locations)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        // Not `Aborted`: a locked row cannot move, so a miss is a fault of this code.
        if updated != existing.len() as u64 {
            return Err(ScoringError::Internal(format!(
                "{} of {} locked tier states were not where the batch found them",
                existing.len() as u64 - updated.min(existing.len() as u64),
                existing.len()
            )));
        }
    }
    Ok(())
}

/// The months of every pair whose months the batch changes: the changes added to the months the
/// batch found stored (`stored`; none for a pair without a state). A change meant for a stored
/// month that is gone, or for a new month that is there, refuses the batch (`Aborted`): it
/// decided on months that were not the latest.
fn months_after<'a>(
    writes: &FeedWrites,
    stored: impl Fn(&Pair) -> Option<&'a [Bucket]>,
) -> Result<HashMap<Pair, MonthColumns>, ScoringError> {
    let mut months: HashMap<Pair, Vec<Bucket>> = HashMap::new();
    let stored_changes = writes
        .buckets
        .iter()
        .map(|(pair, delta)| (pair, delta, true));
    let new_changes = writes
        .new_buckets
        .iter()
        .map(|(pair, delta)| (pair, delta, false));
    for (pair, delta, month_was_stored) in stored_changes.chain(new_changes) {
        let buckets = months
            .entry(*pair)
            .or_insert_with(|| stored(pair).map(<[Bucket]>::to_vec).unwrap_or_default());
        if delta.add_to(buckets) != month_was_stored {
            return Err(ScoringError::Aborted(
                "a month of the batch was added or removed by another writer meanwhile".into(),
            ));
        }
    }
    Ok(months
        .into_iter()
        .map(|(pair, buckets)| (pair, MonthColumns::of(&buckets)))
        .collect())
}

/// Locks the states of `pairs`, in key order, and says where each lies and what months it has.
async fn lock_and_locate(
    tx: &mut Transaction<'static, Postgres>,
    pairs: &[Pair],
) -> Result<LockedStates, ScoringError> {
    if pairs.is_empty() {
        return Ok(LockedStates::default());
    }
    let (programs, customers) = unzip(pairs);
    let rows: Vec<LocatedRow> = sqlx::query_as(&format!(
        "SELECT s.program_id, s.customer_id, s.ctid::text AS location, {months}
         FROM tier_states s JOIN unnest($1::uuid[], $2::uuid[]) AS k(p, c) ON s.program_id = k.p AND s.customer_id = k.c
         ORDER BY s.program_id, s.customer_id FOR UPDATE OF s",
        months = month_columns("s"),
    ))
    .bind(&programs)
    .bind(&customers)
    .fetch_all(&mut **tx)
    .await?;
    Ok(LockedStates(
        rows.into_iter()
            .map(|row| {
                (
                    (row.program_id, row.customer_id),
                    Locked {
                        location: row.location,
                        months: row.months.buckets(),
                    },
                )
            })
            .collect(),
    ))
}

/// A state [`lock_and_locate`] found.
#[derive(sqlx::FromRow)]
struct LocatedRow {
    program_id: Uuid,
    customer_id: Uuid,
    location: String,
    #[sqlx(flatten)]
    months: MonthColumns,
}

/// Tier states as column arrays, to bind and unnest.
pub(super) struct StateColumns {
    pub(super) earned_rank: Vec<i32>,
    pub(super) since: Vec<DateTime<Utc>>,
    pub(super) last_qualified_at: Vec<Option<DateTime<Utc>>>,
    pub(super) override_rank: Vec<Option<i32>>,
    pub(super) override_until: Vec<Option<DateTime<Utc>>>,
    pub(super) override_reason: Vec<Option<String>>,
    pub(super) override_operator: Vec<Option<String>>,
    pub(super) override_set_at: Vec<Option<DateTime<Utc>>>,
    pub(super) lapsed_at: Vec<Option<DateTime<Utc>>>,
    pub(super) review_month: Vec<Option<NaiveDate>>,
    pub(super) reviewed_under: Vec<Option<Uuid>>,
}

impl StateColumns {
    /// Binds the columns to `query` after what it has bound, in the order they are declared.
    pub(super) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.earned_rank)
            .bind(&self.since)
            .bind(&self.last_qualified_at)
            .bind(&self.override_rank)
            .bind(&self.override_until)
            .bind(&self.override_reason)
            .bind(&self.override_operator)
            .bind(&self.override_set_at)
            .bind(&self.lapsed_at)
            .bind(&self.review_month)
            .bind(&self.reviewed_under)
    }

    /// The columns of `states`, each with its review (none: not known).
    pub(super) fn of<'a>(
        states: impl Iterator<Item = (&'a StoredState, Option<&'a Review>)>,
    ) -> Self {
        let mut columns = Self {
            earned_rank: Vec::new(),
            since: Vec::new(),
            last_qualified_at: Vec::new(),
            override_rank: Vec::new(),
            override_until: Vec::new(),
            override_reason: Vec::new(),
            override_operator: Vec::new(),
            override_set_at: Vec::new(),
            lapsed_at: Vec::new(),
            review_month: Vec::new(),
            reviewed_under: Vec::new(),
        };
        for (stored, review) in states {
            let state = &stored.state;
            let manual = state.manual.as_ref();
            columns.earned_rank.push(db_rank(state.earned_rank));
            columns.since.push(state.since);
            columns.last_qualified_at.push(state.last_qualified_at);
            columns.override_rank.push(manual.map(|m| db_rank(m.rank)));
            columns.override_until.push(manual.map(|m| m.until));
            columns
                .override_reason
                .push(manual.map(|m| m.reason.clone()));
            columns
                .override_operator
                .push(manual.map(|m| m.operator.clone()));
            columns.override_set_at.push(manual.map(|m| m.set_at));
            columns.lapsed_at.push(state.lapsed_at);
            columns
                .review_month
                .push(review.and_then(|review| review.month).map(Month::first_day));
            columns
                .reviewed_under
                .push(review.map(|review| review.policy_version_id));
        }
        columns
    }
}
