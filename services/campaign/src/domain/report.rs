//! The effect report: per-arm conversion and revenue, uplift with its interval and p-value,
//! incremental revenue, cost and ROI — or why uplift cannot be measured.

use super::stats::{self, Interval, Moments, Proportions};
use crate::domain::ports::ArmAggregate;

/// Whether uplift can be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measurability {
    /// Both arms are large enough.
    Measurable,
    /// No holdout, or an empty control arm.
    NoControlGroup,
    /// An arm is below the minimum size.
    SampleTooSmall,
}

/// One arm's figures; the unit is the customer (see [`ArmAggregate`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmFigures {
    /// Members (customers).
    pub members: i64,
    /// Their entries.
    pub entries: i64,
    /// Converters.
    pub converters: i64,
    /// Conversion rate; `None` without members.
    pub conversion_rate: Option<f64>,
    /// Total revenue, minor units.
    pub revenue: i64,
    /// Revenue per member; `None` without members.
    pub revenue_per_member: Option<f64>,
    /// Its 95 % t-interval; `None` with fewer than 2 members.
    pub revenue_per_member_ci: Option<Interval>,
}

/// The measured effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Treatment arm.
    pub treatment: ArmFigures,
    /// Control arm.
    pub control: ArmFigures,
    /// Whether the uplift fields are present.
    pub measurability: Measurability,
    /// Conversion uplift.
    pub conversion: Option<stats::ConversionUplift>,
    /// Revenue-per-member difference and its Welch interval.
    pub revenue_difference: Option<(f64, Interval)>,
    /// Difference × treatment members, rounded.
    pub incremental_revenue: Option<i64>,
    /// Sent deliveries.
    pub contacts: i64,
    /// Fixed cost + cost per contact × contacts.
    pub cost: i64,
    /// (incremental revenue − cost) / cost.
    pub roi: Option<f64>,
}

fn moments(arm: &ArmAggregate) -> Moments {
    let n = u64::try_from(arm.members).unwrap_or(0);
    Moments {
        n,
        // The exact integer sum over n (an empty arm has revenue 0): as precise as f64 allows.
        mean: arm.revenue as f64 / n.max(1) as f64,
        m2: arm.revenue_m2,
    }
}

fn figures(arm: &ArmAggregate) -> ArmFigures {
    let m = moments(arm);
    ArmFigures {
        members: arm.members,
        entries: arm.entries,
        converters: arm.converters,
        conversion_rate: (arm.members > 0).then(|| arm.converters as f64 / arm.members as f64),
        revenue: arm.revenue,
        revenue_per_member: m.mean(),
        revenue_per_member_ci: m.mean_ci(),
    }
}

