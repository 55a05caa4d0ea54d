//! Retried writes with an idempotency key return the first result and change nothing; a key
//! reused for different content is refused, naming the field.

use futures::future::join_all;
use sqlx::{Connection, PgConnection};
use tierline_proto::scoring::v1 as pb;
use uuid::Uuid;

use crate::support::{TestApp, innisfree_program, innisfree_rules, violated_fields};

#[tokio::test]
async fn a_retried_program_creation_returns_the_first_program() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let create = |code: &str| {
        let mut client = client.clone();
        let request = pb::CreateProgramRequest {
            program: Some(innisfree_program(code)),
            idempotency_key: "create-innisfree".into(),
        };
        async move {
            client
                .create_program(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    // Concurrent retries of one request: exactly one program, every caller gets it.
    let results = join_all((0..5).map(|_| create("INNISFREE"))).await;
    let ids: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("created or replayed").id)
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let mut client = client.clone();
    let listed = client
        .list_programs(pb::ListProgramsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.programs.len(), 1);

    let reused = create("OTHER").await.expect_err("a reused key");
    assert_eq!(violated_fields(&reused), ["idempotency_key"]);
    // Without a key, the same code is taken.
    let status = client
        .create_program(pb::CreateProgramRequest {
            program: Some(innisfree_program("INNISFREE")),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("taken");
    assert_eq!(status.code(), tonic::Code::AlreadyExists);
}

#[tokio::test]
async fn a_retried_draft_and_override_are_made_once() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let program = client
        .create_program(pb::CreateProgramRequest {
            program: Some(innisfree_program("RETRY")),
            idempotency_key: String::new(),
        })
        .await
        .expect("program")
        .into_inner();
    let draft_request = pb::CreatePolicyVersionRequest {
        program_id: program.id.clone(),
        rules: Some(innisfree_rules()),
        created_by: "ops".into(),
        idempotency_key: "draft-1".into(),
        ..Default::default()
    };
    let first = client
        .create_policy_version(draft_request.clone())
        .await
        .expect("draft")
        .into_inner();
    let again = client
        .create_policy_version(draft_request.clone())
        .await
        .expect("replay")
        .into_inner();
    assert_eq!((first.id.as_str(), first.version), (again.id.as_str(), 1));
    let versions = client
        .list_policy_versions(pb::ListPolicyVersionsRequest {
            program_id: program.id.clone(),
            ..Default::default()
        })
        .await
        .expect("versions")
        .into_inner();
    assert_eq!(versions.policy_versions.len(), 1);
    let mut changed = draft_request.clone();
    changed.description = "another draft".into();
    let reused = client
        .create_policy_version(changed)
        .await
        .expect_err("reused key");
    assert_eq!(violated_fields(&reused), ["idempotency_key"]);

    client
        .activate_policy(pb::ActivatePolicyRequest {
            policy_version_id: first.id.clone(),
            activated_by: "ops".into(),
            expected_revision: None,
        })
        .await
        .expect("activate");
    let customer_id = Uuid::now_v7();
    let mut db = PgConnection::connect(&app.database_url).await.expect("db");
    sqlx::query("INSERT INTO scoring.members (customer_id, joined_at) VALUES ($1, now())")
        .bind(customer_id)
        .execute(&mut db)
        .await
        .expect("member");
    let expires_at = tierline_proto::prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + 86_400,
        nanos: 0,
    };
    let override_request = pb::SetTierOverrideRequest {
        program_id: program.id.clone(),
        customer_id: customer_id.to_string(),
        tier_code: "VIP".into(),
        expires_at: Some(expires_at),
        reason: "complaint resolution".into(),
        operator_name: "agent-7".into(),
        idempotency_key: "override-1".into(),
    };
    for _ in 0..3 {
        let tier = client
            .set_tier_override(override_request.clone())
            .await
            .expect("override")
            .into_inner();
        assert_eq!(tier.tier.map(|t| t.code).as_deref(), Some("VIP"));
    }
    let history = client
        .get_tier_history(pb::GetTierHistoryRequest {
            program_id: program.id.clone(),
            customer_id: customer_id.to_string(),
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(
        history.records.len(),
        1,
        "one override recorded: {history:?}"
    );
    let mut changed = override_request.clone();
    changed.tier_code = "VVIP".into();
    let reused = client
        .set_tier_override(changed)
        .await
        .expect_err("reused key");
    assert_eq!(violated_fields(&reused), ["idempotency_key"]);
}
