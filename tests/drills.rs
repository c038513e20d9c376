//! Drills through the running daemon: started by hand and by their schedule, they page their
//! participants on real local sinks, and the drill guard keeps every channel away from anyone
//! not on the drill's own list — two drills at once keeping their own lists — across a restart.

use crate::common;

use common::sink::Sink;
use common::smtp::Smtp;
use common::{ADMIN, Backend, DEPTS, RESPONDER, SITE, TestApp, VIEWER, phone, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_drill_reaches_nobody_off_its_list_on_any_channel,
    a_scheduled_drill_pages_its_participants_and_goes_on_after_a_restart,
    unknown_scenarios_are_refused_and_drills_stay_out_of_obligations,
    a_drill_ends_and_is_scored_when_every_task_is_done,
    a_functional_drill_has_synthetic_subjects_reachable_only_at_its_captures,
    a_functional_drill_tells_and_reports_only_to_its_captures,
    an_ended_drill_is_scored_by_its_containment_task_and_closed,
    the_shipped_scenarios_page_every_department_of_their_plan,
);

const SECRET: &str = "drill-test-webhook-secret";

const ALPHA: &str = r#"
name = "alpha"
description = "Order data exposed"
mode = "tabletop"
owner = "drill-owner@example.com"
time_limit = "12s"
playbook = "pi_incident"
[start]
title = "Order bucket publicly readable"
category = "pi_leak"
[start.facts]
affected_subjects = 1000
data_types = ["name", "phone"]
[participants]
departments = ["security", "government_relations", "legal", "public_relations", "customer_service", "it_operations"]
[capture]
email = ["capture-alpha@example.com"]
phone = ["+8613900009901"]
site_users = ["capture-alpha"]
webhook = ["capture-hook"]
[targets.acknowledge]
default = "10m"
[[injects]]
after = "2s"
message = "Affected count rises to 1.2M"
facts = { affected_subjects = 1200000 }
[[injects]]
after = "5s"
message = "A journalist asks for comment"
"#;

const BETA: &str = r#"
name = "beta"
mode = "tabletop"
owner = "drill-owner@example.com"
time_limit = "1h"
[start]
title = "Ransomware on the HR file server"
category = "pi_damage"
[participants]
departments = ["security", "government_relations", "legal", "public_relations", "customer_service", "it_operations"]
[capture]
phone = ["+8613900009902"]
"#;

fn drills_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("alpha.toml"), ALPHA).unwrap();
    std::fs::write(d.path().join("beta.toml"), BETA).unwrap();
    d
}

fn config(sink: &Sink, smtp: &Smtp, drills: &std::path::Path, extra: &str) -> String {
    let mut c = format!(
        r#"
{}
[dispatch]
lease = "5s"
poll_interval = "200ms"
backoff_base = "100ms"
backoff_max = "400ms"
max_attempts = 3
{}
[channels.email]
smtp_url = "{}"
from = "Security <security@example.com>"
timeout = "2s"

[channels.site_webhook]
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[[channels.webhooks]]
name = "capture-hook"
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[[channels.webhooks]]
name = "chatops"
url = "{}"
secret = "{SECRET}"
timeout = "2s"
{}{extra}
"#,
        common::paths(&[
            ("jurisdictions", &common::shipped("config/jurisdictions")),
            ("drills", drills),
        ]),
        common::phone_gateways(sink, &["sms", "voice"]),
        smtp.url(),
        sink.url("/site"),
        sink.url("/capture-hook"),
        sink.url("/chatops"),
        common::page_every_severity_by(r#"["sms"]"#),
    );
    c.push_str(&common::departments("1h", |n, d| {
        vec![common::Member::on_call(n, d).oncall_email(d)]
    }));
    c
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, path, Some(token), Some(&body)).await
}

