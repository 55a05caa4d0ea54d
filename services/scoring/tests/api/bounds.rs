//! Every bound that scoring.proto states for a request field, from both sides: a table of cases,
//! each a valid request with one field set at its bound or just past it, and what the contract
//! promises for it: accepted, or INVALID_ARGUMENT naming exactly that field (paths inside policy
//! documents as "rules.…", inside programs as "program.…", inside audience rules as "rule.…").

use sqlx::{Connection, PgConnection};
use tierline_proto::{prost_types::Timestamp, scoring::v1 as pb};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::support::{
    Client, TestApp, innisfree_program, innisfree_rules, insert_vip, program_in_force,
};

use tierline_testkit::bounds::{
    Expect::{self, Accepted, Invalid, Refused},
    verdict,
};

/// One request, of any RPC.
#[derive(Debug)]
enum Call {
    CreateProgram(pb::CreateProgramRequest),
    ListPrograms(pb::ListProgramsRequest),
    CreatePolicy(pb::CreatePolicyVersionRequest),
    GetPolicy(pb::GetPolicyRequest),
    ListPolicies(pb::ListPolicyVersionsRequest),
    UpdateDraft(pb::UpdateDraftPolicyRequest),
    Activate(pb::ActivatePolicyRequest),
    Retire(pb::RetirePolicyRequest),
    BatchGetTiers(pb::BatchGetTiersRequest),
    History(pb::GetTierHistoryRequest),
    Explain(pb::ExplainTierRequest),
    SetOverride(pb::SetTierOverrideRequest),
    ClearOverride(pb::ClearTierOverrideRequest),
    EvaluateNow(pb::EvaluateNowRequest),
    GetRun(pb::GetEvaluationRunRequest),
    ListRuns(pb::ListEvaluationRunsRequest),
    Scores(pb::GetScoresRequest),
    Audience(pb::QueryAudienceRequest),
    Simulate(pb::SimulatePolicyRequest),
}

async fn send(client: &mut Client, call: Call) -> Result<(), Status> {
    match call {
        Call::CreateProgram(request) => client.create_program(request).await.map(|_| ()),
        Call::ListPrograms(request) => client.list_programs(request).await.map(|_| ()),
        Call::CreatePolicy(request) => client.create_policy_version(request).await.map(|_| ()),
        Call::GetPolicy(request) => client.get_policy(request).await.map(|_| ()),
        Call::ListPolicies(request) => client.list_policy_versions(request).await.map(|_| ()),
        Call::UpdateDraft(request) => client.update_draft_policy(request).await.map(|_| ()),
        Call::Activate(request) => client.activate_policy(request).await.map(|_| ()),
        Call::Retire(request) => client.retire_policy(request).await.map(|_| ()),
        Call::BatchGetTiers(request) => client.batch_get_tiers(request).await.map(|_| ()),
        Call::History(request) => client.get_tier_history(request).await.map(|_| ()),
        Call::Explain(request) => client.explain_tier(request).await.map(|_| ()),
        Call::SetOverride(request) => client.set_tier_override(request).await.map(|_| ()),
        Call::ClearOverride(request) => client.clear_tier_override(request).await.map(|_| ()),
        Call::EvaluateNow(request) => client.evaluate_now(request).await.map(|_| ()),
        Call::GetRun(request) => client.get_evaluation_run(request).await.map(|_| ()),
        Call::ListRuns(request) => client.list_evaluation_runs(request).await.map(|_| ()),
        Call::Scores(request) => client.get_scores(request).await.map(|_| ()),
        // A refused query fails the call; an accepted one opens the stream.
        Call::Audience(request) => client.query_audience(request).await.map(|_| ()),
        Call::Simulate(request) => client.simulate_policy(request).await.map(|_| ()),
    }
}

/// What the cases work on, made before they run.
struct Fixtures {
    /// A program (the Innisfree ladder) with a policy in force.
    program: String,
    /// A member of it.
    member: String,
    /// A draft the UpdateDraftPolicy cases change.
    draft: String,
    /// A draft the ActivatePolicy cases activate.
    to_activate: String,
    /// A draft the RetirePolicy cases retire.
    to_retire: String,
}

async fn new_draft(client: &mut Client, program_id: &str) -> String {
    client
        .create_policy_version(pb::CreatePolicyVersionRequest {
            program_id: program_id.to_owned(),
            rules: Some(innisfree_rules()),
            created_by: "ops".into(),
            ..Default::default()
        })
        .await
        .expect("draft")
        .into_inner()
        .id
}

impl Fixtures {
    async fn create(app: &TestApp, client: &mut Client) -> Self {
        let (program, _) = program_in_force(client, "BOUNDS", innisfree_rules()).await;
        let mut db = PgConnection::connect(&app.database_url).await.expect("db");
        let member = insert_vip(
            &mut db,
            Uuid::parse_str(&program.id).expect("uuid"),
            None,
            0,
        )
        .await;
        Self {
            draft: new_draft(client, &program.id).await,
            to_activate: new_draft(client, &program.id).await,
            to_retire: new_draft(client, &program.id).await,
            member: member.to_string(),
            program: program.id,
        }
    }
}

/// `n` unknown customer ids.
fn ids(n: usize) -> Vec<String> {
    (0..n).map(|_| Uuid::now_v7().to_string()).collect()
}

/// The instant `days` days from now (negative: ago), to the second.
fn days_ahead(days: i64) -> Timestamp {
    Timestamp {
        seconds: (chrono::Utc::now() + chrono::Duration::days(days)).timestamp(),
        nanos: 0,
    }
}

/// The instant `seconds` from now (negative: ago).
fn seconds_ahead(seconds: i64) -> Timestamp {
    Timestamp {
        seconds: chrono::Utc::now().timestamp() + seconds,
        nanos: 0,
    }
}

