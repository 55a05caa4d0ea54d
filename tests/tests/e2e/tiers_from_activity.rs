//! The customer and scoring services together, as deployed: activity recorded in the customer
//! service reaches the scoring service through the activity feed, and tier lookups show it.

use std::time::Duration;

use tierline_proto::{
    common::v1::Money,
    customer::v1::{self as customer, customer_service_client::CustomerServiceClient},
    prost_types::Timestamp,
    scoring::v1::{self as scoring, scoring_service_client::ScoringServiceClient},
};
use tierline_runtime::auth::scopes::{
    ACTIVITY_WRITE, CUSTOMERS_WRITE, FEED_READ, PROGRAMS_ADMIN, TIERS_READ,
};
use tierline_testkit::{
    RedisServer, eventually, eventually_within,
    fixtures::{innisfree_program, innisfree_rules},
};
use tonic::transport::Channel;

use crate::support::{Services, authorized, start_tiers};

/// About `months` months before now (31 days each).
fn months_ago(months: i64) -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    Timestamp {
        seconds: i64::try_from(now.as_secs()).expect("secs") - months * 31 * 86_400,
        nanos: 0,
    }
}

/// The customer and scoring services on a fresh database.
async fn start() -> Services {
    start_tiers(&[]).await
}

/// Creates the example Innisfree program and activates its policy; its id.
async fn create_innisfree(scoring_client: &mut ScoringServiceClient<Channel>) -> String {
    let program = scoring_client
        .create_program(authorized(
            scoring::CreateProgramRequest {
                program: Some(innisfree_program("INNISFREE")),
                idempotency_key: String::new(),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("program")
        .into_inner();
    let draft = scoring_client
        .create_policy_version(authorized(
            scoring::CreatePolicyVersionRequest {
                program_id: program.id.clone(),
                rules: Some(innisfree_rules()),
                description: String::new(),
                created_by: "e2e".into(),
                idempotency_key: String::new(),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("draft")
        .into_inner();
    scoring_client
        .activate_policy(authorized(
            scoring::ActivatePolicyRequest {
                policy_version_id: draft.id,
                activated_by: "e2e".into(),
                expected_revision: None,
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("activate");
    program.id
}

async fn purchase(
    client: &mut CustomerServiceClient<Channel>,
    key: &str,
    customer_id: &str,
    amount: i64,
    occurred_at: Timestamp,
) -> String {
    client
        .record_purchase(authorized(
            customer::RecordPurchaseRequest {
                idempotency_key: key.into(),
                customer_id: customer_id.into(),
                amount: Some(Money {
                    amount_minor: amount,
                    currency: "KRW".into(),
                }),
                occurred_at: Some(occurred_at),
                brand: "innisfree".into(),
                ..Default::default()
            },
            &[ACTIVITY_WRITE],
        ))
        .await
        .expect("purchase")
        .into_inner()
        .activity
        .expect("activity")
        .id
}

/// Polls the lookup until `done` holds: the feed is asynchronous by design.
async fn tier_when(
    client: &mut ScoringServiceClient<Channel>,
    program_id: &str,
    customer_id: &str,
    done: impl Fn(&scoring::CustomerTier) -> bool,
) -> scoring::CustomerTier {
    let done = &done;
    eventually_within(
        &format!("the tier of {customer_id} to get there"),
        Duration::from_secs(20),
        || {
            let mut client = client.clone();
            async move {
                let answer = client
                    .get_tier(authorized(
                        scoring::GetTierRequest {
                            program_id: program_id.into(),
                            customer_id: customer_id.into(),
                        },
                        &[TIERS_READ],
                    ))
                    .await
                    .ok()?
                    .into_inner();
                done(&answer).then_some(answer)
            }
        },
    )
    .await
}

/// Waits until the run has finished (whatever its end).
async fn finished_run(services: &Services, run_id: &str) -> scoring::EvaluationRun {
    eventually("the evaluation run to finish", || {
        let mut client = services.scoring.clone();
        async move {
            let run = client
                .get_evaluation_run(authorized(
                    scoring::GetEvaluationRunRequest {
                        evaluation_run_id: run_id.to_owned(),
                    },
                    &[PROGRAMS_ADMIN],
                ))
                .await
                .expect("run")
                .into_inner();
            (run.status() != scoring::EvaluationRunStatus::Running).then_some(run)
        }
    })
    .await
}

fn code(tier: &scoring::CustomerTier) -> &str {
    tier.tier.as_ref().map_or("", |t| t.code.as_str())
}

#[tokio::test]
async fn purchases_raise_the_tier_at_once_and_refunds_wait_for_evaluation() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Ji-woo").await;

    // A known customer without activity holds the base tier; an unknown one is NOT_FOUND.
    let base = tier_when(&mut services.scoring, &program_id, &customer_id, |_| true).await;
    assert_eq!(code(&base), "WELCOME");
    let unknown = services
        .scoring
        .get_tier(authorized(
            scoring::GetTierRequest {
                program_id: program_id.clone(),
                customer_id: uuid::Uuid::now_v7().to_string(),
            },
            &[TIERS_READ],
        ))
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // 13 months ago does not count; two months ago (a late event) does.
    purchase(
        &mut services.customer,
        "old",
        &customer_id,
        500_000,
        months_ago(13),
    )
    .await;
    purchase(
        &mut services.customer,
        "late",
        &customer_id,
        120_000,
        months_ago(2),
    )
    .await;
    let green = tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "GREEN"
    })
    .await;
    assert_eq!(
        green.metrics.as_ref().map(|m| m.net_spend_minor),
        Some(120_000),
        "the 13-month-old purchase is outside the window"
    );

    let big = purchase(
        &mut services.customer,
        "big",
        &customer_id,
        200_000,
        months_ago(0),
    )
    .await;
    let vip = tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "VIP"
    })
    .await;
    let next = vip.next_tier.as_ref().expect("VVIP above");
    assert_eq!(next.tier.as_ref().map(|t| t.code.as_str()), Some("VVIP"));
    assert_eq!(next.gaps[0].missing, 680_000);
    assert_eq!(next.gaps[1].missing, 8, "VVIP also needs 10 purchases");
    assert!(vip.retention.is_some());

    // A refund lowers the metric but not the tier.
    services
        .customer
        .record_refund(authorized(
            customer::RecordRefundRequest {
                idempotency_key: "refund-big".into(),
                customer_id: customer_id.clone(),
                purchase_id: big.clone(),
                amount: Some(Money {
                    amount_minor: 150_000,
                    currency: "KRW".into(),
                }),
                occurred_at: Some(months_ago(0)),
            },
            &[ACTIVITY_WRITE],
        ))
        .await
        .expect("refund");
    let after_refund = tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        t.metrics
            .as_ref()
            .is_some_and(|m| m.net_spend_minor == 170_000)
    })
    .await;
    assert_eq!(
        code(&after_refund),
        "VIP",
        "no downgrade before an evaluation"
    );

    let history = services
        .scoring
        .get_tier_history(authorized(
            scoring::GetTierHistoryRequest {
                program_id: program_id.clone(),
                customer_id: customer_id.clone(),
                ..Default::default()
            },
            &[TIERS_READ],
        ))
        .await
        .expect("history")
        .into_inner();
    let changes: Vec<(String, String, i32)> = history
        .records
        .iter()
        .map(|r| {
            (
                r.from_tier.clone().unwrap_or_default().code,
                r.to_tier.clone().unwrap_or_default().code,
                r.reason,
            )
        })
        .collect();
    let qualified = scoring::TierChangeReason::Qualified as i32;
    assert_eq!(
        changes,
        [
            ("GREEN".into(), "VIP".into(), qualified),
            ("WELCOME".into(), "GREEN".into(), qualified)
        ]
    );
    assert_eq!(
        history.records[0]
            .metrics
            .as_ref()
            .map(|m| m.net_spend_minor),
        Some(320_000),
        "the totals that decided it"
    );
    // What decided it: the purchase that crossed the threshold, over the window it was summed in
    // (12 months, the last ending with the month after this one begins).
    let upgrade = &history.records[0];
    assert_eq!(
        upgrade.activity_id.as_deref(),
        Some(big.as_str()),
        "{upgrade:?}"
    );
    assert!(upgrade.evaluation_run_id.is_none() && upgrade.operator_name.is_none());
    let window = upgrade.window.as_ref().expect("window");
    let days = (window.end.as_ref().expect("end").seconds
        - window.start.as_ref().expect("start").seconds)
        / 86_400;
    assert!((365..=366).contains(&days), "{window:?}");
}

/// Whether a record of `customer_id` in `program_id` is cached, in any cache generation
/// (keys are `t`, the program's 16 bytes, the generation's 4, the customer's 16).
async fn caches(redis: &RedisServer, program_id: &str, customer_id: &str) -> bool {
    let client = redis::Client::open(redis.url().as_str()).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .expect("keys");
    let program = uuid::Uuid::parse_str(program_id).expect("uuid");
    let customer = uuid::Uuid::parse_str(customer_id).expect("uuid");
    keys.iter().any(|key| {
        key.len() == 37
            && key[0] == b't'
            && key[1..17] == *program.as_bytes()
            && key[21..] == *customer.as_bytes()
    })
}

#[tokio::test]
async fn lookups_are_cached_in_redis_and_still_answer_when_redis_stops() {
    // A Redis of this test's own, so that stopping it disturbs no other test.
    let mut redis = RedisServer::start();
    let mut services = start_tiers(&[
        ("TIERLINE_REDIS_URL", &redis.url()),
        ("TIERLINE_REDIS_TIMEOUT", "100ms"),
    ])
    .await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Cached").await;
    purchase(
        &mut services.customer,
        "c-1",
        &customer_id,
        120_000,
        months_ago(0),
    )
    .await;
    tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "GREEN"
    })
    .await;
    assert!(
        caches(&redis, &program_id, &customer_id).await,
        "the lookup is cached"
    );

    redis.stop();
    // Redis is gone: lookups come from Postgres, and new activity still shows.
    let still = tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "GREEN"
    })
    .await;
    assert_eq!(
        still.metrics.as_ref().map(|m| m.net_spend_minor),
        Some(120_000)
    );
    purchase(
        &mut services.customer,
        "c-2",
        &customer_id,
        200_000,
        months_ago(0),
    )
    .await;
    tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "VIP"
    })
    .await;
}

