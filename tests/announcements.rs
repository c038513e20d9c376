//! The public announcement through the running daemon: publishing and versioning over the API,
//! the public pages in both languages, the list, the Atom feed, the audit event, the signed
//! webhook push, drills — and the page as headless Chromium renders it.
//!
//! The browser test needs Debian's `chromium` (`apt-get install -y chromium`); it is skipped,
//! saying so, when it is missing — unless `INCIDENTD_REQUIRE_BROWSER` is set (`.ci/run`), when it
//! fails. Its screenshots are written to `target/test-artefacts/`.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::sink::Sink;
use common::{ADMIN, Backend, RESPONDER, TestApp, VIEWER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SECRET: &str = "a-shared-secret-of-32-characters";

both_backends!(
    publish_serves_both_languages_the_list_and_the_feed,
    a_facts_change_is_a_new_version_and_the_same_words_are_not,
    publishing_needs_a_writer_a_reason_and_the_facts,
    drills_are_marked_and_never_listed,
    the_cli_publishes_and_shows_the_history,
    nothing_is_public_before_its_approval,
    the_feed_speaks_the_readers_language_in_the_organisations_time_zone,
);

mod pushed {
    use super::each_version_is_pushed_to_the_webhook_signed;
    crate::on_both_backends!(each_version_is_pushed_to_the_webhook_signed);
}

fn facts() -> Value {
    common::both_languages(json!({
        "affected_subjects": 250000,
        "data_types": ["name", "phone"],
        "jurisdictions": ["CN"],
        "cause": "A misconfigured <backup> bucket & its logs were readable from the internet.",
        "impact": "Names and phone numbers may be used for scam calls.",
        "measures_taken": "We closed public access and rotated the access keys the same day.",
        "measures_planned": "We are reviewing every storage permission.",
        "advice_to_subjects": "Be wary of calls claiming to be from us; we never ask for codes.",
        "remedies": "Twelve months of free account-login alerts.",
    }))
}

async fn pi_incident(app: &TestApp, drill: bool, facts: Value) -> i64 {
    app.declare(&json!({
        "title": "Member database backup exposed",
        "category": "pi_leak",
        "drill": drill,
        "discovered_at": "2026-11-20T02:30:00Z",
        "facts": facts,
    }))
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn publish(app: &TestApp, id: i64, reason: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/incidents/{id}/announcement"),
        RESPONDER,
        &json!({ "reason": reason }),
    )
    .await
}

/// Decide a version's approval gate (the admin token acts for every approving department).
async fn decide_version(app: &TestApp, v: &Value, approve: bool) -> Value {
    let task = v["approval_task"]
        .as_i64()
        .unwrap_or_else(|| panic!("no approval task: {v}"));
    let (verb, body) = if approve {
        ("approve", json!({}))
    } else {
        ("reject", json!({"reason": "wording not cleared"}))
    };
    let (s, t) = app
        .post(&format!("/api/v1/approvals/{task}/{verb}"), ADMIN, &body)
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    t
}

/// Draft a version and have it approved: public.
async fn publish_public(app: &TestApp, id: i64, reason: &str) -> Value {
    let (s, v) = publish(app, id, reason).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "awaiting_approval", "{v}");
    decide_version(app, &v, true).await;
    v
}

/// A public page: status, content type, body. No token.
async fn page(
    app: &TestApp,
    path: &str,
    accept_language: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = app.http.get(app.url(path));
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, res.text().await.unwrap())
}

/// What every public page must be: one h1, landmarks, no scripts, nothing from elsewhere.
fn assert_clean_html(html: &str, lang: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
    assert_eq!(html.matches("<h1").count(), 1, "one h1: {html}");
    for landmark in ["<header", "<main", "<footer", "<nav"] {
        assert!(html.contains(landmark), "{landmark} missing: {html}");
    }
    assert!(!html.contains("<script"), "no scripts: {html}");
    for external in ["http://", "https://", "//cdn", "@import", "url("] {
        assert!(
            !html.contains(external),
            "no external assets ({external}): {html}"
        );
    }
}

