//! Hardening at the edge (issue #17): connection timeouts and the connection limit (M4), the
//! bounds on every time the API takes (M6), control characters in facts and the feed (L2),
//! Alertmanager's `truncatedAlerts` (L3), what an anonymous `/readyz` shows (L4), the example
//! configuration's public trial secrets (L5), the HTML pages' security headers (L7), the log
//! level of client errors (L8), problem+json for every error (L10) and server paths in error
//! details (L11).
//!
//! The connection tests (M4) and the configuration tests (L5) run once: the edge and the
//! configuration do not touch the store. Everything else runs on SQLite and PostgreSQL.

use crate::common;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ADMIN, Backend, INGEST, RESPONDER, TestApp, VIEWER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

both_backends!(
    times_before_2000_or_after_2099_are_refused_everywhere,
    alertmanager_times_are_bounded_but_its_zero_end_still_means_firing,
    control_characters_are_refused_in_facts,
    truncated_alerts_beyond_i64_are_refused,
    anonymous_readiness_shows_no_reload_problems,
    html_pages_carry_csp_nosniff_and_no_referrer,
    every_error_is_problem_json,
    error_details_name_templates_not_server_paths,
);

mod feed {
    crate::on_both_backends!(the_feed_stays_well_formed_with_control_characters_in_the_text);
    use super::the_feed_stays_well_formed_with_control_characters_in_the_text;
}

mod logs {
    crate::on_both_backends!(client_errors_are_not_logged_as_errors);
    use super::client_errors_are_not_logged_as_errors;
}

/// Put `keys` into the running daemon's `[server]` section and restart it with them.
async fn restart_with_server_keys(app: &mut TestApp, keys: &str) {
    let text = std::fs::read_to_string(&app.config_path).unwrap();
    let text = text.replacen("[server]\n", &format!("[server]\n{keys}\n"), 1);
    std::fs::write(&app.config_path, text).unwrap();
    app.restart().await;
}

/// Read until the server closes the connection (or `limit` passes): how long it took, and
/// whether it closed.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> (Duration, bool) {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return (started.elapsed(), true),
            Ok(Ok(_)) => continue,
            Err(_) => return (started.elapsed(), false),
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.unwrap()
}

// --- M4: timeouts and the connection limit ------------------------------------------------

/// A client trickling its headers is cut off once `server.header_read_timeout` has passed since
/// it connected, however regularly it sends; a full request on time is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    restart_with_server_keys(
        &mut app,
        "header_read_timeout = \"1s\"\nidle_timeout = \"30s\"",
    )
    .await;
    let slow = connect(&app).await;
    let started = Instant::now();
    let (mut rd, mut wr) = slow.into_split();
    wr.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => continue,
            }
        }
    });
    for i in 0..20 {
        // The pace is the test: a header every 250 ms, steady, yet slower than the timeout.
        tokio::time::sleep(Duration::from_millis(250)).await;
        if wr
            .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let cut = tokio::time::timeout(Duration::from_secs(1), reader)
        .await
        .expect("a client trickling headers for 5 s is still connected")
        .unwrap();
    // Counted from the connection's start: trickling does not buy more time.
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_millis(2500),
        "cut off after {cut:?}"
    );

    // A request that arrives in time is answered.
    let (s, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

/// A kept-alive connection without a request is closed after `server.idle_timeout`; one that
/// sends its next request in time is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    restart_with_server_keys(
        &mut app,
        "header_read_timeout = \"5s\"\nidle_timeout = \"1s\"",
    )
    .await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut s = connect(&app).await;
    let mut buf = [0u8; 1024];
    for _ in 0..2 {
        s.write_all(request).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        // Within the idle time the connection is kept for the next request (time must pass:
        // idle, but less than the idle timeout).
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (after, closed) = closed_within(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "an idle keep-alive connection stayed open for 5 s");
    assert!(
        after < Duration::from_secs(2),
        "closed only after {after:?}"
    );
    app.stop().await;
}

