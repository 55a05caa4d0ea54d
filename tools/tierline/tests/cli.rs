//! The `tierline` binary driven end to end against the three real services (auth off, one fresh
//! database): what it prints, what `--json` gives scripts, and its exit codes.

use std::{path::Path, process::Output, time::Duration};

use tierline_campaign::{Application as CampaignApp, CampaignConfig};
use tierline_customer::{Application as CustomerApp, CustomerConfig};
use tierline_runtime::config::ConfigSource;
use tierline_scoring::{Application as ScoringApp, ScoringConfig};
use tierline_testkit::{TestDatabase, wait_until_serving};
use tokio_util::sync::CancellationToken;

struct Deployment {
    endpoints: [(String, String); 3],
    stop: CancellationToken,
    _database: TestDatabase,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn deploy() -> Deployment {
    tierline_testkit::init_logging();
    let database = TestDatabase::create().await.expect("database");
    let stop = CancellationToken::new();
    let settings = |extra: Vec<(&str, String)>| {
        let mut pairs = vec![
            ("TIERLINE_GRPC_ADDR", "127.0.0.1:0".to_owned()),
            ("TIERLINE_METRICS_ADDR", "off".to_owned()),
            ("TIERLINE_DATABASE_URL", database.url().to_owned()),
            ("TIERLINE_AUTH_MODE", "disabled".to_owned()),
        ];
        pairs.extend(extra);
        ConfigSource::from_pairs(pairs)
    };
    let customer =
        CustomerApp::build(CustomerConfig::from_source(&settings(vec![])).expect("config"))
            .await
            .expect("customer");
    let customer_addr = customer.local_addr();
    let token = stop.clone();
    tokio::spawn(async move { customer.run_until(token.cancelled_owned()).await });
    wait_until_serving(customer_addr).await;
    let customer_url = format!("http://{customer_addr}");
    let scoring = ScoringApp::build(
        ScoringConfig::from_source(&settings(vec![(
            "TIERLINE_CUSTOMER_ENDPOINT",
            customer_url.clone(),
        )]))
        .expect("config"),
    )
    .await
    .expect("scoring");
    let scoring_addr = scoring.local_addr();
    let token = stop.clone();
    tokio::spawn(async move { scoring.run_until(token.cancelled_owned()).await });
    wait_until_serving(scoring_addr).await;
    let scoring_url = format!("http://{scoring_addr}");
    let campaign = CampaignApp::build(
        CampaignConfig::from_source(&settings(vec![
            ("TIERLINE_CUSTOMER_ENDPOINT", customer_url.clone()),
            ("TIERLINE_SCORING_ENDPOINT", scoring_url.clone()),
        ]))
        .expect("config"),
    )
    .await
    .expect("campaign");
    let campaign_addr = campaign.local_addr();
    let token = stop.clone();
    tokio::spawn(async move { campaign.run_until(token.cancelled_owned()).await });
    wait_until_serving(campaign_addr).await;
    Deployment {
        endpoints: [
            ("TIERLINE_CUSTOMER_ENDPOINT".into(), customer_url),
            ("TIERLINE_SCORING_ENDPOINT".into(), scoring_url),
            (
                "TIERLINE_CAMPAIGN_ENDPOINT".into(),
                format!("http://{campaign_addr}"),
            ),
        ],
        stop,
        _database: database,
    }
}

impl Deployment {
    /// Runs the CLI with these arguments (off the async runtime's threads).
    async fn tierline(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tierline"));
        command.args(args).env_remove("TIERLINE_TOKEN");
        for (key, value) in &self.endpoints {
            command.env(key, value);
        }
        command.output().await.expect("tierline runs")
    }

