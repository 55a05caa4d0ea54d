//! A campaign: what it is (its definition, editable while a draft), where it is in its life, and
//! the rules of both. Validation names each bad field as the API spells it (`campaign.…`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tierline_runtime::status::FieldViolation;
use uuid::Uuid;

use crate::CampaignError;

/// How customers enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The audience is taken once, at launch.
    OneShot,
    /// Customers enter one by one when a trigger fires.
    Triggered,
}

/// The contact channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail.
    Email,
    /// SMS.
    Sms,
    /// App push.
    Push,
}

impl Channel {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Email, Self::Sms, Self::Push]
            .into_iter()
            .find(|channel| channel.as_str() == value)
    }
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being prepared; the only editable status.
    Draft,
    /// Waiting for its start.
    Scheduled,
    /// Launched.
    Running,
    /// Finished normally.
    Completed,
    /// Stopped by an operator.
    Cancelled,
}

impl Status {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Draft,
            Self::Scheduled,
            Self::Running,
            Self::Completed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}

/// An inclusive range; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    /// Lowest value, when bounded.
    pub min: Option<i64>,
    /// Highest value, when bounded.
    pub max: Option<i64>,
}

/// An inclusive range of probabilities, 0 to 1; a missing bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbabilityRange {
    /// Lowest value, when bounded.
    pub min: Option<f64>,
    /// Highest value, when bounded.
    pub max: Option<f64>,
}

/// The scoring-side rule, passed to the scoring service's `QueryAudience` (enum values are the
/// scoring contract's numbers).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoringRule {
    /// Tier codes (any of them).
    pub tier_codes: Vec<String>,
    /// RFM segments (any of them).
    pub segments: Vec<i32>,
    /// Lifecycle states (any of them).
    pub lifecycle_states: Vec<i32>,
    /// Recency score range.
    pub r_score: Option<Range>,
    /// Frequency score range.
    pub f_score: Option<Range>,
    /// Monetary score range.
    pub m_score: Option<Range>,
    /// Net spend in the tier window.
    pub net_spend_minor: Option<Range>,
    /// Days since the last purchase.
    pub days_since_last_purchase: Option<Range>,
    /// Probability alive (the scoring service's value model); absent in rules stored before it.
    #[serde(default)]
    pub probability_alive: Option<ProbabilityRange>,
    /// Predicted value over the policy's horizon, minor units (value model).
    #[serde(default)]
    pub predicted_value_minor: Option<Range>,
}

/// Who is aimed at: all parts combine with AND, lists within a part with OR.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Audience {
    /// Tiers, segments, lifecycle, scores, spend, recency (scoring service).
    pub scoring: ScoringRule,
    /// Customer attributes that must all equal these values (customer service).
    pub attributes: BTreeMap<String, String>,
    /// Birth months, 1 to 12 (customer service).
    pub birthday_months: Vec<u32>,
}

impl Audience {
    /// Whether the customer-side criteria need the customer records (not just consents).
    pub fn needs_customer_records(&self) -> bool {
        !self.attributes.is_empty() || !self.birthday_months.is_empty()
    }

    /// Whether a customer with these attributes and birth month matches the customer-side
    /// criteria.
    pub fn matches_customer(
        &self,
        attributes: &std::collections::HashMap<String, String>,
        birth_month: Option<u32>,
    ) -> bool {
        let attributes_match = self
            .attributes
            .iter()
            .all(|(key, value)| attributes.get(key) == Some(value));
        let month_matches = self.birthday_months.is_empty()
            || birth_month.is_some_and(|month| self.birthday_months.contains(&month));
        attributes_match && month_matches
    }
}

/// The concrete benefit of an offer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Benefit {
    /// A coupon or promotion code.
    Code(String),
    /// A monetary value: minor units and currency.
    Value(i64, String),
}

/// What treatment members are offered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    /// Message text.
    pub text: String,
    /// The benefit, if any.
    pub benefit: Option<Benefit>,
}

/// What makes a customer enter a triggered campaign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An upgrade into this tier (any upgrade when empty).
    TierUpgrade { to_tier_code: String },
    /// A downgrade out of this tier (any downgrade when empty).
    TierDowngrade { from_tier_code: String },
    /// A lifecycle change into this state (scoring contract number: AT_RISK 3 or DORMANT 4).
    Lifecycle { became: i32 },
    /// A birthday, `days_before` days ahead, days starting in `time_zone`.
    Birthday { days_before: u32, time_zone: String },
}

