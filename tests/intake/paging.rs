//! Paging through the running daemon (issue #15, parts 3b and 6): in a storm, each person gets
//! one page, then one digest per channel listing every page held meanwhile; a page whose every
//! channel dies pages the department's next level (at the top, its lead) and says so on the
//! timeline. SMS and voice go to a local HTTP sink, e-mail to a real SMTP server.

use incidentd::channels::{ChannelKind, Content, Purpose, mask};
use incidentd::store::{NewDelivery, Placement, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::sink::Sink;
use crate::common::smtp::Smtp;
use crate::common::{self, Backend, TestApp, phone, wait_for};

crate::on_both_backends!(
    pages_in_a_storm_reach_each_person_once_then_in_one_digest,
    without_coalescing_every_page_goes_out_by_itself,
    a_page_that_dies_pages_the_next_level_then_the_lead,
    a_digest_that_dies_kills_its_pages_and_they_escalate,
    two_instances_never_send_two_digests_for_one_window,
    a_drill_page_the_guard_refuses_escalates_to_nobody,
);

/// One member: (name, level, lead, email).
type Person<'a> = (&'a str, u32, bool, &'a str);

fn config(
    sink: &Sink,
    smtp: &Smtp,
    coalesce: &str,
    channels: &str,
    depts: &[(&str, Vec<Person<'_>>)],
) -> String {
    let mut c = format!(
        r#"
{}
[dispatch]
lease = "20s"
poll_interval = "100ms"
backoff_base = "100ms"
backoff_max = "400ms"

[scheduler]
poll_interval = "200ms"
{}
[channels.email]
smtp_url = "{}"
from = "Security <security@example.com>"
timeout = "5s"

[paging]
ack_secret = "test-ack-link-secret-0123456789"
coalesce = "{coalesce}"

[paging.channels]
{channels}
"#,
        common::paths(&[]),
        common::phone_gateways(sink, &["sms", "voice"]),
        smtp.url(),
    );
    for (n, (id, members)) in depts.iter().enumerate() {
        let members: Vec<common::Member> = members
            .iter()
            .map(|&(name, level, lead, email)| {
                let m = common::Member::new(name, level as usize)
                    .phone(phone(n + 1, level as usize))
                    .email(email)
                    .locale("en");
                if lead { m.lead() } else { m }
            })
            .collect();
        c.push_str(&common::department(id, "1h", &members));
    }
    c
}

/// The six departments of the shipped playbooks, each with an on-call (level 1) and a head
/// (level 2, the lead), all reachable.
fn everyone_reachable() -> Vec<(&'static str, Vec<Person<'static>>)> {
    crate::common::DEPTS
        .iter()
        .map(|d| {
            let oncall: &'static str =
                Box::leak(format!("{d}-oncall@example.com").into_boxed_str());
            let head: &'static str = Box::leak(format!("{d}-head@example.com").into_boxed_str());
            (
                *d,
                vec![("on-call", 1, false, oncall), ("head", 2, true, head)],
            )
        })
        .collect()
}

const SMS_AND_EMAIL: &str = "S1 = [\"sms\", \"email\"]\nS2 = [\"sms\", \"email\"]\nS3 = [\"sms\", \"email\"]\nS4 = [\"sms\", \"email\"]";
const EMAIL: &str = "S1 = [\"email\"]\nS2 = [\"email\"]\nS3 = [\"email\"]\nS4 = [\"email\"]";

async fn declare(app: &TestApp, title: &str, category: &str, severity: &str) -> i64 {
    app.declare(&json!({"title": title, "category": category, "severity": severity}))
        .await["id"]
        .as_i64()
        .unwrap()
}

/// What the SMS gateway received for one number, in order.
fn sms_to(sink: &Sink, to: &str) -> Vec<Value> {
    sink.received()
        .into_iter()
        .filter(|r| r.path == "/sms")
        .map(|r| r.json())
        .filter(|b| b["to"] == to)
        .collect()
}

/// What the SMTP server accepted for one address, in order.
fn mails_to(smtp: &Smtp, to: &str) -> Vec<Value> {
    smtp.messages()
        .into_iter()
        .filter(|m| {
            m["rcpt_tos"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == to))
        })
        .collect()
}

async fn deliveries(app: &TestApp, incident: i64) -> Vec<Value> {
    let (s, v) = app
        .get(&format!(
            "/api/v1/incidents/{incident}/deliveries?limit=500"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

/// The incident's page on `channel` to `address`.
async fn page_to(
    app: &TestApp,
    incident: i64,
    channel: ChannelKind,
    address: &str,
) -> Option<Value> {
    let masked = mask(channel, address);
    deliveries(app, incident)
        .await
        .into_iter()
        .find(|d| d["channel"] == channel.as_str() && d["recipient"] == masked.as_str())
}

async fn delivery(app: &TestApp, id: i64) -> Value {
    let (s, v) = app.get(&format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// The window ends now (instead of in ten minutes): every pending digest is due.
async fn end_windows(app: &TestApp) {
    app.sql(&["UPDATE deliveries SET next_attempt_at = 0 WHERE idempotency_key LIKE 'coalesce:%' AND status = 'pending'"])
        .await;
}

async fn team_level(app: &TestApp, incident: i64, dept: &str) -> i64 {
    let (_, v) = app
        .get(&format!("/api/v1/incidents/{incident}/tasks"))
        .await;
    v["team"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["department"] == dept)
        .unwrap_or_else(|| panic!("{dept} not on the team: {v:#}"))["level"]
        .as_i64()
        .unwrap()
}

async fn pages_in_a_storm_reach_each_person_once_then_in_one_digest(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let cfg = config(&sink, &smtp, "10m", SMS_AND_EMAIL, &everyone_reachable());
    let Some(app) = TestApp::spawn_with(backend, &cfg).await else {
        return;
    };
    let p = phone(1, 1);
    let mail = "security-oncall@example.com";
    // The storm's first incident pages Security's on-call at once, on each channel.
    let a = declare(&app, "WAF blocks spike on the shop frontend", "other", "S3").await;
    wait_for("the first page", 10, async || {
        sms_to(&sink, &p).len() == 1 && mails_to(&smtp, mail).len() == 1
    })
    .await;
    assert!(
        sms_to(&sink, &p)[0]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("#{a}"))
    );
    // Three more within the window, two of them S1: held, not sent.
    let b = declare(&app, "会员数据库备份文件遭未授权访问", "pi_leak", "S1").await;
    let c = declare(
        &app,
        "Ransomware sample on an office laptop",
        "malware",
        "S2",
    )
    .await;
    let d = declare(
        &app,
        "DLP: bulk export of table crm.customers (phone, id_card_no) to unknown host 203.0.113.77",
        "pi_leak",
        "S1",
    )
    .await;
    let mut held = Vec::new();
    wait_for("the three pages held for the digests", 10, async || {
        held.clear();
        for id in [b, c, d] {
            for (ch, to) in [(ChannelKind::Sms, p.as_str()), (ChannelKind::Email, mail)] {
                match page_to(&app, id, ch, to).await {
                    Some(x) if x["status"] == "pending" && x["coalesced_into"].is_i64() => {
                        held.push(x)
                    }
                    _ => return false,
                }
            }
        }
        true
    })
    .await;
    assert_eq!(sms_to(&sink, &p).len(), 1, "held pages are not sent");
    assert_eq!(mails_to(&smtp, mail).len(), 1, "held pages are not sent");
    let sms_digest = held[0]["coalesced_into"].as_i64().unwrap();
    let mail_digest = held[1]["coalesced_into"].as_i64().unwrap();
    assert_ne!(sms_digest, mail_digest, "one digest per channel");
    for h in &held {
        assert!(
            [sms_digest, mail_digest].contains(&h["coalesced_into"].as_i64().unwrap()),
            "one digest per person and channel: {held:#?}"
        );
    }
    let coalesced = app.events(b, "page.coalesced").await;
    assert!(
        coalesced[0]["data"]["held"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["digest"] == sms_digest),
        "{coalesced:#?}"
    );

    // The window ends: one digest per channel, listing every held page, most severe first.
    end_windows(&app).await;
    wait_for("the digests", 10, async || {
        sms_to(&sink, &p).len() == 2 && mails_to(&smtp, mail).len() == 2
    })
    .await;
    let sms = &sms_to(&sink, &p)[1];
    assert_eq!(sms["template"], "page/digest", "{sms:#}");
    assert_eq!(
        sms["params"],
        json!({"count": "3", "s1": "2", "first": format!("#{b},#{d}"), "more": "1"})
    );
    let text = sms["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("3 incidents, 2 S1: #{b} S1 ")),
        "{text}"
    );
    assert!(text.contains("and 1 more"), "{text}");
    let m = &mails_to(&smtp, mail)[1];
    assert_eq!(
        m["subject"], "[S1] 3 security incidents paged to you (2 S1)",
        "{m:#}"
    );
    let body = m["text"].as_str().unwrap();
    let at = |id: i64, sev: &str| {
        body.find(&format!("#{id} [{sev}]"))
            .unwrap_or_else(|| panic!("#{id} not in the digest: {body}"))
    };
    assert!(
        at(b, "S1") < at(d, "S1") && at(d, "S1") < at(c, "S2"),
        "{body}"
    );
    assert_eq!(
        body.matches("/ack/").count(),
        3,
        "each with its ack link: {body}"
    );
    // Each incident's console page (the link ends the line: #2 is not #21), and My work.
    let lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    for id in [b, c, d] {
        let link = format!("http://127.0.0.1:8600/console/incidents/{id}");
        assert!(
            lines.iter().any(|l| l.ends_with(&link)),
            "each with its console page: {body}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("http://127.0.0.1:8600/console")),
        "and My work: {body}"
    );

    // Every held page ends with the digest's outcome and provider message id (recorded once
    // the gateway has answered, a moment after it received the digest).
    wait_for("the digest recorded as sent", 10, async || {
        delivery(&app, sms_digest).await["status"] == "sent"
    })
    .await;
    let sent = delivery(&app, sms_digest).await;
    assert_eq!(sent["status"], "sent", "{sent:#}");
    assert!(sent["incident_id"].is_null());
    let mid = sent["provider_message_id"].as_str().unwrap().to_string();
    let mut recorded = false;
    wait_for("the held pages' outcomes", 10, async || {
        for id in [b, c, d] {
            let x = page_to(&app, id, ChannelKind::Sms, &p).await.unwrap();
            if x["status"] != "sent" {
                return false;
            }
            assert_eq!(x["coalesced_into"], sms_digest);
            assert_eq!(x["provider_message_id"], mid.as_str());
            let y = page_to(&app, id, ChannelKind::Email, mail).await.unwrap();
            if y["status"] != "sent" {
                return false;
            }
        }
        true
    })
    .await;
    for e in app.events(c, "deliveries.recorded").await {
        recorded |= e["data"]["coalesced"].as_array().is_some_and(|v| {
            v.iter()
                .any(|x| x["digest"] == sms_digest && x["status"] == "sent")
        });
    }
    assert!(
        recorded,
        "the audit trail says the page went out in the digest"
    );

    // The digest opened the next window: a page now waits for the next digest.
    let e = declare(&app, "VPN gateway login failures surge", "other", "S3").await;
    wait_for("the next page held", 10, async || {
        page_to(&app, e, ChannelKind::Sms, &p)
            .await
            .is_some_and(|x| x["status"] == "pending" && x["coalesced_into"].is_i64())
    })
    .await;
    let next = page_to(&app, e, ChannelKind::Sms, &p).await.unwrap();
    assert_ne!(next["coalesced_into"], sms_digest);
    assert_eq!(sms_to(&sink, &p).len(), 2, "at most one message per window");
    // A window that held one page sends that page itself, at its end.
    end_windows(&app).await;
    wait_for("the page of the quiet window", 10, async || {
        sms_to(&sink, &p).len() == 3
    })
    .await;
    let last = &sms_to(&sink, &p)[2];
    assert_eq!(last["template"], "page/incident_opened", "{last:#}");
    assert!(last["text"].as_str().unwrap().contains(&format!("#{e}")));
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("incidentd_pages_coalesced_total{channel=\"sms\",outcome=\"sent\"}"),
        "{metrics}"
    );
    assert!(app.verify().await.broken_at.is_none(), "audit chain intact");
    app.stop().await;
}

async fn without_coalescing_every_page_goes_out_by_itself(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let cfg = config(&sink, &smtp, "0s", SMS_AND_EMAIL, &everyone_reachable());
    let Some(app) = TestApp::spawn_with(backend, &cfg).await else {
        return;
    };
    let p = phone(1, 1);
    let mut ids = Vec::new();
    for t in ["one", "two", "three"] {
        ids.push(declare(&app, &format!("storm incident {t}"), "other", "S3").await);
    }
    wait_for("three pages", 10, async || sms_to(&sink, &p).len() == 3).await;
    for sms in sms_to(&sink, &p) {
        assert_eq!(sms["template"], "page/incident_opened");
    }
    for id in ids {
        let x = page_to(&app, id, ChannelKind::Sms, &p).await.unwrap();
        assert!(x["coalesced_into"].is_null(), "{x}");
        assert!(app.events(id, "page.coalesced").await.is_empty());
    }
    app.stop().await;
}

/// Departments whose pages die (by e-mail; texts all die): Security's on-call and head (the
/// lead) are refused by the mail server; IT Operations' on-call and head too, but its director
/// (a lead, at level 1) is not. Everyone else is reached by e-mail, so their pages live.
fn some_unreachable() -> Vec<(&'static str, Vec<Person<'static>>)> {
    let mut d = everyone_reachable();
    for (id, members) in &mut d {
        match *id {
            "security" => {
                *members = vec![
                    (
                        "security on-call",
                        1,
                        false,
                        "reject-security-oncall@example.com",
                    ),
                    ("security head", 2, true, "reject-security-head@example.com"),
                ]
            }
            "it_operations" => {
                *members = vec![
                    ("ops on-call", 1, false, "reject-ops-oncall@example.com"),
                    ("ops director", 1, true, "ops-director@example.com"),
                    ("ops head", 2, false, "reject-ops-head@example.com"),
                ]
            }
            _ => {}
        }
    }
    d
}

fn dead<'a>(events: &'a [Value], dept: &str, level: Value) -> &'a Value {
    events
        .iter()
        .find(|e| e["data"]["department"] == dept && e["data"]["level"] == level)
        .unwrap_or_else(|| panic!("no page.dead for {dept} at {level}: {events:#?}"))
}

async fn a_page_that_dies_pages_the_next_level_then_the_lead(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let cfg = config(&sink, &smtp, "0s", SMS_AND_EMAIL, &some_unreachable());
    let Some(app) = TestApp::spawn_with(backend, &cfg).await else {
        return;
    };
    // The SMS gateway refuses every text for good; e-mail reaches all but the `reject-` ones.
    sink.answer("/sms", 400, r#"{"error":"sender id not approved"}"#);
    let id = declare(&app, "客户订单库被拖库", "pi_leak", "S1").await;
    // Level 1 dies for Security and IT Operations, then their level 2 dies too.
    let mut events = Vec::new();
    wait_for("four dead pages", 15, async || {
        events = app.events(id, "page.dead").await;
        events.len() >= 4
    })
    .await;
    let sec1 = dead(&events, "security", json!(1));
    assert_eq!(sec1["data"]["member"], "security on-call");
    assert_eq!(sec1["data"]["action"], "paged level 2");
    assert_eq!(sec1["data"]["paged"], json!(["security head"]));
    // Which page died, on every channel, and why.
    let why = |ch: &str| {
        sec1["data"]["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["channel"] == ch)
            .unwrap_or_else(|| panic!("no {ch} in {sec1:#}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        why("sms").contains("400") && why("sms").contains("sender id not approved"),
        "{sec1:#}"
    );
    assert!(why("email").contains("550"), "{sec1:#}");
    let sec2 = dead(&events, "security", json!(2));
    assert!(
        sec2["data"]["action"]
            .as_str()
            .unwrap()
            .contains("security head is the department's only lead"),
        "{sec2:#}"
    );
    assert_eq!(sec2["data"]["paged"], json!([]));
    let ops1 = dead(&events, "it_operations", json!(1));
    assert_eq!(ops1["data"]["member"], "ops on-call");
    assert_eq!(ops1["data"]["paged"], json!(["ops head"]));
    let ops2 = dead(&events, "it_operations", json!(2));
    assert_eq!(ops2["data"]["paged"], json!(["ops director"]), "{ops2:#}");
    // The director hears twice: paged with level 1, then as the lead when the head's page died.
    wait_for("the lead page", 10, async || {
        mails_to(&smtp, "ops-director@example.com").len() == 2
    })
    .await;
    let mails = mails_to(&smtp, "ops-director@example.com");
    assert!(
        mails.iter().any(|m| m["subject"]
            .as_str()
            .unwrap()
            .starts_with("[the page to ops head died] ")),
        "{mails:#?}"
    );
    assert!(mails_to(&smtp, "reject-security-head@example.com").is_empty());
    let esc = app.events(id, "incident.escalated").await;
    assert_eq!(esc.len(), 2, "{esc:#?}");
    assert!(esc.iter().all(|e| e["data"]["reason"] == "page.dead"));
    assert_eq!(team_level(&app, id, "security").await, 2);
    assert_eq!(team_level(&app, id, "it_operations").await, 2);
    assert_eq!(team_level(&app, id, "legal").await, 1);
    // Nothing more happens: every death was handled once (proving a negative: a window of a few
    // dispatch and scheduler polls, 100 and 200 ms).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.events(id, "page.dead").await.len(), 4);
    assert_eq!(app.events(id, "incident.escalated").await.len(), 2);
    assert!(app.verify().await.broken_at.is_none(), "audit chain intact");
    app.stop().await;
}

async fn a_digest_that_dies_kills_its_pages_and_they_escalate(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let mut depts = everyone_reachable();
    depts[0].1 = vec![
        (
            "security on-call",
            1,
            false,
            "reject-security-oncall@example.com",
        ),
        ("security head", 2, true, "security-head@example.com"),
    ];
    let cfg = config(&sink, &smtp, "10m", EMAIL, &depts);
    let Some(app) = TestApp::spawn_with(backend, &cfg).await else {
        return;
    };
    let oncall = "reject-security-oncall@example.com";
    // The first page to the on-call goes out at once, dies, and escalates.
    let a = declare(&app, "Suspicious admin login", "other", "S3").await;
    wait_for("the first dead page", 15, async || {
        !app.events(a, "page.dead").await.is_empty()
    })
    .await;
    // The next one waits for the digest, which the mail server refuses too.
    let b = declare(&app, "Second suspicious admin login", "other", "S3").await;
    let mut digest = 0;
    wait_for("the page held", 10, async || {
        match page_to(&app, b, ChannelKind::Email, oncall).await {
            Some(x) if x["coalesced_into"].is_i64() => {
                digest = x["coalesced_into"].as_i64().unwrap();
                true
            }
            _ => false,
        }
    })
    .await;
    end_windows(&app).await;
    let mut events = Vec::new();
    wait_for("the held page's death escalated", 15, async || {
        events = app.events(b, "page.dead").await;
        !events.is_empty()
    })
    .await;
    let held = page_to(&app, b, ChannelKind::Email, oncall).await.unwrap();
    assert_eq!(held["status"], "dead", "{held:#}");
    let why = held["last_error"].as_str().unwrap();
    assert!(
        why.starts_with(&format!("coalesced into digest #{digest}, which died: "))
            && why.contains("550"),
        "{why}"
    );
    assert_eq!(delivery(&app, digest).await["status"], "dead");
    let e = &events[0]["data"];
    assert_eq!(e["department"], "security");
    assert_eq!(e["deliveries"][0]["digest"], digest);
    assert_eq!(e["action"], "paged level 2");
    assert_eq!(team_level(&app, b, "security").await, 2);
    // Security's head is paged for B (held in turn: the head was paged for A moments ago).
    assert!(
        page_to(&app, b, ChannelKind::Email, "security-head@example.com")
            .await
            .is_some()
    );
    assert!(app.verify().await.broken_at.is_none(), "audit chain intact");
    app.stop().await;
}

/// One page to one person (no incident), placed with coalescing by `store` at `at`.
async fn hold(store: &Store, n: u32, at: i64, window: i64) -> Placement {
    let page = NewDelivery {
        idempotency_key: format!("test-page-{n}"),
        incident_id: None,
        purpose: Purpose::Page,
        channel: ChannelKind::Sms,
        recipient: "+8613900000101".into(),
        locale: "en".into(),
        content: Content {
            text: format!("page {n}"),
            ..Default::default()
        },
        fallback: Vec::new(),
        fallback_of: None,
    };
    let mut tx = store.begin_write().await.unwrap();
    let p = tx
        .hold_or_send(&page, &Content::default(), at, window)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    p
}

async fn claim(store: &Store, at: i64) -> Vec<i64> {
    let mut tx = store.begin_claim().await.unwrap();
    let c = tx
        .claim_deliveries(at, at + 30_000_000, 50, 5)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    c.iter().map(|c| c.id).collect()
}

fn held_in(p: Placement) -> (i64, i64) {
    match p {
        Placement::Held { digest, due, .. } => (digest, due),
        other => panic!("not held: {other:?}"),
    }
}

/// Two instances share one PostgreSQL database: one places pages while the other's dispatcher
/// claims. A digest that is being added to is not claimed; a digest once claimed is never added
/// to (the page goes to the next window's digest). So each window has one digest, and it lists
/// every page it carries. (On SQLite, one instance: the same holds with its one writer.)
async fn two_instances_never_send_two_digests_for_one_window(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let settings = incidentd::config::load(&app.config_path).unwrap();
    let a = Store::connect(&settings).await.unwrap();
    let b = match backend {
        Backend::Postgres => Store::connect(&settings).await.unwrap(),
        Backend::Sqlite => a.clone(),
    };
    let w = 60_000_000;
    // A day ahead: the running daemon's own dispatcher leaves these rows alone.
    let t0 = chrono::Utc::now().timestamp_micros() + 86_400_000_000;
    assert!(matches!(hold(&b, 1, t0, w).await, Placement::Now(_)));
    let (digest, due) = held_in(hold(&a, 2, t0 + 1_000_000, w).await);
    assert_eq!(due, t0 + w);
    // B adds a page to the digest while A claims what is due at the window's end.
    let page3 = NewDelivery {
        idempotency_key: "test-page-3".into(),
        incident_id: None,
        purpose: Purpose::Page,
        channel: ChannelKind::Sms,
        recipient: "+8613900000101".into(),
        locale: "en".into(),
        content: Content::default(),
        fallback: Vec::new(),
        fallback_of: None,
    };
    let mut tx = b.begin_write().await.unwrap();
    let p3 = tx
        .hold_or_send(&page3, &Content::default(), t0 + 2_000_000, w)
        .await
        .unwrap();
    assert_eq!(held_in(p3).0, digest);
    if backend == Backend::Postgres {
        let claimed = claim(&a, t0 + w + 1).await;
        assert!(
            !claimed.contains(&digest),
            "a digest being added to is not claimed: {claimed:?}"
        );
    }
    tx.commit().await.unwrap();
    assert!(claim(&a, t0 + w + 1).await.contains(&digest));
    let rows = crate::common::query_text(
        backend,
        &app.store_url,
        &format!(
            "SELECT idempotency_key FROM deliveries WHERE coalesced_into = {digest} ORDER BY id"
        ),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            vec![Some("test-page-2".to_string())],
            vec![Some("test-page-3".to_string())]
        ]
    );
    // A page of that window after the digest was claimed goes to the next window's digest.
    let (d2, due2) = held_in(hold(&b, 4, t0 + 3_000_000, w).await);
    assert_ne!(d2, digest);
    assert_eq!(due2, t0 + 2 * w);
    // And while a claim of that digest is not yet committed, a page waits for it, then goes on.
    let mut claiming = a.begin_claim().await.unwrap();
    let c = claiming
        .claim_deliveries(t0 + 2 * w + 1, t0 + 2 * w + 30_000_000, 50, 5)
        .await
        .unwrap();
    assert!(c.iter().any(|c| c.id == d2));
    let bb = b.clone();
    let placing = tokio::spawn(async move { hold(&bb, 5, t0 + 4_000_000, w).await });
    // Proving it waits: still not done after a while (nothing else shows a blocked write).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!placing.is_finished(), "waits for the claim");
    claiming.commit().await.unwrap();
    let (d3, due3) = held_in(placing.await.unwrap());
    assert!(d3 != d2 && d3 != digest);
    assert_eq!(due3, t0 + 3 * w);
    let digests = crate::common::query_text(
        backend,
        &app.store_url,
        "SELECT COUNT(*) || '' FROM deliveries WHERE idempotency_key LIKE 'coalesce:%'",
    )
    .await;
    assert_eq!(
        digests,
        vec![vec![Some("3".to_string())]],
        "one digest per window"
    );
    a.close().await;
    if backend == Backend::Postgres {
        b.close().await;
    }
    app.stop().await;
}

/// A drill's pages to people not on its list are refused by the drill guard: that is not a dead
/// page, so nobody further (nobody real) is paged. Drills' pages are never held for digests.
async fn a_drill_page_the_guard_refuses_escalates_to_nobody(backend: Backend) {
    let sink = Sink::start().await;
    let smtp = Smtp::start();
    let cfg = config(&sink, &smtp, "10m", EMAIL, &everyone_reachable());
    let Some(app) = TestApp::spawn_with(backend, &cfg).await else {
        return;
    };
    let id = app
        .declare(&json!({"title": "Drill: bucket exposed", "category": "pi_leak", "drill": true}))
        .await["id"]
        .as_i64()
        .unwrap();
    let v = app
        .wait_deliveries(id, 10, |v| {
            let d = v["items"].as_array().unwrap();
            d.len() == 6 && d.iter().all(|x| x["status"] == "dead")
        })
        .await;
    for d in v["items"].as_array().unwrap() {
        assert!(
            d["last_error"].as_str().unwrap().contains("drill guard"),
            "{d}"
        );
        assert!(d["coalesced_into"].is_null(), "{d}");
        assert_eq!(d["purpose"], "drill");
    }
    // Refused pages do not escalate (proving a negative: a window of a few dispatch and
    // scheduler polls, 100 and 200 ms).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(app.events(id, "page.dead").await.is_empty());
    assert!(app.events(id, "incident.escalated").await.is_empty());
    assert_eq!(team_level(&app, id, "security").await, 1);
    assert!(smtp.messages().is_empty(), "nobody was reached");
    app.stop().await;
}
