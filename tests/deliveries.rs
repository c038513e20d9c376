//! Deliveries through the running daemon: the outbox, the dispatcher, retries, fallback, the
//! drill guard, signed webhooks and the inbox — against local HTTP servers that record exactly
//! what arrived.

use crate::common;

use std::time::Duration;

use common::sink::Sink;
use common::{ADMIN, Backend, RESPONDER, SITE, TestApp, VIEWER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "a-shared-secret-of-32-characters";

on_both_backends!(
    webhooks_are_signed_sent_once_and_recorded,
    enqueue_is_idempotent_and_refuses_bad_recipients,
    transient_failures_retry_then_die_and_fall_back,
    permanent_failures_die_at_once_with_the_providers_words,
    drills_reach_only_their_own_recipients,
    inbox_lists_and_marks_read_for_the_site_only,
    a_new_delivery_is_picked_up_without_polling,
    test_sends_go_end_to_end,
    voice_falls_back_to_sms_through_the_phone_gateway,
    templates_render_per_channel_and_locale_and_refuse_missing_facts,
    a_rate_limited_backlog_longer_than_the_lease_is_sent_once,
);

/// Config for webhook targets on `sink` and quick retries.
fn config(sink: &Sink, poll: &str) -> String {
    format!(
        r#"
[dispatch]
batch_size = 64
lease = "5s"
max_attempts = 3
backoff_base = "100ms"
backoff_max = "400ms"
poll_interval = "{poll}"

[[channels.webhooks]]
name = "chatops"
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[[channels.webhooks]]
name = "flaky"
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[[channels.webhooks]]
name = "refuses"
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[channels.site_webhook]
url = "{}"
secret = "{SECRET}"
timeout = "2s"
"#,
        sink.url("/chatops"),
        sink.url("/flaky"),
        sink.url("/refuses"),
        sink.url("/site/notices"),
    )
}

async fn start(backend: Backend, sink: &Sink, poll: &str) -> Option<TestApp> {
    TestApp::spawn_with(backend, &config(sink, poll)).await
}

async fn incident(app: &TestApp, drill: bool) -> i64 {
    app.declare(
        &json!({"title": "Customer records exposed", "category": "pi_leak", "drill": drill}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

/// A drill incident that may reach `recipients` ((channel, recipient), set by an admin). By
/// hand, a real incident's messages reach only the response team and configured webhook
/// targets (tests/security_sidedoors.rs); site users and other addresses are reached by hand
/// only in a drill, on its admin-set list.
async fn drill_reaching(app: &TestApp, recipients: &[(&str, &str)]) -> i64 {
    let id = incident(app, true).await;
    let list: Vec<Value> = recipients
        .iter()
        .map(|(c, r)| json!({"channel": c, "recipient": r}))
        .collect();
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/drill/recipients"),
            ADMIN,
            &json!({ "recipients": list }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    id
}

async fn enqueue(app: &TestApp, incident: i64, deliveries: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/incidents/{incident}/deliveries"),
        RESPONDER,
        &json!({ "deliveries": deliveries }),
    )
    .await
}

fn hook(target: &str, text: &str) -> Value {
    json!({"channel": "webhook", "recipient": target, "content": {"subject": "Incident", "text": text}})
}

fn count(v: &Value, status: &str) -> i64 {
    v["by_status"][status].as_i64().unwrap_or(0)
}

async fn webhooks_are_signed_sent_once_and_recorded(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = start(backend, &sink, "2s").await else {
        return;
    };
    let id = drill_reaching(
        &app,
        &[("webhook", "chatops"), ("site_webhook", "user-1001")],
    )
    .await;
    let (s, v) = enqueue(
        &app,
        id,
        json!([hook("chatops", "first"), hook("chatops", "second"), {
            "channel": "site_webhook", "recipient": "user-1001", "locale": "zh-CN",
            "content": {"subject": "关于您的个人信息安全的通知", "text": "我们发现……", "data": {"link": "https://example.com/n/1"}}
        }]),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let ids: Vec<i64> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let v = app.wait_deliveries(id, 10, |v| count(v, "sent") == 3).await;
    assert_eq!(v["by_channel"]["webhook"]["sent"], 2);
    assert_eq!(v["by_channel"]["site_webhook"]["sent"], 1);
    let rows = v["items"].as_array().unwrap();
    for d in rows {
        assert_eq!(d["attempts"], 1);
        assert!(
            d["provider_message_id"]
                .as_str()
                .unwrap()
                .starts_with("msg-"),
            "{d}"
        );
        assert!(d["sent_at"].is_string());
    }
    let site = rows
        .iter()
        .find(|d| d["channel"] == "site_webhook")
        .unwrap();
    assert_eq!(
        site["recipient"], "u*******1",
        "recipients are masked in listings"
    );

    let got = sink.received();
    assert_eq!(got.len(), 3, "each delivery reached the sink exactly once");
    for r in &got {
        r.assert_signed(SECRET);
        assert!(r.header("idempotency-key").is_some());
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let site_req = got
        .iter()
        .find(|r| r.path == "/site/notices")
        .unwrap()
        .json();
    assert_eq!(site_req["recipient"], "user-1001");
    assert_eq!(site_req["subject"], "关于您的个人信息安全的通知");
    assert_eq!(site_req["data"]["link"], "https://example.com/n/1");
    assert_eq!(site_req["incident_id"], id);
    assert_eq!(site_req["purpose"], "page");
    let texts: Vec<String> = got
        .iter()
        .filter(|r| r.path == "/chatops")
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .collect();
    assert!(texts.contains(&"first".to_string()) && texts.contains(&"second".to_string()));

    // The timeline records the enqueue and the outcome.
    let (_, tl) = app.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    let kinds: Vec<&str> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"deliveries.enqueued"), "{kinds:?}");
    assert!(kinds.contains(&"deliveries.recorded"), "{kinds:?}");
    let (s, one) = app.get(&format!("/api/v1/deliveries/{}", ids[0])).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["status"], "sent");
    app.stop().await;
}

async fn enqueue_is_idempotent_and_refuses_bad_recipients(backend: Backend) {
    let sink = Sink::start().await;
    sink.delay(Duration::from_millis(200));
    let Some(app) = start(backend, &sink, "2s").await else {
        return;
    };
    let id = incident(&app, false).await;
    let (_, a) = enqueue(&app, id, json!([hook("chatops", "same words")])).await;
    let (_, b) = enqueue(&app, id, json!([hook("chatops", "same words")])).await;
    assert_eq!(
        a["ids"], b["ids"],
        "the same delivery twice is one delivery"
    );
    let (_, c) = enqueue(
        &app,
        id,
        json!([{"channel": "webhook", "recipient": "chatops", "idempotency_key": "k-1", "content": {"text": "x"}},
               {"channel": "webhook", "recipient": "chatops", "idempotency_key": "k-1", "content": {"text": "y"}}]),
    )
    .await;
    assert_eq!(c["ids"][0], c["ids"][1], "{c}");
    // The same caller key on another incident is another message.
    let other = incident(&app, false).await;
    let (_, d) = enqueue(
        &app,
        other,
        json!([{"channel": "webhook", "recipient": "chatops", "idempotency_key": "k-1", "content": {"text": "x"}}]),
    )
    .await;
    assert_ne!(d["ids"][0], c["ids"][0], "{d}");

    let bad = [
        (
            json!({"channel": "sms", "recipient": "+86 154 0000 0000", "content": {"text": "x"}}),
            "deliveries[0].recipient",
            "is not a valid number for CN",
        ),
        (
            json!({"channel": "voice", "recipient": "+0800123", "content": {"text": "x"}}),
            "deliveries[0].recipient",
            "known country code",
        ),
        (
            json!({"channel": "email", "recipient": "not-an-address", "content": {"subject": "s", "text": "x"}}),
            "deliveries[0].recipient",
            "e-mail",
        ),
        (
            json!({"channel": "email", "recipient": "a@example.com", "content": {"text": "x"}}),
            "deliveries[0].content.subject",
            "subject",
        ),
        (
            json!({"channel": "webhook", "recipient": "chatops", "content": {"text": " "}}),
            "deliveries[0].content.text",
            "text",
        ),
        (
            json!({"channel": "webhook", "recipient": "chatops", "content": {"text": "x"},
                "fallback": [{"channel": "sms", "recipient": "12345", "content": {"text": "x"}}]}),
            "deliveries[0].fallback[0].recipient",
            "phone number",
        ),
    ];
    for (d, path, word) in bad {
        let (s, v) = enqueue(&app, id, json!([d])).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let text = v.to_string();
        assert!(
            text.contains(path) && text.contains(word),
            "{path}/{word}: {v}"
        );
    }
    // Our own format: unknown fields and unknown channels are refused with the path.
    let (s, v) = enqueue(
        &app,
        id,
        json!([{"channel": "fax", "recipient": "x", "content": {"text": "x"}}]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("fax"), "{v}");
    let (s, v) = enqueue(&app, id, json!([{"channel": "webhook", "recipient": "chatops", "content": {"text": "x"}, "colour": "red"}])).await;
    assert!(
        s.is_client_error() && v.to_string().contains("colour"),
        "{s} {v}"
    );
    // Not found, wrong role.
    let (s, _) = enqueue(&app, 999_999, json!([hook("chatops", "x")])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{id}/deliveries"),
            Some(VIEWER),
            Some(&json!({"deliveries": [hook("chatops", "x")]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let v = app.wait_deliveries(id, 10, |v| count(v, "sent") == 2).await;
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        2,
        "nothing refused was stored: {v}"
    );
    app.stop().await;
}

async fn transient_failures_retry_then_die_and_fall_back(backend: Backend) {
    let sink = Sink::start().await;
    sink.answer("/flaky", 503, "upstream busy");
    let Some(app) = start(backend, &sink, "2s").await else {
        return;
    };
    let id = drill_reaching(
        &app,
        &[
            ("webhook", "flaky"),
            ("webhook", "refuses"),
            ("inbox", "oncall-7"),
        ],
    )
    .await;
    let (s, v) = enqueue(
        &app,
        id,
        json!([{
            "channel": "webhook", "recipient": "flaky", "content": {"text": "page"},
            "fallback": [
                {"channel": "webhook", "recipient": "refuses", "content": {"text": "page via second"}},
                {"channel": "inbox", "recipient": "oncall-7", "content": {"subject": "Incident", "text": "page via inbox"}}
            ]
        }]),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    sink.answer("/refuses", 400, "{\"error\":\"unknown channel\"}");
    let v = app
        .wait_deliveries(id, 15, |v| count(v, "dead") == 2 && count(v, "sent") == 1)
        .await;
    let rows = v["items"].as_array().unwrap();
    let flaky = rows
        .iter()
        .find(|d| d["channel"] == "webhook" && d["fallback_of"].is_null())
        .unwrap();
    assert_eq!(flaky["attempts"], 3, "retried up to max_attempts: {flaky}");
    let err = flaky["last_error"].as_str().unwrap();
    assert!(
        err.contains("503") && err.contains("gave up after 3 attempts"),
        "{err}"
    );
    let second = rows
        .iter()
        .find(|d| d["fallback_of"] == flaky["id"])
        .unwrap();
    assert_eq!(second["attempts"], 1, "a 4xx is permanent: {second}");
    let inbox = rows.iter().find(|d| d["channel"] == "inbox").unwrap();
    assert_eq!(inbox["fallback_of"], second["id"]);
    assert_eq!(inbox["status"], "sent");
    assert_eq!(
        sink.received()
            .iter()
            .filter(|r| r.path == "/flaky")
            .count(),
        3
    );
    assert_eq!(
        sink.received()
            .iter()
            .filter(|r| r.path == "/refuses")
            .count(),
        1
    );

    let (s, n) = app
        .call(Method::GET, "/api/v1/inbox/oncall-7", Some(SITE), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{n}");
    assert_eq!(n["items"][0]["body"], "page via inbox");

    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("incidentd_deliveries_total")
                && l.contains("outcome=\"dead\"")
                && l.contains("channel=\"webhook\"")),
        "{metrics}"
    );
    assert!(
        metrics.contains("incidentd_delivery_queue_depth"),
        "{metrics}"
    );
    app.stop().await;
}

async fn permanent_failures_die_at_once_with_the_providers_words(backend: Backend) {
    let sink = Sink::start().await;
    sink.answer("/refuses", 422, "{\"error\":\"template not approved\"}");
    let Some(app) = start(backend, &sink, "2s").await else {
        return;
    };
    let id = incident(&app, false).await;
    // A target that does not exist is refused at the door, not left to die.
    let (s, v) = enqueue(
        &app,
        id,
        json!([{"channel": "webhook", "recipient": "nobody", "content": {"text": "x"}}]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v.to_string()
            .contains("no [[channels.webhooks]] target is named `nobody`"),
        "{v}"
    );
    let (s, v) = enqueue(
        &app,
        id,
        json!([{"channel": "sms", "recipient": "+8613800138000", "content": {"text": "x"}}]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("add [channels.sms]"), "{v}");
    // Notices reach people only through their approved campaign.
    let (s, v) = enqueue(&app, id, json!([{"channel": "webhook", "recipient": "chatops", "purpose": "notice", "content": {"text": "x"}}])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("deliveries[0].purpose"), "{v}");
    enqueue(&app, id, json!([hook("refuses", "x")])).await;
    let v = app.wait_deliveries(id, 10, |v| count(v, "dead") == 1).await;
    for d in v["items"].as_array().unwrap() {
        assert_eq!(d["attempts"], 1, "{d}");
        let e = d["last_error"].as_str().unwrap();
        assert!(
            e.contains("template not approved")
                || e.contains("no [[channels.webhooks]] target is named `nobody`"),
            "{e}"
        );
    }
    app.stop().await;
}

async fn drills_reach_only_their_own_recipients(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = start(backend, &sink, "2s").await else {
        return;
    };
    let drill = incident(&app, true).await;
    let real = incident(&app, false).await;
    // Only drills have lists, and only admins set them.
    let (s, _) = app
        .post(
            &format!("/api/v1/incidents/{real}/drill/recipients"),
            ADMIN,
            &json!({"recipients": [{"channel": "inbox", "recipient": "x"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .post(
            &format!("/api/v1/incidents/{drill}/drill/recipients"),
            RESPONDER,
            &json!({"recipients": []}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{drill}/drill/recipients"),
            ADMIN,
            &json!({"recipients": [{"channel": "inbox", "recipient": "drill-capture"}, {"channel": "webhook", "recipient": "chatops"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, v) = enqueue(
        &app,
        drill,
        json!([
            {"channel": "inbox", "recipient": "drill-capture", "purpose": "drill", "content": {"text": "drill notice"}},
            {"channel": "inbox", "recipient": "real-customer-1", "content": {"text": "drill notice"},
             "fallback": [{"channel": "webhook", "recipient": "chatops", "content": {"text": "fallback must not run"}}]},
            {"channel": "site_webhook", "recipient": "real-customer-2", "content": {"text": "drill notice"}},
            hook("chatops", "drill page"),
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let v = app
        .wait_deliveries(drill, 10, |v| {
            count(v, "sent") == 2 && count(v, "dead") == 2
        })
        .await;
    for d in v["items"].as_array().unwrap() {
        if d["status"] == "dead" {
            assert!(
                d["last_error"].as_str().unwrap().contains("drill guard"),
                "{d}"
            );
        }
    }
    // Nothing reached the real customers, and the guard's refusal did not fall back.
    let got = sink.received();
    assert_eq!(got.len(), 1, "only the allowed webhook: {got:?}");
    assert_eq!(got[0].path, "/chatops");
    let (_, n) = app
        .call(
            Method::GET,
            "/api/v1/inbox/real-customer-1",
            Some(SITE),
            None,
        )
        .await;
    assert_eq!(n["items"].as_array().unwrap().len(), 0);
    let (_, n) = app
        .call(Method::GET, "/api/v1/inbox/drill-capture", Some(SITE), None)
        .await;
    assert_eq!(n["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn inbox_lists_and_marks_read_for_the_site_only(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = start(backend, &sink, "2s").await else {
        return;
    };
    let id = drill_reaching(&app, &[("inbox", "user-42")]).await;
    let notice = |text: &str| {
        json!({"channel": "inbox", "recipient": "user-42", "locale": "zh-CN",
               "content": {"subject": "个人信息安全通知", "text": text, "data": {"incident": id}}})
    };
    enqueue(&app, id, json!([notice("第一条"), notice("第二条")])).await;
    app.wait_deliveries(id, 10, |v| count(v, "sent") == 2).await;
    let (s, v) = app
        .call(Method::GET, "/api/v1/inbox/user-42", Some(SITE), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let notices = v["items"].as_array().unwrap();
    assert_eq!(notices.len(), 2);
    assert!(
        notices[0]["id"].as_i64() > notices[1]["id"].as_i64(),
        "newest first"
    );
    let mut bodies: Vec<&str> = notices
        .iter()
        .map(|n| n["body"].as_str().unwrap())
        .collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["第一条", "第二条"]);
    assert_eq!(notices[0]["subject"], "个人信息安全通知");
    assert!(notices[0]["read_at"].is_null());
    let nid = notices[1]["id"].as_i64().unwrap();
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/inbox/user-42/{nid}/read"),
            Some(SITE),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = app
        .call(Method::GET, "/api/v1/inbox/user-42", Some(SITE), None)
        .await;
    assert!(v["items"][1]["read_at"].is_string());
    // Another user's notice is not there to mark; other roles may not read inboxes.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/inbox/user-43/{nid}/read"),
            Some(SITE),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(Method::GET, "/api/v1/inbox/user-42", Some(VIEWER), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn a_new_delivery_is_picked_up_without_polling(backend: Backend) {
    let sink = Sink::start().await;
    // A poll interval far beyond the test: only the commit's wake-up can explain a quick send
    // (the first may still be the dispatcher's pass at start; the next ones cannot).
    let Some(app) = start(backend, &sink, "1h").await else {
        return;
    };
    let id = incident(&app, false).await;
    for i in 0..3 {
        enqueue(&app, id, json!([hook("chatops", &format!("wake {i}"))])).await;
        common::wait_for(&format!("send {i} without a poll"), 5, async || {
            sink.count() > i
        })
        .await;
    }
    app.stop().await;
}

async fn test_sends_go_end_to_end(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = start(backend, &sink, "2s").await else {
        return;
    };
    let (s, v) = app
        .post(
            "/api/v1/deliveries/test",
            ADMIN,
            &json!({"channel": "site_webhook", "to": "ops-check"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let did = v["ids"][0].as_i64().unwrap();
    let d = common::wait_until("the test send", 10, async || {
        let (_, d) = app.get(&format!("/api/v1/deliveries/{did}")).await;
        (d["status"] == "sent").then_some(d)
    })
    .await;
    assert_eq!(d["purpose"], "test");
    assert!(
        sink.received()[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("test message")
    );
    let (s, _) = app
        .post(
            "/api/v1/deliveries/test",
            RESPONDER,
            &json!({"channel": "sms", "to": "+8613800000000"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "test sends are for admins");
    let (s, v) = app
        .post(
            "/api/v1/deliveries/test",
            ADMIN,
            &json!({"channel": "sms", "to": "138"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    app.stop().await;
}

async fn voice_falls_back_to_sms_through_the_phone_gateway(backend: Backend) {
    let sink = Sink::start().await;
    sink.answer(
        "/voice",
        400,
        "{\"error\":\"number not reachable by voice\"}",
    );
    let extra = format!(
        "{}\n[channels.sms]\nprovider = \"generic_http\"\nbase_url = \"{}\"\ntimeout = \"2s\"\nfrom = \"INCIDENTD\"\n\n\
         [channels.voice]\nprovider = \"generic_http\"\nbase_url = \"{}\"\ntimeout = \"2s\"\n",
        config(&sink, "2s"),
        sink.url("/sms"),
        sink.url("/voice")
    );
    let Some(app) = TestApp::spawn_with(backend, &extra).await else {
        return;
    };
    let id = drill_reaching(
        &app,
        &[("voice", "+8613800138000"), ("sms", "+8613800138000")],
    )
    .await;
    let (s, v) = enqueue(
        &app,
        id,
        json!([{
            "channel": "voice", "recipient": "+86 138 0013 8000", "locale": "zh-CN",
            "content": {"text": "安全事件：客户数据泄露，请立即处理。"},
            "fallback": [{"channel": "sms", "recipient": "13800138000",
                          "content": {"text": "【安全】S1 事件：客户数据泄露，请立即确认。", "template": "page/incident_opened"}}]
        }]),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let v = app
        .wait_deliveries(id, 10, |v| count(v, "dead") == 1 && count(v, "sent") == 1)
        .await;
    assert_eq!(v["by_channel"]["voice"]["dead"], 1, "{v}");
    assert_eq!(v["by_channel"]["sms"]["sent"], 1, "{v}");
    let got = sink.received();
    let voice = got.iter().find(|r| r.path == "/voice").unwrap().json();
    assert_eq!(
        voice["to"], "+8613800138000",
        "normalised to E.164 at enqueue"
    );
    assert_eq!(voice["kind"], "voice");
    let sms = got.iter().find(|r| r.path == "/sms").unwrap().json();
    assert_eq!(sms["kind"], "sms");
    assert_eq!(
        sms["to"], "+8613800138000",
        "a national number is read in the organisation's default region (CN)"
    );
    assert_eq!(sms["text"], "【安全】S1 事件：客户数据泄露，请立即确认。");
    assert_eq!(sms["template"], "page/incident_opened");
    assert_eq!(sms["from"], "INCIDENTD");
    assert_eq!(got.len(), 2);
    app.stop().await;
}

async fn templates_render_per_channel_and_locale_and_refuse_missing_facts(backend: Backend) {
    let sink = Sink::start().await;
    let extra = format!(
        "{}\n[channels.sms]\nprovider = \"generic_http\"\nbase_url = \"{}\"\ntimeout = \"2s\"\n",
        config(&sink, "2s"),
        sink.url("/sms")
    );
    let Some(app) = TestApp::spawn_with(backend, &extra).await else {
        return;
    };
    let id = app
        .declare(&json!({"title": "订单库被拖库", "category": "pi_leak", "drill": true}))
        .await["id"]
        .as_i64()
        .unwrap();
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/drill/recipients"),
            ADMIN,
            &json!({"recipients": [{"channel": "site_webhook", "recipient": "user-7"},
                                   {"channel": "sms", "recipient": "+8613800138000"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    // A notice may not go out while what it must tell people is unknown.
    let notice = json!([{"channel": "site_webhook", "recipient": "user-7",
                         "template": "notice/pi_leak", "locale": "en", "recipient_name": "Li Lei"}]);
    let (s, v) = enqueue(&app, id, notice.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let text = v.to_string();
    assert!(
        text.contains("deliveries[0].template") && text.contains("notice/pi_leak"),
        "{v}"
    );
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({
                "cause": "A backup server was exposed to the internet.",
                "impact": "Names and phone numbers may be misused for fraud calls.",
                "data_types": ["name", "phone"],
                "measures_taken": "The server was taken offline and credentials rotated.",
                "advice_to_subjects": "Be wary of calls claiming to be from us.",
                "remedies": "Free identity monitoring for one year.",
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = enqueue(&app, id, notice).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, v) = enqueue(
        &app,
        id,
        json!([{"channel": "sms", "recipient": "+8613800138000", "template": "page/incident_opened"}]),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.wait_deliveries(id, 10, |v| count(v, "sent") == 2).await;
    let got = sink.received();
    let site = got
        .iter()
        .find(|r| r.path == "/site/notices")
        .unwrap()
        .json();
    assert_eq!(site["locale"], "en");
    assert_eq!(site["template"], "notice/pi_leak");
    let body = site["text"].as_str().unwrap();
    for words in [
        "Li Lei",
        "Free identity monitoring",
        "taken offline",
        "Be wary of calls",
        "privacy@test.example",
    ] {
        assert!(body.contains(words), "notice lacks `{words}`: {body}");
    }
    assert!(
        site["subject"].as_str().unwrap().contains("Test Co."),
        "{site}"
    );
    // The organisation's default locale (zh-CN) for the page; SMS gets its own part and params.
    let sms = got.iter().find(|r| r.path == "/sms").unwrap().json();
    assert_eq!(sms["locale"], "zh-CN");
    assert!(
        sms["text"]
            .as_str()
            .unwrap()
            .contains(&format!("安全事件#{id}")),
        "{sms}"
    );
    assert_eq!(sms["params"]["id"], id.to_string());
    assert_eq!(sms["params"]["severity"], "S1");
    app.stop().await;
}

/// A backlog a rate-limited channel needs longer than the lease to send: claims that would run
/// out while queued are given back, never sent twice, and everything arrives once.
async fn a_rate_limited_backlog_longer_than_the_lease_is_sent_once(backend: Backend) {
    let sink = Sink::start().await;
    let extra = format!(
        "[dispatch]\nbatch_size = 8\nlease = \"2s\"\nmax_attempts = 3\npoll_interval = \"200ms\"\n\n\
         [channels.site_webhook]\nurl = \"{}\"\nsecret = \"{SECRET}\"\ntimeout = \"1s\"\nconcurrency = 1\nrate_per_second = 4\n",
        sink.url("/site")
    );
    let Some(app) = TestApp::spawn_with(backend, &extra).await else {
        return;
    };
    let users: Vec<String> = (0..16).map(|i| format!("user-{i}")).collect();
    let list: Vec<(&str, &str)> = users.iter().map(|u| ("site_webhook", u.as_str())).collect();
    let id = drill_reaching(&app, &list).await;
    let ds: Vec<Value> = (0..16)
        .map(|i| json!({"channel": "site_webhook", "recipient": format!("user-{i}"), "content": {"text": "x"}}))
        .collect();
    let (s, v) = enqueue(&app, id, json!(ds)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let v = app
        .wait_deliveries(id, 30, |v| count(v, "sent") == 16)
        .await;
    let mut keys: Vec<String> = sink
        .received()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!((keys.len(), n), (16, 16), "each delivery sent once: {v}");
    app.stop().await;
}
