//! A drill measured and closed through the library, on the running daemon's database: the
//! scorecard's exact times against the scenario's targets, the missed and late tasks, the pages
//! never acknowledged, the action items created as tasks (once), and the after-action report
//! e-mailed to the drill's owner.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::sink::Sink;
use common::smtp::Smtp;
use common::{Backend, RESPONDER, TestApp, query_text, wait_for};
use incidentd::channels::ChannelKind;
use incidentd::domain::drill::{Mode, Targets};
use incidentd::domain::duration::HumanDuration;
use incidentd::engine::scorecard::{
    AfterActionCtx, ScenarioInfo, after_action, after_action_key, scorecard,
};
use incidentd::render::Templates;
use serde_json::{Value, json};

on_both_backends!(a_drill_is_scored_against_its_targets_and_its_after_action_report_is_sent);

/// Shipped templates, playbooks and jurisdiction packs; SMS to the sink, e-mail to the SMTP
/// sink; the six departments.
fn config(sink: &Sink, smtp: &Smtp) -> String {
    [
        common::paths(&[("jurisdictions", &common::shipped("config/jurisdictions"))]),
        "\n[dispatch]\npoll_interval = \"100ms\"\n".to_string(),
        common::phone_gateways(sink, &["sms"]),
        format!(
            "\n[channels.email]\nsmtp_url = \"{}\"\nfrom = \"Security <security@example.com>\"\n",
            smtp.url()
        ),
        common::page_every_severity_by(r#"["sms"]"#),
        common::departments("1h", |n, d| vec![common::Member::on_call(n, d)]),
    ]
    .concat()
}

fn mins(m: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(m * 60))
}

/// The drill's start: every time below is set relative to it, so the scorecard is exact.
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in micros
const MIN: i64 = 60_000_000;

fn t(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap()
}

async fn tasks(app: &TestApp, id: i64) -> Vec<Value> {
    let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    v["tasks"].as_array().unwrap().clone()
}

