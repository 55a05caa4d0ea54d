//! Channel consents: the current state per channel and the history of every change.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::validate::Violations;
use crate::CustomerError;

/// A contact channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConsentChannel {
    /// E-mail.
    Email,
    /// SMS.
    Sms,
    /// Push notifications.
    Push,
}

impl ConsentChannel {
    /// Every channel, in a fixed order.
    pub const ALL: [Self; 3] = [Self::Email, Self::Sms, Self::Push];

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
        match value {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            "push" => Some(Self::Push),
            _ => None,
        }
    }
}

/// The current consent for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The customer.
    pub customer_id: Uuid,
    /// The channel.
    pub channel: ConsentChannel,
    /// Whether contact is allowed.
    pub granted: bool,
    /// When last changed; `None` when never recorded.
    pub changed_at: Option<DateTime<Utc>>,
    /// Where the last change came from.
    pub source: String,
}

impl Consent {
    /// The state of a channel with no recorded consent: not granted.
    pub fn never_given(customer_id: Uuid, channel: ConsentChannel) -> Self {
        Self {
            customer_id,
            channel,
            granted: false,
            changed_at: None,
            source: String::new(),
        }
    }
}

/// One change of consent, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    /// The customer.
    pub customer_id: Uuid,
    /// The channel.
    pub channel: ConsentChannel,
    /// Grant or revoke.
    pub granted: bool,
    /// When the customer gave or withdrew it.
    pub changed_at: DateTime<Utc>,
    /// Where it came from.
    pub source: String,
    /// When the service recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// Which page of a history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPage {
    /// Only entries older than this position.
    pub before: Option<i64>,
    /// Most entries.
    pub limit: u32,
}

/// A stored change with its position in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedConsentChange {
    /// Position, increasing with time of recording.
    pub position: i64,
    /// The change.
    pub change: ConsentChange,
}

/// The consents of one customer, as read in bulk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerConsents {
    /// The customer.
    pub customer_id: Uuid,
    /// Whether the customer is erased.
    pub erased: bool,
    /// One per channel, in [`ConsentChannel::ALL`] order.
    pub consents: Vec<Consent>,
}

/// A consent change as a caller sent it.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    /// The customer.
    pub customer_id: Uuid,
    /// The channel; `None` when the caller left it unspecified.
    pub channel: Option<ConsentChannel>,
    /// Grant or revoke.
    pub granted: bool,
    /// Source of the change.
    pub source: String,
    /// When it happened; defaults to now.
    pub changed_at: Option<DateTime<Utc>>,
}

impl ConsentInput {
    /// Validates the change.
    pub fn validate(
        self,
        now: DateTime<Utc>,
        skew: chrono::Duration,
    ) -> Result<ConsentChange, CustomerError> {
        let mut violations = Violations::default();
        if self.channel.is_none() {
            violations.add("channel", "must be EMAIL, SMS or PUSH");
        }
        let source = self.source.trim().to_owned();
        violations.text("source", &source, 1, 64);
        let changed_at = self.changed_at.unwrap_or(now);
        violations.not_future("changed_at", changed_at, now, skew);
        violations.into_result()?;
        Ok(ConsentChange {
            customer_id: self.customer_id,
            channel: self.channel.unwrap_or(ConsentChannel::Email),
            granted: self.granted,
            changed_at,
            source,
            recorded_at: now,
        })
    }
}