/// A ladder of `n` tiers, T0 to Tn-1.
fn ladder(n: usize) -> Vec<pb::Tier> {
    (0..n)
        .map(|rank| pb::Tier {
            code: format!("T{rank}"),
            name: format!("tier {rank}"),
            rank: i32::try_from(rank).expect("rank"),
            benefits: vec![],
        })
        .collect()
}

/// `n` benefits with distinct codes.
fn benefits(n: usize) -> Vec<pb::Benefit> {
    (0..n)
        .map(|i| pb::Benefit {
            code: format!("B{i}"),
            description: "a benefit".into(),
        })
        .collect()
}

/// CreateProgram of the Innisfree ladder under `code` (each case its own, as codes are unique).
fn program(code: &str, edit: impl FnOnce(&mut pb::Program)) -> Call {
    let mut program = innisfree_program(code);
    edit(&mut program);
    Call::CreateProgram(pb::CreateProgramRequest {
        program: Some(program),
        idempotency_key: String::new(),
    })
}

fn create_policy(program_id: &str, edit: impl FnOnce(&mut pb::CreatePolicyVersionRequest)) -> Call {
    let mut request = pb::CreatePolicyVersionRequest {
        program_id: program_id.to_owned(),
        rules: Some(innisfree_rules()),
        description: String::new(),
        created_by: "ops".into(),
        idempotency_key: String::new(),
    };
    edit(&mut request);
    Call::CreatePolicy(request)
}

/// CreatePolicyVersion of the Innisfree rules changed by `edit`.
fn rules(program_id: &str, edit: impl FnOnce(&mut pb::PolicyRules)) -> Call {
    let mut rules = innisfree_rules();
    edit(&mut rules);
    create_policy(program_id, |request| request.rules = Some(rules))
}

fn window(kind: pb::WindowKind, rolling_months: i32) -> Option<pb::QualificationWindow> {
    Some(pb::QualificationWindow {
        kind: kind.into(),
        rolling_months,
    })
}

fn schedule(rules: &mut pb::PolicyRules) -> &mut pb::EvaluationSchedule {
    rules
        .evaluation_schedule
        .get_or_insert_with(Default::default)
}

fn yearly(rules: &mut pb::PolicyRules, month_of_year: i32) {
    let schedule = schedule(rules);
    schedule.frequency = pb::EvaluationFrequency::Yearly.into();
    schedule.month_of_year = month_of_year;
}

fn lifecycle(
    new_days: Option<i32>,
    at_risk_days: Option<i32>,
    dormant_days: Option<i32>,
) -> Option<pb::LifecycleSettings> {
    Some(pb::LifecycleSettings {
        new_days,
        at_risk_days,
        dormant_days,
    })
}

fn requirement(metric: pb::MetricKind, threshold: i64) -> pb::Requirement {
    pb::Requirement {
        metric: metric.into(),
        threshold,
    }
}

fn override_tier(f: &Fixtures, edit: impl FnOnce(&mut pb::SetTierOverrideRequest)) -> Call {
    let mut request = pb::SetTierOverrideRequest {
        program_id: f.program.clone(),
        customer_id: f.member.clone(),
        tier_code: "VIP".into(),
        expires_at: Some(days_ahead(30)),
        reason: "goodwill".into(),
        operator_name: "agent".into(),
        idempotency_key: String::new(),
    };
    edit(&mut request);
    Call::SetOverride(request)
}

fn clear_override(f: &Fixtures, edit: impl FnOnce(&mut pb::ClearTierOverrideRequest)) -> Call {
    let mut request = pb::ClearTierOverrideRequest {
        program_id: f.program.clone(),
        customer_id: f.member.clone(),
        reason: "complaint withdrawn".into(),
        operator_name: "agent".into(),
        idempotency_key: String::new(),
    };
    edit(&mut request);
    Call::ClearOverride(request)
}

fn explain(f: &Fixtures, max_history: Option<i32>, max_activities: Option<i32>) -> Call {
    Call::Explain(pb::ExplainTierRequest {
        program_id: f.program.clone(),
        customer_id: f.member.clone(),
        max_history,
        max_activities,
    })
}

fn evaluate(f: &Fixtures, edit: impl FnOnce(&mut pb::EvaluateNowRequest)) -> Call {
    let mut request = pb::EvaluateNowRequest {
        program_id: f.program.clone(),
        requested_by: "ops".into(),
        idempotency_key: String::new(),
    };
    edit(&mut request);
    Call::EvaluateNow(request)
}

/// QueryAudience in the fixture's program, with `limit` and the rule changed by `edit`.
fn audience(f: &Fixtures, limit: Option<i64>, edit: impl FnOnce(&mut pb::AudienceRule)) -> Call {
    let mut rule = pb::AudienceRule {
        program_id: f.program.clone(),
        ..Default::default()
    };
    edit(&mut rule);
    Call::Audience(pb::QueryAudienceRequest {
        rule: Some(rule),
        after_customer_id: String::new(),
        limit,
    })
}

fn scores(min: Option<i32>, max: Option<i32>) -> Option<pb::ScoreRange> {
    Some(pb::ScoreRange { min, max })
}

fn int64s(min: Option<i64>, max: Option<i64>) -> Option<pb::Int64Range> {
    Some(pb::Int64Range { min, max })
}

fn simulate(f: &Fixtures, edit: impl FnOnce(&mut pb::PolicyRules)) -> Call {
    let mut rules = innisfree_rules();
    edit(&mut rules);
    Call::Simulate(pb::SimulatePolicyRequest {
        program_id: f.program.clone(),
        policy: Some(pb::simulate_policy_request::Policy::Rules(rules)),
    })
}

