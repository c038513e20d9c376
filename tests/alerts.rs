//! Alert ingestion through the running daemon: Alertmanager's real payloads, the generic
//! format, dedup, grouping and classification — on SQLite and PostgreSQL.

use crate::common;

use common::TestApp;
use serde_json::{Value, json};

const SINGLE: &str = include_str!("fixtures/alertmanager-0.25-webhook-single.json");
const GROUPED: &str = include_str!("fixtures/alertmanager-0.25-webhook-grouped.json");

/// The captured payloads with their alerts renamed so that the shipped rules classify them.
fn pi_payload(base: &str) -> String {
    base.replace(
        "\"summary\": \"bench alert",
        "\"summary\": \"用户数据外泄 bench alert",
    )
}

both_backends!(
    alertmanager_single_opens_a_pi_incident,
    alertmanager_group_is_one_incident,
    alertmanager_ha_peers_and_resends_are_recorded_once,
    alertmanager_resolved_is_on_the_timeline_but_does_not_close,
    alertmanager_truncated_group_is_recorded,
    alertmanager_unknown_fields_are_accepted,
    unmatched_alerts_are_kept_and_listable,
    generic_alerts_one_or_many,
    same_fingerprint_joins_open_incident_not_closed_one,
    group_by_labels_groups_alerts,
    chinese_and_english_classification,
    pi_stays_s1_and_severity_only_rises_automatically,
    facts_in_alerts_make_an_incident_pi,
);

async fn alertmanager_single_opens_a_pi_incident(app: TestApp) {
    let v = app.alertmanager(&pi_payload(SINGLE)).await;
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["incidents_opened"], 1);
    let o = &v["alerts"][0];
    assert_eq!(o["disposition"], "opened");
    let inc = app.incident(o["incident_id"].as_i64().unwrap()).await;
    assert_eq!(inc["category"], "pi_leak");
    assert_eq!(inc["severity"], "S1");
    assert_eq!(inc["status"], "detected");
    assert_eq!(inc["origin"], "alert");
    assert_eq!(inc["rule"], "pi-leak-text");
    assert_eq!(inc["first_seen_at"], "2026-11-25T07:48:17Z");
    assert_eq!(inc["discovered_at"], "2026-11-25T07:48:17Z");
    assert!(
        inc["aware_at"].is_string(),
        "a PI incident starts the awareness clock"
    );
    assert_eq!(inc["created_by"], "token:ingest");
    let a = &inc["alerts"][0];
    assert_eq!(a["source"], "alertmanager");
    assert_eq!(a["fingerprint"], "5149311743671fb0");
    assert_eq!(a["labels"]["instance"], "inst-2");
    assert_eq!(a["origin"]["receiver"], "sink");
    assert_eq!(a["origin"]["external_url"], "http://vm:9093");
    assert!(a["ends_at"].is_null(), "0001-01-01 means still firing");
    assert_eq!(inc["timeline"][0]["kind"], "incident.opened");
    app.stop().await;
}

