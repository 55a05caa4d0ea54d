//! Programs: a currency, a scope of activities that count, and a ladder of tiers.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tierline_runtime::currency::is_iso_4217;
use uuid::Uuid;

use super::violations::Violations;
use crate::ScoringError;

/// Most benefits one tier may grant.
pub const MAX_BENEFITS: usize = 50;

/// A benefit a tier grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Benefit {
    /// Code, e.g. `FREE_SHIPPING`.
    pub code: String,
    /// What the customer gets.
    pub description: String,
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// Code, e.g. `VIP`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Position on the ladder; 0 is the base tier every member holds at least.
    pub rank: u32,
    /// What it grants.
    pub benefits: Vec<Benefit>,
}

/// Which activities count toward a program; an empty list means "all".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Brands that count.
    pub brands: Vec<String>,
    /// Sales channels that count.
    pub sales_channels: Vec<String>,
}

impl Scope {
    /// Whether an activity of `brand` sold through `sales_channel` counts.
    pub fn covers(&self, brand: &str, sales_channel: &str) -> bool {
        (self.brands.is_empty() || self.brands.iter().any(|b| b == brand))
            && (self.sales_channels.is_empty()
                || self.sales_channels.iter().any(|c| c == sales_channel))
    }
}

/// A tier program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Server-assigned id.
    pub id: Uuid,
    /// Unique code, e.g. `INNISFREE`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// The one currency whose activities count (ISO 4217).
    pub currency: String,
    /// Which activities count.
    pub scope: Scope,
    /// The ladder, base tier first (index = rank).
    pub tiers: Vec<Tier>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// Raised whenever every member's record changes at once (a bucket rebuild): cached records
    /// are keyed by it, so none of an earlier generation is ever read.
    pub cache_generation: i32,
    /// When the last evaluation of the program that finished began. A member whose state is not
    /// marked lapsed qualified for their tier at that evaluation (their state was not rewritten
    /// for it), so grace counts from it.
    pub last_evaluated_at: Option<DateTime<Utc>>,
}

impl Program {
    /// The tier of `rank`.
    pub fn tier(&self, rank: u32) -> Option<&Tier> {
        self.tiers.get(rank as usize)
    }

    /// The rank of the tier with `code`.
    pub fn rank_of(&self, code: &str) -> Option<u32> {
        self.tiers
            .iter()
            .find(|tier| tier.code == code)
            .map(|tier| tier.rank)
    }

    /// The highest rank.
    pub fn top_rank(&self) -> u32 {
        u32::try_from(self.tiers.len().saturating_sub(1)).unwrap_or(0)
    }
}

/// A program as a caller sent it.
#[derive(Debug, Clone, Default)]
pub struct ProgramInput {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Currency.
    pub currency: String,
    /// Scope.
    pub scope: Scope,
    /// Tiers, base first; each rank must equal its position (or all be 0, meaning "by position").
    pub tiers: Vec<Tier>,
}

