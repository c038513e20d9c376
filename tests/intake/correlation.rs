//! One incident per alert group; what no rule matches; storms folded; move, promote, merge.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::sink::Sink;
use crate::common::{self, Backend, INGEST, RESPONDER, TestApp};

const GROUPED: &str = include_str!("../fixtures/alertmanager-0.25-webhook-grouped.json");
const SINGLE: &str = include_str!("../fixtures/alertmanager-0.25-webhook-single.json");

on_both_backends!(
    an_alertmanager_group_is_one_incident_paged_once,
    an_unmatched_critical_alert_is_triaged_by_security,
    a_storm_folds_into_one_incident,
    generic_alerts_join_by_group_key,
    people_move_promote_and_merge,
);

/// A test config with the six departments (one level-1 member each, paged by SMS at the sink).
fn team_config(sink: &Sink) -> String {
    [
        common::paths(&[]),
        "\n[dispatch]\npoll_interval = \"200ms\"\n".to_string(),
        common::phone_gateways(sink, &["sms"]),
        common::page_every_severity_by(r#"["sms"]"#),
        common::departments("1h", |n, d| vec![common::Member::on_call(n, d)]),
    ]
    .concat()
}

async fn team_app(backend: Backend) -> Option<(TestApp, Sink)> {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(backend, &team_config(&sink)).await?;
    Some((app, sink))
}

/// The page deliveries of an incident, once its playbook ran: (recipient, key) each.
async fn pages(app: &TestApp, incident: i64, want: usize) -> Vec<Value> {
    let v = app
        .wait_deliveries(incident, 20, |v| {
            v["items"]
                .as_array()
                .is_some_and(|d| d.iter().filter(|x| x["purpose"] == "page").count() >= want)
        })
        .await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["purpose"] == "page")
        .cloned()
        .collect()
}

