//! Silences (maintenance windows) through the running daemon: matching alerts are recorded,
//! marked silenced and page nobody; personal information is never silenced; expired silences
//! stop matching and are kept; every bad request names its field.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, Backend, INGEST, RESPONDER, TestApp, VIEWER};

crate::on_both_backends!(
    a_silence_silences_matching_alerts_and_pages_nobody,
    personal_information_is_never_silenced,
    expired_silences_stop_matching_and_are_kept,
    bad_silences_are_refused_naming_the_field,
    the_cli_adds_lists_and_expires_silences,
);

/// A configuration with the six departments of the shipped playbooks, each paged by e-mail
/// (to a port where nothing listens: pages stay queued, which is all these stories look at).
pub fn team_config(extra: &str) -> String {
    let mut c = format!(
        r#"
{}
[channels.email]
smtp_url = "smtp://127.0.0.1:9"
from = "Security <security@example.com>"
timeout = "2s"

[dispatch]
lease = "5s"
backoff_base = "1h"
backoff_max = "2h"

[paging.channels]
S1 = ["email"]
S2 = ["email"]
S3 = ["email"]
S4 = ["email"]
{extra}
"#,
        common::paths(&[]),
    );
    c.push_str(&common::departments("6h", |n, d| {
        vec![common::Member::on_call(n, d).no_phone().oncall_email(d)]
    }));
    c
}

