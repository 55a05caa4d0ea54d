//! `tierline programs`: list, show, create from a file, load a policy file, simulate (the
//! migration matrix as a table), activate, evaluate now.

use std::collections::BTreeSet;

use tierline_proto::scoring::v1 as pb;

use super::program_card;
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
            let (program, policy) = program_and_policy(&mut client, &program_id).await?;
            let (lines, rows) = program_card::program_card(&program, policy.as_ref());
            card(render, &program, &lines, &program_card::TIER_HEADERS, rows)
        }
        Programs::Create { file } => {
            let request: pb::CreateProgramRequest = json::read(&file)?;
            let created = client.create_program(request).await?.into_inner();
            let (lines, rows) = program_card::program_card(&created, None);
            card(render, &created, &lines, &program_card::TIER_HEADERS, rows)
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
            if render.json {
                return render.message(&policy);
            }
            let (program, _) = program_and_policy(&mut client, &policy.program_id).await?;
            let (lines, rows) = program_card::policy_card(&policy, &program);
            card(render, &policy, &lines, &program_card::TIER_HEADERS, rows)
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
            let activated = client
                .activate_policy(pb::ActivatePolicyRequest {
                    policy_version_id: policy_version,
                    activated_by: "tierline-cli".into(),
                    expected_revision: None,
                })
                .await?
                .into_inner();
            let Some(policy) = activated.policy_version.as_ref().filter(|_| !render.json) else {
                return render.message(&activated);
            };
            let (program, _) = program_and_policy(&mut client, &policy.program_id).await?;
            let (mut lines, rows) = program_card::policy_card(policy, &program);
            if !activated.evaluation_run_id.is_empty() {
                lines.push(format!(
                    "  run       {} raises whoever qualifies higher now",
                    activated.evaluation_run_id
                ));
            }
            card(
                render,
                &activated,
                &lines,
                &program_card::TIER_HEADERS,
                rows,
            )
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
            if render.json {
                return render.message(&model);
            }
            let (program, policy) = program_and_policy(&mut client, &model.program_id).await?;
            let lines =
                program_card::value_model_card(&model, &program.code, zone_of(policy.as_ref()));
            render.lines(&model, &lines)
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
            if render.json {
                return render.message(&run);
            }
            let (_, policy) = program_and_policy(&mut client, &run.program_id).await?;
            let (lines, rows) = program_card::run_card(&run, zone_of(policy.as_ref()));
            card(render, &run, &lines, &["TIER", "BEFORE", "AFTER"], rows)
        }
    }
}

/// Prints `message` as JSON, or its card: `lines`, then a table.
fn card<T: prost::Message + prost::Name>(
    render: Render,
    message: &T,
    lines: &[String],
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<(), Failure> {
    render.lines(message, lines)?;
    if !render.json {
        crate::render::table(headers, &rows);
    }
    Ok(())
}

/// The program and its policy in force, if one is.
async fn program_and_policy(
    client: &mut pb::scoring_service_client::ScoringServiceClient<crate::connect::Authorized>,
    program_id: &str,
) -> Result<(pb::Program, Option<pb::PolicyVersion>), Failure> {
    let program = client
        .get_program(pb::GetProgramRequest {
            program_id: program_id.to_owned(),
        })
        .await?
        .into_inner();
    let policy = match client
        .get_policy(pb::GetPolicyRequest {
            selector: Some(pb::get_policy_request::Selector::ActiveForProgramId(
                program_id.to_owned(),
            )),
        })
        .await
    {
        Ok(policy) => Some(policy.into_inner()),
        // No policy in force yet.
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::FailedPrecondition
            ) =>
        {
            None
        }
        Err(status) => return Err(status.into()),
    };
    Ok((program, policy))
}

/// The time zone of a policy's rules; UTC without a policy.
fn zone_of(policy: Option<&pb::PolicyVersion>) -> chrono_tz::Tz {
    policy
        .and_then(|policy| policy.rules.as_ref())
        .and_then(|rules| rules.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC)
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
