//! The response to an incident through the running daemon: playbook selection, the joint team
//! paged through the outbox, tasks, escalation across a restart, overdue tasks, approvals.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{Backend, DEPTS, INGEST, Member, RESPONDER, TestApp, phone, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LEGAL: &str = "test-legal-approver-token";
const GR: &str = "test-gr-approver-token";

on_both_backends!(
    s1_pi_alert_pages_the_joint_team_and_creates_the_pi_plan,
    unacknowledged_page_escalates_on_time_across_a_restart,
    approvals_gate_what_depends_on_them,
    acks_are_harmless_twice_and_refused_on_closed_incidents,
    overdue_tasks_page_the_department_lead,
    a_broken_playbook_on_reload_keeps_the_old_ones,
    the_status_digest_goes_out_on_its_schedule,
    a_page_link_acknowledges_with_one_click,
    the_cli_lists_acks_completes_and_decides,
    a_department_without_tasks_acknowledges_its_page,
    a_severity_raise_pages_the_unacknowledged_on_the_new_channels,
    a_reopened_incident_is_rearmed,
);

fn config(sink: &Sink, security_escalates: &str) -> String {
    config_with(
        sink,
        security_escalates,
        &common::shipped("config/playbooks"),
        "",
    )
}

fn config_with(
    sink: &Sink,
    security_escalates: &str,
    playbooks: &std::path::Path,
    extra: &str,
) -> String {
    let mut c = format!(
        r#"
{}
[dispatch]
lease = "5s"
poll_interval = "200ms"
backoff_base = "100ms"
backoff_max = "400ms"
{}
# Nothing listens here: e-mail (the digest) is enqueued and retried, which is all these tests need.
[channels.email]
smtp_url = "smtp://127.0.0.1:9"
from = "Security <security@example.com>"
timeout = "2s"

[paging.channels]
S1 = ["voice", "sms"]
S2 = ["sms"]
S3 = ["sms"]
S4 = ["sms"]
{}{}"#,
        common::paths(&[("playbooks", playbooks)]),
        common::phone_gateways(sink, &["sms", "voice"]),
        common::approver("legal-approver", LEGAL, "legal"),
        common::approver("gr-approver", GR, "government_relations"),
    );
    c.push_str(extra);
    for (i, d) in DEPTS.iter().enumerate() {
        let esc = if *d == "security" {
            security_escalates
        } else {
            "1h"
        };
        let members = [
            Member::on_call(i + 1, d).oncall_email(d),
            Member::head(i + 1, d),
        ];
        c.push_str(&common::department(d, esc, &members));
    }
    c
}

/// Requests the sink received, by (path, "to").
fn received(sink: &Sink) -> HashMap<(String, String), usize> {
    let mut m = HashMap::new();
    for r in sink.received() {
        let to = r.json()["to"].as_str().unwrap_or_default().to_string();
        *m.entry((r.path.clone(), to)).or_default() += 1;
    }
    m
}

