//! The value model's port on every backend: purchase summaries by purchase day in the
//! program's zone, and fitted models stored as versions.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tierline_scoring::{
    domain::{
        accrual::CountedPurchase,
        feed_batch::FeedWrites,
        month::Month,
        state::Member,
        value::{
            FittedModel, ValueModel, population_summary, purchase_summaries,
            summary::PurchaseSummary,
        },
    },
    storage::ScoringStore,
};
use tierline_value_model::{BgNbdParams, GammaGammaParams};
use uuid::Uuid;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

/// Counts purchases `(at, amount, refunded)` of `customer`, a member since long before.
async fn bought(
    store: &Arc<dyn ScoringStore>,
    program: Uuid,
    customer: Uuid,
    purchases: &[(&str, i64, i64)],
) {
    let writes = FeedWrites {
        members: vec![Member {
            customer_id: customer,
            joined_at: at("2025-01-01T00:00:00Z"),
            erased: false,
        }],
        counted: purchases
            .iter()
            .map(|(time, amount, refunded)| {
                let occurred_at = at(time);
                (
                    program,
                    CountedPurchase {
                        activity_id: Uuid::now_v7(),
                        customer_id: customer,
                        occurred_at,
                        month: Month::of(occurred_at, chrono_tz::Asia::Seoul),
                        amount_minor: *amount,
                        refunded_minor: *refunded,
                        points: 0,
                        brand: String::new(),
                        sales_channel: String::new(),
                    },
                )
            })
            .collect(),
        // Counted from the purchases by the store, as a batch with a refund has them counted.
        recounted_profiles: vec![((program, customer), chrono_tz::Asia::Seoul)],
        ..FeedWrites::default()
    };
    let mut tx = store.begin().await.expect("tx");
    tx.write_feed_batch(&writes, Utc::now())
        .await
        .expect("write");
    tx.commit().await.expect("commit");
}

pub(crate) async fn value_summaries_count_purchase_days_in_the_programs_zone_and_models_are_versioned(
    store: Arc<dyn ScoringStore>,
) {
    let program = crate::suite::program("INNISFREE");
    store.create_program(&program, None).await.expect("program");
    let (often, once, never) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    bought(
        &store,
        program.id,
        often,
        &[
            // 1 March in Seoul twice (the second is still 28 February in UTC): one day.
            ("2026-03-01T10:00:00+09:00", 5_000, 0),
            ("2026-03-01T08:30:00+09:00", 7_000, 0),
            ("2026-03-03T12:00:00+09:00", 10_000, 0),
            // 10 March three times, one partly refunded: 4,000 + 16,000 + 6,000.
            ("2026-03-10T09:00:00+09:00", 4_000, 0),
            ("2026-03-10T18:00:00+09:00", 16_000, 0),
            ("2026-03-10T19:00:00+09:00", 10_000, 4_000),
            // Refunded in full: no purchase.
            ("2026-03-20T10:00:00+09:00", 9_000, 9_000),
            // After the summary's instant.
            ("2026-04-02T10:00:00+09:00", 50_000, 0),
        ],
    )
    .await;
    bought(
        &store,
        program.id,
        once,
        &[("2026-03-21T10:00:00+09:00", 30_000, 0)],
    )
    .await;
    bought(&store, program.id, never, &[]).await;
    let (seoul, as_of) = (chrono_tz::Asia::Seoul, at("2026-03-31T00:00:00+09:00"));

    let expected_often = PurchaseSummary {
        frequency: 2,
        recency_days: 9,
        age_days: 30,
        repeat_spend_minor: 18_000.0,
    };
    let expected_once = PurchaseSummary {
        frequency: 0,
        recency_days: 0,
        age_days: 10,
        repeat_spend_minor: 0.0,
    };
    let mut some = purchase_summaries(
        store.as_ref(),
        program.id,
        &[often, once, never],
        seoul,
        as_of,
    )
    .await
    .expect("summaries");
    some.sort_by_key(|(customer, _)| *customer);
    assert_eq!(
        some,
        [(often, expected_often), (once, expected_once)],
        "one who never bought has no summary"
    );
    let population = population_summary(store.as_ref(), program.id, seoul, as_of)
        .await
        .expect("population");
    let mut everyone: Vec<PurchaseSummary> =
        (0..population.len()).map(|i| population.get(i)).collect();
    everyone.sort_by_key(|summary| summary.frequency);
    assert_eq!(everyone, [expected_once, expected_often]);

    assert!(
        store
            .value_model(program.id)
            .await
            .expect("model")
            .is_none()
    );
    let model = |log_likelihood: f64| ValueModel {
        program_id: program.id,
        version: 0,
        fitted: FittedModel {
            bg_nbd: BgNbdParams {
                r: 0.243,
                alpha: 4.414,
                a: 0.793,
                b: 2.426,
            },
            bg_nbd_log_likelihood: log_likelihood,
            gamma_gamma: Some(GammaGammaParams {
                p: 6.25,
                q: 3.74,
                gamma: 15.44,
            }),
            gamma_gamma_log_likelihood: -4_000.5,
        },
        customers: 2_357,
        repeat_customers: 946,
        as_of,
        summary_duration: Duration::from_micros(1_234),
        fit_duration: Duration::from_micros(56_789),
        evaluation_run_id: Some(Uuid::now_v7()),
    };
    assert_eq!(
        store
            .store_value_model(&model(-9_600.0))
            .await
            .expect("store"),
        1
    );
    assert_eq!(
        store
            .store_value_model(&model(-9_582.4))
            .await
            .expect("store"),
        2
    );
    let latest = store
        .value_model(program.id)
        .await
        .expect("model")
        .expect("stored");
    let mut expected = model(-9_582.4);
    (expected.version, expected.evaluation_run_id) = (2, latest.evaluation_run_id);
    assert_eq!(latest, expected, "the latest version, as stored");
}

