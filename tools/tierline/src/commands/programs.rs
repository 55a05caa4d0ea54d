//! `tierline programs`: list, show, create from a file, load a policy file, simulate (the
//! migration matrix as a table), activate, evaluate now.

use std::collections::BTreeSet;

use tierline_proto::scoring::v1 as pb;

use crate::output::outln;
use crate::{cli::Programs, connect::Endpoints, exit::Failure, json, render::Render};

/// The migration matrix: one row per current tier, one column per simulated tier.
fn matrix(simulation: &pb::SimulatePolicyResponse) -> (Vec<String>, Vec<Vec<String>>) {
    let mut codes: Vec<String> = simulation
        .tiers
        .iter()
        .filter_map(|t| t.tier.as_ref())
        .map(|t| t.code.clone())
        .collect();
    let seen: BTreeSet<&str> = codes.iter().map(String::as_str).collect();
    let mut extra: Vec<String> = simulation
        .migrations
        .iter()
        .flat_map(|m| [m.from_tier_code.clone(), m.to_tier_code.clone()])
        .filter(|code| !seen.contains(code.as_str()))
        .collect();
    extra.sort();
    extra.dedup();
    codes.extend(extra);
    let mut headers = vec!["NOW \\ WOULD BE".to_owned()];
    headers.extend(codes.iter().cloned());
    let rows = codes
        .iter()
        .map(|from| {
            let mut row = vec![from.clone()];
            row.extend(codes.iter().map(|to| {
                simulation
                    .migrations
                    .iter()
                    .find(|m| &m.from_tier_code == from && &m.to_tier_code == to)
                    .map_or_else(|| "0".to_owned(), |m| m.customers.to_string())
            }));
            row
        })
        .collect();
    (headers, rows)
}

pub(super) async fn run(
    endpoints: &Endpoints,
    render: Render,
    command: Programs,
) -> Result<(), Failure> {
    let mut client = endpoints.scoring()?;
    match command {
        Programs::List => {
            let listed = client
                .list_programs(pb::ListProgramsRequest {
                    page_size: 1_000,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            let rows = listed
                .programs
                .iter()
                .map(|p| {
                    vec![
                        p.id.clone(),
                        p.code.clone(),
                        p.name.clone(),
                        p.currency.clone(),
                    ]
                })
                .collect();
            render.table(&listed, &["ID", "CODE", "NAME", "CURRENCY"], rows)
        }
        Programs::Show { id } => {
            let program_id = super::resolve::program(endpoints, id).await?;
            let program = client
                .get_program(pb::GetProgramRequest { program_id })
                .await?
                .into_inner();
            render.message(&program)
        }
        Programs::Create { file } => {
            let request: pb::CreateProgramRequest = json::read(&file)?;
            let created = client.create_program(request).await?.into_inner();
            render.message(&created)
        }
        Programs::LoadPolicy { program, file } => {
            let rules: pb::PolicyRules = json::read(&file)?;
            let program_id = super::resolve::program(endpoints, program).await?;
            let policy = client
                .create_policy_version(pb::CreatePolicyVersionRequest {
                    program_id,
                    rules: Some(rules),
                    description: format!("loaded from {file}"),
                    created_by: "tierline-cli".into(),
                    idempotency_key: String::new(),
                })
                .await?
                .into_inner();
            render.message(&policy)
        }
        Programs::Simulate {
            program,
            policy_version,
        } => {
            let program_id = super::resolve::program(endpoints, program).await?;
            let simulation = client
                .simulate_policy(pb::SimulatePolicyRequest {
                    program_id,
                    policy: Some(pb::simulate_policy_request::Policy::PolicyVersionId(
                        policy_version,
                    )),
                })
                .await?
                .into_inner();
            let (headers, rows) = matrix(&simulation);
            if !render.json {
                #[allow(clippy::print_stdout)]
                {
                    outln!(
                        "{} members: {} would move up, {} down",
                        simulation.members,
                        simulation.upgrades,
                        simulation.downgrades
                    );
                }
            }
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            render.table(&simulation, &headers, rows)
        }
        Programs::Activate { policy_version } => {
            let policy = client
                .activate_policy(pb::ActivatePolicyRequest {
                    policy_version_id: policy_version,
                    activated_by: "tierline-cli".into(),
                    expected_revision: None,
                })
                .await?
                .into_inner();
            render.message(&policy)
        }
        Programs::ValueModel { program, fit } => {
            let program_id = super::resolve::program(endpoints, program).await?;
            let model = if fit {
                client
                    .fit_value_model(pb::FitValueModelRequest { program_id })
                    .await?
            } else {
                client
                    .get_value_model(pb::GetValueModelRequest { program_id })
                    .await?
            }
            .into_inner();
            render.message(&model)
        }
        Programs::Evaluate { program, key } => {
            let program_id = super::resolve::program(endpoints, program).await?;
            let run = client
                .evaluate_now(pb::EvaluateNowRequest {
                    program_id,
                    requested_by: "tierline-cli".into(),
                    idempotency_key: key,
                })
                .await?
                .into_inner();
            render.message(&run)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_has_a_row_and_a_column_per_tier() {
        let tier = |code: &str| pb::TierSimulation {
            tier: Some(pb::TierRef {
                code: code.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let simulation = pb::SimulatePolicyResponse {
            tiers: vec![tier("GREEN"), tier("GOLD")],
            migrations: vec![
                pb::TierMigration {
                    from_tier_code: "GOLD".into(),
                    to_tier_code: "GREEN".into(),
                    customers: 7,
                },
                pb::TierMigration {
                    from_tier_code: "GREEN".into(),
                    to_tier_code: "GREEN".into(),
                    customers: 90,
                },
            ],
            ..Default::default()
        };
        let (headers, rows) = matrix(&simulation);
        assert_eq!(headers, ["NOW \\ WOULD BE", "GREEN", "GOLD"]);
        assert_eq!(rows, [vec!["GREEN", "90", "0"], vec!["GOLD", "7", "0"]]);
    }
}