/// At `server.max_connections`, idle connections give way: with the limit full of clients
/// that connected and said nothing, `/healthz` still answers at once, and no more idle
/// connections than the limit stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_the_api() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    restart_with_server_keys(
        &mut app,
        "max_connections = 4\nheader_read_timeout = \"30s\"\nidle_timeout = \"30s\"",
    )
    .await;
    let mut idle = Vec::new();
    for i in 0..12 {
        let mut s = connect(&app).await;
        if i % 2 == 0 {
            s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        }
        idle.push(s);
    }
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let res = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut open = 0;
    for s in &mut idle {
        if !closed_within(s, Duration::from_millis(300)).await.1 {
            open += 1;
        }
    }
    assert!(
        open <= 4,
        "{open} idle connections still open with max_connections = 4"
    );
    let metrics = app.metrics().await;
    let evicted: f64 = metrics
        .lines()
        .find(|l| l.starts_with("incidentd_http_connections_closed_total{reason=\"evicted\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(evicted >= 8.0, "{metrics}");
    app.stop().await;
}

/// When every connection has a request in progress, a new connection is answered 503 (with
/// Retry-After) at once rather than left waiting; when one finishes, service resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_house_of_busy_connections_refuses_new_ones_quickly() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    restart_with_server_keys(&mut app, "max_connections = 2\nrequest_timeout = \"3s\"").await;
    // Two requests in progress: their bodies arrive slowly.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&app).await;
        s.write_all(
            format!(
                "POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INGEST}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"source\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        busy.push(s);
    }
    // Time for the daemon to take both connections in; nothing per daemon shows it (the
    // open-connections gauge is shared by every daemon this test binary runs).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(started.elapsed() < Duration::from_secs(1), "{answer}");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(
        answer.contains("application/problem+json") && answer.contains("max_connections"),
        "{answer}"
    );
    // The busy requests end (request_timeout); then new connections are served again.
    drop(busy);
    common::wait_for("a free connection", 10, async || {
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    app.stop().await;
}

/// Shutdown does not wait for clients that are connected without a request in progress:
/// graceful shutdown (which the crash and durability tests rely on) finishes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_idle_or_slow_clients() {
    let mut app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    restart_with_server_keys(
        &mut app,
        "header_read_timeout = \"30s\"\nidle_timeout = \"30s\"",
    )
    .await;
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let _idle = connect(&app).await;
    // Time for the daemon to take both connections in; nothing per daemon shows it (the
    // open-connections gauge is shared by every daemon this test binary runs).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    app.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown waited {:?} for clients with nothing in progress",
        started.elapsed()
    );
    assert!(closed_within(&mut slow, Duration::from_secs(1)).await.1);
    app.start_again().await;
    app.stop().await;
}

/// The limits are checked like every other setting.
#[test]
fn edge_limits_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("incidentd.toml");
    std::fs::copy(
        common::repo().join("config/classification.toml"),
        dir.path().join("classification.toml"),
    )
    .unwrap();
    let text = common::config_text("sqlite://x.db", "").replacen(
        "[server]\n",
        "[server]\nheader_read_timeout = \"0s\"\nidle_timeout = \"2h\"\nmax_connections = 0\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let e = incidentd::config::load(&config).unwrap_err().to_string();
    for key in [
        "server.header_read_timeout: give 100ms to 5m",
        "server.idle_timeout: give 100ms to 1h",
        "server.max_connections: give 1 to 1000000",
    ] {
        assert!(e.contains(key), "`{key}` not in: {e}");
    }
}

// --- M6: times ----------------------------------------------------------------------------

async fn incident(app: &TestApp) -> i64 {
    app.declare(&json!({"title": "Times test", "discovered_at": "2026-11-20T02:30:00Z"}))
        .await["id"]
        .as_i64()
        .unwrap()
}