async fn a_drill_is_scored_against_its_targets_and_its_after_action_report_is_sent(
    backend: Backend,
) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &smtp)).await else {
        return;
    };
    let id = app
        .declare(&json!({
            "title": "Drill: member backup readable by anyone",
            "category": "pi_leak",
            "drill": true,
            "facts": {"affected_subjects": 300, "jurisdictions": ["CN"],
                      "data_types": ["name", "phone"]}
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    // The playbook is applied (and the team paged) just after the declaration.
    wait_for("the playbook's team", 5, async || {
        let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        v["team"].as_array().is_some_and(|t| t.len() >= 2)
    })
    .await;
    // Security acknowledges its page, IT operations acknowledges by its task and contains;
    // security preserves the evidence.
    for path in [
        format!("/api/v1/incidents/{id}/team/security/ack"),
        format!("/api/v1/incidents/{id}/tasks/contain/ack"),
    ] {
        let (s, v) = app.post(&path, RESPONDER, &json!({})).await;
        assert!(s.is_success(), "{path}: {v}");
    }
    for key in ["contain", "preserve_evidence"] {
        let path = format!("/api/v1/incidents/{id}/tasks/{key}/complete");
        let (s, v) = app.post(&path, RESPONDER, &json!({"note": "done"})).await;
        assert!(s.is_success(), "{path}: {v}");
    }
    for to in ["triaged", "contained"] {
        let (s, v) = app.transition(id, to, None).await;
        assert!(s.is_success(), "{to}: {v}");
    }

    // Pin every time the scorecard reads to the drill's start, T0.
    let stmts = [
        format!("UPDATE incident_team SET paged_at = {T0} WHERE incident_id = {id}"),
        format!(
            "UPDATE incident_team SET acked_at = {} WHERE incident_id = {id} AND department = 'security'",
            T0 + 5 * MIN
        ),
        format!(
            "UPDATE incident_team SET acked_at = {} WHERE incident_id = {id} AND department = 'it_operations'",
            T0 + 20 * MIN
        ),
        format!(
            "UPDATE tasks SET due_at = {T0} + due_offset_secs * 1000000 WHERE incident_id = {id} AND due_at IS NOT NULL"
        ),
        format!(
            "UPDATE tasks SET closed_at = {} WHERE incident_id = {id} AND key = 'contain'",
            T0 + 75 * MIN
        ),
        format!(
            "UPDATE tasks SET closed_at = {} WHERE incident_id = {id} AND key = 'preserve_evidence'",
            T0 + 30 * MIN
        ),
        format!(
            "UPDATE incidents SET contained_at = {} WHERE id = {id}",
            T0 + 75 * MIN
        ),
        format!(
            "UPDATE grades SET at = {} WHERE incident_id = {id}",
            T0 + 2 * MIN
        ),
    ];
    let stmts: Vec<&str> = stmts.iter().map(String::as_str).collect();
    app.sql(&stmts).await;

    let targets = Targets {
        acknowledge: BTreeMap::from([
            ("security".to_string(), mins(10)),
            ("default".to_string(), mins(15)),
        ]),
        contain: Some(mins(60)),
        grade: Some(mins(5)),
        notice_approved: Some(mins(120)),
        ..Targets::default()
    };
    let (started, ended) = (t(T0), t(T0 + 180 * MIN));
    let settings = incidentd::config::load(&app.config_path).unwrap();
    let store = incidentd::store::Store::connect(&settings).await.unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let card = scorecard(&mut tx, id, &targets, started, ended)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Acknowledgement: security 5 m (met, its own 10 m target), IT operations 20 m (missed, the
    // 15 m default); every other department paged was never acknowledged.
    let team: Vec<String> = card
        .measures
        .iter()
        .filter(|m| m.id == "acknowledge")
        .map(|m| m.department.clone().unwrap())
        .collect();
    assert!(team.contains(&"security".into()) && team.contains(&"it_operations".into()));
    let ack = |d: &str| {
        let m = card
            .measures
            .iter()
            .find(|m| m.id == "acknowledge" && m.department.as_deref() == Some(d))
            .unwrap();
        (m.actual_secs, m.target_secs, m.met)
    };
    assert_eq!(ack("security"), (Some(300), Some(600), Some(true)));
    assert_eq!(ack("it_operations"), (Some(1200), Some(900), Some(false)));
    let silent: Vec<String> = team
        .iter()
        .filter(|d| *d != "security" && *d != "it_operations")
        .cloned()
        .collect();
    assert!(!silent.is_empty());
    for d in &silent {
        assert_eq!(ack(d), (None, Some(900), Some(false)), "{d}");
    }
    assert_eq!(card.unacknowledged, silent);
    let m = |id: &str| {
        let m = card.measures.iter().find(|m| m.id == id).unwrap();
        (m.actual.clone(), m.met, m.department.clone())
    };
    assert_eq!(
        m("contain"),
        ("1h 15m".into(), Some(false), Some("it_operations".into()))
    );
    assert_eq!(m("grade").0, "2m 0s");
    assert_eq!(m("grade").1, Some(true));
    assert_eq!(
        m("report_draft"),
        ("not reached".into(), None, m("grade").2)
    );
    assert_eq!(
        m("notice_approved"),
        ("not reached".into(), Some(false), Some("legal".into()))
    );
    assert_eq!(m("notice_delivered").1, None);
    assert_eq!((card.met, card.missed), (2, 3 + silent.len()));
    // Contain was done 15 minutes late; every other task but the evidence was still open.
    let late: Vec<(&str, Option<&str>)> = card
        .tasks_late
        .iter()
        .map(|t| (t.key.as_str(), t.late_by.as_deref()))
        .collect();
    assert_eq!(late, [("contain", Some("15m 0s"))]);
    let open: Vec<String> = tasks(&app, id)
        .await
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_string())
        .filter(|k| k != "contain" && k != "preserve_evidence")
        .collect();
    let missed: Vec<String> = card.tasks_missed.iter().map(|t| t.key.clone()).collect();
    assert_eq!(missed, open);
    assert_eq!(card.duration, "3h 0m");
    assert!(card.completeness.notice_missing.len() > 1, "{card:#?}");

    // Close the drill: the report is e-mailed once and the action items become tasks, once.
    let templates = Templates::load(&settings.templates_path, &settings.render).unwrap();
    let ctx = AfterActionCtx {
        templates: &templates,
        org: &settings.organisation,
        channels: &[ChannelKind::Sms, ChannelKind::Email],
    };
    let scenario = ScenarioInfo {
        name: "pi_leak_functional".into(),
        description: "A member database backup is readable by anyone.".into(),
        mode: Mode::Functional,
        objectives: vec!["Acknowledge within 15 minutes".into()],
        owner_email: "drill.owner@example.com".into(),
        locale: "en".into(),
    };
    let now = t(T0 + 200 * MIN);
    for _ in 0..2 {
        let mut tx = store.begin_write().await.unwrap();
        let inc = tx.incident(id).await.unwrap().unwrap();
        let events = after_action(&mut tx, &ctx, &inc, &scenario, &card, now)
            .await
            .unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["drill.scorecard", "drill.after_action"]);
        tx.append(&events).await.unwrap();
        tx.commit().await.unwrap();
    }
    let items = card.missed + card.tasks_missed.len() + card.tasks_late.len();
    let all = tasks(&app, id).await;
    let aar: Vec<&Value> = all
        .iter()
        .filter(|t| t["key"].as_str().unwrap().starts_with("aar-"))
        .collect();
    assert_eq!(aar.len(), items);
    // Missed targets first, in the scorecard's order; each task for its department.
    let first_missed = card.measures.iter().find(|m| m.met == Some(false)).unwrap();
    let first = aar.iter().find(|t| t["key"] == "aar-1").unwrap();
    assert_eq!(
        first["department"].as_str(),
        first_missed.department.as_deref()
    );
    let it_ops = aar
        .iter()
        .find(|t| {
            t["title"]
                .as_str()
                .unwrap()
                .contains("(it_operations) missed")
        })
        .unwrap();
    assert_eq!(it_ops["department"], "it_operations");
    assert_eq!(
        it_ops["title"],
        "Drill follow-up: Time to acknowledge the page (it_operations) missed its target (target 15m 0s, actual 20m 0s)"
    );
    let last = aar
        .iter()
        .find(|t| t["key"] == format!("aar-{items}"))
        .unwrap();
    assert_eq!(last["department"], "it_operations");
    assert_eq!(
        last["title"],
        "Drill follow-up: task `contain` (控制损失 / Contain) was done 15m 0s late"
    );
    let due: DateTime<Utc> = serde_json::from_value(first["due_at"].clone()).unwrap();
    assert_eq!(due, now + chrono::Duration::days(14));

    let key = after_action_key(id);
    let rows = query_text(
        backend,
        &app.store_url,
        &format!(
            "SELECT purpose, channel, recipient, CASE WHEN drill THEN 'yes' ELSE 'no' END FROM deliveries WHERE incident_id = {id} AND purpose = 'drill' AND channel = 'email'"
        ),
    )
    .await;
    assert_eq!(
        rows,
        [[
            Some("drill".into()),
            Some("email".into()),
            Some("drill.owner@example.com".into()),
            Some("yes".into())
        ]]
    );
    let rows = query_text(
        backend,
        &app.store_url,
        &format!("SELECT CAST(COUNT(*) AS TEXT) FROM deliveries WHERE idempotency_key = '{key}'"),
    )
    .await;
    assert_eq!(rows, [[Some("1".into())]]);
    // The dispatcher sends it: the drill's allow-list lets the owner's address through.
    wait_for("the after-action report's e-mail", 5, async || {
        !smtp.messages().is_empty()
    })
    .await;
    let msg = &smtp.messages()[0];
    assert_eq!(
        msg["subject"],
        format!("[DRILL] After-action report: pi_leak_functional (incident #{id})")
    );
    assert_eq!(msg["rcpt_tos"], json!(["drill.owner@example.com"]));
    let text = msg["text"].as_str().unwrap();
    for part in [
        "## Metrics against targets",
        "| Time to contain | it_operations | 1h 0m | 1h 15m | MISSED |",
        "- token:responder",
        "`aar-1`",
    ] {
        assert!(text.contains(part), "{part} not in\n{text}");
    }
    assert!(!text.contains("- system\n"), "{text}");
    store.close().await;
    app.stop().await;
}
