//! API hygiene: auth, problem+json for every bad input, health, metrics, OpenAPI.

use crate::common;

use common::{ADMIN, INGEST, RESPONDER, TestApp, VIEWER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SINGLE: &str = include_str!("fixtures/alertmanager-0.25-webhook-single.json");

both_backends!(
    auth_is_required_and_roles_are_checked,
    malformed_json_names_line_and_column,
    unknown_and_wrong_fields_name_their_path,
    oversized_bodies_and_batches_are_413,
    wrong_content_type_is_415,
    alertmanager_refuses_only_what_can_never_succeed,
    unknown_things_are_404,
    health_readiness_metrics_and_openapi,
);

async fn problem(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{status}"
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], status.as_u16());
    assert!(!v["detail"].as_str().unwrap_or_default().is_empty(), "{v}");
    (status, v)
}

async fn auth_is_required_and_roles_are_checked(app: TestApp) {
    let body = json!({"source": "s", "title": "t"});
    let res = app
        .http
        .post(app.url("/api/v1/alerts"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
    let (s, p) = problem(res).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{p}"
    );
    let res = app
        .http
        .post(app.url("/api/v1/alerts"))
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, StatusCode::UNAUTHORIZED);
    let res = app
        .http
        .get(app.url("/api/v1/incidents"))
        .header("authorization", "Basic dTpw")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, StatusCode::UNAUTHORIZED);
    // Roles.
    let (s, p) = app.post("/api/v1/alerts", VIEWER, &body).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        p["detail"],
        "token `viewer` has roles [viewer]; this needs one of [ingest] (or admin)"
    );
    let (s, _) = app
        .call(Method::GET, "/api/v1/incidents", Some(INGEST), None)
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "ingest tokens cannot read incidents"
    );
    let (s, _) = app
        .post("/api/v1/incidents", VIEWER, &json!({"title": "x"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .post("/api/v1/incidents", INGEST, &json!({"title": "x"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Admin may do everything.
    let (s, _) = app.post("/api/v1/alerts", ADMIN, &body).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = app
        .call(Method::GET, "/api/v1/incidents", Some(ADMIN), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Nothing refused was recorded.
    let (_, list) = app.get("/api/v1/alerts").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn malformed_json_names_line_and_column(app: TestApp) {
    let body =
        "[\n  {\"source\": \"s\", \"title\": \"t\"},\n  {\"source\": \"s\" \"title\": \"u\"}\n]";
    let res = app
        .raw(
            Method::POST,
            "/api/v1/alerts",
            Some(INGEST),
            "application/json",
            body,
        )
        .await;
    let (s, p) = problem(res).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(p["code"], "malformed_json");
    assert_eq!(
        p["detail"],
        "malformed JSON at line 3 column 18: expected `,` or `}`"
    );
    let res = app
        .raw(
            Method::POST,
            "/api/v1/incidents",
            Some(RESPONDER),
            "application/json",
            "",
        )
        .await;
    let (s, p) = problem(res).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON at line 1 column 0"),
        "{p}"
    );
    let res = app
        .raw(
            Method::PATCH,
            "/api/v1/incidents/1/facts",
            Some(RESPONDER),
            "application/json",
            "{\"a\":",
        )
        .await;
    assert_eq!(problem(res).await.0, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn unknown_and_wrong_fields_name_their_path(app: TestApp) {
    for (body, path, needle) in [
        (
            json!({"source": "s", "title": "t", "severity": "S1"}),
            "severity",
            "unknown field `severity`",
        ),
        (
            json!([{"source": "s", "title": "t"}, {"source": "s", "title": 5}]),
            "[1].title",
            "invalid type: integer `5`",
        ),
        (
            json!({"source": "s", "title": "t", "labels": {"a": 1}}),
            "labels.a",
            "invalid type",
        ),
        (
            json!({"source": "s", "title": "t", "status": "pending"}),
            "status",
            "unknown variant `pending`",
        ),
        (json!({"title": "t"}), "", "missing field `source`"),
        (
            json!({"source": "s", "title": "t", "facts": {"affected_subjects": "many"}}),
            "facts.affected_subjects",
            "invalid type",
        ),
    ] {
        let (s, p) = app.post("/api/v1/alerts", INGEST, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["code"], "invalid_field");
        assert_eq!(p["path"].as_str().unwrap_or(""), path, "{p}");
        assert!(p["detail"].as_str().unwrap().contains(needle), "{p}");
    }
    let (s, p) = app
        .post(
            "/api/v1/incidents",
            RESPONDER,
            &json!({"title": "t", "categry": "pi_leak"}),
        )
        .await;
    assert_eq!(
        (s, p["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("categry"))
    );
    let (s, p) = app
        .post(
            "/api/v1/incidents",
            RESPONDER,
            &json!({"title": "t", "category": "leak"}),
        )
        .await;
    assert_eq!(
        (s, p["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("category"))
    );
    // A bad alert in an array refuses the whole request: nothing half-recorded.
    let (_, list) = app.get("/api/v1/alerts").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    app.stop().await;
}

async fn oversized_bodies_and_batches_are_413(app: TestApp) {
    // The test config allows 64 KiB bodies and 200 alerts per request.
    let big = "x".repeat(70_000);
    let (s, p) = app
        .post(
            "/api/v1/alerts",
            INGEST,
            &json!({"source": "s", "title": big}),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("server.max_body_bytes"),
        "{p}"
    );
    // Without a Content-Length (chunked) the limit holds too: see api::extract's unit tests.
    let many: Vec<Value> = (0..201)
        .map(|i| json!({"source": "s", "title": format!("t{i}")}))
        .collect();
    let (s, p) = app
        .post("/api/v1/alerts", INGEST, &Value::Array(many))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("201 alerts in one request; at most 200"),
        "{p}"
    );
    app.stop().await;
}

async fn wrong_content_type_is_415(app: TestApp) {
    let res = app
        .raw(
            Method::POST,
            "/api/v1/alerts",
            Some(INGEST),
            "application/x-www-form-urlencoded",
            "source=s&title=t",
        )
        .await;
    let (s, p) = problem(res).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("send application/json"),
        "{p}"
    );
    // No Content-Type at all is read as JSON (curl --data-binary users).
    let res = app
        .http
        .post(app.url("/api/v1/alerts"))
        .bearer_auth(INGEST)
        .body(r#"{"source":"s","title":"t"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    app.stop().await;
}

async fn alertmanager_refuses_only_what_can_never_succeed(app: TestApp) {
    let post = |body: String| {
        app.raw(
            Method::POST,
            "/api/v1/alerts/alertmanager",
            Some(INGEST),
            "application/json",
            body,
        )
    };
    let (s, p) = problem(post("not json".into()).await).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (s, p) =
        problem(post(SINGLE.replace("\"version\": \"4\"", "\"version\": \"5\"")).await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("version `5` is not supported"),
        "{p}"
    );
    let (s, p) = problem(
        post(SINGLE.replace(
            "\"startsAt\": \"2026-11-25T07:48:17Z\"",
            "\"startsAt\": \"now\"",
        ))
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("alerts[0].startsAt:"),
        "{p}"
    );
    app.stop().await;
}

async fn unknown_things_are_404(app: TestApp) {
    let (s, p) = app.get("/api/v1/incidents/424242").await;
    assert_eq!(
        (s, p["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("there is no incident 424242"))
    );
    let (s, _) = app.get("/api/v1/incidents/abc").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/api/v1/incidents/424242/timeline").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .patch("/api/v1/incidents/424242/facts", &json!({"cause": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let res = app
        .http
        .get(app.url("/api/v2/whatever"))
        .send()
        .await
        .unwrap();
    let (s, p) = problem(res).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/openapi.json"),
        "{p}"
    );
    app.stop().await;
}

async fn health_readiness_metrics_and_openapi(app: TestApp) {
    for path in ["/healthz", "/readyz"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    app.alerts(&json!({"source": "metrics-test", "title": "数据泄露 test"}))
        .await;
    app.alerts(&json!({"source": "metrics-test", "title": "disk full"}))
        .await;
    // The gauges are set from this daemon's store as it answers, in the recorder every daemon
    // of the test binary shares: another's scrape may set them between; look until one shows
    // this daemon's figures.
    let gauges = [
        r#"incidentd_incidents_open{severity="S1"} 1"#,
        r#"incidentd_incidents_open{severity="S2"} 0"#,
        "incidentd_store_up 1",
    ];
    let text = common::wait_until("this daemon's open incidents on /metrics", 10, async || {
        let text = app.metrics().await;
        gauges.iter().all(|g| text.contains(g)).then_some(text)
    })
    .await;
    for needle in [
        r#"incidentd_alerts_received_total{source="metrics-test",outcome="opened"}"#,
        r#"incidentd_alerts_received_total{source="metrics-test",outcome="recorded"}"#,
        "incidentd_http_request_duration_seconds_bucket",
        "incidentd_ingest_commit_seconds",
        r#"incidentd_ingest_phase_seconds_count{phase="begin"}"#,
        r#"incidentd_ingest_phase_seconds_count{phase="lookup"}"#,
        r#"incidentd_ingest_phase_seconds_count{phase="plan"}"#,
        r#"incidentd_ingest_phase_seconds_count{phase="write"}"#,
        r#"incidentd_ingest_phase_seconds_count{phase="commit"}"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    let (s, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    for path in [
        "/api/v1/alerts",
        "/api/v1/alerts/alertmanager",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/incidents/{id}/transitions",
        "/api/v1/incidents/{id}/facts",
        "/api/v1/incidents/{id}/timeline",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["Incident"].is_object());
    app.stop().await;
}