async fn start_drill(app: &TestApp, scenario: &str) -> Value {
    let (s, v) = post(
        app,
        "/api/v1/drills",
        RESPONDER,
        json!({"scenario": scenario}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

fn sms_to(sink: &Sink, to: &str) -> Vec<Value> {
    sink.received()
        .iter()
        .filter(|r| r.path == "/sms" || r.path == "/voice")
        .map(|r| r.json())
        .filter(|b| b["to"] == to)
        .collect()
}

/// Enqueue one delivery on the incident; its id.
async fn enqueue(app: &TestApp, incident: i64, d: Value) -> i64 {
    let (s, v) = post(
        app,
        &format!("/api/v1/incidents/{incident}/deliveries"),
        RESPONDER,
        json!({ "deliveries": [d] }),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["ids"][0].as_i64().unwrap()
}

async fn delivery_settled(app: &TestApp, id: i64) -> Value {
    let mut last = Value::Null;
    wait_for(&format!("delivery {id} settling"), 15, async || {
        let (_, v) = app.get(&format!("/api/v1/deliveries/{id}")).await;
        last = v.clone();
        matches!(v["status"].as_str(), Some("sent" | "dead"))
    })
    .await;
    last
}

async fn a_drill_reaches_nobody_off_its_list_on_any_channel(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let dir = drills_dir();
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &smtp, dir.path(), "")).await
    else {
        return;
    };
    let alpha = start_drill(&app, "alpha").await;
    let beta = start_drill(&app, "beta").await;
    let (a, b) = (
        alpha["incident_id"].as_i64().unwrap(),
        beta["incident_id"].as_i64().unwrap(),
    );
    let inc = app.incident(a).await;
    assert_eq!(inc["drill"], true, "{inc}");
    assert!(
        inc["title"].as_str().unwrap().starts_with("【演练】DRILL"),
        "{inc}"
    );
    let text = |t: &str| json!({"subject": "【演练】DRILL test", "text": t});
    // Every channel, to someone not on alpha's list (beta's capture phone included).
    let refused = [
        json!({"channel": "email", "recipient": "stranger@example.com", "content": text("x")}),
        json!({"channel": "sms", "recipient": "+8613811112222", "content": text("x")}),
        json!({"channel": "voice", "recipient": "+8613811112222", "content": text("x")}),
        json!({"channel": "inbox", "recipient": "real-user-1", "content": text("x")}),
        json!({"channel": "site_webhook", "recipient": "real-user-1", "content": text("x")}),
        json!({"channel": "webhook", "recipient": "chatops", "content": text("x")}),
        json!({"channel": "sms", "recipient": "+8613900009902", "content": text("beta's capture")}),
    ];
    let mut ids = Vec::new();
    for d in refused {
        ids.push(enqueue(&app, a, d).await);
    }
    // On the lists: alpha's capture phone and webhook, beta's own capture phone.
    let allowed_a = enqueue(
        &app,
        a,
        json!({"channel": "sms", "recipient": "+8613900009901", "content": text("alpha capture")}),
    )
    .await;
    let hook_a = enqueue(
        &app,
        a,
        json!({"channel": "webhook", "recipient": "capture-hook", "content": text("alpha hook")}),
    )
    .await;
    let allowed_b = enqueue(
        &app,
        b,
        json!({"channel": "sms", "recipient": "+8613900009902", "content": text("beta capture")}),
    )
    .await;
    let refused_b = enqueue(
        &app,
        b,
        json!({"channel": "sms", "recipient": "+8613900009901", "content": text("alpha's capture")}),
    )
    .await;
    for id in ids.iter().chain([&refused_b]) {
        let d = delivery_settled(&app, *id).await;
        assert_eq!(d["status"], "dead", "{d}");
        assert!(
            d["last_error"].as_str().unwrap().contains("drill guard"),
            "the refusal is recorded: {d}"
        );
    }
    for id in [allowed_a, hook_a, allowed_b] {
        let d = delivery_settled(&app, id).await;
        assert_eq!(d["status"], "sent", "{d}");
    }
    // Nothing reached the sinks for anyone off the lists.
    assert!(sms_to(&sink, "+8613811112222").is_empty());
    let beta_capture = sms_to(&sink, "+8613900009902");
    assert_eq!(beta_capture.len(), 1, "only beta's own: {beta_capture:?}");
    assert_eq!(beta_capture[0]["text"], "beta capture");
    let alpha_capture = sms_to(&sink, "+8613900009901");
    assert_eq!(
        alpha_capture.len(),
        1,
        "only alpha's own: {alpha_capture:?}"
    );
    assert_eq!(alpha_capture[0]["text"], "alpha capture");
    let paths: Vec<String> = sink.received().iter().map(|r| r.path.clone()).collect();
    assert!(
        !paths.iter().any(|p| p == "/chatops" || p == "/site"),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p == "/capture-hook"), "{paths:?}");
    assert!(
        !smtp
            .messages()
            .iter()
            .any(|m| m.to_string().contains("stranger@example.com")),
        "no e-mail to the stranger"
    );
    let (_, n) = app
        .call(Method::GET, "/api/v1/inbox/real-user-1", Some(SITE), None)
        .await;
    assert_eq!(n["items"].as_array().unwrap().len(), 0, "{n}");
    // The participants are every department the playbook pages: each gets its page, none is
    // killed by the guard.
    let mut seen = Vec::new();
    wait_for("every department's page", 15, async || {
        seen = (1..=DEPTS.len())
            .map(|n| sms_to(&sink, &phone(n, 1)))
            .collect();
        seen.iter().all(|s| !s.is_empty())
    })
    .await;
    let text = seen[0][0]["text"].as_str().unwrap();
    assert!(
        text.contains("DRILL") || text.contains("演练"),
        "a drill page says so: {seen:?}"
    );
    let (_, v) = app
        .get(&format!(
            "/api/v1/incidents/{a}/deliveries?status=dead&limit=500"
        ))
        .await;
    let guarded: Vec<&Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["purpose"] == "drill")
        .collect();
    assert!(guarded.is_empty(), "no page is refused: {guarded:?}");
    app.stop().await;
}