    async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.tierline(&all).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON")
    }
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn example(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/programs")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn an_operator_loads_a_program_records_purchases_and_reads_tiers() {
    let deployment = deploy().await;
    let status = deployment.tierline(&["status"]).await;
    assert!(status.status.success());
    assert_eq!(
        text(&status).matches("SERVING").count(),
        3,
        "{}",
        text(&status)
    );

    let program = deployment
        .json(&["programs", "create", &example("innisfree/program.json")])
        .await;
    let program_id = program["id"].as_str().expect("id").to_owned();
    let policy = deployment
        .json(&[
            "programs",
            "load-policy",
            &program_id,
            &example("innisfree/policy.json"),
        ])
        .await;
    let policy_id = policy["id"].as_str().expect("id").to_owned();
    deployment.json(&["programs", "activate", &policy_id]).await;

    let customer = deployment
        .json(&[
            "customers",
            "create",
            "--name",
            "Ji-woo",
            "--attribute",
            "region=seoul",
        ])
        .await;
    let customer_id = customer["id"].as_str().expect("id").to_owned();
    deployment
        .json(&["customers", "consent", &customer_id, "--channel", "email"])
        .await;
    deployment
        .json(&[
            "activity",
            "purchase",
            "--customer",
            &customer_id,
            "--amount",
            "350000",
            "--currency",
            "KRW",
            "--key",
            "p-1",
            "--brand",
            "innisfree",
        ])
        .await;

    // The purchase reaches the scoring service through the feed: ask until it shows.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let tier = deployment
            .json(&["tiers", "get", "--program", &program_id, &customer_id])
            .await;
        if tier["tier"]["code"] == "VIP" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never VIP: {tier}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let history = deployment
        .tierline(&["tiers", "history", "--program", &program_id, &customer_id])
        .await;
    assert!(history.status.success());
    let table = text(&history);
    assert!(table.starts_with("WHEN"), "{table}");
    assert!(
        table.contains("WELCOME") && table.contains("VIP"),
        "{table}"
    );
    let explained = deployment
        .tierline(&["tiers", "explain", "--program", &program_id, &customer_id])
        .await;
    assert!(explained.status.success());
    assert!(text(&explained).contains("VIP"));

    // A campaign from a file, previewed, launched and reported.
    let file = std::env::temp_dir().join(format!("tierline-campaign-{customer_id}.json"));
    std::fs::write(
        &file,
        serde_json::json!({
            "name": "VIP thanks",
            "program_id": program_id,
            "kind": "CAMPAIGN_KIND_ONE_SHOT",
            "channel": "CHANNEL_EMAIL",
            "audience": {"scoring_rule": {"tier_codes": ["VIP"]}},
            "offer": {"text": "Thank you"},
            "attribution_window_days": 30
        })
        .to_string(),
    )
    .expect("campaign file");
    let campaign = deployment
        .json(&["campaigns", "create", &file.to_string_lossy()])
        .await;
    let _ = std::fs::remove_file(&file);
    let campaign_id = campaign["id"].as_str().expect("id").to_owned();
    let preview = deployment
        .json(&["campaigns", "preview", &campaign_id])
        .await;
    assert_eq!(
        preview["eligible"], "1",
        "int64 is a string in protobuf JSON"
    );
    let launched = deployment
        .json(&["campaigns", "launch", &campaign_id])
        .await;
    assert_eq!(launched["treatmentMembers"], "1");
    let report = deployment
        .tierline(&["campaigns", "report", &campaign_id])
        .await;
    assert!(report.status.success());
    let table = text(&report);
    assert!(table.starts_with("ARM"), "{table}");
    assert!(table.contains("NO_CONTROL_GROUP"), "{table}");
}

#[tokio::test]
async fn errors_show_the_servers_fields_and_exit_codes_say_what_happened() {
    let deployment = deploy().await;
    let bad = deployment
        .tierline(&["customers", "get", "not-a-uuid"])
        .await;
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("  id:"),
        "{stderr}"
    );
    let unknown = deployment
        .tierline(&["customers", "get", "0190a0b0-0000-7000-8000-000000000000"])
        .await;
    assert_eq!(unknown.status.code(), Some(3));
    let missing_file = deployment
        .tierline(&["programs", "create", "/nonexistent.json"])
        .await;
    assert_eq!(missing_file.status.code(), Some(2));
    let junk = std::env::temp_dir().join(format!("tierline-junk-{}.json", std::process::id()));
    std::fs::write(
        &junk,
        r#"{"program": {"code": "A"}} {"program": {"code": "B"}}"#,
    )
    .expect("file");
    let trailing = deployment
        .tierline(&["programs", "create", &junk.to_string_lossy()])
        .await;
    let _ = std::fs::remove_file(&junk);
    assert_eq!(
        trailing.status.code(),
        Some(2),
        "text after the message is refused"
    );
    let down = deployment
        .tierline(&["--campaign-endpoint", "http://127.0.0.1:9", "status"])
        .await;
    assert_eq!(down.status.code(), Some(7));
}

#[tokio::test]
async fn a_csv_import_reports_accepted_duplicate_and_rejected_rows() {
    let deployment = deploy().await;
    let customer = deployment
        .json(&["customers", "create", "--name", "Min-jun"])
        .await;
    let id = customer["id"].as_str().expect("id");
    let csv = format!(
        "kind,key,customer_id,amount_minor,currency,occurred_at,brand,sales_channel,purchase_id\n\
         purchase,k1,{id},10000,KRW,2026-01-05T10:00:00Z,innisfree,store,\n\
         purchase,k1,{id},10000,KRW,2026-01-05T10:00:00Z,innisfree,store,\n\
         purchase,k2,{id},-5,KRW,2026-01-06T10:00:00Z,innisfree,store,\n"
    );
    let file = std::env::temp_dir().join(format!("tierline-import-{id}.csv"));
    std::fs::write(&file, csv).expect("csv");
    let path = file.to_string_lossy().into_owned();
    let summary = deployment
        .tierline(&["--json", "activity", "import", &path])
        .await;
    assert_eq!(summary.status.code(), Some(2), "a rejected row");
    let value: serde_json::Value = serde_json::from_slice(&summary.stdout).expect("JSON");
    assert_eq!(
        (
            value["accepted"].as_i64(),
            value["duplicates"].as_i64(),
            value["rejected"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(value["rejections"][0]["line"], "4");
    let _ = std::fs::remove_file(file);
}
