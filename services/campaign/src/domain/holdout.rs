//! The holdout: which arm a customer is in, chosen deterministically from the campaign id and the
//! customer id, so the split is reproducible and anyone can audit it: the first 8 bytes of
//! SHA-256(campaign id bytes ‖ customer id bytes), big-endian, modulo 10,000, below the holdout
//! in basis points means control.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A member's arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Receives the offer.
    Treatment,
    /// Held out, measured all the same.
    Control,
}

impl Arm {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Treatment => "treatment",
            Self::Control => "control",
        }
    }

    /// Parses the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "treatment" => Some(Self::Treatment),
            "control" => Some(Self::Control),
            _ => None,
        }
    }
}

/// The first 8 bytes of SHA-256(campaign id ‖ customer id), big-endian: a pseudo-random number
/// that only these two ids decide.
pub fn draw(campaign_id: Uuid, customer_id: Uuid) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(campaign_id.as_bytes());
    hasher.update(customer_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The customer's bucket, 0 to 9,999, in a campaign.
pub fn bucket(campaign_id: Uuid, customer_id: Uuid) -> u32 {
    u32::try_from(draw(campaign_id, customer_id) % 10_000).unwrap_or(0)
}

/// The customer's arm in a campaign with `holdout_bps` basis points held out.
pub fn arm(campaign_id: Uuid, customer_id: Uuid, holdout_bps: u32) -> Arm {
    if bucket(campaign_id, customer_id) < holdout_bps {
        Arm::Control
    } else {
        Arm::Treatment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_inputs_give_the_same_arm_and_the_share_is_the_holdout() {
        let campaign = Uuid::from_u128(0x1234);
        let customers: Vec<Uuid> = (0..20_000_u128)
            .map(|i| Uuid::from_u128(i * 7_919 + 1))
            .collect();
        let control = customers
            .iter()
            .filter(|customer| arm(campaign, **customer, 1_000) == Arm::Control)
            .count();
        // 10 % of 20,000 is 2,000; a binomial standard deviation is about 42.
        assert!((1_850..=2_150).contains(&control), "{control}");
        assert!(
            customers
                .iter()
                .all(|c| arm(campaign, *c, 1_000) == arm(campaign, *c, 1_000))
        );
        assert!(
            customers
                .iter()
                .all(|c| arm(campaign, *c, 0) == Arm::Treatment)
        );
        // Another campaign splits the same customers differently.
        let other = Uuid::from_u128(0x5678);
        assert!(
            customers
                .iter()
                .any(|c| arm(campaign, *c, 5_000) != arm(other, *c, 5_000))
        );
    }

    #[test]
    fn the_bucket_is_documented_arithmetic() {
        // SHA-256 of 32 zero bytes begins 66 68 7a ad f8 62 bd 77: 0x66687aadf862bd77 % 10,000.
        assert_eq!(
            bucket(Uuid::nil(), Uuid::nil()),
            (0x6668_7aad_f862_bd77_u64 % 10_000) as u32
        );
    }
}