async fn a_scheduled_drill_pages_its_participants_and_goes_on_after_a_restart(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let dir = drills_dir();
    // A cron line that fires once, a few seconds from now, written in Shanghai time.
    let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(4)).with_timezone(&tz);
    use chrono::Timelike;
    let extra = format!(
        "\n[[drills.schedule]]\nscenario = \"alpha\"\ncron = \"{} {} {} * * *\"\ntime_zone = \"Asia/Shanghai\"\n",
        at.second(),
        at.minute(),
        at.hour()
    );
    let Some(mut app) =
        TestApp::spawn_with(backend, &config(&sink, &smtp, dir.path(), &extra)).await
    else {
        return;
    };
    let (s, v) = app.get("/api/v1/drills").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["scheduled"][0]["scenario"], "alpha", "{v}");
    assert!(v["scheduled"][0]["next_at"].is_string(), "{v}");
    let mut drill = Value::Null;
    wait_for("the scheduled drill", 20, async || {
        let (_, v) = app.get("/api/v1/drills").await;
        drill = v["items"][0].clone();
        drill.is_object()
    })
    .await;
    assert_eq!(drill["started_by"], "schedule", "{drill}");
    assert_eq!(drill["scenario"], "alpha");
    let id = drill["incident_id"].as_i64().unwrap();
    // The participants are paged on the local SMS sink.
    let security = phone(1, 1);
    wait_for("the security page", 15, async || {
        !sms_to(&sink, &security).is_empty()
    })
    .await;
    // The first inject changes the facts and tells the participants.
    wait_for("the first inject", 15, async || {
        !app.events(id, "drill.inject").await.is_empty()
    })
    .await;
    let inc = app.incident(id).await;
    assert_eq!(inc["facts"]["affected_subjects"], 1_200_000, "{inc}");
    // A restart mid-drill: the second inject still fires, from its persisted timer.
    app.restart().await;
    wait_for("the second inject after the restart", 20, async || {
        app.events(id, "drill.inject").await.len() == 2
    })
    .await;
    wait_for("the inject message to the participants", 15, async || {
        sms_to(&sink, &security).iter().any(|b| {
            let t = b["text"].as_str().unwrap_or_default();
            t.contains("A journalist asks") && t.starts_with("【演练】DRILL")
        })
    })
    .await;
    // Only one drill for the one tick, and it ends at its time limit.
    let drill_id = drill["id"].as_i64().unwrap();
    wait_for("the drill's end", 20, async || {
        let (_, d) = app.get(&format!("/api/v1/drills/{drill_id}")).await;
        d["status"] == "ended"
    })
    .await;
    let (_, v) = app.get("/api/v1/drills").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(app.events(id, "drill.ended").await.len(), 1);
    // Scored against its targets, with the after-action report e-mailed to the owner.
    let (_, d) = app.get(&format!("/api/v1/drills/{drill_id}")).await;
    let measures = d["scorecard"]["measures"].as_array().unwrap();
    assert!(
        measures
            .iter()
            .any(|m| m["id"] == "acknowledge" && m["department"] == "security"),
        "{d:#}"
    );
    assert!(d["report"]["subject"].is_string(), "{d:#}");
    assert_eq!(v["trend"]["drills"], 1, "{v}");
    wait_for("the after-action e-mail", 15, async || {
        smtp.messages()
            .iter()
            .any(|m| m.to_string().contains("drill-owner@example.com"))
    })
    .await;
    app.stop().await;
}