async fn tasks(app: &TestApp, id: i64) -> Value {
    let (s, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn task<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no task {key} in {v:#}"))
}

async fn declare_pi(app: &TestApp) -> i64 {
    app.declare(&json!({"title": "客户订单库被拖库", "category": "pi_leak"}))
        .await["id"]
        .as_i64()
        .unwrap()
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, path, Some(token), Some(&body)).await
}

async fn s1_pi_alert_pages_the_joint_team_and_creates_the_pi_plan(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "1h")).await else {
        return;
    };
    let started = Instant::now();
    let v = app
        .post(
            "/api/v1/alerts",
            INGEST,
            &json!({"source": "dlp", "title": "用户数据库疑似被拖库", "labels": {"host": "db-7"}}),
        )
        .await;
    assert_eq!(v.0, StatusCode::ACCEPTED, "{}", v.1);
    let id = v.1["alerts"][0]["incident_id"].as_i64().unwrap();
    // Security, Government Relations and Legal (and the rest of the PI team) are called and
    // texted at level 1; nobody at level 2.
    wait_for("the level-1 pages", 10, async || {
        let r = received(&sink);
        (0..6).all(|d| {
            r.contains_key(&("/voice".into(), phone(d + 1, 1)))
                && r.contains_key(&("/sms".into(), phone(d + 1, 1)))
        })
    })
    .await;
    eprintln!(
        "alert accepted → whole team paged in {:?}",
        started.elapsed()
    );
    let v = tasks(&app, id).await;
    assert_eq!(v["playbook"], "pi_incident", "{v:#}");
    let team: Vec<&str> = v["team"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["department"].as_str().unwrap())
        .collect();
    for d in ["security", "government_relations", "legal"] {
        assert!(team.contains(&d), "{d} not in the team {team:?}");
    }
    for key in [
        "contain",
        "preserve_evidence",
        "trace_cause",
        "assess_affected",
        "prepare_notice",
        "approve_notice",
        "prepare_regulator_report",
        "approve_regulator_report",
        "public_statement",
        "customer_service_script",
        "close_and_review",
    ] {
        task(&v, key);
    }
    let approve = task(&v, "approve_notice");
    assert_eq!(approve["approval"], true);
    assert_eq!(
        approve["blocked_by"][0]["task"], "prepare_notice",
        "{approve}"
    );
    assert!(task(&v, "contain")["due_at"].as_str().is_some());
    assert!(
        task(&v, "prepare_notice")["due_at"].is_null(),
        "due only once assess_affected is done"
    );
    let sms = sink
        .received()
        .into_iter()
        .find(|r| r.path == "/sms")
        .unwrap()
        .json();
    assert_eq!(sms["template"], "page/incident_opened");
    assert!(
        sms["text"].as_str().unwrap().contains(&format!("#{id}")),
        "{sms}"
    );
    assert_eq!(app.events(id, "playbook.applied").await.len(), 1);

    // A second alert joining the incident, and a facts change, change nothing: no new tasks or pages.
    app.alerts(
        &json!({"source": "dlp", "title": "用户数据库疑似被拖库", "labels": {"host": "db-7"}}),
    )
    .await;
    let before = sink.count();
    // Proving nothing happens: a window of a few dispatch polls (200 ms; a commit wakes it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), before, "no page twice");
    assert_eq!(
        tasks(&app, id).await["tasks"].as_array().unwrap().len(),
        v["tasks"].as_array().unwrap().len()
    );
    assert_eq!(
        received(&sink)
            .iter()
            .filter(|((_, to), _)| to.ends_with("02"))
            .count(),
        0,
        "level 2 not paged"
    );
    app.stop().await;
}

async fn unacknowledged_page_escalates_on_time_across_a_restart(backend: Backend) {
    let sink = Sink::start().await;
    let Some(mut app) = TestApp::spawn_with(backend, &config(&sink, "3s")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    wait_for("security's level-1 page", 10, async || {
        received(&sink).contains_key(&("/sms".into(), phone(1, 1)))
    })
    .await;
    let paged_at = Instant::now();
    // Government Relations acknowledges (through one of its tasks); Security does not.
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/prepare_regulator_report/ack"),
        RESPONDER,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "acked");
    // The daemon is down when the escalation falls due: the story is the wall clock passing it
    // while nothing runs (so it waits, as a timer cannot be fired on a stopped daemon).
    app.shutdown().await;
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(paged_at.elapsed())).await;
    assert!(
        !received(&sink).contains_key(&("/sms".into(), phone(1, 2))),
        "nothing escalates while the daemon is down"
    );
    app.start_again().await;
    wait_for(
        "security's level-2 page after the restart",
        10,
        async || received(&sink).contains_key(&("/sms".into(), phone(1, 2))),
    )
    .await;
    // Proving it happens once: a window of a few dispatch polls for a second page to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = received(&sink);
    assert_eq!(r[&("/sms".into(), phone(1, 2))], 1, "escalated once: {r:?}");
    assert_eq!(
        r[&("/voice".into(), phone(1, 2))],
        1,
        "escalated once: {r:?}"
    );
    assert!(
        !r.contains_key(&("/sms".into(), phone(2, 2))),
        "an acknowledged department does not escalate"
    );
    let esc = app.events(id, "incident.escalated").await;
    assert_eq!(esc.len(), 1, "{esc:?}");
    assert_eq!(esc[0]["data"]["department"], "security");
    assert_eq!(esc[0]["data"]["to_level"], 2);
    let v = tasks(&app, id).await;
    let sec = v["team"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["department"] == "security")
        .unwrap();
    assert_eq!(sec["level"], 2);
    assert!(sec["acked_at"].is_null());
    app.stop().await;
}

