//! Buckets read as Postgres arrays: one row per customer with `array_agg` of each column (a
//! lateral subquery), which the lookups and the feed read instead of a row per bucket.

/// A customer's buckets as the arrays `array_agg(… ORDER BY month)` returns them (`None` for a
/// customer without any), oldest first.
pub(super) fn buckets_from_arrays(
    months: Option<Vec<chrono::NaiveDate>>,
    spend: Option<Vec<i64>>,
    points: Option<Vec<i64>>,
    purchases: Option<Vec<i64>>,
) -> Vec<crate::domain::window::Bucket> {
    let (spend, points, purchases) = (
        spend.unwrap_or_default(),
        points.unwrap_or_default(),
        purchases.unwrap_or_default(),
    );
    months
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, month)| crate::domain::window::Bucket {
            month: crate::domain::month::Month::of_date(*month),
            net_spend_minor: spend.get(index).copied().unwrap_or(0),
            points: points.get(index).copied().unwrap_or(0),
            purchases: purchases.get(index).copied().unwrap_or(0),
        })
        .collect()
}

/// The columns `buckets_from_arrays` reads, aggregated from the buckets of `$1`'s customer
/// `{customer}` (a lateral subquery: `LEFT JOIN LATERAL (…) b ON true`).
pub(super) fn bucket_arrays(customer: &str) -> String {
    format!(
        "SELECT array_agg(month ORDER BY month) AS months, array_agg(net_spend_minor ORDER BY month) AS spend,
                array_agg(points ORDER BY month) AS points, array_agg(purchases ORDER BY month) AS purchases
         FROM buckets WHERE program_id = $1 AND customer_id = {customer}"
    )
}