async fn unknown_scenarios_are_refused_and_drills_stay_out_of_obligations(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let dir = drills_dir();
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &smtp, dir.path(), "")).await
    else {
        return;
    };
    let (s, v) = post(
        &app,
        "/api/v1/drills",
        RESPONDER,
        json!({"scenario": "nope"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("alpha"), "{v}");
    let (s, _) = post(&app, "/api/v1/drills", VIEWER, json!({"scenario": "alpha"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let d = start_drill(&app, "alpha").await;
    let drill_inc = d["incident_id"].as_i64().unwrap();
    let real = app
        .declare(&json!({"title": "Real leak", "category": "pi_leak", "facts": {"affected_subjects": 200000, "data_types": ["id_number"]}}))
        .await["id"]
        .as_i64()
        .unwrap();
    let (_, v) = app.get("/api/v1/obligations?all=true").await;
    let incidents: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["incident_id"].as_i64().unwrap())
        .collect();
    assert!(incidents.contains(&real), "{v}");
    assert!(!incidents.contains(&drill_inc), "drills are left out: {v}");
    let (_, v) = app.get("/api/v1/obligations?all=true&drills=true").await;
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["incident_id"] == drill_inc),
        "asked for, drills are listed: {v}"
    );
    let (s, v) = app
        .call(
            Method::GET,
            &format!("/api/v1/drills/{}", d["id"]),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "running");
    // The CLI: run, list, show; an unknown scenario is refused with the ones there are.
    let cli = |args: Vec<&'static str>| {
        let url = app.url("");
        tokio::task::spawn_blocking(move || {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
                .args(&args)
                .env("INCIDENTD_URL", url)
                .env("INCIDENTD_TOKEN", RESPONDER)
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).to_string()
                    + &String::from_utf8_lossy(&o.stderr),
            )
        })
    };
    let (code, out) = cli(vec!["drill", "run", "beta"]).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("beta (tabletop)") && out.contains("running"),
        "{out}"
    );
    let (code, out) = cli(vec!["drill", "list"]).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("alpha") && out.contains("beta"), "{out}");
    let (code, out) = cli(vec!["drill", "show", "1"]).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("drill 1 — alpha"), "{out}");
    let (code, out) = cli(vec!["drill", "run", "nope"]).await.unwrap();
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("alpha, beta"), "{out}");
    app.stop().await;
}

const ONE_TASK_PLAYBOOK: &str = r#"
id = "default"
name = "One task"
team = ["security", "government_relations", "legal"]
[[tasks]]
id = "triage"
title = "Triage"
department = "security"
due = "1h"
"#;

