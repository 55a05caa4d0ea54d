//! Customer summaries as the models consume them: per customer the number of
//! repeat purchases `x` (frequency), the time of the last purchase since the
//! first `t_x` (recency) and the time since the first purchase `T` (age),
//! all times in one model time unit ([`TimeUnit`]).
//!
//! Data come in as parallel slices (struct-of-arrays), so a caller holding
//! columns from a database does not have to copy them into structs, and so
//! the work can later be split into sub-slices across threads.
//!
//! [`RfmSummary::compress`] collapses customers with identical `(x, t_x, T)`
//! into one record with a count. With times measured in whole days, a
//! population of a million customers typically collapses several-fold, and
//! the likelihood cost falls in proportion.

use crate::error::ModelError;

/// The time unit in which recency, age and the BG/NBD scale parameter `α`
/// are expressed. The models are unit-agnostic; this only states the
/// caller's choice and converts months for [`crate::ClvModel::predicted_value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// One unit = 1 day.
    Days,
    /// One unit = 7 days.
    Weeks,
}

impl TimeUnit {
    /// Days in one unit (1 or 7).
    pub fn days_per_unit(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    /// Units in one 30-day month (30 or 30/7 ≈ 4.286). Note: lifetimes uses
    /// 4.345 weeks per month for `freq="W"`; see
    /// [`crate::ClvModel::predicted_value`].
    pub fn units_per_month(self) -> f64 {
        30.0 / self.days_per_unit()
    }
}

/// Checks that the slices line up and every record is a possible customer
/// history: finite times, `0 <= t_x <= T`. Recency of customers with `x = 0`
/// is not used by either model and is not checked beyond being finite.
pub(crate) fn validate_rfm(
    frequency: &[u32],
    recency: &[f64],
    age: &[f64],
    weights: Option<&[u64]>,
) -> Result<(), ModelError> {
    let n = frequency.len();
    let check_len = |field: &'static str, found: usize| {
        if found == n {
            Ok(())
        } else {
            Err(ModelError::LengthMismatch {
                field,
                expected: n,
                found,
            })
        }
    };
    check_len("recency", recency.len())?;
    check_len("age", age.len())?;
    if let Some(w) = weights {
        check_len("weights", w.len())?;
    }
    for i in 0..n {
        let (x, tx, t) = (frequency[i], recency[i], age[i]);
        if !t.is_finite() || t < 0.0 {
            return Err(ModelError::InvalidCustomer {
                index: i,
                reason: "age T must be finite and >= 0",
            });
        }
        if !tx.is_finite() {
            return Err(ModelError::InvalidCustomer {
                index: i,
                reason: "recency t_x must be finite",
            });
        }
        if x > 0 && !(0.0..=t).contains(&tx) {
            return Err(ModelError::InvalidCustomer {
                index: i,
                reason: "recency t_x must satisfy 0 <= t_x <= T",
            });
        }
    }
    Ok(())
}

/// A population summary in compressed form: one record per distinct
/// `(x, t_x, T)` with the number of customers that share it.
///
/// Records are sorted by `(x, t_x, T)`. For `x = 0` the recency is stored as
/// 0 (neither model uses it, and lifetimes also reports 0), so all one-time
/// buyers of the same age share a record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RfmSummary {
    /// Repeat purchases `x` per record.
    pub frequency: Vec<u32>,
    /// Recency `t_x` per record.
    pub recency: Vec<f64>,
    /// Age `T` per record.
    pub age: Vec<f64>,
    /// Number of customers with this exact history.
    pub weight: Vec<u64>,
}

impl RfmSummary {
    /// Groups identical `(x, t_x, T)` triples. Times are compared exactly
    /// (bit for bit after normalising `-0.0`), so the result reproduces the
    /// uncompressed likelihood exactly; round times to the unit's resolution
    /// (e.g. whole days) beforehand to get good compression.
    pub fn compress(frequency: &[u32], recency: &[f64], age: &[f64]) -> Result<Self, ModelError> {
        validate_rfm(frequency, recency, age, None)?;
        // Sorting packed keys is simpler than hashing and, for non-negative
        // finite f64, bit order equals numeric order.
        let mut keys: Vec<(u32, u64, u64)> = frequency
            .iter()
            .zip(recency)
            .zip(age)
            .map(|((&x, &tx), &t)| {
                let tx = if x == 0 { 0.0 } else { tx + 0.0 };
                (x, tx.to_bits(), (t + 0.0).to_bits())
            })
            .collect();
        keys.sort_unstable();
        let mut out = RfmSummary::default();
        let mut i = 0;
        while i < keys.len() {
            let k = keys[i];
            let mut j = i + 1;
            while j < keys.len() && keys[j] == k {
                j += 1;
            }
            out.frequency.push(k.0);
            out.recency.push(f64::from_bits(k.1));
            out.age.push(f64::from_bits(k.2));
            out.weight.push((j - i) as u64);
            i = j;
        }
        Ok(out)
    }

    /// Number of distinct records.
    pub fn len(&self) -> usize {
        self.frequency.len()
    }

    /// True if there are no records.
    pub fn is_empty(&self) -> bool {
        self.frequency.is_empty()
    }

    /// Number of customers represented (sum of weights).
    pub fn n_customers(&self) -> u64 {
        self.weight.iter().sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn compress_groups_identical_triples() {
        let x = [0, 2, 0, 2, 1];
        let tx = [5.0, 3.0, 0.0, 3.0, 1.0]; // x = 0 recency ignored
        let t = [10.0, 10.0, 10.0, 10.0, 4.0];
        let s = RfmSummary::compress(&x, &tx, &t).unwrap();
        assert_eq!(s.frequency, vec![0, 1, 2]);
        assert_eq!(s.recency, vec![0.0, 1.0, 3.0]);
        assert_eq!(s.age, vec![10.0, 4.0, 10.0]);
        assert_eq!(s.weight, vec![2, 1, 2]);
        assert_eq!(s.n_customers(), 5);
    }

    #[test]
    fn rejects_recency_beyond_age() {
        let err = RfmSummary::compress(&[1], &[5.0], &[4.0]).unwrap_err();
        assert!(matches!(err, ModelError::InvalidCustomer { index: 0, .. }));
        let err = RfmSummary::compress(&[1, 2], &[1.0], &[4.0, 5.0]).unwrap_err();
        assert!(matches!(
            err,
            ModelError::LengthMismatch {
                field: "recency",
                ..
            }
        ));
    }
}
