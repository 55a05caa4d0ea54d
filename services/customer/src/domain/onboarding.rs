//! Bulk onboarding of an existing membership (`ImportCustomers`): customers with their consents,
//! idempotent by external id, a batch at a time.
//!
//! Each item is validated as `CreateCustomer` and `SetConsent` validate it; a bad item is
//! rejected with the field at fault (named as in the import item, `customer.phone`) and the rest
//! of the batch goes in. The store then, in one transaction per batch, creates the customers it
//! does not know (with their CREATED feed events), updates those whose stored profile differs
//! from the imported one, and records the consents whose current state differs.

use chrono::{DateTime, Utc};
use tierline_runtime::status::FieldViolation;
use uuid::Uuid;

use super::{
    consent::{ConsentChange, ConsentInput},
    customer::{Customer, NewCustomer, ProfileInput},
    rules::Rules,
};
use crate::CustomerError;

/// Most customers in one batch.
pub const MAX_CUSTOMERS_PER_BATCH: usize = 10_000;

/// One customer as the caller sent it.
#[derive(Debug, Clone)]
pub struct OnboardingInput {
    /// The profile; `external_id` is required.
    pub profile: ProfileInput,
    /// Consents (their `customer_id` is ignored: the store knows whose they are).
    pub consents: Vec<ConsentInput>,
}

/// A validated customer to onboard.
#[derive(Debug, Clone)]
pub struct Onboarding {
    /// The customer as it would be created (its id is used only when it is new).
    pub customer: NewCustomer,
    /// The external id, which makes the import idempotent.
    pub external_id: String,
    /// Whether the join time was given (otherwise a stored customer's is kept).
    pub joined_at_given: bool,
    /// Consent changes to record where the current state differs (`customer_id` set by the
    /// store).
    pub consents: Vec<ConsentChange>,
}

impl Onboarding {
    /// Whether `stored` already has this profile (the join time only when one was given).
    pub fn profile_matches(&self, stored: &Customer) -> bool {
        let new = &self.customer;
        stored.name == new.name
            && stored.email == new.email
            && stored.phone == new.phone
            && stored.birth_date == new.birth_date
            && stored.attributes == new.attributes
            && (!self.joined_at_given || stored.joined_at == new.joined_at)
    }
}

/// What happened to one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnboardingOutcome {
    /// A new customer.
    Created {
        /// Its id.
        customer_id: Uuid,
    },
    /// Stored before with the same profile and consents.
    Unchanged {
        /// Its id.
        customer_id: Uuid,
    },
    /// Stored before; its profile or consents changed to the imported ones.
    Updated {
        /// Its id.
        customer_id: Uuid,
    },
    /// Not imported.
    Rejected {
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
}

