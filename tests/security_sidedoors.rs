//! Side doors around the approval gates (issue #17: M1, M2, M3, L1, L6), through the running
//! daemon on both backends: a page by hand reaches only the response team; a campaign sends
//! only a checked notice; SMS/voice parameters are data, not text an alert can write into; an
//! alert's words never become public text by themselves; a caller without the role gets 403
//! before their body is read.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::sink::Sink;
use common::smtp::Smtp;
use common::{ADMIN, Backend, RESPONDER, SITE, TestApp, VIEWER, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "a-shared-secret-of-32-characters";
const LEGAL: &str = "test-legal-approver-token";
const KEY: &str = "t1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

on_both_backends!(
    a_page_by_hand_reaches_only_the_team_and_configured_targets,
    a_campaign_sends_only_a_notice_template_that_passes_the_lint,
    an_alert_title_cannot_add_or_change_sms_template_parameters,
);

/// Stories on a daemon with the plain test configuration.
mod plain {
    use super::{
        a_caller_without_the_role_gets_403_before_the_body_is_read,
        an_alerts_words_stay_internal_until_a_responder_writes_the_public_text,
    };
    crate::both_backends!(
        an_alerts_words_stay_internal_until_a_responder_writes_the_public_text,
        a_caller_without_the_role_gets_403_before_the_body_is_read,
    );
}

/// The shipped playbooks' six departments, one on-call each (e-mail and phone).
fn team() -> String {
    common::departments("1h", |n, d| {
        vec![common::Member::on_call(n, d).oncall_email(d).lead()]
    })
}

/// Templates and playbooks as shipped (or `templates`), quick dispatch, and the team.
fn base(templates: &Path, extra: &str) -> String {
    format!(
        r#"
{}
[dispatch]
lease = "5s"
poll_interval = "200ms"
backoff_base = "100ms"
backoff_max = "200ms"
max_attempts = 2

{extra}
{}
"#,
        common::paths(&[("templates", templates)]),
        team()
    )
}

async fn deliveries(app: &TestApp, id: i64, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/incidents/{id}/deliveries"),
        RESPONDER,
        &json!({ "deliveries": body }),
    )
    .await
}

