//! The `tierline` binary driven end to end against a `tierline dev` process (the three real
//! services in one process on SQLite, auth off): what it prints, what `--json` gives scripts,
//! its exit codes, the development mode's data kept across a restart, and the demo the README's
//! first lines show.

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Duration,
};

use tokio::io::{AsyncBufReadExt, BufReader};

/// A `tierline dev` process and its three endpoints.
struct Deployment {
    endpoints: [(String, String); 3],
    dev: tokio::process::Child,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // SIGTERM, as an operator's Ctrl-C: the process stops its services and removes its
        // throwaway files.
        if let Some(pid) = self.dev.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

impl Deployment {
    /// Waits until the process has exited after SIGTERM.
    async fn stop(mut self) {
        if let Some(pid) = self.dev.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.dev.wait())
            .await
            .expect("tierline dev stops within 30 s")
            .expect("exit status");
        assert!(status.success(), "tierline dev exited with {status}");
    }
}

/// Starts `tierline dev` with `args` (free ports, auth off) and waits until its three services
/// are serving (and, with `--demo`, until the demo is loaded).
async fn dev(args: &[&str]) -> Deployment {
    tierline_testkit::init_logging();
    let mut dev = tokio::process::Command::new(env!("CARGO_BIN_EXE_tierline"))
        .arg("dev")
        .args(["--port", "0"])
        .args(args)
        .env_remove("TIERLINE_AUTH_HS256_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tierline dev starts");
    let mut lines = BufReader::new(dev.stdout.take().expect("stdout")).lines();
    let mut endpoints = Vec::new();
    let mut before_ready = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            before_ready.push(line.clone());
            for (service, key) in [
                ("customer", "TIERLINE_CUSTOMER_ENDPOINT"),
                ("scoring", "TIERLINE_SCORING_ENDPOINT"),
                ("campaign", "TIERLINE_CAMPAIGN_ENDPOINT"),
            ] {
                if let Some(url) = line.strip_prefix(service).map(str::trim)
                    && url.starts_with("http://")
                {
                    endpoints.push((key.to_owned(), url.to_owned()));
                }
            }
            if line.starts_with("Ready.") {
                return true;
            }
        }
        false
    })
    .await
    .expect("tierline dev is ready within 300 s");
    assert!(ready, "tierline dev ended before it was ready");
    // A quiet start: the banner first, no log line before it, no escape codes off a terminal.
    assert!(
        before_ready[0].starts_with("Tierline dev:"),
        "{before_ready:#?}"
    );
    assert!(
        before_ready
            .iter()
            .all(|line| !line.contains('\u{1b}') && !line.contains("WARN")),
        "{before_ready:#?}"
    );
    // Keep reading, so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    for (_, url) in &endpoints {
        let addr = url.trim_start_matches("http://").parse().expect("address");
        tierline_testkit::wait_until_serving(addr).await;
    }
    Deployment {
        endpoints: endpoints.try_into().expect("three endpoints"),
        dev,
    }
}

