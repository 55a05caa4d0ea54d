//! Customer value through the API: `FitValueModel` on the stored purchases, `GetValueModel`,
//! the value fields of `GetScores`, value ranges in `QueryAudience`, and the fit of every
//! evaluation.

use chrono::{Duration, Utc};
use sqlx::{Connection, PgConnection};
use tierline_proto::scoring::v1 as pb;
use tierline_value_model::{BgNbdParams, GammaGammaParams, simulate::simulate_population};
use tokio_stream::StreamExt;
use uuid::Uuid;

use crate::support::{Client, TestApp, finished_run, innisfree_rules, program_in_force};

/// Writes members and counted purchases for `customers` drawn from a known BG/NBD +
/// Gamma-Gamma process (first purchases over the last two years, in whole days): the first
/// purchase `age` days ago, the repeat ones spread over the `recency` days after it, each at
/// the customer's mean repeat spend. Returns their ids.
async fn seed_population(
    database_url: &str,
    program_id: Uuid,
    customers: usize,
    seed: u64,
) -> Vec<Uuid> {
    let population = simulate_population(
        customers,
        &BgNbdParams {
            r: 0.25,
            alpha: 30.0,
            a: 0.8,
            b: 2.5,
        },
        &GammaGammaParams {
            p: 6.0,
            q: 4.0,
            gamma: 20_000.0,
        },
        730.0,
        true,
        seed,
    );
    let now = Utc::now();
    let (mut ids, mut purchases) = (Vec::new(), Vec::new());
    for i in 0..population.frequency.len() {
        let customer = Uuid::now_v7();
        ids.push(customer);
        let (age, recency) = (population.age[i] as i64, population.recency[i] as i64);
        // Distinct purchase days: at most one repeat purchase a day.
        let repeats = i64::from(population.frequency[i]).min(recency);
        let first = now - Duration::days(age);
        purchases.push((customer, first, 25_000_i64));
        for j in 1..=repeats {
            let day = first + Duration::days(recency * j / repeats);
            purchases.push((
                customer,
                day,
                population.monetary[i].round().max(1.0) as i64,
            ));
        }
    }
    let mut db = PgConnection::connect(database_url).await.expect("db");
    sqlx::query(
        "INSERT INTO scoring.members (customer_id, joined_at)
         SELECT id, now() - interval '3 years' FROM unnest($1::uuid[]) id",
    )
    .bind(&ids)
    .execute(&mut db)
    .await
    .expect("members");
    let (customers, times, amounts): (Vec<Uuid>, Vec<_>, Vec<i64>) = purchases
        .iter()
        .map(|(customer, at, amount)| (*customer, *at, *amount))
        .fold(
            (vec![], vec![], vec![]),
            |(mut c, mut t, mut a), (ci, ti, ai)| {
                c.push(ci);
                t.push(ti);
                a.push(ai);
                (c, t, a)
            },
        );
    sqlx::query(
        "INSERT INTO scoring.counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, points)
         SELECT $1, gen_random_uuid(), c, t, a, 0 FROM unnest($2::uuid[], $3::timestamptz[], $4::bigint[]) AS p(c, t, a)",
    )
    .bind(program_id)
    .bind(&customers)
    .bind(&times)
    .bind(&amounts)
    .execute(&mut db)
    .await
    .expect("purchases");
    count_profiles(database_url, program_id).await;
    ids
}

/// Counts the purchase profiles of the purchases written in bulk above, as the feed would have
/// kept them: by the store's own recount, days in the policy's zone (Asia/Seoul).
async fn count_profiles(database_url: &str, program_id: Uuid) {
    use tierline_runtime::config::{ConfigSource, DatabaseSettings};
    use tierline_scoring::storage::postgres::{PgScoringStore, SCHEMA};

    let source = ConfigSource::from_pairs([("TIERLINE_DATABASE_URL", database_url)]);
    let mut reader = source.reader();
    let settings = DatabaseSettings::read(&mut reader);
    reader.finish().expect("settings");
    let pool =
        tierline_runtime::db::connect_lazy(&settings, "test-profiles", SCHEMA).expect("pool");
    PgScoringStore::new(pool, tokio_util::sync::CancellationToken::new())
        .recount_purchase_profiles(program_id, chrono_tz::Asia::Seoul, 1_000)
        .await
        .expect("profiles");
}