async fn alertmanager_group_is_one_incident(app: TestApp) {
    let v = app.alertmanager(&pi_payload(GROUPED)).await;
    assert_eq!(v["accepted"], 10);
    // One notification of one Alertmanager group: one problem, one incident.
    assert_eq!(v["incidents_opened"], 1);
    let ids: std::collections::HashSet<i64> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["incident_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    let id = *ids.iter().next().unwrap();
    let dispositions: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["disposition"].as_str().unwrap())
        .collect();
    assert_eq!(dispositions[0], "opened");
    assert!(
        dispositions[1..].iter().all(|d| *d == "joined"),
        "{dispositions:?}"
    );
    let inc = app.incident(id).await;
    assert_eq!(
        (
            inc["alert_count"].as_i64(),
            inc["alerts_firing"].as_i64(),
            inc["alerts_resolved"].as_i64()
        ),
        (Some(10), Some(10), Some(0))
    );
    // The same group again, later (a repeat notification with new starts): it joins.
    let again = pi_payload(GROUPED).replace("2026-11-25T07:57:56Z", "2026-11-25T08:57:56Z");
    let v = app.alertmanager(&again).await;
    assert_eq!(v["incidents_opened"], 0);
    for o in v["alerts"].as_array().unwrap() {
        assert_eq!(o["disposition"], "joined");
        assert_eq!(o["incident_id"], id);
    }
    let inc = app.incident(id).await;
    assert_eq!(inc["alert_count"], 20, "every notification is kept");
    assert_eq!(inc["alerts_firing"], 10, "but they are still ten alerts");
    // Another group of the same alerts' kind is another problem.
    let other = pi_payload(GROUPED).replace("instance=\\\"inst-9\\\"", "instance=\\\"inst-10\\\"");
    assert_ne!(other, pi_payload(GROUPED));
    let v = app.alertmanager(&other).await;
    // Same fingerprints as the first group's alerts: those alerts are held by incident `id`.
    assert_eq!(v["incidents_opened"], 0);
    let fresh = other
        .replace("\"fingerprint\": \"", "\"fingerprint\": \"x")
        .replace("2026-11-25T07:57:56Z", "2026-11-25T10:57:56Z");
    let v = app.alertmanager(&fresh).await;
    assert_eq!(v["incidents_opened"], 1, "{v}");
    assert_ne!(v["alerts"][0]["incident_id"], id);
    app.stop().await;
}

async fn alertmanager_ha_peers_and_resends_are_recorded_once(app: TestApp) {
    let body = pi_payload(GROUPED);
    let first = app.alertmanager(&body).await;
    // A second Alertmanager peer sends the same group (fail-open HA), in parallel with a third.
    let (a, b) = tokio::join!(app.alertmanager(&body), app.alertmanager(&body));
    for v in [&a, &b] {
        assert_eq!(v["accepted"], 0);
        assert_eq!(v["duplicates"], 10);
        for (o, f) in v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .zip(first["alerts"].as_array().unwrap())
        {
            assert_eq!(o["disposition"], "duplicate");
            assert_eq!(o["alert_id"], f["alert_id"]);
            assert_eq!(o["incident_id"], f["incident_id"]);
        }
    }
    let (_, list) = app.get("/api/v1/alerts?limit=500").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 10);
    // Duplicates inside one request are recorded once too.
    let twice: Value = serde_json::from_str(&pi_payload(SINGLE)).unwrap();
    let mut twice = twice.clone();
    let alert = twice["alerts"][0].clone();
    twice["alerts"].as_array_mut().unwrap().push(alert);
    let v = app.alertmanager(&twice.to_string()).await;
    assert_eq!(
        (v["accepted"].as_i64(), v["duplicates"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["alerts"][0]["alert_id"], v["alerts"][1]["alert_id"]);
    app.stop().await;
}

async fn alertmanager_resolved_is_on_the_timeline_but_does_not_close(app: TestApp) {
    let v = app.alertmanager(&pi_payload(SINGLE)).await;
    let id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let resolved = pi_payload(SINGLE)
        .replace("\"status\": \"firing\"", "\"status\": \"resolved\"")
        .replace("0001-01-01T00:00:00Z", "2026-11-25T07:58:17.5Z");
    let v = app.alertmanager(&resolved).await;
    assert_eq!(v["alerts"][0]["disposition"], "joined");
    assert_eq!(v["alerts"][0]["incident_id"], id);
    let inc = app.incident(id).await;
    assert_eq!(
        inc["status"], "detected",
        "only a person closes an incident"
    );
    assert_eq!(inc["alert_count"], 2);
    let resolved_alert = inc["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["status"] == "resolved")
        .unwrap();
    assert_eq!(resolved_alert["ends_at"], "2026-11-25T07:58:17.500Z");
    let ev = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "alerts.received")
        .unwrap();
    assert_eq!(ev["data"]["alerts"][0]["status"], "resolved");
    assert_eq!(
        (
            inc["alerts_firing"].as_i64(),
            inc["alerts_resolved"].as_i64()
        ),
        (Some(0), Some(1)),
        "one alert, now resolved"
    );
    // A late copy of the firing notification does not make it fire again.
    let v = app
        .alertmanager(
            &pi_payload(SINGLE).replace("\"receiver\": \"sink\"", "\"receiver\": \"peer\""),
        )
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "duplicate");
    // It fires again (a new start): firing once more.
    let refire = pi_payload(SINGLE).replace("2026-11-25T07:48:17Z", "2026-11-25T09:00:00Z");
    app.alertmanager(&refire).await;
    let inc = app.incident(id).await;
    assert_eq!(
        (
            inc["alerts_firing"].as_i64(),
            inc["alerts_resolved"].as_i64()
        ),
        (Some(1), Some(0))
    );
    // A resolved alert for which no incident is open (another alert, another group) opens none.
    let lone = resolved
        .replace("5149311743671fb0", "aaaaaaaaaaaaaaaa")
        .replace("inst-2\\\"}", "inst-77\\\"}");
    let v = app.alertmanager(&lone).await;
    assert_eq!(v["alerts"][0]["disposition"], "recorded");
    app.stop().await;
}

