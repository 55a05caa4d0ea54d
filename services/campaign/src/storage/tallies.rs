//! Turning the per-arm and per-reason counts every backend reads into the domain's figures, in
//! one place so the backends cannot drift.

use super::{ArmAggregate, MembershipCounts, SuppressionReason};
use crate::domain::holdout::Arm;

/// One arm's row of the report aggregate, per customer: arm, customers, entries, converters,
/// Σ revenue, Σ (revenue − mean)².
pub(crate) type ArmRow = (String, i64, i64, i64, Option<i64>, Option<f64>);

/// Members per arm and suppressions per reason, from `(arm, count)` and `(reason, count)` rows.
pub(crate) fn membership_counts(
    arms: &[(String, i64)],
    reasons: Vec<(String, i64)>,
) -> MembershipCounts {
    let arm_count = |arm: Arm| {
        arms.iter()
            .find(|(stored, _)| stored == arm.as_str())
            .map_or(0, |(_, count)| *count)
    };
    let mut suppressed: Vec<(SuppressionReason, i64)> = reasons
        .into_iter()
        .filter_map(|(reason, count)| SuppressionReason::parse(&reason).map(|r| (r, count)))
        .collect();
    suppressed.sort();
    MembershipCounts {
        treatment: arm_count(Arm::Treatment),
        control: arm_count(Arm::Control),
        suppressed,
    }
}

/// The treatment and control aggregates from the per-arm rows (an arm without members is zero).
pub(crate) fn arm_aggregates(rows: &[ArmRow]) -> (ArmAggregate, ArmAggregate) {
    let of = |arm: Arm| {
        rows.iter()
            .find(|row| row.0 == arm.as_str())
            .map(
                |(_, members, entries, converters, revenue, m2)| ArmAggregate {
                    members: *members,
                    entries: *entries,
                    converters: *converters,
                    revenue: revenue.unwrap_or(0),
                    revenue_m2: m2.unwrap_or(0.0),
                },
            )
            .unwrap_or_default()
    };
    (of(Arm::Treatment), of(Arm::Control))
}