#[tokio::test]
async fn an_erasure_raises_the_version_so_cached_lookups_are_replaced() {
    let mut services = start_tiers(&[("TIERLINE_REDIS_URL", &tierline_testkit::redis_url())]).await;
    let mut replica = services.scoring_replica().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Erased").await;
    purchase(
        &mut services.customer,
        "e-1",
        &customer_id,
        120_000,
        months_ago(0),
    )
    .await;
    // Looked up on both replicas, so cached in Redis and in each replica's near cache.
    let before = tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "GREEN"
    })
    .await;
    let on_replica = tier_when(&mut replica, &program_id, &customer_id, |t| {
        code(t) == "GREEN"
    })
    .await;
    assert_eq!(on_replica.version, before.version);
    services
        .customer
        .erase_customer(authorized(
            customer::EraseCustomerRequest {
                id: customer_id.clone(),
                reason: "customer request".into(),
            },
            &[CUSTOMERS_WRITE],
        ))
        .await
        .expect("erase");
    // The erasure reaches scoring through the feed as a change of the record: a newer version
    // replaces the cached one on both replicas, and neither goes back to the older.
    for client in [&mut services.scoring, &mut replica] {
        let after = tier_when(client, &program_id, &customer_id, |t| {
            t.version > before.version
        })
        .await;
        for _ in 0..10 {
            let again = tier_when(client, &program_id, &customer_id, |_| true).await;
            assert!(again.version >= after.version, "{again:?} after {after:?}");
        }
    }
}