async fn a_drill_ends_and_is_scored_when_every_task_is_done(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let drills = tempfile::tempdir().unwrap();
    std::fs::write(drills.path().join("beta.toml"), BETA).unwrap();
    let playbooks = tempfile::tempdir().unwrap();
    std::fs::write(playbooks.path().join("default.toml"), ONE_TASK_PLAYBOOK).unwrap();
    let repo = common::repo();
    let c = config(&sink, &smtp, drills.path(), "").replace(
        &format!(
            "playbooks = \"{}\"",
            repo.join("config/playbooks").display()
        ),
        &format!("playbooks = \"{}\"", playbooks.path().display()),
    );
    let Some(app) = TestApp::spawn_with(backend, &c).await else {
        return;
    };
    let d = start_drill(&app, "beta").await;
    let id = d["incident_id"].as_i64().unwrap();
    wait_for("the playbook's task", 15, async || {
        let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        v["tasks"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    let (_, d0) = app.get(&format!("/api/v1/drills/{}", d["id"])).await;
    assert_eq!(d0["status"], "running", "{d0}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/triage/complete"),
        RESPONDER,
        json!({"note": "done in the drill"}),
    )
    .await;
    assert!(s.is_success(), "{s} {v}");
    let mut drill = Value::Null;
    wait_for("the drill's end", 15, async || {
        let (_, v) = app.get(&format!("/api/v1/drills/{}", d["id"])).await;
        drill = v;
        drill["status"] == "ended"
    })
    .await;
    assert!(drill["scorecard"]["measures"].is_array(), "{drill:#}");
    let ended = app.events(id, "drill.ended").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["data"]["why"], "every task is done", "{ended:?}");
    app.stop().await;
}

const GAMMA: &str = r#"
name = "gamma"
mode = "functional"
owner = "drill-owner@example.com"
time_limit = "1h"
synthetic_subjects = 4
[start]
title = "Order export bucket public"
category = "pi_leak"
[participants]
departments = ["security", "government_relations", "legal", "public_relations", "customer_service", "it_operations"]
[capture]
email = ["capture-gamma@example.com"]
phone = ["+8613900009903"]
site_users = ["capture-gamma"]
"#;

const KEY: &str = "t1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

async fn a_functional_drill_has_synthetic_subjects_reachable_only_at_its_captures(
    backend: Backend,
) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let dir = drills_dir();
    std::fs::write(dir.path().join("gamma.toml"), GAMMA).unwrap();
    let extra = format!("\n[subjects]\nkey = \"{KEY}\"\n");
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &smtp, dir.path(), &extra)).await
    else {
        return;
    };
    let d = start_drill(&app, "gamma").await;
    assert_eq!(d["mode"], "functional");
    let id = d["incident_id"].as_i64().unwrap();
    let (s, v) = app.get(&format!("/api/v1/incidents/{id}/subjects")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 4, "{v}");
    for subject in v["items"].as_array().unwrap() {
        assert!(
            subject["subject_id"]
                .as_str()
                .unwrap()
                .starts_with("drill-"),
            "{subject}"
        );
        assert_eq!(subject["site_user_id"], "capture-gamma", "{subject}");
        // Masked, and the capture's: no real person.
        assert!(
            subject["phone"].as_str().unwrap().ends_with("9903"),
            "{subject}"
        );
        assert!(
            subject["email"].as_str().unwrap().ends_with("@example.com"),
            "{subject}"
        );
    }
    // A tabletop drill gets none.
    let t = start_drill(&app, "beta").await;
    let (_, v) = app
        .get(&format!("/api/v1/incidents/{}/subjects", t["incident_id"]))
        .await;
    assert_eq!(v["total"], 0, "{v}");
    app.stop().await;
}