/// Everything an operator defines; editable while a draft.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Definition {
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The tier program.
    pub program_id: Uuid,
    /// One-shot or triggered.
    pub kind: Kind,
    /// The contact channel.
    pub channel: Channel,
    /// Who is aimed at.
    pub audience: Audience,
    /// Control share in basis points, 0 to 5,000.
    pub holdout_bps: u32,
    /// The offer; required to schedule or launch.
    pub offer: Option<Offer>,
    /// Cost of each sent delivery, minor units of the program currency.
    pub cost_per_contact_minor: i64,
    /// Fixed cost, minor units of the program currency.
    pub fixed_cost_minor: i64,
    /// Launch time (scheduled) or the start of triggers.
    pub start_at: Option<DateTime<Utc>>,
    /// When a running campaign completes by itself.
    pub end_at: Option<DateTime<Utc>>,
    /// Days of attribution after entry, 1 to 365; 0 while a draft has none (required to schedule
    /// or launch).
    pub attribution_window_days: u32,
    /// Triggered: days before a customer may enter again; 0 = once.
    pub re_entry_period_days: u32,
    /// Triggered: what makes customers enter.
    pub trigger: Option<Trigger>,
}

/// What the program says about a campaign's money and tiers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgramFacts {
    /// ISO 4217 currency.
    pub currency: String,
    /// Tier codes on the ladder.
    pub tier_codes: Vec<String>,
    /// Brands whose purchases count (all when empty).
    pub brands: Vec<String>,
    /// Sales channels whose purchases count (all when empty).
    pub sales_channels: Vec<String>,
}

/// How far a launch got.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LaunchProgress {
    /// Customers matching the whole audience so far.
    pub matched: i64,
    /// The last customer id processed (the audience streams in id order).
    pub cursor: Option<Uuid>,
    /// Whether the launch finished.
    pub complete: bool,
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Id.
    pub id: Uuid,
    /// The definition.
    pub definition: Definition,
    /// The program's currency, tiers and scope, as read when the definition last changed.
    pub program: ProgramFacts,
    /// Where it is.
    pub status: Status,
    /// Raised on every change.
    pub revision: i64,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Launch time.
    pub launched_at: Option<DateTime<Utc>>,
    /// Completion time.
    pub completed_at: Option<DateTime<Utc>>,
    /// Cancellation time.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub cancel_reason: String,
    /// The launch.
    pub launch: LaunchProgress,
}

fn check_range(
    violations: &mut Vec<FieldViolation>,
    field: &str,
    range: Option<Range>,
    bounds: (i64, i64),
) {
    if let Some(range) = range {
        let out = |v: Option<i64>| v.is_some_and(|v| v < bounds.0 || v > bounds.1);
        if out(range.min) || out(range.max) {
            violations.push(FieldViolation::new(
                field,
                format!("must lie within {} to {}", bounds.0, bounds.1),
            ));
        } else if let (Some(min), Some(max)) = (range.min, range.max)
            && min > max
        {
            violations.push(FieldViolation::new(field, "min must not exceed max"));
        }
    }
}

