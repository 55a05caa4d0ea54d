//! Audiences: the members of a program matching a rule on tiers, segments, lifecycle, scores,
//! spend and days since the last purchase, streamed in customer id order (the campaign service
//! resolves its audiences with it).

use std::{collections::HashMap, sync::Arc};

use chrono::{SubsecRound, Utc};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::{
    policy::PolicyRules,
    program::Program,
    scores::{CutPoints, Lifecycle, ScoreView, Segment, rfm_months, score},
    value::{CustomerValue, FittedModel, customer_value},
};
use crate::{ScoringError, domain::ports::ScoringStore};

/// Members read per query.
const PAGE: u32 = 1000;

/// An inclusive range; a missing bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    /// Lowest.
    pub min: Option<i64>,
    /// Highest.
    pub max: Option<i64>,
}

impl Range {
    fn contains(&self, value: i64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }
}

/// An inclusive range of fractions (probabilities); a missing bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FractionRange {
    /// Lowest.
    pub min: Option<f64>,
    /// Highest.
    pub max: Option<f64>,
}

impl FractionRange {
    fn contains(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }
}

/// A validated audience rule. Fields combine with AND; values within a list with OR; empty lists
/// and open ranges do not restrict.
#[derive(Debug, Clone, Default)]
pub struct AudienceRule {
    /// Ranks of the tiers shown.
    pub tier_ranks: Vec<u32>,
    /// Segments.
    pub segments: Vec<Segment>,
    /// Lifecycle states.
    pub lifecycles: Vec<Lifecycle>,
    /// R score range.
    pub r_score: Range,
    /// F score range.
    pub f_score: Range,
    /// M score range.
    pub m_score: Range,
    /// Net spend range, minor units.
    pub net_spend: Range,
    /// Days since the last purchase.
    pub days_since_last_purchase: Range,
    /// Probability alive (value model).
    pub probability_alive: FractionRange,
    /// Predicted value, minor units (value model).
    pub predicted_value: Range,
}

impl AudienceRule {
    /// Whether the rule asks for the value model's figures (which cost a summary per member).
    pub fn needs_value(&self) -> bool {
        !self.probability_alive.is_open() || !self.predicted_value.is_open()
    }

    /// Whether a member with `rank`, `view` and, when the model has it, `value` matches; a
    /// member without a value never matches a value range.
    pub fn matches(&self, rank: u32, view: &ScoreView, value: Option<&CustomerValue>) -> bool {
        self.matches_scores(rank, view)
            && (self.probability_alive.is_open()
                || value
                    .is_some_and(|value| self.probability_alive.contains(value.probability_alive)))
            && (self.predicted_value.is_open()
                || value
                    .and_then(|value| value.predicted_value_minor)
                    .is_some_and(|predicted| self.predicted_value.contains(predicted)))
    }

    fn matches_scores(&self, rank: u32, view: &ScoreView) -> bool {
        let bought = view.values.recency_days.is_some();
        let score_matches = |range: &Range, score: u8| {
            range.is_open() || (bought && range.contains(i64::from(score)))
        };
        (self.tier_ranks.is_empty() || self.tier_ranks.contains(&rank))
            && (self.segments.is_empty()
                || view
                    .segment
                    .is_some_and(|segment| self.segments.contains(&segment)))
            && (self.lifecycles.is_empty() || self.lifecycles.contains(&view.lifecycle))
            && score_matches(&self.r_score, view.scores.0)
            && score_matches(&self.f_score, view.scores.1)
            && score_matches(&self.m_score, view.scores.2)
            && self.net_spend.contains(view.values.monetary)
            && (self.days_since_last_purchase.is_open()
                || view
                    .values
                    .recency_days
                    .is_some_and(|days| self.days_since_last_purchase.contains(days)))
    }
}

/// An audience rule as a caller sent it: unknown enum values arrive as `None`.
#[derive(Debug, Clone, Default)]
pub struct AudienceRuleInput {
    /// Tier codes.
    pub tier_codes: Vec<String>,
    /// Segments.
    pub segments: Vec<Option<Segment>>,
    /// Lifecycle states.
    pub lifecycles: Vec<Option<Lifecycle>>,
    /// Score ranges (R, F, M).
    pub scores: [Range; 3],
    /// Net spend range.
    pub net_spend: Range,
    /// Days since the last purchase.
    pub days_since_last_purchase: Range,
    /// Probability alive.
    pub probability_alive: FractionRange,
    /// Predicted value, minor units.
    pub predicted_value: Range,
}

