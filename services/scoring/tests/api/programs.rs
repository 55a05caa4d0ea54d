//! Programs: create, get, list, validation, uniqueness, authorisation.

use tierline_proto::scoring::v1 as pb;
use tierline_runtime::auth::scopes::TIERS_READ;
use tonic::Code;

use crate::support::{TestApp, create_program, innisfree_program, violated_fields};

#[tokio::test]
async fn a_program_is_created_read_and_listed() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = create_program(&mut client, "INNISFREE").await;
    assert_eq!(
        created.tiers.iter().map(|t| t.rank).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(created.active_policy_version_id.is_none());
    let fetched = client
        .get_program(pb::GetProgramRequest {
            program_id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, created);

    create_program(&mut client, "STARBUCKS").await;
    create_program(&mut client, "ETUDE").await;
    let first = client
        .list_programs(pb::ListProgramsRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .expect("page")
        .into_inner();
    let second = client
        .list_programs(pb::ListProgramsRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .expect("page")
        .into_inner();
    let mut codes: Vec<String> = first
        .programs
        .iter()
        .chain(&second.programs)
        .map(|p| p.code.clone())
        .collect();
    codes.sort();
    assert_eq!(codes, ["ETUDE", "INNISFREE", "STARBUCKS"]);
    assert!(second.next_page_token.is_empty());
}

#[tokio::test]
async fn invalid_duplicate_and_unknown_programs_are_refused() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    create_program(&mut client, "INNISFREE").await;
    let duplicate = client
        .create_program(pb::CreateProgramRequest {
            program: Some(innisfree_program("INNISFREE")),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("duplicate");
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let mut bad = innisfree_program("bad code");
    bad.currency = "WON".into();
    bad.tiers.truncate(1);
    let status = client
        .create_program(pb::CreateProgramRequest {
            program: Some(bad),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("bad");
    assert_eq!(
        violated_fields(&status),
        ["program.code", "program.currency", "program.tiers"]
    );

    let unknown = client
        .get_program(pb::GetProgramRequest {
            program_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    let malformed = client
        .get_program(pb::GetProgramRequest {
            program_id: "x".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(violated_fields(&malformed), ["program_id"]);
}

#[tokio::test]
async fn managing_programs_needs_the_admin_scope() {
    let app = TestApp::spawn().await;
    let mut reader = app.client_with(&[TIERS_READ]).await;
    let status = reader
        .create_program(pb::CreateProgramRequest {
            program: Some(innisfree_program("X")),
            idempotency_key: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied);
}
