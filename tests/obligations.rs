//! Regulator obligations through the running daemon: grades and deadlines from the shipped
//! jurisdiction packs, recomputed when facts and clocks change, reminders and a missed
//! deadline paging the owner across a restart, what meets an obligation, the list by time left,
//! and a changed pack re-assessing open incidents on reload.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use common::sink::Sink;
use common::{Backend, INGEST, Member, RESPONDER, TestApp, repo, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_pi_incident_is_graded_and_owes_reports_with_exact_deadlines_and_why,
    a_facts_change_regrades_and_withdraws_what_no_longer_applies,
    reminders_and_a_missed_deadline_page_the_owner_across_a_restart,
    tasks_campaign_holds_and_people_meet_obligations,
    an_incident_opened_by_alerts_is_assessed_and_listed_by_time_left,
    a_changed_pack_reassesses_open_incidents_on_reload,
    closing_starts_the_closing_report_clock_and_a_false_positive_owes_nothing,
);

/// The daemon's config additions: shipped templates and playbooks, the given packs folder,
/// SMS to the sink, and the six departments (level-1 on-call, level-2 lead).
fn config(sink: &Sink, packs: &Path) -> String {
    [
        common::paths(&[("jurisdictions", packs)]),
        "\n[dispatch]\npoll_interval = \"100ms\"\n".to_string(),
        common::phone_gateways(sink, &["sms"]),
        common::page_every_severity_by(r#"["sms"]"#),
        common::departments("1h", |n, d| vec![Member::on_call(n, d), Member::head(n, d)]),
    ]
    .concat()
}

fn shipped() -> PathBuf {
    repo().join("config/jurisdictions")
}

/// A one-obligation pack with a short window, for timers: `XT` owes a report 8 s after
/// discovery once 10 or more people are affected, with a reminder at 50 %.
const TEST_PACK: &str = r#"
code = "XT"
name = "Test pack"
locale = "en"
timezone = "+00:00"

[[grades]]
id = "high"
name = "High"
[[grades.criteria]]
id = "ten"
text = "10 or more people"
when = { affected_subjects_at_least = 10 }

[[grades]]
id = "low"
name = "Low"

[recipients.reg]
name = "Test regulator"

[[obligations]]
id = "report"
title = "Report to the test regulator"
kind = "report"
report = "r"
recipient = "reg"
law = "Test law s 1"
when = { grade_at_least = "high" }
clock = "discovered_at"
deadline = "WINDOW"
owner = "government_relations"
reminders = [50]

[reports.r]
kind = "initial"
template = "regulator/eu_sa"
required = []
"#;

fn test_pack(dir: &Path, window: &str) -> PathBuf {
    let packs = dir.join("packs");
    std::fs::create_dir_all(&packs).unwrap();
    std::fs::write(packs.join("xt.toml"), TEST_PACK.replace("WINDOW", window)).unwrap();
    packs
}

async fn regulation(app: &TestApp, id: i64) -> Value {
    let (s, v) = app
        .get(&format!("/api/v1/incidents/{id}/obligations"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn obligation<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == key)
        .unwrap_or_else(|| panic!("no obligation {key} in {v:#}"))
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}={}",
                o["key"].as_str().unwrap(),
                o["standing"].as_str().unwrap()
            )
        })
        .collect();
    k.sort();
    k
}

fn grade<'a>(v: &'a Value, j: &str) -> &'a Value {
    v["grades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["jurisdiction"] == j)
        .unwrap_or_else(|| panic!("no grade for {j} in {v:#}"))
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// A time a whole number of seconds in the past (RFC 3339 round-trips exactly).
fn ago(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() - secs, 0).unwrap()
}

