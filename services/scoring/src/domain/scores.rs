//! RFM scores, segments and lifecycle.
//!
//! - Recency is days since the last counted purchase; frequency and monetary value are the
//!   purchase count and net spend in the policy's window.
//! - Each is scored 1 to 5 by the population's quintiles: cut points are computed at evaluation
//!   time over every member with a purchase and stored with a version; customers scored between
//!   evaluations use the last cut points. A shorter recency scores higher.
//! - The segment comes from the R score and the FM score (the mean of F and M, rounded half up)
//!   through a fixed grid (see [`segment`]).
//! - Lifecycle: new while the customer joined less than `new_days` ago; otherwise dormant after
//!   `dormant_days` without a purchase (or never having bought), at risk after `at_risk_days`,
//!   else active.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{
    month::Month,
    policy::{LifecycleSettings, WindowKind},
};

/// The raw RFM values of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmValues {
    /// Days since the last counted purchase; `None` without any.
    pub recency_days: Option<i64>,
    /// Purchases in the window.
    pub frequency: i64,
    /// Net spend in the window, minor units.
    pub monetary: i64,
}

/// Quintile boundaries: a value above the k-th boundary scores at least k + 2 (for recency: a
/// value below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CutPoints {
    /// Recency boundaries (days), ascending.
    pub recency: [i64; 4],
    /// Frequency boundaries, ascending.
    pub frequency: [i64; 4],
    /// Monetary boundaries, ascending.
    pub monetary: [i64; 4],
}

/// The 20th, 40th, 60th and 80th percentiles of `values` (nearest rank); zeros when empty.
pub fn quintile_boundaries(values: &mut [i64]) -> [i64; 4] {
    if values.is_empty() {
        return [0; 4];
    }
    values.sort_unstable();
    let at = |fraction: f64| {
        let rank = ((values.len() as f64) * fraction).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    [at(0.2), at(0.4), at(0.6), at(0.8)]
}

impl CutPoints {
    /// Cut points over a population's values (customers without a purchase left out).
    pub fn from_population(population: &[RfmValues]) -> Self {
        let buyers: Vec<&RfmValues> = population
            .iter()
            .filter(|v| v.recency_days.is_some())
            .collect();
        let mut recency: Vec<i64> = buyers.iter().filter_map(|v| v.recency_days).collect();
        let mut frequency: Vec<i64> = buyers.iter().map(|v| v.frequency).collect();
        let mut monetary: Vec<i64> = buyers.iter().map(|v| v.monetary).collect();
        Self {
            recency: quintile_boundaries(&mut recency),
            frequency: quintile_boundaries(&mut frequency),
            monetary: quintile_boundaries(&mut monetary),
        }
    }
}

/// 1 to 5: how many boundaries `value` is above, plus one.
fn higher_is_better(value: i64, boundaries: &[i64; 4]) -> u8 {
    1 + boundaries
        .iter()
        .filter(|boundary| value > **boundary)
        .count() as u8
}

/// The R, F and M scores; a customer without a purchase scores 1, 1, 1.
pub fn scores(values: &RfmValues, cuts: &CutPoints) -> (u8, u8, u8) {
    let Some(recency) = values.recency_days else {
        return (1, 1, 1);
    };
    // Fewer days is better: count the boundaries the value is at or below.
    let r = 1 + cuts
        .recency
        .iter()
        .filter(|boundary| recency <= **boundary)
        .count() as u8;
    (
        r.min(5),
        higher_is_better(values.frequency, &cuts.frequency),
        higher_is_better(values.monetary, &cuts.monetary),
    )
}

/// A named RFM segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Bought recently, often and much.
    Champions,
    /// Buy often and much, responsive.
    Loyal,
    /// Recent, with average frequency: could become loyal.
    PotentialLoyalist,
    /// Bought most recently, not often yet.
    New,
    /// Recent, small spenders.
    Promising,
    /// Average on every count.
    NeedAttention,
    /// Below average recency and value.
    AboutToSleep,
    /// Spent much and often, long ago.
    AtRisk,
    /// Were among the best, have not come back.
    CannotLose,
    /// Last bought long ago, small and rare.
    Hibernating,
    /// The lowest on every count.
    Lost,
}

