//! Launching a one-shot campaign over a large audience, and its report: a program that prints
//! figures (docs/BENCHMARKS.md).
//!
//! Starts the customer, scoring and campaign services on one fresh database (auth off, feeds and
//! schedulers off so only the launch runs), creates an Innisfree-like program through the API,
//! then seeds `BENCH_CUSTOMERS` customers (default 1,000,000) straight into the customer and
//! scoring schemas: 90 % consent to e-mail, about half buy in each of the last 12 months. The
//! campaign aims at every member with a 10 % holdout, so the launch resolves the whole audience
//! through `QueryAudience`, reads consents in bulk, applies the frequency cap and the holdout, and
//! writes every member, suppression and delivery. Then 20 % of the members are given attributed
//! revenue and `GetCampaignReport` is timed `BENCH_RUNS` times (default 3).
//!
//! Run: `cargo bench -p tierline-e2e --bench campaign_launch`

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod support;

use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection};
use support::{channel, knob, program, stopped, topology};
use tierline_proto::{
    campaign::v1::{self as campaign, campaign_service_client::CampaignServiceClient},
    common::v1::{Channel as ContactChannel, Money},
    scoring::v1::scoring_service_client::ScoringServiceClient,
};
use tierline_testkit::TestDatabase;
use tokio_util::sync::CancellationToken;

async fn seed(database: &TestDatabase, program_id: &str, customers: usize) {
    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO customer.customers (id, name, joined_at, status, created_at, updated_at)
         SELECT gen_random_uuid(), 'Bench', now() - random() * interval '730 days', 'active', now(), now()
         FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(customers).unwrap())
    .execute(&mut connection)
    .await
    .unwrap();
    connection
        .execute(
            "INSERT INTO customer.consents (customer_id, channel, granted, changed_at, source)
             SELECT id, 'email', true, now(), 'bench' FROM customer.customers WHERE random() < 0.9;
             INSERT INTO scoring.members (customer_id, joined_at, erased)
             SELECT id, joined_at, false FROM customer.customers;",
        )
        .await
        .unwrap();
    // The buckets live on the tier states, as running totals (migration 20261208100029): each
    // buyer's months are generated one row a month, then summed onto the state the feed gives at
    // a first purchase, the base tier since joining.
    sqlx::query(
        "INSERT INTO scoring.tier_states (program_id, customer_id, earned_rank, since, version, updated_at, months,
                                          spend_through, points_through, purchases_through)
         SELECT $1::uuid, customer_id, 0, joined_at, 1, now(), array_agg(month ORDER BY month),
                array_agg(spend ORDER BY month), array_agg(points ORDER BY month), array_agg(purchases ORDER BY month)
         FROM (SELECT customer_id, joined_at, month,
                      sum(net_spend_minor) OVER running AS spend, sum(points) OVER running AS points,
                      sum(purchases) OVER running AS purchases
               FROM (SELECT m.customer_id, m.joined_at, (date_trunc('month', now()) - k * interval '1 month')::date AS month,
                            (random() * 200000)::bigint AS net_spend_minor, 0 AS points,
                            1 + (random() * 2)::int AS purchases
                     FROM scoring.members m CROSS JOIN generate_series(0, 11) k WHERE random() < 0.5) generated
               WINDOW running AS (PARTITION BY customer_id ORDER BY month)) t
         GROUP BY customer_id, joined_at",
    )
    .bind(uuid::Uuid::parse_str(program_id).unwrap())
    .execute(&mut connection)
    .await
    .unwrap();
    connection
        .execute(
            "ANALYZE customer.customers; ANALYZE customer.consents; ANALYZE scoring.members; ANALYZE scoring.tier_states",
        )
        .await
        .unwrap();
    println!(
        "population: {customers} customers (90 % with e-mail consent) and their monthly buckets, generated in {:.1} s; machine: {} cores",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
}

// The services run in this process: with the allocator their binaries have.
tierline_runtime::service_allocator!();

#[tokio::main]
async fn main() {
    let customers = knob("BENCH_CUSTOMERS", 1_000_000);
    let runs = knob("BENCH_RUNS", 3);
    let database = TestDatabase::create().await.unwrap();
    let stop = CancellationToken::new();
    let mut servers = support::Services::new();

    // LaunchCampaign answers once the launch is done (it may wait an hour), so the call times it.
    let services = topology(&database).campaign_setting("TIERLINE_LAUNCH_WAIT", "1h");
    let customer_addr = services.start_customer(&stop, &mut servers).await.unwrap();
    let scoring_addr = services
        .start_scoring(customer_addr, &stop, &mut servers)
        .await
        .unwrap();
    let mut scoring_client = ScoringServiceClient::new(channel(scoring_addr).await);
    let campaign_addr = services
        .start_campaign(customer_addr, scoring_addr, &stop, &mut servers)
        .await
        .unwrap();
    let mut client = CampaignServiceClient::new(channel(campaign_addr).await);

    let program_id = program(&mut scoring_client).await;
    seed(&database, &program_id, customers).await;

    let created = client
        .create_campaign(campaign::CreateCampaignRequest {
            campaign: Some(campaign::Campaign {
                name: "Everyone".into(),
                program_id: program_id.clone(),
                kind: campaign::CampaignKind::OneShot.into(),
                channel: ContactChannel::Email.into(),
                holdout_bps: 1_000,
                offer: Some(campaign::Offer {
                    text: "Thank you".into(),
                    benefit: None,
                }),
                cost_per_contact: Some(Money {
                    amount_minor: 20,
                    currency: "KRW".into(),
                }),
                attribution_window_days: 30,
                ..Default::default()
            }),
            created_by: "bench".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let started = Instant::now();
    let launched = client
        .launch_campaign(campaign::LaunchCampaignRequest {
            campaign_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let seconds = started.elapsed().as_secs_f64();
    let summary = launched.summary.unwrap();
    println!(
        "LaunchCampaign: {seconds:.1} s for {} matched ({:.0}/s): {} treatment, {} control, suppressed {:?}, complete {}",
        summary.matched,
        summary.matched as f64 / seconds,
        summary.treatment_members,
        summary.control_members,
        summary
            .suppressed
            .iter()
            .map(|s| (s.reason, s.customers))
            .collect::<Vec<_>>(),
        summary.complete
    );

    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    sqlx::query(
        "UPDATE campaign.members SET conversions = 1, revenue_minor = (random() * 100000)::bigint
         WHERE campaign_id = $1 AND random() < 0.2",
    )
    .bind(uuid::Uuid::parse_str(&created.id).unwrap())
    .execute(&mut connection)
    .await
    .unwrap();
    connection
        .execute("ANALYZE campaign.members")
        .await
        .unwrap();
    for run in 1..=runs {
        let started = Instant::now();
        let report = client
            .get_campaign_report(campaign::GetCampaignReportRequest {
                campaign_id: created.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        println!(
            "GetCampaignReport run {run}: {:.3} s over {} members (p = {:?})",
            started.elapsed().as_secs_f64(),
            report.treatment.map_or(0, |t| t.members) + report.control.map_or(0, |c| c.members),
            report.p_value
        );
    }
    stop.cancel();
    stopped(servers).await;
}