async fn approvals_gate_what_depends_on_them(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "1h")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    wait_for("the playbook", 10, async || sink.count() > 0).await;
    let complete = |key: &str| {
        let path = format!("/api/v1/incidents/{id}/tasks/{key}/complete");
        let app = &app;
        async move { post(app, &path, RESPONDER, json!({"note": "done"})).await }
    };
    // The customer-service script waits for Legal's approval of the notice.
    let (s, v) = complete("customer_service_script").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("`approve_notice` (awaiting approval by legal)"),
        "{v}"
    );
    let approve_notice = task(&tasks(&app, id).await, "approve_notice")["id"]
        .as_i64()
        .unwrap();
    // An approval cannot be decided before what it approves exists.
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{approve_notice}/approve"),
        LEGAL,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    for key in ["contain", "assess_affected", "prepare_notice"] {
        let (s, v) = complete(key).await;
        assert_eq!(s, StatusCode::OK, "{key}: {v}");
    }
    // Government Relations may not decide Legal's gate; Legal may.
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{approve_notice}/approve"),
        GR,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, pending) = app.get("/api/v1/approvals").await;
    assert!(
        pending["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == approve_notice && t["blocked_by"].as_array().unwrap().is_empty()),
        "{pending:#}"
    );
    // The notice gate needs the notice's content in the facts (tests/notice_lint.rs).
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"cause": "c", "data_types": ["phone"], "impact": "i", "measures_taken": "m",
                    "advice_to_subjects": "a", "remedies": "r"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{approve_notice}/approve"),
        LEGAL,
        json!({"reason": "wording checked"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
    let (s, v) = complete("customer_service_script").await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The regulator report needs both Government Relations and Legal; one rejection blocks it.
    let (s, _) = complete("prepare_regulator_report").await;
    assert_eq!(s, StatusCode::OK);
    let report = task(&tasks(&app, id).await, "approve_regulator_report")["id"]
        .as_i64()
        .unwrap();
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{report}/approve"),
        GR,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "open", "still waiting for Legal: {v}");
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{report}/reject"),
        LEGAL,
        json!({}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a rejection needs a reason: {v}"
    );
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{report}/reject"),
        LEGAL,
        json!({"reason": "the affected count is unverified"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "rejected");
    let (s, v) = complete("public_statement").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("rejected by legal: the affected count is unverified"),
        "{v}"
    );
    let decided = app.events(id, "approval.decided").await;
    assert_eq!(decided.len(), 3, "{decided:?}");
    app.stop().await;
}

async fn acks_are_harmless_twice_and_refused_on_closed_incidents(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "1h")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    wait_for("the playbook", 10, async || sink.count() > 0).await;
    let ack = format!("/api/v1/incidents/{id}/tasks/contain/ack");
    let (s1, a) = post(&app, &ack, RESPONDER, json!({})).await;
    let (s2, b) = post(&app, &ack, RESPONDER, json!({})).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        a["acked_at"], b["acked_at"],
        "the first acknowledgement stands"
    );
    assert_eq!(app.events(id, "task.acked").await.len(), 1);
    let (s, _) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/no_such_task/ack"),
        RESPONDER,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for (to, note) in [
        ("triaged", None),
        ("contained", None),
        ("eradicated", None),
        ("recovered", None),
    ] {
        let (s, v) = app.transition(id, to, note).await;
        assert_eq!(s, StatusCode::OK, "{to}: {v}");
    }
    // Its tasks are open: closing is forced, with a reason, and cancels them.
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/transitions"),
        RESPONDER,
        json!({"to": "closed", "note": "test over", "force": true, "reason": "a test"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        task(&tasks(&app, id).await, "trace_cause")["status"],
        "cancelled"
    );
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/trace_cause/ack"),
        RESPONDER,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("closed"), "{v}");
    app.stop().await;
}