/// Year −1 once set `discovered_at` and made the CN report "740683d overdue": every time a
/// person or a sender gives is refused outside 2000–2099, naming the field.
async fn times_before_2000_or_after_2099_are_refused_everywhere(app: TestApp) {
    let id = incident(&app).await;
    let cases: Vec<(Method, String, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/incidents".into(),
            RESPONDER,
            json!({"title": "x", "discovered_at": "-0001-01-01T00:00:00Z"}),
            "discovered_at",
        ),
        (
            Method::POST,
            "/api/v1/incidents".into(),
            RESPONDER,
            json!({"title": "x", "aware_at": "1970-01-01T00:00:00Z"}),
            "aware_at",
        ),
        (
            Method::PATCH,
            format!("/api/v1/incidents/{id}"),
            RESPONDER,
            json!({"discovered_at": "1999-12-31T23:59:59Z", "reason": "clock"}),
            "discovered_at",
        ),
        (
            Method::PATCH,
            format!("/api/v1/incidents/{id}"),
            RESPONDER,
            json!({"handling_closed_at": "0001-01-01T00:00:00Z", "reason": "clock"}),
            "handling_closed_at",
        ),
        (
            Method::POST,
            "/api/v1/alerts".into(),
            INGEST,
            json!({"source": "siem", "title": "t", "occurred_at": "-0001-01-01T00:00:00Z"}),
            "occurred_at",
        ),
        (
            Method::POST,
            "/api/v1/alerts".into(),
            INGEST,
            json!([{"source": "siem", "title": "t", "occurred_at": "9999-12-31T00:00:00Z"}]),
            "[0].occurred_at",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            RESPONDER,
            json!({"matchers": ["alertname=X"], "starts_at": "1999-01-01T00:00:00Z", "duration": "1h", "reason": "r"}),
            "starts_at",
        ),
        (
            Method::POST,
            "/api/v1/silences".into(),
            RESPONDER,
            json!({"matchers": ["alertname=X"], "ends_at": "2200-01-01T00:00:00Z", "reason": "r"}),
            "ends_at",
        ),
        (
            Method::POST,
            format!("/api/v1/incidents/{id}/obligations/CN:report/met"),
            RESPONDER,
            json!({"reference": "r-1", "at": "1999-01-01T00:00:00Z"}),
            "at",
        ),
        (
            Method::POST,
            format!("/api/v1/incidents/{id}/reports/1/submit"),
            RESPONDER,
            json!({"via": "manual", "reference": "r-1", "submitted_at": "1900-01-01T00:00:00Z"}),
            "submitted_at",
        ),
    ];
    for (method, path, token, body, field) in cases {
        let (s, v) = app.call(method, &path, Some(token), Some(&body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {v}");
        assert_eq!(v["path"], field, "{path}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(
            detail.contains("before 2000-01-01") || detail.contains("after 2099"),
            "{path}: {v}"
        );
    }
    // Nothing of it was kept: the incident's clock is the one it was declared with.
    let inc = app.incident(id).await;
    assert_eq!(inc["discovered_at"], "2026-11-20T02:30:00Z");
    let (_, incidents) = app.get("/api/v1/incidents?limit=50").await;
    assert_eq!(
        incidents["items"].as_array().unwrap().len(),
        1,
        "{incidents}"
    );
    // In range, it works as before; a clock ahead of ours by more than the skew is refused.
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"discovered_at": "2026-11-20T01:00:00Z", "reason": "found the first log line"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ahead = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}"),
            &json!({"aware_at": ahead, "reason": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("in the future"),
        "{v}"
    );
    app.stop().await;
}

const SINGLE: &str = include_str!("fixtures/alertmanager-0.25-webhook-single.json");

/// A PI alert (it opens an incident), as Alertmanager sends it.
fn am_payload() -> String {
    SINGLE.replace(
        "\"summary\": \"bench alert",
        "\"summary\": \"用户数据外泄 bench alert",
    )
}

async fn post_am(app: &TestApp, body: &str) -> (StatusCode, Value) {
    let res = app
        .raw(
            Method::POST,
            "/api/v1/alerts/alertmanager",
            Some(INGEST),
            "application/json",
            body.to_string(),
        )
        .await;
    let s = res.status();
    (s, res.json().await.unwrap())
}

async fn alertmanager_times_are_bounded_but_its_zero_end_still_means_firing(app: TestApp) {
    let body = am_payload();
    for (from, to, field) in [
        (
            "\"startsAt\": \"2026-11-25T07:48:17Z\"",
            "\"startsAt\": \"-0001-01-01T00:00:00Z\"",
            "alerts[0].startsAt",
        ),
        (
            "\"endsAt\": \"0001-01-01T00:00:00Z\"",
            "\"endsAt\": \"1969-12-31T23:59:59Z\"",
            "alerts[0].endsAt",
        ),
        (
            "\"endsAt\": \"0001-01-01T00:00:00Z\"",
            "\"endsAt\": \"2150-01-01T00:00:00Z\"",
            "alerts[0].endsAt",
        ),
    ] {
        let (s, v) = post_am(&app, &body.replace(from, to)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{to}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.starts_with(field), "{v}");
        assert!(detail.contains("RFC 3339"), "{v}");
    }
    // Alertmanager's zero time means "still firing", as before.
    let (s, v) = post_am(&app, &body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let inc = app
        .incident(v["alerts"][0]["incident_id"].as_i64().unwrap())
        .await;
    assert_eq!(inc["first_seen_at"], "2026-11-25T07:48:17Z", "{inc}");
    app.stop().await;
}

// --- L2: control characters ---------------------------------------------------------------

async fn control_characters_are_refused_in_facts(app: TestApp) {
    let id = incident(&app).await;
    let facts = format!("/api/v1/incidents/{id}/facts");
    for (patch, path) in [
        (json!({"cause": "dump\u{7} of the CRM"}), "cause"),
        (
            json!({"remedies": {"zh-CN": "免费监控", "en": "free \u{1b}[31mmonitoring"}}),
            "remedies.en",
        ),
        (
            json!({"impact": {"internal": "x", "public": {"en": "a\u{0}b"}}}),
            "impact.public.en",
        ),
        (
            json!({"risk": "unlikely", "risk_reason": "r\u{8}"}),
            "risk_reason",
        ),
    ] {
        let (s, v) = app
            .call(Method::PATCH, &facts, Some(RESPONDER), Some(&patch))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(
            detail.contains(path) && detail.contains("control character U+00"),
            "{patch}: {v}"
        );
    }
    // In a declaration and in an alert's facts too.
    let (s, v) = app
        .post(
            "/api/v1/incidents",
            RESPONDER,
            &json!({"title": "x", "facts": {"cause": "\u{7}"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app
        .post(
            "/api/v1/alerts",
            INGEST,
            &json!({"source": "dlp", "title": "t", "facts": {"impact": "\u{1}"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Line breaks and tabs are text.
    let (s, v) = app
        .call(
            Method::PATCH,
            &facts,
            Some(RESPONDER),
            Some(&json!({"cause": "line one\nline two\r\n\tindented"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}

/// Text that holds control characters anyway (from the configuration here; stored before the
/// input check, or imported) never makes the Atom feed ill-formed, nor reaches the pages.
async fn the_feed_stays_well_formed_with_control_characters_in_the_text(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, "").await else {
        return;
    };
    let mut app = app;
    let text = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &app.config_path,
        text.replacen(
            "contact = \"privacy@test.example\"",
            "contact = \"privacy@test.example\\u0007\\u001b[0m\"",
            1,
        ),
    )
    .unwrap();
    app.restart().await;
    let id = app
        .declare(&json!({
            "title": "Member database backup exposed",
            "category": "pi_leak",
            "discovered_at": "2026-11-20T02:30:00Z",
            "facts": common::both_languages(json!({
                "affected_subjects": 250000,
                "data_types": ["name", "phone"],
                "jurisdictions": ["CN"],
                "cause": "A misconfigured bucket.",
                "impact": "Names and phone numbers may be used for scam calls.",
                "measures_taken": "We closed public access.",
                "advice_to_subjects": "Be wary of calls claiming to be from us.",
                "remedies": "Login alerts.",
            })),
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/announcement"),
            RESPONDER,
            &json!({"reason": "public interest"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let task = v["approval_task"].as_i64().unwrap();
    let slug = v["slug"].as_str().unwrap().to_string();
    let (s, t) = app
        .post(
            &format!("/api/v1/approvals/{task}/approve"),
            ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    for lang in ["", "?lang=en"] {
        let xml = app
            .http
            .get(app.url(&format!("/announcements/feed.xml{lang}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml:?}"));
        let content = doc
            .descendants()
            .find(|n| n.has_tag_name("content"))
            .and_then(|n| n.text())
            .unwrap();
        assert!(content.contains("privacy@test.example[0m"), "{content}");
        let page = app
            .http
            .get(app.url(&format!("/announcements/{slug}{lang}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("privacy@test.example[0m"), "{page}");
        assert!(
            !page.contains('\u{7}') && !page.contains('\u{1b}'),
            "{page}"
        );
    }
    app.stop().await;
}

// --- L3: truncatedAlerts ------------------------------------------------------------------

async fn truncated_alerts_beyond_i64_are_refused(app: TestApp) {
    let body = am_payload();
    let (s, v) = post_am(
        &app,
        &body.replace(
            "\"truncatedAlerts\": 0",
            "\"truncatedAlerts\": 18446744073709551615",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("truncatedAlerts: 18446744073709551615 is more alerts"),
        "{v}"
    );
    let (s, v) = post_am(
        &app,
        &body.replace(
            "\"truncatedAlerts\": 0",
            "\"truncatedAlerts\": 9223372036854775807",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let inc = app
        .incident(v["alerts"][0]["incident_id"].as_i64().unwrap())
        .await;
    assert_eq!(inc["truncated_alerts"], i64::MAX, "{inc}");
    app.stop().await;
}

// --- L4: readiness ------------------------------------------------------------------------

async fn anonymous_readiness_shows_no_reload_problems(app: TestApp) {
    let secret = app.dir.path().join("secret-ack-key-file");
    let text = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &app.config_path,
        format!(
            "{text}\n[paging]\nack_secret_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let e = app.reload().await.unwrap_err().to_string();
    assert!(e.contains("secret-ack-key-file"), "{e}");
    let anonymous = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    let shown = anonymous.text().await.unwrap();
    assert!(shown.contains("reload was refused"), "{shown}");
    let dir = app.dir.path().display().to_string();
    for secret_detail in ["secret-ack-key-file", "incidentd.toml", dir.as_str()] {
        assert!(!shown.contains(secret_detail), "{secret_detail} in {shown}");
    }
    // A caller with a token is told why.
    let (s, told) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK);
    assert!(told.to_string().contains("secret-ack-key-file"), "{told}");
    app.stop().await;
}

// --- L5: trial secrets --------------------------------------------------------------------

fn shipped_config_in(
    dir: &std::path::Path,
    listen: &str,
    extra_server: &str,
) -> std::path::PathBuf {
    let repo = common::repo();
    let text = std::fs::read_to_string(repo.join("config/incidentd.toml"))
        .unwrap()
        .replace(
            "listen = \"127.0.0.1:8600\"",
            &format!("listen = \"{listen}\"\n{extra_server}"),
        )
        .replace(
            "templates = \"../templates\"",
            &format!("templates = \"{}\"", repo.join("templates").display()),
        )
        .replace(
            "url = \"sqlite://../var/incidentd.db\"",
            "url = \"sqlite://incidentd.db\"",
        );
    for sub in ["playbooks", "jurisdictions", "drills"] {
        let to = dir.join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(repo.join("config").join(sub)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    std::fs::copy(
        repo.join("config/classification.toml"),
        dir.join("classification.toml"),
    )
    .unwrap();
    let path = dir.join("incidentd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn trial_secrets_are_refused_beyond_loopback_and_check_warns() {
    let dir = tempfile::tempdir().unwrap();
    // On every address: refused, naming each trial secret.
    for listen in ["0.0.0.0:8600", "[::]:8600", "192.0.2.10:8600"] {
        let path = shipped_config_in(dir.path(), listen, "");
        let e = incidentd::config::load(&path).unwrap_err().to_string();
        for want in [
            "server.listen",
            "trial token dev-admin-token",
            "trial token dev-alertmanager-token",
            "paging.ack_secret",
            "subjects.key",
            "audit.key",
            "server.allow_trial_secrets = true",
        ] {
            assert!(e.contains(want), "{listen}: `{want}` not in: {e}");
        }
    }
    // Unless explicitly allowed.
    let path = shipped_config_in(dir.path(), "0.0.0.0:8600", "allow_trial_secrets = true");
    let s = incidentd::config::load(&path).unwrap();
    assert_eq!(s.trial_secrets.len(), 10, "{:?}", s.trial_secrets);
    // On loopback they work (a local trial), and `check` says what they are.
    let path = shipped_config_in(dir.path(), "127.0.0.1:8600", "");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
        .args(["check", "--config", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let warning = out
        .lines()
        .find(|l| l.contains("warning: the public trial secrets"))
        .unwrap_or_else(|| panic!("no warning about the trial secrets:\n{out}"));
    for want in [
        "dev-responder-token",
        "paging.ack_secret",
        "subjects.key",
        "audit.key",
    ] {
        assert!(warning.contains(want), "{want}: {warning}");
    }
    // Secrets of one's own: no warning, any address.
    let own = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "trial-only-ack-link-key-replace-me",
            "an-ack-key-of-our-very-own",
        )
        .replace(
            "1c8a35c1461cbfc03ff0b1d1a5f70fed9577b7671c6801af9b0420a61c860445",
            &"ab".repeat(32),
        )
        .replace(incidentd::config::trial::AUDIT_KEY, &"cd".repeat(32))
        .replace("127.0.0.1:8600", "0.0.0.0:8600");
    let own = own
        .split("[[auth.tokens]]")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                // Each trial hash becomes another token's.
                let h = hex::encode(incidentd::api::token_hash(&format!("own-{i}")));
                let start = part.find("sha256 = \"").unwrap() + 10;
                format!("{}{h}{}", &part[..start], &part[start + 64..])
            }
        })
        .collect::<Vec<_>>()
        .join("[[auth.tokens]]");
    std::fs::write(&path, own).unwrap();
    let s = incidentd::config::load(&path).unwrap();
    assert!(s.trial_secrets.is_empty(), "{:?}", s.trial_secrets);
}

// --- L7: HTML headers ---------------------------------------------------------------------

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn html_pages_carry_csp_nosniff_and_no_referrer(app: TestApp) {
    let mut app = app;
    let text = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &app.config_path,
        format!("{text}\n[paging]\nack_secret = \"an-ack-secret-of-32-characters!!\"\n"),
    )
    .unwrap();
    app.restart().await;
    let id = incident(&app).await;
    let token = incidentd::engine::acklink::sign(
        b"an-ack-secret-of-32-characters!!",
        &incidentd::engine::acklink::AckClaim {
            incident_id: id,
            member: "security/oncall".into(),
            task: String::new(),
            expires: chrono::Utc::now().timestamp() + 3600,
        },
    );
    let pages = [
        (format!("/ack/{token}"), StatusCode::OK, true),
        ("/ack/not-a-token".to_string(), StatusCode::FORBIDDEN, true),
        ("/announcements".to_string(), StatusCode::OK, false),
        (
            "/announcements/nothing-here".to_string(),
            StatusCode::NOT_FOUND,
            false,
        ),
        ("/n/not-a-token".to_string(), StatusCode::NOT_FOUND, false),
    ];
    for (path, status, ack) in pages {
        let res = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        assert!(
            header(&res, "content-type").starts_with("text/html"),
            "{path}"
        );
        let csp = header(&res, "content-security-policy");
        for want in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(want), "{path}: {want} not in `{csp}`");
        }
        // The acknowledgement page's button posts to the page itself, and nowhere else.
        let form = if ack {
            "form-action 'self'"
        } else {
            "form-action 'none'"
        };
        assert!(csp.contains(form), "{path}: {csp}");
        assert!(!csp.contains("script-src"), "{path}: {csp}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header(&res, "x-frame-options"), "DENY", "{path}");
        if ack {
            assert_eq!(header(&res, "cache-control"), "no-store", "{path}");
        }
    }
    // JSON answers are not sniffed either.
    let res = app
        .http
        .get(app.url("/api/v1/incidents"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    // The page still acknowledges (the form posts to itself).
    let res = app
        .http
        .post(app.url(&format!("/ack/{token}")))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

// --- L8: log levels -----------------------------------------------------------------------

/// Collects what the daemon logs (JSON lines).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A refused request (here: an announcement whose facts are missing, 409) is the client's
/// business: logged at INFO as "request refused", never at ERROR.
async fn client_errors_are_not_logged_as_errors(backend: Backend) {
    // One thread runs the daemon and this test, so this subscriber sees the daemon's events.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(captured.clone())
        .finish();
    let app_captured = captured.clone();
    std::thread::spawn(move || {
        let _guard = tracing::subscriber::set_default(subscriber);
        rt.block_on(async move {
            let Some(app) = TestApp::spawn(backend).await else {
                return;
            };
            let id = incident(&app).await;
            let (s, v) = app
                .post(
                    &format!("/api/v1/incidents/{id}/announcement"),
                    RESPONDER,
                    &json!({"reason": "r"}),
                )
                .await;
            assert!(s.is_client_error(), "{s} {v}");
            let (s, _) = app.get("/api/v1/incidents/999999").await;
            assert_eq!(s, StatusCode::NOT_FOUND);
            app.stop().await;
            let lines = app_captured.lines();
            let refused: Vec<&Value> = lines
                .iter()
                .filter(|l| l["message"] == "request refused")
                .collect();
            assert!(refused.len() >= 2, "{lines:#?}");
            assert!(refused.iter().all(|l| l["level"] == "INFO"), "{refused:#?}");
            let errors: Vec<&Value> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
            assert!(
                errors.is_empty(),
                "client errors logged at ERROR: {errors:#?}"
            );
        });
    })
    .join()
    .unwrap();
    let _ = std::io::stderr().flush();
}

// --- L10: problem+json everywhere ---------------------------------------------------------

async fn problem(res: reqwest::Response) -> (StatusCode, String, Value) {
    let s = res.status();
    let ct = header(&res, "content-type");
    let text = res.text().await.unwrap();
    (
        s,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn every_error_is_problem_json(app: TestApp) {
    let mut app = app;
    let cases = [
        (
            Method::GET,
            "/api/v1/deliveries/abc",
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, "/api/v1/reports/x1", StatusCode::BAD_REQUEST),
        (
            Method::POST,
            "/api/v1/approvals/first/approve",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/api/v1/incidents",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/api/v1/incidents?limit=many",
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, status) in cases {
        let res = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let allow = header(&res, "allow");
        let (s, ct, v) = problem(res).await;
        assert_eq!(s, status, "{method} {path}: {v}");
        assert_eq!(ct, "application/problem+json", "{method} {path}: {v}");
        assert_eq!(v["status"], status.as_u16(), "{v}");
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{v}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        }
    }
    // The request timeout's 503 too: a body that never finishes arriving.
    restart_with_server_keys(&mut app, "request_timeout = \"1s\"").await;
    let mut s = connect(&app).await;
    s.write_all(
        format!(
            "POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INGEST}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"source\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered within the request timeout")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains("server.request_timeout (1s)"), "{answer}");
    app.stop().await;
}

// --- L11: server paths --------------------------------------------------------------------

async fn error_details_name_templates_not_server_paths(app: TestApp) {
    let id = incident(&app).await;
    let templates = common::repo().join("templates");
    // A template that cannot go out by SMS: the answer names the template, not where it is.
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/deliveries"),
            RESPONDER,
            &json!({"deliveries": [{
                "channel": "sms",
                "recipient": "+8613800000001",
                "template": "announcement/pi_leak",
            }]}),
        )
        .await;
    assert!(s.is_client_error(), "{s} {v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("announcement/pi_leak."), "{v}");
    assert!(
        !detail.contains(&templates.display().to_string()) && !detail.contains(".hbs:/"),
        "{v}"
    );
    assert!(!detail.contains(env!("CARGO_MANIFEST_DIR")), "{v}");
    app.stop().await;
}