async fn incident_ids(app: &TestApp) -> Vec<i64> {
    let (_, v) = app.get("/api/v1/incidents?limit=500").await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

/// The captured grouped notification, its alerts marked as security alerts.
fn security_group() -> String {
    GROUPED.replace(
        "\"job\": \"bench\"",
        "\"job\": \"bench\", \"category\": \"security\"",
    )
}

async fn an_alertmanager_group_is_one_incident_paged_once(backend: Backend) {
    let Some((app, _sink)) = team_app(backend).await else {
        return;
    };
    let v = app.alertmanager(&security_group()).await;
    assert_eq!(
        (v["accepted"].as_i64(), v["incidents_opened"].as_i64()),
        (Some(10), Some(1))
    );
    let id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let inc = app.incident(id).await;
    assert_eq!(inc["rule"], "security-label");
    assert_eq!(inc["alert_count"], 10);
    assert_eq!(inc["alerts_firing"], 10);
    // The default playbook's team (security, government relations, legal), each paged once —
    // not once per alert of the group.
    let p = pages(&app, id, 3).await;
    assert_eq!(p.len(), 3, "{p:#?}");
    // Alertmanager repeats the group (repeat_interval): still one incident, nobody paged again.
    let v = app.alertmanager(&security_group()).await;
    assert_eq!(v["duplicates"], 10);
    let later = security_group().replace("2026-11-25T07:57:56Z", "2026-11-25T09:57:56Z");
    let v = app.alertmanager(&later).await;
    assert_eq!(v["incidents_opened"], 0);
    assert_eq!(incident_ids(&app).await, vec![id]);
    // Proving nobody is paged again: a window of a few dispatch polls (200 ms).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(pages(&app, id, 3).await.len(), 3);
    app.stop().await;
}

/// A generic alert as a monitoring script would send it.
fn generic(title: &str, fingerprint: &str, group: Option<&str>, severity: &str) -> Value {
    let mut a = json!({
        "source": "siem", "title": title, "fingerprint": fingerprint,
        "labels": { "severity": severity },
    });
    if let Some(g) = group {
        a["group_key"] = json!(g);
    }
    a
}

async fn metric(app: &TestApp, prefix: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn an_unmatched_critical_alert_is_triaged_by_security(backend: Backend) {
    let Some((app, _sink)) = team_app(backend).await else {
        return;
    };
    // No rule knows replication lag; its sender calls it critical.
    let body = SINGLE
        .replace("\"severity\": \"warning\"", "\"severity\": \"critical\"")
        .replace(
            "bench alert gi1s-single-c1-ninst10-d20-rep1-1-2",
            "Replication lag on db-7 exceeds 30 minutes",
        );
    let v = app.alertmanager(&body).await;
    assert_eq!(v["alerts"][0]["disposition"], "opened", "{v}");
    let id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let inc = app.incident(id).await;
    assert_eq!(
        (
            inc["category"].as_str(),
            inc["severity"].as_str(),
            inc["rule"].as_str()
        ),
        (Some("unclassified"), Some("S2"), Some("unmatched"))
    );
    // Security's on-call, and only Security, is paged to triage it.
    let p = pages(&app, id, 1).await;
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(
        p[0]["recipient"], "+86139****0101",
        "security's on-call: {p:#?}"
    );
    let (_, tasks) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    assert_eq!(tasks["tasks"][0]["key"], "triage", "{tasks}");
    // A warning no rule matches is recorded, not an incident — and counted.
    let (s, v) = app
        .post(
            "/api/v1/alerts",
            INGEST,
            &generic("Replication lag on db-8", "lag-8", None, "warning"),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(v["alerts"][0]["disposition"], "recorded");
    // Both are counted by source, the sender's severity and what became of them (the
    // recorder is the process's: other stories may have added to the same series).
    for series in [
        "incidentd_alerts_unmatched_total{source=\"siem\",severity=\"S3\",handled=\"recorded\"}",
        "incidentd_alerts_unmatched_total{source=\"alertmanager\",severity=\"S2\",handled=\"triage\"}",
    ] {
        assert!(metric(&app, series).await >= 1.0, "{series} on /metrics");
    }
    // The DLP alert of the issue: a personal-information leak, the whole joint team.
    let (_, v) = app
        .post(
            "/api/v1/alerts",
            INGEST,
            &json!({
                "source": "dlp",
                "title": "DLP: bulk export of table crm.customers (phone, id_card_no) to unknown host 203.0.113.77",
                "labels": { "severity": "critical", "policy": "PII-bulk-export" },
            }),
        )
        .await;
    let pi = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let inc = app.incident(pi).await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    assert_eq!(
        pages(&app, pi, 6).await.len(),
        6,
        "the PI plan pages all six departments"
    );
    // Once a rule recognises the triaged alert's group, the incident takes that category.
    let known = SINGLE
        .replace("\"severity\": \"warning\"", "\"severity\": \"critical\"")
        .replace(
            "bench alert gi1s-single-c1-ninst10-d20-rep1-1-2",
            "Ransomware note found on db-7",
        )
        .replace("5149311743671fb0", "5149311743671fb1");
    let v = app.alertmanager(&known).await;
    assert_eq!(
        v["alerts"][0]["incident_id"], id,
        "same group, same incident"
    );
    let inc = app.incident(id).await;
    assert_eq!(inc["category"], "malware");
    app.stop().await;
}

async fn generic_alerts_join_by_group_key(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let v = app
        .alerts(&json!([
            generic(
                "Port scan from 198.51.100.7 on web-1",
                "scan-web-1",
                Some("scan/198.51.100.7"),
                "warning"
            ),
            generic(
                "Port scan from 198.51.100.7 on web-2",
                "scan-web-2",
                Some("scan/198.51.100.7"),
                "warning"
            ),
            generic(
                "Port scan from 198.51.100.9 on web-1",
                "scan-web-1b",
                None,
                "warning"
            ),
        ]))
        .await;
    let ds: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["disposition"].as_str().unwrap())
        .collect();
    assert_eq!(ds, ["opened", "joined", "opened"]);
    assert_eq!(v["alerts"][0]["incident_id"], v["alerts"][1]["incident_id"]);
    assert_ne!(v["alerts"][0]["incident_id"], v["alerts"][2]["incident_id"]);
    // A bad group key is refused, naming it.
    let (s, v) = app
        .post(
            "/api/v1/alerts",
            INGEST,
            &json!({"source": "siem", "title": "x", "group_key": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["detail"].as_str().unwrap().contains("group_key"), "{v}");
    app.stop().await;
}

async fn a_storm_folds_into_one_incident(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        "[ingest]\nmax_alerts_per_request = 200\nstorm_incidents = 3\nstorm_window = \"10m\"\n",
    )
    .await
    else {
        return;
    };
    // Ten hosts infected at once, each its own group: three incidents, then one storm.
    let batch: Vec<Value> = (0..10)
        .map(|i| {
            generic(
                &format!("Trojan found on host-{i}"),
                &format!("trojan-{i}"),
                Some(&format!("host-{i}")),
                "critical",
            )
        })
        .collect();
    let v = app.alerts(&json!(batch)).await;
    let ds: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["disposition"].as_str().unwrap())
        .collect();
    assert_eq!(
        ds,
        [
            "opened", "opened", "opened", "opened", "folded", "folded", "folded", "folded",
            "folded", "folded"
        ]
    );
    let storm = v["alerts"][3]["incident_id"].as_i64().unwrap();
    assert!(
        v["alerts"].as_array().unwrap()[4..]
            .iter()
            .all(|a| a["incident_id"] == storm),
        "{v}"
    );
    assert_eq!(v["incidents_opened"], 4);
    let inc = app.incident(storm).await;
    assert_eq!(inc["storm"], true);
    assert_eq!(inc["intake"], "siem|malware");
    assert_eq!(inc["category"], "malware");
    assert!(
        inc["title"]
            .as_str()
            .unwrap()
            .contains("Alert storm: malware (siem)"),
        "{inc}"
    );
    assert_eq!(inc["alert_count"], 7);
    assert!(
        inc["summary"]
            .as_str()
            .unwrap()
            .contains("So far: 7 notifications, 7 alerts firing"),
        "{inc}"
    );
    let opened = app.events(storm, "incident.opened").await;
    assert_eq!(opened[0]["data"]["storm"]["max_incidents"], 3, "{opened:?}");
    // More hosts: they fold into the same storm, whose count runs on.
    let more: Vec<Value> = (10..15)
        .map(|i| {
            generic(
                &format!("Trojan found on host-{i}"),
                &format!("trojan-{i}"),
                Some(&format!("host-{i}")),
                "critical",
            )
        })
        .collect();
    let v = app.alerts(&json!(more)).await;
    assert!(
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["disposition"] == "folded" && a["incident_id"] == storm),
        "{v}"
    );
    let inc = app.incident(storm).await;
    assert_eq!(inc["alert_count"], 12);
    assert!(
        inc["summary"]
            .as_str()
            .unwrap()
            .contains("12 notifications")
    );
    // A group with its own incident keeps it; a folded group's next alert joins the storm;
    // another rule is another bucket.
    let v = app
        .alerts(&json!([
            generic(
                "Trojan found on host-0 again",
                "trojan-0b",
                Some("host-0"),
                "critical"
            ),
            generic(
                "Trojan found on host-9 again",
                "trojan-9b",
                Some("host-9"),
                "critical"
            ),
            generic(
                "Privilege escalation on host-3",
                "priv-3",
                Some("priv-host-3"),
                "critical"
            ),
        ]))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "joined");
    assert_ne!(v["alerts"][0]["incident_id"], storm);
    assert_eq!(
        (
            v["alerts"][1]["disposition"].as_str(),
            v["alerts"][1]["incident_id"].as_i64()
        ),
        (Some("joined"), Some(storm))
    );
    assert_eq!(v["alerts"][2]["disposition"], "opened");
    // Every alert is recorded and visible on the storm incident.
    let (_, list) = app
        .get(&format!("/api/v1/alerts?incident={storm}&limit=500"))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 13);
    assert_eq!(incident_ids(&app).await.len(), 5);
    app.stop().await;
}