/// A member with purchases on the given days ago, each of `amount`.
async fn buyer(database_url: &str, program_id: Uuid, days_ago: &[i64], amount: i64) -> Uuid {
    let customer = Uuid::now_v7();
    let mut db = PgConnection::connect(database_url).await.expect("db");
    sqlx::query("INSERT INTO scoring.members (customer_id, joined_at) VALUES ($1, now() - interval '3 years')")
        .bind(customer)
        .execute(&mut db)
        .await
        .expect("member");
    for days in days_ago {
        sqlx::query(
            "INSERT INTO scoring.counted_purchases (program_id, activity_id, customer_id, occurred_at, amount_minor, points)
             VALUES ($1, gen_random_uuid(), $2, now() - make_interval(days => $3::int), $4, 0)",
        )
        .bind(program_id)
        .bind(customer)
        .bind(*days as i32)
        .bind(amount)
        .execute(&mut db)
        .await
        .expect("purchase");
    }
    count_profiles(database_url, program_id).await;
    customer
}

async fn scores(client: &mut Client, program_id: &str, ids: &[Uuid]) -> Vec<pb::CustomerScores> {
    client
        .get_scores(pb::GetScoresRequest {
            program_id: program_id.to_owned(),
            customer_ids: ids.iter().map(Uuid::to_string).collect(),
        })
        .await
        .expect("scores")
        .into_inner()
        .scores
}