async fn new_customer(services: &mut Services, name: &str) -> String {
    services
        .customer
        .create_customer(authorized(
            customer::CreateCustomerRequest {
                name: name.into(),
                ..Default::default()
            },
            &[CUSTOMERS_WRITE],
        ))
        .await
        .expect("customer")
        .into_inner()
        .id
}

async fn refund(
    services: &mut Services,
    key: &str,
    customer_id: &str,
    purchase_id: &str,
    amount: i64,
) {
    services
        .customer
        .record_refund(authorized(
            customer::RecordRefundRequest {
                idempotency_key: key.into(),
                customer_id: customer_id.into(),
                purchase_id: purchase_id.into(),
                amount: Some(Money {
                    amount_minor: amount,
                    currency: "KRW".into(),
                }),
                occurred_at: Some(months_ago(0)),
            },
            &[ACTIVITY_WRITE],
        ))
        .await
        .expect("refund");
}

/// Evaluates now and waits for the run to finish. The request is sent twice with one
/// idempotency key, as a client retrying after a timeout would: one run is opened.
async fn evaluate_now(services: &mut Services, program_id: &str) -> scoring::EvaluationRun {
    let request = scoring::EvaluateNowRequest {
        program_id: program_id.into(),
        requested_by: "e2e".into(),
        idempotency_key: format!("evaluate-{}", uuid::Uuid::now_v7()),
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        runs.push(
            services
                .scoring
                .evaluate_now(authorized(request.clone(), &[PROGRAMS_ADMIN]))
                .await
                .expect("evaluate")
                .into_inner(),
        );
    }
    assert_eq!(runs[0].id, runs[1].id, "the retry returns the first run");
    finished_run(services, &runs[0].id).await
}