async fn a_pi_incident_is_graded_and_owes_reports_with_exact_deadlines_and_why(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &shipped())).await else {
        return;
    };
    let discovered = ago(1800);
    let aware = ago(1200);
    let inc = app
        .declare(&json!({
            "title": "会员库被拖库",
            "category": "pi_leak",
            "discovered_at": discovered,
            "aware_at": aware,
            "facts": {
                "affected_subjects": 1_200_000,
                "data_types": ["name", "phone", "bank_account"],
                "jurisdictions": ["CN", "SG", "EU"],
                "risk": "high"
            }
        }))
        .await;
    let id = inc["id"].as_i64().unwrap();
    let v = regulation(&app, id).await;

    // Grades, each with the criterion and the facts that met it.
    let cn = grade(&v, "CN");
    assert_eq!(
        (cn["grade"].as_str(), cn["criterion"].as_str()),
        (Some("III"), Some("pi_1m"))
    );
    assert!(
        cn["why"]
            .as_str()
            .unwrap()
            .contains("affected_subjects 1,200,000 ≥ 1,000,000"),
        "{cn}"
    );
    let sg = grade(&v, "SG");
    assert_eq!(
        (sg["grade"].as_str(), sg["criterion"].as_str()),
        (Some("notifiable_harm"), Some("identity_plus_prescribed"))
    );
    assert!(
        sg["why"].as_str().unwrap().contains("name + bank_account"),
        "{sg}"
    );
    assert_eq!(grade(&v, "EU")["grade"], "high_risk");

    assert_eq!(
        keys(&v),
        [
            "CN:cac_closing=required",
            "CN:cac_report_other=required",
            "CN:pipl_authority=required",
            "CN:pipl_individuals=required",
            "EU:data_subjects=required",
            "EU:record=required",
            "EU:sa_report=required",
            "SG:assessment=required",
            "SG:individuals=required",
            "SG:pdpc_report=required",
        ]
    );
    // CN, other operator: 4 hours from discovery, to the provincial cyberspace administration.
    let r = obligation(&v, "CN:cac_report_other");
    assert_eq!(ts(&r["due_at"]), discovered + chrono::Duration::hours(4));
    assert_eq!(r["recipient"], "cac_provincial");
    assert_eq!(r["owner"], "government_relations");
    let why = r["why"].to_string();
    assert!(why.contains("report within 4 hours of discovery"), "{why}");
    assert!(
        why.contains("operator type other") && why.contains("grade III ≥ III"),
        "{why}"
    );
    // PIPL art. 57 authority notice counts from awareness; EU 72 hours from awareness.
    assert_eq!(
        ts(&obligation(&v, "CN:pipl_authority")["due_at"]),
        aware + chrono::Duration::hours(24)
    );
    assert_eq!(
        ts(&obligation(&v, "EU:sa_report")["due_at"]),
        aware + chrono::Duration::hours(72)
    );
    // The closing report waits for handling to end.
    let closing = obligation(&v, "CN:cac_closing");
    assert!(closing["due_at"].is_null());
    assert_eq!(closing["time_left"], "waits for handling_closed_at");
    // Every breach is recorded (EU): met by the incident record at once.
    let record = obligation(&v, "EU:record");
    assert_eq!(
        (record["status"].as_str(), record["met_ref"].as_str()),
        (Some("met"), Some("incident record"))
    );

    // SG: notifiable, so the assessment clock started now; the PDPC is due at the end of the
    // third calendar day after that day, Singapore time. The assessment itself is a person's:
    // the clock starting does not meet it.
    let inc = app.incident(id).await;
    let assessed = ts(&inc["assessed_notifiable_at"]);
    assert!((Utc::now() - assessed).num_seconds().abs() < 60);
    let sgt = FixedOffset::east_opt(8 * 3600).unwrap();
    let end = (assessed.with_timezone(&sgt).date_naive() + chrono::Days::new(4))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(sgt)
        .unwrap()
        .with_timezone(&Utc)
        - chrono::Duration::microseconds(1);
    assert_eq!(ts(&obligation(&v, "SG:pdpc_report")["due_at"]), end);
    let assessment = obligation(&v, "SG:assessment");
    assert_eq!(
        (
            assessment["status"].as_str(),
            assessment["met_ref"].as_str()
        ),
        (Some("open"), None),
        "{assessment}"
    );
    assert_eq!(app.events(id, "incident.clock_started").await.len(), 1);
    // A person records the assessment, with what shows it.
    let (s, met) = app
        .post(
            &format!("/api/v1/incidents/{id}/obligations/SG:assessment/met"),
            RESPONDER,
            &json!({"reference": "DPO assessment memo 2026-03"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{met}");
    let v = regulation(&app, id).await;
    let assessment = obligation(&v, "SG:assessment");
    assert_eq!(
        (
            assessment["status"].as_str(),
            assessment["met_ref"].as_str(),
            assessment["met_by"].as_str()
        ),
        (
            Some("met"),
            Some("DPO assessment memo 2026-03"),
            Some("token:responder")
        ),
        "{assessment}"
    );
    assert_eq!(app.events(id, "grade.changed").await.len(), 3);
    // The incident itself shows the same.
    assert_eq!(
        inc["regulation"]["obligations"].as_array().unwrap().len(),
        10
    );
    assert_eq!(app.verify().await.broken_at, None);
    app.stop().await;
}

async fn a_facts_change_regrades_and_withdraws_what_no_longer_applies(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &shipped())).await else {
        return;
    };
    let discovered = ago(600);
    let id = app
        .declare(&json!({
            "title": "订单导出接口越权",
            "category": "pi_leak",
            "discovered_at": discovered,
            "facts": {"affected_subjects": 999_999, "jurisdictions": ["CN"]}
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    let v = regulation(&app, id).await;
    assert_eq!(grade(&v, "CN")["grade"], "IV");
    assert!(
        !keys(&v).iter().any(|k| k.starts_with("CN:cac_report")),
        "{v:#}"
    );

    // At the threshold: relatively major; the 4-hour report is owed.
    let (s, b) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"affected_subjects": 1_000_000}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v = regulation(&app, id).await;
    assert_eq!(grade(&v, "CN")["grade"], "III");
    assert_eq!(
        obligation(&v, "CN:cac_report_other")["standing"],
        "required"
    );

    // Critical information infrastructure involved: 1 hour, to the CII protection department.
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &json!({"critical_infrastructure": true}),
    )
    .await;
    let v = regulation(&app, id).await;
    assert_eq!(
        obligation(&v, "CN:cac_report_other")["standing"],
        "withdrawn"
    );
    let cii = obligation(&v, "CN:cac_report_cii");
    assert_eq!(ts(&cii["due_at"]), discovered + chrono::Duration::hours(1));
    assert_eq!(cii["recipient"], "cii_protection");

    // The mitigation exemption spares individuals, never the authority; a regulator's
    // requirement overrides it.
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &json!({"mitigation_effective": true, "mitigation_justification": "泄露的数据已在扩散前被删除并确认"}),
    )
    .await;
    let v = regulation(&app, id).await;
    let ind = obligation(&v, "CN:pipl_individuals");
    assert_eq!(
        (ind["standing"].as_str(), ind["exemption"].as_str()),
        (Some("exempt"), Some("measures_avoid_harm"))
    );
    assert!(
        ind["why"]
            .to_string()
            .contains("泄露的数据已在扩散前被删除并确认"),
        "{ind}"
    );
    assert_eq!(obligation(&v, "CN:pipl_authority")["standing"], "required");
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &json!({"regulator_requires_notice": true}),
    )
    .await;
    let v = regulation(&app, id).await;
    assert_eq!(
        obligation(&v, "CN:pipl_individuals")["standing"],
        "required"
    );

    // Below the threshold again: graded IV; the report is withdrawn, not deleted.
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &json!({"affected_subjects": 10, "critical_infrastructure": null}),
    )
    .await;
    let v = regulation(&app, id).await;
    assert_eq!(grade(&v, "CN")["grade"], "IV");
    assert_eq!(obligation(&v, "CN:cac_report_cii")["standing"], "withdrawn");
    let history: Vec<&str> = v["grade_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grade"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["IV", "III", "IV"]);
    // Moving the discovery clock moves the deadline (with a reason, audited).
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &json!({"affected_subjects": 2_000_000}),
    )
    .await;
    let earlier = ago(7200);
    let (s, b) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"discovered_at": earlier, "reason": "first log entry found at 08:12"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v = regulation(&app, id).await;
    let r = obligation(&v, "CN:cac_report_other");
    assert_eq!(r["standing"], "required");
    assert_eq!(ts(&r["due_at"]), earlier + chrono::Duration::hours(4));
    app.stop().await;
}

