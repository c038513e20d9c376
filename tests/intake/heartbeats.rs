//! Heartbeats (dead-man's switches) through the running daemon. Time moves on with the
//! daemon's own timer handler (`TestApp::fire_due`), not by sleeping.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::silences::{pages_of, team_config};
use crate::common::{self, Backend, INGEST, RESPONDER, TestApp};

crate::on_both_backends!(
    a_late_heartbeat_opens_an_incident_and_pages,
    recovery_is_on_the_timeline_and_late_again_reuses_the_open_incident,
    alertmanager_resends_keep_the_watchdog_fresh,
    checks_survive_a_restart_and_a_silent_source_is_noticed,
    heartbeats_added_on_reload_are_watched,
    pings_name_a_configured_heartbeat_and_the_cli_shows_them,
    without_heartbeats_a_ping_is_404_saying_none_are_configured,
);

const HEARTBEATS: &str = r#"
[[heartbeats]]
name = "alertmanager_watchdog"
description = "Prometheus → Alertmanager alert path"
interval = "1m"
grace = "2m"
alert = { source = "alertmanager", labels = { alertname = "^Watchdog$" } }

[[heartbeats]]
name = "nightly_backup"
description = "The nightly database backup job"
interval = "1h"
grace = "10m"
severity = "S3"
"#;

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, &team_config(HEARTBEATS)).await
}

/// Alertmanager's Watchdog group, as its webhook sends it (every re-send is the same).
fn watchdog(status: &str) -> String {
    json!({
        "version": "4",
        "groupKey": "{}/{alertname=\"Watchdog\"}:{alertname=\"Watchdog\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "incidentd",
        "groupLabels": {"alertname": "Watchdog"},
        "commonLabels": {"alertname": "Watchdog", "severity": "none"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "Watchdog", "severity": "none"},
            "annotations": {"summary": "An alert that should always be firing to certify that Alertmanager is working properly."},
            "startsAt": "2026-03-01T00:00:00.123456789Z",
            "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-03-01T09:00:00Z" },
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "e1f2a3b4c5d6e7f8"
        }]
    })
    .to_string()
}

/// Fire timers due at `at` until none is left (a firing may schedule more, e.g. the playbook).
async fn settle(app: &TestApp, at: DateTime<Utc>) {
    for _ in 0..20 {
        if app.fire_due(at).await == 0 {
            return;
        }
    }
    panic!("timers kept falling due at {at}");
}

async fn heartbeat(app: &TestApp, name: &str) -> Value {
    let (s, v) = app.get("/api/v1/heartbeats").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} not listed: {v}"))
}

/// Incidents a heartbeat opened, oldest first.
async fn heartbeat_incidents(app: &TestApp) -> Vec<Value> {
    let (_, v) = app.get("/api/v1/incidents?limit=100").await;
    let mut list: Vec<Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["origin"] == "heartbeat")
        .cloned()
        .collect();
    list.reverse();
    list
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn pending_checks(app: &TestApp, name: &str) -> usize {
    common::query_text(
        app.backend,
        &app.store_url,
        &format!(
            "SELECT key FROM timers WHERE kind = 'heartbeat.check' AND status = 'pending' AND key LIKE 'heartbeat:{name}:%'"
        ),
    )
    .await
    .len()
}