/// The page-size bound of a list (0 means the default, 1 to 1,000 otherwise), both sides.
fn page_sizes(name: &'static str, list: impl Fn(i32) -> Call) -> Vec<(String, Call, Expect)> {
    [
        (0, Accepted),
        (1, Accepted),
        (1000, Accepted),
        (1001, Invalid("page_size")),
        (-1, Invalid("page_size")),
    ]
    .into_iter()
    .map(|(size, expect)| (format!("{name}: page_size {size}"), list(size), expect))
    .collect()
}

fn cases(f: &Fixtures) -> Vec<(String, Call, Expect)> {
    let p = f.program.as_str();
    // Page sizes of the lists (run first: the table ends by changing the policy in force).
    let lists = [
        page_sizes("list programs", |size| {
            Call::ListPrograms(pb::ListProgramsRequest {
                page_size: size,
                page_token: String::new(),
            })
        }),
        page_sizes("list policy versions", |size| {
            Call::ListPolicies(pb::ListPolicyVersionsRequest {
                program_id: f.program.clone(),
                page_size: size,
                ..Default::default()
            })
        }),
        page_sizes("tier history", |size| {
            Call::History(pb::GetTierHistoryRequest {
                program_id: f.program.clone(),
                customer_id: f.member.clone(),
                page_size: size,
                page_token: String::new(),
            })
        }),
        page_sizes("list runs", |size| {
            Call::ListRuns(pb::ListEvaluationRunsRequest {
                program_id: f.program.clone(),
                page_size: size,
                ..Default::default()
            })
        }),
    ];
    let table = vec![
        // ---- CreateProgram ----
        (
            "program: code of 32",
            program(&"A".repeat(32), |_| {}),
            Accepted,
        ),
        (
            "program: code of 33",
            program(&"A".repeat(33), |_| {}),
            Invalid("program.code"),
        ),
        (
            "program: code empty",
            program("", |_| {}),
            Invalid("program.code"),
        ),
        (
            "program: name of 200",
            program("NAME_200", |prog| prog.name = "가".repeat(200)),
            Accepted,
        ),
        (
            "program: name of 201",
            program("NAME_201", |prog| prog.name = "가".repeat(201)),
            Invalid("program.name"),
        ),
        (
            "program: name empty",
            program("NAME_0", |prog| prog.name = String::new()),
            Invalid("program.name"),
        ),
        (
            "program: currency not ISO 4217",
            program("WON", |prog| prog.currency = "WON".into()),
            Invalid("program.currency"),
        ),
        (
            "program: 2 tiers",
            program("TIERS_2", |prog| prog.tiers = ladder(2)),
            Accepted,
        ),
        (
            "program: 1 tier",
            program("TIERS_1", |prog| prog.tiers = ladder(1)),
            Invalid("program.tiers"),
        ),
        (
            "program: 20 tiers",
            program("TIERS_20", |prog| prog.tiers = ladder(20)),
            Accepted,
        ),
        (
            "program: 21 tiers",
            program("TIERS_21", |prog| prog.tiers = ladder(21)),
            Invalid("program.tiers"),
        ),
        (
            "program: a gap in the ranks",
            program("RANK_GAP", |prog| prog.tiers[3].rank = 4),
            Invalid("program.tiers[3].rank"),
        ),
        (
            "program: ranks all 0 (list order)",
            program("RANKS_0", |prog| {
                for tier in &mut prog.tiers {
                    tier.rank = 0;
                }
            }),
            Accepted,
        ),
        (
            "program: tier code of 32",
            program("TIER_CODE_32", |prog| prog.tiers[1].code = "T".repeat(32)),
            Accepted,
        ),
        (
            "program: tier code of 33",
            program("TIER_CODE_33", |prog| prog.tiers[1].code = "T".repeat(33)),
            Invalid("program.tiers[1].code"),
        ),
        (
            "program: tier name of 100",
            program("TIER_NAME_100", |prog| {
                prog.tiers[1].name = "가".repeat(100)
            }),
            Accepted,
        ),
        (
            "program: tier name of 101",
            program("TIER_NAME_101", |prog| {
                prog.tiers[1].name = "가".repeat(101)
            }),
            Invalid("program.tiers[1].name"),
        ),
        (
            "program: tier name empty",
            program("TIER_NAME_0", |prog| prog.tiers[1].name = String::new()),
            Invalid("program.tiers[1].name"),
        ),
        (
            "program: 50 benefits",
            program("BENEFITS_50", |prog| prog.tiers[0].benefits = benefits(50)),
            Accepted,
        ),
        (
            "program: 51 benefits",
            program("BENEFITS_51", |prog| prog.tiers[0].benefits = benefits(51)),
            Invalid("program.tiers[0].benefits"),
        ),
        (
            "program: benefit code of 64",
            program("BENEFIT_CODE_64", |prog| {
                prog.tiers[0].benefits[0].code = "B".repeat(64)
            }),
            Accepted,
        ),
        (
            "program: benefit code of 65",
            program("BENEFIT_CODE_65", |prog| {
                prog.tiers[0].benefits[0].code = "B".repeat(65)
            }),
            Invalid("program.tiers[0].benefits[0].code"),
        ),
        (
            "program: benefit description of 500",
            program("BENEFIT_TEXT_500", |prog| {
                prog.tiers[0].benefits[0].description = "d".repeat(500)
            }),
            Accepted,
        ),
        (
            "program: benefit description of 501",
            program("BENEFIT_TEXT_501", |prog| {
                prog.tiers[0].benefits[0].description = "d".repeat(501)
            }),
            Invalid("program.tiers[0].benefits[0].description"),
        ),
        (
            "program: benefit description empty",
            program("BENEFIT_TEXT_0", |prog| {
                prog.tiers[0].benefits[0].description = String::new()
            }),
            Invalid("program.tiers[0].benefits[0].description"),
        ),
        (
            "program: idempotency_key of 128",
            Call::CreateProgram(pb::CreateProgramRequest {
                program: Some(innisfree_program("KEY_128")),
                idempotency_key: "k".repeat(128),
            }),
            Accepted,
        ),
        (
            "program: idempotency_key of 129",
            Call::CreateProgram(pb::CreateProgramRequest {
                program: Some(innisfree_program("KEY_129")),
                idempotency_key: "k".repeat(129),
            }),
            Invalid("idempotency_key"),
        ),
        // ---- CreatePolicyVersion: the request ----
        (
            "policy: description of 2,000",
            create_policy(p, |r| r.description = "d".repeat(2000)),
            Accepted,
        ),
        (
            "policy: description of 2,001",
            create_policy(p, |r| r.description = "d".repeat(2001)),
            Invalid("description"),
        ),
        (
            "policy: created_by of 128",
            create_policy(p, |r| r.created_by = "o".repeat(128)),
            Accepted,
        ),
        (
            "policy: created_by of 129",
            create_policy(p, |r| r.created_by = "o".repeat(129)),
            Invalid("created_by"),
        ),
        (
            "policy: created_by empty",
            create_policy(p, |r| r.created_by = String::new()),
            Invalid("created_by"),
        ),
        (
            "policy: idempotency_key of 128",
            create_policy(p, |r| r.idempotency_key = "c".repeat(128)),
            Accepted,
        ),
        (
            "policy: idempotency_key of 129",
            create_policy(p, |r| r.idempotency_key = "c".repeat(129)),
            Invalid("idempotency_key"),
        ),
        // ---- CreatePolicyVersion: the rules ----
        (
            "rules: a rule missing",
            rules(p, |r| r.tiers.truncate(3)),
            Invalid("rules.tiers"),
        ),
        (
            "rules: base tier with a requirement",
            rules(p, |r| {
                r.tiers[0].requirements = vec![requirement(pb::MetricKind::NetSpend, 1)]
            }),
            Invalid("rules.tiers[0].requirements"),
        ),
        (
            "rules: upper tier without requirements",
            rules(p, |r| r.tiers[1].requirements.clear()),
            Invalid("rules.tiers[1].requirements"),
        ),
        (
            "rules: a metric twice in a tier",
            rules(p, |r| {
                r.tiers[3]
                    .requirements
                    .push(requirement(pb::MetricKind::NetSpend, 2_000_000))
            }),
            Invalid("rules.tiers[3].requirements[2].metric"),
        ),
        (
            "rules: metric UNSPECIFIED",
            rules(p, |r| {
                r.tiers[1].requirements[0].metric = pb::MetricKind::Unspecified.into()
            }),
            Invalid("rules.tiers[1].requirements[0].metric"),
        ),
        (
            "rules: threshold 1",
            rules(p, |r| r.tiers[1].requirements[0].threshold = 1),
            Accepted,
        ),
        (
            "rules: threshold 0",
            rules(p, |r| r.tiers[1].requirements[0].threshold = 0),
            Invalid("rules.tiers[1].requirements[0].threshold"),
        ),
        (
            "rules: earn rate 1,000,000",
            rules(p, |r| r.tiers[0].points_earn_rate_bps = 1_000_000),
            Accepted,
        ),
        (
            "rules: earn rate 1,000,001",
            rules(p, |r| r.tiers[0].points_earn_rate_bps = 1_000_001),
            Invalid("rules.tiers[0].points_earn_rate_bps"),
        ),
        (
            "rules: earn rate -1",
            rules(p, |r| r.tiers[0].points_earn_rate_bps = -1),
            Invalid("rules.tiers[0].points_earn_rate_bps"),
        ),
        (
            "rules: window kind UNSPECIFIED",
            rules(p, |r| r.window = window(pb::WindowKind::Unspecified, 12)),
            Invalid("rules.window.kind"),
        ),
        (
            "rules: rolling_months 1",
            rules(p, |r| r.window = window(pb::WindowKind::RollingMonths, 1)),
            Accepted,
        ),
        (
            "rules: rolling_months 120",
            rules(p, |r| r.window = window(pb::WindowKind::RollingMonths, 120)),
            Accepted,
        ),
        (
            "rules: rolling_months 0",
            rules(p, |r| r.window = window(pb::WindowKind::RollingMonths, 0)),
            Invalid("rules.window.rolling_months"),
        ),
        (
            "rules: rolling_months 121",
            rules(p, |r| r.window = window(pb::WindowKind::RollingMonths, 121)),
            Invalid("rules.window.rolling_months"),
        ),
        (
            "rules: LIFETIME, rolling_months 0",
            rules(p, |r| r.window = window(pb::WindowKind::Lifetime, 0)),
            Accepted,
        ),
        (
            "rules: LIFETIME, rolling_months 12",
            rules(p, |r| r.window = window(pb::WindowKind::Lifetime, 12)),
            Invalid("rules.window.rolling_months"),
        ),
        (
            "rules: time zone not IANA",
            rules(p, |r| r.time_zone = "Mars/Olympus".into()),
            Invalid("rules.time_zone"),
        ),
        (
            "rules: frequency UNSPECIFIED",
            rules(p, |r| {
                schedule(r).frequency = pb::EvaluationFrequency::Unspecified.into()
            }),
            Invalid("rules.evaluation_schedule.frequency"),
        ),
        (
            "rules: day_of_month 28",
            rules(p, |r| schedule(r).day_of_month = 28),
            Accepted,
        ),
        (
            "rules: day_of_month 29",
            rules(p, |r| schedule(r).day_of_month = 29),
            Invalid("rules.evaluation_schedule.day_of_month"),
        ),
        (
            "rules: day_of_month 0",
            rules(p, |r| schedule(r).day_of_month = 0),
            Invalid("rules.evaluation_schedule.day_of_month"),
        ),
        (
            "rules: monthly, month_of_year 1",
            rules(p, |r| schedule(r).month_of_year = 1),
            Invalid("rules.evaluation_schedule.month_of_year"),
        ),
        (
            "rules: yearly, month_of_year 1",
            rules(p, |r| yearly(r, 1)),
            Accepted,
        ),
        (
            "rules: yearly, month_of_year 12",
            rules(p, |r| yearly(r, 12)),
            Accepted,
        ),
        (
            "rules: yearly, month_of_year 0",
            rules(p, |r| yearly(r, 0)),
            Invalid("rules.evaluation_schedule.month_of_year"),
        ),
        (
            "rules: yearly, month_of_year 13",
            rules(p, |r| yearly(r, 13)),
            Invalid("rules.evaluation_schedule.month_of_year"),
        ),
        (
            "rules: local_hour 0",
            rules(p, |r| schedule(r).local_hour = 0),
            Accepted,
        ),
        (
            "rules: local_hour 23",
            rules(p, |r| schedule(r).local_hour = 23),
            Accepted,
        ),
        (
            "rules: local_hour 24",
            rules(p, |r| schedule(r).local_hour = 24),
            Invalid("rules.evaluation_schedule.local_hour"),
        ),
        (
            "rules: local_hour -1",
            rules(p, |r| schedule(r).local_hour = -1),
            Invalid("rules.evaluation_schedule.local_hour"),
        ),
        (
            "rules: local_minute 59",
            rules(p, |r| schedule(r).local_minute = 59),
            Accepted,
        ),
        (
            "rules: local_minute 60",
            rules(p, |r| schedule(r).local_minute = 60),
            Invalid("rules.evaluation_schedule.local_minute"),
        ),
        (
            "rules: local_minute -1",
            rules(p, |r| schedule(r).local_minute = -1),
            Invalid("rules.evaluation_schedule.local_minute"),
        ),
        ("rules: grace 0", rules(p, |r| r.grace_months = 0), Accepted),
        (
            "rules: grace 36",
            rules(p, |r| r.grace_months = 36),
            Accepted,
        ),
        (
            "rules: grace 37",
            rules(p, |r| r.grace_months = 37),
            Invalid("rules.grace_months"),
        ),
        (
            "rules: grace -1",
            rules(p, |r| r.grace_months = -1),
            Invalid("rules.grace_months"),
        ),
        (
            "rules: max_levels_dropped 1",
            rules(p, |r| r.max_levels_dropped = Some(1)),
            Accepted,
        ),
        (
            "rules: max_levels_dropped 20",
            rules(p, |r| r.max_levels_dropped = Some(20)),
            Accepted,
        ),
        (
            "rules: max_levels_dropped 21",
            rules(p, |r| r.max_levels_dropped = Some(21)),
            Invalid("rules.max_levels_dropped"),
        ),
        (
            "rules: max_levels_dropped 0",
            rules(p, |r| r.max_levels_dropped = Some(0)),
            Invalid("rules.max_levels_dropped"),
        ),
        (
            "rules: new_days 1",
            rules(p, |r| r.lifecycle = lifecycle(Some(1), None, None)),
            Accepted,
        ),
        (
            "rules: new_days 3,650",
            rules(p, |r| r.lifecycle = lifecycle(Some(3650), None, None)),
            Accepted,
        ),
        (
            "rules: new_days 0",
            rules(p, |r| r.lifecycle = lifecycle(Some(0), None, None)),
            Invalid("rules.lifecycle.new_days"),
        ),
        (
            "rules: new_days 3,651",
            rules(p, |r| r.lifecycle = lifecycle(Some(3651), None, None)),
            Invalid("rules.lifecycle.new_days"),
        ),
        (
            "rules: at_risk_days 1",
            rules(p, |r| r.lifecycle = lifecycle(None, Some(1), None)),
            Accepted,
        ),
        (
            "rules: at_risk_days 0",
            rules(p, |r| r.lifecycle = lifecycle(None, Some(0), None)),
            Invalid("rules.lifecycle.at_risk_days"),
        ),
        (
            "rules: at_risk_days 3,649, dormant_days 3,650",
            rules(p, |r| r.lifecycle = lifecycle(None, Some(3649), Some(3650))),
            Accepted,
        ),
        (
            "rules: at_risk_days 3,651, dormant_days 3,650",
            rules(p, |r| r.lifecycle = lifecycle(None, Some(3651), Some(3650))),
            Invalid("rules.lifecycle.at_risk_days"),
        ),
        (
            "rules: at_risk_days equal to dormant_days",
            rules(p, |r| r.lifecycle = lifecycle(None, Some(365), Some(365))),
            Invalid("rules.lifecycle.at_risk_days"),
        ),
        (
            "rules: dormant_days 2, at_risk_days 1",
            rules(p, |r| r.lifecycle = lifecycle(None, Some(1), Some(2))),
            Accepted,
        ),
        (
            "rules: dormant_days 3,650",
            rules(p, |r| r.lifecycle = lifecycle(None, None, Some(3650))),
            Accepted,
        ),
        (
            "rules: dormant_days 3,651",
            rules(p, |r| r.lifecycle = lifecycle(None, None, Some(3651))),
            Invalid("rules.lifecycle.dormant_days"),
        ),
        (
            "rules: dormant_days 0",
            rules(p, |r| r.lifecycle = lifecycle(None, None, Some(0))),
            Invalid("rules.lifecycle.dormant_days"),
        ),
        (
            "rules: rfm window 1",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: Some(1),
                    min_population: None,
                })
            }),
            Accepted,
        ),
        (
            "rules: rfm window 120",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: Some(120),
                    min_population: None,
                })
            }),
            Accepted,
        ),
        (
            "rules: rfm window 0",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: Some(0),
                    min_population: None,
                })
            }),
            Invalid("rules.rfm.window_months"),
        ),
        (
            "rules: rfm window 121",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: Some(121),
                    min_population: None,
                })
            }),
            Invalid("rules.rfm.window_months"),
        ),
        (
            "rules: rfm min_population 5",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: None,
                    min_population: Some(5),
                })
            }),
            Accepted,
        ),
        (
            "rules: rfm min_population 1,000,000",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: None,
                    min_population: Some(1_000_000),
                })
            }),
            Accepted,
        ),
        (
            "rules: rfm min_population 4",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: None,
                    min_population: Some(4),
                })
            }),
            Invalid("rules.rfm.min_population"),
        ),
        (
            "rules: rfm min_population 1,000,001",
            rules(p, |r| {
                r.rfm = Some(pb::RfmSettings {
                    window_months: None,
                    min_population: Some(1_000_001),
                })
            }),
            Invalid("rules.rfm.min_population"),
        ),
        (
            "rules: value horizon 1",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    horizon_months: Some(1),
                    ..Default::default()
                })
            }),
            Accepted,
        ),
        (
            "rules: value horizon 60",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    horizon_months: Some(60),
                    ..Default::default()
                })
            }),
            Accepted,
        ),
        (
            "rules: value horizon 0",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    horizon_months: Some(0),
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.horizon_months"),
        ),
        (
            "rules: value horizon 61",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    horizon_months: Some(61),
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.horizon_months"),
        ),
        (
            "rules: purchase horizons 1 and 3650, five of them",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    expected_purchase_days: vec![1, 30, 90, 365, 3650],
                    ..Default::default()
                })
            }),
            Accepted,
        ),
        (
            "rules: six purchase horizons",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    expected_purchase_days: vec![1, 2, 3, 4, 5, 6],
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.expected_purchase_days"),
        ),
        (
            "rules: purchase horizon 0",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    expected_purchase_days: vec![0],
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.expected_purchase_days"),
        ),
        (
            "rules: purchase horizon 3651",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    expected_purchase_days: vec![3651],
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.expected_purchase_days"),
        ),
        (
            "rules: a purchase horizon twice",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    expected_purchase_days: vec![90, 90],
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.expected_purchase_days"),
        ),
        (
            "rules: discount 0 and 10,000 bps",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    monthly_discount_bps: Some(10_000),
                    ..Default::default()
                })
            }),
            Accepted,
        ),
        (
            "rules: discount -1 bps",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    monthly_discount_bps: Some(-1),
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.monthly_discount_bps"),
        ),
        (
            "rules: discount 10,001 bps",
            rules(p, |r| {
                r.value_model = Some(pb::ValueModelSettings {
                    monthly_discount_bps: Some(10_001),
                    ..Default::default()
                })
            }),
            Invalid("rules.value_model.monthly_discount_bps"),
        ),
        // ---- GetPolicy ----
        (
            "get policy: no selector",
            Call::GetPolicy(pb::GetPolicyRequest { selector: None }),
            Invalid("selector"),
        ),
        // ---- UpdateDraftPolicy ----
        (
            "update draft: description of 2,000",
            Call::UpdateDraft(pb::UpdateDraftPolicyRequest {
                policy_version_id: f.draft.clone(),
                rules: Some(innisfree_rules()),
                description: Some("d".repeat(2000)),
                expected_revision: None,
            }),
            Accepted,
        ),
        (
            "update draft: description of 2,001",
            Call::UpdateDraft(pb::UpdateDraftPolicyRequest {
                policy_version_id: f.draft.clone(),
                rules: Some(innisfree_rules()),
                description: Some("d".repeat(2001)),
                expected_revision: None,
            }),
            Invalid("description"),
        ),
        (
            "update draft: grace 37",
            Call::UpdateDraft(pb::UpdateDraftPolicyRequest {
                policy_version_id: f.draft.clone(),
                rules: Some(pb::PolicyRules {
                    grace_months: 37,
                    ..innisfree_rules()
                }),
                description: None,
                expected_revision: None,
            }),
            Invalid("rules.grace_months"),
        ),
        // ---- SimulatePolicy ----
        (
            "simulate: grace 36",
            simulate(f, |r| r.grace_months = 36),
            Accepted,
        ),
        (
            "simulate: grace 37",
            simulate(f, |r| r.grace_months = 37),
            Invalid("rules.grace_months"),
        ),
        (
            "simulate: no policy",
            Call::Simulate(pb::SimulatePolicyRequest {
                program_id: f.program.clone(),
                policy: None,
            }),
            Invalid("policy"),
        ),
        // ---- BatchGetTiers, GetScores ----
        (
            "batch tiers: 0 ids",
            Call::BatchGetTiers(pb::BatchGetTiersRequest {
                program_id: f.program.clone(),
                customer_ids: ids(0),
            }),
            Invalid("customer_ids"),
        ),
        (
            "batch tiers: 1 id",
            Call::BatchGetTiers(pb::BatchGetTiersRequest {
                program_id: f.program.clone(),
                customer_ids: ids(1),
            }),
            Accepted,
        ),
        (
            "batch tiers: 1,000 ids",
            Call::BatchGetTiers(pb::BatchGetTiersRequest {
                program_id: f.program.clone(),
                customer_ids: ids(1000),
            }),
            Accepted,
        ),
        (
            "batch tiers: 1,001 ids",
            Call::BatchGetTiers(pb::BatchGetTiersRequest {
                program_id: f.program.clone(),
                customer_ids: ids(1001),
            }),
            Invalid("customer_ids"),
        ),
        (
            "scores: 0 ids",
            Call::Scores(pb::GetScoresRequest {
                program_id: f.program.clone(),
                customer_ids: ids(0),
            }),
            Invalid("customer_ids"),
        ),
        (
            "scores: 1 id",
            Call::Scores(pb::GetScoresRequest {
                program_id: f.program.clone(),
                customer_ids: ids(1),
            }),
            Accepted,
        ),
        (
            "scores: 1,000 ids",
            Call::Scores(pb::GetScoresRequest {
                program_id: f.program.clone(),
                customer_ids: ids(1000),
            }),
            Accepted,
        ),
        (
            "scores: 1,001 ids",
            Call::Scores(pb::GetScoresRequest {
                program_id: f.program.clone(),
                customer_ids: ids(1001),
            }),
            Invalid("customer_ids"),
        ),
        // ---- ExplainTier ----
        (
            "explain: max_history 1",
            explain(f, Some(1), None),
            Accepted,
        ),
        (
            "explain: max_history 100",
            explain(f, Some(100), None),
            Accepted,
        ),
        (
            "explain: max_history 0",
            explain(f, Some(0), None),
            Invalid("max_history"),
        ),
        (
            "explain: max_history 101",
            explain(f, Some(101), None),
            Invalid("max_history"),
        ),
        (
            "explain: max_activities 1",
            explain(f, None, Some(1)),
            Accepted,
        ),
        (
            "explain: max_activities 1,000",
            explain(f, None, Some(1000)),
            Accepted,
        ),
        (
            "explain: max_activities 0",
            explain(f, None, Some(0)),
            Invalid("max_activities"),
        ),
        (
            "explain: max_activities 1,001",
            explain(f, None, Some(1001)),
            Invalid("max_activities"),
        ),
        // ---- SetTierOverride ----
        (
            "override: tier not on the ladder",
            override_tier(f, |r| r.tier_code = "GOLD".into()),
            Invalid("tier_code"),
        ),
        (
            "override: expires in a minute",
            override_tier(f, |r| r.expires_at = Some(seconds_ahead(60))),
            Accepted,
        ),
        (
            "override: expired a minute ago",
            override_tier(f, |r| r.expires_at = Some(seconds_ahead(-60))),
            Invalid("expires_at"),
        ),
        (
            "override: no expiry",
            override_tier(f, |r| r.expires_at = None),
            Invalid("expires_at"),
        ),
        (
            "override: just under five years",
            override_tier(f, |r| r.expires_at = Some(days_ahead(365 * 5 - 2))),
            Accepted,
        ),
        (
            "override: a week past five years",
            override_tier(f, |r| r.expires_at = Some(days_ahead(365 * 5 + 7))),
            Invalid("expires_at"),
        ),
        (
            "override: reason of 500",
            override_tier(f, |r| r.reason = "r".repeat(500)),
            Accepted,
        ),
        (
            "override: reason of 501",
            override_tier(f, |r| r.reason = "r".repeat(501)),
            Invalid("reason"),
        ),
        (
            "override: reason empty",
            override_tier(f, |r| r.reason = String::new()),
            Invalid("reason"),
        ),
        (
            "override: operator of 128",
            override_tier(f, |r| r.operator_name = "o".repeat(128)),
            Accepted,
        ),
        (
            "override: operator of 129",
            override_tier(f, |r| r.operator_name = "o".repeat(129)),
            Invalid("operator_name"),
        ),
        (
            "override: idempotency_key of 128",
            override_tier(f, |r| r.idempotency_key = "s".repeat(128)),
            Accepted,
        ),
        (
            "override: idempotency_key of 129",
            override_tier(f, |r| r.idempotency_key = "s".repeat(129)),
            Invalid("idempotency_key"),
        ),
        // ---- ClearTierOverride ----
        (
            "clear: reason of 500",
            clear_override(f, |r| r.reason = "r".repeat(500)),
            Accepted,
        ),
        (
            "clear: reason of 501",
            clear_override(f, |r| r.reason = "r".repeat(501)),
            Invalid("reason"),
        ),
        (
            "clear: reason empty",
            clear_override(f, |r| r.reason = String::new()),
            Invalid("reason"),
        ),
        (
            "clear: operator of 128",
            clear_override(f, |r| r.operator_name = "o".repeat(128)),
            Accepted,
        ),
        (
            "clear: operator of 129",
            clear_override(f, |r| r.operator_name = "o".repeat(129)),
            Invalid("operator_name"),
        ),
        (
            "clear: idempotency_key of 128",
            clear_override(f, |r| r.idempotency_key = "x".repeat(128)),
            Accepted,
        ),
        (
            "clear: idempotency_key of 129",
            clear_override(f, |r| r.idempotency_key = "x".repeat(129)),
            Invalid("idempotency_key"),
        ),
        // ---- QueryAudience ----
        ("audience: limit 1", audience(f, Some(1), |_| {}), Accepted),
        (
            "audience: limit 0",
            audience(f, Some(0), |_| {}),
            Invalid("limit"),
        ),
        (
            "audience: program_id empty",
            audience(f, None, |r| r.program_id = String::new()),
            Invalid("rule.program_id"),
        ),
        (
            "audience: r_score 1 to 5",
            audience(f, None, |r| r.r_score = scores(Some(1), Some(5))),
            Accepted,
        ),
        (
            "audience: r_score min 0",
            audience(f, None, |r| r.r_score = scores(Some(0), None)),
            Invalid("rule.r_score"),
        ),
        (
            "audience: r_score max 6",
            audience(f, None, |r| r.r_score = scores(None, Some(6))),
            Invalid("rule.r_score"),
        ),
        (
            "audience: r_score min above max",
            audience(f, None, |r| r.r_score = scores(Some(4), Some(3))),
            Invalid("rule.r_score"),
        ),
        (
            "audience: f_score max 6",
            audience(f, None, |r| r.f_score = scores(None, Some(6))),
            Invalid("rule.f_score"),
        ),
        (
            "audience: m_score min 0",
            audience(f, None, |r| r.m_score = scores(Some(0), None)),
            Invalid("rule.m_score"),
        ),
        (
            "audience: net spend min = max",
            audience(f, None, |r| r.net_spend_minor = int64s(Some(10), Some(10))),
            Accepted,
        ),
        (
            "audience: net spend min above max",
            audience(f, None, |r| r.net_spend_minor = int64s(Some(11), Some(10))),
            Invalid("rule.net_spend_minor"),
        ),
        (
            "audience: probability alive 0 to 1",
            audience(f, None, |r| {
                r.probability_alive = Some(pb::DoubleRange {
                    min: Some(0.0),
                    max: Some(1.0),
                })
            }),
            Accepted,
        ),
        (
            "audience: probability alive above 1",
            audience(f, None, |r| {
                r.probability_alive = Some(pb::DoubleRange {
                    min: None,
                    max: Some(1.5),
                })
            }),
            Invalid("rule.probability_alive"),
        ),
        (
            "audience: probability alive min above max",
            audience(f, None, |r| {
                r.probability_alive = Some(pb::DoubleRange {
                    min: Some(0.6),
                    max: Some(0.4),
                })
            }),
            Invalid("rule.probability_alive"),
        ),
        (
            "audience: predicted value min above max",
            audience(f, None, |r| {
                r.predicted_value_minor = int64s(Some(11), Some(10))
            }),
            Invalid("rule.predicted_value_minor"),
        ),
        (
            "audience: recency min above max",
            audience(f, None, |r| {
                r.days_since_last_purchase = int64s(Some(5), Some(4))
            }),
            Invalid("rule.days_since_last_purchase"),
        ),
        (
            "audience: segment CHAMPIONS",
            audience(f, None, |r| {
                r.segments = vec![pb::RfmSegment::Champions.into()]
            }),
            Accepted,
        ),
        (
            "audience: segment UNSPECIFIED",
            audience(f, None, |r| {
                r.segments = vec![pb::RfmSegment::Unspecified.into()]
            }),
            Invalid("rule.segments"),
        ),
        (
            "audience: lifecycle ACTIVE",
            audience(f, None, |r| {
                r.lifecycle_states = vec![pb::LifecycleState::Active.into()]
            }),
            Accepted,
        ),
        (
            "audience: lifecycle UNSPECIFIED",
            audience(f, None, |r| {
                r.lifecycle_states = vec![pb::LifecycleState::Unspecified.into()]
            }),
            Invalid("rule.lifecycle_states"),
        ),
        (
            "audience: tier on the ladder",
            audience(f, None, |r| r.tier_codes = vec!["VIP".into()]),
            Accepted,
        ),
        (
            "audience: tier not on the ladder",
            audience(f, None, |r| r.tier_codes = vec!["GOLD".into()]),
            Invalid("rule.tier_codes[0]"),
        ),
        // ---- EvaluateNow, GetEvaluationRun ----
        (
            "evaluate: requested_by of 128",
            evaluate(f, |r| r.requested_by = "o".repeat(128)),
            Accepted,
        ),
        (
            "evaluate: requested_by of 129",
            evaluate(f, |r| r.requested_by = "o".repeat(129)),
            Invalid("requested_by"),
        ),
        (
            "evaluate: requested_by empty",
            evaluate(f, |r| r.requested_by = String::new()),
            Invalid("requested_by"),
        ),
        (
            "evaluate: idempotency_key of 128",
            evaluate(f, |r| r.idempotency_key = "e".repeat(128)),
            Accepted,
        ),
        (
            "evaluate: idempotency_key of 129",
            evaluate(f, |r| r.idempotency_key = "e".repeat(129)),
            Invalid("idempotency_key"),
        ),
        (
            "run: malformed id",
            Call::GetRun(pb::GetEvaluationRunRequest {
                evaluation_run_id: "not-an-id".into(),
            }),
            Invalid("evaluation_run_id"),
        ),
        (
            "run: unknown id",
            Call::GetRun(pb::GetEvaluationRunRequest {
                evaluation_run_id: Uuid::now_v7().to_string(),
            }),
            Refused(Code::NotFound),
        ),
        // ---- RetirePolicy ----
        (
            "retire: retired_by of 129",
            Call::Retire(pb::RetirePolicyRequest {
                policy_version_id: f.to_retire.clone(),
                retired_by: "o".repeat(129),
            }),
            Invalid("retired_by"),
        ),
        (
            "retire: retired_by empty",
            Call::Retire(pb::RetirePolicyRequest {
                policy_version_id: f.to_retire.clone(),
                retired_by: String::new(),
            }),
            Invalid("retired_by"),
        ),
        (
            "retire: retired_by of 128",
            Call::Retire(pb::RetirePolicyRequest {
                policy_version_id: f.to_retire.clone(),
                retired_by: "o".repeat(128),
            }),
            Accepted,
        ),
        // ---- ActivatePolicy (last: it changes the policy in force) ----
        (
            "activate: activated_by of 129",
            Call::Activate(pb::ActivatePolicyRequest {
                policy_version_id: f.to_activate.clone(),
                activated_by: "o".repeat(129),
                expected_revision: None,
            }),
            Invalid("activated_by"),
        ),
        (
            "activate: activated_by empty",
            Call::Activate(pb::ActivatePolicyRequest {
                policy_version_id: f.to_activate.clone(),
                activated_by: String::new(),
                expected_revision: None,
            }),
            Invalid("activated_by"),
        ),
        (
            "activate: activated_by of 128",
            Call::Activate(pb::ActivatePolicyRequest {
                policy_version_id: f.to_activate.clone(),
                activated_by: "o".repeat(128),
                expected_revision: None,
            }),
            Accepted,
        ),
    ];
    lists
        .into_iter()
        .flatten()
        .chain(
            table
                .into_iter()
                .map(|(case, call, expect)| (case.to_owned(), call, expect)),
        )
        .collect()
}

#[tokio::test]
async fn every_documented_bound_holds_on_both_sides() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let fixtures = Fixtures::create(&app, &mut client).await;
    let mut failures = Vec::new();
    for (case, call, expect) in cases(&fixtures) {
        let outcome = send(&mut client, call).await;
        if let Err(why) = verdict(expect, &outcome) {
            failures.push(format!("{case}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) broke the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