impl AudienceRuleInput {
    /// Validates the rule against `program`; every bad field is named.
    pub fn validate(self, program: &Program) -> Result<AudienceRule, ScoringError> {
        let mut violations = Vec::new();
        let mut bad = |field: String, description: &str| {
            violations.push(tierline_runtime::status::FieldViolation::new(
                field,
                description,
            ))
        };
        let mut tier_ranks = Vec::new();
        for (index, code) in self.tier_codes.iter().enumerate() {
            match program.rank_of(code) {
                Some(rank) => tier_ranks.push(rank),
                None => bad(
                    format!("rule.tier_codes[{index}]"),
                    "is not a tier of the program",
                ),
            }
        }
        if self.segments.iter().any(Option::is_none) {
            bad("rule.segments".into(), "holds an unspecified segment");
        }
        if self.lifecycles.iter().any(Option::is_none) {
            bad("rule.lifecycle_states".into(), "holds an unspecified state");
        }
        for (name, range) in ["r_score", "f_score", "m_score"].iter().zip(&self.scores) {
            let in_scale = |bound: Option<i64>| bound.is_none_or(|value| (1..=5).contains(&value));
            if !in_scale(range.min) || !in_scale(range.max) {
                bad(format!("rule.{name}"), "scores are 1 to 5");
            }
        }
        for (name, range) in [
            ("r_score", self.scores[0]),
            ("f_score", self.scores[1]),
            ("m_score", self.scores[2]),
            ("net_spend_minor", self.net_spend),
            ("days_since_last_purchase", self.days_since_last_purchase),
            ("predicted_value_minor", self.predicted_value),
        ] {
            if let (Some(min), Some(max)) = (range.min, range.max)
                && min > max
            {
                bad(format!("rule.{name}"), "min must not exceed max");
            }
        }
        let alive = self.probability_alive;
        let in_unit = |bound: Option<f64>| bound.is_none_or(|value| (0.0..=1.0).contains(&value));
        if !in_unit(alive.min) || !in_unit(alive.max) {
            bad("rule.probability_alive".into(), "bounds are 0 to 1");
        } else if let (Some(min), Some(max)) = (alive.min, alive.max)
            && min > max
        {
            bad("rule.probability_alive".into(), "min must not exceed max");
        }
        if !violations.is_empty() {
            return Err(ScoringError::InvalidArgument(violations));
        }
        Ok(AudienceRule {
            tier_ranks,
            segments: self.segments.into_iter().flatten().collect(),
            lifecycles: self.lifecycles.into_iter().flatten().collect(),
            r_score: self.scores[0],
            f_score: self.scores[1],
            m_score: self.scores[2],
            net_spend: self.net_spend,
            days_since_last_purchase: self.days_since_last_purchase,
            probability_alive: self.probability_alive,
            predicted_value: self.predicted_value,
        })
    }
}

/// One matching member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceMember {
    /// The customer.
    pub customer_id: Uuid,
    /// Rank of the tier shown.
    pub rank: u32,
    /// Segment, for customers who bought.
    pub segment: Option<Segment>,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
}

/// Chunks of matches, ascending customer id.
pub type AudienceStream = ReceiverStream<Result<Vec<AudienceMember>, ScoringError>>;