/// The segment of an R score and an FM score (both 1-5), by this grid (rows R, columns FM):
///
/// | R \ FM | 1 | 2 | 3 | 4 | 5 |
/// |---|---|---|---|---|---|
/// | 5 | new | potential loyalist | potential loyalist | champions | champions |
/// | 4 | promising | potential loyalist | potential loyalist | loyal | champions |
/// | 3 | about to sleep | need attention | need attention | loyal | loyal |
/// | 2 | hibernating | hibernating | at risk | at risk | cannot lose |
/// | 1 | lost | lost | at risk | at risk | cannot lose |
pub fn segment(r: u8, fm: u8) -> Segment {
    use Segment::*;
    const GRID: [[Segment; 5]; 5] = [
        [Lost, Lost, AtRisk, AtRisk, CannotLose],
        [Hibernating, Hibernating, AtRisk, AtRisk, CannotLose],
        [AboutToSleep, NeedAttention, NeedAttention, Loyal, Loyal],
        [
            Promising,
            PotentialLoyalist,
            PotentialLoyalist,
            Loyal,
            Champions,
        ],
        [
            New,
            PotentialLoyalist,
            PotentialLoyalist,
            Champions,
            Champions,
        ],
    ];
    GRID[usize::from(r.clamp(1, 5) - 1)][usize::from(fm.clamp(1, 5) - 1)]
}

/// The FM score: the mean of F and M, rounded half up.
pub fn fm_score(f: u8, m: u8) -> u8 {
    (f + m).div_ceil(2)
}

/// Where a customer is in their life with the brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Joined recently.
    New,
    /// Buying.
    Active,
    /// Not bought for `at_risk_days`.
    AtRisk,
    /// Not bought for `dormant_days`, or never.
    Dormant,
}

impl Lifecycle {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Active => "active",
            Self::AtRisk => "at_risk",
            Self::Dormant => "dormant",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "new" => Self::New,
            "active" => Self::Active,
            "at_risk" => Self::AtRisk,
            "dormant" => Self::Dormant,
            _ => return None,
        })
    }
}

/// The lifecycle state from days since joining and since the last purchase.
pub fn lifecycle(
    days_since_joined: i64,
    days_since_last_purchase: Option<i64>,
    settings: &LifecycleSettings,
) -> Lifecycle {
    if days_since_joined < i64::from(settings.new_days) {
        return Lifecycle::New;
    }
    match days_since_last_purchase {
        None => Lifecycle::Dormant,
        Some(days) if days >= i64::from(settings.dormant_days) => Lifecycle::Dormant,
        Some(days) if days >= i64::from(settings.at_risk_days) => Lifecycle::AtRisk,
        Some(_) => Lifecycle::Active,
    }
}

/// The months RFM frequency and monetary value count: the policy's window when it is the same for
/// everyone (rolling months, calendar year); 12 rolling months otherwise (membership year and
/// lifetime windows), so that all customers are compared over the same months.
pub fn rfm_months(
    window: WindowKind,
    now: DateTime<Utc>,
    zone: Tz,
) -> (Option<NaiveDate>, NaiveDate) {
    let current = Month::of(now, zone);
    let first = match window {
        WindowKind::RollingMonths(months) => current.plus(1 - months as i32),
        WindowKind::CalendarYear => Month::new(current.year(), 1).unwrap_or(current),
        WindowKind::MembershipYear | WindowKind::Lifetime => current.plus(-11),
    };
    (Some(first.first_day()), current.first_day())
}

/// One customer's scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreView {
    /// The customer.
    pub customer_id: uuid::Uuid,
    /// Raw values.
    pub values: RfmValues,
    /// R, F, M scores.
    pub scores: (u8, u8, u8),
    /// Segment, for customers who bought.
    pub segment: Option<Segment>,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// Lifetime net spend.
    pub historic_value: i64,
    /// The cut points used.
    pub cut_points_version: i64,
    /// When computed.
    pub computed_at: DateTime<Utc>,
}