async fn deploy() -> Deployment {
    dev(&["--memory"]).await
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
            // A program by its code, as every command takes it.
            program["code"].as_str().expect("code"),
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
    tierline_testkit::eventually_within("VIP", Duration::from_secs(30), || async {
        let tier = deployment
            .json(&["tiers", "get", "--program", &program_id, &customer_id])
            .await;
        (tier["tier"]["code"] == "VIP").then_some(())
    })
    .await;
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
    let shown = text(
        &deployment
            .tierline(&["campaigns", "preview", &campaign_id])
            .await,
    );
    assert!(
        shown.starts_with("audience: 1 matched, 1 can be contacted"),
        "a card, not field paths: {shown}"
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

#[tokio::test]
async fn a_membership_is_onboarded_from_csv_once() {
    let deployment = deploy().await;
    let csv = "external_id,name,email,phone,birth_date,joined_at,attributes,email_consent,sms_consent,push_consent\n\
               M-1,김민지,minji@example.com,+821012345678,1990-03-14,2020-01-02T00:00:00Z,city=Seoul;grade=gold,yes,no,\n\
               M-2,이서준,,,,,,no,,\n\
               M-3,Bad Phone,,12,,,,,,\n";
    let file = std::env::temp_dir().join(format!("tierline-onboard-{}.csv", std::process::id()));
    std::fs::write(&file, csv).expect("csv");
    let path = file.to_string_lossy().into_owned();
    let first = deployment
        .tierline(&["--json", "customers", "import", &path])
        .await;
    assert_eq!(first.status.code(), Some(2), "a rejected row");
    let value: serde_json::Value = serde_json::from_slice(&first.stdout).expect("JSON");
    assert_eq!(
        (value["created"].as_i64(), value["rejected"].as_i64()),
        (Some(2), Some(1)),
        "{value}"
    );
    assert_eq!(value["rejections"][0]["line"], "4");
    assert_eq!(value["rejections"][0]["field"], "customer.phone");
    // Run again: nothing changes for the rows that went in.
    let again = deployment
        .tierline(&["--json", "customers", "import", &path])
        .await;
    let value: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(
        (value["created"].as_i64(), value["unchanged"].as_i64()),
        (Some(0), Some(2)),
        "{value}"
    );
    let found = deployment
        .json(&["customers", "find", "--external-id", "M-1"])
        .await;
    let _ = std::fs::remove_file(file);
    let minji = &found["customers"][0];
    assert_eq!(minji["name"], "김민지", "{found}");
    assert_eq!(minji["attributes"]["grade"], "gold", "{found}");
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tierline-cli-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn the_call_centre_finds_a_customer_by_phone_as_it_is_typed() {
    let deployment = deploy().await;
    let created = deployment
        .json(&[
            "customers",
            "create",
            "--name",
            "김민지",
            "--phone",
            "010-2468-1357",
            "--email",
            "Minji@Example.com",
        ])
        .await;
    assert_eq!(created["phone"], "+821024681357", "stored in E.164");
    let id = created["id"].as_str().expect("id");
    for by in [
        ["--phone", "010 2468 1357"],
        ["--phone", "+82 10-2468-1357"],
        ["--email", "MINJI@example.com"],
    ] {
        let found = deployment.json(&["customers", "find", by[0], by[1]]).await;
        assert_eq!(found["customers"][0]["id"], id, "{by:?}: {found}");
        let table = deployment
            .tierline(&["customers", "find", by[0], by[1]])
            .await;
        assert!(text(&table).contains("김민지"), "{}", text(&table));
    }
    let card = text(&deployment.tierline(&["customers", "get", id]).await);
    assert!(
        card.starts_with("김민지: active, joined ") && card.contains("  phone     +821024681357"),
        "a card, not field paths: {card}"
    );
    let nothing = deployment.tierline(&["customers", "find"]).await;
    assert_eq!(
        nothing.status.code(),
        Some(2),
        "one of --email, --phone, --external-id"
    );

    // Listing, a page at a time: the next page's token goes to stderr.
    deployment
        .json(&["customers", "create", "--name", "Second"])
        .await;
    let first_page = deployment
        .tierline(&["customers", "list", "--page-size", "1"])
        .await;
    assert!(first_page.status.success());
    assert!(
        text(&first_page).contains("김민지"),
        "{}",
        text(&first_page)
    );
    let stderr = String::from_utf8_lossy(&first_page.stderr).into_owned();
    let token = stderr
        .trim()
        .strip_prefix("next page: --page-token ")
        .expect("a next page");
    let second_page = deployment
        .json(&[
            "customers",
            "list",
            "--page-size",
            "1",
            "--page-token",
            token,
        ])
        .await;
    assert_eq!(
        second_page["customers"][0]["name"], "Second",
        "{second_page}"
    );
    deployment.stop().await;
}

#[tokio::test]
async fn completions_for_bash_zsh_and_fish_name_every_command() {
    for (shell, marker) in [
        ("bash", "_tierline()"),
        ("zsh", "#compdef tierline"),
        ("fish", "complete -c tierline"),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tierline"))
            .args(["completions", shell])
            .output()
            .await
            .expect("tierline runs");
        assert!(output.status.success(), "{shell}");
        let script = text(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        for word in [
            "customers",
            "find",
            "programs",
            "load-policy",
            "campaigns",
            "completions",
        ] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
}

#[tokio::test]
async fn a_minted_token_opens_what_its_scopes_allow_and_nothing_else() {
    const SECRET: &str = "a-development-secret-of-32-bytes-or-more";
    let deployment = dev(&["--memory", "--auth-secret", SECRET]).await;
    let mint = |scope: &'static str| {
        let deployment = &deployment;
        async move {
            let output = deployment
                .tierline(&[
                    "token",
                    "--scope",
                    scope,
                    "--subject",
                    "ops",
                    "--secret",
                    SECRET,
                ])
                .await;
            assert!(output.status.success(), "{output:?}");
            text(&output).trim().to_owned()
        }
    };
    let admin = mint("programs:admin").await;
    let reader = mint("customers:read").await;
    assert_eq!(admin.split('.').count(), 3, "a JWT: {admin}");

    let allowed = deployment
        .tierline(&["--token", &admin, "programs", "list"])
        .await;
    assert!(allowed.status.success(), "{allowed:?}");
    let without = deployment.tierline(&["programs", "list"]).await;
    assert_eq!(without.status.code(), Some(6), "{without:?}");
    let wrong_scope = deployment
        .tierline(&["--token", &reader, "programs", "list"])
        .await;
    assert_eq!(wrong_scope.status.code(), Some(6), "{wrong_scope:?}");
    let signed_elsewhere = deployment
        .tierline(&[
            "token",
            "--scope",
            "programs:admin",
            "--secret",
            "another-secret-that-is-also-32-bytes-long",
        ])
        .await;
    let forged = text(&signed_elsewhere).trim().to_owned();
    let refused = deployment
        .tierline(&["--token", &forged, "programs", "list"])
        .await;
    assert_eq!(refused.status.code(), Some(6), "{refused:?}");

    let short = deployment
        .tierline(&["token", "--scope", "tiers:read", "--secret", "too-short"])
        .await;
    assert_eq!(short.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("--secret"),
        "{short:?}"
    );
    deployment.stop().await;
}

#[tokio::test]
async fn a_closed_pipe_ends_a_command_quietly() {
    let deployment = deploy().await;
    for args in [&["status"][..], &["--json", "status"][..]] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tierline"));
        command
            .args(args)
            .env_remove("TIERLINE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &deployment.endpoints {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("tierline runs");
        // `| head -0`: the reader is gone before the command writes.
        drop(child.stdout.take());
        let output = child.wait_with_output().await.expect("tierline ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
    }
    deployment.stop().await;
}

#[tokio::test]
async fn the_development_mode_keeps_its_data_across_a_restart() {
    let dir = scratch_dir();
    let data_dir = dir.to_string_lossy().into_owned();
    let first = dev(&["--data-dir", &data_dir]).await;
    let created = first
        .json(&[
            "customers",
            "create",
            "--name",
            "Kept Across",
            "--external-id",
            "kept-1",
        ])
        .await;
    first.stop().await;

    let second = dev(&["--data-dir", &data_dir]).await;
    let found = second
        .json(&["customers", "get", created["id"].as_str().expect("id")])
        .await;
    assert_eq!(found["name"], "Kept Across");
    second.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_demo_answers_the_readme_lines() {
    let deployment = dev(&["--memory", "--demo", "--demo-customers", "300"]).await;
    // The README's three lines, by program code, external id and campaign name.
    let tier = deployment
        .json(&["tiers", "get", "--program", "INNISFREE", "demo-00042"])
        .await;
    assert!(
        tier["tier"]["code"]
            .as_str()
            .is_some_and(|code| code != "WELCOME"),
        "the devoted buyer holds a tier above the base: {tier}"
    );
    // For a person: a card in the program's time zone, money as people write it.
    let card = deployment
        .tierline(&["tiers", "get", "--program", "INNISFREE", "demo-00042"])
        .await;
    let shown = text(&card);
    assert!(
        shown.starts_with("demo-00042: ")
            && shown.contains(" KST")
            && shown.contains(" KRW net spend"),
        "{shown}"
    );
    let trail = deployment
        .tierline(&["tiers", "explain", "--program", "INNISFREE", "demo-00042"])
        .await;
    let told = text(&trail);
    assert!(
        told.contains("upgraded from ")
            && told.contains(" KST")
            && told.contains(", policy v1")
            && told.contains("activities count in the window")
            && told.contains("NET SPEND"),
        "{told}"
    );
    let explanation = deployment
        .json(&["tiers", "explain", "--program", "INNISFREE", "demo-00042"])
        .await;
    assert!(
        explanation["activitiesTotal"]
            .as_str()
            .is_some_and(|n| n != "0"),
        "the explanation lists the purchases: {explanation}"
    );
    // The demo's evaluation fitted the value model on its population (SQLite here), and the
    // devoted buyer has a predicted value.
    let model = deployment
        .json(&["programs", "value-model", "INNISFREE"])
        .await;
    assert!(
        model["customers"]
            .as_str()
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|n| n >= 100),
        "fitted on the demo's buyers: {model}"
    );
    let scores = deployment
        .json(&["tiers", "scores", "--program", "INNISFREE", "demo-00042"])
        .await;
    assert!(scores["probabilityAlive"].as_f64().is_some(), "{scores}");
    // The demo's spends are drawn around a few basket sizes, which the spend model may not
    // fit; when it did, every buyer has a predicted value.
    assert_eq!(
        model["gammaGamma"].is_object(),
        scores["predictedValue"].is_object(),
        "{model} {scores}"
    );
    let card = deployment
        .tierline(&["tiers", "scores", "--program", "INNISFREE", "demo-00042"])
        .await;
    let shown = text(&card);
    assert!(
        shown.starts_with("demo-00042: ") && shown.contains("likely still a customer"),
        "{shown}"
    );
    // Programs, value models and runs read as cards, not protobuf paths.
    let shown = text(
        &deployment
            .tierline(&["programs", "show", "INNISFREE"])
            .await,
    );
    assert!(
        shown.starts_with("INNISFREE (")
            && shown.contains("QUALIFIES WITH")
            && shown.contains(" KRW net spend")
            && shown.contains("Asia/Seoul"),
        "{shown}"
    );
    let shown = text(
        &deployment
            .tierline(&["programs", "value-model", "INNISFREE"])
            .await,
    );
    assert!(
        shown.starts_with("INNISFREE value model v") && shown.contains("BG/NBD r "),
        "{shown}"
    );
    let shown = text(
        &deployment
            .tierline(&["programs", "evaluate", "INNISFREE"])
            .await,
    );
    assert!(
        shown.starts_with("evaluation run ") && shown.contains("BEFORE") && !shown.contains('{'),
        "{shown}"
    );
    let history = deployment
        .tierline(&["tiers", "history", "--program", "INNISFREE", "demo-00042"])
        .await;
    let shown = text(&history);
    assert!(
        shown.contains("NET SPEND") && shown.contains(" KST"),
        "{shown}"
    );
    let report = deployment
        .tierline(&["campaigns", "report", "Members' week"])
        .await;
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let shown = text(&report);
    assert!(
        shown.contains("treatment") && shown.contains("control"),
        "{shown}"
    );
    let as_json = deployment
        .json(&["campaigns", "report", "Members' week"])
        .await;
    assert_eq!(as_json["status"], "CAMPAIGN_STATUS_COMPLETED", "{as_json}");
    assert!(
        as_json["treatment"]["converters"]
            .as_str()
            .is_some_and(|n| n != "0"),
        "treatment members bought after the offer: {as_json}"
    );
    // An unknown name is not found, as an unknown id is.
    let unknown = deployment
        .tierline(&["campaigns", "report", "No such campaign"])
        .await;
    assert_eq!(unknown.status.code(), Some(3));
}
