//! Through a real Prometheus Alertmanager: alerts are posted to Alertmanager's own API
//! (`/api/v2/alerts`), and Alertmanager — grouping by `alertname` and `service`, as the README's
//! example configuration does — notifies incidentd's webhook with the ingest token. What
//! incidentd makes of it is read back through incidentd's API.
//!
//! Without `prometheus-alertmanager` on PATH these print `SKIPPED: …` and pass, unless
//! `INCIDENTD_REQUIRE_ALERTMANAGER=1` (`.ci/run` installs the package and sets it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::common::alertmanager::{self, Alertmanager};
use crate::common::{INGEST, TestApp};

both_backends!(
    alertmanager_group_opens_one_incident,
    alertmanager_resolved_group_stays_on_its_incident,
);

const ALERTNAME: &str = "SshBruteForce";
const SERVICE: &str = "payments-db";

/// Ten alerts of one Alertmanager group (same `alertname` and `service`), told apart by
/// `instance`; firing, or resolved at `ends`.
fn group_alerts(starts: DateTime<Utc>, ends: Option<DateTime<Utc>>) -> Value {
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    Value::Array(
        (1..=10)
            .map(|i| {
                let mut a = json!({
                    "labels": {
                        "alertname": ALERTNAME,
                        "service": SERVICE,
                        "instance": format!("db-{i}.internal:22"),
                        "severity": "critical",
                        "category": "security",
                    },
                    "annotations": {
                        "summary": format!("Brute-force SSH logins on {SERVICE} host db-{i}"),
                    },
                    "startsAt": ts(starts),
                    "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=ssh_failed_logins",
                });
                if let Some(e) = ends {
                    a["endsAt"] = json!(ts(e));
                }
                a
            })
            .collect(),
    )
}

/// Every alert incidentd recorded (newest first), paging through the list.
async fn recorded(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let (s, v) = app.get(&format!("/api/v1/alerts?limit=500{before}")).await;
        assert!(s.is_success(), "{s}: {v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(b) => before = format!("&cursor={b}"),
            None => return out,
        }
    }
}

fn with_status<'a>(alerts: &'a [Value], status: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["status"] == status).collect()
}

/// Wait (bounded) until incidentd has recorded `n` alerts of `status`; on a timeout, say what
/// Alertmanager logged.
async fn wait_recorded(app: &TestApp, am: &Alertmanager, status: &str, n: usize) {
    let secs = 30;
    let until = Instant::now() + Duration::from_secs(secs);
    let what = format!("Alertmanager's notification of {n} {status} alerts reaching incidentd");
    crate::common::wait_for(&what, secs, async || {
        let got = with_status(&recorded(app).await, status).len();
        if got < n && Instant::now() + Duration::from_millis(150) >= until {
            eprintln!(
                "incidentd recorded {got} {status} alerts of {n}; Alertmanager's log:\n{}",
                am.log()
            );
        }
        got >= n
    })
    .await;
}

/// One line per incident: id, status, alert count, title.
fn incidents_summary(incidents: &[Value]) -> String {
    incidents
        .iter()
        .map(|i| {
            format!(
                "\n  incident {} [{}] alert_count {} — {}",
                i["id"], i["status"], i["alert_count"], i["title"]
            )
        })
        .collect()
}

async fn incidents(app: &TestApp) -> Vec<Value> {
    let (s, v) = app.get("/api/v1/incidents?limit=500").await;
    assert!(s.is_success(), "{s}: {v}");
    v["items"].as_array().unwrap().clone()
}

