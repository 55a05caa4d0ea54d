//! What people read: money in the currency's minor unit with grouped digits, and instants in
//! the program's time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tierline_proto::prost_types::Timestamp;

/// Digits after the decimal point of a currency (ISO 4217); 2 for those not listed.
fn exponent(currency: &str) -> u32 {
    match currency {
        "KRW" | "JPY" | "VND" | "CLP" | "ISK" | "PYG" | "UGX" | "XAF" | "XOF" | "IDR" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    }
}

/// `digits` with a comma every three from the right.
pub(super) fn grouped(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// An amount in minor units as people write it: `1,082,400 KRW`, `12,345.67 USD`.
pub(super) fn money(amount_minor: i64, currency: &str) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let magnitude = amount_minor.unsigned_abs();
    let scale = 10_u64.pow(exponent(currency));
    let whole = grouped(&(magnitude / scale).to_string());
    if scale == 1 {
        format!("{sign}{whole} {currency}")
    } else {
        let width = exponent(currency) as usize;
        format!("{sign}{whole}.{:0width$} {currency}", magnitude % scale)
    }
}

/// An enum value's protobuf name as a word: `EVALUATION_RUN_STATUS_SUCCEEDED` with the prefix
/// `EVALUATION_RUN_STATUS_` reads `succeeded`.
pub(super) fn word(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', " ")
}

/// An amount of a policy metric in its unit: `1,000,000 KRW net spend`, `10 purchases`.
pub(super) fn metric_amount(metric: i32, amount: i64, currency: &str) -> String {
    use tierline_proto::scoring::v1::MetricKind;
    match MetricKind::try_from(metric) {
        Ok(MetricKind::NetSpend) => format!("{} net spend", money(amount, currency)),
        Ok(MetricKind::Points) => format!("{} points", grouped(&amount.to_string())),
        Ok(MetricKind::PurchaseCount) => format!("{amount} purchases"),
        _ => amount.to_string(),
    }
}

fn instant(timestamp: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    tierline_proto::time::datetime(timestamp?)
}

/// An instant in the program's zone: `2026-11-26 14:30 KST`.
pub(super) fn local(timestamp: Option<&Timestamp>, zone: Tz) -> String {
    instant(timestamp).map_or_else(
        || "-".to_owned(),
        |at| {
            at.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_the_currencys_minor_unit_and_groups_its_digits() {
        assert_eq!(money(19_304_000, "KRW"), "19,304,000 KRW");
        assert_eq!(money(1_234_567, "USD"), "12,345.67 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(money(-1_000, "JPY"), "-1,000 JPY");
        assert_eq!(money(1_234_567, "KWD"), "1,234.567 KWD");
        assert_eq!(money(0, "KRW"), "0 KRW");
    }
}