/// The population summary of 400 buyers (some of whom bought after the summary's instant), read
/// by a store `reads_in_parts` and by `reads_at_once`, each holding the same purchases: both find
/// the same summaries, those who bought since summarised from their purchases up to the
/// instant. Postgres reads the profiles by ranges of blocks, several for 400 profiles when asked
/// to read one block a statement.
pub(crate) async fn a_population_summary_read_in_parts_finds_what_one_read_finds(
    reads_in_parts: Arc<dyn ScoringStore>,
    reads_at_once: Arc<dyn ScoringStore>,
) {
    let mut found = Vec::new();
    for store in [reads_in_parts, reads_at_once] {
        let program = crate::suite::program("INNISFREE");
        store.create_program(&program, None).await.expect("program");
        for n in 0..400_i64 {
            let customer = Uuid::from_u128(1 + n as u128);
            let day = 1 + n % 27;
            let mut purchases = vec![(
                format!("2026-02-{day:02}T10:00:00+09:00"),
                1_000 * (1 + n % 7),
                0,
            )];
            if n % 2 == 0 {
                purchases.push((
                    format!("2026-03-{day:02}T10:00:00+09:00"),
                    500 * (1 + n % 5),
                    0,
                ));
            }
            if n % 5 == 0 {
                // After the summary's instant.
                purchases.push(("2026-04-02T10:00:00+09:00".to_owned(), 9_000, 0));
            }
            let purchases: Vec<(&str, i64, i64)> = purchases
                .iter()
                .map(|(at, amount, refunded)| (at.as_str(), *amount, *refunded))
                .collect();
            bought(&store, program.id, customer, &purchases).await;
        }
        let population = population_summary(
            store.as_ref(),
            program.id,
            chrono_tz::Asia::Seoul,
            at("2026-03-31T00:00:00+09:00"),
        )
        .await
        .expect("population");
        let mut summaries: Vec<(u32, u32, u32, i64)> = (0..population.len())
            .map(|i| {
                let summary = population.get(i);
                (
                    summary.frequency,
                    summary.recency_days,
                    summary.age_days,
                    summary.repeat_spend_minor as i64,
                )
            })
            .collect();
        summaries.sort_unstable();
        found.push(summaries);
    }
    assert_eq!(found[0].len(), 400, "every buyer once");
    assert_eq!(found[0], found[1]);
    let repeat = found[0].iter().filter(|summary| summary.0 == 1).count();
    assert_eq!(repeat, 200, "a purchase after the instant is not counted");
}
