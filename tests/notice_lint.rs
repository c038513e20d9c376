//! The notice approval gate (`lint = "notice"` in the shipped PI playbook) refuses while the
//! incident's facts lack a required element of the notice to individuals, listing them in
//! English and Chinese; approving works once the facts are filled in; rejecting always works;
//! the PIPL exemption needs no notice content.

use crate::common;

use common::sink::Sink;
use common::{ADMIN, Backend, RESPONDER, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LEGAL: &str = "test-legal-approver-token";

on_both_backends!(
    the_notice_approval_lists_missing_facts_until_they_are_filled,
    rejecting_and_the_exemption_need_no_notice_content,
    public_text_that_looks_internal_needs_legal_and_a_reason,
    each_public_document_uses_the_public_text_in_its_language,
);

fn config(sink: &Sink) -> String {
    [
        common::paths(&[]),
        common::phone_gateways(sink, &["sms"]),
        common::page_every_severity_by(r#"["sms"]"#),
        common::approver("legal-approver", LEGAL, "legal"),
        common::departments("1h", |n, d| vec![common::Member::on_call(n, d)]),
    ]
    .concat()
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, path, Some(token), Some(&body)).await
}

async fn task(app: &TestApp, id: i64, key: &str) -> Value {
    common::wait_until(&format!("task {key}"), 10, async || {
        let (s, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["key"] == key)
            .cloned()
    })
    .await
}

/// A PI incident whose notice approval is no longer blocked by other tasks; its approval id.
async fn notice_ready(app: &TestApp) -> (i64, i64) {
    let id = app
        .declare(&json!({"title": "会员库备份被下载", "category": "pi_leak"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let gate = task(app, id, "approve_notice").await["id"]
        .as_i64()
        .unwrap();
    for key in ["contain", "assess_affected", "prepare_notice"] {
        let path = format!("/api/v1/incidents/{id}/tasks/{key}/complete");
        let (s, v) = post(app, &path, RESPONDER, json!({"note": "done"})).await;
        assert_eq!(s, StatusCode::OK, "{key}: {v}");
    }
    (id, gate)
}

async fn set_facts(app: &TestApp, id: i64, facts: Value) {
    let (s, v) = app
        .patch(&format!("/api/v1/incidents/{id}/facts"), &facts)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn decisions(app: &TestApp, id: i64) -> usize {
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "approval.decided")
        .count()
}

async fn the_notice_approval_lists_missing_facts_until_they_are_filled(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink)).await else {
        return;
    };
    let (id, gate) = notice_ready(&app).await;
    set_facts(
        &app,
        id,
        json!({"cause": "A backup was public.", "data_types": ["name", "phone"], "remedies": "  "}),
    )
    .await;
    let approve = format!("/api/v1/approvals/{gate}/approve");
    let (s, v) = post(&app, &approve, LEGAL, json!({"reason": "ok"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let detail = v["detail"].as_str().unwrap();
    for want in [
        "approves the notice to individuals and cannot be approved yet",
        "lack 4 of its required elements",
        "the possible impact / 可能造成的影响 (fact `impact`)",
        "the measures taken / 已采取的补救措施 (fact `measures_taken`)",
        "what people can do to reduce the risk / 个人可采取的防范和减轻风险的措施 (fact `advice_to_subjects`)",
        "the remedies offered / 提供的补救方式 (fact `remedies`)",
        &format!("PATCH /api/v1/incidents/{id}/facts"),
    ] {
        assert!(detail.contains(want), "`{want}` not in: {detail}");
    }
    // What is there, and the contact (the organisation's stands in), is not listed.
    let list = detail
        .split_once("required elements — ")
        .and_then(|(_, rest)| rest.split_once(" — fill them in"))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no list in: {detail}"));
    assert_eq!(list.split("; ").count(), 4, "{list}");
    for not in [
        "what happened",
        "kinds of personal information",
        "contact of",
        "planned",
    ] {
        assert!(!list.contains(not), "`{not}` listed: {list}");
    }
    assert_eq!(
        v["type"], "about:blank",
        "problem+json like every refusal: {v}"
    );
    // Nothing was approved or recorded.
    let t = task(&app, id, "approve_notice").await;
    assert_eq!(t["status"], "open", "{t}");
    assert_eq!(decisions(&app, id).await, 0);

    set_facts(
        &app,
        id,
        json!({
            "impact": "Names and phone numbers may be used for fraud calls.",
            "measures_taken": "The backup was made private and keys rotated.",
            "advice_to_subjects": "Be wary of calls claiming to be from us.",
            "remedies": "A hotline and a year of login alerts.",
        }),
    )
    .await;
    let (s, v) = post(&app, &approve, LEGAL, json!({"reason": "complete"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(decisions(&app, id).await, 1);
    app.stop().await;
}

async fn rejecting_and_the_exemption_need_no_notice_content(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink)).await else {
        return;
    };
    // Rejecting an incomplete notice is what Legal should be able to do.
    let (_, gate) = notice_ready(&app).await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{gate}/reject"),
        LEGAL,
        json!({"reason": "the facts are not known yet"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "rejected");

    // The PIPL exemption: nobody is told, so approving that decision needs no notice content —
    // but not while a regulator requires notice.
    let (id, gate) = notice_ready(&app).await;
    set_facts(
        &app,
        id,
        json!({"mitigation_effective": true, "mitigation_justification": "encrypted; keys safe",
               "regulator_requires_notice": true}),
    )
    .await;
    let approve = format!("/api/v1/approvals/{gate}/approve");
    let (s, v) = post(&app, &approve, LEGAL, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    set_facts(&app, id, json!({"regulator_requires_notice": false})).await;
    let (s, v) = post(&app, &approve, LEGAL, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
    app.stop().await;
}

/// Every element of the notice, in both languages; `cause` as given.
fn notice_facts(cause: Value) -> Value {
    json!({
        "data_types": ["phone", "id_number"],
        "cause": cause,
        "impact": {"zh-CN": "手机号码可能被用于诈骗电话", "en": "Phone numbers may be used for fraud calls"},
        "measures_taken": {"zh-CN": "已阻断导出主机", "en": "The export host was blocked"},
        "advice_to_subjects": {"zh-CN": "警惕自称本公司的来电", "en": "Beware of calls claiming to be from us"},
        "remedies": {"zh-CN": "一年免费登录提醒", "en": "A year of free login alerts"},
    })
}

const INTERNAL_ZH: &str = "服务账号 svc-backup 将 crm.customers 表导出至 198.51.100.7";
const INTERNAL_EN: &str =
    "The service account svc-backup exported the table crm.customers to 198.51.100.7";

/// The DLP scenario's cause, written for the security team: the notice gate warns that the
/// public would read an IP address, an account and a table; only Legal may approve anyway,
/// with a reason, which is recorded. With a public version there is nothing to warn about.
async fn public_text_that_looks_internal_needs_legal_and_a_reason(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink)).await else {
        return;
    };
    let (id, gate) = notice_ready(&app).await;
    set_facts(
        &app,
        id,
        notice_facts(json!({"zh-CN": INTERNAL_ZH, "en": INTERNAL_EN})),
    )
    .await;
    let approve = format!("/api/v1/approvals/{gate}/approve");
    let (s, v) = post(&app, &approve, LEGAL, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let detail = v["detail"].as_str().unwrap();
    for needle in [
        "cause (en)",
        "cause (zh-CN)",
        "`198.51.100.7` (an IP address)",
        "`svc-backup` (an account name)",
        "`crm.customers` (a table name)",
        "Legal may approve anyway, saying why (incidentd approve",
    ] {
        assert!(detail.contains(needle), "{needle}: {v}");
    }
    assert_eq!(decisions(&app, id).await, 0);
    // A reason alone is not an override: approving "with a reason" out of habit is still
    // refused, with the same warning; an override without a reason is a mistake.
    let (s, v) = post(&app, &approve, LEGAL, json!({"reason": "wording checked"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("--override-warning"),
        "{v}"
    );
    let (s, v) = post(&app, &approve, LEGAL, json!({"override_warning": true})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["path"], "override_warning", "{v}");
    assert_eq!(decisions(&app, id).await, 0);
    // Legal overrides deliberately, with a reason: approved, and the warning and the reason
    // are on record.
    let (s, v) = post(
        &app,
        &approve,
        LEGAL,
        json!({"override_warning": true, "reason": "the customers asked for the technical detail"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved", "{v}");
    let (_, tl) = app
        .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
        .await;
    let o = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "notice.lint_overridden")
        .unwrap_or_else(|| panic!("{tl:#}"));
    assert_eq!(
        o["data"]["reason"],
        "the customers asked for the technical detail"
    );
    assert!(
        o["data"]["warning"]
            .as_str()
            .unwrap()
            .contains("198.51.100.7")
    );

    // With a public version, the same internal detail stays internal: approved as it is.
    let (id, gate) = notice_ready(&app).await;
    set_facts(
        &app,
        id,
        notice_facts(json!({
            "internal": {"zh-CN": INTERNAL_ZH, "en": INTERNAL_EN},
            "public": {"zh-CN": "客户数据库被导出", "en": "Our customer database was exported"},
        })),
    )
    .await;
    let (s, v) = post(
        &app,
        &format!("/api/v1/approvals/{gate}/approve"),
        LEGAL,
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}

/// The announcement in each language carries that language's public text; a language without
/// text is refused, naming the fact and the language.
async fn each_public_document_uses_the_public_text_in_its_language(backend: Backend) {
    let sink = Sink::start().await;
    let Some(app) = TestApp::spawn_with(backend, &config(&sink)).await else {
        return;
    };
    let (id, _) = notice_ready(&app).await;
    set_facts(
        &app,
        id,
        notice_facts(
            json!({"internal": {"zh-CN": INTERNAL_ZH}, "public": {"zh-CN": "客户数据库被导出"}}),
        ),
    )
    .await;
    let path = format!("/api/v1/incidents/{id}/announcement");
    let (s, v) = post(&app, &path, RESPONDER, json!({"reason": "public interest"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("cause (en)"), "{v}");
    set_facts(
        &app,
        id,
        json!({"cause": {
            "internal": {"zh-CN": INTERNAL_ZH, "en": INTERNAL_EN},
            "public": {"zh-CN": "客户数据库被导出", "en": "Our customer database was exported"},
        }}),
    )
    .await;
    let (s, v) = post(&app, &path, RESPONDER, json!({"reason": "public interest"})).await;
    assert!(s.is_success(), "{v}");
    // Nothing is public before its approval (the admin token acts for every approver).
    let task = v["approval_task"]
        .as_i64()
        .unwrap_or_else(|| panic!("no approval task: {v}"));
    let (s, t) = post(
        &app,
        &format!("/api/v1/approvals/{task}/approve"),
        ADMIN,
        json!({}),
    )
    .await;
    assert!(s.is_success(), "{t}");
    let slug = v["slug"]
        .as_str()
        .unwrap_or_else(|| panic!("{v:#}"))
        .to_string();
    for (lang, want) in [
        ("en", "Our customer database was exported"),
        ("zh-CN", "客户数据库被导出"),
    ] {
        let res = app
            .http
            .get(app.url(&format!("/announcements/{slug}?lang={lang}")))
            .send()
            .await
            .unwrap();
        let html = res.text().await.unwrap();
        assert!(html.contains(want), "{lang}: {html}");
        for internal in ["svc-backup", "crm.customers", "198.51.100.7"] {
            assert!(!html.contains(internal), "{lang}: {internal}: {html}");
        }
    }
    app.stop().await;
}