fn attribute_key_ok(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

impl Definition {
    /// Checks the fields that are set against `program`; every bad field is reported.
    pub fn validate(&self, program: &ProgramFacts) -> Result<(), CampaignError> {
        let mut v = Vec::new();
        self.check_basics(&mut v);
        self.check_scoring_rule(program, &mut v);
        self.check_audience_profile(&mut v);
        self.check_offer(&mut v);
        self.check_terms(&mut v);
        self.check_kind(program, &mut v);
        if v.is_empty() {
            Ok(())
        } else {
            Err(CampaignError::InvalidArgument(v))
        }
    }

    /// Name, description and holdout.
    fn check_basics(&self, v: &mut Vec<FieldViolation>) {
        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 || self.name.chars().count() > 200 {
            v.push(FieldViolation::new(
                "campaign.name",
                "is required, 1 to 200 characters",
            ));
        }
        if self.description.chars().count() > 2_000 {
            v.push(FieldViolation::new(
                "campaign.description",
                "at most 2,000 characters",
            ));
        }
        if self.holdout_bps > 5_000 {
            v.push(FieldViolation::new(
                "campaign.holdout_bps",
                "must be 0 to 5,000 (0 % to 50 %)",
            ));
        }
    }

    /// The audience's rule over the scoring service's figures.
    fn check_scoring_rule(&self, program: &ProgramFacts, v: &mut Vec<FieldViolation>) {
        let rule = &self.audience.scoring;
        for code in &rule.tier_codes {
            if !program.tier_codes.contains(code) {
                v.push(FieldViolation::new(
                    "campaign.audience.scoring_rule.tier_codes",
                    format!("{code:?} is not a tier of the program"),
                ));
            }
        }
        if rule.segments.iter().any(|s| !(1..=11).contains(s)) {
            v.push(FieldViolation::new(
                "campaign.audience.scoring_rule.segments",
                "unknown segment",
            ));
        }
        if rule.lifecycle_states.iter().any(|s| !(1..=4).contains(s)) {
            v.push(FieldViolation::new(
                "campaign.audience.scoring_rule.lifecycle_states",
                "unknown lifecycle state",
            ));
        }
        for (field, range) in [
            ("r_score", rule.r_score),
            ("f_score", rule.f_score),
            ("m_score", rule.m_score),
        ] {
            check_range(
                v,
                &format!("campaign.audience.scoring_rule.{field}"),
                range,
                (1, 5),
            );
        }
        check_range(
            v,
            "campaign.audience.scoring_rule.net_spend_minor",
            rule.net_spend_minor,
            (i64::MIN, i64::MAX),
        );
        check_range(
            v,
            "campaign.audience.scoring_rule.days_since_last_purchase",
            rule.days_since_last_purchase,
            (0, i64::MAX),
        );
        check_range(
            v,
            "campaign.audience.scoring_rule.predicted_value_minor",
            rule.predicted_value_minor,
            (i64::MIN, i64::MAX),
        );
        if let Some(alive) = rule.probability_alive {
            const FIELD: &str = "campaign.audience.scoring_rule.probability_alive";
            let out = |v: Option<f64>| v.is_some_and(|v| !(0.0..=1.0).contains(&v));
            if out(alive.min) || out(alive.max) {
                v.push(FieldViolation::new(FIELD, "must lie within 0 to 1"));
            } else if let (Some(min), Some(max)) = (alive.min, alive.max)
                && min > max
            {
                v.push(FieldViolation::new(FIELD, "min must not exceed max"));
            }
        }
    }

    /// The audience's rule over the customer profile.
    fn check_audience_profile(&self, v: &mut Vec<FieldViolation>) {
        if self.audience.attributes.len() > 20
            || self
                .audience
                .attributes
                .keys()
                .any(|key| !attribute_key_ok(key))
        {
            v.push(FieldViolation::new(
                "campaign.audience.attributes",
                "at most 20 entries, keys of [a-z0-9_.-]{1,64}",
            ));
        }
        if self
            .audience
            .birthday_months
            .iter()
            .any(|m| !(1..=12).contains(m))
        {
            v.push(FieldViolation::new(
                "campaign.audience.birthday_months",
                "months are 1 to 12",
            ));
        }
    }

    /// The offer, when one is set.
    fn check_offer(&self, v: &mut Vec<FieldViolation>) {
        if let Some(offer) = &self.offer {
            if offer.text.trim().is_empty() || offer.text.chars().count() > 2_000 {
                v.push(FieldViolation::new(
                    "campaign.offer.text",
                    "is required, 1 to 2,000 characters",
                ));
            }
            match &offer.benefit {
                Some(Benefit::Code(code)) if code.is_empty() || code.chars().count() > 64 => {
                    v.push(FieldViolation::new(
                        "campaign.offer.code",
                        "1 to 64 characters",
                    ));
                }
                Some(Benefit::Value(amount, currency))
                    if *amount <= 0 || !tierline_runtime::currency::is_iso_4217(currency) =>
                {
                    v.push(FieldViolation::new(
                        "campaign.offer.value",
                        "a positive amount in an ISO 4217 currency",
                    ));
                }
                _ => {}
            }
        }
    }

    /// Costs, schedule and attribution window.
    fn check_terms(&self, v: &mut Vec<FieldViolation>) {
        if self.cost_per_contact_minor < 0 {
            v.push(FieldViolation::new(
                "campaign.cost_per_contact.amount_minor",
                "must not be negative",
            ));
        }
        if self.fixed_cost_minor < 0 {
            v.push(FieldViolation::new(
                "campaign.fixed_cost.amount_minor",
                "must not be negative",
            ));
        }
        if let (Some(start), Some(end)) = (self.start_at, self.end_at)
            && end <= start
        {
            v.push(FieldViolation::new(
                "campaign.schedule.end_at",
                "must be after start_at",
            ));
        }
        // 0 is proto3's "not set": a draft may lack it (missing_for_launch asks for it).
        if self.attribution_window_days > 365 {
            v.push(FieldViolation::new(
                "campaign.attribution_window_days",
                "must be 1 to 365",
            ));
        }
    }

    /// What the kind of campaign allows: a trigger and re-entry for a triggered one only.
    fn check_kind(&self, program: &ProgramFacts, v: &mut Vec<FieldViolation>) {
        match self.kind {
            Kind::OneShot => {
                if self.re_entry_period_days != 0 {
                    v.push(FieldViolation::new(
                        "campaign.re_entry_period_days",
                        "must be 0 for a one-shot campaign",
                    ));
                }
                if self.trigger.is_some() {
                    v.push(FieldViolation::new(
                        "campaign.trigger",
                        "must be absent for a one-shot campaign",
                    ));
                }
            }
            Kind::Triggered => {
                if self.re_entry_period_days > 3_650 {
                    v.push(FieldViolation::new(
                        "campaign.re_entry_period_days",
                        "must be 0 to 3,650",
                    ));
                }
                match &self.trigger {
                    Some(Trigger::TierUpgrade { to_tier_code: code })
                    | Some(Trigger::TierDowngrade {
                        from_tier_code: code,
                    }) if !code.is_empty() && !program.tier_codes.contains(code) => {
                        v.push(FieldViolation::new(
                            "campaign.trigger",
                            format!("{code:?} is not a tier of the program"),
                        ));
                    }
                    Some(Trigger::Lifecycle { became }) if !matches!(became, 3 | 4) => {
                        v.push(FieldViolation::new(
                            "campaign.trigger.lifecycle.became",
                            "must be AT_RISK or DORMANT",
                        ));
                    }
                    Some(Trigger::Birthday {
                        days_before,
                        time_zone,
                    }) => {
                        if *days_before > 30 {
                            v.push(FieldViolation::new(
                                "campaign.trigger.birthday.days_before",
                                "must be 0 to 30",
                            ));
                        }
                        if !time_zone.is_empty() && time_zone.parse::<chrono_tz::Tz>().is_err() {
                            v.push(FieldViolation::new(
                                "campaign.trigger.birthday.time_zone",
                                "is not an IANA time zone",
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// What is still missing to schedule or launch (the fields optional in a draft).
    pub fn missing_for_launch(&self) -> Vec<FieldViolation> {
        let mut missing = Vec::new();
        if self.offer.is_none() {
            missing.push(FieldViolation::new(
                "campaign.offer",
                "is required to schedule or launch",
            ));
        }
        if self.attribution_window_days == 0 {
            missing.push(FieldViolation::new(
                "campaign.attribution_window_days",
                "is required to schedule or launch, 1 to 365",
            ));
        }
        if self.kind == Kind::Triggered && self.trigger.is_none() {
            missing.push(FieldViolation::new(
                "campaign.trigger",
                "is required for a triggered campaign",
            ));
        }
        missing
    }
}

impl Campaign {
    /// A new draft (revision 1) created by `created_by` at `now`.
    pub fn draft(
        id: Uuid,
        definition: Definition,
        program: ProgramFacts,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            definition,
            program,
            status: Status::Draft,
            revision: 1,
            created_by: created_by.to_owned(),
            created_at: now,
            updated_at: now,
            launched_at: None,
            completed_at: None,
            cancelled_at: None,
            cancel_reason: String::new(),
            launch: LaunchProgress::default(),
        }
    }

    /// Fails unless the campaign is a draft (the only editable status).
    pub fn ensure_editable(&self) -> Result<(), CampaignError> {
        if self.status == Status::Draft {
            Ok(())
        } else {
            Err(CampaignError::precondition(format!(
                "campaign is {}; only a draft can be changed",
                self.status.as_str()
            )))
        }
    }

    /// Fails unless the campaign may launch now (draft or scheduled, complete).
    pub fn ensure_launchable(&self) -> Result<(), CampaignError> {
        match self.status {
            Status::Draft | Status::Scheduled => {}
            Status::Running | Status::Completed => return Ok(()),
            Status::Cancelled => return Err(CampaignError::precondition("campaign is cancelled")),
        }
        let missing = self.definition.missing_for_launch();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(CampaignError::FailedPrecondition {
                message: "campaign is incomplete".into(),
                fields: missing,
            })
        }
    }

    /// The status after cancelling, or why not.
    pub fn cancellable(&self) -> Result<bool, CampaignError> {
        match self.status {
            Status::Draft | Status::Scheduled | Status::Running => Ok(true),
            Status::Cancelled => Ok(false),
            Status::Completed => Err(CampaignError::precondition("campaign is completed")),
        }
    }

    /// Whether completing changes anything, or why it cannot.
    pub fn completable(&self) -> Result<bool, CampaignError> {
        match self.status {
            Status::Running => Ok(true),
            Status::Completed => Ok(false),
            other => Err(CampaignError::precondition(format!(
                "campaign is {}; only a running campaign completes",
                other.as_str()
            ))),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn campaign() -> Campaign {
        Campaign::draft(Uuid::now_v7(), definition(), program(), "test", Utc::now())
    }

    pub(crate) fn definition() -> Definition {
        Definition {
            name: "VIP retention".into(),
            description: String::new(),
            program_id: Uuid::nil(),
            kind: Kind::OneShot,
            channel: Channel::Email,
            audience: Audience::default(),
            holdout_bps: 1_000,
            offer: Some(Offer {
                text: "10% off".into(),
                benefit: Some(Benefit::Code("VIP10".into())),
            }),
            cost_per_contact_minor: 50,
            fixed_cost_minor: 0,
            start_at: None,
            end_at: None,
            attribution_window_days: 30,
            re_entry_period_days: 0,
            trigger: None,
        }
    }

    fn program() -> ProgramFacts {
        ProgramFacts {
            currency: "KRW".into(),
            tier_codes: vec!["WELCOME".into(), "VIP".into()],
            brands: vec![],
            sales_channels: vec![],
        }
    }

    fn fields(result: Result<(), CampaignError>) -> Vec<String> {
        match result {
            Err(CampaignError::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_definition_is_valid() {
        assert!(definition().validate(&program()).is_ok());
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut bad = definition();
        bad.name = " ".into();
        bad.holdout_bps = 5_001;
        bad.audience.scoring.tier_codes = vec!["GOLD".into()];
        bad.audience.scoring.r_score = Some(Range {
            min: Some(4),
            max: Some(2),
        });
        bad.audience.birthday_months = vec![13];
        bad.attribution_window_days = 366;
        bad.re_entry_period_days = 7;
        assert_eq!(
            fields(bad.validate(&program())),
            [
                "campaign.name",
                "campaign.holdout_bps",
                "campaign.audience.scoring_rule.tier_codes",
                "campaign.audience.scoring_rule.r_score",
                "campaign.audience.birthday_months",
                "campaign.attribution_window_days",
                "campaign.re_entry_period_days",
            ]
        );
    }

    #[test]
    fn a_draft_may_lack_its_attribution_window_until_launch() {
        let mut draft = definition();
        draft.attribution_window_days = 0;
        assert!(draft.validate(&program()).is_ok());
        let missing: Vec<_> = draft
            .missing_for_launch()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(missing, ["campaign.attribution_window_days"]);
    }

    #[test]
    fn a_triggered_campaign_needs_its_trigger_to_launch() {
        let mut triggered = definition();
        triggered.kind = Kind::Triggered;
        assert_eq!(triggered.missing_for_launch().len(), 1);
        triggered.trigger = Some(Trigger::Lifecycle { became: 2 });
        assert_eq!(
            fields(triggered.validate(&program())),
            ["campaign.trigger.lifecycle.became"]
        );
    }

    #[test]
    fn customer_criteria_combine_with_and_and_months_with_or() {
        let mut audience = Audience::default();
        audience.attributes.insert("region".into(), "seoul".into());
        audience.birthday_months = vec![3, 4];
        let attrs: std::collections::HashMap<String, String> =
            [("region".to_owned(), "seoul".to_owned())].into();
        assert!(audience.matches_customer(&attrs, Some(4)));
        assert!(!audience.matches_customer(&attrs, Some(5)));
        assert!(!audience.matches_customer(&attrs, None));
        assert!(!audience.matches_customer(&Default::default(), Some(3)));
    }
}