async fn alertmanager_truncated_group_is_recorded(app: TestApp) {
    let body = pi_payload(GROUPED).replace("\"truncatedAlerts\": 0", "\"truncatedAlerts\": 42");
    let v = app.alertmanager(&body).await;
    let inc = app
        .incident(v["alerts"][0]["incident_id"].as_i64().unwrap())
        .await;
    assert_eq!(inc["truncated_alerts"], 42);
    assert_eq!(inc["alerts"][0]["origin"]["truncated_alerts"], 42);
    // And on the timeline when alerts join later.
    let later = body.replace("2026-11-25T07:57:56Z", "2026-11-25T09:00:00Z");
    app.alertmanager(&later).await;
    let inc = app.incident(inc["id"].as_i64().unwrap()).await;
    let ev = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "alerts.received")
        .unwrap();
    assert_eq!(ev["data"]["truncated_alerts"], 42);
    app.stop().await;
}

async fn alertmanager_unknown_fields_are_accepted(app: TestApp) {
    let body = SINGLE
        .replacen(
            "\"receiver\"",
            "\"notification_reason\": \"repeat_interval\", \"routeLabels\": {\"team\": \"sec\"}, \"receiver\"",
            1,
        )
        .replacen(
            "\"fingerprint\"",
            "\"valueString\": \"[ var='A' value=3 ]\", \"silenceURL\": \"http://g/silence\", \"dashboardURL\": \"\", \"values\": {\"A\": 3}, \"fingerprint\"",
            1,
        );
    let v = app.alertmanager(&body).await;
    assert_eq!(v["accepted"], 1);
    // Grafana's variant: version "1" and orgId.
    let grafana = SINGLE.replace("\"version\": \"4\"", "\"version\": \"1\", \"orgId\": 1, \"title\": \"[FIRING:1]\", \"state\": \"alerting\", \"message\": \"m\"");
    let v = app.alertmanager(&grafana).await;
    assert_eq!(
        v["accepted"], 1,
        "a different source means a different dedup key"
    );
    let (_, list) = app.get("/api/v1/alerts?limit=5").await;
    assert_eq!(list["items"][0]["source"], "grafana");
    app.stop().await;
}