/// The report from the arms' aggregates, the contacts and the costs.
pub fn report(
    treatment: ArmAggregate,
    control: ArmAggregate,
    holdout_bps: u32,
    min_arm_size: i64,
    contacts: i64,
    fixed_cost: i64,
    cost_per_contact: i64,
) -> Report {
    let measurability = if holdout_bps == 0 || control.members == 0 {
        Measurability::NoControlGroup
    } else if treatment.members < min_arm_size.max(2) || control.members < min_arm_size.max(2) {
        Measurability::SampleTooSmall
    } else {
        Measurability::Measurable
    };
    let cost = fixed_cost.saturating_add(cost_per_contact.saturating_mul(contacts));
    let measurable = measurability == Measurability::Measurable;
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    let conversion = measurable
        .then(|| {
            stats::conversion_uplift(Proportions {
                treatment: (count(treatment.converters), count(treatment.members)),
                control: (count(control.converters), count(control.members)),
            })
        })
        .flatten();
    let revenue_difference = measurable
        .then(|| stats::welch_difference(moments(&treatment), moments(&control)))
        .flatten();
    let incremental_revenue = revenue_difference
        .map(|(difference, _)| (difference * treatment.members as f64).round() as i64);
    let roi = incremental_revenue
        .filter(|_| cost > 0)
        .map(|incremental| (incremental - cost) as f64 / cost as f64);
    Report {
        treatment: figures(&treatment),
        control: figures(&control),
        measurability,
        conversion,
        revenue_difference,
        incremental_revenue,
        contacts,
        cost,
        roi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(members: i64, converters: i64, revenue: i64, m2: f64) -> ArmAggregate {
        ArmAggregate {
            members,
            entries: members,
            converters,
            revenue,
            revenue_m2: m2,
        }
    }

    #[test]
    fn no_control_group_and_small_samples_say_so() {
        let r = report(
            arm(100, 10, 1_000, 1e5),
            arm(0, 0, 0, 0.0),
            0,
            30,
            100,
            0,
            10,
        );
        assert_eq!(r.measurability, Measurability::NoControlGroup);
        assert!(r.conversion.is_none() && r.incremental_revenue.is_none() && r.roi.is_none());
        let r = report(
            arm(100, 10, 1_000, 1e5),
            arm(10, 1, 100, 1e4),
            1_000,
            30,
            100,
            0,
            10,
        );
        assert_eq!(r.measurability, Measurability::SampleTooSmall);
        assert_eq!(r.cost, 1_000);
    }

    #[test]
    fn incremental_revenue_and_roi_by_hand() {
        // Treatment: 1,000 members, 200 converters each spending 5,000 → revenue 1,000,000;
        //   revenue per member 1,000; M2 = 200 × 4,000² + 800 × 1,000² = 4e9.
        // Control: 1,000 members, 150 converters × 5,000 → 750,000; per member 750;
        //   M2 = 150 × 4,250² + 850 × 750² = 3.1875e9.
        // Difference 250 per member → incremental revenue 250 × 1,000 = 250,000.
        // Cost: fixed 50,000 + 100 per contact × 1,000 contacts = 150,000.
        // ROI = (250,000 − 150,000) / 150,000 = 0.6667.
        let r = report(
            arm(1_000, 200, 1_000_000, 4e9),
            arm(1_000, 150, 750_000, 3.1875e9),
            1_000,
            30,
            1_000,
            50_000,
            100,
        );
        assert_eq!(r.measurability, Measurability::Measurable);
        assert_eq!(r.incremental_revenue, Some(250_000));
        assert_eq!(r.cost, 150_000);
        assert!((r.roi.expect("cost > 0") - 2.0 / 3.0).abs() < 1e-12);
        let conversion = r.conversion.expect("measurable");
        assert!((conversion.absolute - 0.05).abs() < 1e-12);
        assert!(conversion.p_value < 0.01);
        // Variance of treatment revenue: 4e9 / 999 = 4,004,004; of control: 3.1875e9 / 999
        // = 3,190,690.7. SE = sqrt(4,004.004 + 3,190.691) = 84.822; df ≈ 1,958, t ≈ 1.96115;
        // CI = 250 ± 166.35 = [83.65, 416.35] (statsmodels' Welch interval of the same 0/5,000
        // samples: [83.6508, 416.3492]).
        let (difference, ci) = r.revenue_difference.expect("measurable");
        assert!((difference - 250.0).abs() < 1e-9);
        assert!((ci.lower - 83.65).abs() < 0.1, "{ci:?}");
        assert!((ci.upper - 416.35).abs() < 0.1, "{ci:?}");
    }

    #[test]
    fn large_similar_revenues_keep_their_interval() {
        // Treatment 1e9 + {10, 20, 30, 40}: revenue 4,000,000,100, M2 500; control
        // 1e9 + {5, 10, 15}: 3,000,000,030, M2 50 (what the stores return). Welch interval as in
        // stats.rs (statsmodels): [-4.489877, 34.489877]; with Σx² − n·x̄² both variances were
        // garbage (170.67 and −256 → 0).
        let r = report(
            arm(4, 2, 4_000_000_100, 500.0),
            arm(3, 1, 3_000_000_030, 50.0),
            5_000,
            2,
            0,
            0,
            0,
        );
        let (difference, ci) = r.revenue_difference.expect("measurable");
        assert!((difference - 15.0).abs() < 1e-6);
        assert!((ci.lower + 4.489_877_255).abs() < 1e-6, "{ci:?}");
        assert!((ci.upper - 34.489_877_255).abs() < 1e-6, "{ci:?}");
    }
}