/// `incidentd check` refuses a schedule naming an unknown scenario, a bad cron line or zone, and
/// a scenario naming an unknown department — each as file: key: message.
#[test]
fn check_refuses_bad_schedules_and_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let drills = dir.path().join("drills");
    std::fs::create_dir(&drills).unwrap();
    std::fs::write(drills.join("beta.toml"), BETA).unwrap();
    let repo = common::repo();
    let mut c = common::config_text(
        &format!("sqlite://{}/t.db", dir.path().display()),
        &format!(
            "[paths]\ntemplates = \"{}\"\nplaybooks = \"{}\"\nclassification = \"{}\"\n\n\
             [channels.sms]\nprovider = \"generic_http\"\nbase_url = \"http://127.0.0.1:9\"\n\n\
             [paging.channels]\nS1 = [\"sms\"]\nS2 = [\"sms\"]\nS3 = [\"sms\"]\nS4 = [\"sms\"]\n\n\
             [[drills.schedule]]\nscenario = \"nope\"\ncron = \"0 0 10 * * Wed\"\ntime_zone = \"Asia/Shanghai\"\n",
            repo.join("templates").display(),
            repo.join("config/playbooks").display(),
            repo.join("config/classification.toml").display(),
        ),
    );
    for (i, d) in DEPTS.iter().enumerate() {
        c.push_str(&format!(
            "\n[[departments]]\nid = \"{d}\"\nname = \"{d}\"\n[[departments.members]]\nname = \"x\"\nphone = \"{}\"\n",
            phone(i + 1, 1)
        ));
    }
    let config = dir.path().join("incidentd.toml");
    let check = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
            .args(["check", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (code, out) = check(&c);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("drills.schedule[0].scenario: unknown scenario `nope`")
            && out.contains("beta"),
        "{out}"
    );
    let (code, out) = check(
        &c.replace("\"nope\"", "\"beta\"")
            .replace("Asia/Shanghai", "Mars/Olympus")
            .replace("0 0 10 * * Wed", "0 10 * * Wed"),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("drills.schedule[0].time_zone: `Mars/Olympus`"),
        "{out}"
    );
    assert!(out.contains("drills.schedule[0].cron:"), "{out}");
    let (code, out) = check(&c.replace("\"nope\"", "\"beta\""));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("beta (tabletop, 0 injects, cron `0 0 10 * * Wed` Asia/Shanghai)"),
        "{out}"
    );
    std::fs::write(
        drills.join("beta.toml"),
        BETA.replace("[\"security\", ", "[\"finance\", "),
    )
    .unwrap();
    let (code, out) = check(&c.replace("\"nope\"", "\"beta\""));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("beta.toml: participants.departments[0]: unknown department `finance`"),
        "{out}"
    );
    // A scenario that leaves out departments its playbook pages is refused, naming them.
    std::fs::write(
        drills.join("beta.toml"),
        BETA.replace(
            "\"public_relations\", \"customer_service\", \"it_operations\"",
            "\"public_relations\"",
        ),
    )
    .unwrap();
    let (code, out) = check(&c.replace("\"nope\"", "\"beta\""));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "beta.toml: participants.departments: playbook `pi_incident` pages it_operations, customer_service, which the participants leave out"
        ),
        "{out}"
    );
}