/// Streams the members of `program` matching `rule`, after `after`, at most `limit`; value
/// ranges are judged with `model` (nobody matches them without one).
#[allow(clippy::too_many_arguments)]
pub fn query(
    store: Arc<dyn ScoringStore>,
    program: Program,
    rules: PolicyRules,
    cuts: CutPoints,
    model: Option<FittedModel>,
    rule: AudienceRule,
    after: Option<Uuid>,
    limit: Option<u64>,
) -> AudienceStream {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let now = Utc::now().trunc_subsecs(6);
        let (from, to) = rfm_months(rules.window, now, rules.time_zone);
        let mut cursor = after;
        let mut remaining = limit.unwrap_or(u64::MAX);
        while remaining > 0 {
            let page = match store
                .audience_page(program.id, cursor, PAGE, from, to, now)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            let Some((last, _)) = page.last() else { return };
            cursor = Some(last.customer_id);
            let full = page.len() == PAGE as usize;
            let values = match (&model, rule.needs_value()) {
                (Some(model), true) => {
                    let ids: Vec<Uuid> = page.iter().map(|(input, _)| input.customer_id).collect();
                    match super::value::purchase_summaries(
                        store.as_ref(),
                        program.id,
                        &ids,
                        rules.time_zone,
                        now,
                    )
                    .await
                    {
                        Ok(summaries) => summaries
                            .into_iter()
                            .map(|(id, summary)| {
                                (id, customer_value(model, &summary, &rules.value_model))
                            })
                            .collect(),
                        Err(error) => {
                            let _ = sender.send(Err(error)).await;
                            return;
                        }
                    }
                }
                _ => HashMap::new(),
            };
            let mut matches = Vec::new();
            for (input, rank) in &page {
                let view = score(input, &cuts, 0, &rules.lifecycle, now);
                let value = values.get(&input.customer_id);
                if remaining > 0 && rule.matches(*rank, &view, value) {
                    remaining -= 1;
                    matches.push(AudienceMember {
                        customer_id: input.customer_id,
                        rank: *rank,
                        segment: view.segment,
                        lifecycle: view.lifecycle,
                    });
                }
            }
            if !matches.is_empty() && sender.send(Ok(matches)).await.is_err() {
                return;
            }
            if !full {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::scores::RfmValues;

    fn view(
        recency_days: Option<i64>,
        scores: (u8, u8, u8),
        segment: Option<Segment>,
        lifecycle: Lifecycle,
        monetary: i64,
    ) -> ScoreView {
        ScoreView {
            customer_id: Uuid::now_v7(),
            values: RfmValues {
                recency_days,
                frequency: 1,
                monetary,
            },
            scores,
            segment,
            lifecycle,
            historic_value: 0,
            cut_points_version: 1,
            computed_at: Utc::now(),
        }
    }

    #[test]
    fn an_empty_rule_matches_everyone() {
        assert!(
            AudienceRule::default()
                .matches_scores(0, &view(None, (1, 1, 1), None, Lifecycle::Dormant, 0))
        );
    }

    #[test]
    fn fields_combine_with_and_and_lists_with_or() {
        let rule = AudienceRule {
            tier_ranks: vec![2, 3],
            lifecycles: vec![Lifecycle::AtRisk, Lifecycle::Dormant],
            ..AudienceRule::default()
        };
        assert!(rule.matches_scores(
            2,
            &view(
                Some(200),
                (2, 4, 4),
                Some(Segment::AtRisk),
                Lifecycle::AtRisk,
                500_000
            )
        ));
        assert!(
            !rule.matches_scores(
                1,
                &view(
                    Some(200),
                    (2, 4, 4),
                    Some(Segment::AtRisk),
                    Lifecycle::AtRisk,
                    500_000
                )
            ),
            "tier"
        );
        assert!(
            !rule.matches_scores(
                3,
                &view(
                    Some(20),
                    (5, 4, 4),
                    Some(Segment::Champions),
                    Lifecycle::Active,
                    500_000
                )
            ),
            "lifecycle"
        );
    }

    #[test]
    fn ranges_and_customers_without_a_purchase() {
        let rule = AudienceRule {
            days_since_last_purchase: Range {
                min: Some(90),
                max: None,
            },
            ..AudienceRule::default()
        };
        assert!(rule.matches_scores(
            0,
            &view(
                Some(120),
                (2, 1, 1),
                Some(Segment::Hibernating),
                Lifecycle::Active,
                1
            )
        ));
        assert!(!rule.matches_scores(
            0,
            &view(
                Some(30),
                (4, 1, 1),
                Some(Segment::Promising),
                Lifecycle::Active,
                1
            )
        ));
        assert!(
            !rule.matches_scores(0, &view(None, (1, 1, 1), None, Lifecycle::Dormant, 0)),
            "never bought never matches"
        );
        let scored = AudienceRule {
            m_score: Range {
                min: Some(4),
                max: Some(5),
            },
            segments: vec![Segment::Champions],
            ..AudienceRule::default()
        };
        assert!(scored.matches_scores(
            0,
            &view(
                Some(5),
                (5, 5, 5),
                Some(Segment::Champions),
                Lifecycle::Active,
                9
            )
        ));
        assert!(!scored.matches_scores(0, &view(None, (1, 1, 1), None, Lifecycle::New, 0)));
    }

    #[test]
    fn value_ranges_match_only_members_the_model_scored() {
        let rule = AudienceRuleInput {
            probability_alive: FractionRange {
                min: None,
                max: Some(0.5),
            },
            predicted_value: Range {
                min: Some(100_000),
                max: None,
            },
            ..AudienceRuleInput::default()
        }
        .validate(&crate::domain::program::tests::innisfree())
        .expect("valid");
        assert!(rule.needs_value());
        let member = view(Some(200), (1, 4, 5), None, Lifecycle::AtRisk, 500_000);
        let value = |probability_alive: f64, predicted: Option<i64>| CustomerValue {
            probability_alive,
            expected_purchases: vec![(90, 0.4)],
            horizon_purchases: 1.2,
            expected_spend_minor: predicted.map(|_| 90_000.0),
            predicted_value_minor: predicted,
        };
        assert!(rule.matches(0, &member, Some(&value(0.3, Some(150_000)))));
        assert!(
            !rule.matches(0, &member, Some(&value(0.7, Some(150_000)))),
            "alive"
        );
        assert!(
            !rule.matches(0, &member, Some(&value(0.3, Some(50_000)))),
            "low value"
        );
        assert!(
            !rule.matches(0, &member, Some(&value(0.3, None))),
            "no spend model"
        );
        assert!(!rule.matches(0, &member, None), "never bought or no model");
        assert!(AudienceRule::default().matches(0, &member, None));
        let inverted = AudienceRuleInput {
            probability_alive: FractionRange {
                min: Some(0.8),
                max: Some(0.2),
            },
            ..AudienceRuleInput::default()
        };
        let outside = AudienceRuleInput {
            probability_alive: FractionRange {
                min: Some(-0.1),
                max: None,
            },
            ..AudienceRuleInput::default()
        };
        for input in [inverted, outside] {
            let Err(ScoringError::InvalidArgument(violations)) =
                input.validate(&crate::domain::program::tests::innisfree())
            else {
                panic!("a bad probability range is refused");
            };
            assert_eq!(violations[0].field, "rule.probability_alive");
        }
    }
}