/// M1: by hand, a responder pages the joint team — its members on the contacts the
/// configuration gives them — and configured webhook targets; anything else (an outside
/// address, another phone, a site user's inbox, the public site's webhook) is refused with a
/// 422 that points to the approved notice campaign, and nothing of it is stored or sent.
async fn a_page_by_hand_reaches_only_the_team_and_configured_targets(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let extra = format!(
        r#"
[channels.email]
smtp_url = "{}"
from = "Security <security@example.com>"
timeout = "2s"

[channels.sms]
provider = "generic_http"
base_url = "{}"
timeout = "2s"

[channels.site_webhook]
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[[channels.webhooks]]
name = "chatops"
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[[channels.webhooks]]
name = "public-site"
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[announcements]
webhook = "public-site"

[paging.channels]
S1 = ["email"]
S2 = ["email"]
S3 = ["email"]
S4 = ["email"]
"#,
        smtp.url(),
        sink.url("/sms"),
        sink.url("/site"),
        sink.url("/chatops"),
        sink.url("/public"),
    );
    let Some(app) =
        TestApp::spawn_with(backend, &base(&common::repo().join("templates"), &extra)).await
    else {
        return;
    };
    let id = app
        .declare(&json!({"title": "Ransomware on a build server", "category": "malware"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let html = json!({"subject": "Your account", "text": "Log in here", "html": "<a href=\"https://evil.example\">Log in</a>"});
    let refused = [
        (
            json!({"channel": "email", "recipient": "victim@external.example", "content": html}),
            "deliveries[0].recipient",
            "notice campaign",
        ),
        (
            json!({"channel": "inbox", "recipient": "user-1001", "content": {"subject": "Notice", "text": "x"}}),
            "deliveries[0].recipient",
            "notice campaign",
        ),
        (
            json!({"channel": "site_webhook", "recipient": "user-1001", "content": {"subject": "Notice", "text": "x"}}),
            "deliveries[0].recipient",
            "notice campaign",
        ),
        (
            json!({"channel": "sms", "recipient": "+8613811112222", "content": {"text": "x"}}),
            "deliveries[0].recipient",
            "notice campaign",
        ),
        (
            json!({"channel": "webhook", "recipient": "public-site", "content": {"text": "We were hacked"}}),
            "deliveries[0].recipient",
            "reserved for the public announcement",
        ),
        (
            json!({"channel": "email", "recipient": "security-oncall@example.com",
                   "content": {"subject": "Page", "text": "x"},
                   "fallback": [{"channel": "email", "recipient": "victim@external.example",
                                 "content": {"subject": "Page", "text": "x"}}]}),
            "deliveries[0].fallback[0].recipient",
            "notice campaign",
        ),
    ];
    for (d, path, words) in refused {
        let (s, v) = deliveries(&app, id, json!([d])).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{d}: {v}");
        assert_eq!(v["path"], path, "{v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{detail}");
        if words == "notice campaign" {
            assert!(
                detail.contains(&format!("/api/v1/incidents/{id}/notices")),
                "{detail}"
            );
        }
    }
    // One refused delivery refuses the request: nothing of it is stored.
    let (s, v) = deliveries(
        &app,
        id,
        json!([
            {"channel": "webhook", "recipient": "chatops", "content": {"text": "fine"}},
            {"channel": "email", "recipient": "victim@external.example", "content": html},
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["path"], "deliveries[1].recipient", "{v}");

    // The team, on its configured contacts (an address's case does not matter), and chatops.
    let (s, v) = deliveries(
        &app,
        id,
        json!([
            {"channel": "email", "recipient": "Legal-OnCall@Example.com",
             "content": {"subject": "Page by hand", "text": "Please join the bridge."}},
            {"channel": "sms", "recipient": "+86 139 0000 0101", "content": {"text": "Please join the bridge."}},
            {"channel": "webhook", "recipient": "chatops", "content": {"text": "Bridge is open."}},
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let ids: Vec<i64> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect();
    for d in &ids {
        wait_for(&format!("delivery {d} sent"), 15, async || {
            let (_, v) = app.get(&format!("/api/v1/deliveries/{d}")).await;
            v["status"] == "sent"
        })
        .await;
    }
    // Nobody outside was reached, on any channel.
    let outsiders: Vec<Value> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.to_string().contains("external.example"))
        .collect();
    assert!(outsiders.is_empty(), "{outsiders:?}");
    let paths: Vec<String> = sink.received().iter().map(|r| r.path.clone()).collect();
    assert!(
        !paths.iter().any(|p| p == "/site" || p == "/public"),
        "{paths:?}"
    );
    assert!(
        !sink
            .received()
            .iter()
            .any(|r| r.path == "/sms" && r.json()["to"] == "+8613811112222"),
        "the stranger's phone"
    );
    let (s, inbox) = app
        .call(Method::GET, "/api/v1/inbox/user-1001", Some(SITE), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{inbox}");
    assert_eq!(inbox["items"].as_array().unwrap().len(), 0, "{inbox}");
    app.stop().await;
}

/// The shipped templates plus `extra` files, in a folder of their own.
fn templates_with(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = common::repo().join("templates");
    for kind in std::fs::read_dir(&from).unwrap() {
        let kind = kind.unwrap().path();
        let to = dir.path().join(kind.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(&kind).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    for (path, text) in extra {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

/// A notice that renders but tells people next to nothing the law requires.
const THIN_NOTICE: &str = "{{!-- subject --}}\nA notice\n{{!-- text --}}\nSomething happened at {{org.name}}.\n{{!-- sms --}}\nSomething happened at {{org.name}}.\n";

/// M2: a campaign sends a notice — a `notice/*` template that exists and passes the notice
/// content lint — or it is not created at all (so there is nothing for the gate to approve).
async fn a_campaign_sends_only_a_notice_template_that_passes_the_lint(backend: Backend) {
    let sink = Sink::start().await;
    let templates = templates_with(&[
        ("notice/thin.zh-CN.hbs", THIN_NOTICE),
        ("notice/thin.en.hbs", THIN_NOTICE),
    ]);
    let extra = [
        common::phone_gateways(&sink, &["sms"]),
        common::page_every_severity_by(r#"["sms"]"#),
        common::approver("legal-approver", LEGAL, "legal"),
        format!("\n[subjects]\nkey = \"{KEY}\"\n"),
    ]
    .concat();
    let Some(app) = TestApp::spawn_with(backend, &base(templates.path(), &extra)).await else {
        return;
    };
    let id = app
        .declare(&json!({
            "title": "会员库备份被下载",
            "category": "pi_leak",
            "facts": {
                "cause": "A database backup was left publicly readable.",
                "impact": "Names and phone numbers may be used for fraud calls.",
                "data_types": ["name", "phone"],
                "measures_taken": "The backup was removed and access keys rotated.",
                "advice_to_subjects": "Beware of calls claiming to be from us.",
                "remedies": "Free identity monitoring for a year.",
            }
        }))
        .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/incidents/{id}/notices");
    for (template, words) in [
        ("page/incident_opened", "is not a notice to individuals"),
        ("regulator/cn_initial", "is not a notice to individuals"),
        ("notice/nope", "there is no template `notice/nope`"),
        ("nope", "is not a notice to individuals"),
    ] {
        let (s, v) = app
            .post(
                &path,
                RESPONDER,
                &json!({"channels": ["sms"], "template": template}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{template}: {v}");
        assert_eq!(v["path"], "template", "{v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{template}: {detail}");
        assert!(
            detail.contains("notice/pi_leak"),
            "names the notices: {detail}"
        );
    }
    let (s, v) = app
        .post(
            &path,
            RESPONDER,
            &json!({"channels": ["sms"], "template": "notice/thin"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("fails the notice content check"),
        "{detail}"
    );
    assert!(
        detail.contains("thin.en.hbs") && detail.contains("cause"),
        "says what is missing where: {detail}"
    );
    assert!(
        !detail.contains(&templates.path().display().to_string()),
        "no server paths: {detail}"
    );
    let (s, list) = app.get(&path).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["items"], json!([]), "nothing was created to approve");
    // The configured notice goes through (and waits for its approval).
    let (s, c) = app
        .post(&path, RESPONDER, &json!({"channels": ["sms"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["template"], "notice/pi_leak", "{c}");
    assert_eq!(c["status"], "awaiting_approval", "{c}");
    app.stop().await;
}

/// `key=value` pairs of an `application/x-www-form-urlencoded` body.
fn form(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .unwrap()
            .into_owned()
    };
    String::from_utf8(body.to_vec())
        .unwrap()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// M3: the parameters a template-only provider (Aliyun here, on a local server that records
/// the exact request) receives are built from the incident as data: a title with line breaks
/// and `key=value` in it is the `title` parameter, whole; `id` and `severity` stay the
/// incident's.
async fn an_alert_title_cannot_add_or_change_sms_template_parameters(backend: Backend) {
    let sink = Sink::start().await;
    sink.answer(
        "/aliyun/",
        200,
        r#"{"Message":"OK","RequestId":"F655A8D5","Code":"OK","BizId":"900619746936498440^0"}"#,
    );
    let extra = format!(
        r#"
[channels.sms]
provider = "aliyun"
base_url = "{}"
key_id = "testId"
key_secret = "testSecret"
sign_name = "安全测试"
timeout = "2s"
[channels.sms.templates]
"page/incident_opened" = "SMS_71390007"

[paging.channels]
S1 = ["sms"]
S2 = ["sms"]
S3 = ["sms"]
S4 = ["sms"]
"#,
        sink.url("/aliyun/"),
    );
    let Some(app) =
        TestApp::spawn_with(backend, &base(&common::repo().join("templates"), &extra)).await
    else {
        return;
    };
    let title = "拖库 x\nid=999\nseverity=S4";
    let v = app
        .alerts(&json!({
            "source": "dlp", "title": title, "fingerprint": "m3",
            "facts": {"affected_subjects": 1200, "data_types": ["phone", "id_number"]}
        }))
        .await;
    let id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let inc = app.incident(id).await;
    assert_eq!(inc["severity"], "S1", "{inc}");
    let security = common::phone(1, 1).trim_start_matches("+86").to_string();
    let mut request = BTreeMap::new();
    wait_for("security's page at the provider", 15, async || {
        if let Some(r) = sink
            .received()
            .iter()
            .map(|r| form(&r.body))
            .find(|f| f.get("PhoneNumbers") == Some(&security))
        {
            request = r;
        }
        !request.is_empty()
    })
    .await;
    assert_eq!(request["Action"], "SendSms");
    assert_eq!(request["TemplateCode"], "SMS_71390007");
    let params: BTreeMap<String, String> = serde_json::from_str(&request["TemplateParam"]).unwrap();
    let expected: BTreeMap<String, String> = [
        ("drill", String::new()),
        ("id", id.to_string()),
        ("severity", "S1".to_string()),
        ("title", "拖库 x id=999 severity=S4".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(params, expected, "{}", request["TemplateParam"]);
    app.stop().await;
}

/// L1: the cause and impact an alert sender writes are kept as internal text: the public
/// announcement (and notices) refuse until a responder writes the public version, and then show
/// the responder's words, never the alert's. Regulators (internal) still read the alert's.
async fn an_alerts_words_stay_internal_until_a_responder_writes_the_public_text(app: TestApp) {
    let internal_cause = "svc-backup exported crm.customers to 198.51.100.7";
    let internal_impact = "Internal estimate: every VIP customer, see ticket SEC-4411";
    let v = app
        .alerts(&json!({
            "source": "dlp", "title": "Customer table exported", "fingerprint": "l1",
            "facts": {"affected_subjects": 1200, "data_types": ["phone"],
                      "cause": internal_cause, "impact": internal_impact}
        }))
        .await;
    let id = v["alerts"][0]["incident_id"].as_i64().unwrap();
    let inc = app.incident(id).await;
    assert_eq!(
        inc["facts"]["cause"],
        json!({"internal": internal_cause, "public": ""}),
        "{inc}"
    );
    assert_eq!(inc["facts"]["impact"]["internal"], internal_impact, "{inc}");
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &common::both_languages(json!({
                "measures_taken": "We closed public access and rotated the access keys.",
                "advice_to_subjects": "Be wary of calls claiming to be from us.",
                "remedies": "Twelve months of free account-login alerts.",
            })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let path = format!("/api/v1/incidents/{id}/announcement");
    let (s, v) = app
        .post(&path, RESPONDER, &json!({"reason": "many affected"}))
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "the alert's words are not public: {v}"
    );
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("cause") && detail.contains("impact"),
        "{detail}"
    );
    assert!(!detail.contains("svc-backup"), "{detail}");

    // A responder writes the public text (keeping the alert's as the internal version).
    let public_cause = "A copy of our customer database was made without authorisation.";
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({
                "cause": {"internal": internal_cause,
                          "public": {"zh-CN": "客户数据库的一份副本被未经授权复制。", "en": public_cause}},
                "impact": {"zh-CN": "手机号可能被用于诈骗电话。", "en": "Phone numbers may be used for scam calls."},
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(&path, RESPONDER, &json!({"reason": "many affected"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let task = v["approval_task"].as_i64().unwrap();
    let (s, t) = app
        .post(
            &format!("/api/v1/approvals/{task}/approve"),
            ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let slug = v["slug"].as_str().unwrap();
    let res = app
        .http
        .get(app.url(&format!("/announcements/{slug}?lang=en")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains(public_cause), "{page}");
    assert!(
        !page.contains("svc-backup") && !page.contains("SEC-4411"),
        "{page}"
    );
    app.stop().await;
}

/// L6: every route that changes something checks the caller's role from the request head,
/// before the body is read: a viewer gets 403, not 400 for a malformed body or 413 for an
/// oversized one. The routes come from the daemon's own OpenAPI document, so a new route is
/// covered as soon as it exists.
async fn a_caller_without_the_role_gets_403_before_the_body_is_read(app: TestApp) {
    let (s, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let mut routes: Vec<(Method, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for m in ["post", "put", "patch", "delete"] {
            if ops.get(m).is_some() {
                let concrete: String = path
                    .split('/')
                    .map(|seg| if seg.starts_with('{') { "1" } else { seg })
                    .collect::<Vec<_>>()
                    .join("/");
                routes.push((m.to_uppercase().parse().unwrap(), concrete));
            }
        }
    }
    assert!(routes.len() >= 25, "{routes:?}");
    // Larger than [server] max_body_bytes (64 KiB in tests), smaller than what is cut at once.
    let oversized = format!("{{\"x\": \"{}\"}}", "a".repeat(200_000));
    let mut wrong = Vec::new();
    for (method, path) in &routes {
        for (what, body) in [
            ("malformed", "{\"deliveries\": [".to_string()),
            ("oversized", oversized.clone()),
        ] {
            let res = app
                .raw(method.clone(), path, Some(VIEWER), "application/json", body)
                .await;
            if res.status() != StatusCode::FORBIDDEN {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                wrong.push(format!("{method} {path} ({what}): {status} {text}"));
            } else {
                let v: Value = res.json().await.unwrap();
                assert!(v["detail"].as_str().unwrap().contains("viewer"), "{v}");
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a viewer must get 403 before the body is parsed:\n{}",
        wrong.join("\n")
    );
    // Without a token at all: 401, also before the body.
    let res = app
        .raw(
            Method::POST,
            "/api/v1/incidents",
            None,
            "application/json",
            oversized,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