async fn publish_serves_both_languages_the_list_and_the_feed(app: TestApp) {
    let id = pi_incident(&app, false, facts()).await;
    let v = publish_public(&app, id, "only 30% of subjects reachable").await;
    assert_eq!(v["version"], 1);
    assert_eq!(v["created"], true);
    let slug = v["slug"].as_str().unwrap().to_string();
    assert_eq!(slug, format!("2026-11-20-{id}"));
    let locales: Vec<&str> = v["locales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["locale"].as_str().unwrap())
        .collect();
    assert_eq!(locales, ["zh-CN", "en"], "the default locale first");

    // English, asked for.
    let (s, ct, en) = page(&app, &format!("/announcements/{slug}?lang=en"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "text/html; charset=utf-8");
    assert_clean_html(&en, "en");
    assert!(en.contains("Test Co.: announcement of a personal information security incident"));
    assert!(en.contains("Twelve months of free account-login alerts."));
    assert!(en.contains("privacy@test.example"), "the officer's contact");
    assert!(
        en.contains("A misconfigured &lt;backup&gt; bucket &amp; its logs"),
        "facts are escaped: {en}"
    );
    assert!(!en.contains("<backup>"));
    // The switch: plain links to both languages, this one current.
    assert!(
        en.contains(&format!("href=\"/announcements/{slug}?lang=zh-CN\"")),
        "{en}"
    );
    assert!(
        en.contains("lang=\"en\" aria-current=\"page\">English</a>"),
        "{en}"
    );

    // Chinese, asked for; then by the browser's Accept-Language; then the org's default.
    let (_, _, zh) = page(&app, &format!("/announcements/{slug}?lang=zh-CN"), None).await;
    assert_clean_html(&zh, "zh-CN");
    assert!(zh.contains("Test Co.关于个人信息安全事件的公告"), "{zh}");
    assert!(zh.contains("我们提供的补救措施"));
    let (_, _, by_header) = page(
        &app,
        &format!("/announcements/{slug}"),
        Some("fr-FR, en-GB;q=0.8, zh;q=0.5"),
    )
    .await;
    assert_clean_html(&by_header, "en");
    let (_, _, default) = page(&app, &format!("/announcements/{slug}"), None).await;
    assert_clean_html(&default, "zh-CN");

    // Unknown slugs and versions are a 404 page, not an error document.
    let (s, ct, body) = page(&app, "/announcements/no-such-thing?lang=en", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(ct.starts_with("text/html"));
    assert!(body.contains("Announcement not found"));
    let (s, _, _) = page(&app, &format!("/announcements/{slug}?version=9"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The list.
    let (s, _, list) = page(&app, "/announcements?lang=en", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_clean_html(&list, "en");
    assert!(
        list.contains(&format!("href=\"/announcements/{slug}?lang=en\"")),
        "{list}"
    );
    assert!(list.contains("announcement of a personal information security incident"));

    // The feed: Atom 1.0 that parses, with the entry.
    let res = app
        .http
        .get(app.url("/announcements/feed.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let xml = res.text().await.unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let atom = "http://www.w3.org/2005/Atom";
    let feed = doc.root_element();
    assert!(feed.has_tag_name((atom, "feed")));
    fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
        n.children()
            .find(|c| c.has_tag_name(("http://www.w3.org/2005/Atom", name)))
            .unwrap_or_else(|| panic!("<{name}> missing in <{}>", n.tag_name().name()))
    }
    assert_eq!(
        child(feed, "id").text(),
        Some("http://127.0.0.1:8600/announcements")
    );
    assert!(feed.children().any(|c| c.has_tag_name((atom, "link"))
        && c.attribute("rel") == Some("self")
        && c.attribute("href") == Some("http://127.0.0.1:8600/announcements/feed.xml")));
    let updated = child(feed, "updated").text().unwrap();
    chrono::DateTime::parse_from_rfc3339(updated).unwrap();
    let entries: Vec<_> = feed
        .children()
        .filter(|c| c.has_tag_name((atom, "entry")))
        .collect();
    assert_eq!(entries.len(), 1, "{xml}");
    let e = entries[0];
    assert_eq!(
        child(e, "id").text().unwrap(),
        format!("http://127.0.0.1:8600/announcements/{slug}?version=1")
    );
    assert_eq!(child(e, "updated").text(), Some(updated));
    assert!(
        !child(e, "content")
            .text()
            .unwrap()
            .contains("What we offer"),
        "the feed speaks the default locale (zh-CN), not English"
    );
    assert!(child(e, "content").text().unwrap().contains("补救措施"));
    assert!(
        child(e, "title")
            .text()
            .unwrap()
            .contains("关于个人信息安全事件的公告")
    );

    // The audit event, in the chain.
    let (s, tl) = app.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    assert_eq!(s, StatusCode::OK, "{tl}");
    let ev = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "announcement.published")
        .unwrap_or_else(|| panic!("{tl:#}"));
    // Drafted by the responder, made public by the approval.
    assert_eq!(ev["actor"], "token:admin");
    assert_eq!(ev["data"]["approval_task"], v["approval_task"]);
    let drafted = app.events(id, "announcement.awaiting_approval").await;
    assert_eq!(drafted[0]["actor"], "token:responder");
    assert_eq!(ev["data"]["slug"], slug);
    assert_eq!(ev["data"]["version"], 1);
    assert_eq!(ev["data"]["reason"], "only 30% of subjects reachable");
    assert_eq!(ev["data"]["content_hash"], v["content_hash"]);
    let report = app.verify().await;
    assert!(report.broken_at.is_none(), "{report:?}");

    // Described in the OpenAPI document, the public pages without security.
    let (_, doc) = app.get("/api/v1/openapi.json").await;
    let paths = &doc["paths"];
    assert!(paths["/api/v1/incidents/{id}/announcement"]["post"].is_object());
    assert!(paths["/api/v1/incidents/{id}/announcement"]["get"].is_object());
    for p in [
        "/announcements",
        "/announcements/{slug}",
        "/announcements/feed.xml",
    ] {
        assert_eq!(
            paths[p]["get"]["security"],
            json!([{}]),
            "{p}: {}",
            paths[p]
        );
    }
    app.stop().await;
}

async fn a_facts_change_is_a_new_version_and_the_same_words_are_not(app: TestApp) {
    let id = pi_incident(&app, false, facts()).await;
    let v1 = publish_public(&app, id, "decided by Legal").await;
    let slug = v1["slug"].as_str().unwrap().to_string();

    // Same facts, same words: no new version, nothing written.
    let (s, again) = publish(&app, id, "pressed twice").await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["version"], 1);

    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &common::both_languages(
                json!({"remedies": "Twelve months of free credit monitoring and a hotline."}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v2 = publish_public(&app, id, "remedies extended").await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["slug"], slug, "the slug is stable across versions");
    assert_ne!(v2["content_hash"], v1["content_hash"]);
    assert_ne!(v2["facts_hash"], v1["facts_hash"]);

    // The page: the latest words, shown as an update, with the history.
    let (_, _, latest) = page(&app, &format!("/announcements/{slug}?lang=en"), None).await;
    assert_clean_html(&latest, "en");
    assert!(latest.contains("free credit monitoring and a hotline"));
    assert!(!latest.contains("Twelve months of free account-login alerts."));
    assert!(
        latest.contains("This announcement has been updated: this is version 2."),
        "{latest}"
    );
    assert!(latest.contains("Version history"));
    assert!(latest.contains(&format!(
        "href=\"/announcements/{slug}?lang=en&amp;version=1\""
    )));

    // Version 1, asked for: its own words and a banner pointing at the latest.
    let (s, _, old) = page(
        &app,
        &format!("/announcements/{slug}?lang=en&version=1"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_clean_html(&old, "en");
    assert!(old.contains("Twelve months of free account-login alerts."));
    assert!(old.contains("This is version 1 of 2"), "{old}");
    assert!(
        old.contains(&format!(
            "<a href=\"/announcements/{slug}?lang=en\">See the latest version</a>"
        )),
        "{old}"
    );
    let (_, _, old_zh) = page(&app, &format!("/announcements/{slug}?version=1"), None).await;
    assert!(
        old_zh.contains("这是本公告的第 1 版（共 2 版）"),
        "{old_zh}"
    );

    // The list marks it updated; the feed has one entry per version.
    let (_, _, list) = page(&app, "/announcements?lang=en", None).await;
    assert!(list.contains("Updated (Version 2)"), "{list}");
    let xml = app
        .http
        .get(app.url("/announcements/feed.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let ids: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("id") && n.parent().is_some_and(|p| p.has_tag_name("entry")))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(
        ids,
        [
            format!("http://127.0.0.1:8600/announcements/{slug}?version=2"),
            format!("http://127.0.0.1:8600/announcements/{slug}?version=1")
        ]
    );

    // The API's history: both versions, oldest first, with who and why.
    let (s, h) = app
        .get(&format!("/api/v1/incidents/{id}/announcement"))
        .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["reason"], "decided by Legal");
    assert_eq!(versions[1]["reason"], "remedies extended");
    assert_eq!(versions[1]["facts_version"], 2);
    let (_, tl) = app.get(&format!("/api/v1/incidents/{id}/timeline")).await;
    let published = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "announcement.published")
        .count();
    assert_eq!(published, 2, "the unchanged republication wrote no event");
    app.stop().await;
}

async fn publishing_needs_a_writer_a_reason_and_the_facts(app: TestApp) {
    let id = pi_incident(
        &app,
        false,
        common::both_languages(json!({"data_types": ["phone"], "cause": "a leak"})),
    )
    .await;
    let path = format!("/api/v1/incidents/{id}/announcement");
    let body = json!({"reason": "x"});
    let (s, v) = app.call(Method::POST, &path, None, Some(&body)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, v) = app
        .call(Method::POST, &path, Some(VIEWER), Some(&body))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("responder"), "{v}");
    let (s, v) = app
        .post(&path, RESPONDER, &json!({"reason": "x", "colour": "red"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("colour"), "{v}");
    let (s, v) = app.post(&path, RESPONDER, &json!({"reason": "  "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["path"], "reason");

    // Every missing fact named at once, as problem+json; nothing published.
    let res = app
        .raw(
            Method::POST,
            &path,
            Some(RESPONDER),
            "application/json",
            body.to_string(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let v: Value = res.json().await.unwrap();
    let detail = v["detail"].as_str().unwrap();
    for fact in ["impact", "measures_taken", "advice_to_subjects", "remedies"] {
        assert!(detail.contains(fact), "{fact} not named: {detail}");
    }
    for given in ["cause", "data_types", "measures_planned", "contact"] {
        assert!(!detail.contains(given), "{given} is not missing: {detail}");
    }
    let (s, v) = app.get(&path).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("no announcement yet")
    );
    let (s, _) = app
        .post("/api/v1/incidents/999/announcement", RESPONDER, &body)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn drills_are_marked_and_never_listed(app: TestApp) {
    let real = pi_incident(&app, false, facts()).await;
    let drill = pi_incident(&app, true, facts()).await;
    publish_public(&app, real, "real").await;
    let v = publish_public(&app, drill, "drill scenario 3").await;
    let slug = v["slug"].as_str().unwrap().to_string();
    assert_eq!(slug, format!("drill-2026-11-20-{drill}"));
    assert_eq!(v["drill"], true);

    for (lang, marks) in [
        (
            "en",
            [
                "DRILL: this announcement is part of an emergency-plan drill",
                "[DRILL]",
            ],
        ),
        ("zh-CN", ["演练：本公告属于应急预案演练", "【演练】"]),
    ] {
        let (s, _, html) = page(&app, &format!("/announcements/{slug}?lang={lang}"), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_clean_html(&html, lang);
        for m in marks {
            assert!(html.contains(m), "{m} missing: {html}");
        }
        assert!(html.contains("<meta name=\"robots\" content=\"noindex\">"));
    }
    let (_, _, list) = page(&app, "/announcements", None).await;
    assert!(!list.contains(&slug), "drills are not listed: {list}");
    assert!(list.contains(&format!("2026-11-20-{real}")));
    let xml = app
        .http
        .get(app.url("/announcements/feed.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!xml.contains(&slug), "drills are not in the feed: {xml}");
    assert!(xml.contains(&format!("2026-11-20-{real}")));
    app.stop().await;
}

async fn the_cli_publishes_and_shows_the_history(app: TestApp) {
    let id = pi_incident(&app, false, facts()).await.to_string();
    let o = app.cli_output(RESPONDER, &["announce", "--help"]).await;
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("incidentd announce 42 --reason"), "{help}");
    assert!(help.contains("/announcements/feed.xml"), "{help}");

    let o = app
        .cli_output(VIEWER, &["announce", &id, "--reason", "x"])
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("403"));
    let o = app.cli_output(RESPONDER, &["announce", &id]).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "--reason (or --history) is required"
    );

    let o = app
        .cli_output(RESPONDER, &["announce", &id, "--reason", "Legal decided"])
        .await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!(
            "announcement 2026-11-20-{id}: announcement version 1 waits for approval by public_relations, legal (approval "
        )),
        "{out}"
    );
    assert!(out.contains("approve it: incidentd approve "), "{out}");
    assert!(
        out.contains(&format!(
            "http://127.0.0.1:8600/announcements/2026-11-20-{id}\n"
        )),
        "{out}"
    );
    let o = app
        .cli_output(RESPONDER, &["announce", &id, "--reason", "again"])
        .await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("unchanged"));

    let o = app
        .cli_output(VIEWER, &["announce", &id, "--history"])
        .await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("(public: none yet)"), "{out}");
    assert!(out.contains("awaiting_approval"), "{out}");
    assert!(out.contains("token:responder  Legal decided"), "{out}");
    app.stop().await;
}

/// A version waits for its approval gate: not served, listed or in the feed, and the API says
/// so. Approved, it is public; a newer version waiting does not replace it, a newer one
/// supersedes an older one still waiting, and a rejected one never becomes public.
async fn nothing_is_public_before_its_approval(app: TestApp) {
    let id = pi_incident(&app, false, facts()).await;
    let (s, v1) = publish(&app, id, "Legal decided").await;
    assert_eq!(s, StatusCode::CREATED, "{v1}");
    assert_eq!(
        (v1["status"].as_str(), v1["approvers"].clone()),
        (
            Some("awaiting_approval"),
            json!(["public_relations", "legal"])
        ),
        "{v1}"
    );
    assert!(
        v1["detail"]
            .as_str()
            .unwrap()
            .starts_with("announcement version 1 waits for approval by public_relations, legal"),
        "{v1}"
    );
    let slug = v1["slug"].as_str().unwrap().to_string();
    let (s, _, _) = page(&app, &format!("/announcements/{slug}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not public before approval");
    let (_, _, list) = page(&app, "/announcements", None).await;
    assert!(!list.contains(&slug), "{list}");
    let xml = app
        .http
        .get(app.url("/announcements/feed.xml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!xml.contains(&slug), "{xml}");
    assert!(app.events(id, "announcement.published").await.is_empty());
    // The approval is an ordinary approval task, decided by PR and Legal.
    let (_, tasks) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    let gate = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == v1["approval_task"])
        .unwrap_or_else(|| panic!("{tasks:#}"))
        .clone();
    assert_eq!(
        gate["approvers"],
        json!(["public_relations", "legal"]),
        "{gate}"
    );
    assert_eq!(gate["status"], "open", "{gate}");
    // A responder cannot approve it; the approvers can.
    let (s, b) = app
        .post(
            &format!("/api/v1/approvals/{}/approve", v1["approval_task"]),
            RESPONDER,
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    decide_version(&app, &v1, true).await;
    let (s, _, zh) = page(&app, &format!("/announcements/{slug}"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(zh.contains("我们提供的补救措施"), "{zh}");

    // Version 2 waits: the page keeps serving version 1.
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &common::both_languages(json!({"remedies": "A hotline, open every day."})),
    )
    .await;
    let (s, v2) = publish(&app, id, "remedies").await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    let (_, _, en) = page(&app, &format!("/announcements/{slug}?lang=en"), None).await;
    assert!(!en.contains("A hotline, open every day."), "{en}");
    let (s, _, _) = page(&app, &format!("/announcements/{slug}?version=2"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Version 3 supersedes it: version 2's approval is closed and can no longer be approved.
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &common::both_languages(
            json!({"remedies": "A hotline, open every day, and free monitoring."}),
        ),
    )
    .await;
    let (s, v3) = publish(&app, id, "remedies again").await;
    assert_eq!(s, StatusCode::CREATED, "{v3}");
    let (s, b) = app
        .post(
            &format!("/api/v1/approvals/{}/approve", v2["approval_task"]),
            ADMIN,
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // Version 3 rejected: never public.
    decide_version(&app, &v3, false).await;
    let (_, _, en) = page(&app, &format!("/announcements/{slug}?lang=en"), None).await;
    assert!(!en.contains("free monitoring"), "{en}");
    let (_, h) = app
        .get(&format!("/api/v1/incidents/{id}/announcement"))
        .await;
    let statuses: Vec<&str> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["public", "superseded", "rejected"], "{h:#}");
    assert_eq!(h["public_version"], 1);
    assert_eq!(app.events(id, "announcement.rejected").await.len(), 1);
    app.stop().await;
}

async fn feed_xml(app: &TestApp, query: &str, accept_language: Option<&str>) -> String {
    let mut req = app
        .http
        .get(app.url(&format!("/announcements/feed.xml{query}")));
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["vary"], "Accept-Language");
    res.text().await.unwrap()
}

/// The Atom feed in `?lang=` or the reader's Accept-Language (default: the organisation's
/// language), its times in the organisation's time zone (`[render] time_zone`, Asia/Shanghai).
async fn the_feed_speaks_the_readers_language_in_the_organisations_time_zone(app: TestApp) {
    let id = pi_incident(&app, false, facts()).await;
    let v = publish_public(&app, id, "Legal decided").await;
    let slug = v["slug"].as_str().unwrap().to_string();
    let atom = "http://www.w3.org/2005/Atom";
    let parse = |xml: &str| -> (String, String, String, String, String) {
        let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        let feed = doc.root_element();
        let child = |n: roxmltree::Node, name: &str| {
            n.children()
                .find(|c| c.has_tag_name((atom, name)))
                .and_then(|c| c.text())
                .unwrap_or_default()
                .to_string()
        };
        let entry = feed
            .children()
            .find(|c| c.has_tag_name((atom, "entry")))
            .unwrap();
        (
            feed.attribute(("http://www.w3.org/XML/1998/namespace", "lang"))
                .unwrap_or_default()
                .to_string(),
            child(feed, "id"),
            child(entry, "id"),
            child(entry, "title"),
            child(entry, "updated"),
        )
    };
    // English, asked for: English words, its own ids, the time at +08:00.
    let (lang, feed_id, entry_id, title, updated) = parse(&feed_xml(&app, "?lang=en", None).await);
    assert_eq!(lang, "en");
    assert_eq!(feed_id, "http://127.0.0.1:8600/announcements?lang=en");
    assert_eq!(
        entry_id,
        format!("http://127.0.0.1:8600/announcements/{slug}?lang=en&version=1")
    );
    assert!(
        title.contains("announcement of a personal information security incident"),
        "{title}"
    );
    assert!(updated.ends_with("+08:00"), "{updated}");
    let at = chrono::DateTime::parse_from_rfc3339(&updated).unwrap();
    let (_, h) = app
        .get(&format!("/api/v1/incidents/{id}/announcement"))
        .await;
    let published: chrono::DateTime<chrono::Utc> = h["versions"][0]["published_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        at.timestamp(),
        published.timestamp(),
        "the moment it became public"
    );
    // By the reader's Accept-Language.
    let (lang, _, _, title, _) = parse(&feed_xml(&app, "", Some("en-GB, zh;q=0.5")).await);
    assert_eq!(lang, "en");
    assert!(title.contains("announcement of a personal"), "{title}");
    // Default: the organisation's language, at the plain addresses.
    let (lang, feed_id, entry_id, title, _) = parse(&feed_xml(&app, "", None).await);
    assert_eq!(lang, "zh-CN");
    assert_eq!(feed_id, "http://127.0.0.1:8600/announcements");
    assert_eq!(
        entry_id,
        format!("http://127.0.0.1:8600/announcements/{slug}?version=1")
    );
    assert!(title.contains("关于个人信息安全事件的公告"), "{title}");
    app.stop().await;
}

async fn each_version_is_pushed_to_the_webhook_signed(backend: Backend) {
    let sink = Sink::start().await;
    let config = format!(
        r#"
[[channels.webhooks]]
name = "public-site"
url = "{}"
secret = "{SECRET}"
timeout = "2s"

[announcements]
webhook = "public-site"
"#,
        sink.url("/hooks/announcements")
    );
    let Some(app) = TestApp::spawn_with(backend, &config).await else {
        return;
    };
    let id = pi_incident(&app, false, facts()).await;
    // Nothing is pushed while a version waits for its approval.
    let (s, v) = publish(&app, id, "individual notice impractical").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["webhook_delivery"].is_null(), "{v}");
    let slug = v["slug"].as_str().unwrap().to_string();
    decide_version(&app, &v, true).await;
    let pushed = |n: usize| {
        let app = &app;
        async move {
            app.events(id, "announcement.published")
                .await
                .get(n)
                .and_then(|e| e["data"]["webhook_delivery"].as_i64())
        }
    };
    let delivery = pushed(0).await.expect("version 1 pushed once approved");
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &common::both_languages(json!({"remedies": "A hotline, open every day."})),
    )
    .await;
    publish_public(&app, id, "remedies").await;
    assert_ne!(pushed(1).await.unwrap(), delivery);
    // Unchanged words push nothing.
    let (s, same) = publish(&app, id, "again").await;
    assert_eq!(s, StatusCode::OK);
    assert!(same["webhook_delivery"].is_null());

    app.wait_deliveries(id, 10, |d| {
        d["by_channel"]["webhook"]["sent"].as_i64() == Some(2)
    })
    .await;
    let got = sink.received();
    assert_eq!(got.len(), 2, "one push per version");
    for (r, version) in got.iter().zip([1, 2]) {
        assert_eq!(r.path, "/hooks/announcements");
        r.assert_signed(SECRET);
        let b = r.json();
        assert_eq!(b["purpose"], "announcement");
        assert_eq!(b["recipient"], "public-site");
        assert_eq!(b["data"]["slug"], slug);
        assert_eq!(b["data"]["version"], version);
        assert_eq!(
            b["data"]["url"],
            format!("http://127.0.0.1:8600/announcements/{slug}")
        );
        assert!(
            b["data"]["titles"]["en"]
                .as_str()
                .unwrap()
                .contains("announcement of a personal information security incident")
        );
        assert!(
            b["data"]["bodies"]["zh-CN"]
                .as_str()
                .unwrap()
                .contains("<h2>我们提供的补救措施</h2>")
        );
        assert!(
            r.header("idempotency-key")
                .unwrap()
                .contains(&format!("v{version}"))
        );
    }
    assert!(
        got[1].json()["data"]["bodies"]["en"]
            .as_str()
            .unwrap()
            .contains("A hotline, open every day.")
    );

    // A drill's push is stopped by the drill guard: the public never hears of a drill.
    let drill = pi_incident(&app, true, facts()).await;
    publish_public(&app, drill, "drill").await;
    assert!(
        app.events(drill, "announcement.published").await[0]["data"]["webhook_delivery"].is_i64()
    );
    let d = app
        .wait_deliveries(drill, 10, |d| {
            d["by_channel"]["webhook"]["dead"].as_i64() == Some(1)
        })
        .await;
    assert!(
        d["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("drill guard"),
        "{d}"
    );
    assert_eq!(sink.count(), 2, "nothing of the drill reached the site");
    app.stop().await;
}

// ---- the page in a real browser ----

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    })
}

/// Run chromium with `args` (headless), killing it after 90 s; its standard output.
fn run_chromium(bin: &Path, profile: &Path, args: &[String]) -> String {
    let mut child = std::process::Command::new(bin)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let Some(status) = common::exited_within(&mut child, Duration::from_secs(90)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium {args:?} did not finish in 90 s");
    };
    assert!(status.success(), "chromium {args:?} failed: {status}");
    reader.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_in_headless_chromium_in_both_languages() {
    if !common::have_browser("chromium", "apt-get install -y chromium fonts-wqy-zenhei") {
        return;
    }
    let Some(bin) = chromium() else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let id = pi_incident(&app, false, facts()).await;
    let v = publish_public(&app, id, "browser test").await;
    app.patch(
        &format!("/api/v1/incidents/{id}/facts"),
        &common::both_languages(json!({"remedies": "Twelve months of free credit monitoring."})),
    )
    .await;
    publish_public(&app, id, "update").await;
    let slug = v["slug"].as_str().unwrap().to_string();
    let artefacts = common::repo().join("target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let profile = tempfile::tempdir().unwrap();

    for (lang, title, section) in [
        (
            "en",
            "Test Co.: announcement of a personal information security incident",
            "What you can do to protect yourself",
        ),
        (
            "zh-CN",
            "Test Co.关于个人信息安全事件的公告",
            "您可以怎样保护自己",
        ),
    ] {
        let url = app.url(&format!("/announcements/{slug}?lang={lang}"));
        let shot = artefacts.join(format!("announcement-{lang}.png"));
        let _ = std::fs::remove_file(&shot);
        let (bin2, profile2, url2, shot2) = (
            bin.clone(),
            profile.path().to_path_buf(),
            url.clone(),
            shot.clone(),
        );
        // The daemon runs on this runtime: the browser waits on a blocking thread.
        let dom = tokio::task::spawn_blocking(move || {
            run_chromium(
                &bin2,
                &profile2,
                &[
                    format!("--screenshot={}", shot2.display()),
                    "--window-size=1024,1400".into(),
                    url2.clone(),
                ],
            );
            run_chromium(&bin2, &profile2, &["--dump-dom".into(), url2])
        })
        .await
        .unwrap();
        assert!(dom.contains(&format!("<html lang=\"{lang}\">")), "{dom}");
        assert!(dom.contains(title), "{title} not rendered: {dom}");
        assert!(dom.contains(section), "{dom}");
        assert!(
            dom.contains("free credit monitoring"),
            "the latest version: {dom}"
        );
        let png = std::fs::read(&shot)
            .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());
        eprintln!("screenshot: {}", shot.display());
    }
    app.stop().await;
}