async fn reminders_and_a_missed_deadline_page_the_owner_across_a_restart(backend: Backend) {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let packs = test_pack(dir.path(), "8s");
    let Some(mut app) = TestApp::spawn_with(backend, &config(&sink, &packs)).await else {
        return;
    };
    let id = app
        .declare(&json!({
            "title": "Export of customer table",
            "category": "vulnerability",
            "severity": "S3",
            "facts": {"affected_subjects": 12, "jurisdictions": ["XT"]}
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    let v = regulation(&app, id).await;
    let r = obligation(&v, "XT:report");
    let due = ts(&r["due_at"]);
    assert!(r["time_left"].as_str().unwrap().ends_with(" left"), "{r}");
    // Down for a moment before the reminder is due: timers are rows, not memory.
    app.restart().await;
    let (gr_oncall, gr_head) = (&common::phone(2, 1), &common::phone(2, 2));
    let to = |sink: &Sink, phone: &str, word: &str| {
        sink.received()
            .iter()
            .filter(|x| {
                x.path == "/sms"
                    && x.json()["to"] == phone
                    && x.json()["text"].as_str().unwrap_or("").contains(word)
            })
            .count()
    };
    wait_for("the 50% reminder", 15, || async {
        to(&sink, gr_oncall, "[deadline]") == 1
    })
    .await;
    assert_eq!(
        to(&sink, gr_head, "[deadline]"),
        0,
        "a reminder goes to the on-call level"
    );
    wait_for("the missed deadline", 15, || async {
        to(&sink, gr_oncall, "[MISSED]") == 1 && to(&sink, gr_head, "[MISSED]") == 1
    })
    .await;
    assert!(Utc::now() >= due);
    let missed = app.events(id, "obligation.missed").await;
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0]["data"]["key"], "XT:report");
    assert_eq!(app.events(id, "obligation.reminded").await.len(), 1);
    let v = regulation(&app, id).await;
    assert!(
        obligation(&v, "XT:report")["time_left"]
            .as_str()
            .unwrap()
            .ends_with(" overdue")
    );
    // Nothing else pages for it: one reminder and one miss to the on-call, one miss to the lead
    // (proving a negative: a window of a few dispatch polls, 100 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to(&sink, gr_oncall, "Report to the test regulator"), 2);
    assert_eq!(to(&sink, gr_head, "Report to the test regulator"), 1);
    app.stop().await;
}

async fn tasks_campaign_holds_and_people_meet_obligations(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &shipped())).await else {
        return;
    };
    let id = app
        .declare(&json!({
            "title": "勒索软件加密订单库并窃取数据",
            "category": "pi_leak",
            "discovered_at": ago(2 * 86_400),
            "facts": {"affected_subjects": 300, "jurisdictions": ["CN", "SG"], "suspected_crime": true,
                      "data_types": ["account_id", "credentials"], "notification_hold": "law_enforcement"}
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    let v = regulation(&app, id).await;
    // Suspected crime: a police report task for Legal, due a day after discovery (overdue now).
    let police = obligation(&v, "CN:police_report");
    assert_eq!(police["standing"], "required");
    let (_, t) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    let task = t["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "cn-police-report")
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(task["department"], "legal");
    assert_eq!(task["due_at"], police["due_at"]);
    // SG: the hold comes before the exemptions; the PDPC is still owed.
    let ind = obligation(&v, "SG:individuals");
    assert_eq!(
        (ind["standing"].as_str(), ind["exemption"].as_str()),
        (Some("hold"), Some("law_enforcement_or_pdpc_hold"))
    );
    assert_eq!(obligation(&v, "SG:pdpc_report")["standing"], "required");

    // A report is met by submitting it, not by a person's word.
    let (s, b) = app
        .post(
            &format!("/api/v1/incidents/{id}/obligations/CN:pipl_authority/met"),
            RESPONDER,
            &json!({"reference": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("submit the approved report"),
        "{b}"
    );
    // Completing the police task meets its obligation (late: recorded as such).
    let (s, b) = app
        .post(
            &format!("/api/v1/incidents/{id}/tasks/cn-police-report/complete"),
            RESPONDER,
            &json!({"note": "报案回执 2026-118"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v = regulation(&app, id).await;
    let police = obligation(&v, "CN:police_report");
    assert_eq!(
        (police["status"].as_str(), police["met_ref"].as_str()),
        (Some("met"), Some("task:cn-police-report"))
    );
    assert!(
        police["time_left"].as_str().unwrap().starts_with("met ")
            && police["time_left"].as_str().unwrap().ends_with(" late"),
        "{police}"
    );
    let met = app.events(id, "obligation.met").await;
    assert!(
        met.iter()
            .any(|e| e["data"]["key"] == "CN:police_report" && e["data"]["late"] == true),
        "{met:?}"
    );

    // A person meets a non-report obligation with a reference; past the deadline with a reason.
    let other = app
        .declare(
            &json!({"title": "疑似撞库", "category": "pi_leak", "discovered_at": ago(3 * 86_400),
                          "facts": {"jurisdictions": ["CN"], "suspected_crime": true}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/incidents/{other}/obligations/CN:police_report/met");
    let (s, b) = app.post(&path, RESPONDER, &json!({"reference": ""})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = app
        .post(&path, RESPONDER, &json!({"reference": "沪公网安 2026-77"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("say why it was met late"),
        "{b}"
    );
    let (s, b) = app
        .post(
            &path,
            RESPONDER,
            &json!({"reference": "沪公网安 2026-77", "late_reason": "证据固定后方可报案"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["status"].as_str(), b["late_reason"].as_str()),
        (Some("met"), Some("证据固定后方可报案"))
    );
    let (s, b) = app
        .post(&path, RESPONDER, &json!({"reference": "again"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, b) = app
        .post(
            &format!("/api/v1/incidents/{other}/obligations/CN:nope/met"),
            RESPONDER,
            &json!({"reference": "r"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");

    // Lifting the hold makes individual notice owed again.
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &json!({"notification_hold": null}),
    )
    .await;
    let v = regulation(&app, id).await;
    assert_eq!(obligation(&v, "SG:individuals")["standing"], "required");
    app.stop().await;
}

async fn an_incident_opened_by_alerts_is_assessed_and_listed_by_time_left(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &shipped())).await else {
        return;
    };
    // Opened by an alert that reports its facts: assessed by the scheduler, not the writer.
    app.alerts(&json!({
        "source": "dlp",
        "title": "个人信息泄露：用户手机号批量外发",
        "labels": {"category": "pi_leak"},
        "facts": {"affected_subjects": 1_500_000, "jurisdictions": ["CN"]}
    }))
    .await;
    let (_, list) = app.get("/api/v1/incidents").await;
    let id = list["items"][0]["id"].as_i64().unwrap();
    wait_for("the alert's incident to be assessed", 10, || async {
        regulation(&app, id).await["obligations"]
            .as_array()
            .is_some_and(|o| !o.is_empty())
    })
    .await;
    let second = app
        .declare(&json!({"title": "旧系统备份外泄", "category": "pi_loss", "discovered_at": ago(3 * 3600 + 1800),
                          "facts": {"affected_subjects": 2_000_000, "jurisdictions": ["CN"]}}))
        .await["id"]
        .as_i64()
        .unwrap();
    // Soonest first: the declared incident's 4-hour report (30 min left) before the alert's.
    let (s, v) = app.get("/api/v1/obligations?due_within=5h").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v["items"].as_array().unwrap();
    let order: Vec<(i64, &str)> = list
        .iter()
        .map(|o| {
            (
                o["incident_id"].as_i64().unwrap(),
                o["key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(order[0], (second, "CN:cac_report_other"), "{v:#}");
    assert!(order.contains(&(id, "CN:cac_report_other")), "{v:#}");
    let left = list[0]["time_left"].as_str().unwrap();
    assert!(left.starts_with("29m") || left.starts_with("30m"), "{left}");
    let secs = list[0]["seconds_left"].as_i64().unwrap();
    assert!((1700..=1800).contains(&secs), "{secs}");
    // due_within leaves out what is due later (the 24 h PIPL notices, the 72 h notices).
    assert!(
        list.iter()
            .all(|o| ts(&o["due_at"]) <= Utc::now() + chrono::Duration::hours(5)),
        "{v:#}"
    );
    let (_, all) = app.get("/api/v1/obligations").await;
    assert!(all["items"].as_array().unwrap().len() > list.len());
    let (s, b) = app.get("/api/v1/obligations?due_within=soon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    // The CLI prints the same, in a person's terms.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args([
            "obligations",
            "--due-within",
            "5h",
            "--url",
            &app.url(""),
            "--token",
            INGEST,
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the ingest role may not read obligations"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args([
            "obligations",
            "--due-within",
            "5h",
            "--url",
            &app.url(""),
            "--token",
            RESPONDER,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.contains("CN:cac_report_other") && first.contains("s left"),
        "{text}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args([
            "obligations",
            "--incident",
            &second.to_string(),
            "--url",
            &app.url(""),
            "--token",
            RESPONDER,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CN grade III") && text.contains("report within 4 hours of discovery"),
        "{text}"
    );
    app.stop().await;
}

async fn a_changed_pack_reassesses_open_incidents_on_reload(backend: Backend) {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let packs = test_pack(dir.path(), "6h");
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &packs)).await else {
        return;
    };
    let discovered = ago(60);
    let id = app
        .declare(&json!({"title": "t", "category": "vulnerability", "severity": "S3", "discovered_at": discovered,
                          "facts": {"affected_subjects": 12, "jurisdictions": ["XT"]}}))
        .await["id"]
        .as_i64()
        .unwrap();
    let v = regulation(&app, id).await;
    assert_eq!(
        ts(&obligation(&v, "XT:report")["due_at"]),
        discovered + chrono::Duration::hours(6)
    );
    // A lawyer shortens the window: no code, no restart.
    test_pack(dir.path(), "2h");
    app.reload().await.unwrap();
    wait_for("the open incident to be re-assessed", 10, || async {
        let v = regulation(&app, id).await;
        ts(&obligation(&v, "XT:report")["due_at"]) == discovered + chrono::Duration::hours(2)
    })
    .await;
    // A broken pack is refused, and the running one stays.
    std::fs::write(
        packs.join("xt.toml"),
        TEST_PACK
            .replace("WINDOW", "2h")
            .replace("discovered_at", "noticed_at"),
    )
    .unwrap();
    let e = app.reload().await.unwrap_err().to_string();
    assert!(e.contains("`noticed_at` is not a clock"), "{e}");
    let (_, ready) = app.get("/readyz").await;
    assert!(ready.to_string().contains("noticed_at"), "{ready}");
    app.stop().await;
}

async fn closing_starts_the_closing_report_clock_and_a_false_positive_owes_nothing(
    backend: Backend,
) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &shipped())).await else {
        return;
    };
    let facts = json!({"affected_subjects": 1_000_000, "jurisdictions": ["CN"]});
    let id = app
        .declare(&json!({"title": "会员库泄露", "category": "pi_leak", "facts": facts}))
        .await["id"]
        .as_i64()
        .unwrap();
    for to in ["triaged", "contained", "eradicated", "recovered"] {
        let (s, b) = app.transition(id, to, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    // Its tasks and reports are open (not this story's subject): the close is forced.
    let (s, b) = app
        .post(
            &format!("/api/v1/incidents/{id}/transitions"),
            RESPONDER,
            &json!({"to": "closed", "note": "处置完毕", "force": true, "reason": "test"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let inc = app.incident(id).await;
    let closed = ts(&inc["closed_at"]);
    assert_eq!(ts(&inc["handling_closed_at"]), closed);
    let v = regulation(&app, id).await;
    let closing = obligation(&v, "CN:cac_closing");
    assert_eq!(ts(&closing["due_at"]), closed + chrono::Duration::days(30));
    assert!(
        closing["why"].to_string().contains("handling_closed_at"),
        "{closing}"
    );
    // Reopened: handling goes on, the closing report waits again.
    let (s, b) = app.transition(id, "reopened", Some("新的泄露线索")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(app.incident(id).await["handling_closed_at"].is_null());
    let v = regulation(&app, id).await;
    assert!(obligation(&v, "CN:cac_closing")["due_at"].is_null());

    // A false positive owes nothing: what was owed is withdrawn, and says why.
    let fp = app
        .declare(&json!({"title": "疑似泄露", "category": "pi_leak", "facts": facts}))
        .await["id"]
        .as_i64()
        .unwrap();
    let (s, b) = app
        .transition(fp, "false_positive", Some("测试数据，非真实用户"))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v = regulation(&app, fp).await;
    assert!(
        v["obligations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["standing"] == "withdrawn"),
        "{v:#}"
    );
    let w = app.events(fp, "obligation.withdrawn").await;
    assert!(
        !w.is_empty()
            && w.iter()
                .all(|e| e["data"]["detail"] == "the incident is a false positive")
    );
    let (_, owed) = app.get(&format!("/api/v1/obligations?incident={fp}")).await;
    assert_eq!(owed["items"], json!([]));
    app.stop().await;
}