impl OnboardingOutcome {
    fn rejected(violations: &[FieldViolation]) -> Self {
        Self::Rejected {
            field: violations
                .first()
                .map(|v| v.field.clone())
                .unwrap_or_default(),
            reason: violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// Prefixes each violation's field with `prefix`.
fn within(prefix: &str, violations: Vec<FieldViolation>) -> Vec<FieldViolation> {
    violations
        .into_iter()
        .map(|v| FieldViolation::new(format!("{prefix}{}", v.field), v.description))
        .collect()
}

impl OnboardingInput {
    /// Validates one item; the violations name fields as the import item does.
    pub fn validate(
        self,
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> Result<Onboarding, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let external_id = self.profile.external_id.clone();
        if external_id.is_empty() {
            violations.push(FieldViolation::new(
                "customer.external_id",
                "is required: it makes the import idempotent",
            ));
        }
        let joined_at_given = self.profile.joined_at.is_some();
        let customer = match self.profile.into_new_customer(now, rules) {
            Ok(customer) => Some(customer),
            Err(CustomerError::InvalidArgument(found)) => {
                violations.extend(within("customer.", found));
                None
            }
            Err(other) => {
                violations.push(FieldViolation::new("customer", other.to_string()));
                None
            }
        };
        let mut consents: Vec<ConsentChange> = Vec::with_capacity(self.consents.len());
        for (index, consent) in self.consents.into_iter().enumerate() {
            match consent.validate(now, rules.clock_skew) {
                Ok(change) if consents.iter().any(|c| c.channel == change.channel) => {
                    violations.push(FieldViolation::new(
                        format!("consents[{index}].channel"),
                        "at most one consent per channel",
                    ));
                }
                Ok(change) => consents.push(change),
                Err(CustomerError::InvalidArgument(found)) => {
                    violations.extend(within(&format!("consents[{index}]."), found));
                }
                Err(other) => violations.push(FieldViolation::new(
                    format!("consents[{index}]"),
                    other.to_string(),
                )),
            }
        }
        match customer {
            Some(customer) if violations.is_empty() => Ok(Onboarding {
                customer,
                external_id,
                joined_at_given,
                consents,
            }),
            _ => Err(violations),
        }
    }
}

/// A batch as validated: the items to write with their positions, and each position's outcome
/// where validation already decided it.
pub type ValidatedBatch = (Vec<(usize, Onboarding)>, Vec<Option<OnboardingOutcome>>);

/// Validates a batch: the valid items with their positions, and an outcome already decided
/// (a rejection) for each other position. An external id repeated in the batch is rejected
/// after its first occurrence.
pub fn validate_batch(
    items: Vec<OnboardingInput>,
    now: DateTime<Utc>,
    rules: &Rules,
) -> Result<ValidatedBatch, CustomerError> {
    if items.is_empty() || items.len() > MAX_CUSTOMERS_PER_BATCH {
        return Err(CustomerError::invalid(
            "items",
            format!("a batch holds 1 to {MAX_CUSTOMERS_PER_BATCH} customers"),
        ));
    }
    let mut outcomes: Vec<Option<OnboardingOutcome>> = vec![None; items.len()];
    let mut valid: Vec<(usize, Onboarding)> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.into_iter().enumerate() {
        match item.validate(now, rules) {
            Ok(onboarding) if !seen.insert(onboarding.external_id.clone()) => {
                outcomes[index] = Some(OnboardingOutcome::rejected(&[FieldViolation::new(
                    "customer.external_id",
                    "appears earlier in the same batch",
                )]));
            }
            Ok(onboarding) => valid.push((index, onboarding)),
            Err(violations) => outcomes[index] = Some(OnboardingOutcome::rejected(&violations)),
        }
    }
    Ok((valid, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::ConsentChannel;

    fn item(external_id: &str, phone: &str, consents: Vec<ConsentInput>) -> OnboardingInput {
        OnboardingInput {
            profile: ProfileInput {
                external_id: external_id.into(),
                name: "김민지".into(),
                phone: phone.into(),
                ..ProfileInput::default()
            },
            consents,
        }
    }

    fn consent(channel: Option<ConsentChannel>, source: &str) -> ConsentInput {
        ConsentInput {
            customer_id: Uuid::nil(),
            channel,
            granted: true,
            source: source.into(),
            changed_at: None,
        }
    }

    #[test]
    fn bad_items_are_rejected_naming_the_field_as_the_import_item_does() {
        let rules = Rules::new(chrono::Duration::minutes(5));
        let (valid, outcomes) = validate_batch(
            vec![
                item(
                    "M-1",
                    "+821012345678",
                    vec![consent(Some(ConsentChannel::Email), "crm")],
                ),
                item("", "+821012345678", vec![]),
                item("M-2", "12", vec![]),
                item("M-3", "", vec![consent(None, "crm")]),
                item(
                    "M-4",
                    "",
                    vec![
                        consent(Some(ConsentChannel::Sms), "crm"),
                        consent(Some(ConsentChannel::Sms), "crm"),
                    ],
                ),
                item("M-1", "+821012345678", vec![]),
            ],
            Utc::now(),
            &rules,
        )
        .expect("a batch");
        assert_eq!(valid.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0]);
        assert_eq!(valid[0].1.consents.len(), 1);
        let field = |index: usize| match &outcomes[index] {
            Some(OnboardingOutcome::Rejected { field, .. }) => field.clone(),
            other => panic!("item {index} rejected: {other:?}"),
        };
        assert_eq!(field(1), "customer.external_id");
        assert_eq!(field(2), "customer.phone");
        assert_eq!(field(3), "consents[0].channel");
        assert_eq!(field(4), "consents[1].channel");
        assert_eq!(field(5), "customer.external_id", "repeated in the batch");
        assert!(validate_batch(vec![], Utc::now(), &rules).is_err());
    }
}