#[tokio::test]
async fn a_fitted_model_scores_customers_and_finds_valuable_ones_slipping_away() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let (program, _) = program_in_force(&mut client, "INNISFREE", innisfree_rules()).await;
    let program_id = Uuid::parse_str(&program.id).expect("id");
    let get = |client: &mut Client| {
        let mut client = client.clone();
        let program_id = program.id.clone();
        async move {
            client
                .get_value_model(pb::GetValueModelRequest { program_id })
                .await
        }
    };
    let fit = |client: &mut Client| {
        let mut client = client.clone();
        let program_id = program.id.clone();
        async move {
            client
                .fit_value_model(pb::FitValueModelRequest { program_id })
                .await
        }
    };
    let status = get(&mut client).await.expect_err("nothing fitted yet");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");

    seed_population(&app.database_url, program_id, 60, 1).await;
    let status = fit(&mut client).await.expect_err("too few buyers");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("100"), "{status:?}");

    seed_population(&app.database_url, program_id, 3_000, 2).await;
    // Bought every month for two years, then stopped ten months ago; and one who buys every
    // week still. Same spend.
    let lapsed = buyer(
        &app.database_url,
        program_id,
        &(0..24).map(|month| 300 + month * 30).collect::<Vec<_>>(),
        60_000,
    )
    .await;
    let regular = buyer(
        &app.database_url,
        program_id,
        &(0..30).map(|week| 2 + week * 7).collect::<Vec<_>>(),
        60_000,
    )
    .await;
    let never = buyer(&app.database_url, program_id, &[], 0).await;

    let model = fit(&mut client).await.expect("fit").into_inner();
    assert_eq!(model.version, 1);
    assert_eq!((model.customers, model.time_unit.as_str()), (3_062, "days"));
    assert!(model.repeat_customers > 500, "{model:?}");
    let bg = model.bg_nbd.expect("BG/NBD");
    // 3,000 customers of a known process: near its parameters.
    assert!((0.15..0.4).contains(&bg.r), "{bg:?}");
    assert!((0.5..1.5).contains(&bg.a), "{bg:?}");
    assert!(model.bg_nbd_log_likelihood < 0.0);
    let gg = model.gamma_gamma.expect("Gamma-Gamma");
    assert!(gg.p > 0.0 && gg.q > 1.0 && gg.gamma > 0.0, "{gg:?}");
    assert!(model.fit_duration.is_some() && model.summary_duration.is_some());
    assert_eq!(get(&mut client).await.expect("model").into_inner(), model);

    let found = scores(&mut client, &program.id, &[lapsed, regular, never]).await;
    let [lapsed_scores, regular_scores, never_scores] = found.as_slice() else {
        panic!("three customers: {found:?}");
    };
    for scored in [lapsed_scores, regular_scores] {
        assert_eq!(scored.value_model_version, 1);
        assert_eq!(scored.prediction_horizon_months, 12);
        let horizons: Vec<i32> = scored.expected_purchases.iter().map(|e| e.days).collect();
        assert_eq!(horizons, [90, 365]);
        assert!(scored.expected_purchases[0].purchases <= scored.expected_purchases[1].purchases);
        let spend = scored.expected_spend_per_purchase.as_ref().expect("spend");
        assert_eq!(spend.currency, "KRW");
        // A long record of 60,000 a purchase pulls the estimate to it.
        assert!((45_000..=65_000).contains(&spend.amount_minor), "{spend:?}");
    }
    let alive = |scored: &pb::CustomerScores| scored.probability_alive.expect("alive");
    assert!(alive(lapsed_scores) < 0.5, "{lapsed_scores:?}");
    assert!(alive(regular_scores) > 0.9, "{regular_scores:?}");
    let value = |scored: &pb::CustomerScores| {
        scored
            .predicted_value
            .as_ref()
            .expect("predicted value")
            .amount_minor
    };
    assert!(value(regular_scores) > value(lapsed_scores) && value(lapsed_scores) > 0);
    assert!(
        never_scores.probability_alive.is_none()
            && never_scores.predicted_value.is_none()
            && never_scores.expected_purchases.is_empty(),
        "no purchase, no value: {never_scores:?}"
    );

    // "Valuable and slipping away": the lapsed buyer, not the regular one, nor who never bought.
    let mut stream = client
        .query_audience(pb::QueryAudienceRequest {
            rule: Some(pb::AudienceRule {
                program_id: program.id.clone(),
                probability_alive: Some(pb::DoubleRange {
                    min: None,
                    max: Some(0.5),
                }),
                predicted_value_minor: Some(pb::Int64Range {
                    min: Some(1),
                    max: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("audience")
        .into_inner();
    let mut matched = Vec::new();
    while let Some(chunk) = stream.next().await {
        matched.extend(
            chunk
                .expect("chunk")
                .members
                .into_iter()
                .map(|m| m.customer_id),
        );
    }
    assert!(matched.contains(&lapsed.to_string()));
    assert!(!matched.contains(&regular.to_string()) && !matched.contains(&never.to_string()));
    // Each match is as GetScores scores it.
    let sample: Vec<Uuid> = matched
        .iter()
        .take(50)
        .map(|id| id.parse().expect("id"))
        .collect();
    for scored in scores(&mut client, &program.id, &sample).await {
        assert!(alive(&scored) <= 0.5 && value(&scored) >= 1, "{scored:?}");
    }

    // Every evaluation fits again.
    let run = client
        .evaluate_now(pb::EvaluateNowRequest {
            program_id: program.id.clone(),
            requested_by: "ops".into(),
            idempotency_key: String::new(),
        })
        .await
        .expect("run")
        .into_inner();
    let run = finished_run(&mut client, &run.id).await;
    assert_eq!(run.value_model_version, 2, "{run:?}");
    let refitted = get(&mut client).await.expect("model").into_inner();
    assert_eq!(
        (refitted.version, refitted.evaluation_run_id.as_str()),
        (2, run.id.as_str())
    );
}