async fn overdue_tasks_page_the_department_lead(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "1h")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    wait_for("the playbook", 10, async || sink.count() > 0).await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks"),
        RESPONDER,
        json!({"key": "call_bank", "title": "Call the card issuer", "department": "legal", "due": "2s"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let lead = phone(3, 2);
    wait_for("the overdue page to Legal's lead", 10, async || {
        received(&sink).contains_key(&("/sms".into(), lead.clone()))
    })
    .await;
    let page = sink
        .received()
        .into_iter()
        .map(|r| r.json())
        .find(|j| j["to"] == lead.as_str())
        .unwrap();
    assert!(
        page["text"]
            .as_str()
            .unwrap()
            .contains("Call the card issuer"),
        "{page}"
    );
    let (_, over) = app.get("/api/v1/tasks?overdue=true").await;
    assert!(
        over["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "call_bank" && t["overdue"] == true),
        "{over:#}"
    );
    assert_eq!(app.events(id, "task.overdue").await.len(), 1);
    // Done before its due time: no page.
    let (s, _) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks"),
        RESPONDER,
        json!({"key": "quick", "title": "Quick one", "department": "legal", "due": "2s"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = post(
        &app,
        &format!("/api/v1/incidents/{id}/tasks/quick/complete"),
        RESPONDER,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Its due time comes (fired as the scheduler would then, without waiting for it): no page.
    app.fire_due(chrono::Utc::now() + chrono::Duration::seconds(3))
        .await;
    assert_eq!(app.events(id, "task.overdue").await.len(), 1);
    app.stop().await;
}

async fn a_broken_playbook_on_reload_keeps_the_old_ones(backend: Backend) {
    let sink = Sink::start().await;
    let books = tempfile::tempdir().unwrap();
    let repo = common::repo();
    for f in ["pi_incident.toml", "cyber_general.toml", "default.toml"] {
        std::fs::copy(repo.join("config/playbooks").join(f), books.path().join(f)).unwrap();
    }
    let Some(app) = TestApp::spawn_with(backend, &config_with(&sink, "1h", books.path(), "")).await
    else {
        return;
    };
    let pi = books.path().join("pi_incident.toml");
    let good = std::fs::read_to_string(&pi).unwrap();
    std::fs::write(
        &pi,
        good.replacen("department = \"security\"", "department = \"marketing\"", 1),
    )
    .unwrap();
    let err = app.reload().await.unwrap_err().to_string();
    assert!(
        err.contains("pi_incident.toml") && err.contains("marketing"),
        "{err}"
    );
    // With a token: why (an anonymous caller is told only that it was refused).
    let ready = app
        .http
        .get(app.url("/readyz"))
        .bearer_auth(common::VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let text = ready.text().await.unwrap();
    assert!(
        text.contains("reload was refused") && text.contains("marketing"),
        "{text}"
    );
    // The old playbooks keep working.
    let id = declare_pi(&app).await;
    wait_for("the PI plan", 10, async || sink.count() > 0).await;
    assert_eq!(tasks(&app, id).await["playbook"], "pi_incident");
    std::fs::write(&pi, good).unwrap();
    app.reload().await.unwrap();
    let text = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "ready\n");
    app.stop().await;
}

async fn the_status_digest_goes_out_on_its_schedule(backend: Backend) {
    let sink = Sink::start().await;
    let repo = common::repo();
    let extra = "\n[scheduler]\ndigest = \"* * * * * *\"\n";
    let Some(app) = TestApp::spawn_with(
        backend,
        &config_with(&sink, "1h", &repo.join("config/playbooks"), extra),
    )
    .await
    else {
        return;
    };
    let id = declare_pi(&app).await;
    let low = app
        .declare(&json!({"title": "Port scan from one address", "category": "network_attack", "severity": "S4"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let digests = common::wait_until("two digests", 10, async || {
        let d = app.events(id, "digest.sent").await;
        (d.len() >= 2).then_some(d)
    })
    .await;
    let apart = common::micros(&digests[1]["at"]) - common::micros(&digests[0]["at"]);
    assert!(
        apart >= 900_000,
        "one digest per second-tick, {apart} µs apart: {digests:?}"
    );
    assert!(
        digests[0]["data"]["open"].as_i64().unwrap() > 5,
        "{digests:?}"
    );
    assert!(
        app.events(low, "digest.sent").await.is_empty(),
        "S4 gets no digest"
    );
    app.stop().await;
}

async fn a_page_link_acknowledges_with_one_click(backend: Backend) {
    let sink = Sink::start().await;
    let repo = common::repo();
    let extra = "\n[paging]\nack_secret = \"a-page-link-signing-key\"\n";
    let Some(app) = TestApp::spawn_with(
        backend,
        &config_with(&sink, "3s", &repo.join("config/playbooks"), extra),
    )
    .await
    else {
        return;
    };
    let id = declare_pi(&app).await;
    wait_for("security's page", 10, async || {
        received(&sink).contains_key(&("/sms".into(), phone(1, 1)))
    })
    .await;
    let text = sink
        .received()
        .into_iter()
        .map(|r| r.json())
        .find(|j| j["to"] == phone(1, 1).as_str() && j["kind"] == "sms")
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let at = text
        .find("/ack/")
        .unwrap_or_else(|| panic!("no link in {text}"));
    let path: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
        .collect();
    // Opening the link changes nothing (mail scanners fetch links); the button acknowledges.
    let res = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("<form method=\"post\""));
    assert!(app.events(id, "task.acked").await.is_empty());
    let mut forged = path.clone();
    forged.insert(6, 'x');
    let res = app.http.post(app.url(&forged)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.http.post(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Acknowledged"));
    let acked = app.events(id, "task.acked").await;
    assert_eq!(acked.len(), 1, "{acked:?}");
    assert_eq!(acked[0]["actor"], "member:security/1");
    // Acknowledged: Security does not escalate when its time comes (fired as the scheduler
    // would then, without waiting for it).
    app.fire_due(chrono::Utc::now() + chrono::Duration::seconds(4))
        .await;
    assert!(app.events(id, "incident.escalated").await.is_empty());
    assert!(!received(&sink).contains_key(&("/sms".into(), phone(1, 2))));
    app.stop().await;
}

/// The CLI against the running daemon: readable tables, and the same refusals as the API.
async fn the_cli_lists_acks_completes_and_decides(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "1h")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    wait_for("the playbook", 10, async || sink.count() > 0).await;
    let url = app.url("");
    let run = move |token: &'static str, args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let o = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
                    .args(&args)
                    .env("INCIDENTD_URL", url)
                    .env("INCIDENTD_TOKEN", token)
                    .env("NO_COLOR", "1")
                    .output()
                    .unwrap();
                (
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout).to_string()
                        + &String::from_utf8_lossy(&o.stderr),
                )
            })
            .await
            .unwrap()
        }
    };
    let s = |x: &str| x.to_string();
    let (code, out) = run(RESPONDER, vec![s("tasks"), s("--incident"), id.to_string()]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("approve_notice") && out.contains("blocked by prepare_notice"),
        "{out}"
    );
    let (code, out) = run(
        RESPONDER,
        vec![s("task"), s("ack"), id.to_string(), s("contain")],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "task contain of incident {id} (it_operations) is acked"
        )),
        "{out}"
    );
    let (code, out) = run(
        RESPONDER,
        vec![
            s("task"),
            s("complete"),
            id.to_string(),
            s("assess_affected"),
            s("--note"),
            s("x"),
        ],
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("409") && out.contains("blocked by `contain`"),
        "{out}"
    );
    // Legal decides both gates; Government Relations only the regulator report.
    let (code, out) = run(LEGAL, vec![s("approvals"), s("--mine")]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("approve_notice") && out.contains("approve_regulator_report"),
        "{out}"
    );
    let (code, out) = run(GR, vec![s("approvals"), s("--mine")]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("approve_notice") && out.contains("approve_regulator_report"),
        "{out}"
    );
    let approval = task(&tasks(&app, id).await, "approve_notice")["id"].to_string();
    let (code, out) = run(LEGAL, vec![s("reject"), approval.clone()]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("say why it is rejected"), "{out}");
    let (code, out) = run(RESPONDER, vec![s("tasks"), s("--mine"), s("--json")]).await;
    assert_eq!(code, Some(0), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        0,
        "the responder token acts for no department: {v}"
    );
    app.stop().await;
}

async fn declare_s3_attack(app: &TestApp) -> i64 {
    app.declare(&json!({"title": "Port scan against the VPN", "category": "network_attack", "severity": "S3"}))
        .await["id"]
        .as_i64()
        .unwrap()
}

/// In the general plan at S3, Government Relations is on the team but has no task: it can still
/// acknowledge its page, and escalation stops.
async fn a_department_without_tasks_acknowledges_its_page(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "1h")).await else {
        return;
    };
    let id = declare_s3_attack(&app).await;
    wait_for("Government Relations' page", 10, async || {
        received(&sink).contains_key(&("/sms".into(), phone(2, 1)))
    })
    .await;
    let v = tasks(&app, id).await;
    assert_eq!(v["playbook"], "cyber_general", "{v:#}");
    assert!(
        !v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["department"] == "government_relations"),
        "no Government Relations task at S3: {v:#}"
    );
    let path = format!("/api/v1/incidents/{id}/team/government_relations/ack");
    let (s, team) = post(&app, &path, RESPONDER, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{team}");
    let gr = team
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["department"] == "government_relations")
        .unwrap();
    assert!(gr["acked_at"].is_string(), "{team}");
    let (s, _) = post(&app, &path, RESPONDER, json!({})).await;
    assert_eq!(s, StatusCode::OK, "twice is harmless");
    assert_eq!(app.events(id, "page.acknowledged").await.len(), 1);
    let (s, _) = post(
        &app,
        &format!("/api/v1/incidents/{id}/team/legal/ack"),
        RESPONDER,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "legal is not on this team");
    app.stop().await;
}

