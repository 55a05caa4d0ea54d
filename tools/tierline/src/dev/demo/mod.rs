//! `tierline dev --demo`: a synthetic business loaded through the services' own gRPC APIs, as a
//! real integration would load it, so every RPC and report has something to show: the two
//! example programs, customers with consents, a year of seasonal purchases and some refunds, an
//! evaluation of each program, and a finished campaign with a holdout whose effect the report
//! measures. The data comes from a fixed seed; loading is skipped when it is already there (a
//! restart over the same data directory).

mod business;
mod campaign;
mod customers;
mod programs;
mod progress;
mod sales;

use std::time::{Duration, Instant};

use chrono::Utc;
use rand::{SeedableRng, rngs::StdRng};
use tierline_proto::scoring::v1 as scoring;

use super::say;
use crate::{connect::Endpoints, exit::Failure};

/// The seed of the synthetic business.
const SEED: u64 = 20_261_124;

/// The name of the demo's campaign (the README's example reads its report by name).
pub(crate) const CAMPAIGN_NAME: &str = "Members' week";

/// Loads the demo unless it is there already.
pub(crate) async fn load(endpoints: &Endpoints, customers: u32) -> Result<(), Failure> {
    let mut scoring_client = endpoints.scoring()?;
    if programs::existing(&mut scoring_client).await?.is_some() {
        say(
            "Demo data is already loaded (this data directory); start with --memory or another --data-dir for a fresh one.",
        );
        try_lines();
        return Ok(());
    }
    let started = Instant::now();
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(SEED);
    say(&format!(
        "Loading the demo business ({customers} customers, a year of purchases)…"
    ));

    let programs = programs::create(&mut scoring_client).await?;
    let people = business::people(customers, now, &mut rng);
    let ids = customers::create(endpoints, &people).await?;
    let history = business::year_of_sales(&people, now, &mut rng);
    let last = sales::import(endpoints, &ids, &people, &history, &mut rng).await?;
    sales::counted(&mut scoring_client, &programs.innisfree, &last).await?;
    programs::evaluate(
        &mut scoring_client,
        &[&programs.innisfree, &programs.starbucks],
    )
    .await?;
    let report = campaign::run(endpoints, &programs.innisfree, &mut rng).await?;

    say(&format!(
        "Demo loaded in {:.0} s: {} customers, {} purchases, programs INNISFREE and STARBUCKS, campaign \"{CAMPAIGN_NAME}\" \
         ({} treatment, {} control; conversion {} vs {}, p = {}).",
        started.elapsed().as_secs_f64(),
        people.len(),
        history.len() + 1,
        report.treatment.as_ref().map_or(0, |arm| arm.members),
        report.control.as_ref().map_or(0, |arm| arm.members),
        percent(
            report
                .treatment
                .as_ref()
                .and_then(|arm| arm.conversion_rate)
        ),
        percent(report.control.as_ref().and_then(|arm| arm.conversion_rate)),
        report
            .p_value
            .map_or_else(|| "n/a".to_owned(), |p| format!("{p:.2e}")),
    ));
    try_lines();
    Ok(())
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |rate| format!("{:.1} %", rate * 100.0))
}

fn try_lines() {
    say(&format!(
        "Try, in another terminal:\n  \
         tierline tiers get --program INNISFREE demo-00042\n  \
         tierline tiers explain --program INNISFREE demo-00042\n  \
         tierline campaigns report \"{CAMPAIGN_NAME}\""
    ));
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `limit`: the feeds between
/// the services are asynchronous by design.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Failure>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(Failure::Other(anyhow::anyhow!(
                "the demo gave up waiting for {what} after {} s",
                limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The scoring client type the steps share.
type ScoringClient = scoring::scoring_service_client::ScoringServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        tierline_runtime::client::Outgoing,
    >,
>;