/// Page deliveries in the whole database.
pub async fn pages(app: &TestApp) -> i64 {
    let rows = common::query_text(
        app.backend,
        &app.store_url,
        "SELECT CAST(COUNT(*) AS TEXT) FROM deliveries WHERE purpose = 'page'",
    )
    .await;
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

/// Page deliveries of one incident.
pub async fn pages_of(app: &TestApp, incident: i64) -> usize {
    let (s, v) = app
        .get(&format!(
            "/api/v1/incidents/{incident}/deliveries?limit=500"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["purpose"] == "page")
        .count()
}

/// Audit events of a kind that belong to no incident, as stored.
async fn global_events(app: &TestApp, kind: &str) -> Vec<Value> {
    common::query_text(
        app.backend,
        &app.store_url,
        &format!("SELECT data FROM events WHERE kind = '{kind}' ORDER BY id"),
    )
    .await
    .into_iter()
    .map(|r| serde_json::from_str(r[0].as_deref().unwrap()).unwrap())
    .collect()
}

/// A brute-force alert (the shipped rules open a network-attack incident for it).
fn brute_force(instance: &str, at: &str) -> Value {
    json!({
        "source": "siem",
        "title": format!("Brute-force login attempts on {instance}"),
        "labels": { "alertname": "BruteForce", "instance": instance },
        "occurred_at": at,
    })
}

async fn silence(app: &TestApp, body: Value) -> Value {
    let (s, v) = app.post("/api/v1/silences", RESPONDER, &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn a_silence_silences_matching_alerts_and_pages_nobody(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &team_config("")).await else {
        return;
    };
    let sil = silence(
        &app,
        json!({
            "matchers": ["alertname=BruteForce", "instance=~db-.*"],
            "duration": "2h",
            "reason": "CHG-1042: database failover rehearsal"
        }),
    )
    .await;
    let sid = sil["id"].as_i64().unwrap();
    assert_eq!(sil["state"], "active");
    assert_eq!(
        sil["matchers"],
        json!(["alertname=BruteForce", "instance=~db-.*"])
    );
    assert_eq!(sil["created_by"], "token:responder");
    let starts: chrono::DateTime<chrono::Utc> = sil["starts_at"].as_str().unwrap().parse().unwrap();
    let ends: chrono::DateTime<chrono::Utc> = sil["ends_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends - starts, chrono::Duration::hours(2));

    // Matching: recorded, silenced, no incident. A re-send is a duplicate of it.
    let quiet = brute_force("db-1", "2026-03-01T10:00:00Z");
    let v = app.alerts(&quiet).await;
    assert_eq!(v["alerts"][0]["disposition"], "silenced", "{v}");
    assert!(v["alerts"][0]["incident_id"].is_null());
    assert_eq!(
        (v["silenced"].as_i64(), v["incidents_opened"].as_i64()),
        (Some(1), Some(0))
    );
    let silenced_id = v["alerts"][0]["alert_id"].as_i64().unwrap();
    let v = app.alerts(&quiet).await;
    assert_eq!(v["alerts"][0]["disposition"], "duplicate");
    // Anchored: `web-db-1` is not `db-.*`. Not matching: it opens an incident, and pages.
    let v = app
        .alerts(&brute_force("web-db-1", "2026-03-01T10:00:01Z"))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "opened", "{v}");
    let incident = v["alerts"][0]["incident_id"].as_i64().unwrap();
    common::wait_for("the open incident's pages", 10, async || {
        pages_of(&app, incident).await > 0
    })
    .await;
    assert_eq!(
        pages(&app).await,
        pages_of(&app, incident).await as i64,
        "every page is the unsilenced incident's: the silenced alert paged nobody"
    );
    let (_, list) = app.get("/api/v1/incidents?limit=10").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Listed as silenced, with its silence; not among the unmatched.
    let (_, v) = app.get("/api/v1/alerts?silenced=true").await;
    let listed = v["items"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{v}");
    assert_eq!(listed[0]["id"], silenced_id);
    assert_eq!(listed[0]["silence_id"], sid);
    assert!(listed[0]["incident_id"].is_null());
    let (_, v) = app.get("/api/v1/alerts?unmatched=true").await;
    assert!(v["items"].as_array().unwrap().is_empty(), "{v}");
    let (_, v) = app.get(&format!("/api/v1/silences/{sid}")).await;
    assert_eq!(v["alerts_silenced"], 1);

    // Audited once per batch, counted on /metrics, and the chain holds.
    let ev = global_events(&app, "alerts.silenced").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["alerts"][0]["id"], silenced_id);
    assert_eq!(ev[0]["alerts"][0]["silence"], sid);
    let created = global_events(&app, "silence.created").await;
    assert_eq!(
        created[0]["reason"],
        "CHG-1042: database failover rehearsal"
    );
    let m = app.metrics().await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("incidentd_alerts_received_total")
                && l.contains("outcome=\"silenced\"")),
        "{m}"
    );
    let r = app.verify().await;
    assert!(r.broken_at.is_none(), "{r:?}");
    app.stop().await;
}

async fn personal_information_is_never_silenced(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &team_config("")).await else {
        return;
    };
    let sid = silence(
        &app,
        json!({"matchers": ["alertname=BruteForce"], "duration": "1h", "reason": "noisy SIEM rule"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    // The same alertname, but the text is a leak of personal data: handled as if no silence.
    let v = app
        .alerts(&json!({
            "source": "siem",
            "title": "用户数据外泄：database dump of crm.customers sent to 203.0.113.77",
            "labels": { "alertname": "BruteForce", "instance": "db-2" },
        }))
        .await;
    let o = &v["alerts"][0];
    assert_eq!(o["disposition"], "opened", "{v}");
    let incident = o["incident_id"].as_i64().unwrap();
    let inc = app.incident(incident).await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    let overridden = app.events(incident, "silence.overridden").await;
    assert_eq!(
        overridden.len(),
        1,
        "the timeline notes the silence it overrode"
    );
    assert_eq!(overridden[0]["data"]["silence"], sid);
    assert_eq!(overridden[0]["data"]["alert_id"], o["alert_id"]);
    common::wait_for("the PI incident's pages", 10, async || {
        pages_of(&app, incident).await > 0
    })
    .await;
    // Still silenced: the next ordinary alert that matches.
    let v = app
        .alerts(&brute_force("db-3", "2026-03-01T10:00:00Z"))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "silenced");
    let (_, s) = app.get(&format!("/api/v1/silences/{sid}")).await;
    assert_eq!(s["alerts_silenced"], 1);
    // A silence by a personal-information rule is refused outright.
    let (st, e) = app
        .post(
            "/api/v1/silences",
            RESPONDER,
            &json!({"rule": "pi-leak-text", "duration": "1h", "reason": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["path"], "rule");
    assert!(
        e["detail"].as_str().unwrap().contains("never silenced"),
        "{e}"
    );
    let r = app.verify().await;
    assert!(r.broken_at.is_none(), "{r:?}");
    app.stop().await;
}

async fn expired_silences_stop_matching_and_are_kept(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let active = silence(
        &app,
        json!({"matchers": ["alertname=BruteForce"], "source": "siem", "duration": "4h", "reason": "pentest window"}),
    )
    .await;
    let aid = active["id"].as_i64().unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let pending = silence(
        &app,
        json!({"rule": "network-attack", "starts_at": later, "duration": "1h", "reason": "tonight's scan"}),
    )
    .await;
    let pid = pending["id"].as_i64().unwrap();
    assert_eq!(pending["state"], "pending");
    let ids = |v: &Value| -> Vec<i64> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect()
    };
    let (_, v) = app.get("/api/v1/silences?state=active").await;
    assert_eq!(ids(&v), vec![aid]);
    let (_, v) = app.get("/api/v1/silences?state=pending").await;
    assert_eq!(ids(&v), vec![pid]);

    let v = app
        .alerts(&brute_force("db-1", "2026-03-01T10:00:00Z"))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "silenced");
    // Another source is not this silence's business.
    let mut other = brute_force("db-1", "2026-03-01T10:00:00Z");
    other["source"] = json!("waf");
    let v = app.alerts(&other).await;
    assert_eq!(v["alerts"][0]["disposition"], "opened");

    // Ending it early: kept, expired, with who and why; it no longer matches.
    let path = format!("/api/v1/silences/{aid}/expire");
    let (s, e) = app.post(&path, RESPONDER, &json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["path"], "reason");
    let (s, v) = app
        .post(
            &path,
            RESPONDER,
            &json!({"reason": "pentest finished early"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["expired_by"], "token:responder");
    assert_eq!(v["expire_reason"], "pentest finished early");
    let (s, e) = app
        .post(&path, RESPONDER, &json!({"reason": "again"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("already ended early"),
        "{e}"
    );
    let (s, _) = app
        .post(
            "/api/v1/silences/999/expire",
            RESPONDER,
            &json!({"reason": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let v = app
        .alerts(&brute_force("db-1", "2026-03-01T11:00:00Z"))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "opened", "{v}");

    let (_, v) = app.get("/api/v1/silences?state=expired").await;
    assert_eq!(ids(&v), vec![aid]);
    assert_eq!(v["items"][0]["alerts_silenced"], 1);
    let (_, v) = app.get("/api/v1/silences").await;
    assert_eq!(ids(&v), vec![pid, aid]);
    // A pending silence can be called off too.
    let (s, v) = app
        .post(
            &format!("/api/v1/silences/{pid}/expire"),
            RESPONDER,
            &json!({"reason": "scan cancelled"}),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("expired")));
    let expired = global_events(&app, "silence.expired").await;
    assert_eq!(expired.len(), 2);
    assert_eq!(expired[1]["was_pending"], true);
    app.stop().await;
}

async fn bad_silences_are_refused_naming_the_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let soon = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let sooner = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let ok = json!({"matchers": ["alertname=DiskFull"], "duration": "1h", "reason": "r"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (
            json!({"duration": "1h", "reason": "r"}),
            "matchers",
            "at least one matcher",
        ),
        (
            with("matchers", json!(["DiskFull"])),
            "matchers[0]",
            "name=value, name!=value, name=~regex or name!~regex",
        ),
        (
            with("matchers", json!(["alertname=DiskFull", "instance=~db-("])),
            "matchers[1]",
            "not a valid regular expression",
        ),
        (
            with("matchers", json!(["team!=db"])),
            "matchers",
            "silence every alert",
        ),
        (
            with("rule", json!("disk-rule")),
            "rule",
            "the rules are: alertmanager-watchdog, pi-category-label",
        ),
        (
            without("duration"),
            "ends_at",
            "give ends_at (RFC 3339) or duration",
        ),
        (with("ends_at", json!(soon)), "duration", "not both"),
        (
            with("duration", json!("2 hours")),
            "duration",
            "use one of s, m, h, d",
        ),
        (
            json!({"matchers": ["a=b"], "starts_at": soon, "ends_at": sooner, "reason": "r"}),
            "ends_at",
            "before it starts",
        ),
        (
            json!({"matchers": ["a=b"], "ends_at": past, "reason": "r"}),
            "ends_at",
            "already be over",
        ),
        (without("reason"), "reason", "say why"),
        (
            with("matcher", json!(["a=b"])),
            "",
            "unknown field `matcher`",
        ),
    ];
    for (body, path, needle) in cases {
        let (s, e) = app.post("/api/v1/silences", RESPONDER, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {e}");
        if !path.is_empty() {
            assert_eq!(e["path"], path, "{body}: {e}");
        }
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.contains(needle),
            "{body}: `{needle}` not in {detail}"
        );
        assert!(
            detail.starts_with(path),
            "the detail names the field: {detail}"
        );
    }
    let (s, _) = app.post("/api/v1/silences", VIEWER, &ok).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.post("/api/v1/silences", INGEST, &ok).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e) = app.get("/api/v1/silences?state=soon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("active"), "{e}");
    for missing in ["/api/v1/silences/abc", "/api/v1/silences/999"] {
        let (s, _) = app.get(missing).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}");
    }
    let (s, _) = app.call(Method::GET, "/api/v1/silences", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, v) = app.get("/api/v1/silences").await;
    assert!(
        v["items"].as_array().unwrap().is_empty(),
        "nothing was created: {v}"
    );
    app.stop().await;
}

/// The real binary as a client of this daemon.
fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args(args)
        .env("INCIDENTD_URL", app.url(""))
        .env("INCIDENTD_TOKEN", RESPONDER)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn the_cli_adds_lists_and_expires_silences(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    let run = |args: &'static [&'static str]| {
        let app = app.clone();
        async move {
            tokio::task::spawn_blocking(move || cli(&app, args))
                .await
                .unwrap()
        }
    };
    let (ok, out) = run(&["silence", "add", "--help"]).await;
    assert!(ok && out.contains("--match 'instance=~db-.*'"), "{out}");
    let (ok, out) = run(&[
        "silence",
        "add",
        "--match",
        "alertname=BruteForce",
        "--match",
        "instance=~db-.*",
        "--for",
        "2h",
        "--reason",
        "CHG-7: failover",
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("silence 1 is active until"), "{out}");
    let (ok, out) = run(&[
        "silence", "add", "--match", "DiskFull", "--for", "2h", "--reason", "x",
    ])
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("422") && out.contains("matchers[0]: `DiskFull` is not a matcher"),
        "{out}"
    );
    let (ok, out) = run(&["silence", "add", "--match", "a=b", "--reason", "x"]).await;
    assert!(!ok && out.contains("--for"), "{out}");
    let v = app
        .alerts(&brute_force("db-9", "2026-03-01T10:00:00Z"))
        .await;
    assert_eq!(v["alerts"][0]["disposition"], "silenced");
    let (ok, out) = run(&["silences", "--state", "active"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("alertname=BruteForce instance=~db-.*") && out.contains("CHG-7: failover"),
        "{out}"
    );
    let (ok, out) = run(&["alerts", "list", "--silenced"]).await;
    assert!(ok && out.contains("db-9"), "{out}");
    let (ok, out) = run(&["silence", "expire", "1", "--reason", "done early"]).await;
    assert!(ok && out.contains("silence 1 is expired"), "{out}");
    let (ok, out) = run(&["silences", "--state", "active"]).await;
    assert!(ok && out.contains("no silences"), "{out}");
    let (ok, out) = run(&["silences", "--state", "expired"]).await;
    assert!(ok && out.contains("done early"), "{out}");
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}
