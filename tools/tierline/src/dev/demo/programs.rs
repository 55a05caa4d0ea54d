//! The two example programs (`examples/programs`), created with their policies in force, and an
//! evaluation of each once the purchases are counted.

use std::time::Duration;

use tierline_proto::scoring::v1 as pb;

use super::{ScoringClient, progress::Progress, until};
use crate::{exit::Failure, json};

/// The demo's programs.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    pub(crate) innisfree: String,
    pub(crate) starbucks: String,
}

const EXAMPLES: [(&str, &str, &str); 2] = [
    (
        "INNISFREE",
        include_str!("../../../../../examples/programs/innisfree/program.json"),
        include_str!("../../../../../examples/programs/innisfree/policy.json"),
    ),
    (
        "STARBUCKS",
        include_str!("../../../../../examples/programs/starbucks/program.json"),
        include_str!("../../../../../examples/programs/starbucks/policy.json"),
    ),
];

/// The programs a deployment has, by code.
pub(crate) async fn by_code(client: &mut ScoringClient) -> Result<Vec<(String, String)>, Failure> {
    let listed = client
        .list_programs(pb::ListProgramsRequest {
            page_size: 1_000,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    Ok(listed
        .programs
        .into_iter()
        .map(|program| (program.code, program.id))
        .collect())
}

/// The demo's programs when they exist already.
pub(crate) async fn existing(client: &mut ScoringClient) -> Result<Option<Programs>, Failure> {
    let programs = by_code(client).await?;
    let find = |code: &str| {
        programs
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, id)| id.clone())
    };
    Ok(find("INNISFREE")
        .zip(find("STARBUCKS"))
        .map(|(innisfree, starbucks)| Programs {
            innisfree,
            starbucks,
        }))
}

/// Creates both programs and puts their policies in force.
pub(crate) async fn create(client: &mut ScoringClient) -> Result<Programs, Failure> {
    let mut progress = Progress::start("programs", 2);
    let mut ids = Vec::new();
    for (code, program, policy) in EXAMPLES {
        let request: pb::CreateProgramRequest = json::parse(program, code)?;
        let id = client.create_program(request).await?.into_inner().id;
        let rules: pb::PolicyRules = json::parse(policy, code)?;
        let draft = client
            .create_policy_version(pb::CreatePolicyVersionRequest {
                program_id: id.clone(),
                rules: Some(rules),
                description: "the example policy".into(),
                created_by: "tierline-dev-demo".into(),
                idempotency_key: String::new(),
            })
            .await?
            .into_inner();
        client
            .activate_policy(pb::ActivatePolicyRequest {
                policy_version_id: draft.id,
                activated_by: "tierline-dev-demo".into(),
                expected_revision: None,
            })
            .await?;
        ids.push(id);
        progress.advance(1);
    }
    progress.finish();
    let starbucks = ids.pop().unwrap_or_default();
    let innisfree = ids.pop().unwrap_or_default();
    Ok(Programs {
        innisfree,
        starbucks,
    })
}

/// Evaluates each program now and waits for the runs to finish.
pub(crate) async fn evaluate(client: &mut ScoringClient, programs: &[&str]) -> Result<(), Failure> {
    let mut progress = Progress::start("evaluations", programs.len() as u64);
    for program in programs {
        let run = client
            .evaluate_now(pb::EvaluateNowRequest {
                program_id: (*program).to_owned(),
                requested_by: "tierline-dev-demo".into(),
                idempotency_key: String::new(),
            })
            .await?
            .into_inner();
        let finished = until("an evaluation run", Duration::from_secs(120), || {
            let mut client = client.clone();
            let id = run.id.clone();
            async move {
                let run = client
                    .get_evaluation_run(pb::GetEvaluationRunRequest {
                        evaluation_run_id: id,
                    })
                    .await?
                    .into_inner();
                let pending = [
                    pb::EvaluationRunStatus::Pending as i32,
                    pb::EvaluationRunStatus::Running as i32,
                ];
                Ok((!pending.contains(&run.status)).then_some(run))
            }
        })
        .await?;
        if finished.status != pb::EvaluationRunStatus::Succeeded as i32 {
            return Err(Failure::Other(anyhow::anyhow!(
                "the evaluation of program {program} did not succeed: {}",
                finished.error_message
            )));
        }
        progress.advance(1);
    }
    progress.finish();
    Ok(())
}
