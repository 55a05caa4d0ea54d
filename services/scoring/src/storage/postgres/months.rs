//! A customer's monthly buckets as their tier state holds them: the month columns of
//! `tier_states` (migration `20261208100028`), four arrays aligned by position, the months oldest
//! first and running totals through each, and the one conversion each way to the domain's
//! buckets. A window's sum is two subscripts found by binary search ([`window_sum`]), so a pass
//! over the population sums windows without a row per month or a subquery per state.

use chrono::NaiveDate;

use crate::domain::{month::Month, window::Bucket};

/// The month columns of `tier_states` with their element types, in [`MonthColumns`]'s order.
const COLUMNS: [(&str, &str); 4] = [
    ("months", "date"),
    ("spend_through", "int8"),
    ("points_through", "int8"),
    ("purchases_through", "int8"),
];

/// The month columns, in [`MonthColumns`]'s order, of the states aliased `{alias}` (empty: the
/// bare names, as an insert's column list takes them).
pub(super) fn month_columns(alias: &str) -> String {
    COLUMNS
        .iter()
        .map(|(column, _)| {
            if alias.is_empty() {
                (*column).to_owned()
            } else {
                format!("{alias}.{column}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A state's month columns as stored ([`month_columns`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct MonthColumns {
    months: Vec<NaiveDate>,
    spend_through: Vec<i64>,
    points_through: Vec<i64>,
    purchases_through: Vec<i64>,
}

impl MonthColumns {
    /// The columns of `buckets` (oldest first, each month once, as the domain keeps them).
    pub(super) fn of(buckets: &[Bucket]) -> Self {
        let mut columns = Self::default();
        let (mut spend, mut points, mut purchases) = (0, 0, 0);
        for bucket in buckets {
            spend += bucket.net_spend_minor;
            points += bucket.points;
            purchases += bucket.purchases;
            columns.months.push(bucket.month.first_day());
            columns.spend_through.push(spend);
            columns.points_through.push(points);
            columns.purchases_through.push(purchases);
        }
        columns
    }

    /// The columns as read where a row may have none (an outer join): NULL for empty.
    pub(super) fn from_nullable(
        months: Option<Vec<NaiveDate>>,
        spend_through: Option<Vec<i64>>,
        points_through: Option<Vec<i64>>,
        purchases_through: Option<Vec<i64>>,
    ) -> Self {
        Self {
            months: months.unwrap_or_default(),
            spend_through: spend_through.unwrap_or_default(),
            points_through: points_through.unwrap_or_default(),
            purchases_through: purchases_through.unwrap_or_default(),
        }
    }

    /// The buckets, oldest first: each month's values are its running totals less the month
    /// before's.
    pub(super) fn buckets(&self) -> Vec<Bucket> {
        let before = |totals: &[i64], index: usize| {
            index
                .checked_sub(1)
                .and_then(|previous| totals.get(previous))
                .copied()
                .unwrap_or(0)
        };
        let at = |totals: &[i64], index: usize| totals.get(index).copied().unwrap_or(0);
        self.months
            .iter()
            .enumerate()
            .map(|(index, month)| Bucket {
                month: Month::of_date(*month),
                net_spend_minor: at(&self.spend_through, index)
                    - before(&self.spend_through, index),
                points: at(&self.points_through, index) - before(&self.points_through, index),
                purchases: at(&self.purchases_through, index)
                    - before(&self.purchases_through, index),
            })
            .collect()
    }

    /// Months stored.
    pub(super) fn len(&self) -> usize {
        self.months.len()
    }
}

/// The advisory lock that orders the feed's writes of months and a rebuild's: every feed
/// transaction holds it shared, each chunk of a rebuild or a recount exclusively, so that a
/// chunk's counts from the counted purchases and the feed's additions to the same states never
/// interleave ("tiermont" in ASCII).
const MONTHS_GUARD: i64 = 0x7469_6572_6d6f_6e74;

/// Takes the months' guard for the rest of `tx`: shared by the feed, exclusive by a rebuild.
pub(super) async fn guard_months(
    tx: &mut sqlx::PgConnection,
    exclusive: bool,
) -> Result<(), sqlx::Error> {
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock($1)"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1)"
    };
    sqlx::query(sql).bind(MONTHS_GUARD).execute(tx).await?;
    Ok(())
}

/// The sum over the months `[{first}, {last}]` (SQL dates, first days; `first` NULL: from the
/// start) of a running-total column `{alias}.{through}` (`spend_through`, `points_through` or
/// `purchases_through`): the total through the last month in the window less the total before
/// the first, each found by `width_bucket`'s binary search over the sorted months (0, a NULL
/// subscript read as 0, before the first month). A window that ends before it begins (a
/// membership year for someone who joined after the judged month) holds no month: 0, not the
/// difference the other way round.
pub(super) fn window_sum(alias: &str, through: &str, first: &str, last: &str) -> String {
    format!(
        "(CASE WHEN ({first})::date > {last}::date THEN 0
               ELSE COALESCE({alias}.{through}[width_bucket({last}::date, {alias}.months)], 0)
                    - COALESCE({alias}.{through}[width_bucket(({first})::date - 1, {alias}.months)], 0) END)"
    )
}

/// Many states' month columns as one array per column, to bind and unnest: each state's
/// stretch is `[first, first + count)`, 1-based, so that a statement takes
/// `$n[u.first : u.first + u.count - 1]` (an empty slice for none). Postgres arrays of arrays
/// must be rectangular; states have different numbers of months.
#[derive(Debug, Default)]
pub(super) struct FlatMonths {
    pub(super) months: Vec<NaiveDate>,
    pub(super) spend_through: Vec<i64>,
    pub(super) points_through: Vec<i64>,
    pub(super) purchases_through: Vec<i64>,
    /// Where each state's stretch starts (1-based).
    pub(super) first: Vec<i32>,
    /// How many months each state has; -1 for a state whose stored months stay.
    pub(super) count: Vec<i32>,
}

impl FlatMonths {
    /// Binds the arrays to `query` after what it has bound: first, count, then the months and
    /// the three running totals.
    pub(super) fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.first)
            .bind(&self.count)
            .bind(&self.months)
            .bind(&self.spend_through)
            .bind(&self.points_through)
            .bind(&self.purchases_through)
    }

    /// The four month columns' values, in [`month_columns`]'s order, for the row `{row}` of an
    /// unnest that carries each state's first and count as `{row}.mf` and `{row}.mn`, from the
    /// flat arrays bound as `${months}` (the months) and the three after it: the state's
    /// stretch, or for a row pushed with [`FlatMonths::keep`] the columns of the stored state
    /// `{stored}` (none: empty).
    pub(super) fn values(row: &str, months: u32, stored: Option<&str>) -> String {
        COLUMNS
            .iter()
            .zip(months..)
            .map(|((column, sql_type), param)| {
                let kept = stored.map_or_else(|| "'{}'".to_owned(), |s| format!("{s}.{column}"));
                format!(
                    "CASE WHEN {row}.mn < 0 THEN {kept} ELSE (${param}::{sql_type}[])[{row}.mf : {row}.mf + {row}.mn - 1] END"
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Appends a state whose stored columns stay as they are.
    pub(super) fn keep(&mut self) {
        self.first.push(1);
        self.count.push(-1);
    }

    /// Appends one state's columns.
    pub(super) fn push(&mut self, columns: &MonthColumns) {
        let first = i32::try_from(self.months.len() + 1).unwrap_or(i32::MAX);
        self.first.push(first);
        self.count
            .push(i32::try_from(columns.len()).unwrap_or(i32::MAX));
        self.months.extend_from_slice(&columns.months);
        self.spend_through.extend_from_slice(&columns.spend_through);
        self.points_through
            .extend_from_slice(&columns.points_through);
        self.purchases_through
            .extend_from_slice(&columns.purchases_through);
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::{FlatMonths, MonthColumns};
    use crate::domain::{month::Month, window::Bucket};

    fn bucket(month: u32, spend: i64) -> Bucket {
        Bucket {
            month: Month::of_date(NaiveDate::from_ymd_opt(2026, month, 1).expect("date")),
            net_spend_minor: spend,
            points: spend / 100,
            purchases: 1,
        }
    }

    #[test]
    fn buckets_come_back_from_their_running_totals_refunds_included() {
        let buckets = vec![bucket(2, 5_000), bucket(3, -1_200), bucket(7, 900)];
        let columns = MonthColumns::of(&buckets);
        assert_eq!(columns.spend_through, vec![5_000, 3_800, 4_700]);
        assert_eq!(columns.purchases_through, vec![1, 2, 3]);
        assert_eq!(columns.buckets(), buckets);
    }

    #[test]
    fn a_customer_without_buckets_has_none() {
        assert!(MonthColumns::default().buckets().is_empty());
        assert_eq!(MonthColumns::of(&[]), MonthColumns::default());
    }

    #[test]
    fn flat_months_give_each_state_its_own_stretch() {
        let mut flat = FlatMonths::default();
        flat.push(&MonthColumns::of(&[bucket(1, 100), bucket(2, 200)]));
        flat.push(&MonthColumns::default());
        flat.push(&MonthColumns::of(&[bucket(5, 500)]));
        assert_eq!(flat.first, vec![1, 3, 3]);
        assert_eq!(flat.count, vec![2, 0, 1]);
        assert_eq!(flat.spend_through, vec![100, 300, 500]);
    }
}
