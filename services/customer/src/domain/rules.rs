//! How the customer service behaves, from configuration: the rules every write is checked by.

/// How the service behaves, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// How far in the future an occurred_at may lie (clients' clocks drift).
    pub clock_skew: chrono::Duration,
    /// The region whose national phone formats are accepted; none: international forms only.
    pub phone_region: Option<super::validate::PhoneRegion>,
}

impl Rules {
    /// Rules with `clock_skew` and no phone region.
    pub fn new(clock_skew: chrono::Duration) -> Self {
        Self {
            clock_skew,
            phone_region: None,
        }
    }
}
