//! Declaring incidents, facts, classification changes by people, and the lifecycle.

use crate::common;

use common::{RESPONDER, TestApp};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    declare_with_and_without_category,
    declaration_is_raised_by_rules_never_lowered,
    declare_drill_and_clocks,
    lifecycle_full_path_and_timestamps,
    illegal_transitions_are_409_naming_the_allowed_ones,
    facts_are_versioned_and_can_raise_classification,
    a_person_may_lower_severity_only_with_a_reason,
    list_filters_and_paging,
);

async fn declare_with_and_without_category(app: TestApp) {
    let inc = app
        .declare(&json!({"title": "Customer table for sale on a forum", "category": "pi_leak", "summary": "seen 09:10"}))
        .await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    assert_eq!(inc["origin"], "declaration");
    assert_eq!(inc["created_by"], "token:responder");
    assert!(inc["declared_at"].is_string());
    // No category: the rules decide from the text.
    let inc = app.declare(&json!({"title": "手机号码疑似泄露"})).await;
    assert_eq!(
        (inc["category"].as_str(), inc["rule"].as_str()),
        (Some("pi_leak"), Some("pi-leak-text"))
    );
    // Nothing matches: other, S3.
    let inc = app
        .declare(&json!({"title": "Something odd on the VPN"}))
        .await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("other"), Some("S3"))
    );
    // PI with a severity below S1 is refused.
    let (s, p) = app
        .post(
            "/api/v1/incidents",
            RESPONDER,
            &json!({"title": "x", "category": "pi_loss", "severity": "S3"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["path"], "severity");
    assert!(p["detail"].as_str().unwrap().contains("always S1"), "{p}");
    let (s, p) = app
        .post("/api/v1/incidents", RESPONDER, &json!({"title": "  "}))
        .await;
    assert_eq!(
        (s, p["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("title"))
    );
    app.stop().await;
}

async fn declaration_is_raised_by_rules_never_lowered(app: TestApp) {
    // A person says "intrusion", but the facts show people's data: PI, S1.
    let inc = app
        .declare(&json!({
            "title": "Intrusion on crm01", "category": "intrusion", "severity": "S3",
            "facts": {"affected_subjects": 50000, "data_types": ["phone"]}
        }))
        .await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    let timeline = app.incident(inc["id"].as_i64().unwrap()).await["timeline"].clone();
    assert_eq!(timeline[1]["kind"], "incident.reclassified");
    assert_eq!(timeline[1]["data"]["from"]["category"], "intrusion");
    // A person saying S1 for a malware incident keeps S1 (rules would say S3).
    let inc = app
        .declare(&json!({"title": "Trojan on laptop", "severity": "S1"}))
        .await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("malware"), Some("S1"))
    );
    app.stop().await;
}

async fn declare_drill_and_clocks(app: TestApp) {
    let inc = app
        .declare(&json!({
            "title": "Drill: bucket exposed", "category": "pi_leak", "drill": true,
            "discovered_at": "2026-11-24T22:00:00Z", "aware_at": "2026-11-24T23:30:00Z"
        }))
        .await;
    assert_eq!(inc["drill"], true);
    assert_eq!(inc["discovered_at"], "2026-11-24T22:00:00Z");
    assert_eq!(inc["first_seen_at"], "2026-11-24T22:00:00Z");
    assert_eq!(inc["aware_at"], "2026-11-24T23:30:00Z");
    let (s, p) = app
        .post(
            "/api/v1/incidents",
            RESPONDER,
            &json!({"title": "x", "discovered_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (s, p["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("discovered_at"))
    );
    let (s, p) = app
        .post(
            "/api/v1/incidents",
            RESPONDER,
            &json!({"title": "x", "discovered_at": "last tuesday"}),
        )
        .await;
    assert_eq!(
        (s, p["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("discovered_at"))
    );
    let (_, list) = app.get("/api/v1/incidents?drill=true").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = app.get("/api/v1/incidents?drill=false").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    app.stop().await;
}

async fn lifecycle_full_path_and_timestamps(app: TestApp) {
    let id = app.declare(&json!({"title": "Intrusion on web01"})).await["id"]
        .as_i64()
        .unwrap();
    // Illegal before anything else: no point asking for a note first.
    let (s, p) = app.transition(id, "closed", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("triaged"), "{p}");
    for to in ["triaged", "contained", "eradicated", "recovered"] {
        let (s, v) = app.transition(id, to, None).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some(to)), "{v}");
    }
    let inc = app.incident(id).await;
    assert!(inc["contained_at"].is_string());
    assert!(inc["closed_at"].is_null());
    assert_eq!(inc["allowed_transitions"], json!(["closed"]));
    let (s, p) = app.transition(id, "closed", None).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "closing needs a note: {p}"
    );
    let (s, v) = app
        .transition(id, "closed", Some("lessons learned filed"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["closed_at"].is_string());
    let (_, v) = app.transition(id, "reopened", Some("attacker back")).await;
    assert!(v["closed_at"].is_null());
    assert!(v["contained_at"].is_string(), "history is kept");
    let (s, _) = app.transition(id, "triaged", None).await;
    assert_eq!(s, StatusCode::OK);
    let inc = app.incident(id).await;
    let moves: Vec<(String, String)> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "incident.transitioned")
        .map(|e| {
            (
                e["data"]["from"].as_str().unwrap().into(),
                e["data"]["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(moves.len(), 7);
    assert_eq!(moves[5], ("closed".to_string(), "reopened".to_string()));
    let closing = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["to"] == "closed")
        .unwrap();
    assert_eq!(closing["data"]["note"], "lessons learned filed");
    assert_eq!(closing["actor"], "token:responder");
    app.stop().await;
}

async fn illegal_transitions_are_409_naming_the_allowed_ones(app: TestApp) {
    let id = app.declare(&json!({"title": "Intrusion on web02"})).await["id"]
        .as_i64()
        .unwrap();
    let (s, p) = app.transition(id, "closed", Some("done")).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        p["detail"],
        "cannot move an incident from `detected` to `closed`; from `detected` it may move to: `triaged`, `false_positive`"
    );
    app.transition(id, "triaged", None).await;
    app.transition(id, "contained", None).await;
    let (s, p) = app.transition(id, "false_positive", Some("x")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    let (s, p) = app.transition(id, "done", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("unknown variant `done`"),
        "{p}"
    );
    let (s, _) = app.transition(999_999, "triaged", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn facts_are_versioned_and_can_raise_classification(app: TestApp) {
    let id = app.declare(&json!({"title": "Intrusion on crm02"})).await["id"]
        .as_i64()
        .unwrap();
    let url = format!("/api/v1/incidents/{id}/facts");
    let (s, v) = app
        .patch(
            &url,
            &json!({"cause": "stolen VPN credentials", "jurisdictions": ["CN", "SG"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["facts_version"], 2);
    assert_eq!(v["category"], "intrusion");
    // People's data found: PI, S1, awareness clock starts.
    let (_, v) = app
        .patch(
            &url,
            &json!({"affected_subjects": 2_000_000, "data_types": ["name", "id_number"]}),
        )
        .await;
    assert_eq!(v["facts_version"], 3);
    assert_eq!(
        (v["category"].as_str(), v["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    assert!(v["aware_at"].is_string());
    // Same facts again: no new version.
    let (_, v) = app
        .patch(&url, &json!({"affected_subjects": 2_000_000}))
        .await;
    assert_eq!(v["facts_version"], 3);
    // null clears.
    let (_, v) = app.patch(&url, &json!({"cause": null})).await;
    assert!(v["facts"].get("cause").is_none());
    assert_eq!(v["facts_version"], 4);
    // Refused with the field's path.
    for (body, path) in [
        (json!({"affected": 1}), "affected"),
        (
            json!({"data_types": ["phone", "shoe_size"]}),
            "data_types[1]",
        ),
        (json!({"affected_subjects": -3}), "affected_subjects"),
        (
            json!({"mitigation_effective": true}),
            "mitigation_justification",
        ),
        (json!({"jurisdictions": ["china"]}), "jurisdictions[0]"),
    ] {
        let (s, p) = app.patch(&url, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["path"], path, "{p}");
    }
    let (s, _) = app.patch(&url, &json!([1, 2])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let inc = app.incident(id).await;
    let versions: Vec<i64> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "incident.facts_updated")
        .map(|e| e["data"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [2, 3, 4]);
    app.stop().await;
}

async fn a_person_may_lower_severity_only_with_a_reason(app: TestApp) {
    let id = app.declare(&json!({"title": "Ransomware on fs01"})).await["id"]
        .as_i64()
        .unwrap();
    let url = format!("/api/v1/incidents/{id}");
    let (s, p) = app.patch(&url, &json!({"severity": "S4"})).await;
    assert_eq!(
        (s, p["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );
    let (s, v) = app
        .patch(
            &url,
            &json!({"severity": "S4", "reason": "test VM, no data"}),
        )
        .await;
    assert_eq!((s, v["severity"].as_str()), (StatusCode::OK, Some("S4")));
    // Raising needs no reason; retitling neither.
    let (s, _) = app
        .patch(
            &url,
            &json!({"severity": "S2", "title": "Ransomware on fs01 (HR share)"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // PI stays S1 whatever a person says, unless they change the category (with a reason).
    let pi = app
        .declare(&json!({"title": "x", "category": "pi_leak"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let pi_url = format!("/api/v1/incidents/{pi}");
    let (s, p) = app
        .patch(&pi_url, &json!({"severity": "S2", "reason": "small"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, p) = app
        .patch(&pi_url, &json!({"category": "intrusion", "severity": "S2"}))
        .await;
    assert_eq!(
        (s, p["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );
    let (s, v) = app
        .patch(&pi_url, &json!({"category": "intrusion", "severity": "S2", "reason": "no personal data was on the host"}))
        .await;
    assert_eq!(
        (s, v["category"].as_str(), v["severity"].as_str()),
        (StatusCode::OK, Some("intrusion"), Some("S2"))
    );
    let inc = app.incident(pi).await;
    let ev = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "incident.updated")
        .unwrap();
    assert_eq!(ev["data"]["reason"], "no personal data was on the host");
    assert_eq!(
        ev["data"]["changes"]["severity"],
        json!({"from": "S1", "to": "S2"})
    );
    // Moving a legal clock needs a reason too.
    let (s, _) = app
        .patch(&url, &json!({"discovered_at": "2026-11-20T00:00:00Z"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = app
        .patch(
            &url,
            &json!({"discovered_at": "2026-11-20T00:00:00Z", "reason": "logs show earlier access"}),
        )
        .await;
    assert_eq!(
        (s, v["discovered_at"].as_str()),
        (StatusCode::OK, Some("2026-11-20T00:00:00Z"))
    );
    let (s, p) = app.patch(&url, &json!({"status": "closed"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `status`"),
        "{p}"
    );
    app.stop().await;
}

async fn list_filters_and_paging(app: TestApp) {
    for i in 0..7 {
        app.declare(&json!({"title": format!("Trojan #{i}")})).await;
    }
    let pi = app
        .declare(&json!({"title": "leak", "category": "pi_leak"}))
        .await["id"]
        .as_i64()
        .unwrap();
    app.transition(pi, "false_positive", Some("test data"))
        .await;
    let (_, v) = app.get("/api/v1/incidents?limit=5").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
    assert_eq!(v["items"][0]["id"], pi, "newest first");
    let (_, v2) = app
        .get(&format!(
            "/api/v1/incidents?limit=5&cursor={}",
            v["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(v2["items"].as_array().unwrap().len(), 3);
    assert!(v2["next_cursor"].is_null());
    let (_, v) = app.get("/api/v1/incidents?open=true").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 7);
    let (_, v) = app.get("/api/v1/incidents?open=false").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = app
        .get("/api/v1/incidents?severity=S1&category=pi_leak&status=false_positive")
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    for q in [
        "severity=S9",
        "status=gone",
        "limit=0",
        "limit=9999",
        "open=maybe",
        "colour=red",
    ] {
        let (s, p) = app.get(&format!("/api/v1/incidents?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {p}");
        assert!(!p["detail"].as_str().unwrap().is_empty());
    }
    app.stop().await;
}