async fn a_late_heartbeat_opens_an_incident_and_pages(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let start = Utc::now();
    let w = heartbeat(&app, "alertmanager_watchdog").await;
    assert_eq!(w["state"], "never");
    assert_eq!(
        (w["interval"].as_str(), w["grace"].as_str()),
        (Some("1m"), Some("2m"))
    );
    assert!(time(&w["next_due"]) > start + Duration::minutes(2));
    assert_eq!(pending_checks(&app, "alertmanager_watchdog").await, 1);
    assert_eq!(pending_checks(&app, "nightly_backup").await, 1);
    let (s, b) = app
        .post("/api/v1/heartbeats/nightly_backup", INGEST, &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(
        (b["state"].as_str(), b["last_via"].as_str()),
        (Some("ok"), Some("ping:token:ingest"))
    );

    // Within interval + grace nothing happens; past it, an incident opens and the team is paged.
    settle(&app, start + Duration::minutes(2)).await;
    assert!(heartbeat_incidents(&app).await.is_empty());
    let at = Utc::now() + Duration::minutes(4);
    settle(&app, at).await;
    let incidents = heartbeat_incidents(&app).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let inc = app.incident(incidents[0]["id"].as_i64().unwrap()).await;
    let id = inc["id"].as_i64().unwrap();
    let title = inc["title"].as_str().unwrap();
    for needle in [
        "心跳超时：alertmanager_watchdog",
        "从未收到信号",
        "Heartbeat late: alertmanager_watchdog never heard from since",
        "expected every 1m",
    ] {
        assert!(title.contains(needle), "`{needle}` not in {title}");
    }
    assert_eq!(
        (inc["severity"].as_str(), inc["category"].as_str()),
        (Some("S2"), Some("other"))
    );
    assert_eq!(inc["created_by"], "incidentd");
    let late = app.events(id, "heartbeat.late").await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["data"]["heartbeat"], "alertmanager_watchdog");
    assert_eq!(late[0]["data"]["interval"], "1m");
    assert!(late[0]["data"]["last_seen_at"].is_null());
    assert_eq!(
        app.events(id, "playbook.applied").await.len(),
        1,
        "paged through the playbook"
    );
    assert!(pages_of(&app, id).await > 0, "pages are queued");

    let w = heartbeat(&app, "alertmanager_watchdog").await;
    assert_eq!(
        (w["state"].as_str(), w["incident_id"].as_i64()),
        (Some("late"), Some(id))
    );
    assert!(w["late_since"].is_string());
    assert_eq!(heartbeat(&app, "nightly_backup").await["state"], "ok");
    // The gauges are set from this daemon's store as it answers, in the recorder every daemon
    // of the test binary shares (the other heartbeat stories use these names too): look until a
    // scrape shows this daemon's figures.
    common::wait_for("this daemon's heartbeats on /metrics", 10, async || {
        let m = app.metrics().await;
        m.contains("incidentd_heartbeat_late{name=\"alertmanager_watchdog\"} 1")
            && m.contains("incidentd_heartbeat_late{name=\"nightly_backup\"} 0")
    })
    .await;

    // Still late later: no second incident, no second event.
    settle(&app, at + Duration::minutes(30)).await;
    assert_eq!(heartbeat_incidents(&app).await.len(), 1);
    assert_eq!(app.events(id, "heartbeat.late").await.len(), 1);
    let r = app.verify().await;
    assert!(r.broken_at.is_none(), "{r:?}");
    app.stop().await;
}

