//! RFM cut points on every backend: the quintiles of every buyer (a customer with a purchase that
//! counts), buyers without a purchase in the window counting zero purchases and spend, and a
//! customer whose only purchase was refunded in full left out.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use tierline_scoring::{domain::scores::CutPoints, storage::ScoringStore};
use uuid::Uuid;

use crate::purchase_profiles::{Ledger, apply, at, program_in_force};

fn month(text: &str) -> NaiveDate {
    text.parse().expect("month")
}

pub(crate) async fn cut_points_are_the_quintiles_of_every_buyer_those_without_a_purchase_in_the_window_at_zero(
    store: Arc<dyn ScoringStore>,
) {
    let (program, programs) = program_in_force(&store, Tz::UTC).await;
    let as_of = at("2026-06-15T12:00:00Z");
    let mut ledger = Ledger::default();
    let mut events = Vec::new();
    // Seven buyers in the window (March to June): buyer i last bought 5 + 7i days before
    // as_of, (i mod 3) + 1 times, 10,000 × (i + 1) each time.
    for i in 0..7_i64 {
        let customer = Uuid::now_v7();
        let last = as_of - Duration::days(5 + 7 * i);
        for time in 0..=(i % 3) {
            let when = (last - Duration::hours(time)).to_rfc3339();
            events.push(ledger.buy(customer, &when, 10_000 * (i + 1)));
        }
    }
    // Three buyers who last bought in January, before the window: 147, 148 and 149 days.
    for days in 147..150 {
        let when = (as_of - Duration::days(days)).to_rfc3339();
        events.push(ledger.buy(Uuid::now_v7(), &when, 25_000));
    }
    // A customer whose only purchase, in the window, was refunded in full: no buyer.
    let refunded = Uuid::now_v7();
    let purchase = ledger.buy(refunded, "2026-05-01T10:00:00Z", 50_000);
    events.push(purchase.clone());
    apply(&store, &programs, &events).await;
    apply(
        &store,
        &programs,
        &[ledger.refund(refunded, &purchase, 50_000)],
    )
    .await;

    let (cuts, population) = store
        .compute_cut_points(
            program.id,
            Some(month("2026-03-01")),
            month("2026-06-01"),
            as_of,
        )
        .await
        .expect("cut points");
    assert_eq!(
        population, 10,
        "every buyer, the refunded customer left out"
    );
    // Ranked ceil(q × 10): the 2nd, 4th, 6th and 8th of each.
    // Recency 5, 12, 19, 26, 33, 40, 47, 147, 148, 149 days.
    // Purchases 0, 0, 0, 1, 1, 1, 2, 2, 3, 3.
    // Spend 0, 0, 0, 10,000, 40,000, 40,000, 70,000, 90,000, 100,000, 180,000.
    assert_eq!(
        cuts,
        CutPoints {
            recency: [12, 26, 40, 147],
            frequency: [0, 1, 1, 2],
            monetary: [0, 10_000, 40_000, 90_000],
        }
    );

    // A window nobody bought in: every buyer at zero.
    let (cuts, population) = store
        .compute_cut_points(
            program.id,
            Some(month("2025-01-01")),
            month("2025-06-01"),
            as_of,
        )
        .await
        .expect("cut points");
    assert_eq!(population, 10);
    assert_eq!((cuts.frequency, cuts.monetary), ([0; 4], [0; 4]));
}
