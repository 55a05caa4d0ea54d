//! Field rules shared by the customer, consent and activity inputs. Each check appends a
//! [`FieldViolation`] naming the field, so one bad request reports all its bad fields at once.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use tierline_runtime::status::FieldViolation;

/// Collects the violations of one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Records that `field` is invalid.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// `Ok` when nothing was recorded.
    pub fn into_result(self) -> Result<(), crate::CustomerError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::CustomerError::InvalidArgument(self.0))
        }
    }

    /// Whether anything was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded violations.
    pub fn into_inner(self) -> Vec<FieldViolation> {
        self.0
    }

    /// A required text field of `min..=max` characters.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let length = value.chars().count();
        if length < min {
            self.add(
                field,
                if min == 1 {
                    "is required".to_owned()
                } else {
                    format!("needs at least {min} characters")
                },
            );
        } else if length > max {
            self.add(field, format!("must be at most {max} characters"));
        } else if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
    }

    /// An identifier-like field: printable ASCII without spaces, `min..=max` long.
    pub fn token(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if value.len() < min {
            self.add(field, "is required");
        } else if value.len() > max {
            self.add(field, format!("must be at most {max} characters"));
        } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
            self.add(field, "must be printable ASCII without spaces");
        }
    }

    /// An instant that may lie in the past but not beyond `now + skew` in the future, nor before
    /// 1970.
    pub fn not_future(
        &mut self,
        field: &str,
        value: DateTime<Utc>,
        now: DateTime<Utc>,
        skew: chrono::Duration,
    ) {
        if value > now + skew {
            self.add(field, "must not be in the future");
        } else if value.timestamp() < 0 {
            self.add(field, "must not be before 1970");
        }
    }
}

/// Whether `value` looks like an e-mail address: one `@`, a non-empty local part, and a domain of
/// dot-separated labels with a top-level domain of two or more letters. Deliberately not the full
/// RFC 5322 grammar, which accepts addresses no mail system delivers to.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok && value.len() <= 254
}

/// A region whose national phone formats are accepted (`010-1234-5678` in KR), by
/// libphonenumber's rules (the `phonenumber` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneRegion(phonenumber::country::Id);

impl PhoneRegion {
    /// The region of an ISO 3166 code such as `KR`; `None` for a code libphonenumber does not
    /// know.
    pub fn parse(code: &str) -> Option<Self> {
        code.trim().to_ascii_uppercase().parse().ok().map(Self)
    }
}

/// A phone number as people type it, in E.164. An E.164 number (`+` then 8 to 15 digits) is kept
/// as given, as the contract always accepted; any other form (`+82 10-1234-5678`,
/// `(02) 555-0123`, and national forms of `region` such as `010-1234-5678`) is parsed by
/// libphonenumber's rules and kept when it is a valid number. `None` otherwise.
pub fn phone_in_e164(value: &str, region: Option<PhoneRegion>) -> Option<String> {
    if is_e164(value) {
        return Some(value.to_owned());
    }
    let number = phonenumber::parse(region.map(|region| region.0), value).ok()?;
    phonenumber::is_valid(&number)
        .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
        .filter(|e164| is_e164(e164))
}

/// Whether `value` is an E.164 phone number: `+` then 8 to 15 digits, the first not 0.
pub fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Whether `key` is a valid attribute key: `[a-z0-9_.-]{1,64}`.
pub fn is_attribute_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// A birth date from its parts: a real calendar date, year 1900 or later, not after `today`.
pub fn birth_date(
    year: i32,
    month: i32,
    day: i32,
    today: NaiveDate,
) -> Result<NaiveDate, &'static str> {
    let month = u32::try_from(month).map_err(|_| "month must be 1 to 12")?;
    let day = u32::try_from(day).map_err(|_| "day must be 1 to 31")?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or("is not a calendar date")?;
    if date.year() < 1900 {
        return Err("must be in 1900 or later");
    }
    if date > today {
        return Err("must not be in the future");
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_as_people_type_them_are_stored_in_e164() {
        let korea = PhoneRegion::parse("kr");
        assert!(korea.is_some());
        // National forms of the configured region.
        for typed in [
            "010-1234-5678",
            "01012345678",
            "010 1234 5678",
            "(010) 1234-5678",
        ] {
            assert_eq!(
                phone_in_e164(typed, korea).as_deref(),
                Some("+821012345678"),
                "{typed}"
            );
        }
        assert_eq!(
            phone_in_e164("02-312-3456", korea).as_deref(),
            Some("+8223123456")
        );
        // International forms, with or without a region.
        for region in [None, korea] {
            assert_eq!(
                phone_in_e164("+82 10-1234-5678", region).as_deref(),
                Some("+821012345678")
            );
            assert_eq!(
                phone_in_e164("+1 (415) 555-2671", region).as_deref(),
                Some("+14155552671")
            );
            // E.164 is kept as given, as the contract always accepted.
            assert_eq!(
                phone_in_e164("+829999999999", region).as_deref(),
                Some("+829999999999")
            );
        }
        // Without a region a national form has no country; invalid numbers never pass.
        assert_eq!(phone_in_e164("010-1234-5678", None), None);
        for bad in ["12345", "010-12", "phone", "+82 10-1234", "+0123456789"] {
            assert_eq!(phone_in_e164(bad, korea), None, "{bad}");
        }
        assert_eq!(PhoneRegion::parse("Mars"), None);
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@example.com", "x_y@sub.domain.org"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            "a b@c.com",
            "a@-b.com",
            "a..b@c.com",
            "a@b.c0m",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(is_e164("+821012345678"));
        assert!(is_e164("+14155552671"));
        for bad in [
            "821012345678",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1 415 555 2671",
            "+1-415",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn attribute_keys() {
        assert!(is_attribute_key("favourite_store"));
        assert!(is_attribute_key("app.version-2"));
        assert!(!is_attribute_key("Upper"));
        assert!(!is_attribute_key(""));
        assert!(!is_attribute_key(&"k".repeat(65)));
    }

    #[test]
    fn birth_dates() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        assert!(birth_date(1990, 2, 28, today).is_ok());
        assert_eq!(
            birth_date(1990, 2, 30, today),
            Err("is not a calendar date")
        );
        assert_eq!(
            birth_date(1899, 12, 31, today),
            Err("must be in 1900 or later")
        );
        assert_eq!(
            birth_date(2027, 1, 1, today),
            Err("must not be in the future")
        );
        assert_eq!(birth_date(1990, -1, 1, today), Err("month must be 1 to 12"));
    }

    #[test]
    fn text_lengths_and_controls() {
        let mut violations = Violations::default();
        violations.text("name", "", 1, 10);
        violations.text("name", "elevenchars", 1, 10);
        violations.text("name", "tab\there", 1, 10);
        violations.text("name", "ok", 1, 10);
        assert_eq!(violations.into_inner().len(), 3);
    }
}