/// Ten alerts of one group, posted to Alertmanager at once, reach incidentd (as one
/// notification, or two on a busy machine) and must open ONE incident holding all ten: a person
/// gets one page per problem.
async fn alertmanager_group_opens_one_incident(app: TestApp) {
    let Some(am) = alertmanager::for_incidentd(
        "alertmanager_group_opens_one_incident",
        &app.url(""),
        INGEST,
    )
    .await
    else {
        app.stop().await;
        return;
    };
    am.post_alerts(&group_alerts(
        Utc::now() - chrono::Duration::minutes(1),
        None,
    ))
    .await;
    wait_recorded(&app, &am, "firing", 10).await;

    let alerts = recorded(&app).await;
    assert_eq!(alerts.len(), 10, "{alerts:#?}");
    let group_key = format!("{{}}:{{alertname=\"{ALERTNAME}\", service=\"{SERVICE}\"}}");
    for a in &alerts {
        assert_eq!(a["source"], "alertmanager");
        assert_eq!(a["origin"]["group_key"], group_key.as_str(), "{a:#}");
    }
    // Usually one notification; on a busy machine Alertmanager may split the group over two
    // (its group_wait passed while the alerts were still arriving). Either way: one problem.
    let notifications: BTreeSet<&str> = alerts
        .iter()
        .map(|a| a["received_at"].as_str().unwrap())
        .collect();

    let opened = incidents(&app).await;
    assert_eq!(
        opened.len(),
        1,
        "ten alerts of one Alertmanager group ({} notification(s), groupKey {group_key}) must open \
         ONE incident; incidentd opened {}:{}",
        notifications.len(),
        opened.len(),
        incidents_summary(&opened)
    );
    let id = opened[0]["id"].as_i64().unwrap();
    let inc = app.incident(id).await;
    assert_eq!(inc["alert_count"], 10, "{}", incidents_summary(&opened));
    let (_, listed) = app
        .get(&format!("/api/v1/alerts?incident={id}&limit=500"))
        .await;
    let instances: BTreeSet<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["instance"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<String> = (1..=10).map(|i| format!("db-{i}.internal:22")).collect();
    assert_eq!(
        instances,
        expected.iter().map(String::as_str).collect(),
        "the incident lists every alert of the group"
    );
    am.stop();
    app.stop().await;
}

/// Resolving the group in Alertmanager (the same alerts with `endsAt` in the past) reaches
/// incidentd as resolved alerts on the incident each firing alert went to; a resolved alert
/// never closes an incident.
async fn alertmanager_resolved_group_stays_on_its_incident(app: TestApp) {
    let Some(am) = alertmanager::for_incidentd(
        "alertmanager_resolved_group_stays_on_its_incident",
        &app.url(""),
        INGEST,
    )
    .await
    else {
        app.stop().await;
        return;
    };
    let starts = Utc::now() - chrono::Duration::minutes(1);
    am.post_alerts(&group_alerts(starts, None)).await;
    wait_recorded(&app, &am, "firing", 10).await;
    let firing: BTreeMap<String, i64> = recorded(&app)
        .await
        .iter()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap().to_string(),
                a["incident_id"]
                    .as_i64()
                    .expect("a firing alert is on an incident"),
            )
        })
        .collect();
    assert_eq!(firing.len(), 10);

    am.post_alerts(&group_alerts(
        starts,
        Some(Utc::now() - chrono::Duration::seconds(1)),
    ))
    .await;
    wait_recorded(&app, &am, "resolved", 10).await;

    let alerts = recorded(&app).await;
    let resolved = with_status(&alerts, "resolved");
    assert_eq!(resolved.len(), 10, "{alerts:#?}");
    for a in &resolved {
        let fp = a["fingerprint"].as_str().unwrap();
        assert_eq!(
            a["incident_id"].as_i64(),
            firing.get(fp).copied(),
            "the resolved alert {fp} joins the incident its firing alert is on: {a:#}"
        );
        assert!(!a["ends_at"].is_null(), "{a:#}");
    }
    let ids: BTreeSet<i64> = firing.values().copied().collect();
    for id in ids {
        let inc = app.incident(id).await;
        assert_eq!(
            inc["status"],
            "detected",
            "only a person closes an incident: {}",
            incidents_summary(std::slice::from_ref(&inc))
        );
        let statuses: Vec<&str> = inc["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].as_str().unwrap())
            .collect();
        assert!(
            statuses.contains(&"resolved") && statuses.contains(&"firing"),
            "incident {id} lists its firing and its resolved alerts: {statuses:?}"
        );
        // Each alert's own state: all of this incident's alerts resolved, none firing.
        assert_eq!(inc["alerts_firing"], 0, "{inc:#}");
        assert_eq!(
            inc["alerts_resolved"].as_i64(),
            Some(firing.values().filter(|i| **i == id).count() as i64),
            "{inc:#}"
        );
    }
    am.stop();
    app.stop().await;
}