async fn unmatched_alerts_are_kept_and_listable(app: TestApp) {
    // The captured payloads are synthetic load: no rule matches them.
    let v = app.alertmanager(GROUPED).await;
    assert_eq!(v["accepted"], 10);
    assert_eq!(v["incidents_opened"], 0);
    assert!(
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["disposition"] == "recorded" && o["incident_id"].is_null())
    );
    let (_, list) = app.get("/api/v1/alerts?unmatched=true&limit=3").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    assert!(list["next_cursor"].is_string());
    let (_, page2) = app
        .get(&format!(
            "/api/v1/alerts?unmatched=true&limit=20&cursor={}",
            list["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 7);
    let (_, incidents) = app.get("/api/v1/incidents").await;
    assert_eq!(incidents["items"].as_array().unwrap().len(), 0);
    // The watchdog is noise: recorded, no incident, even though it fires forever.
    let v = app.alerts(&json!({"source": "alertmanager-x", "title": "Watchdog", "labels": {"alertname": "Watchdog"}})).await;
    assert_eq!(v["alerts"][0]["disposition"], "recorded");
    app.stop().await;
}

async fn generic_alerts_one_or_many(app: TestApp) {
    let v = app
        .alerts(&json!({
            "source": "waf", "title": "SQL injection attempts against /login",
            "description": "5000 requests", "labels": {"host": "web01"},
            "occurred_at": "2026-11-25T06:00:00Z"
        }))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "opened");
    let inc = app
        .incident(v["alerts"][0]["incident_id"].as_i64().unwrap())
        .await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("network_attack"), Some("S3"))
    );
    assert_eq!(inc["summary"], "5000 requests");
    let v = app
        .alerts(&json!([
            {"source": "edr", "title": "Ransomware detected on fs01", "labels": {"host": "fs01"}},
            {"source": "edr", "title": "Trojan found on laptop-7"},
            {"source": "edr", "title": "Disk 91% full"}
        ]))
        .await;
    let d: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["disposition"].as_str().unwrap())
        .collect();
    assert_eq!(d, ["opened", "opened", "recorded"]);
    let ransom = app
        .incident(v["alerts"][0]["incident_id"].as_i64().unwrap())
        .await;
    assert_eq!(
        (ransom["category"].as_str(), ransom["severity"].as_str()),
        (Some("malware"), Some("S2"))
    );
    app.stop().await;
}

async fn same_fingerprint_joins_open_incident_not_closed_one(app: TestApp) {
    let alert = |at: &str| json!({"source": "siem", "title": "Intrusion on db01", "fingerprint": "db01-intrusion", "occurred_at": at});
    let v = app.alerts(&alert("2026-11-25T06:00:00Z")).await;
    let id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let v = app.alerts(&alert("2026-11-25T06:05:00Z")).await;
    assert_eq!(v["alerts"][0]["disposition"], "joined");
    assert_eq!(v["alerts"][0]["incident_id"], id);
    // Re-sent: idempotent.
    let v = app.alerts(&alert("2026-11-25T06:05:00Z")).await;
    assert_eq!(v["alerts"][0]["disposition"], "duplicate");
    assert_eq!(app.incident(id).await["alert_count"], 2);
    // Once closed, the same fingerprint opens a new incident.
    app.transition(id, "false_positive", Some("pentest")).await;
    let v = app.alerts(&alert("2026-11-25T07:00:00Z")).await;
    assert_eq!(v["alerts"][0]["disposition"], "opened");
    let new_id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    assert_ne!(new_id, id);
    // Reopening the old one: the newest open incident with the key collects further alerts.
    app.transition(id, "reopened", Some("it was not the pentest"))
        .await;
    let v = app.alerts(&alert("2026-11-25T07:30:00Z")).await;
    assert_eq!(v["alerts"][0]["incident_id"], new_id);
    app.stop().await;
}

async fn group_by_labels_groups_alerts(app: TestApp) {
    // Reload with a rule that groups intrusion alerts by cluster.
    let rules = std::fs::read_to_string(app.dir.path().join("classification.toml")).unwrap();
    let rules = rules.replace(
        "name = \"intrusion\"\ncategory = \"intrusion\"",
        "name = \"intrusion\"\ncategory = \"intrusion\"\ngroup_by = [\"cluster\"]",
    );
    std::fs::write(app.dir.path().join("classification.toml"), rules).unwrap();
    app.reload().await.unwrap();
    let v = app
        .alerts(&json!([
            {"source": "hids", "title": "Intrusion on node-1", "labels": {"cluster": "pay", "node": "1"}},
            {"source": "hids", "title": "Intrusion on node-2", "labels": {"cluster": "pay", "node": "2"}},
            {"source": "hids", "title": "Intrusion on node-9", "labels": {"cluster": "web", "node": "9"}},
            {"source": "hids", "title": "Intrusion on node-3"}
        ]))
        .await;
    let inc: Vec<i64> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["incident_id"].as_i64().unwrap())
        .collect();
    assert_eq!(inc[0], inc[1], "same cluster, one incident");
    assert_ne!(inc[0], inc[2]);
    assert_ne!(inc[0], inc[3], "without the label: by fingerprint");
    assert_eq!(v["incidents_opened"], 3);
    let first = app.incident(inc[0]).await;
    assert_eq!(first["alert_count"], 2);
    app.stop().await;
}

