//! Customer profiles: the record, the inputs that create and change it, and their rules.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::rules::Rules;
use super::validate::{
    PhoneRegion, Violations, birth_date, is_attribute_key, is_email, phone_in_e164,
};
use crate::CustomerError;

/// Most attributes one customer may carry.
pub const MAX_ATTRIBUTES: usize = 50;

/// Whether a record still holds personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerStatus {
    /// A normal customer.
    Active,
    /// Erased on request: personal fields removed, activity kept.
    Erased,
}

impl CustomerStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Erased => "erased",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "erased" => Some(Self::Erased),
            _ => None,
        }
    }
}

/// The rule of every change to a customer's record or activity: the customer `id` must exist
/// (`status` is `None` when it does not) and be active, since an erased record takes nothing new.
pub fn ensure_active(id: Uuid, status: Option<CustomerStatus>) -> Result<(), CustomerError> {
    match status {
        None => Err(CustomerError::customer_not_found(id)),
        Some(CustomerStatus::Erased) => Err(CustomerError::CustomerErased { id: id.to_string() }),
        Some(CustomerStatus::Active) => Ok(()),
    }
}

/// A customer profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Server-assigned id.
    pub id: Uuid,
    /// The client's own id, unique when set.
    pub external_id: Option<String>,
    /// Display name (empty once erased).
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// When the customer joined.
    pub joined_at: DateTime<Utc>,
    /// Free-form attributes.
    pub attributes: BTreeMap<String, String>,
    /// Active or erased.
    pub status: CustomerStatus,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
    /// When erased.
    pub erased_at: Option<DateTime<Utc>>,
}

/// A calendar date as a caller sent it, not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateParts {
    /// Year.
    pub year: i32,
    /// Month, 1-12.
    pub month: i32,
    /// Day, 1-31.
    pub day: i32,
}

/// The profile fields as a caller sent them; empty strings mean "not given".
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    /// Optional client id.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Phone number.
    pub phone: String,
    /// Date of birth.
    pub birth_date: Option<DateParts>,
    /// Join time.
    pub joined_at: Option<DateTime<Utc>>,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
}

/// A validated new customer, ready to store.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    /// The id to assign (time-ordered, so lists in creation order are index scans).
    pub id: Uuid,
    /// Optional client id.
    pub external_id: Option<String>,
    /// Display name.
    pub name: String,
    /// E-mail address, lower-cased.
    pub email: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Join time.
    pub joined_at: DateTime<Utc>,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A field of the profile that an update may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    /// `external_id`.
    ExternalId,
    /// `name`.
    Name,
    /// `email`.
    Email,
    /// `phone`.
    Phone,
    /// `birth_date`.
    BirthDate,
    /// `joined_at`.
    JoinedAt,
    /// `attributes`.
    Attributes,
}

impl ProfileField {
    /// Parses an update-mask path.
    pub fn parse(path: &str) -> Option<Self> {
        Some(match path {
            "external_id" => Self::ExternalId,
            "name" => Self::Name,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "birth_date" => Self::BirthDate,
            "joined_at" => Self::JoinedAt,
            "attributes" => Self::Attributes,
            _ => return None,
        })
    }
}

/// A validated partial update: `Some` fields change, `None` fields stay. For clearable fields the
/// inner `None` clears.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    /// New client id.
    pub external_id: Option<Option<String>>,
    /// New name.
    pub name: Option<String>,
    /// New e-mail.
    pub email: Option<Option<String>>,
    /// New phone.
    pub phone: Option<Option<String>>,
    /// New date of birth.
    pub birth_date: Option<Option<NaiveDate>>,
    /// New join time.
    pub joined_at: Option<DateTime<Utc>>,
    /// New attributes (the whole map).
    pub attributes: Option<BTreeMap<String, String>>,
}

