//! The notice approval gate (`lint = "notice"` in the shipped PI playbook) refuses while the
//! incident's facts lack a required element of the notice to individuals, listing them in
//! English and Chinese; approving works once the facts are filled in; rejecting always works;
//! the PIPL exemption needs no notice content.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{Backend, DEPTS, RESPONDER, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LEGAL: &str = "test-legal-approver-token";

on_both_backends!(
    the_notice_approval_lists_missing_facts_until_they_are_filled,
    rejecting_and_the_exemption_need_no_notice_content,
);

fn config(sink: &Sink) -> String {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = format!(
        r#"
[paths]
templates = "{}"
playbooks = "{}"

[channels.sms]
provider = "generic_http"
base_url = "{}"
timeout = "2s"

[paging.channels]
S1 = ["sms"]
S2 = ["sms"]
S3 = ["sms"]
S4 = ["sms"]

[[auth.tokens]]
name = "legal-approver"
sha256 = "{}"
roles = ["approver", "responder"]
departments = ["legal"]
"#,
        repo.join("templates").display(),
        repo.join("config/playbooks").display(),
        sink.url("/sms"),
        hex::encode(incidentd::api::token_hash(LEGAL)),
    );
    for (i, d) in DEPTS.iter().enumerate() {
        c.push_str(&format!(
            "\n[[departments]]\nid = \"{d}\"\nname = \"{d}\"\nescalate_after = \"1h\"\n\
             [[departments.members]]\nname = \"{d} on-call\"\nphone = \"+86139000{i:02}001\"\nlevel = 1\n",
        ));
    }
    c
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, path, Some(token), Some(&body)).await
}

async fn task(app: &TestApp, id: i64, key: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if let Some(t) = v["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["key"] == key))
        {
            return t.clone();
        }
        assert!(Instant::now() < until, "no task {key}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A PI incident whose notice approval is no longer blocked by other tasks; its approval id.
async fn notice_ready(app: &TestApp) -> (i64, i64) {
    let id = app
        .declare(&json!({"title": "会员库备份被下载", "category": "pi_leak"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let gate = task(app, id, "approve_notice").await["id"]
        .as_i64()
        .unwrap();
    for key in ["contain", "assess_affected", "prepare_notice"] {
        let path = format!("/api/v1/incidents/{id}/tasks/{key}/complete");
        let (s, v) = post(app, &path, RESPONDER, json!({"note": "done"})).await;
        assert_eq!(s, StatusCode::OK, "{key}: {v}");
    }
    (id, gate)
}

async fn set_facts(app: &TestApp, id: i64, facts: Value) {
    let (s, v) = app
        .patch(&format!("/api/v1/incidents/{id}/facts"), &facts)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn decisions(app: &TestApp, id: i64) -> usize {
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "approval.decided")
        .count()
}

async fn the_notice_approval_lists_missing_facts_until_they_are_filled(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink)).await else {
        return;
    };
    let (id, gate) = notice_ready(&app).await;
    set_facts(
        &app,
        id,
        json!({"cause": "A backup was public.", "data_types": ["name", "phone"], "remedies": "  "}),
    )
    .await;
    let approve = format!("/api/v1/approvals/{gate}/approve");
    let (s, v) = post(&app, &approve, LEGAL, json!({"reason": "ok"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let detail = v["detail"].as_str().unwrap();
    for want in [
        "approves the notice to individuals and cannot be approved yet",
        "lack 4 of its required elements",
        "the possible impact / 可能造成的影响 (fact `impact`)",
        "the measures taken / 已采取的补救措施 (fact `measures_taken`)",
        "what people can do to reduce the risk / 个人可采取的防范和减轻风险的措施 (fact `advice_to_subjects`)",
        "the remedies offered / 提供的补救方式 (fact `remedies`)",
        &format!("PATCH /api/v1/incidents/{id}/facts"),
    ] {
        assert!(detail.contains(want), "`{want}` not in: {detail}");
    }
    // What is there, and the contact (the organisation's stands in), is not listed.
    let list = detail
        .split_once("required elements — ")
        .and_then(|(_, rest)| rest.split_once(" — fill them in"))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no list in: {detail}"));
    assert_eq!(list.split("; ").count(), 4, "{list}");
    for not in [
        "what happened",
        "kinds of personal information",
        "contact of",
        "planned",
    ] {
        assert!(!list.contains(not), "`{not}` listed: {list}");
    }
    assert_eq!(
        v["type"], "about:blank",
        "problem+json like every refusal: {v}"
    );
    // Nothing was approved or recorded.
    let t = task(&app, id, "approve_notice").await;
    assert_eq!(t["status"], "open", "{t}");
    assert_eq!(decisions(&app, id).await, 0);

    set_facts(
        &app,
        id,
        json!({
            "impact": "Names and phone numbers may be used for fraud calls.",
            "measures_taken": "The backup was made private and keys rotated.",
            "advice_to_subjects": "Be wary of calls claiming to be from us.",
            "remedies": "A hotline and a year of login alerts.",
        }),
    )
    .await;
    let (s, v) = post(&app, &approve, LEGAL, json!({"reason": "complete"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(decisions(&app, id).await, 1);
    app.stop().await;
}

async fn rejecting_and_the_exemption_need_no_notice_content(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink)).await else {
        return;
    };
    // Rejecting an incomplete notice is what Legal should be able to do.
    let (_, gate) = notice_ready(&app).await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{gate}/reject"),
        LEGAL,
        json!({"reason": "the facts are not known yet"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "rejected");

    // The PIPL exemption: nobody is told, so approving that decision needs no notice content —
    // but not while a regulator requires notice.
    let (id, gate) = notice_ready(&app).await;
    set_facts(
        &app,
        id,
        json!({"mitigation_effective": true, "mitigation_justification": "encrypted; keys safe",
               "regulator_requires_notice": true}),
    )
    .await;
    let approve = format!("/api/v1/approvals/{gate}/approve");
    let (s, v) = post(&app, &approve, LEGAL, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    set_facts(&app, id, json!({"regulator_requires_notice": false})).await;
    let (s, v) = post(&app, &approve, LEGAL, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
    app.stop().await;
}