impl ProgramInput {
    /// Validates the program; every bad field is reported.
    pub fn validate(self, now: DateTime<Utc>) -> Result<Program, ScoringError> {
        let mut violations = Violations::default();
        violations.code("program.code", &self.code, 32);
        violations.text("program.name", &self.name, 200);
        if !is_iso_4217(&self.currency) {
            violations.add(
                "program.currency",
                "must be an ISO 4217 code such as KRW or USD",
            );
        }
        for (index, brand) in self.scope.brands.iter().enumerate() {
            violations.text(&format!("program.scope.brands[{index}]"), brand, 64);
        }
        for (index, channel) in self.scope.sales_channels.iter().enumerate() {
            violations.text(
                &format!("program.scope.sales_channels[{index}]"),
                channel,
                64,
            );
        }
        if self.tiers.len() < 2 {
            violations.add("program.tiers", "a ladder needs at least two tiers");
        }
        if self.tiers.len() > 20 {
            violations.add("program.tiers", "at most 20 tiers");
        }
        let by_position = self.tiers.iter().all(|tier| tier.rank == 0);
        let mut codes = HashSet::new();
        let mut tiers = Vec::with_capacity(self.tiers.len());
        for (index, tier) in self.tiers.into_iter().enumerate() {
            let field = format!("program.tiers[{index}]");
            violations.code(&format!("{field}.code"), &tier.code, 32);
            violations.text(&format!("{field}.name"), &tier.name, 100);
            if !codes.insert(tier.code.clone()) {
                violations.add(format!("{field}.code"), "tier codes must be unique");
            }
            let rank = u32::try_from(index).unwrap_or(u32::MAX);
            if !by_position && tier.rank != rank {
                violations.add(
                    format!("{field}.rank"),
                    format!("must be {rank}: list tiers base first, ranks 0, 1, 2…"),
                );
            }
            if tier.benefits.len() > MAX_BENEFITS {
                violations.add(
                    format!("{field}.benefits"),
                    format!("at most {MAX_BENEFITS} benefits"),
                );
            }
            let mut benefit_codes = HashSet::new();
            for (b, benefit) in tier.benefits.iter().enumerate() {
                violations.code(&format!("{field}.benefits[{b}].code"), &benefit.code, 64);
                violations.text(
                    &format!("{field}.benefits[{b}].description"),
                    &benefit.description,
                    500,
                );
                if !benefit_codes.insert(&benefit.code) {
                    violations.add(
                        format!("{field}.benefits[{b}].code"),
                        "benefit codes must be unique within a tier",
                    );
                }
            }
            tiers.push(Tier { rank, ..tier });
        }
        violations.into_result()?;
        Ok(Program {
            id: Uuid::now_v7(),
            code: self.code,
            name: self.name,
            currency: self.currency,
            scope: self.scope,
            tiers,
            created_at: now,
            cache_generation: 0,
            last_evaluated_at: None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tier(code: &str) -> Tier {
        Tier {
            code: code.to_owned(),
            name: code.to_lowercase(),
            rank: 0,
            benefits: Vec::new(),
        }
    }

    /// An Innisfree-like ladder: WELCOME, GREEN, VIP, VVIP in KRW.
    pub(crate) fn innisfree() -> Program {
        ProgramInput {
            code: "INNISFREE".into(),
            name: "Innisfree membership".into(),
            currency: "KRW".into(),
            scope: Scope::default(),
            tiers: ["WELCOME", "GREEN", "VIP", "VVIP"]
                .into_iter()
                .map(tier)
                .collect(),
        }
        .validate(Utc::now())
        .expect("valid program")
    }

    fn fields(error: ScoringError) -> Vec<String> {
        match error {
            ScoringError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn ranks_follow_the_ladder() {
        let program = innisfree();
        assert_eq!(program.rank_of("VIP"), Some(2));
        assert_eq!(program.top_rank(), 3);
        assert_eq!(program.tier(1).map(|t| t.code.as_str()), Some("GREEN"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let input = ProgramInput {
            code: "bad code".into(),
            name: String::new(),
            currency: "WON".into(),
            scope: Scope {
                brands: vec![String::new()],
                sales_channels: vec![],
            },
            tiers: vec![
                Tier {
                    rank: 5,
                    ..tier("GOLD")
                },
                Tier {
                    rank: 1,
                    ..tier("GOLD")
                },
            ],
        };
        assert_eq!(
            fields(input.validate(Utc::now()).expect_err("invalid")),
            [
                "program.code",
                "program.name",
                "program.currency",
                "program.scope.brands[0]",
                "program.tiers[0].rank",
                "program.tiers[1].code"
            ]
        );
        let single = ProgramInput {
            tiers: vec![tier("ONLY")],
            ..ProgramInput::default()
        };
        assert!(
            fields(single.validate(Utc::now()).expect_err("invalid"))
                .contains(&"program.tiers".to_owned())
        );
    }

    #[test]
    fn scope_filters_brands_and_channels() {
        let everything = Scope::default();
        assert!(everything.covers("any", "store"));
        let online_innisfree = Scope {
            brands: vec!["innisfree".into()],
            sales_channels: vec!["online".into()],
        };
        assert!(online_innisfree.covers("innisfree", "online"));
        assert!(!online_innisfree.covers("innisfree", "store"));
        assert!(!online_innisfree.covers("etude", "online"));
    }
}