/// The CLI, as a person would run it against this daemon.
fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args(args)
        .env("INCIDENTD_URL", format!("http://{}", app.addr))
        .env("INCIDENTD_TOKEN", RESPONDER)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    app.post(path, RESPONDER, &body).await
}

async fn people_move_promote_and_merge(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Incident A: two alerts of group "ga"; incident B: one of group "gb".
    let v = app
        .alerts(&json!([
            generic("Brute force on vpn-1", "bf-x", Some("ga"), "warning"),
            generic("Brute force on vpn-2", "bf-y", Some("ga"), "warning"),
            generic("Phishing mail campaign", "ph-1", Some("gb"), "warning"),
        ]))
        .await;
    let a = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let b = v["alerts"][2]["incident_id"].as_i64().unwrap();
    let x = v["alerts"][0]["alert_id"].as_i64().unwrap();
    assert_ne!(a, b);

    // Move alert x from A to B.
    let (s, m) = post(
        &app,
        &format!("/api/v1/alerts/{x}/move"),
        json!({"incident": b, "reason": "same campaign"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!((m["from"].as_i64(), m["to"].as_i64()), (Some(a), Some(b)));
    let (ia, ib) = (app.incident(a).await, app.incident(b).await);
    assert_eq!(
        (ia["alert_count"].as_i64(), ia["alerts_firing"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (ib["alert_count"].as_i64(), ib["alerts_firing"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(app.events(a, "alert.moved").await.len(), 1);
    assert_eq!(
        app.events(b, "alert.moved").await[0]["data"]["reason"],
        "same campaign"
    );
    // Its later notification (resolved, still in group "ga") follows it to B.
    let mut resolved = generic("Brute force on vpn-1", "bf-x", Some("ga"), "warning");
    resolved["status"] = json!("resolved");
    let v = app.alerts(&resolved).await;
    assert_eq!(v["alerts"][0]["incident_id"], b);
    let ib = app.incident(b).await;
    assert_eq!(
        (ib["alerts_firing"].as_i64(), ib["alerts_resolved"].as_i64()),
        (Some(1), Some(1))
    );
    // Bad moves are refused, naming the problem.
    for (path, body, status, says) in [
        (
            format!("/api/v1/alerts/{x}/move"),
            json!({"incident": 999, "reason": "r"}),
            StatusCode::NOT_FOUND,
            "no incident 999",
        ),
        (
            format!("/api/v1/alerts/{x}/move"),
            json!({"incident": b, "reason": "r"}),
            StatusCode::CONFLICT,
            "already",
        ),
        (
            format!("/api/v1/alerts/{x}/move"),
            json!({"incident": a, "reason": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
        ),
        (
            format!("/api/v1/alerts/{x}/move"),
            json!({"incident": a, "reason": "r", "why": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `why`",
        ),
        (
            "/api/v1/alerts/424242/move".to_string(),
            json!({"incident": a, "reason": "r"}),
            StatusCode::NOT_FOUND,
            "no alert 424242",
        ),
        (
            "/api/v1/alerts/abc/move".to_string(),
            json!({"incident": a, "reason": "r"}),
            StatusCode::NOT_FOUND,
            "alert ids are numbers",
        ),
    ] {
        let (s, v) = post(&app, &path, body).await;
        assert_eq!(s, status, "{path}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(says),
            "{path}: {v}"
        );
    }

    // Promote a recorded alert (a warning no rule matched).
    let v = app
        .alerts(&generic(
            "Odd outbound traffic from build-3",
            "odd-1",
            Some("gr"),
            "warning",
        ))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "recorded");
    let r = v["alerts"][0]["alert_id"].as_i64().unwrap();
    let (ok, out) = cli(
        &app,
        &[
            "alerts",
            "promote",
            &r.to_string(),
            "--category",
            "intrusion",
            "--reason",
            "beaconing to a known C2",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains(&format!("alert {r} opened incident")), "{out}");
    let (_, list) = app.get("/api/v1/incidents?limit=10").await;
    let p = list["items"][0].clone();
    assert_eq!(
        (
            p["category"].as_str(),
            p["origin"].as_str(),
            p["alert_count"].as_i64()
        ),
        (Some("intrusion"), Some("promoted"), Some(1))
    );
    let pid = p["id"].as_i64().unwrap();
    let v = app
        .alerts(&generic(
            "Odd outbound traffic from build-4",
            "odd-2",
            Some("gr"),
            "warning",
        ))
        .await;
    assert_eq!(
        v["alerts"][0]["incident_id"], pid,
        "its group joins the promoted incident"
    );
    let (s, v) = post(
        &app,
        &format!("/api/v1/alerts/{r}/promote"),
        json!({"reason": "again"}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("in incident {pid} already")),
        "{v}"
    );

    // Merge B into A: A carries on with both.
    let (ok, out) = cli(
        &app,
        &[
            "merge",
            &b.to_string(),
            "--into",
            &a.to_string(),
            "--reason",
            "one attacker",
        ],
    );
    assert!(ok, "{out}");
    let (ia, ib) = (app.incident(a).await, app.incident(b).await);
    assert_eq!(
        (ib["status"].as_str(), ib["merged_into"].as_i64()),
        (Some("merged"), Some(a))
    );
    assert_eq!(
        ia["alert_count"],
        1 + 3,
        "A's own alert and B's three notifications"
    );
    assert_eq!(
        (ia["alerts_firing"].as_i64(), ia["alerts_resolved"].as_i64()),
        (Some(2), Some(1))
    );
    let kinds: Vec<String> = app
        .events(a, "incident.opened")
        .await
        .iter()
        .map(|e| e["incident_id"].to_string())
        .collect();
    assert_eq!(
        kinds.len(),
        2,
        "A's timeline shows B's opening too: {kinds:?}"
    );
    assert_eq!(
        app.events(a, "incident.merged_in").await[0]["data"]["from"],
        b
    );
    // B's group now leads to A.
    let v = app
        .alerts(&generic(
            "Phishing mail campaign, wave 2",
            "ph-2",
            Some("gb"),
            "warning",
        ))
        .await;
    assert_eq!(v["alerts"][0]["incident_id"], a);
    // And B is done: no transitions, no further merges.
    let (s, v) = app.transition(b, "triaged", None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("merged into incident {a}")),
        "{v}"
    );
    for (id, body, status, says) in [
        (
            a,
            json!({"into": a, "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot be merged into itself",
        ),
        (
            b,
            json!({"into": a, "reason": "r"}),
            StatusCode::CONFLICT,
            "already",
        ),
        (
            a,
            json!({"into": b, "reason": "r"}),
            StatusCode::CONFLICT,
            &format!("merge into {a}"),
        ),
        (
            a,
            json!({"into": 999, "reason": "r"}),
            StatusCode::NOT_FOUND,
            "no incident 999",
        ),
        (
            a,
            json!({"into": pid}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `reason`",
        ),
    ] {
        let (s, v) = post(&app, &format!("/api/v1/incidents/{id}/merge"), body.clone()).await;
        assert_eq!(s, status, "{id} {body}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(says),
            "{id} {body}: {v}"
        );
    }
    // The CLI moves too.
    let y = app
        .get(&format!("/api/v1/alerts?incident={a}&limit=50"))
        .await
        .1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|al| al["fingerprint"] == "bf-y")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (ok, out) = cli(
        &app,
        &[
            "alerts",
            "move",
            &y.to_string(),
            "--to",
            &pid.to_string(),
            "--reason",
            "build network",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("moved from incident {a} to incident {pid}")),
        "{out}"
    );
    // Every move above is on the audit trail: it verifies. A move behind the daemon's back
    // does not.
    let report = app.verify().await;
    assert!(report.problem.is_none(), "{report:?}");
    app.sql(&[&format!(
        "UPDATE alerts SET incident_id = {a} WHERE id = {r}"
    )])
    .await;
    let report = app.verify().await;
    assert!(
        report.problem.as_deref().is_some_and(|p| p
            .contains(&format!("alert {r} was moved to another incident"))
            && p.contains("no event records the move")),
        "{report:?}"
    );
    app.stop().await;
}
