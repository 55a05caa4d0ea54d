//! Customers, consents and recorded activities for a person: short cards instead of protobuf
//! field paths. The customer service keeps no time zone (a customer may belong to programs of
//! several), so its instants read in UTC. `--json` keeps the protobuf JSON.

use tierline_proto::customer::v1 as pb;

use super::format::{local, money, word};

/// A customer's card.
pub(super) fn customer_card(customer: &pb::Customer) -> Vec<String> {
    let status = pb::CustomerStatus::try_from(customer.status)
        .map(|status| word(status.as_str_name(), "CUSTOMER_STATUS_"))
        .unwrap_or_default();
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            text.to_owned()
        }
    };
    let name = if customer.name.is_empty() {
        "(no name)"
    } else {
        &customer.name
    };
    let external = if customer.external_id.is_empty() {
        String::new()
    } else {
        format!(" ({})", customer.external_id)
    };
    let mut lines = vec![
        format!(
            "{name}{external}: {status}, joined {}",
            local(customer.joined_at.as_ref(), chrono_tz::UTC)
        ),
        format!("  id        {}", customer.id),
        format!("  email     {}", or_dash(&customer.email)),
        format!("  phone     {}", or_dash(&customer.phone)),
        format!(
            "  born      {}",
            customer.birth_date.as_ref().map_or_else(
                || "-".to_owned(),
                |date| format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
            )
        ),
    ];
    if !customer.attributes.is_empty() {
        let mut attributes: Vec<String> = customer
            .attributes
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        attributes.sort();
        lines.push(format!("  attributes {}", attributes.join(", ")));
    }
    if customer.erased_at.is_some() {
        lines.push(format!(
            "  erased    {}",
            local(customer.erased_at.as_ref(), chrono_tz::UTC)
        ));
    }
    lines
}

/// What recording a purchase or a refund did, in one line.
pub(super) fn recorded_line(recorded: &pb::RecordActivityResponse) -> String {
    let Some(activity) = &recorded.activity else {
        return "nothing recorded".to_owned();
    };
    let kind = pb::ActivityKind::try_from(activity.kind)
        .map(|kind| word(kind.as_str_name(), "ACTIVITY_KIND_"))
        .unwrap_or_default();
    let amount = activity.amount.as_ref().map_or_else(
        || "-".to_owned(),
        |amount| money(amount.amount_minor, &amount.currency),
    );
    let what = if recorded.replayed {
        "was already recorded with this key"
    } else {
        "recorded"
    };
    format!(
        "{kind} {} of {amount} for customer {} at {} {what}",
        activity.id,
        activity.customer_id,
        local(activity.occurred_at.as_ref(), chrono_tz::UTC)
    )
}

/// What a consent change left, in one line.
pub(super) fn consent_line(consent: &pb::Consent) -> String {
    let channel = tierline_proto::common::v1::Channel::try_from(consent.channel)
        .map(|channel| word(channel.as_str_name(), "CHANNEL_"))
        .unwrap_or_default();
    format!(
        "{channel} consent {} for customer {} at {}{}",
        if consent.granted {
            "granted"
        } else {
            "revoked"
        },
        consent.customer_id,
        local(consent.changed_at.as_ref(), chrono_tz::UTC),
        if consent.source.is_empty() {
            String::new()
        } else {
            format!(" (source {})", consent.source)
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierline_proto::{common::v1::Money, prost_types::Timestamp};

    #[test]
    fn a_customer_card_keeps_hangul_and_says_what_is_missing() {
        let customer = pb::Customer {
            id: "c1".into(),
            external_id: "demo-00042".into(),
            name: "김민지".into(),
            phone: "+821012345678".into(),
            status: pb::CustomerStatus::Active.into(),
            joined_at: Some(Timestamp {
                seconds: 1_764_136_800,
                nanos: 0,
            }),
            attributes: [("지역".to_owned(), "서울".to_owned())].into(),
            ..Default::default()
        };
        let lines = customer_card(&customer);
        assert_eq!(
            lines[0],
            "김민지 (demo-00042): active, joined 2025-11-26 06:00 UTC"
        );
        assert_eq!(lines[2], "  email     -");
        assert_eq!(lines[5], "  attributes 지역=서울");
    }

    #[test]
    fn a_recorded_purchase_reads_its_amount_and_whether_it_was_a_replay() {
        let recorded = pb::RecordActivityResponse {
            activity: Some(pb::Activity {
                id: "a1".into(),
                customer_id: "c1".into(),
                kind: pb::ActivityKind::Purchase.into(),
                amount: Some(Money {
                    amount_minor: 1_082_400,
                    currency: "KRW".into(),
                }),
                ..Default::default()
            }),
            replayed: true,
        };
        assert_eq!(
            recorded_line(&recorded),
            "purchase a1 of 1,082,400 KRW for customer c1 at - was already recorded with this key"
        );
    }
}