async fn recovery_is_on_the_timeline_and_late_again_reuses_the_open_incident(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    settle(&app, Utc::now() + Duration::minutes(4)).await;
    let id = heartbeat_incidents(&app).await[0]["id"].as_i64().unwrap();
    // The Watchdog arrives: recorded (the shipped rules call it noise), and the heartbeat is back.
    let v = app.alertmanager(&watchdog("firing")).await;
    assert_eq!(v["alerts"][0]["disposition"], "recorded", "{v}");
    let rec = app.events(id, "heartbeat.recovered").await;
    assert_eq!(rec.len(), 1, "recovery is on the incident's timeline");
    assert_eq!(rec[0]["data"]["via"], "alert:alertmanager");
    let w = heartbeat(&app, "alertmanager_watchdog").await;
    assert_eq!(
        (w["state"].as_str(), w["incident_id"].as_i64()),
        (Some("ok"), Some(id))
    );
    assert_eq!(
        app.incident(id).await["status"],
        "detected",
        "a person closes it"
    );
    let seen = time(&w["last_seen_at"]);
    assert_eq!(
        pending_checks(&app, "alertmanager_watchdog").await,
        1,
        "armed again"
    );

    // Silent again while that incident is open: the same incident, another heartbeat.late.
    settle(&app, seen + Duration::minutes(3)).await;
    assert_eq!(heartbeat_incidents(&app).await.len(), 1);
    let late = app.events(id, "heartbeat.late").await;
    assert_eq!(late.len(), 2);
    assert_eq!(late[1]["data"]["last_via"], "alert:alertmanager");
    assert_eq!(time(&late[1]["data"]["silent_since"]), seen);
    assert_eq!(late[1]["data"]["incident_opened"], false);
    // Once that incident is closed, the next lateness opens a new one.
    for to in ["triaged", "contained", "eradicated", "recovered"] {
        let (s, v) = app.transition(id, to, Some("Alertmanager restarted")).await;
        assert_eq!(s, StatusCode::OK, "{to}: {v}");
    }
    // The default playbook's tasks are open: the close is forced, with a reason.
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/transitions"),
            RESPONDER,
            &json!({"to": "closed", "note": "Alertmanager restarted", "force": true, "reason": "a restart, nothing to do"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "closed: {v}");
    app.alertmanager(&watchdog("firing")).await;
    let seen = time(&heartbeat(&app, "alertmanager_watchdog").await["last_seen_at"]);
    settle(&app, seen + Duration::minutes(3)).await;
    let incidents = heartbeat_incidents(&app).await;
    assert_eq!(incidents.len(), 2);
    assert_ne!(incidents[1]["id"].as_i64(), Some(id));
    assert!(
        incidents[1]["title"]
            .as_str()
            .unwrap()
            .contains("silent since"),
        "{}",
        incidents[1]["title"]
    );
    let r = app.verify().await;
    assert!(r.broken_at.is_none(), "{r:?}");
    app.stop().await;
}

async fn alertmanager_resends_keep_the_watchdog_fresh(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let v = app.alertmanager(&watchdog("firing")).await;
    assert_eq!(v["alerts"][0]["disposition"], "recorded");
    let first = time(&heartbeat(&app, "alertmanager_watchdog").await["last_seen_at"]);
    // Alertmanager's repeat: the same group, the same startsAt — a duplicate to the dedup,
    // a signal to the heartbeat.
    let v = app.alertmanager(&watchdog("firing")).await;
    assert_eq!(v["alerts"][0]["disposition"], "duplicate");
    let w = heartbeat(&app, "alertmanager_watchdog").await;
    let second = time(&w["last_seen_at"]);
    assert!(second > first, "the re-send counted: {first} → {second}");
    // When the first signal would have made it late, the re-send keeps it fresh …
    settle(&app, first + Duration::minutes(3)).await;
    assert!(heartbeat_incidents(&app).await.is_empty());
    assert_eq!(
        heartbeat(&app, "alertmanager_watchdog").await["state"],
        "ok"
    );
    // … and a resolved Watchdog is no signal.
    app.alertmanager(&watchdog("resolved")).await;
    assert_eq!(
        time(&heartbeat(&app, "alertmanager_watchdog").await["last_seen_at"]),
        second
    );
    settle(&app, second + Duration::minutes(3)).await;
    assert_eq!(heartbeat_incidents(&app).await.len(), 1);
    app.stop().await;
}

async fn checks_survive_a_restart_and_a_silent_source_is_noticed(backend: Backend) {
    let Some(mut app) = spawn(backend).await else {
        return;
    };
    let (s, _) = app
        .post("/api/v1/heartbeats/nightly_backup", INGEST, &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.restart().await;
    // Persisted: the checks armed before the restart are still pending (with the ones the new
    // start armed beside them).
    assert!(pending_checks(&app, "alertmanager_watchdog").await >= 1);
    assert!(pending_checks(&app, "nightly_backup").await >= 1);
    // Never heard from since watching began: noticed all the same.
    let now = Utc::now();
    settle(&app, now + Duration::minutes(10)).await;
    let incidents = heartbeat_incidents(&app).await;
    assert_eq!(incidents.len(), 1);
    assert!(
        incidents[0]["title"]
            .as_str()
            .unwrap()
            .contains("alertmanager_watchdog never heard from")
    );
    // The backup pinged before the restart; watching restarted with the daemon, so it is due
    // interval + grace after the restart, and late after that.
    settle(&app, now + Duration::minutes(69)).await;
    assert_eq!(heartbeat_incidents(&app).await.len(), 1);
    settle(&app, now + Duration::minutes(71)).await;
    let incidents = heartbeat_incidents(&app).await;
    assert_eq!(incidents.len(), 2);
    let backup = app.incident(incidents[1]["id"].as_i64().unwrap()).await;
    assert_eq!(backup["severity"], "S3");
    assert!(
        backup["title"]
            .as_str()
            .unwrap()
            .contains("nightly_backup silent since")
    );
    assert!(
        backup["summary"]
            .as_str()
            .unwrap()
            .contains("via ping:token:ingest")
    );
    app.stop().await;
}

async fn heartbeats_added_on_reload_are_watched(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let text = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &app.config_path,
        format!(
            "{text}\n[[heartbeats]]\nname = \"siem-forwarder\"\ninterval = \"5m\"\ngrace = \"5m\"\n"
        ),
    )
    .unwrap();
    app.reload().await.unwrap();
    assert_eq!(heartbeat(&app, "siem-forwarder").await["state"], "never");
    assert_eq!(pending_checks(&app, "siem-forwarder").await, 1);
    let (s, _) = app
        .post("/api/v1/heartbeats/siem-forwarder", INGEST, &json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // A broken heartbeat keeps the running configuration.
    std::fs::write(
        &app.config_path,
        format!("{text}\n[[heartbeats]]\nname = \"x\"\ninterval = \"0s\"\ngrace = \"1m\"\n"),
    )
    .unwrap();
    let e = app.reload().await.unwrap_err().to_string();
    assert!(e.contains("heartbeats[2].interval: 0s is too short"), "{e}");
    assert_eq!(heartbeat(&app, "siem-forwarder").await["state"], "ok");
    app.stop().await;
}

async fn pings_name_a_configured_heartbeat_and_the_cli_shows_them(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let (s, e) = app
        .post("/api/v1/heartbeats/nightly-backup", INGEST, &json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert_eq!(
        e["detail"],
        "no heartbeat `nightly-backup` is configured; the configured ones are: alertmanager_watchdog, nightly_backup"
    );
    let (s, _) = app
        .post("/api/v1/heartbeats/nightly_backup", RESPONDER, &json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "pinging takes the ingest role");
    let app = std::sync::Arc::new(app);
    let cli = |args: &'static [&'static str], token: &'static str| {
        let app = app.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let o = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
                    .args(args)
                    .env("INCIDENTD_URL", app.url(""))
                    .env("INCIDENTD_TOKEN", token)
                    .output()
                    .unwrap();
                (
                    o.status.success(),
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    ),
                )
            })
            .await
            .unwrap()
        }
    };
    let (ok, out) = cli(&["heartbeat", "ping", "nightly_backup"], INGEST).await;
    assert!(
        ok && out.contains("heartbeat nightly_backup is ok"),
        "{out}"
    );
    let (ok, out) = cli(&["heartbeat", "ping", "nope"], INGEST).await;
    assert!(
        !ok && out.contains("404") && out.contains("alertmanager_watchdog, nightly_backup"),
        "{out}"
    );
    let (ok, out) = cli(&["heartbeats"], RESPONDER).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("alertmanager_watchdog") && out.contains("never"),
        "{out}"
    );
    assert!(
        out.contains("nightly_backup") && out.contains("ping:token:ingest"),
        "{out}"
    );
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

async fn without_heartbeats_a_ping_is_404_saying_none_are_configured(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (s, e) = app
        .post("/api/v1/heartbeats/watchdog", INGEST, &json!({}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("none are ([[heartbeats]] in incidentd.toml)"),
        "{e}"
    );
    let (_, v) = app.get("/api/v1/heartbeats").await;
    assert_eq!(v["items"], json!([]));
    app.stop().await;
}
