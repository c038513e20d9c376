//! Telling affected people, through the running daemon: streamed subject imports checked row by
//! row, contacts encrypted at rest and masked, notice campaigns gated by Legal's approval and
//! delivered once per person and channel to local servers, per-subject proof, the purge.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::sink::Sink;
use common::{Backend, Daemon, RESPONDER, SITE, TestApp, VIEWER, wait_for, wait_until};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LEGAL: &str = "test-legal-approver-token";
const KEY: &str = "t1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

on_both_backends!(
    imports_keep_good_rows_and_report_the_bad_ones,
    bad_uploads_are_refused_with_a_reason,
    a_campaign_waits_for_legal_then_tells_everyone_once,
    first_reachable_falls_back_when_a_channel_dies,
    contacts_are_purged_after_the_retention_period,
    an_exemption_approved_by_legal_sends_nothing,
    when_few_can_be_reached_the_announcement_is_published_and_linked,
    a_campaign_killed_midway_resumes_without_repeating_or_skipping_anyone,
    follow_up_campaigns_reach_the_unreached_and_never_repeat_words,
    notice_to_individuals_is_met_when_everyone_reachable_is_told,
    a_jurisdiction_column_sets_each_jurisdictions_count,
);

/// The PI playbook's joint team, SMS and voice to `sink`, the contact key, and `extra`.
fn config(sink: &Sink, extra: &str) -> String {
    let mut c = format!(
        r#"
{}
[dispatch]
lease = "5s"
poll_interval = "200ms"
backoff_base = "100ms"
backoff_max = "200ms"
max_attempts = 2
{}{}{}
[notices]
batch = 3
{extra}
"#,
        common::paths(&[]),
        common::phone_gateways(sink, &["sms", "voice"]),
        common::page_every_severity_by(r#"["voice"]"#),
        common::approver("legal-approver", LEGAL, "legal"),
    );
    if !extra.contains("[subjects]") {
        c.push_str(&format!("\n[subjects]\nkey = \"{KEY}\"\n"));
    }
    c.push_str(&common::departments("1h", |n, d| {
        vec![common::Member::on_call(n, d).lead()]
    }));
    c
}

async fn declare_pi(app: &TestApp) -> i64 {
    app.declare(&json!({
        "title": "会员库备份被下载",
        "category": "pi_leak",
        "facts": common::both_languages(json!({
            "cause": "A database backup was left publicly readable.",
            "impact": "Names and phone numbers may be used for fraud calls.",
            "data_types": ["name", "phone"],
            "measures_taken": "The backup was removed and access keys rotated.",
            "advice_to_subjects": "Beware of calls claiming to be from us.",
            "remedies": "Free identity monitoring for a year.",
        })),
    }))
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn upload(app: &TestApp, id: i64, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let res = app
        .raw(
            Method::POST,
            &format!("/api/v1/incidents/{id}/subjects"),
            Some(RESPONDER),
            content_type,
            body,
        )
        .await;
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn problem(report: &Value, line: u64) -> &Value {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["line"] == line)
        .unwrap_or_else(|| panic!("no problem on line {line}: {report:#}"))
}

async fn imports_keep_good_rows_and_report_the_bad_ones(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let mut csv = b"subject_id,name,phone,email,site_user_id,locale,channels\n".to_vec();
    csv.extend_from_slice(
        "u1,张三,+86 138 0000 0001,zhang@example.com,site-1,zh-CN,\n\
         u2,\"Lee, Ann\",,ann@example.com,,en,email\n\
         u3,Bad Phone,+86 154 0000 0000,,,,\n\
         u4,Bad Mail,,not-an-address,,,\n\
         u5,Fax,,,site-5,,fax\n\
         u1,Again,+8613800000009,,,,\n\
         u6,Too,few\n\
         u7,Unknown Locale,+8613800000007,,,fr-FR,sms;email\n\
         u8,Nobody,,,,,\n"
            .as_bytes(),
    );
    // A row saved in GBK: 李四 is not UTF-8.
    csv.extend_from_slice(b"u9,\xc0\xee\xcb\xc4,+8613800000010,,,,\n");
    // A national number, read in the organisation's default region (CN).
    csv.extend_from_slice(b"u10,Last Row,138 0000 0011,,,en,sms");
    let (s, r) = upload(&app, id, "text/csv", csv).await;
    assert_eq!(s, StatusCode::OK, "{r:#}");
    assert_eq!(r["status"], "done");
    assert_eq!(r["rows"], 11, "{r:#}");
    assert_eq!(r["accepted"], 5, "u1 u2 u7 u8 u10: {r:#}");
    assert_eq!(r["inserted"], 5);
    assert_eq!(r["rejected"], 6, "{r:#}");
    assert!(
        problem(&r, 4)["reason"]
            .as_str()
            .unwrap()
            .contains("phone: `+86154****0000` is not a valid number for CN"),
        "{r:#}"
    );
    assert!(problem(&r, 5)["reason"].as_str().unwrap().contains("email"));
    assert!(
        problem(&r, 6)["reason"]
            .as_str()
            .unwrap()
            .contains("`fax` is not a channel")
    );
    assert!(
        problem(&r, 7)["reason"]
            .as_str()
            .unwrap()
            .contains("duplicate")
    );
    assert!(
        problem(&r, 8)["reason"]
            .as_str()
            .unwrap()
            .contains("3 fields")
    );
    assert!(
        problem(&r, 9)["kind"] == "warning",
        "unknown locale falls back: {r:#}"
    );
    assert!(
        problem(&r, 11)["reason"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );
    assert!(
        problem(&r, 11)["reason"]
            .as_str()
            .unwrap()
            .contains("GB18030")
    );
    assert_eq!(r["reachable"]["sms"], 3, "u1 u7 u10: {r:#}");
    assert_eq!(
        r["reachable"]["email"], 2,
        "u1 u2 (u7 lists email but has none)"
    );
    assert_eq!(r["reachable"]["inbox"], 1);
    assert_eq!(r["unreachable"], 1, "u8");
    assert_eq!(r["subjects_total"], 5);
    // The facts follow: five people affected (at least).
    assert_eq!(app.incident(id).await["facts"]["affected_subjects"], 5);

    // Listings are masked; the database holds no plaintext contact.
    let (_, list) = app.get(&format!("/api/v1/incidents/{id}/subjects")).await;
    let text = list.to_string();
    for secret in ["13800000001", "zhang@example.com", "张三", "Lee, Ann"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(list["total"], 5);
    assert_eq!(list["items"][0]["name"], "张*");
    let dump = dump_subjects(&app).await;
    for secret in ["13800000001", "zhang@example.com", "张三", "Ann"] {
        assert!(!dump.contains(secret), "{secret} stored in clear: {dump}");
    }

    // Again, as NDJSON: existing subjects are updated, never duplicated; unknown fields refused.
    let nd = "{\"subject_id\":\"u1\",\"name\":\"张三\",\"phone\":\"+8613800000001\",\"channels\":[\"sms\"]}\n\
              {\"subject_id\":\"u11\",\"email\":\"new@example.com\"}\n\
              {\"subject_id\":\"u12\",\"mobile\":\"+8613800000012\"}\n\
              not json\n";
    let (s, r) = upload(&app, id, "application/x-ndjson", nd.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::OK, "{r:#}");
    assert_eq!(
        (r["inserted"].as_u64(), r["updated"].as_u64()),
        (Some(1), Some(1)),
        "{r:#}"
    );
    assert!(
        problem(&r, 3)["reason"]
            .as_str()
            .unwrap()
            .contains("mobile")
    );
    assert_eq!(problem(&r, 4)["kind"], "rejected");
    assert_eq!(r["subjects_total"], 6);
    let (_, u1) = app
        .get(&format!("/api/v1/incidents/{id}/subjects/u1"))
        .await;
    assert_eq!(u1["subject"]["channels"], json!(["sms"]));
    assert_eq!(u1["subject"]["phone"], "+86138****0001");
    let (_, u10) = app
        .get(&format!("/api/v1/incidents/{id}/subjects/u10"))
        .await;
    assert_eq!(u10["subject"]["phone"], "+86138****0011", "stored in E.164");
    // The audit trail has the counts, not the contacts.
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    let imported: Vec<&Value> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "subjects.imported")
        .collect();
    assert_eq!(imported.len(), 2);
    assert!(!tl.to_string().contains("13800000001"));
    app.stop().await;
}

/// Every subject row as stored, all columns, as text.
async fn dump_subjects(app: &TestApp) -> String {
    let rows = common::query_text(
        app.backend,
        &app.store_url,
        "SELECT subject_id, name_enc, phone_enc, email_enc, name_mask, phone_mask, email_mask FROM subjects",
    )
    .await;
    format!("{rows:?}")
}

async fn bad_uploads_are_refused_with_a_reason(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let (s, v) = upload(&app, id, "application/json", b"[]".to_vec()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("text/csv"));
    let (s, v) = upload(&app, id, "text/csv", b"subject_id,mobile\nu1,1\n".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("unknown column `mobile`"),
        "{v}"
    );
    let (s, v) = upload(&app, id, "text/csv", b"\xd3\xc3\xbb\xa7,phone\n".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("UTF-8"), "{v}");
    let (s, v) = upload(&app, id, "text/csv", Vec::new()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("empty"), "{v}");
    let (s, _) = upload(&app, 999, "text/csv", b"subject_id\nu1\n".to_vec()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let res = app
        .raw(
            Method::POST,
            &format!("/api/v1/incidents/{id}/subjects"),
            Some(VIEWER),
            "text/csv",
            "subject_id\nu1\n",
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Nothing of the refused uploads was kept.
    let (_, list) = app.get(&format!("/api/v1/incidents/{id}/subjects")).await;
    assert_eq!(list["total"], 0);
    // A campaign names channels that exist, and its template must render.
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/notices"),
            RESPONDER,
            &json!({"channels": ["email"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("[channels.email]"),
        "{v}"
    );
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/notices"),
            RESPONDER,
            &json!({"channels": ["sms"], "colour": "red"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    app.stop().await;

    // Without a key, contacts cannot be stored: refused, saying how to fix it.
    let Some(app) =
        TestApp::spawn_with(backend, &config(&sink, "[subjects]\nretention = \"30d\"\n")).await
    else {
        return;
    };
    let id = declare_pi(&app).await;
    let (s, v) = upload(&app, id, "text/csv", b"subject_id\nu1\n".to_vec()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("subjects keygen"),
        "{v}"
    );
    app.stop().await;
}

async fn task_id(app: &TestApp, id: i64, key: &str) -> i64 {
    let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no task {key}: {v:#}"))["id"]
        .as_i64()
        .unwrap()
}

/// Complete what the notice approval depends on, then approve it as Legal.
async fn approve_notice(app: &TestApp, id: i64) {
    for key in ["contain", "assess_affected", "prepare_notice"] {
        let (s, v) = app
            .post(
                &format!("/api/v1/incidents/{id}/tasks/{key}/complete"),
                RESPONDER,
                &json!({"note": "done"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{key}: {v}");
    }
    let t = task_id(app, id, "approve_notice").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/approvals/{t}/approve"),
            LEGAL,
            &json!({"reason": "wording checked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn campaign(app: &TestApp, id: i64) -> Value {
    let (s, v) = app.get(&format!("/api/v1/incidents/{id}/notices")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"][0].clone()
}

fn count(progress: &Value, channel: &str, status: &str) -> i64 {
    progress["progress"][channel][status].as_i64().unwrap_or(0)
}

/// SMS the sink received, by number.
fn sms_by_number(sink: &Sink) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for r in sink.received().iter().filter(|r| r.path == "/sms") {
        let j = r.json();
        m.entry(j["to"].as_str().unwrap().to_string())
            .or_default()
            .push(j["text"].as_str().unwrap_or_default().to_string());
    }
    m
}

async fn a_campaign_waits_for_legal_then_tells_everyone_once(backend: Backend) {
    let sink = Sink::start().await;
    let Some(mut app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let csv = "subject_id,name,phone,site_user_id,locale\n\
               a1,王五,+8613800000101,site-a1,zh-CN\n\
               a2,Ann Lee,+8613800000102,,en\n\
               a3,,+8613800000103,,en\n\
               a4,Site Only,,site-a4,en\n\
               a5,Nobody,,,en\n\
               a6,赵六,+8613800000106,site-a6,zh-CN\n\
               a7,Mary,+8613800000107,,en\n";
    let (s, r) = upload(&app, id, "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::OK, "{r:#}");
    assert_eq!(r["accepted"], 7);

    let path = format!("/api/v1/incidents/{id}/notices");
    let body: Value = json!({"channels": ["inbox", "sms"], "mode": "all"});
    let (s, c) = app.post(&path, RESPONDER, &body).await;
    assert_eq!(s, StatusCode::CREATED, "{c:#}");
    assert_eq!(c["status"], "awaiting_approval");
    assert_eq!(
        c["approval_task"],
        task_id(&app, id, "approve_notice").await
    );
    // Asking twice: the same campaign.
    let (s, again) = app.post(&path, RESPONDER, &body).await;
    assert_eq!(s, StatusCode::OK, "{again:#}");
    assert_eq!(
        (again["id"].clone(), again["existing"].clone()),
        (c["id"].clone(), json!(true))
    );
    // Nothing goes out before Legal approves: the campaign makes no delivery while it waits, and
    // (proving a negative) none arrives in a window of a few dispatch polls (200 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(sms_by_number(&sink).is_empty(), "sent before approval");
    let waiting = campaign(&app, id).await;
    assert_eq!(waiting["status"], "awaiting_approval");
    assert_eq!(waiting["deliveries"], 0, "{waiting:#}");

    approve_notice(&app, id).await;
    wait_for("every notice sent", 20, || async {
        let c = campaign(&app, id).await;
        c["status"] == "enqueued"
            && count(&c, "sms", "sent") == 5
            && count(&c, "inbox", "sent") == 3
    })
    .await;
    let c = campaign(&app, id).await;
    assert_eq!(c["subjects"], 7);
    assert_eq!(c["progress"]["sms"]["enqueued"], 5, "{c:#}");
    assert_eq!(c["progress"]["sms"]["queued"], 0, "{c:#}");
    assert_eq!(c["progress"]["inbox"]["enqueued"], 3, "{c:#}");
    assert_eq!(c["unreachable"], 1, "a5: {c:#}");
    assert_eq!(c["deliveries"], 8);

    // Each number got exactly one SMS, in its language, with its name.
    let sms = sms_by_number(&sink);
    assert_eq!(sms.len(), 5, "{sms:#?}");
    assert!(sms.values().all(|v| v.len() == 1), "{sms:#?}");
    assert!(sms["+8613800000101"][0].contains("安全事件"), "{sms:#?}");
    assert!(
        sms["+8613800000102"][0].contains("security incident"),
        "{sms:#?}"
    );
    // The SMS links to the person's own notice page: the full notice, no name, no token → 404.
    let link = sms["+8613800000102"][0]
        .split_whitespace()
        .find(|w| w.contains("/n/"))
        .unwrap_or_else(|| panic!("no link in {sms:#?}"))
        .trim_end_matches(['.', ','])
        .to_string();
    let own = &link[link.find("/n/").unwrap()..];
    let page = app.http.get(app.url(own)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Free identity monitoring"), "{html}");
    assert!(!html.contains("Ann Lee"), "no name on the page");
    let forged = app
        .http
        .get(app.url(&format!("{own}x")))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    // The in-site notice is the full notice; kept in the clear in our own database, it never
    // holds the person's name.
    let (s, inbox) = app
        .call(Method::GET, "/api/v1/inbox/site-a6", Some(SITE), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{inbox}");
    let text = inbox["items"][0]["body"].as_str().unwrap();
    assert!(text.contains("补救"), "the full notice: {text}");
    assert!(!text.contains("赵六"), "{text}");

    // Proof per person: channel, time, provider message id.
    let (s, proof) = app
        .get(&format!("/api/v1/incidents/{id}/subjects/a1"))
        .await;
    assert_eq!(s, StatusCode::OK, "{proof}");
    let notices = proof["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 2, "{proof:#}");
    let sms_proof = notices.iter().find(|n| n["channel"] == "sms").unwrap();
    assert_eq!(sms_proof["status"], "sent");
    assert!(sms_proof["sent_at"].is_string());
    assert!(
        sms_proof["provider_message_id"]
            .as_str()
            .unwrap()
            .starts_with("msg-"),
        "{proof:#}"
    );
    // Deliveries never hold a contact: the listing names the subject, not a number.
    let (_, ds) = app
        .get(&format!("/api/v1/incidents/{id}/deliveries?limit=500"))
        .await;
    assert!(!ds.to_string().contains("13800000101"), "{ds}");

    // A restart sends nobody anything again.
    let before = sink.received().len();
    app.restart().await;
    let (s, _) = app.post(&path, RESPONDER, &body).await;
    assert_eq!(s, StatusCode::OK);
    // Proving a negative (neither the campaign's resumption at start nor the repeated request
    // sends again): one window of a few dispatch polls (200 ms) after both.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let sms_after = sink.received().iter().filter(|r| r.path == "/sms").count();
    assert_eq!(
        sms_after, 5,
        "nothing sent twice (sink had {before} requests)"
    );

    // People imported later are told too, by the same campaign, in the words approved at the
    // start (en-GB falls back to the English rendered then).
    let (s, _) = upload(
        &app,
        id,
        "text/csv",
        b"subject_id,name,phone,locale\na8,Late,+8613800000108,en-GB\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    wait_for("the late subject told", 10, || async {
        sms_by_number(&sink).contains_key("+8613800000108")
    })
    .await;
    assert!(
        sms_by_number(&sink)["+8613800000108"][0].contains("security incident"),
        "{:#?}",
        sms_by_number(&sink)
    );
    assert_eq!(sms_by_number(&sink).len(), 6);
    // The timeline has the campaign's story.
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    let kinds: Vec<&str> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "notice.campaign_created",
        "notice.campaign_started",
        "notice.campaign_enqueued",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    app.stop().await;
}

async fn first_reachable_falls_back_when_a_channel_dies(backend: Backend) {
    let sink = Sink::start().await;
    // The SMS gateway refuses every message for good.
    sink.answer("/sms", 400, "{\"error\":\"blocked\"}");
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let csv =
        "subject_id,name,phone,site_user_id\nb1,Bo,+8613800000201,site-b1\nb2,Cy,+8613800000202,\n";
    let (s, _) = upload(&app, id, "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::OK);
    let (s, c) = app
        .post(
            &format!("/api/v1/incidents/{id}/notices"),
            RESPONDER,
            &json!({"channels": ["sms", "inbox"], "mode": "first"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    approve_notice(&app, id).await;
    wait_for("the fallback", 20, || async {
        let c = campaign(&app, id).await;
        count(&c, "sms", "dead") == 2 && count(&c, "inbox", "sent") == 1
    })
    .await;
    let c = campaign(&app, id).await;
    assert_eq!(c["progress"]["sms"]["enqueued"], 2, "{c:#}");
    assert_eq!(
        c["progress"]["inbox"]["enqueued"], 1,
        "fallbacks count: {c:#}"
    );
    assert_eq!(c["progress"]["inbox"]["queued"], 0, "{c:#}");
    // b1 was told in-site after the SMS died; b2 had no other channel.
    let (_, proof) = app
        .get(&format!("/api/v1/incidents/{id}/subjects/b1"))
        .await;
    let n = proof["notices"].as_array().unwrap();
    assert_eq!(n.len(), 2, "{proof:#}");
    let sms = n.iter().find(|x| x["channel"] == "sms").unwrap();
    let inbox = n.iter().find(|x| x["channel"] == "inbox").unwrap();
    assert_eq!(sms["status"], "dead");
    assert!(sms["last_error"].as_str().unwrap().contains("400"), "{sms}");
    assert_eq!(inbox["fallback_of"], sms["delivery"]);
    let (_, proof) = app
        .get(&format!("/api/v1/incidents/{id}/subjects/b2"))
        .await;
    assert_eq!(proof["notices"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn contacts_are_purged_after_the_retention_period(backend: Backend) {
    let sink = Sink::start().await;
    let extra = format!("[subjects]\nkey = \"{KEY}\"\nretention = \"1s\"\npurge_every = \"1s\"\n");
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, &extra)).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let (s, _) = upload(
        &app,
        id,
        "text/csv",
        b"subject_id,name,phone\nc1,Cai,+8613800000301\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Time must pass: the retention period (1 s) and a purge run (every 1 s) go by while the
    // incident is open.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Open incidents keep their contacts.
    assert!(
        dump_subjects(&app).await.contains("t1:"),
        "still sealed while open"
    );
    for to in ["triaged", "contained", "eradicated", "recovered"] {
        let (s, v) = app.transition(id, to, Some("handled")).await;
        assert_eq!(s, StatusCode::OK, "{to}: {v}");
    }
    // The playbook's tasks are open: the close is forced, with a reason.
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/transitions"),
            RESPONDER,
            &json!({"to": "closed", "note": "handled", "force": true, "reason": "purge test"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "closed: {v}");
    wait_for("the purge", 10, || async {
        let (_, v) = app
            .get(&format!("/api/v1/incidents/{id}/subjects/c1"))
            .await;
        v["subject"]["purged_at"].is_string()
    })
    .await;
    let dump = dump_subjects(&app).await;
    assert!(!dump.contains("t1:") && !dump.contains("****"), "{dump}");
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    let purged = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "subjects.purged")
        .cloned()
        .unwrap_or_else(|| panic!("no purge event: {tl:#}"));
    assert_eq!(purged["data"]["subjects"], 1);
    assert_eq!(purged["data"]["sha256"].as_str().unwrap().len(), 64);
    let v = app.verify().await;
    assert_eq!(v.broken_at, None, "the audit chain holds: {:?}", v.problem);
    app.stop().await;
}

async fn an_exemption_approved_by_legal_sends_nothing(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let (s, _) = upload(
        &app,
        id,
        "text/csv",
        b"subject_id,phone\ne1,+8613800000401\n".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // A campaign started before the facts claim the exemption waits for the approval…
    let path = format!("/api/v1/incidents/{id}/notices");
    let (s, c) = app
        .post(&path, RESPONDER, &json!({"channels": ["sms"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"mitigation_effective": true,
                    "mitigation_justification": "The leaked file was encrypted with a key that did not leak."}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // …no new campaign while the facts claim it.
    let (s, v) = app
        .post(
            &path,
            RESPONDER,
            &json!({"channels": ["sms"], "template": "notice/pi_leak", "mode": "first"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("exemption"), "{v}");
    // Legal approves the gate: individual notice is recorded as not required.
    approve_notice(&app, id).await;
    wait_for("the campaign cancelled", 10, || async {
        campaign(&app, id).await["status"] == "cancelled"
    })
    .await;
    let c = campaign(&app, id).await;
    assert!(c["error"].as_str().unwrap().contains("exemption"), "{c}");
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    let ex = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "notice.exempted")
        .cloned()
        .unwrap_or_else(|| panic!("no exemption on the timeline: {tl:#}"));
    assert!(
        ex["data"]["justification"]
            .as_str()
            .unwrap()
            .contains("encrypted")
    );
    assert!(
        sink.received().iter().all(|r| r.path != "/sms"),
        "nobody is told"
    );
    // A regulator's order overrides the exemption; the gate approved an exemption, not words.
    let (s, _) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"regulator_requires_notice": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post(
            &path,
            RESPONDER,
            &json!({"channels": ["sms"], "template": "notice/pi_leak"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("approved as an exemption"),
        "{v}"
    );
    app.stop().await;
}

async fn when_few_can_be_reached_the_announcement_is_published_and_linked(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    // About 1,000 people are affected; contacts are known for two.
    let (s, _) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"affected_subjects": 1000}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let csv = "subject_id,phone,locale\nf1,+8613800000501,en\nf2,+8613800000502,zh-CN\n";
    let (s, _) = upload(&app, id, "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::OK);
    let (s, c) = app
        .post(
            &format!("/api/v1/incidents/{id}/notices"),
            RESPONDER,
            &json!({"channels": ["sms"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    approve_notice(&app, id).await;
    wait_for("both told", 20, || async {
        sms_by_number(&sink).len() == 2
    })
    .await;
    // The rule drafts the announcement; it waits for Public Relations and Legal, who are paged.
    let (s, a) = app
        .get(&format!("/api/v1/incidents/{id}/announcement"))
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let text = a.to_string();
    assert!(
        text.contains("2 of 1000"),
        "the reason names the reach: {text}"
    );
    let v1 = &a["versions"][0];
    assert_eq!(v1["status"], "awaiting_approval", "{a:#}");
    assert_eq!(v1["actor"], "incidentd");
    assert!(a["public_version"].is_null(), "{a:#}");
    let slug = a["slug"].as_str().unwrap().to_string();
    let page_status = |slug: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url(&format!("/announcements/{slug}")))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(page_status(slug.clone()).await, StatusCode::NOT_FOUND);
    // Not public yet: the SMS link to each person's own notice page instead.
    let sms = sms_by_number(&sink);
    assert!(
        sms.values()
            .all(|t| t[0].contains("/n/") && !t[0].contains("/announcements/")),
        "the SMS links to the person's own page: {sms:#?}"
    );
    let drafted = app.events(id, "announcement.awaiting_approval").await;
    assert_eq!(
        drafted[0]["data"]["approvers"],
        json!(["public_relations", "legal"])
    );
    // PR and Legal on-call are paged by voice, naming the approval.
    for phone in [common::phone(4, 1), common::phone(3, 1)] {
        wait_for("the approvers paged", 10, || async {
            sink.received().iter().any(|r| {
                r.path == "/voice"
                    && r.json()["to"] == phone
                    && r.json()
                        .to_string()
                        .contains("Approve public announcement v1")
            })
        })
        .await;
    }
    // Approved by both, it is public.
    let task = v1["approval_task"].as_i64().unwrap();
    let (s, b) = app
        .post(
            &format!("/api/v1/approvals/{task}/approve"),
            common::ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(page_status(slug).await, StatusCode::OK);
    app.stop().await;
}

/// The campaign enqueues in small batches and each "provider" answer takes a while; the daemon is
/// SIGKILLed right after the approval (mid-enqueue), started again, and every person still gets
/// their SMS: nobody skipped, duplicates only from sends in flight at the kill.
async fn a_campaign_killed_midway_resumes_without_repeating_or_skipping_anyone(backend: Backend) {
    const PEOPLE: usize = 2000;
    const DISPATCH_BATCH: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let Some((store_url, pg)) = common::fresh_store(backend, dir.path()).await else {
        return;
    };
    let sink = Sink::start().await;
    sink.delay(Duration::from_millis(10));
    std::fs::copy(
        common::repo().join("config/classification.toml"),
        dir.path().join("classification.toml"),
    )
    .unwrap();
    let extra = config(&sink, "")
        .replace("batch = 3\n", "batch = 10\n")
        .replace(
            "max_attempts = 2",
            &format!("max_attempts = 8\nbatch_size = {DISPATCH_BATCH}"),
        );
    let path = dir.path().join("incidentd.toml");
    std::fs::write(&path, common::config_text(&store_url, &extra)).unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let daemon = Daemon::start(&path);
    let api = |d: &Daemon, p: &str| d.url(p);
    let send = |url: String, token: &'static str, body: Option<Value>| {
        let http = http.clone();
        async move {
            let mut r = http
                .request(
                    if body.is_some() {
                        Method::POST
                    } else {
                        Method::GET
                    },
                    url,
                )
                .bearer_auth(token);
            if let Some(b) = body {
                r = r.json(&b);
            }
            let res = r.send().await.unwrap();
            let status = res.status();
            let v: Value = res.json().await.unwrap();
            assert!(status.is_success(), "{status}: {v}");
            v
        }
    };
    let id = send(
        api(&daemon, "/api/v1/incidents"),
        RESPONDER,
        Some(
            json!({"title": "会员库泄露", "category": "pi_leak", "facts": common::both_languages(json!({
            "cause": "c", "impact": "i", "data_types": ["phone"], "measures_taken": "m",
            "advice_to_subjects": "a", "remedies": "r"}))}),
        ),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let mut csv = String::from("subject_id,phone\n");
    for i in 0..PEOPLE {
        csv.push_str(&format!("k{i},+86137{i:08}\n"));
    }
    let res = http
        .post(api(&daemon, &format!("/api/v1/incidents/{id}/subjects")))
        .bearer_auth(RESPONDER)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    send(
        api(&daemon, &format!("/api/v1/incidents/{id}/notices")),
        RESPONDER,
        Some(json!({"channels": ["sms"]})),
    )
    .await;
    // Wait for the playbook's tasks, then clear the way to the notice gate and approve it.
    let gate = wait_until("the playbook's notice gate", 20, async || {
        let t = send(
            api(&daemon, &format!("/api/v1/incidents/{id}/tasks")),
            VIEWER,
            None,
        )
        .await;
        let gate = t["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["key"] == "approve_notice")?;
        gate["id"].as_i64()
    })
    .await;
    for key in ["contain", "assess_affected", "prepare_notice"] {
        send(
            api(
                &daemon,
                &format!("/api/v1/incidents/{id}/tasks/{key}/complete"),
            ),
            RESPONDER,
            Some(json!({"note": "done"})),
        )
        .await;
    }
    send(
        api(&daemon, &format!("/api/v1/approvals/{gate}/approve")),
        LEGAL,
        Some(json!({"reason": "ok"})),
    )
    .await;
    // Kill once sending has begun, while the campaign is still enqueueing (looking every 2 ms:
    // the sooner after the 40th send, the more is left in flight).
    let until = Instant::now() + Duration::from_secs(30);
    while sink.count() < 40 {
        assert!(Instant::now() < until, "sending did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut daemon = daemon;
    daemon.kill();
    let at_kill = sink.count();
    let enqueued_at_kill = enqueued_to(&store_url, backend).await;
    assert!(
        at_kill < PEOPLE,
        "the kill came after everything was sent; the test proves nothing"
    );

    let daemon = Daemon::start(&path);
    let c = wait_until("the campaign's end after the restart", 90, async || {
        let c = send(
            api(&daemon, &format!("/api/v1/incidents/{id}/notices")),
            VIEWER,
            None,
        )
        .await;
        let c = c["items"][0].clone();
        (c["status"] == "enqueued" && count(&c, "sms", "sent") == PEOPLE as i64).then_some(c)
    })
    .await;
    assert_eq!(c["deliveries"], PEOPLE);
    let per_number = sms_by_number(&sink);
    assert_eq!(per_number.len(), PEOPLE, "nobody skipped");
    let duplicates: usize = per_number.values().map(|v| v.len() - 1).sum();
    eprintln!(
        "killed after {at_kill} SMS with subjects enqueued up to row {enqueued_at_kill}; {duplicates} duplicates"
    );
    assert!(
        duplicates <= DISPATCH_BATCH * 2,
        "{duplicates} duplicates, more than the sends in flight"
    );
    drop(daemon);
    if let Some((admin, name)) = pg {
        common::drop_pg_database(&admin, &name).await;
    }
}

async fn enqueued_to(store_url: &str, backend: Backend) -> i64 {
    let rows = common::query_text(
        backend,
        store_url,
        "SELECT CAST(COALESCE(MAX(enqueued_to), 0) AS TEXT) FROM campaigns",
    )
    .await;
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

async fn campaign_by_id(app: &TestApp, id: i64, cid: &Value) -> Value {
    let (_, v) = app.get(&format!("/api/v1/incidents/{id}/notices")).await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == *cid)
        .cloned()
        .unwrap_or_else(|| panic!("no campaign {cid}: {v:#}"))
}

/// Voice calls the sink received to affected people (not the team's pages), by number.
fn calls_to_people(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .filter(|r| r.path == "/voice")
        .filter_map(|r| r.json()["to"].as_str().map(str::to_string))
        .filter(|n| n.starts_with("+86138"))
        .collect()
}

async fn follow_up_campaigns_reach_the_unreached_and_never_repeat_words(backend: Backend) {
    let sink = Sink::start().await;
    // Every SMS dies: nobody is reached by SMS.
    sink.answer("/sms", 400, "{\"error\":\"blocked\"}");
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let path = format!("/api/v1/incidents/{id}/notices");
    // Nobody is unreached before a first campaign.
    let (s, v) = app
        .post(
            &path,
            RESPONDER,
            &json!({"channels": ["voice"], "audience": "unreached"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["path"], "audience");
    let csv = "subject_id,name,phone,site_user_id,locale,channels\n\
               f1,Fay,+8613800000301,site-f1,en,inbox;sms;voice\n\
               f2,Gus,+8613800000302,,en,sms;voice\n";
    let (s, _) = upload(&app, id, "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::OK);

    // The first campaign: in-site and SMS. f1 is reached in-site; every SMS dies.
    let first = json!({"channels": ["inbox", "sms"], "mode": "all"});
    let (s, c1) = app.post(&path, RESPONDER, &first).await;
    assert_eq!(s, StatusCode::CREATED, "{c1:#}");
    assert_eq!(c1["audience"], "all");
    approve_notice(&app, id).await;
    wait_for("the first campaign's outcomes", 20, || async {
        let c = campaign_by_id(&app, id, &c1["id"]).await;
        count(&c, "sms", "dead") == 2 && count(&c, "inbox", "sent") == 1
    })
    .await;

    // Asking again for the same campaign is not a new one; the CLI says so and exits non-zero.
    let (s, again) = app.post(&path, RESPONDER, &first).await;
    assert_eq!((s, &again["existing"]), (StatusCode::OK, &json!(true)));
    let o = app
        .cli_output(
            RESPONDER,
            &[
                "notices",
                "start",
                &id.to_string(),
                "--channel",
                "inbox",
                "--channel",
                "sms",
            ],
        )
        .await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--only-unreached"), "{err}");
    // The same words to everyone again, on another channel: refused, pointing at the ways on.
    let (s, v) = app
        .post(&path, RESPONDER, &json!({"channels": ["voice"]}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("unreached"), "{v}");
    let o = app
        .cli_output(
            RESPONDER,
            &["notices", "start", &id.to_string(), "--channel", "voice"],
        )
        .await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "a refusal exits non-zero: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A follow-up by phone call for those not reached: approved on its own, not by the
    // approval the first campaign used.
    let (s, c2) = app
        .post(
            &path,
            RESPONDER,
            &json!({"channels": ["voice", "inbox"], "audience": "unreached"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c2:#}");
    assert_eq!(c2["status"], "awaiting_approval");
    let gate = c2["approval_task"].as_i64().unwrap();
    assert_ne!(gate, task_id(&app, id, "approve_notice").await);
    assert_eq!(
        gate,
        task_id(&app, id, &format!("notice-{}", c2["id"])).await
    );
    // Nobody is called before the approval: no delivery while it waits, and (proving a negative)
    // no call in a window of a few dispatch polls (200 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(calls_to_people(&sink).is_empty(), "called before approval");
    let waiting = campaign_by_id(&app, id, &c2["id"]).await;
    assert_eq!(waiting["deliveries"], 0, "{waiting:#}");
    let (s, v) = app
        .post(
            &format!("/api/v1/approvals/{gate}/approve"),
            LEGAL,
            &json!({"reason": "call script checked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_for("the follow-up's call", 20, || async {
        let c = campaign_by_id(&app, id, &c2["id"]).await;
        c["status"] == "enqueued" && count(&c, "voice", "sent") == 1
    })
    .await;
    let c = campaign_by_id(&app, id, &c2["id"]).await;
    assert_eq!(c["subjects"], 1, "only f2 was unreached: {c:#}");
    assert_eq!(c["deliveries"], 1, "{c:#}");
    assert_eq!(calls_to_people(&sink), ["+8613800000302"]);

    // The facts change (not in the notice's words): an updated notice to everyone is allowed,
    // with its own approval; f1's in-site notice has the same words, so it is not repeated.
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"records_affected": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, c3) = app.post(&path, RESPONDER, &first).await;
    assert_eq!(s, StatusCode::CREATED, "{c3:#}");
    let gate3 = c3["approval_task"].as_i64().unwrap();
    assert!(gate3 != gate && c3["id"] != c1["id"], "{c3:#}");
    let (s, v) = app
        .post(
            &format!("/api/v1/approvals/{gate3}/approve"),
            LEGAL,
            &json!({"reason": "update checked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_for("the update's outcomes", 20, || async {
        let c = campaign_by_id(&app, id, &c3["id"]).await;
        c["status"] == "enqueued" && count(&c, "sms", "dead") == 2
    })
    .await;
    let c = campaign_by_id(&app, id, &c3["id"]).await;
    assert_eq!(
        c["progress"]["inbox"]["enqueued"].as_i64().unwrap_or(0),
        0,
        "the same in-site words are not delivered twice: {c:#}"
    );
    let (_, inbox) = app
        .call(Method::GET, "/api/v1/inbox/site-f1", Some(SITE), None)
        .await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1, "{inbox:#}");
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    let created: Vec<&Value> = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "notice.campaign_created")
        .collect();
    assert_eq!(created.len(), 3, "{tl:#}");
    app.stop().await;
}

async fn pipl_individuals(app: &TestApp, id: i64) -> Value {
    let (s, v) = app
        .get(&format!("/api/v1/incidents/{id}/obligations"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "CN:pipl_individuals")
        .cloned()
        .unwrap_or_else(|| panic!("{v:#}"))
}

/// With the shipped packs: notice to individuals (PIPL art. 57) is not met when the campaign
/// starts but when every person with a channel has a notice that reached its provider. When
/// every notice to someone dies, it stays open, Legal (its owner) is paged, and a person can
/// record it met with the reason.
async fn notice_to_individuals_is_met_when_everyone_reachable_is_told(backend: Backend) {
    let sink = Sink::start().await;
    let packs = common::repo().join("config/jurisdictions");
    let cfg = config(&sink, "").replacen(
        "[paths]\n",
        &format!("[paths]\njurisdictions = \"{}\"\n", packs.display()),
        1,
    );
    let Some(app) = TestApp::spawn_with(backend, &cfg).await else {
        return;
    };
    let people = |a: &str, b: &str| {
        format!("subject_id,phone,locale\n{a},+86138000007{a},zh-CN\n{b},+86138000007{b},en\n")
    };
    let start = async |id: i64, csv: String| {
        let (s, _) = app
            .patch(
                &format!("/api/v1/incidents/{id}/facts"),
                &json!({"affected_subjects": 2, "jurisdictions": ["CN"]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, r) = upload(&app, id, "text/csv", csv.into_bytes()).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let (s, c) = app
            .post(
                &format!("/api/v1/incidents/{id}/notices"),
                RESPONDER,
                &json!({"channels": ["sms"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(pipl_individuals(&app, id).await["status"], "open");
        approve_notice(&app, id).await;
    };

    // Both told: met, by the outcome, after the last notice reached the SMS gateway.
    let id = declare_pi(&app).await;
    start(id, people("11", "12")).await;
    wait_for("notice to individuals met", 20, || async {
        pipl_individuals(&app, id).await["status"] == "met"
    })
    .await;
    let o = pipl_individuals(&app, id).await;
    assert_eq!(
        o["met_ref"], "notices: 2 of 2 reachable people reached",
        "{o}"
    );
    assert_eq!(sms_by_number(&sink).len(), 2);
    let (_, d) = app
        .get(&format!("/api/v1/incidents/{id}/deliveries?limit=500"))
        .await;
    let met_at: chrono::DateTime<chrono::Utc> = o["met_at"].as_str().unwrap().parse().unwrap();
    for x in d["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["purpose"] == "notice")
    {
        let sent = common::micros(&x["sent_at"]);
        assert!(
            sent <= met_at.timestamp_micros(),
            "met after every notice was sent: {x} {o}"
        );
    }

    // The gateway refuses every notice of the next incident: nobody reached, nothing met.
    sink.answer("/sms", 400, "{\"error\":\"blocked\"}");
    let id = declare_pi(&app).await;
    start(id, people("21", "22")).await;
    wait_for("the unreached on the timeline", 20, || async {
        !app.events(id, "notice.unreached").await.is_empty()
    })
    .await;
    let e = &app.events(id, "notice.unreached").await[0];
    assert_eq!(
        (e["data"]["people"].as_i64(), e["data"]["reached"].as_i64()),
        (Some(2), Some(0)),
        "{e}"
    );
    assert_eq!(pipl_individuals(&app, id).await["status"], "open");
    // Legal, its owner, is paged (by voice in this config).
    wait_for("Legal paged", 10, || async {
        sink.received().iter().any(|r| {
            r.path == "/voice"
                && r.json()["to"] == common::phone(3, 1).as_str()
                && r.json().to_string().contains("NOT REACHED")
        })
    })
    .await;
    // A person records it met, with the reason.
    let (s, b) = app
        .post(
            &format!("/api/v1/incidents/{id}/obligations/CN:pipl_individuals/met"),
            RESPONDER,
            &json!({"reference": "told by registered letter, Legal memo 2026-19"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "met");
    app.stop().await;
}

/// A list that says where each person is affected: the incident's per-jurisdiction counts and
/// its total follow the list (never lowered); a bad jurisdiction rejects its row.
async fn a_jurisdiction_column_sets_each_jurisdictions_count(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink, "")).await else {
        return;
    };
    let id = declare_pi(&app).await;
    let csv = "subject_id,phone,jurisdiction\n\
               c1,+8613800000001,CN\n\
               c2,+8613800000002,cn\n\
               c3,+8613800000003,CN\n\
               s1,+6581234567,SG\n\
               x1,+8613800000005,\n\
               b1,+8613800000006,China\n";
    let (s, r) = upload(&app, id, "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::OK, "{r:#}");
    assert_eq!(r["accepted"], 5, "{r:#}");
    assert!(
        problem(&r, 7)["reason"]
            .as_str()
            .unwrap()
            .starts_with("jurisdiction:"),
        "{r:#}"
    );
    let (_, inc) = app.get(&format!("/api/v1/incidents/{id}")).await;
    let f = &inc["facts"];
    assert_eq!(f["by_jurisdiction"]["CN"]["affected_subjects"], 3, "{f:#}");
    assert_eq!(f["by_jurisdiction"]["SG"]["affected_subjects"], 1, "{f:#}");
    // The total is every subject held, including the one without a jurisdiction.
    assert_eq!(f["affected_subjects"], 5, "{f:#}");
    assert_eq!(f["jurisdictions"], json!(["CN", "SG"]), "{f:#}");

    // A larger estimate a person gave for SG is kept; a second list raises CN.
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"by_jurisdiction": {"SG": {"affected_subjects": 4200}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["facts"]["affected_subjects"], 4204, "{v:#}");
    let (s, r) = upload(
        &app,
        id,
        "application/x-ndjson",
        b"{\"subject_id\": \"c4\", \"phone\": \"+8613800000007\", \"jurisdiction\": \"CN\"}\n\
          {\"subject_id\": \"s2\", \"phone\": \"+6581234568\", \"jurisdiction\": \"SG\"}\n"
            .to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r:#}");
    let (_, inc) = app.get(&format!("/api/v1/incidents/{id}")).await;
    let f = &inc["facts"];
    assert_eq!(f["by_jurisdiction"]["CN"]["affected_subjects"], 4, "{f:#}");
    assert_eq!(
        f["by_jurisdiction"]["SG"]["affected_subjects"], 4200,
        "{f:#}"
    );
    assert_eq!(f["affected_subjects"], 4205, "{f:#}");
    app.stop().await;
}