async fn chinese_and_english_classification(app: TestApp) {
    let cases = [
        ("用户数据库疑似被拖库", "pi_leak", "S1"),
        ("订单数据外泄", "pi_leak", "S1"),
        ("检测到撞库攻击", "pi_leak", "S1"),
        ("客户个人信息泄漏", "pi_leak", "S1"),
        (
            "Possible data leak from object storage bucket",
            "pi_leak",
            "S1",
        ),
        (
            "Large outbound transfer: exfiltration suspected",
            "pi_leak",
            "S1",
        ),
        ("PII found in public logs", "pi_leak", "S1"),
        ("用户数据被篡改", "pi_damage", "S1"),
        ("用户信息丢失", "pi_loss", "S1"),
        ("文件服务器感染勒索病毒", "malware", "S2"),
        ("Webshell 入侵 web01", "intrusion", "S2"),
        ("Apache Struts 漏洞 CVE-2017-5638", "vulnerability", "S3"),
        ("DDoS against api gateway", "network_attack", "S3"),
    ];
    for (i, (title, category, severity)) in cases.iter().enumerate() {
        let v = app
            .alerts(&json!({"source": "test", "title": title, "fingerprint": format!("case-{i}")}))
            .await;
        let id = v["alerts"][0]["incident_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{title} opened nothing"));
        let inc = app.incident(id).await;
        assert_eq!(
            (inc["category"].as_str(), inc["severity"].as_str()),
            (Some(*category), Some(*severity)),
            "{title}"
        );
    }
    app.stop().await;
}

async fn pi_stays_s1_and_severity_only_rises_automatically(app: TestApp) {
    let fp = |t: &str, sev: &str| json!({"source": "siem", "title": t, "fingerprint": "host-7", "labels": {"severity": sev}});
    // Starts as a low vulnerability.
    let v = app.alerts(&fp("CVE-2026-0001 on host-7", "info")).await;
    let id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    assert_eq!(app.incident(id).await["severity"], "S4");
    // A critical alert for the same host raises it.
    app.alerts(&fp("CVE-2026-0001 exploited on host-7", "critical"))
        .await;
    let inc = app.incident(id).await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("vulnerability"), Some("S2"))
    );
    // A lower one does not lower it.
    app.alerts(&fp("CVE-2026-0001 scan on host-7", "info"))
        .await;
    assert_eq!(app.incident(id).await["severity"], "S2");
    // Data leaves: PI, S1.
    app.alerts(&fp("host-7 数据外泄", "warning")).await;
    let inc = app.incident(id).await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    assert!(inc["aware_at"].is_string());
    // Nothing automatic brings it down again.
    app.alerts(&fp("CVE-2026-0001 patched on host-7", "info"))
        .await;
    let inc = app.incident(id).await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    let kinds: Vec<&str> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "incident.reclassified")
            .count(),
        2,
        "{kinds:?}"
    );
    app.stop().await;
}

async fn facts_in_alerts_make_an_incident_pi(app: TestApp) {
    let v = app
        .alerts(&json!({
            "source": "dlp", "title": "Intrusion on crm01", "fingerprint": "crm01",
            "facts": {"affected_subjects": 1200, "data_types": ["phone", "id_number"], "jurisdictions": ["CN"]}
        }))
        .await;
    let inc = app
        .incident(v["alerts"][0]["incident_id"].as_i64().unwrap())
        .await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    assert_eq!(inc["facts"]["affected_subjects"], 1200);
    // Facts from labels, merged: the count only grows, lists are unions.
    app.alerts(&json!({
        "source": "dlp", "title": "Intrusion on crm01", "fingerprint": "crm01", "occurred_at": "2026-11-25T09:00:00Z",
        "labels": {"affected_subjects": "900", "data_types": "email"}
    }))
    .await;
    let inc = app.incident(inc["id"].as_i64().unwrap()).await;
    assert_eq!(inc["facts"]["affected_subjects"], 1200);
    assert_eq!(
        inc["facts"]["data_types"],
        json!(["phone", "id_number", "email"])
    );
    assert_eq!(inc["facts_version"], 2);
    app.stop().await;
}