/// The whole functional path in a drill: the notice, approved by Legal, goes to the synthetic
/// affected people — that is, to the capture recipients only — marked DRILL; the regulator
/// report, approved by Government Relations and Legal and submitted by e-mail, goes to the
/// capture mailbox, never to the regulator configured for it.
async fn a_functional_drill_tells_and_reports_only_to_its_captures(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let dir = drills_dir();
    std::fs::write(dir.path().join("gamma.toml"), GAMMA).unwrap();
    let extra = format!(
        "\n[subjects]\nkey = \"{KEY}\"\n\n[[regulators]]\nid = \"cac_provincial\"\nname = \"省网信办\"\nemail = \"real-regulator@cac.example.gov.cn\"\n"
    );
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &smtp, dir.path(), &extra)).await
    else {
        return;
    };
    let d = start_drill(&app, "gamma").await;
    let id = d["incident_id"].as_i64().unwrap();
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &common::both_languages(json!({
                "affected_subjects": 1_000_000,
                "data_types": ["name", "phone", "address"],
                "cause": "An order-export bucket was left publicly readable.",
                "impact": "Names, phones and addresses may be used for fraud.",
                "measures_taken": "The bucket was made private and its keys rotated.",
                "measures_planned": "Audit every bucket's policy within a week.",
                "advice_to_subjects": "Beware of calls claiming to be from us.",
                "remedies": "Free identity monitoring for a year."
            })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The notice: gate approved, campaign started, delivered to the captures only.
    for key in ["contain", "assess_affected", "prepare_notice"] {
        let (s, v) = post(
            &app,
            &format!("/api/v1/incidents/{id}/tasks/{key}/complete"),
            RESPONDER,
            json!({"note": "done"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{key}: {v}");
    }
    let (_, tasks) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    let gate = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "approve_notice")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{gate}/approve"),
        ADMIN,
        json!({"reason": "drill: wording checked"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/notices"),
        RESPONDER,
        json!({"channels": ["sms", "email"]}),
    )
    .await;
    assert!(s.is_success(), "{v}");
    wait_for("the notices to reach the captures", 20, async || {
        sms_to(&sink, "+8613900009903").len() >= 4
            && smtp
                .messages()
                .iter()
                .filter(|m| m["to"].to_string().contains("capture-gamma@example.com"))
                .count()
                >= 4
    })
    .await;
    for m in sms_to(&sink, "+8613900009903") {
        let text = m["text"].as_str().unwrap();
        assert!(text.contains("演练") || text.contains("DRILL"), "{text}");
    }
    // Nobody else was told: every SMS went to the capture phone or to a participant.
    let participants: Vec<String> = (1..=DEPTS.len()).map(|n| phone(n, 1)).collect();
    for r in sink.received().iter().filter(|r| r.path == "/sms") {
        let to = r.json()["to"].as_str().unwrap().to_string();
        assert!(
            to == "+8613900009903" || participants.contains(&to),
            "SMS to {to}"
        );
    }

    // The regulator report: drafted, approved, submitted by e-mail — to the capture mailbox.
    let (s, r) = post(
        &app,
        &format!("/api/v1/incidents/{id}/reports"),
        RESPONDER,
        json!({
            "obligation": "CN:cac_report_other",
            "inputs": {
                "system": "订单导出对象存储桶",
                "location": "上海数据中心",
                "likely_development": "暂未发现进一步扩散。",
                "tracing": "匿名列目录与下载。"
            }
        }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["id"].as_i64().unwrap();
    let task = r["approval_task"].as_i64().unwrap();
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{task}/approve"),
        ADMIN,
        json!({"reason": "drill: checked"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/reports/{rid}/submit"),
        RESPONDER,
        json!({"via": "email"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_for("the report to reach the capture mailbox", 20, async || {
        smtp.messages().iter().any(|m| {
            m["to"].to_string().contains("capture-gamma@example.com")
                && m["subject"].as_str().unwrap_or("").contains("演练")
                && m["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("订单导出对象存储桶")
        })
    })
    .await;
    assert!(
        !smtp
            .messages()
            .iter()
            .any(|m| m["to"].to_string().contains("cac.example.gov.cn")),
        "the real regulator was reached"
    );
    app.stop().await;
}

const DELTA: &str = r#"
name = "delta"
mode = "tabletop"
owner = "drill-owner@example.com"
time_limit = "8s"
playbook = "pi_incident"
[start]
title = "User dump for sale"
category = "pi_leak"
[start.facts]
affected_subjects = 300000
[participants]
departments = ["security", "government_relations", "legal", "public_relations", "customer_service", "it_operations"]
[targets]
contain = "1h"
[[injects]]
after = "1s"
# The shipped scenario's inject: its first line is 71 characters long.
message = "溯源更新：受影响用户数上升至 120 万。/ Update: the affected count rises to 1.2 million.\nMore to follow."
"#;

/// A drill whose containment task is done (nobody moves the incident to `contained`) is scored
/// as contained then; its inject's subject keeps "1.2 million" whole; when its time is up the
/// engine closes its incident, cancelling the open tasks "drill ended" (the scorecard already
/// counted them missed), while the after-action items stay workable on the closed incident.
async fn an_ended_drill_is_scored_by_its_containment_task_and_closed(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("delta.toml"), DELTA).unwrap();
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &smtp, dir.path(), "")).await
    else {
        return;
    };
    let d = start_drill(&app, "delta").await;
    let (drill_id, id) = (
        d["id"].as_i64().unwrap(),
        d["incident_id"].as_i64().unwrap(),
    );
    wait_for("the playbook's tasks", 15, async || {
        let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        v["tasks"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/contain/complete"),
        RESPONDER,
        json!({"note": "backup credential rotated"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let contained = v["closed_at"].as_str().unwrap().to_string();

    // The inject's e-mail subject carries its first line whole.
    wait_for("the inject's e-mail", 15, async || {
        smtp.messages().iter().any(|m| {
            m["subject"].as_str().is_some_and(|s| {
                s.ends_with("上升至 120 万。/ Update: the affected count rises to 1.2 million.")
            })
        })
    })
    .await;
    assert!(
        !smtp.messages().iter().any(|m| m["subject"]
            .as_str()
            .is_some_and(|s| s.ends_with("rises to 1"))),
        "no subject is cut at the decimal point"
    );

    let mut drill = Value::Null;
    wait_for("the drill's end", 20, async || {
        let (_, v) = app.get(&format!("/api/v1/drills/{drill_id}")).await;
        drill = v;
        drill["status"] == "ended"
    })
    .await;
    // Contained when the task was done, although the incident never moved to `contained`.
    let contain = drill["scorecard"]["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "contain")
        .unwrap()
        .clone();
    assert_eq!(contain["met"], true, "{contain}");
    assert_eq!(
        contain["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        contained.parse::<chrono::DateTime<chrono::Utc>>().unwrap(),
        "{contain}"
    );
    assert_eq!(contain["department"], "it_operations", "{contain}");
    // Tasks open at the end were counted as missed before they were cancelled.
    let missed = drill["scorecard"]["tasks_missed"].as_array().unwrap().len();
    assert!(missed > 0, "{drill:#}");

    // The incident is closed by the engine, saying the drill ended.
    let inc = app.incident(id).await;
    assert_eq!(inc["status"], "closed", "{inc}");
    assert!(inc["closed_at"].is_string(), "{inc}");
    let moved = app.events(id, "incident.transitioned").await;
    let last = moved.last().unwrap();
    assert_eq!(last["data"]["to"], "closed", "{moved:?}");
    assert_eq!(last["data"]["note"], "drill ended (time limit reached)");
    assert_eq!(last["actor"], "incidentd");
    let ended = app.events(id, "drill.ended").await;
    assert_eq!(ended.len(), 1, "{ended:?}");

    // Nothing is left "open": the playbook's tasks are done or cancelled "drill ended".
    let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    let tasks = v["tasks"].as_array().unwrap();
    let (items, playbook): (Vec<&Value>, Vec<&Value>) = tasks
        .iter()
        .partition(|t| t["key"].as_str().unwrap().starts_with("aar-"));
    let cancelled: Vec<&&Value> = playbook
        .iter()
        .filter(|t| t["status"] == "cancelled")
        .collect();
    assert_eq!(cancelled.len(), missed, "{v:#}");
    for t in &playbook {
        if t["key"] == "contain" {
            assert_eq!(t["status"], "done", "{t}");
        } else {
            assert_eq!(t["status"], "cancelled", "{t}");
            assert_eq!(t["note"], "drill ended", "{t}");
            assert_eq!(t["closed_by"], "incidentd", "{t}");
        }
    }
    assert_eq!(
        last["data"]["tasks_cancelled"].as_array().unwrap().len(),
        missed
    );
    // A cancelled task cannot be done any more; an action item can, on the closed incident.
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/trace_cause/complete"),
        RESPONDER,
        json!({"note": "late"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(!items.is_empty(), "{v:#}");
    let item = items[0]["key"].as_str().unwrap();
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/{item}/complete"),
        RESPONDER,
        json!({"note": "runbook updated"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "done", "{v}");
    app.stop().await;
}

/// Each shipped scenario's drill pages every department its playbook names, and the drill guard
/// lets every one of those pages through (before, two of `phone_id_dump`'s six died at the guard
/// and its scorecard counted them as never acknowledging).
async fn the_shipped_scenarios_page_every_department_of_their_plan(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let repo = common::repo();
    let c = config(&sink, &smtp, &repo.join("config/drills"), "");
    let Some(app) = TestApp::spawn_with(backend, &c).await else {
        return;
    };
    for scenario in ["phone_id_dump", "open_bucket_orders", "ransomware_hr"] {
        let d = start_drill(&app, scenario).await;
        let id = d["incident_id"].as_i64().unwrap();
        let mut v = Value::Null;
        wait_for(
            &format!("{scenario}: a page to each department"),
            20,
            async || {
                v = app
                    .get(&format!("/api/v1/incidents/{id}/deliveries?limit=500"))
                    .await
                    .1;
                let settled = v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["purpose"] == "drill")
                    .filter(|d| matches!(d["status"].as_str(), Some("sent" | "dead")))
                    .count();
                settled >= DEPTS.len()
            },
        )
        .await;
        let pages: Vec<&Value> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["purpose"] == "drill")
            .collect();
        assert!(
            pages.iter().all(|d| d["status"] == "sent"),
            "{scenario}: every page gets through the guard: {pages:#?}"
        );
        let (_, t) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        let team: Vec<&str> = t["team"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["department"].as_str().unwrap())
            .collect();
        assert_eq!(team.len(), DEPTS.len(), "{scenario}: {team:?}");
    }
    // Every department's on-call was reached.
    for n in 1..=DEPTS.len() {
        assert!(!sms_to(&sink, &phone(n, 1)).is_empty(), "department {n}");
    }
    app.stop().await;
}