/// Filters of a customer listing, all combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    /// Only this status.
    pub status: Option<CustomerStatus>,
    /// joined_at at or after.
    pub joined_from: Option<DateTime<Utc>>,
    /// joined_at before.
    pub joined_until: Option<DateTime<Utc>>,
    /// Every one of these attribute values.
    pub attributes: BTreeMap<String, String>,
    /// Born in this month.
    pub birth_month: Option<u32>,
    /// Born on this day of the month.
    pub birth_day: Option<u32>,
    /// This e-mail address (as typed; the service compares it as stored).
    pub email: Option<String>,
    /// This phone number, in any accepted form (the service turns it into E.164).
    pub phone: Option<String>,
    /// This external id.
    pub external_id: Option<String>,
}

fn optional(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn check_external_id(violations: &mut Violations, field: &str, value: &str) {
    if !value.is_empty() {
        violations.token(field, value, 1, 128);
    }
}

fn check_email(violations: &mut Violations, field: &str, value: &str) -> Option<String> {
    let email = optional(value)?.to_lowercase();
    if !is_email(&email) {
        violations.add(field, "is not a valid e-mail address");
    }
    Some(email)
}

fn check_phone(
    violations: &mut Violations,
    field: &str,
    value: &str,
    region: Option<PhoneRegion>,
) -> Option<String> {
    let typed = optional(value)?;
    match phone_in_e164(&typed, region) {
        Some(e164) => Some(e164),
        None => {
            let national = region.map_or("", |_| " or the configured region's national form");
            violations.add(
                field,
                format!(
                    "is not a valid phone number: E.164 (+821012345678), an international form \
                     (+82 10-1234-5678){national}"
                ),
            );
            Some(typed)
        }
    }
}

fn check_birth_date(
    violations: &mut Violations,
    field: &str,
    value: Option<DateParts>,
    now: DateTime<Utc>,
) -> Option<NaiveDate> {
    let parts = value?;
    match birth_date(parts.year, parts.month, parts.day, now.date_naive()) {
        Ok(date) => Some(date),
        Err(reason) => {
            violations.add(field, reason);
            None
        }
    }
}

fn check_attributes(
    violations: &mut Violations,
    field: &str,
    attributes: &BTreeMap<String, String>,
) {
    if attributes.len() > MAX_ATTRIBUTES {
        violations.add(field, format!("at most {MAX_ATTRIBUTES} attributes"));
    }
    for (key, value) in attributes {
        if !is_attribute_key(key) {
            violations.add(
                format!("{field}[{key}]"),
                "key must match [a-z0-9_.-]{1,64}",
            );
        }
        if value.chars().count() > 256 {
            violations.add(
                format!("{field}[{key}]"),
                "value must be at most 256 characters",
            );
        }
    }
}

impl ProfileInput {
    /// Validates a creation request; every bad field is reported.
    pub fn into_new_customer(
        self,
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> Result<NewCustomer, CustomerError> {
        let skew = rules.clock_skew;
        let mut violations = Violations::default();
        check_external_id(&mut violations, "external_id", &self.external_id);
        let name = self.name.trim().to_owned();
        violations.text("name", &name, 1, 200);
        let email = check_email(&mut violations, "email", &self.email);
        let phone = check_phone(&mut violations, "phone", &self.phone, rules.phone_region);
        let birth_date = check_birth_date(&mut violations, "birth_date", self.birth_date, now);
        let joined_at = self.joined_at.unwrap_or(now);
        violations.not_future("joined_at", joined_at, now, skew);
        check_attributes(&mut violations, "attributes", &self.attributes);
        violations.into_result()?;
        Ok(NewCustomer {
            id: Uuid::now_v7(),
            external_id: optional(&self.external_id),
            name,
            email,
            phone,
            birth_date,
            joined_at,
            attributes: self.attributes,
            created_at: now,
        })
    }

    /// Validates an update of the `fields` named in the mask, taking their values from `self`.
    /// Violations name the fields as the request spells them, inside `customer`.
    pub fn into_patch(
        self,
        fields: &[ProfileField],
        now: DateTime<Utc>,
        rules: &Rules,
    ) -> Result<CustomerPatch, CustomerError> {
        let skew = rules.clock_skew;
        let mut violations = Violations::default();
        let mut patch = CustomerPatch::default();
        for field in fields {
            match field {
                ProfileField::ExternalId => {
                    check_external_id(&mut violations, "customer.external_id", &self.external_id);
                    patch.external_id = Some(optional(&self.external_id));
                }
                ProfileField::Name => {
                    let name = self.name.trim().to_owned();
                    violations.text("customer.name", &name, 1, 200);
                    patch.name = Some(name);
                }
                ProfileField::Email => {
                    patch.email = Some(check_email(&mut violations, "customer.email", &self.email))
                }
                ProfileField::Phone => {
                    patch.phone = Some(check_phone(
                        &mut violations,
                        "customer.phone",
                        &self.phone,
                        rules.phone_region,
                    ))
                }
                ProfileField::BirthDate => {
                    patch.birth_date = Some(check_birth_date(
                        &mut violations,
                        "customer.birth_date",
                        self.birth_date,
                        now,
                    ))
                }
                ProfileField::JoinedAt => match self.joined_at {
                    Some(joined_at) => {
                        violations.not_future("customer.joined_at", joined_at, now, skew);
                        patch.joined_at = Some(joined_at);
                    }
                    None => violations.add("customer.joined_at", "cannot be cleared"),
                },
                ProfileField::Attributes => {
                    check_attributes(&mut violations, "customer.attributes", &self.attributes);
                    patch.attributes = Some(self.attributes.clone());
                }
            }
        }
        violations.into_result()?;
        Ok(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn fields(error: CustomerError) -> Vec<String> {
        match error {
            CustomerError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_profile_is_normalised() {
        let input = ProfileInput {
            name: "  Ji-woo Kim ".into(),
            email: "Ji-Woo@Example.COM".into(),
            phone: "+821012345678".into(),
            birth_date: Some(DateParts {
                year: 1991,
                month: 4,
                day: 2,
            }),
            ..ProfileInput::default()
        };
        let customer = input
            .into_new_customer(now(), &Rules::new(chrono::Duration::minutes(5)))
            .expect("valid");
        assert_eq!(customer.name, "Ji-woo Kim");
        assert_eq!(customer.email.as_deref(), Some("ji-woo@example.com"));
        assert_eq!(customer.joined_at, now());
        assert_eq!(customer.external_id, None);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut attributes = BTreeMap::new();
        attributes.insert("Bad Key".to_owned(), "x".to_owned());
        let input = ProfileInput {
            external_id: "has space".into(),
            name: String::new(),
            email: "nope".into(),
            phone: "010-1234".into(),
            birth_date: Some(DateParts {
                year: 2000,
                month: 2,
                day: 31,
            }),
            joined_at: Some(now() + chrono::Duration::days(1)),
            attributes,
        };
        let error = input
            .into_new_customer(now(), &Rules::new(chrono::Duration::minutes(5)))
            .expect_err("invalid");
        assert_eq!(
            fields(error),
            [
                "external_id",
                "name",
                "email",
                "phone",
                "birth_date",
                "joined_at",
                "attributes[Bad Key]"
            ]
        );
    }

    #[test]
    fn a_patch_touches_only_masked_fields_and_can_clear() {
        let input = ProfileInput {
            email: String::new(),
            name: "New".into(),
            ..ProfileInput::default()
        };
        let patch = input
            .into_patch(
                &[ProfileField::Email, ProfileField::Name],
                now(),
                &Rules::new(chrono::Duration::minutes(5)),
            )
            .expect("valid");
        assert_eq!(patch.email, Some(None));
        assert_eq!(patch.name.as_deref(), Some("New"));
        assert!(patch.phone.is_none());
    }

    #[test]
    fn a_patch_cannot_clear_the_name() {
        let error = ProfileInput::default()
            .into_patch(
                &[ProfileField::Name],
                now(),
                &Rules::new(chrono::Duration::minutes(5)),
            )
            .expect_err("invalid");
        assert_eq!(fields(error), ["customer.name"]);
    }
}