async fn a_severity_raise_pages_the_unacknowledged_on_the_new_channels(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "1h")).await else {
        return;
    };
    let id = declare_s3_attack(&app).await;
    wait_for("the S3 pages (SMS only)", 10, async || {
        received(&sink).contains_key(&("/sms".into(), phone(1, 1)))
    })
    .await;
    // Security acknowledges; the others do not.
    let (s, _) = post(
        &app,
        &format!("/api/v1/incidents/{id}/team/security/ack"),
        RESPONDER,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!received(&sink).contains_key(&("/voice".into(), phone(6, 1))));
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"severity": "S1", "reason": "VPN credentials confirmed stolen"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // IT Operations (unacknowledged) is now called; Security (acknowledged) is not; nobody
    // gets the same SMS twice.
    wait_for("the S1 call to IT Operations", 10, async || {
        received(&sink).contains_key(&("/voice".into(), phone(6, 1)))
    })
    .await;
    // Proving nobody else is called: a window of a few dispatch polls.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = received(&sink);
    assert!(!r.contains_key(&("/voice".into(), phone(1, 1))), "{r:?}");
    assert_eq!(r[&("/sms".into(), phone(6, 1))], 1, "{r:?}");
    let applied = app.events(id, "playbook.applied").await;
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert_eq!(applied[1]["data"]["severity"], "S1");
    app.stop().await;
}

async fn a_reopened_incident_is_rearmed(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "2s")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    wait_for("the pages", 10, async || sink.count() > 0).await;
    let (s, v) = app
        .transition(id, "false_positive", Some("looked like a test dump"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Closed: Security's escalation falls due (fired as the scheduler would then) and does
    // nothing.
    app.fire_due(chrono::Utc::now() + chrono::Duration::seconds(3))
        .await;
    assert!(app.events(id, "incident.escalated").await.is_empty());
    assert!(!received(&sink).contains_key(&("/sms".into(), phone(1, 2))));
    let (s, v) = app
        .transition(id, "reopened", Some("the dump is real"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_for("the re-armed escalation of Security", 10, async || {
        received(&sink).contains_key(&("/sms".into(), phone(1, 2)))
    })
    .await;
    assert_eq!(app.events(id, "response.rearmed").await.len(), 1);
    app.stop().await;
}
