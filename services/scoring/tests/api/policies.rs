//! Policy versions: draft → active → retired, validation, revisions, one version in force.

use futures::future::join_all;
use tierline_proto::scoring::v1 as pb;
use tonic::Code;

use crate::support::{
    Client, TestApp, create_program, finished_run, innisfree_rules, violated_fields,
};

async fn draft(
    client: &mut Client,
    program_id: &str,
    rules: pb::PolicyRules,
) -> Result<pb::PolicyVersion, tonic::Status> {
    client
        .create_policy_version(pb::CreatePolicyVersionRequest {
            program_id: program_id.to_owned(),
            rules: Some(rules),
            description: "12 rolling months".into(),
            created_by: "crm-team".into(),
            idempotency_key: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn activate(
    client: &mut Client,
    policy_id: &str,
) -> Result<pb::ActivatePolicyResponse, tonic::Status> {
    client
        .activate_policy(pb::ActivatePolicyRequest {
            policy_version_id: policy_id.to_owned(),
            activated_by: "ops-lead".into(),
            expected_revision: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_draft_is_edited_activated_and_replaced() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let program = create_program(&mut client, "INNISFREE").await;
    let first = draft(&mut client, &program.id, innisfree_rules())
        .await
        .expect("draft");
    assert_eq!(
        (first.version, first.status(), first.revision),
        (1, pb::PolicyStatus::Draft, 1)
    );
    assert_eq!(
        first.rules.as_ref().map(|r| r.time_zone.as_str()),
        Some("Asia/Seoul")
    );

    let mut changed = innisfree_rules();
    changed.grace_months = 6;
    let edited = client
        .update_draft_policy(pb::UpdateDraftPolicyRequest {
            policy_version_id: first.id.clone(),
            rules: Some(changed.clone()),
            description: None,
            expected_revision: Some(1),
        })
        .await
        .expect("edit")
        .into_inner();
    assert_eq!(
        (
            edited.revision,
            edited.rules.as_ref().map(|r| r.grace_months)
        ),
        (2, Some(6))
    );
    let stale = client
        .update_draft_policy(pb::UpdateDraftPolicyRequest {
            policy_version_id: first.id.clone(),
            rules: Some(changed),
            description: None,
            expected_revision: Some(1),
        })
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);

    let activation = activate(&mut client, &first.id).await.expect("activate");
    let active = activation.policy_version.expect("policy");
    assert_eq!(
        (active.status(), active.activated_by.as_deref()),
        (pb::PolicyStatus::Active, Some("ops-lead"))
    );
    assert!(active.activated_at.is_some());
    // The re-evaluation runs in the background: poll its run until it ends.
    let run = finished_run(&mut client, &activation.evaluation_run_id).await;
    assert_eq!(
        (run.trigger(), run.status(), run.policy_version),
        (
            pb::EvaluationTrigger::PolicyActivation,
            pb::EvaluationRunStatus::Succeeded,
            1
        )
    );

    let in_force = client
        .get_policy(pb::GetPolicyRequest {
            selector: Some(pb::get_policy_request::Selector::ActiveForProgramId(
                program.id.clone(),
            )),
        })
        .await
        .expect("active")
        .into_inner();
    assert_eq!(in_force.id, first.id);
    let program_now = client
        .get_program(pb::GetProgramRequest {
            program_id: program.id.clone(),
        })
        .await
        .expect("program")
        .into_inner();
    assert_eq!(program_now.active_policy_version, Some(1));

    let not_a_draft = client
        .update_draft_policy(pb::UpdateDraftPolicyRequest {
            policy_version_id: first.id.clone(),
            rules: Some(innisfree_rules()),
            description: None,
            expected_revision: None,
        })
        .await
        .expect_err("active is not editable");
    assert_eq!(not_a_draft.code(), Code::FailedPrecondition);

    let second = draft(&mut client, &program.id, innisfree_rules())
        .await
        .expect("second draft");
    assert_eq!(second.version, 2);
    let replaced = activate(&mut client, &second.id)
        .await
        .expect("activate v2");
    assert_eq!(
        replaced.retired_policy_version_id.as_deref(),
        Some(first.id.as_str())
    );
    let third = draft(&mut client, &program.id, innisfree_rules())
        .await
        .expect("third draft");
    let retired = client
        .retire_policy(pb::RetirePolicyRequest {
            policy_version_id: third.id.clone(),
            retired_by: "crm-team".into(),
        })
        .await
        .expect("retire")
        .into_inner();
    assert_eq!(retired.status(), pb::PolicyStatus::Retired);

    let listed = client
        .list_policy_versions(pb::ListPolicyVersionsRequest {
            program_id: program.id.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let summary: Vec<(i32, pb::PolicyStatus)> = listed
        .policy_versions
        .iter()
        .map(|p| (p.version, p.status()))
        .collect();
    assert_eq!(
        summary,
        [
            (3, pb::PolicyStatus::Retired),
            (2, pb::PolicyStatus::Active),
            (1, pb::PolicyStatus::Retired)
        ]
    );
    let runs = client
        .list_evaluation_runs(pb::ListEvaluationRunsRequest {
            program_id: program.id.clone(),
            ..Default::default()
        })
        .await
        .expect("runs")
        .into_inner();
    assert_eq!(runs.runs.len(), 2, "one run per activation");
    let failed = client
        .list_evaluation_runs(pb::ListEvaluationRunsRequest {
            program_id: program.id.clone(),
            status: pb::EvaluationRunStatus::Failed.into(),
            ..Default::default()
        })
        .await
        .expect("failed runs")
        .into_inner();
    assert!(failed.runs.is_empty(), "the status filter applies");
}

#[tokio::test]
async fn policy_rules_are_validated_against_the_program() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let program = create_program(&mut client, "INNISFREE").await;
    let mut rules = innisfree_rules();
    rules.tiers[2].requirements[0].threshold = 50_000;
    rules.tiers[3].tier_code = "GOLD".into();
    rules.time_zone = "Moon/Base".into();
    let status = draft(&mut client, &program.id, rules)
        .await
        .expect_err("invalid");
    assert_eq!(
        violated_fields(&status),
        [
            "rules.tiers[3].tier_code",
            "rules.tiers",
            "rules.tiers[2].requirements",
            "rules.time_zone"
        ]
    );
    let unknown = draft(
        &mut client,
        &uuid::Uuid::now_v7().to_string(),
        innisfree_rules(),
    )
    .await
    .expect_err("unknown program");
    assert_eq!(unknown.code(), Code::NotFound);
    let anonymous = client
        .create_policy_version(pb::CreatePolicyVersionRequest {
            program_id: program.id.clone(),
            rules: Some(innisfree_rules()),
            ..Default::default()
        })
        .await
        .expect_err("who?");
    assert_eq!(violated_fields(&anonymous), ["created_by"]);
}

#[tokio::test]
async fn concurrent_activations_leave_exactly_one_version_in_force() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let program = create_program(&mut client, "INNISFREE").await;
    let mut drafts = Vec::new();
    for _ in 0..4 {
        drafts.push(
            draft(&mut client, &program.id, innisfree_rules())
                .await
                .expect("draft")
                .id,
        );
    }
    let attempts = drafts.iter().map(|id| {
        let mut client = client.clone();
        let id = id.clone();
        async move { activate(&mut client, &id).await }
    });
    let results = join_all(attempts).await;
    assert!(
        results.iter().all(|r| r
            .as_ref()
            .map_or_else(|s| s.code() == Code::Aborted, |_| true)),
        "{results:?}"
    );
    let active = client
        .list_policy_versions(pb::ListPolicyVersionsRequest {
            program_id: program.id.clone(),
            status: pb::PolicyStatus::Active.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(active.policy_versions.len(), 1);
}

#[tokio::test]
async fn the_contracts_limits_hold_for_grace_operators_and_overrides() {
    use sqlx::Connection;

    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let program = create_program(&mut client, "LIMITS").await;
    // Grace: at most 36 months.
    let mut rules = innisfree_rules();
    rules.grace_months = 37;
    let status = draft(&mut client, &program.id, rules.clone())
        .await
        .expect_err("37 months");
    assert_eq!(violated_fields(&status), ["rules.grace_months"]);
    rules.grace_months = 36;
    draft(&mut client, &program.id, rules)
        .await
        .expect("36 months");

    // Operator names: up to 128 characters.
    let named = |name: String| pb::CreatePolicyVersionRequest {
        program_id: program.id.clone(),
        rules: Some(innisfree_rules()),
        created_by: name,
        ..Default::default()
    };
    client
        .create_policy_version(named("상".repeat(128)))
        .await
        .expect("128 characters");
    let too_long = client
        .create_policy_version(named("상".repeat(129)))
        .await
        .expect_err("129 characters");
    assert_eq!(violated_fields(&too_long), ["created_by"]);

    // Overrides: at most five years ahead.
    let (program, _) =
        crate::support::program_in_force(&mut client, "LIMITS2", innisfree_rules()).await;
    let mut db = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("db");
    let customer = crate::support::insert_vip(
        &mut db,
        uuid::Uuid::parse_str(&program.id).expect("uuid"),
        None,
        1,
    )
    .await;
    let grant = |years: i64| pb::SetTierOverrideRequest {
        program_id: program.id.clone(),
        customer_id: customer.to_string(),
        tier_code: "VIP".into(),
        expires_at: Some(tierline_proto::prost_types::Timestamp {
            seconds: (chrono::Utc::now() + chrono::Duration::days(365 * years - 2)).timestamp(),
            nanos: 0,
        }),
        reason: "goodwill".into(),
        operator_name: "agent".into(),
        idempotency_key: String::new(),
    };
    client
        .set_tier_override(grant(5))
        .await
        .expect("just under five years");
    let ten_years = client
        .set_tier_override(grant(10))
        .await
        .expect_err("ten years");
    assert_eq!(violated_fields(&ten_years), ["expires_at"]);

    // Clearing an override needs a reason, as granting one does; both are recorded.
    let clear = |reason: &str| pb::ClearTierOverrideRequest {
        program_id: program.id.clone(),
        customer_id: customer.to_string(),
        reason: reason.to_owned(),
        operator_name: "agent".into(),
        idempotency_key: String::new(),
    };
    let no_reason = client
        .clear_tier_override(clear("  "))
        .await
        .expect_err("no reason");
    assert_eq!(violated_fields(&no_reason), ["reason"]);
    client
        .clear_tier_override(clear("complaint withdrawn"))
        .await
        .expect("cleared");
    let history = client
        .get_tier_history(pb::GetTierHistoryRequest {
            program_id: program.id.clone(),
            customer_id: customer.to_string(),
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner();
    let (cleared, granted) = (&history.records[0], &history.records[1]);
    assert_eq!(cleared.reason(), pb::TierChangeReason::OverrideExpired);
    assert_eq!(
        (
            cleared.operator_name.as_deref(),
            cleared.operator_reason.as_deref()
        ),
        (Some("agent"), Some("complaint withdrawn"))
    );
    assert_eq!(granted.reason(), pb::TierChangeReason::Override);
    assert_eq!(granted.operator_reason.as_deref(), Some("goodwill"));
    assert_eq!(
        cleared.override_expires_at.map(|t| t.seconds),
        Some(cleared.occurred_at.expect("at").seconds),
        "ended by hand, now"
    );
    assert!(
        granted.override_expires_at.expect("end").seconds
            > granted.occurred_at.expect("at").seconds
    );
}
