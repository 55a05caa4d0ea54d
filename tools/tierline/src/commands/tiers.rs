//! `tierline tiers`: get, explain, history, scores.

use tierline_proto::scoring::v1 as pb;

use crate::{cli::Tiers, connect::Endpoints, exit::Failure, render::Render};

fn code(tier: Option<&pb::TierRef>) -> String {
    tier.map_or_else(String::new, |t| t.code.clone())
}

/// The decision trail as sentences (each citing its policy version's thresholds), then the
/// activities that counted.
async fn explain_for_people(
    client: &mut tierline_proto::scoring::v1::scoring_service_client::ScoringServiceClient<
        crate::connect::Authorized,
    >,
    explanation: &pb::ExplainTierResponse,
    currency: &str,
    zone: chrono_tz::Tz,
) -> Result<(), Failure> {
    let mut ladders = std::collections::HashMap::new();
    for record in &explanation.decision_trail {
        let id = &record.policy_version_id;
        if id.is_empty() || ladders.contains_key(id) {
            continue;
        }
        let policy = client
            .get_policy(pb::GetPolicyRequest {
                selector: Some(pb::get_policy_request::Selector::PolicyVersionId(
                    id.clone(),
                )),
            })
            .await?
            .into_inner();
        if let Some(rules) = &policy.rules {
            ladders.insert(id.clone(), super::tier_trail::ladder(rules));
        }
    }
    let current = explanation.current.clone().unwrap_or_default();
    let holds = current
        .tier
        .as_ref()
        .map_or_else(|| "-".to_owned(), |tier| tier.code.clone());
    crate::output::outln!("holds {holds}");
    for record in &explanation.decision_trail {
        crate::output::outln!(
            "  {}",
            super::tier_trail::sentence(record, &ladders, currency, zone)
        );
    }
    if explanation.decision_trail.is_empty() {
        crate::output::outln!("  since becoming known to the program; no change of tier yet");
    }
    crate::output::outln!(
        "{} activities count in the window{}:",
        explanation.activities_total,
        if (explanation.activities.len() as i64) < explanation.activities_total {
            format!(" (the {} newest shown)", explanation.activities.len())
        } else {
            String::new()
        }
    );
    crate::render::table(
        &["WHEN", "KIND", "AMOUNT", "NET SPEND", "BRAND", "CHANNEL"],
        &super::tier_trail::activity_rows(&explanation.activities, currency, zone),
    );
    Ok(())
}

/// A program's currency and the time zone of its policy in force (UTC without one).
async fn program_locale(
    client: &mut tierline_proto::scoring::v1::scoring_service_client::ScoringServiceClient<
        crate::connect::Authorized,
    >,
    program_id: &str,
) -> Result<(String, chrono_tz::Tz), Failure> {
    let program = client
        .get_program(pb::GetProgramRequest {
            program_id: program_id.to_owned(),
        })
        .await?
        .into_inner();
    let zone = client
        .get_policy(pb::GetPolicyRequest {
            selector: Some(pb::get_policy_request::Selector::ActiveForProgramId(
                program_id.to_owned(),
            )),
        })
        .await
        .ok()
        .and_then(|policy| policy.into_inner().rules)
        .and_then(|rules| rules.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    Ok((program.currency, zone))
}

pub(super) async fn run(
    endpoints: &Endpoints,
    render: Render,
    command: Tiers,
) -> Result<(), Failure> {
    let mut client = endpoints.scoring()?;
    let resolve = |target: crate::cli::TierTarget| async move {
        Ok::<_, Failure>((
            super::resolve::program(endpoints, target.program).await?,
            super::resolve::customer(endpoints, target.customer).await?,
        ))
    };
    match command {
        Tiers::Get(target) => {
            let shown = target.customer.clone();
            let (program_id, customer_id) = resolve(target).await?;
            let tier = client
                .get_tier(pb::GetTierRequest {
                    program_id: program_id.clone(),
                    customer_id: customer_id.clone(),
                })
                .await?
                .into_inner();
            if render.json {
                return render.message(&tier);
            }
            let (currency, zone) = program_locale(&mut client, &program_id).await?;
            render.lines(
                &tier,
                &super::tier_card::card(&tier, &shown, &currency, zone),
            )
        }
        Tiers::Explain(target) => {
            let (program_id, customer_id) = resolve(target).await?;
            let explanation = client
                .explain_tier(pb::ExplainTierRequest {
                    program_id: program_id.clone(),
                    customer_id: customer_id.clone(),
                    max_history: None,
                    max_activities: None,
                })
                .await?
                .into_inner();
            if render.json {
                return render.message(&explanation);
            }
            let (currency, zone) = program_locale(&mut client, &program_id).await?;
            explain_for_people(&mut client, &explanation, &currency, zone).await
        }
        Tiers::Scores(target) => {
            let shown = target.customer.clone();
            let (program_id, customer_id) = resolve(target).await?;
            let scores = client
                .get_scores(pb::GetScoresRequest {
                    program_id: program_id.clone(),
                    customer_ids: vec![customer_id],
                })
                .await?
                .into_inner();
            let Some(found) = scores.scores.first() else {
                // As the server says an unknown customer elsewhere: exit code 3.
                return Err(Failure::Server(tonic::Status::not_found(
                    "the customer is not a member of the program",
                )));
            };
            if render.json {
                return render.message(found);
            }
            let (_, zone) = program_locale(&mut client, &program_id).await?;
            render.lines(found, &super::tier_card::scores_card(found, &shown, zone))
        }
        Tiers::History(target) => {
            let (program_id, customer_id) = resolve(target).await?;
            let history = client
                .get_tier_history(pb::GetTierHistoryRequest {
                    program_id: program_id.clone(),
                    customer_id: customer_id.clone(),
                    page_size: 100,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            let (currency, zone) = if render.json {
                (String::new(), chrono_tz::UTC)
            } else {
                program_locale(&mut client, &program_id).await?
            };
            let rows = history
                .records
                .iter()
                .map(|record| {
                    let metrics = record.metrics.unwrap_or_default();
                    vec![
                        super::format::local(record.occurred_at.as_ref(), zone),
                        code(record.from_tier.as_ref()),
                        code(record.to_tier.as_ref()),
                        pb::TierChangeReason::try_from(record.reason)
                            .map(|r| {
                                r.as_str_name()
                                    .trim_start_matches("TIER_CHANGE_REASON_")
                                    .to_lowercase()
                                    .replace('_', " ")
                            })
                            .unwrap_or_default(),
                        super::format::money(metrics.net_spend_minor, &currency),
                        metrics.purchase_count.to_string(),
                    ]
                })
                .collect();
            render.table(
                &history,
                &["WHEN", "FROM", "TO", "WHY", "NET SPEND", "PURCHASES"],
                rows,
            )
        }
    }
}