#[tokio::test]
async fn grace_keeps_a_tier_at_evaluation_and_without_grace_it_drops_one_level() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Graceful").await;
    let bought = purchase(
        &mut services.customer,
        "g-1",
        &customer_id,
        350_000,
        months_ago(0),
    )
    .await;
    tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "VIP"
    })
    .await;
    refund(&mut services, "g-r", &customer_id, &bought, 300_000).await;
    tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        t.metrics
            .as_ref()
            .is_some_and(|m| m.net_spend_minor == 50_000)
    })
    .await;

    // Three months of grace: the evaluation keeps VIP.
    let run = evaluate_now(&mut services, &program_id).await;
    assert_eq!(
        (run.status(), run.members_evaluated, run.downgrades),
        (scoring::EvaluationRunStatus::Succeeded, 1, 0)
    );
    let kept = tier_when(&mut services.scoring, &program_id, &customer_id, |_| true).await;
    assert_eq!(code(&kept), "VIP", "grace keeps the tier");

    // A new policy without grace: the next evaluation drops one level (the drop limit), VIP → GREEN.
    let mut no_grace = innisfree_rules();
    no_grace.grace_months = 0;
    let draft = services
        .scoring
        .create_policy_version(authorized(
            scoring::CreatePolicyVersionRequest {
                program_id: program_id.clone(),
                rules: Some(no_grace),
                created_by: "e2e".into(),
                ..Default::default()
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("draft")
        .into_inner();
    services
        .scoring
        .activate_policy(authorized(
            scoring::ActivatePolicyRequest {
                policy_version_id: draft.id,
                activated_by: "e2e".into(),
                expected_revision: None,
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("activate");
    let run = loop {
        let run = evaluate_now(&mut services, &program_id).await;
        // The activation's own run may still hold the member; evaluate until ours did the work.
        if run.downgrades > 0
            || code(&tier_when(&mut services.scoring, &program_id, &customer_id, |_| true).await)
                == "GREEN"
        {
            break run;
        }
    };
    assert_eq!(run.status(), scoring::EvaluationRunStatus::Succeeded);
    let dropped = tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "GREEN"
    })
    .await;
    assert_eq!(
        dropped.metrics.as_ref().map(|m| m.net_spend_minor),
        Some(50_000)
    );
    let history = services
        .scoring
        .get_tier_history(authorized(
            scoring::GetTierHistoryRequest {
                program_id: program_id.clone(),
                customer_id: customer_id.clone(),
                ..Default::default()
            },
            &[TIERS_READ],
        ))
        .await
        .expect("history")
        .into_inner();
    assert_eq!(
        history.records[0].reason(),
        scoring::TierChangeReason::Evaluation
    );
    assert_eq!(
        history.records[0].direction(),
        scoring::TierChangeDirection::Downgrade
    );
}

#[tokio::test]
async fn an_override_shows_its_tier_and_can_be_cleared() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Overridden").await;
    purchase(
        &mut services.customer,
        "o-1",
        &customer_id,
        150_000,
        months_ago(0),
    )
    .await;
    tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        code(t) == "GREEN"
    })
    .await;

    let in_a_day = Timestamp {
        seconds: months_ago(0).seconds + 86_400,
        nanos: 0,
    };
    let overridden = services
        .scoring
        .set_tier_override(authorized(
            scoring::SetTierOverrideRequest {
                program_id: program_id.clone(),
                customer_id: customer_id.clone(),
                tier_code: "VVIP".into(),
                expires_at: Some(in_a_day),
                reason: "service recovery".into(),
                operator_name: "agent-7".into(),
                idempotency_key: String::new(),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("override")
        .into_inner();
    assert_eq!(code(&overridden), "VVIP");
    let details = overridden.tier_override.expect("override details");
    assert_eq!(
        (
            details.operator_name.as_str(),
            details.computed_tier.map(|t| t.code)
        ),
        ("agent-7", Some("GREEN".into()))
    );
    let looked_up = tier_when(&mut services.scoring, &program_id, &customer_id, |_| true).await;
    assert_eq!(code(&looked_up), "VVIP");

    let past = services
        .scoring
        .set_tier_override(authorized(
            scoring::SetTierOverrideRequest {
                program_id: program_id.clone(),
                customer_id: customer_id.clone(),
                tier_code: "GOLD".into(),
                expires_at: Some(months_ago(1)),
                reason: String::new(),
                operator_name: "agent-7".into(),
                idempotency_key: String::new(),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect_err("invalid");
    let fields: Vec<String> = tierline_runtime::status::field_violations(&past)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["tier_code", "expires_at", "reason"]);

    let clear = scoring::ClearTierOverrideRequest {
        program_id: program_id.clone(),
        customer_id: customer_id.clone(),
        reason: "resolved".into(),
        operator_name: "agent-7".into(),
        idempotency_key: "clear-7".into(),
    };
    let cleared = services
        .scoring
        .clear_tier_override(authorized(clear.clone(), &[PROGRAMS_ADMIN]))
        .await
        .expect("clear")
        .into_inner();
    assert_eq!(code(&cleared), "GREEN");
    assert!(cleared.tier_override.is_none());
    // A retry changes nothing: same tier, same version, no second record.
    let retried = services
        .scoring
        .clear_tier_override(authorized(clear, &[PROGRAMS_ADMIN]))
        .await
        .expect("clear again")
        .into_inner();
    assert_eq!(
        (code(&retried), retried.version),
        (code(&cleared), cleared.version)
    );
    let history = services
        .scoring
        .get_tier_history(authorized(
            scoring::GetTierHistoryRequest {
                program_id: program_id.clone(),
                customer_id: customer_id.clone(),
                ..Default::default()
            },
            &[TIERS_READ],
        ))
        .await
        .expect("history")
        .into_inner();
    // The grant and the clearing are both audited, each with who, why and the override's end.
    let of = |reason: scoring::TierChangeReason| -> Vec<&scoring::TierHistoryRecord> {
        history
            .records
            .iter()
            .filter(|r| r.reason() == reason)
            .collect()
    };
    let granted = of(scoring::TierChangeReason::Override);
    assert_eq!(granted.len(), 1, "{history:?}");
    assert!(
        granted[0].operator_name.is_some()
            && granted[0].operator_reason.is_some()
            && granted[0].override_expires_at.is_some(),
        "{:?}",
        granted[0]
    );
    let cleared_by_hand = of(scoring::TierChangeReason::OverrideExpired);
    assert_eq!(cleared_by_hand.len(), 1, "{history:?}");
    assert_eq!(
        (
            cleared_by_hand[0].operator_name.as_deref(),
            cleared_by_hand[0].operator_reason.as_deref()
        ),
        (Some("agent-7"), Some("resolved"))
    );
    assert!(cleared_by_hand[0].window.is_some());
}

#[tokio::test]
async fn two_scoring_replicas_never_apply_an_activity_twice() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    // A second scoring replica on the same database, consuming the same feed.
    let mut second_client = services.scoring_replica().await;

    let customer_id = new_customer(&mut services, "Twice?").await;
    for index in 0..30 {
        purchase(
            &mut services.customer,
            &format!("t-{index}"),
            &customer_id,
            10_000,
            months_ago(0),
        )
        .await;
    }
    let tier = tier_when(&mut second_client, &program_id, &customer_id, |t| {
        t.metrics.as_ref().is_some_and(|m| m.purchase_count >= 30)
    })
    .await;
    let metrics = tier.metrics.expect("metrics");
    assert_eq!(
        (metrics.net_spend_minor, metrics.purchase_count),
        (300_000, 30),
        "every purchase once"
    );
    assert_eq!(code(&tier), "VIP");
}

#[tokio::test]
async fn explain_tier_shows_the_decisions_and_the_purchases_that_counted() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Why VIP?").await;
    purchase(
        &mut services.customer,
        "x-old",
        &customer_id,
        900_000,
        months_ago(13),
    )
    .await;
    let first = purchase(
        &mut services.customer,
        "x-1",
        &customer_id,
        150_000,
        months_ago(3),
    )
    .await;
    purchase(
        &mut services.customer,
        "x-2",
        &customer_id,
        200_000,
        months_ago(1),
    )
    .await;
    refund(&mut services, "x-r", &customer_id, &first, 20_000).await;
    tier_when(&mut services.scoring, &program_id, &customer_id, |t| {
        t.metrics
            .as_ref()
            .is_some_and(|m| m.net_spend_minor == 330_000)
    })
    .await;

    let explanation = services
        .scoring
        .explain_tier(authorized(
            scoring::ExplainTierRequest {
                program_id: program_id.clone(),
                customer_id: customer_id.clone(),
                max_history: None,
                max_activities: None,
            },
            &[TIERS_READ],
        ))
        .await
        .expect("explain")
        .into_inner();
    assert_eq!(explanation.current.as_ref().map(code), Some("VIP"));
    let trail: Vec<String> = explanation
        .decision_trail
        .iter()
        .map(|r| r.to_tier.clone().unwrap_or_default().code)
        .collect();
    assert_eq!(
        trail,
        ["VIP", "GREEN"],
        "newest first: the change into VIP, then into GREEN"
    );
    assert_eq!(
        explanation.activities_total, 2,
        "the 13-month-old purchase is not in the window"
    );
    let contributions: Vec<(i64, i64)> = explanation
        .activities
        .iter()
        .map(|a| (a.net_spend_delta_minor, a.purchase_count_delta))
        .collect();
    assert_eq!(
        contributions,
        [(200_000, 1), (130_000, 1)],
        "newest first, the refund netted into its purchase"
    );
    assert_eq!(explanation.activities[0].brand, "innisfree");
}

#[tokio::test]
async fn tier_changes_stream_live_and_resume_from_any_cursor() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Watched").await;
    let mut changes = services
        .scoring
        .watch_tier_changes(authorized(
            scoring::WatchTierChangesRequest {
                after_cursor: String::new(),
                program_id: program_id.clone(),
            },
            &[FEED_READ],
        ))
        .await
        .expect("watch")
        .into_inner();
    purchase(
        &mut services.customer,
        "w-1",
        &customer_id,
        120_000,
        months_ago(0),
    )
    .await;
    purchase(
        &mut services.customer,
        "w-2",
        &customer_id,
        200_000,
        months_ago(0),
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(20), changes.message())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open");
        seen.push(event);
    }
    let moves: Vec<(String, String)> = seen
        .iter()
        .map(|event| match &event.change {
            Some(scoring::tier_feed_event::Change::TierChanged(change)) => (
                change.from_tier.clone().unwrap_or_default().code,
                change.to_tier.clone().unwrap_or_default().code,
            ),
            other => panic!("expected a tier change, got {other:?}"),
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("WELCOME".into(), "GREEN".into()),
            ("GREEN".into(), "VIP".into())
        ]
    );
    assert!(seen.iter().all(|event| event.customer_id == customer_id));

    // Resuming after the first cursor gives exactly the second change.
    let mut resumed = services
        .scoring
        .watch_tier_changes(authorized(
            scoring::WatchTierChangesRequest {
                after_cursor: seen[0].cursor.clone(),
                program_id: String::new(),
            },
            &[FEED_READ],
        ))
        .await
        .expect("watch")
        .into_inner();
    let next = tokio::time::timeout(Duration::from_secs(20), resumed.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    assert_eq!(next, seen[1]);
}

#[tokio::test]
async fn scores_rank_customers_against_the_population_with_lifecycle_states() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let two_years_ago = months_ago(24);
    let joined_long_ago = |name: &str| customer::CreateCustomerRequest {
        name: name.into(),
        joined_at: Some(two_years_ago),
        ..Default::default()
    };
    let mut ids = Vec::new();
    for request in [
        joined_long_ago("Big"),
        joined_long_ago("Faded"),
        joined_long_ago("Never"),
        customer::CreateCustomerRequest {
            name: "Newcomer".into(),
            ..Default::default()
        },
    ] {
        ids.push(
            services
                .customer
                .create_customer(authorized(request, &[CUSTOMERS_WRITE]))
                .await
                .expect("customer")
                .into_inner()
                .id,
        );
    }
    let (big, faded, never, newcomer) = (
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[3].clone(),
    );
    for index in 0..3 {
        purchase(
            &mut services.customer,
            &format!("s-big-{index}"),
            &big,
            250_000,
            months_ago(1),
        )
        .await;
    }
    let seven_months_ago = Timestamp {
        seconds: months_ago(0).seconds - 200 * 86_400,
        nanos: 0,
    };
    purchase(
        &mut services.customer,
        "s-faded",
        &faded,
        10_000,
        seven_months_ago,
    )
    .await;
    tier_when(&mut services.scoring, &program_id, &big, |t| {
        t.metrics.as_ref().is_some_and(|m| m.purchase_count == 3)
    })
    .await;
    tier_when(&mut services.scoring, &program_id, &faded, |t| {
        t.metrics.as_ref().is_some_and(|m| m.purchase_count == 1)
    })
    .await;

    let run = evaluate_now(&mut services, &program_id).await;
    assert!(
        run.cut_points_version >= 1,
        "an evaluation recomputes the cut points"
    );
    let scores = services
        .scoring
        .get_scores(authorized(
            scoring::GetScoresRequest {
                program_id: program_id.clone(),
                customer_ids: ids.clone(),
            },
            &[TIERS_READ],
        ))
        .await
        .expect("scores")
        .into_inner();
    let of = |id: &str| {
        scores
            .scores
            .iter()
            .find(|s| s.customer_id == id)
            .expect("scored")
            .clone()
    };
    let (big, faded, never, newcomer) = (of(&big), of(&faded), of(&never), of(&newcomer));
    assert_eq!(big.lifecycle(), scoring::LifecycleState::Active);
    assert_eq!(
        faded.lifecycle(),
        scoring::LifecycleState::AtRisk,
        "no purchase for 200 days"
    );
    assert_eq!(
        never.lifecycle(),
        scoring::LifecycleState::Dormant,
        "joined long ago, never bought"
    );
    assert_eq!(newcomer.lifecycle(), scoring::LifecycleState::New);
    assert!(
        big.m_score > faded.m_score && big.r_score > faded.r_score,
        "{big:?} {faded:?}"
    );
    assert_eq!(
        (big.frequency, big.monetary.as_ref().map(|m| m.amount_minor)),
        (3, Some(750_000))
    );
    assert!(
        never.segment.is_none() && never.r_score.is_none(),
        "no purchase, no segment"
    );
    assert_eq!(big.cut_points_version, run.cut_points_version);
    assert_eq!(
        big.historic_value.as_ref().map(|m| m.amount_minor),
        Some(750_000)
    );
}

async fn audience(
    services: &mut Services,
    rule: scoring::AudienceRule,
    limit: Option<i64>,
) -> Vec<scoring::AudienceMember> {
    let mut stream = services
        .scoring
        .query_audience(authorized(
            scoring::QueryAudienceRequest {
                rule: Some(rule),
                after_customer_id: String::new(),
                limit,
            },
            &[TIERS_READ],
        ))
        .await
        .expect("audience")
        .into_inner();
    let mut members = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        members.extend(chunk.members);
    }
    members
}