/// Scores one customer.
pub fn score(
    input: &RfmInput,
    cuts: &CutPoints,
    cut_points_version: i64,
    lifecycle_settings: &LifecycleSettings,
    now: DateTime<Utc>,
) -> ScoreView {
    let scores = scores(&input.values, cuts);
    let days_since_joined = (now - input.joined_at).num_days();
    ScoreView {
        customer_id: input.customer_id,
        values: input.values,
        scores,
        segment: input
            .values
            .recency_days
            .map(|_| segment(scores.0, fm_score(scores.1, scores.2))),
        lifecycle: lifecycle(
            days_since_joined,
            input.values.recency_days,
            lifecycle_settings,
        ),
        historic_value: input.historic_value,
        cut_points_version,
        computed_at: now,
    }
}

/// What scoring one customer needs.
#[derive(Debug, Clone)]
pub struct RfmInput {
    /// The customer.
    pub customer_id: uuid::Uuid,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// R, F and M.
    pub values: RfmValues,
    /// Lifetime net spend in the program.
    pub historic_value: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(recency_days: Option<i64>, frequency: i64, monetary: i64) -> RfmValues {
        RfmValues {
            recency_days,
            frequency,
            monetary,
        }
    }

    #[test]
    fn quintiles_by_nearest_rank() {
        let mut ten: Vec<i64> = (1..=10).collect();
        assert_eq!(quintile_boundaries(&mut ten), [2, 4, 6, 8]);
        assert_eq!(quintile_boundaries(&mut []), [0, 0, 0, 0]);
        let mut one = vec![7];
        assert_eq!(quintile_boundaries(&mut one), [7, 7, 7, 7]);
    }

    #[test]
    fn scores_follow_the_population() {
        // Ten buyers: recency 10..100 days, frequency 1..10, monetary 1,000..10,000.
        let population: Vec<RfmValues> = (1..=10)
            .map(|i| values(Some(i * 10), i, i * 1_000))
            .chain([values(None, 0, 0)])
            .collect();
        let cuts = CutPoints::from_population(&population);
        assert_eq!(cuts.recency, [20, 40, 60, 80]);
        assert_eq!(cuts.frequency, [2, 4, 6, 8]);
        // The most recent, most frequent, biggest buyer scores 5, 5, 5; the opposite 1, 1, 1.
        assert_eq!(scores(&values(Some(10), 10, 10_000), &cuts), (5, 5, 5));
        assert_eq!(scores(&values(Some(100), 1, 1_000), &cuts), (1, 1, 1));
        assert_eq!(scores(&values(Some(50), 5, 5_000), &cuts), (3, 3, 3));
        assert_eq!(
            scores(&values(None, 0, 0), &cuts),
            (1, 1, 1),
            "never bought"
        );
    }

    #[test]
    fn segments_from_the_grid() {
        assert_eq!(segment(5, fm_score(5, 4)), Segment::Champions);
        assert_eq!(segment(5, 1), Segment::New);
        assert_eq!(segment(3, fm_score(4, 4)), Segment::Loyal);
        assert_eq!(segment(1, 5), Segment::CannotLose);
        assert_eq!(segment(1, 1), Segment::Lost);
        assert_eq!(segment(2, 3), Segment::AtRisk);
        assert_eq!(fm_score(3, 4), 4, "half rounds up");
    }

    #[test]
    fn lifecycle_states() {
        let settings = LifecycleSettings::default();
        assert_eq!(lifecycle(10, None, &settings), Lifecycle::New);
        assert_eq!(lifecycle(400, Some(30), &settings), Lifecycle::Active);
        assert_eq!(lifecycle(400, Some(200), &settings), Lifecycle::AtRisk);
        assert_eq!(lifecycle(400, Some(365), &settings), Lifecycle::Dormant);
        assert_eq!(
            lifecycle(400, None, &settings),
            Lifecycle::Dormant,
            "joined long ago, never bought"
        );
    }
}
