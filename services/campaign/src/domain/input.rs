//! What a caller sends to create or change a campaign, before it is checked against the program:
//! a definition, or a patch of one, plus the currencies of the amounts it carries (the definition
//! keeps minor units of the program currency only).

use chrono::{DateTime, Utc};
use tierline_runtime::status::FieldViolation;
use uuid::Uuid;

use super::campaign::{Audience, Channel, Definition, Kind, Offer, ProgramFacts, Trigger};
use crate::CampaignError;

/// An amount as sent: minor units and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    /// Minor units.
    pub minor: i64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// A campaign as sent to `CreateCampaign`.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignInput {
    /// The definition; its cost fields are filled from the amounts below once checked.
    pub definition: Definition,
    /// `campaign.cost_per_contact`, when sent.
    pub cost_per_contact: Option<Amount>,
    /// `campaign.fixed_cost`, when sent.
    pub fixed_cost: Option<Amount>,
}

/// A schedule: start and end, each optional.
pub type Schedule = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The fields of `UpdateCampaign` that are set; each replaces the campaign's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefinitionPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New program.
    pub program_id: Option<Uuid>,
    /// New kind.
    pub kind: Option<Kind>,
    /// New channel.
    pub channel: Option<Channel>,
    /// New audience.
    pub audience: Option<Audience>,
    /// New holdout.
    pub holdout_bps: Option<u32>,
    /// New offer.
    pub offer: Option<Offer>,
    /// New cost per contact.
    pub cost_per_contact: Option<Amount>,
    /// New fixed cost.
    pub fixed_cost: Option<Amount>,
    /// New schedule.
    pub schedule: Option<Schedule>,
    /// New attribution window.
    pub attribution_window_days: Option<u32>,
    /// New re-entry period.
    pub re_entry_period_days: Option<u32>,
    /// New trigger.
    pub trigger: Option<Trigger>,
    /// Remove the trigger.
    pub clear_trigger: bool,
}

impl DefinitionPatch {
    /// Applies the patch to `definition`; amounts are checked against the program afterwards.
    pub fn apply(
        self,
        definition: &mut Definition,
    ) -> Result<Vec<(&'static str, Amount)>, CampaignError> {
        if self.clear_trigger && self.trigger.is_some() {
            return Err(CampaignError::invalid(
                "clear_trigger",
                "cannot be set together with trigger",
            ));
        }
        macro_rules! replace {
            ($($field:ident),*) => { $(if let Some(value) = self.$field { definition.$field = value; })* };
        }
        replace!(
            name,
            description,
            program_id,
            kind,
            channel,
            audience,
            holdout_bps,
            attribution_window_days,
            re_entry_period_days
        );
        if let Some(offer) = self.offer {
            definition.offer = Some(offer);
        }
        if let Some((start_at, end_at)) = self.schedule {
            definition.start_at = start_at;
            definition.end_at = end_at;
        }
        if let Some(trigger) = self.trigger {
            definition.trigger = Some(trigger);
        }
        if self.clear_trigger {
            definition.trigger = None;
        }
        let mut amounts = Vec::new();
        if let Some(amount) = self.cost_per_contact {
            amounts.push(("campaign.cost_per_contact", amount));
        }
        if let Some(amount) = self.fixed_cost {
            amounts.push(("campaign.fixed_cost", amount));
        }
        Ok(amounts)
    }
}

/// Puts checked amounts into `definition`: each must be in the program currency (a zero amount
/// may leave the currency empty).
pub fn apply_amounts(
    definition: &mut Definition,
    amounts: Vec<(&'static str, Amount)>,
    program: &ProgramFacts,
) -> Result<(), CampaignError> {
    let mut violations = Vec::new();
    for (field, amount) in amounts {
        let zero_without_currency = amount.minor == 0 && amount.currency.is_empty();
        if !zero_without_currency && amount.currency != program.currency {
            violations.push(FieldViolation::new(
                format!("{field}.currency"),
                format!("must be the program currency {}", program.currency),
            ));
            continue;
        }
        match field {
            "campaign.cost_per_contact" => definition.cost_per_contact_minor = amount.minor,
            _ => definition.fixed_cost_minor = amount.minor,
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(CampaignError::InvalidArgument(violations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::tests::campaign;

    #[test]
    fn a_patch_replaces_only_what_it_sets() {
        let mut definition = campaign().definition;
        let before = definition.clone();
        let amounts = DefinitionPatch {
            name: Some("Win-back".into()),
            holdout_bps: Some(2_000),
            fixed_cost: Some(Amount {
                minor: 500,
                currency: "KRW".into(),
            }),
            ..Default::default()
        }
        .apply(&mut definition)
        .expect("applies");
        assert_eq!(definition.name, "Win-back");
        assert_eq!(definition.holdout_bps, 2_000);
        assert_eq!(definition.offer, before.offer);
        let program = campaign().program;
        apply_amounts(&mut definition, amounts, &program).expect("same currency");
        assert_eq!(definition.fixed_cost_minor, 500);
    }

    #[test]
    fn amounts_must_be_in_the_program_currency() {
        let mut definition = campaign().definition;
        let error = apply_amounts(
            &mut definition,
            vec![(
                "campaign.cost_per_contact",
                Amount {
                    minor: 10,
                    currency: "USD".into(),
                },
            )],
            &campaign().program,
        )
        .expect_err("foreign currency");
        assert!(
            matches!(error, CampaignError::InvalidArgument(ref v) if v[0].field == "campaign.cost_per_contact.currency")
        );
    }

    #[test]
    fn clearing_and_setting_the_trigger_at_once_is_refused() {
        let mut definition = campaign().definition;
        let patch = DefinitionPatch {
            trigger: Some(Trigger::TierUpgrade {
                to_tier_code: String::new(),
            }),
            clear_trigger: true,
            ..Default::default()
        };
        assert!(patch.apply(&mut definition).is_err());
    }
}