#[tokio::test]
async fn audiences_select_members_by_tier_lifecycle_and_recency() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let long_ago = |name: &str| customer::CreateCustomerRequest {
        name: name.into(),
        joined_at: Some(months_ago(24)),
        ..Default::default()
    };
    let mut ids = Vec::new();
    for request in [long_ago("Vip"), long_ago("Faded"), long_ago("Never")] {
        ids.push(
            services
                .customer
                .create_customer(authorized(request, &[CUSTOMERS_WRITE]))
                .await
                .expect("customer")
                .into_inner()
                .id,
        );
    }
    let (vip, faded, never) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    purchase(
        &mut services.customer,
        "a-vip",
        &vip,
        400_000,
        months_ago(0),
    )
    .await;
    purchase(
        &mut services.customer,
        "a-faded",
        &faded,
        20_000,
        Timestamp {
            seconds: months_ago(0).seconds - 200 * 86_400,
            nanos: 0,
        },
    )
    .await;
    tier_when(&mut services.scoring, &program_id, &vip, |t| {
        code(t) == "VIP"
    })
    .await;
    tier_when(&mut services.scoring, &program_id, &faded, |t| {
        t.metrics.as_ref().is_some_and(|m| m.purchase_count == 1)
    })
    .await;

    let rule = |f: &dyn Fn(&mut scoring::AudienceRule)| {
        let mut rule = scoring::AudienceRule {
            program_id: program_id.clone(),
            ..Default::default()
        };
        f(&mut rule);
        rule
    };
    let ids_of = |members: Vec<scoring::AudienceMember>| {
        let mut ids: Vec<String> = members.into_iter().map(|m| m.customer_id).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    let vips = audience(
        &mut services,
        rule(&|r| r.tier_codes = vec!["VIP".into()]),
        None,
    )
    .await;
    assert_eq!(
        vips.iter()
            .map(|m| (m.customer_id.clone(), m.tier_code.clone()))
            .collect::<Vec<_>>(),
        [(vip.clone(), "VIP".to_owned())]
    );
    let lapsing = audience(
        &mut services,
        rule(&|r| {
            r.lifecycle_states = vec![
                scoring::LifecycleState::AtRisk.into(),
                scoring::LifecycleState::Dormant.into(),
            ]
        }),
        None,
    )
    .await;
    assert_eq!(ids_of(lapsing), sorted(vec![faded.clone(), never.clone()]));
    let quiet = audience(
        &mut services,
        rule(&|r| {
            r.days_since_last_purchase = Some(scoring::Int64Range {
                min: Some(90),
                max: None,
            })
        }),
        None,
    )
    .await;
    assert_eq!(
        ids_of(quiet),
        std::slice::from_ref(&faded),
        "customers without a purchase never match a recency range"
    );
    let everyone = audience(&mut services, rule(&|_| {}), None).await;
    assert_eq!(everyone.len(), 3);
    assert_eq!(
        audience(&mut services, rule(&|_| {}), Some(2)).await.len(),
        2,
        "the limit stops the stream"
    );

    let bad = services
        .scoring
        .query_audience(authorized(
            scoring::QueryAudienceRequest {
                rule: Some(rule(&|r| r.tier_codes = vec!["GOLD".into()])),
                after_customer_id: String::new(),
                limit: None,
            },
            &[TIERS_READ],
        ))
        .await
        .expect_err("unknown tier");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn simulating_a_draft_shows_the_migration_and_changes_nothing() {
    let mut services = start().await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let green = new_customer(&mut services, "Green").await;
    let vip = new_customer(&mut services, "Vip").await;
    new_customer(&mut services, "Welcome").await;
    purchase(
        &mut services.customer,
        "sim-g",
        &green,
        120_000,
        months_ago(0),
    )
    .await;
    purchase(
        &mut services.customer,
        "sim-v",
        &vip,
        350_000,
        months_ago(0),
    )
    .await;
    tier_when(&mut services.scoring, &program_id, &green, |t| {
        code(t) == "GREEN"
    })
    .await;
    tier_when(&mut services.scoring, &program_id, &vip, |t| {
        code(t) == "VIP"
    })
    .await;

    // A stricter draft: GREEN needs 200,000.
    let mut stricter = innisfree_rules();
    stricter.tiers[1].requirements[0].threshold = 200_000;
    let simulation = services
        .scoring
        .simulate_policy(authorized(
            scoring::SimulatePolicyRequest {
                program_id: program_id.clone(),
                policy: Some(scoring::simulate_policy_request::Policy::Rules(stricter)),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("simulate")
        .into_inner();
    assert_eq!(
        (
            simulation.members,
            simulation.upgrades,
            simulation.downgrades
        ),
        (3, 0, 1)
    );
    let matrix: Vec<(String, String, i64)> = simulation
        .migrations
        .iter()
        .map(|m| {
            (
                m.from_tier_code.clone(),
                m.to_tier_code.clone(),
                m.customers,
            )
        })
        .collect();
    assert_eq!(
        matrix,
        [
            ("WELCOME".into(), "WELCOME".into(), 1),
            ("GREEN".into(), "WELCOME".into(), 1),
            ("VIP".into(), "VIP".into(), 1)
        ]
    );
    let vip_tier = simulation
        .tiers
        .iter()
        .find(|t| t.tier.as_ref().is_some_and(|r| r.code == "VIP"))
        .expect("VIP row");
    // 350,000 of 470,000: 7,446 basis points.
    assert_eq!(
        (vip_tier.current_customers, vip_tier.current_spend_share_bps),
        (1, 7_446)
    );
    assert_eq!(simulation.active_policy_version, 1);
    let unchanged = tier_when(&mut services.scoring, &program_id, &green, |_| true).await;
    assert_eq!(code(&unchanged), "GREEN", "a simulation changes nothing");
}

#[tokio::test]
async fn lifecycle_changes_join_the_tier_change_feed() {
    let mut services = start_tiers(&[("TIERLINE_LIFECYCLE_SWEEP", "200ms")]).await;
    let program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = services
        .customer
        .create_customer(authorized(
            customer::CreateCustomerRequest {
                name: "Sleeper".into(),
                joined_at: Some(months_ago(24)),
                ..Default::default()
            },
            &[CUSTOMERS_WRITE],
        ))
        .await
        .expect("customer")
        .into_inner()
        .id;
    let mut changes = services
        .scoring
        .watch_tier_changes(authorized(
            scoring::WatchTierChangesRequest {
                after_cursor: String::new(),
                program_id: program_id.clone(),
            },
            &[FEED_READ],
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut next_lifecycle = async || loop {
        let event = tokio::time::timeout(Duration::from_secs(20), changes.message())
            .await
            .expect("in time")
            .expect("ok")
            .expect("open");
        if let Some(scoring::tier_feed_event::Change::LifecycleChanged(change)) = event.change
            && event.customer_id == customer_id
        {
            return change;
        }
    };
    // Joined two years ago, never bought: first classified dormant.
    let first = next_lifecycle().await;
    assert_eq!(
        (first.from_state(), first.to_state()),
        (
            scoring::LifecycleState::Unspecified,
            scoring::LifecycleState::Dormant
        )
    );
    // A purchase wakes them up: the next sweep reports dormant → active.
    purchase(
        &mut services.customer,
        "wake-up",
        &customer_id,
        10_000,
        months_ago(0),
    )
    .await;
    let woke = next_lifecycle().await;
    assert_eq!(
        (woke.from_state(), woke.to_state()),
        (
            scoring::LifecycleState::Dormant,
            scoring::LifecycleState::Active
        )
    );
    assert_eq!(woke.days_since_last_purchase, Some(0));
}

#[tokio::test]
async fn the_feed_tells_the_scoring_service_how_far_it_has_come() {
    let mut services = start().await;
    let _program_id = create_innisfree(&mut services.scoring).await;
    let customer_id = new_customer(&mut services, "Checkpoint").await;
    let recorded = chrono::Utc::now();
    purchase(
        &mut services.customer,
        "checkpoint-1",
        &customer_id,
        10_000,
        months_ago(0),
    )
    .await;
    // The customer service sends a checkpoint after each read that found the feed complete; the
    // scoring consumer stores it with its cursor. Both clocks are this machine's.
    feed_caught_up_past(&services.database_url, recorded).await;
}

/// Waits (at most 15 s) until the scoring service's activity-feed cursor says everything
/// committed before `recorded` has been applied.
async fn feed_caught_up_past(database_url: &str, recorded: chrono::DateTime<chrono::Utc>) {
    let db = tokio::sync::Mutex::new(
        <sqlx::PgConnection as sqlx::Connection>::connect(database_url)
            .await
            .expect("db"),
    );
    eventually_within(
        &format!("the feed to say it had come past {recorded}"),
        Duration::from_secs(15),
        || async {
            let caught_up_to: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
                "SELECT caught_up_to FROM scoring.feed_cursors WHERE consumer = 'customer-activity-feed'",
            )
            .fetch_optional(&mut *db.lock().await)
            .await
            .expect("cursor")
            .flatten();
            caught_up_to.is_some_and(|at| at >= recorded).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_program_created_after_two_years_of_purchases_counts_them() {
    let mut services = start().await;
    // Two years of purchases before the program exists: (amount, months ago) per customer.
    let histories: [(&str, &[(i64, i64)]); 4] = [
        ("Regular", &[(150_000, 1), (200_000, 5), (400_000, 20)]),
        ("Lapsed", &[(500_000, 18), (900_000, 23), (50_000, 3)]),
        ("Newcomer", &[(120_000, 0)]),
        ("Quiet", &[]),
    ];
    let mut customers = Vec::new();
    for (name, purchases) in histories {
        let customer_id = new_customer(&mut services, name).await;
        for (index, (amount, months)) in purchases.iter().enumerate() {
            purchase(
                &mut services.customer,
                &format!("{name}-{index}"),
                &customer_id,
                *amount,
                months_ago(*months),
            )
            .await;
        }
        customers.push((customer_id, purchases));
    }
    // The live consumer has passed all of it (so the history is the backfill's to count, not
    // partly the live consumer's, whichever is quicker on a loaded machine).
    feed_caught_up_past(&services.database_url, chrono::Utc::now()).await;

    // Then the program. Its first run (the activation's) counts that history before judging.
    let program_id = create_innisfree(&mut services.scoring).await;
    let run = eventually("the activation's run to finish", || {
        let (mut client, program_id) = (services.scoring.clone(), program_id.clone());
        async move {
            client
                .list_evaluation_runs(authorized(
                    scoring::ListEvaluationRunsRequest {
                        program_id,
                        ..Default::default()
                    },
                    &[PROGRAMS_ADMIN],
                ))
                .await
                .expect("runs")
                .into_inner()
                .runs
                .into_iter()
                .find(|run| run.status() != scoring::EvaluationRunStatus::Running)
        }
    })
    .await;
    assert_eq!(
        run.status(),
        scoring::EvaluationRunStatus::Succeeded,
        "{run:?}"
    );
    assert!(run.history_complete, "{run:?}");
    assert!(run.history_events >= 10, "{run:?}");

    // Every tier equals a recomputation from the raw purchases: net spend in the last 12 months
    // against the ladder (GREEN 100,000, VIP 300,000; VVIP also needs 10 purchases).
    for (customer_id, purchases) in &customers {
        let spend: i64 = purchases
            .iter()
            .filter(|(_, months)| *months < 12)
            .map(|(amount, _)| amount)
            .sum();
        let expected = match spend {
            300_000.. => "VIP",
            100_000.. => "GREEN",
            _ => "WELCOME",
        };
        let tier = services
            .scoring
            .get_tier(authorized(
                scoring::GetTierRequest {
                    program_id: program_id.clone(),
                    customer_id: customer_id.clone(),
                },
                &[TIERS_READ],
            ))
            .await
            .expect("tier")
            .into_inner();
        assert_eq!(code(&tier), expected, "{customer_id}: {tier:?}");
        assert_eq!(
            tier.metrics.as_ref().map(|m| m.net_spend_minor),
            Some(spend),
            "{customer_id}"
        );
    }

    // A later run reads no history again.
    let again = services
        .scoring
        .evaluate_now(authorized(
            scoring::EvaluateNowRequest {
                program_id: program_id.clone(),
                requested_by: "e2e".into(),
                idempotency_key: String::new(),
            },
            &[PROGRAMS_ADMIN],
        ))
        .await
        .expect("evaluate")
        .into_inner();
    let again = finished_run(&services, &again.id).await;
    assert!(
        again.history_complete && again.history_events == 0,
        "{again:?}"
    );
}
