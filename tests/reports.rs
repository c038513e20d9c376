//! Regulator reports. Golden (snapshot) tests of the shipped `regulator/*` templates rendered
//! from the shipped jurisdiction packs, in both languages; the required-field lint; and, through
//! the running daemon on both backends, drafting, the approval gate, submission and immutability.
//!
//! Refresh the goldens after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test stories reports::golden`, then review the diff of `tests/golden/`.

use crate::common;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use common::sink::Sink;
use common::smtp::Smtp;
use common::{Backend, RESPONDER, TestApp, wait_for};
use incidentd::config::{OrganisationConfig, RenderConfig};
use incidentd::domain::records::Incident;
use incidentd::domain::regulation::{OperatorType, Pack, Packs};
use incidentd::render::Templates;
use incidentd::render::report::{
    AssessmentInfo, DraftError, Header, LintError, Sources, Stats, Step,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    drafting_lists_what_is_missing_and_a_partial_report_marks_what_follows,
    approval_needs_government_relations_and_legal_and_refuses_an_incomplete_version,
    a_report_is_submitted_by_email_and_is_then_immutable,
    a_report_is_submitted_by_signed_webhook,
    by_hand_needs_the_reference_and_past_the_deadline_the_reason,
    a_drill_report_never_reaches_the_regulator,
    the_cli_drafts_shows_submits_and_summarises,
    approving_the_report_satisfies_the_playbook_gate_and_versions_count_per_report,
    closing_is_refused_with_open_work_unless_forced_with_a_reason,
    a_report_is_met_when_its_channel_accepts_it_and_open_again_when_it_dies,
    the_shipped_regulators_take_the_pipl_authority_report_by_email,
    each_jurisdiction_reports_its_own_people_and_words_and_unused_inputs_are_refused,
);

fn templates() -> Templates {
    let cfg = RenderConfig {
        time_zone: "Asia/Shanghai".into(),
        ..RenderConfig::default()
    };
    Templates::load(&common::repo().join("templates"), &cfg)
        .unwrap_or_else(|e| panic!("{}", e.join("\n")))
}

fn packs(t: &Templates) -> Packs {
    incidentd::config::files::packs(&common::repo().join("config/jurisdictions"), &[], &|name| {
        !t.locales(name).is_empty()
    })
    .unwrap_or_else(|e| panic!("{}", e.join("\n")))
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn org() -> OrganisationConfig {
    OrganisationConfig {
        name: "示例科技有限公司".into(),
        operator_type: OperatorType::Other,
        jurisdictions: vec!["CN".parse().unwrap()],
        contact: "个人信息保护负责人 李四 +86 10 1234 5678 privacy@example.com".into(),
        default_locale: "zh-CN".into(),
        default_region: None,
    }
}

/// A personal-information leak with every fact the reports ask for.
fn incident() -> Incident {
    serde_json::from_value(json!({
        "id": 42,
        "title": "会员数据库备份文件遭未授权访问",
        "summary": "对象存储中的一份会员数据库备份被设置为公开访问。",
        "category": "pi_leak",
        "severity": "S1",
        "status": "contained",
        "drill": false,
        "origin": "declaration",
        "rule": null,
        "facts": {
            "affected_subjects": 1_250_000,
            "affected_subjects_estimated": true,
            "records_affected": 1_310_412,
            "data_types": ["name", "phone", "email"],
            "jurisdictions": ["CN", "SG", "EU"],
            // Each regulator's report carries its own jurisdiction's figures.
            "by_jurisdiction": {
                "CN": {"affected_subjects": 1_243_800},
                "SG": {"affected_subjects": 4_200, "affected_subjects_estimated": false, "data_types": ["name", "phone"]},
                "EU": {"affected_subjects": 2_000},
            },
            "risk": "high",
            // Free text per locale: each report in its own language. Regulators read the
            // internal version (here of the cause); the public version is for notices.
            "title": {
                "zh-CN": "会员数据库备份文件遭未授权访问",
                "en": "Unauthorised access to a member-database backup file",
            },
            "cause": {
                "internal": {
                    "zh-CN": "一份会员数据库备份文件因存储权限配置错误被设置为公开访问，期间被外部地址下载。",
                    "en": "A member-database backup file was made publicly readable by a storage permission misconfiguration and was downloaded from an external address.",
                },
                "public": {
                    "zh-CN": "一份数据备份因配置错误可被公开访问。",
                    "en": "A data backup was publicly accessible because of a configuration error.",
                },
            },
            "impact": {
                "zh-CN": "姓名、手机号码和电子邮箱地址可能被用于诈骗电话、短信或钓鱼邮件。",
                "en": "Names, phone numbers and e-mail addresses may be used for fraud calls, text messages or phishing e-mails.",
            },
            "measures_taken": {
                "zh-CN": "已关闭公开访问、更换访问密钥、保全访问日志，并启动全量排查。",
                "en": "Public access was removed, access keys rotated, access logs preserved and a full review started.",
            },
            "measures_planned": {
                "zh-CN": "全面排查存储权限配置，对备份文件加密并加强访问审计；请求协助追查下载来源。",
                "en": "Review every storage permission, encrypt backup files and strengthen access auditing; assistance requested to trace the download.",
            },
            "advice_to_subjects": {
                "zh-CN": "警惕自称本公司工作人员的来电、短信和邮件，不向任何人提供验证码。",
                "en": "Beware of calls, text messages and e-mails claiming to be from us; never give anyone a verification code.",
            },
            "remedies": {
                "zh-CN": "免费提供12个月账户异常登录提醒服务。",
                "en": "12 months of free alerts of unusual log-ins to your account.",
            }
        },
        "facts_version": 5,
        "first_seen_at": "2025-06-01T06:05:00Z",
        "discovered_at": "2025-06-01T06:05:00Z",
        "declared_at": "2025-06-01T06:20:00Z",
        "aware_at": "2025-06-01T06:30:00Z",
        "assessed_notifiable_at": "2025-06-01T08:00:00Z",
        "handling_closed_at": "2025-06-20T10:00:00Z",
        "contained_at": "2025-06-01T07:10:00Z",
        "closed_at": "2025-06-20T10:00:00Z",
        "updated_at": "2025-06-20T10:00:00Z",
        "alert_count": 3,
        "truncated_alerts": 0,
        "created_by": "oncall"
    }))
    .unwrap()
}

fn steps() -> Vec<Step> {
    [
        (
            "2025-06-01T06:05:00Z",
            "Alert: public read access on the member-database backup bucket",
        ),
        (
            "2025-06-01T06:20:00Z",
            "Incident declared by the security on-call engineer",
        ),
        (
            "2025-06-01T07:10:00Z",
            "Public access removed and access keys rotated: contained",
        ),
        (
            "2025-06-01T08:00:00Z",
            "Breach assessed notifiable: 1,250,000 individuals, contact data",
        ),
    ]
    .iter()
    .map(|(t, s)| Step {
        at: at(t),
        text: s.to_string(),
    })
    .collect()
}

fn pack<'a>(packs: &'a Packs, code: &str) -> &'a Pack {
    packs.get(&code.parse().unwrap()).unwrap()
}

struct Case {
    code: &'static str,
    obligation: &'static str,
    report: &'static str,
    inputs: &'static [(&'static str, &'static str)],
    partial: bool,
    due_at: &'static str,
    drafted_at: &'static str,
}

fn render(case: &Case) -> Result<incidentd::render::report::Draft, DraftError> {
    let t = templates();
    let packs = packs(&t);
    let pack = pack(&packs, case.code);
    let inc = incident();
    let org = org();
    let inputs: BTreeMap<String, String> = case
        .inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let steps = steps();
    let def = pack.obligation(case.obligation).unwrap();
    let recipient = def
        .recipient
        .clone()
        .or_else(|| def.recipient_by_operator.get(&OperatorType::Other).cloned());
    let grade = match case.code {
        "CN" => "较大 / relatively major (III)",
        "EU" => "High risk to rights and freedoms",
        _ => "Notifiable: significant harm and significant scale",
    };
    let assessment = AssessmentInfo {
        grade: Some("III".into()),
        grade_name: Some(grade.into()),
        why: None,
        deadline: Some(at(case.due_at)),
        late_reason: None,
    };
    let stats = Stats::default();
    let src = Sources {
        incident: &inc,
        org: &org,
        assessment: &assessment,
        stats: &stats,
        events: &steps,
        steps: &steps,
        inputs: &inputs,
    };
    let header = Header {
        id: Some(7),
        version: 1,
        kind: None,
        partial: case.partial,
        jurisdiction: case.code.into(),
        obligation: case.obligation.into(),
        title: def.title.clone(),
        law: def.law.clone(),
        recipient_name: recipient.as_deref().map(|r| pack.recipient_name(r)),
        recipient_id: recipient,
        due_at: Some(at(case.due_at)),
        late_reason: None,
        grade: Some(grade.into()),
        drafted_at: at(case.drafted_at),
    };
    incidentd::render::report::draft(&t, pack, case.report, &src, &header)
}

const CN_INITIAL_INPUTS: &[(&str, &str)] = &[
    ("system", "会员中心对象存储（备份桶 member-backup）"),
    (
        "location",
        "上海数据中心；由安全运营中心的对象存储公开访问告警发现",
    ),
    (
        "likely_development",
        "数据可能在黑市流通，诈骗短信可能增加；暂未发现进一步扩散。",
    ),
    (
        "tracing",
        "攻击路径：公开桶的匿名列目录与下载；来源 IP 203.0.113.7；未利用漏洞。",
    ),
];

/// Compare with `tests/golden/<name>.{md,html}`, or write them with `UPDATE_GOLDEN=1`.
fn golden(name: &str, d: &incidentd::render::report::Draft) {
    let dir = common::repo().join("tests/golden");
    let md = format!("Subject: {}\n\n{}\n", d.subject, d.markdown);
    let html = format!("{}\n", d.html);
    for (ext, got) in [("md", &md), ("html", &html)] {
        let path = dir.join(format!("{name}.{ext}"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test stories reports::golden",
                path.display()
            )
        });
        assert!(
            &want == got,
            "{} differs from the rendering (refresh with UPDATE_GOLDEN=1 cargo test --test stories reports::golden, then review the diff):\n--- rendered ---\n{got}",
            path.display()
        );
    }
}

#[test]
fn golden_cn_initial_zh() {
    let d = render(&Case {
        code: "CN",
        obligation: "cac_report_other",
        report: "cac_initial",
        inputs: CN_INITIAL_INPUTS,
        partial: false,
        due_at: "2025-06-01T10:05:00Z",
        drafted_at: "2025-06-01T08:30:00Z",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.locale, "zh-CN");
    assert!(d.to_follow.is_empty());
    // Numbers with separators, data types in words, times in the pack's zone (+08:00).
    assert!(d.markdown.contains("1,243,800（估计）"), "{}", d.markdown);
    assert!(!d.markdown.contains("1,250,000（估计）"), "{}", d.markdown);
    assert!(d.markdown.contains("姓名、手机号码、电子邮箱地址"));
    assert!(d.markdown.contains("2025年06月01日 14:05（UTC+08:00）"));
    golden("cn_initial.zh-CN", &d);
}

#[test]
fn golden_cn_initial_partial_zh() {
    // Only the basic items: the rest is marked 待补充 (to follow).
    let d = render(&Case {
        code: "CN",
        obligation: "cac_report_other",
        report: "cac_initial",
        inputs: &[("system", "会员中心对象存储（备份桶 member-backup）")],
        partial: true,
        due_at: "2025-06-01T10:05:00Z",
        drafted_at: "2025-06-01T08:30:00Z",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let follows: Vec<&str> = d.to_follow.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(follows, ["location", "likely_development", "tracing"]);
    assert!(d.markdown.contains("待补充"));
    assert!(d.subject.contains("部分事项待补充"));
    golden("cn_initial_partial.zh-CN", &d);
}

#[test]
fn golden_cn_closing_zh() {
    let d = render(&Case {
        code: "CN",
        obligation: "cac_closing",
        report: "cac_closing",
        inputs: &[
            ("system", "会员中心对象存储（备份桶 member-backup）"),
            (
                "accountability",
                "运维组未执行备份桶权限复核流程；已对责任人作出处理。",
            ),
            (
                "remediation",
                "备份桶默认私有并强制加密；权限变更纳入双人复核；每日自动巡检公开访问。",
            ),
            (
                "lessons",
                "备份数据与生产数据同等保护；公开访问告警须在15分钟内响应。",
            ),
        ],
        partial: false,
        due_at: "2025-07-20T10:00:00Z",
        drafted_at: "2025-06-25T02:00:00Z",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(d.markdown.contains("总结报告"));
    golden("cn_closing.zh-CN", &d);
}

#[test]
fn golden_sg_pdpc_en() {
    let d = render(&Case {
        code: "SG",
        obligation: "pdpc_report",
        report: "pdpc_notification",
        inputs: &[
            ("how_aware", "Our security monitoring alerted on public read access to a backup bucket."),
            ("notification_plan", "Affected individuals are told by e-mail and SMS from 2 June 2025; a public notice is on our website."),
        ],
        partial: false,
        due_at: "2025-06-04T15:59:59Z",
        drafted_at: "2025-06-01T09:00:00Z",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.locale, "en");
    // Singapore's own count (exact) and data types, not the whole incident's.
    assert!(d.markdown.contains("\n4,200\n"), "{}", d.markdown);
    assert!(
        !d.markdown.contains("1,250,000 (estimated)"),
        "{}",
        d.markdown
    );
    assert!(
        d.markdown.contains("name, phone number\n"),
        "{}",
        d.markdown
    );
    // The chronological account, as a list, in Singapore time.
    assert!(
        d.markdown
            .contains("- 2025-06-01 14:20 (UTC+08:00) — Incident declared"),
        "{}",
        d.markdown
    );
    golden("sg_pdpc.en", &d);
}

#[test]
fn golden_eu_sa_en() {
    let d = render(&Case {
        code: "EU",
        obligation: "sa_report",
        report: "sa_notification",
        inputs: &[(
            "categories_of_subjects",
            "Customers (members of the loyalty programme)",
        )],
        partial: false,
        due_at: "2025-06-04T06:30:00Z",
        drafted_at: "2025-06-01T09:00:00Z",
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(d.markdown.contains("1,310,412"));
    assert!(d.markdown.contains("2,000 (estimated)"), "{}", d.markdown);
    assert!(d.markdown.contains("2025-06-01 07:30 (UTC+01:00)"));
    golden("eu_sa.en", &d);
}

#[test]
fn a_report_missing_required_fields_is_refused_listing_each() {
    let e = render(&Case {
        code: "CN",
        obligation: "cac_report_other",
        report: "cac_initial",
        inputs: &[],
        partial: false,
        due_at: "2025-06-01T10:05:00Z",
        drafted_at: "2025-06-01T08:30:00Z",
    })
    .unwrap_err();
    let DraftError::Lint(LintError::Missing(m)) = e else {
        panic!("{e}")
    };
    let ids: Vec<&str> = m.iter().map(|x| x.field.as_str()).collect();
    assert_eq!(ids, ["system", "location", "likely_development", "tracing"]);
    assert_eq!(m[0].label, "受影响的设施、系统或平台");
    assert!(m[0].how.contains("--input system="), "{}", m[0].how);
}

#[test]
fn a_partial_report_still_needs_the_fields_that_may_not_follow() {
    // `system` is not in may_follow: a partial initial report without it is refused.
    let e = render(&Case {
        code: "CN",
        obligation: "cac_report_other",
        report: "cac_initial",
        inputs: &[],
        partial: true,
        due_at: "2025-06-01T10:05:00Z",
        drafted_at: "2025-06-01T08:30:00Z",
    })
    .unwrap_err();
    let DraftError::Lint(LintError::Missing(m)) = e else {
        panic!("{e}")
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].field, "system");
}

#[test]
fn a_closing_report_cannot_be_partial() {
    let e = render(&Case {
        code: "CN",
        obligation: "cac_closing",
        report: "cac_closing",
        inputs: &[],
        partial: true,
        due_at: "2025-07-20T10:00:00Z",
        drafted_at: "2025-06-25T02:00:00Z",
    })
    .unwrap_err();
    assert!(
        matches!(&e, DraftError::Lint(LintError::PartialNotAllowed(m)) if m.contains("closing report")),
        "{e}"
    );
}

#[test]
fn every_pack_report_renders_with_its_template() {
    // Whatever the packs ship, each report's template renders in the pack's language for an
    // incident with every fact and input.
    let t = templates();
    let packs = packs(&t);
    for pack in packs.all() {
        for (id, spec) in &pack.reports {
            let inputs: BTreeMap<String, String> = pack
                .fields
                .values()
                .filter_map(|f| f.from.strip_prefix("input."))
                .map(|n| (n.to_string(), format!("value of {n}")))
                .collect();
            let inc = incident();
            let org = org();
            let steps = steps();
            let assessment = AssessmentInfo {
                grade_name: Some("g".into()),
                ..Default::default()
            };
            let stats = Stats::default();
            let src = Sources {
                incident: &inc,
                org: &org,
                assessment: &assessment,
                stats: &stats,
                events: &steps,
                steps: &steps,
                inputs: &inputs,
            };
            let header = Header {
                version: 1,
                drafted_at: at("2025-06-01T09:00:00Z"),
                ..Default::default()
            };
            let d = incidentd::render::report::draft(&t, pack, id, &src, &header)
                .unwrap_or_else(|e| panic!("{} {id} ({}): {e}", pack.code, spec.template));
            assert!(!d.subject.is_empty() && !d.html.is_empty());
        }
    }
}

// ------------------------------------------------------------------ through the daemon

const GR: &str = "test-government-relations-token";
const LEGAL: &str = "test-legal-token";
const HOOK_SECRET: &str = "regulator-hook-secret-0123456789";

/// Shipped templates, playbooks and packs; the six departments paged by SMS to `pager`; GR and
/// Legal approver tokens; `extra` (channels, regulators).
fn daemon_config(pager: &Sink, extra: &str) -> String {
    format!(
        r#"
{}
[dispatch]
poll_interval = "100ms"
backoff_base = "200ms"
backoff_max = "400ms"
{}{}{}{}
{extra}
{}"#,
        common::paths(&[(
            "jurisdictions",
            &common::repo().join("config/jurisdictions")
        )]),
        common::phone_gateways(pager, &["sms"]),
        common::page_every_severity_by(r#"["sms"]"#),
        common::approver("gr", GR, "government_relations"),
        common::approver("legal", LEGAL, "legal"),
        common::departments("1h", |n, d| vec![common::Member::on_call(n, d)]),
    )
}

/// A PI leak of 1.2 million people discovered `ago` seconds ago (CN grade III: the CAC report
/// is owed within 4 h of discovery; PIPL: the authority within 24 h of awareness).
async fn leak(app: &TestApp, ago: i64, drill: bool, complete: bool) -> i64 {
    let at = chrono::DateTime::from_timestamp(Utc::now().timestamp() - ago, 0).unwrap();
    let mut facts = json!({
        "affected_subjects": 1_200_000,
        "data_types": ["name", "phone"],
        "jurisdictions": ["CN"],
    });
    if complete {
        for (k, v) in [
            ("cause", "备份桶权限配置错误"),
            ("impact", "可能被用于诈骗"),
            ("measures_taken", "已关闭公开访问"),
            ("measures_planned", "全面排查"),
            ("advice_to_subjects", "警惕诈骗电话"),
        ] {
            facts[k] = json!(v);
        }
    }
    let inc = app
        .declare(&json!({
            "title": "会员库泄露", "category": "pi_leak", "drill": drill,
            "discovered_at": at, "aware_at": at, "facts": facts,
        }))
        .await;
    inc["id"].as_i64().unwrap()
}

const INPUTS: &str = r#"{"system": "会员中心", "location": "上海机房", "likely_development": "可能扩散", "tracing": "公开桶匿名下载"}"#;

async fn draft(app: &TestApp, id: i64, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/incidents/{id}/reports"), RESPONDER, &body)
        .await
}

async fn decide(app: &TestApp, token: &str, task: i64, approve: bool) -> (StatusCode, Value) {
    let (verb, body) = if approve {
        ("approve", json!({}))
    } else {
        ("reject", json!({"reason": "wrong figures"}))
    };
    app.post(&format!("/api/v1/approvals/{task}/{verb}"), token, &body)
        .await
}

/// Draft the complete CAC initial report and have GR and Legal approve it.
async fn approved(app: &TestApp, id: i64) -> Value {
    let (s, r) = draft(
        app,
        id,
        json!({"obligation": "CN:cac_report_other", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let task = r["approval_task"].as_i64().unwrap();
    for t in [GR, LEGAL] {
        let (s, v) = decide(app, t, task, true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    r
}

async fn submit(app: &TestApp, id: i64, rid: i64, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/incidents/{id}/reports/{rid}/submit"),
        RESPONDER,
        &body,
    )
    .await
}

async fn obligation(app: &TestApp, id: i64, key: &str) -> Value {
    let (s, v) = app
        .get(&format!("/api/v1/incidents/{id}/obligations"))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == key)
        .unwrap_or_else(|| panic!("no obligation {key}: {v:#}"))
        .clone()
}

async fn drafting_lists_what_is_missing_and_a_partial_report_marks_what_follows(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, "")).await
    else {
        return;
    };
    let id = leak(&app, 600, false, false).await;

    // Unknown keys and obligations that are not reports are refused, naming the reports owed.
    let (s, v) = draft(&app, id, json!({"obligation": "CN:nope"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("CN:cac_report_other"),
        "{v}"
    );
    let (s, v) = draft(&app, id, json!({"obligation": "CN:pipl_individuals"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("notify_individuals"),
        "{v}"
    );

    // Missing inputs and facts: refused with each field, its label and how to fill it.
    let (s, v) = draft(&app, id, json!({"obligation": "CN:cac_report_other"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "report_incomplete");
    let missing: Vec<&str> = v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        [
            "system",
            "location",
            "harm",
            "measures_taken",
            "likely_development",
            "cause",
            "tracing",
            "next_steps"
        ]
    );
    let cause = &v["missing"][5];
    assert_eq!(cause["label"], "初步原因");
    assert!(
        cause["how"]
            .as_str()
            .unwrap()
            .contains(&format!("PATCH /api/v1/incidents/{id}/facts"))
    );
    assert!(v["detail"].as_str().unwrap().contains("初步原因"), "{v}");
    assert!(app.get(&format!("/api/v1/incidents/{id}/reports")).await.1["items"] == json!([]));

    // Partial: what may follow is marked 待补充; what may not (measures taken) still refuses.
    let (s, v) = draft(
        &app,
        id,
        json!({"obligation": "CN:cac_report_other", "partial": true, "inputs": {"system": "会员中心"}}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["missing"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["missing"][0]["field"], "measures_taken");
    let (s, f) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"measures_taken": "已关闭公开访问"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let (s, v1) = draft(
        &app,
        id,
        json!({"obligation": "CN:cac_report_other", "partial": true, "inputs": {"system": "会员中心"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v1}");
    assert_eq!(
        (v1["version"].as_i64(), v1["status"].as_str()),
        (Some(1), Some("draft"))
    );
    let follows: Vec<&str> = v1["to_follow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        follows,
        [
            "location",
            "harm",
            "likely_development",
            "cause",
            "tracing",
            "next_steps"
        ]
    );
    let rid = v1["id"].as_i64().unwrap();
    let (ctype, text) = document(&app, &format!("/api/v1/reports/{rid}?format=markdown")).await;
    assert!(ctype.starts_with("text/markdown"), "{ctype}");
    assert!(text.contains("## 四、发现地点\n\n待补充"), "{text}");
    assert!(text.contains("会员中心"));
    let (_, full) = app.get(&format!("/api/v1/reports/{rid}")).await;
    assert!(
        full["html"].as_str().unwrap().contains("<em>待补充</em>"),
        "{full}"
    );

    // A new version supersedes the old one and closes its approval.
    let (s, v2) = draft(&app, id, json!({"obligation": "CN:cac_report_other", "partial": true, "inputs": {"system": "会员中心", "tracing": "匿名下载"}})).await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    let (_, list) = app.get(&format!("/api/v1/incidents/{id}/reports")).await;
    let st: Vec<(i64, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_i64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(st, [(1, "superseded"), (2, "draft")]);
    let (s, v) = decide(&app, GR, v1["approval_task"].as_i64().unwrap(), true).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    app.stop().await;
}

async fn approval_needs_government_relations_and_legal_and_refuses_an_incomplete_version(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, "")).await
    else {
        return;
    };
    let id = leak(&app, 600, false, true).await;
    let (s, r) = draft(&app, id, json!({"obligation": "CN:cac_report_other", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (rid, task) = (
        r["id"].as_i64().unwrap(),
        r["approval_task"].as_i64().unwrap(),
    );
    // Government Relations alone is not enough: the version stays a draft and cannot go out.
    let (s, v) = decide(&app, GR, task, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "open");
    let (s, v) = submit(
        &app,
        id,
        rid,
        json!({"via": "manual", "reference": "X", "submitted_at": Utc::now()}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("waits for its approval"),
        "{v}"
    );
    // A viewer or a responder without the department cannot decide it.
    let (s, _) = decide(&app, RESPONDER, task, true).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = decide(&app, LEGAL, task, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "approved");
    let (_, shown) = app.get(&format!("/api/v1/reports/{rid}")).await;
    assert_eq!(shown["status"], "approved");

    // A version stored incomplete (the pack changed underneath, or a bug) is refused at
    // approval: the lint runs again against the pack.
    let (s, r2) = draft(&app, id, json!({"obligation": "CN:cac_report_other", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()})).await;
    assert_eq!(s, StatusCode::CREATED, "{r2}");
    let rid2 = r2["id"].as_i64().unwrap();
    app.sql(&[&format!(
        "UPDATE reports SET fields = REPLACE(fields, '\"value\":\"会员中心\"', '\"value\":null') WHERE id = {rid2}"
    )])
    .await;
    let (s, v) = decide(&app, GR, r2["approval_task"].as_i64().unwrap(), true).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("受影响的设施、系统或平台"),
        "{v}"
    );
    // Rejecting is always allowed.
    let (s, v) = decide(&app, LEGAL, r2["approval_task"].as_i64().unwrap(), false).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, shown) = app.get(&format!("/api/v1/reports/{rid2}")).await;
    assert_eq!(shown["status"], "rejected");
    app.stop().await;
}

async fn a_report_is_submitted_by_email_and_is_then_immutable(backend: Backend) {
    let smtp = Smtp::start();
    let extra = format!(
        "[channels.email]\nsmtp_url = \"{}\"\nfrom = \"Security <security@example.com>\"\n\n\
         [[regulators]]\nid = \"cac_provincial\"\nname = \"省网信办\"\nemail = \"report@cac.example.gov.cn\"\n",
        smtp.url()
    );
    let Some(app) =
        TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, &extra)).await
    else {
        return;
    };
    let id = leak(&app, 600, false, true).await;
    let r = approved(&app, id).await;
    let rid = r["id"].as_i64().unwrap();
    let (s, v) = submit(&app, id, rid, json!({"via": "email"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["via"].as_str()),
        (Some("submitted"), Some("email"))
    );
    app.wait_deliveries(id, 15, |v| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["purpose"] == "report" && d["status"] == "sent")
    })
    .await;
    let (_, full) = app.get(&format!("/api/v1/reports/{rid}")).await;
    let msgs: Vec<Value> = smtp
        .messages()
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.contains("网络安全事件报告"))
        })
        .collect();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["subject"], full["subject"]);
    let text = msgs[0]["text"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(
        text.trim_end(),
        full["markdown"].as_str().unwrap().trim_end()
    );
    assert!(
        msgs[0]["html"]
            .as_str()
            .unwrap()
            .contains("<h1>网络安全事件报告（初次报告）</h1>")
    );
    assert!(
        msgs[0]["to"]
            .to_string()
            .contains("report@cac.example.gov.cn"),
        "{}",
        msgs[0]
    );

    // Queued is not submitted: the obligation is met when the SMTP server accepted the report.
    let submitted = app.events(id, "report.submitted").await;
    assert_eq!(
        submitted[0]["data"]["obligation_met"], false,
        "{submitted:?}"
    );
    wait_for("the report's obligation met", 10, || async {
        obligation(&app, id, "CN:cac_report_other").await["status"] == "met"
    })
    .await;
    let accepted = app.events(id, "report.accepted").await;
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0]["data"]["report_id"], rid);
    // The obligation is met by this report, with an audit trail.
    let o = obligation(&app, id, "CN:cac_report_other").await;
    assert_eq!(
        (o["status"].as_str(), o["met_ref"].as_str()),
        (Some("met"), Some(format!("report:{rid}").as_str())),
        "{o}"
    );
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
        "report.drafted",
        "report.approved",
        "report.submitted",
        "obligation.met",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }

    // Immutable: the API refuses to submit again or to draft over it; the database refuses a
    // raw UPDATE or DELETE.
    let (s, v) = submit(&app, id, rid, json!({"via": "email"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("immutable"), "{v}");
    let (s, v) = draft(&app, id, json!({"obligation": "CN:cac_report_other", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    for sql in [
        format!("UPDATE reports SET markdown = 'edited' WHERE id = {rid}"),
        format!("DELETE FROM reports WHERE id = {rid}"),
    ] {
        let e = raw_sql(&app, &sql).await.unwrap_err();
        assert!(e.contains("a submitted report is immutable"), "{e}");
    }
    let (_, after) = app.get(&format!("/api/v1/reports/{rid}")).await;
    assert_eq!(after["markdown"], full["markdown"]);

    // The post-incident summary: the first report against its deadline.
    let (s, sum) = app.get(&format!("/api/v1/incidents/{id}/summary")).await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    let reported = sum["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "reported")
        .unwrap();
    assert_eq!(reported["met"], true, "{sum:#}");
    assert_eq!(reported["target_from"], "CN:cac_report_other");
    let (_, md) = document(
        &app,
        &format!("/api/v1/incidents/{id}/summary?format=markdown"),
    )
    .await;
    assert!(md.contains("| First regulator report submitted |"), "{md}");
    app.stop().await;
}

/// A document endpoint's content type and text.
async fn document(app: &TestApp, path: &str) -> (String, String) {
    let res = app
        .http
        .request(Method::GET, app.url(path))
        .bearer_auth(RESPONDER)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    (ctype, res.text().await.unwrap())
}

/// Run one statement behind the daemon's back; the database's error text on failure.
async fn raw_sql(app: &TestApp, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let q = || sqlx::AssertSqlSafe(sql.to_string());
    let r = match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.store_url)
                .await
                .unwrap();
            sqlx::query(q()).execute(&mut c).await.map(|_| ())
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.store_url).await.unwrap();
            sqlx::query(q()).execute(&mut c).await.map(|_| ())
        }
    };
    r.map_err(|e| e.to_string())
}

async fn a_report_is_submitted_by_signed_webhook(backend: Backend) {
    let sink = Sink::start().await;
    let extra = format!(
        "[[channels.webhooks]]\nname = \"cac-gateway\"\nurl = \"{}\"\nsecret = \"{HOOK_SECRET}\"\n\n\
         [[regulators]]\nid = \"cac_provincial\"\nname = \"省网信办\"\nwebhook = \"cac-gateway\"\n",
        sink.url("/reports")
    );
    let Some(app) =
        TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, &extra)).await
    else {
        return;
    };
    let id = leak(&app, 600, false, true).await;
    let r = approved(&app, id).await;
    let rid = r["id"].as_i64().unwrap();
    // No e-mail address configured for this regulator: e-mail is refused, naming the routes.
    let (s, v) = submit(&app, id, rid, json!({"via": "email"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("webhook, manual"),
        "{v}"
    );
    let (s, v) = submit(&app, id, rid, json!({"via": "webhook"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.wait_deliveries(id, 15, |v| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["purpose"] == "report" && d["status"] == "sent")
    })
    .await;
    let got: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|r| r.path == "/reports")
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    let ts: i64 = got[0]
        .header("x-incidentd-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let expected =
        incidentd::channels::sign::webhook_signature(HOOK_SECRET.as_bytes(), ts, &got[0].body);
    assert_eq!(
        got[0].header("x-incidentd-signature").unwrap(),
        format!("sha256={expected}")
    );
    let body = got[0].json();
    let (_, full) = app.get(&format!("/api/v1/reports/{rid}")).await;
    assert_eq!(body["purpose"], "report");
    assert_eq!(body["recipient"], "cac-gateway");
    assert_eq!(body["subject"], full["subject"]);
    assert_eq!(body["text"], full["markdown"]);
    assert_eq!(body["html"], full["html"]);
    assert_eq!(body["data"]["report_id"], rid);
    assert_eq!(body["data"]["obligation"], "CN:cac_report_other");
    assert_eq!(body["data"]["content_hash"], full["content_hash"]);
    app.stop().await;
}

async fn by_hand_needs_the_reference_and_past_the_deadline_the_reason(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, "")).await
    else {
        return;
    };
    // Discovered 5 h ago: the 4-hour CAC deadline has passed.
    let id = leak(&app, 5 * 3600, false, true).await;
    let r = approved(&app, id).await;
    let rid = r["id"].as_i64().unwrap();
    let at = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 60, 0).unwrap();
    let (s, v) = submit(&app, id, rid, json!({"via": "manual", "submitted_at": at})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["path"], "reference");
    let (s, v) = submit(
        &app,
        id,
        rid,
        json!({"via": "manual", "reference": "12387-2025-0001"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["path"], "submitted_at");
    let (s, v) = submit(&app, id, rid, json!({"via": "fax"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = submit(
        &app,
        id,
        rid,
        json!({"via": "manual", "reference": "12387-2025-0001", "submitted_at": at}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["path"], "late_reason");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("reasons for the delay"),
        "{v}"
    );
    let (s, v) = submit(
        &app,
        id,
        rid,
        json!({"via": "manual", "reference": "12387-2025-0001", "submitted_at": at, "late_reason": "省网信办热线占线，改为门户报送"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["reference"], "12387-2025-0001");
    assert_eq!(
        v["submitted_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        at
    );
    let o = obligation(&app, id, "CN:cac_report_other").await;
    assert_eq!(o["status"], "met", "{o}");
    assert_eq!(o["late_reason"], "省网信办热线占线，改为门户报送");
    // Nothing was sent: a manual submission only records.
    let (_, d) = app
        .get(&format!("/api/v1/incidents/{id}/deliveries?limit=500"))
        .await;
    assert!(
        !d["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["purpose"] == "report"),
        "{d}"
    );
    let (s, sum) = app.get(&format!("/api/v1/incidents/{id}/summary")).await;
    assert_eq!(s, StatusCode::OK);
    let reported = sum["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "reported")
        .unwrap();
    assert_eq!(reported["met"], false, "late: {sum:#}");
    app.stop().await;
}

async fn a_drill_report_never_reaches_the_regulator(backend: Backend) {
    let smtp = Smtp::start();
    let extra = format!(
        "[channels.email]\nsmtp_url = \"{}\"\nfrom = \"Security <security@example.com>\"\n\n\
         [[regulators]]\nid = \"cac_provincial\"\nname = \"省网信办\"\nemail = \"report@cac.example.gov.cn\"\n",
        smtp.url()
    );
    let Some(app) =
        TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, &extra)).await
    else {
        return;
    };
    let id = leak(&app, 600, true, true).await;
    let r = approved(&app, id).await;
    let (_, full) = app.get(&format!("/api/v1/reports/{}", r["id"])).await;
    assert!(
        full["subject"].as_str().unwrap().starts_with("【演练】"),
        "{full}"
    );
    let (s, v) = submit(&app, id, r["id"].as_i64().unwrap(), json!({"via": "email"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = app
        .wait_deliveries(id, 15, |v| {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["purpose"] == "report" && d["status"] == "dead")
        })
        .await;
    let rep = d["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["purpose"] == "report")
        .unwrap()
        .clone();
    assert!(
        rep["last_error"].as_str().unwrap().contains("drill guard"),
        "{rep}"
    );
    assert!(
        !smtp
            .messages()
            .iter()
            .any(|m| m["to"].to_string().contains("cac.example.gov.cn")),
        "a drill report reached the regulator"
    );
    app.stop().await;
}

/// Run the CLI against the daemon as `token`; (exit code, stdout, stderr).
async fn cli(app: &TestApp, token: &str, args: &[&str]) -> (i32, String, String) {
    let url = app.url("");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let token = token.to_string();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"))
            .args(&args)
            .env("INCIDENTD_URL", url)
            .env("INCIDENTD_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn the_cli_drafts_shows_submits_and_summarises(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, "")).await
    else {
        return;
    };
    let id = leak(&app, 600, false, true).await;
    let sid = id.to_string();
    // The lint's refusal reaches the person with what to do.
    let (code, _, err) = cli(
        &app,
        RESPONDER,
        &[
            "report",
            "draft",
            &sid,
            "--obligation",
            "CN:cac_report_other",
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--input system="), "{err}");
    let (code, out, err) = cli(
        &app,
        RESPONDER,
        &[
            "report",
            "draft",
            &sid,
            "--obligation",
            "CN:cac_report_other",
            "--partial",
            "--input",
            "system=会员中心",
            "--input",
            "location=上海机房",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("[to follow: likely_development, tracing]"),
        "{out}"
    );
    let (_, list) = app.get(&format!("/api/v1/incidents/{id}/reports")).await;
    let rid = list["items"][0]["id"].as_i64().unwrap().to_string();
    let task = list["items"][0]["approval_task"]
        .as_i64()
        .unwrap()
        .to_string();
    let (code, out, err) = cli(&app, RESPONDER, &["reports", &sid]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("CN:cac_report_other") && out.contains("draft"),
        "{out}"
    );
    let (code, out, err) = cli(&app, RESPONDER, &["report", "show", &rid, "--format", "md"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("## 十一、事态发展趋势及可能造成的进一步影响\n\n待补充"),
        "{out}"
    );
    for t in [GR, LEGAL] {
        let (code, _, err) = cli(&app, t, &["approve", &task]).await;
        assert_eq!(code, 0, "{err}");
    }
    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, out, err) = cli(
        &app,
        RESPONDER,
        &[
            "report",
            "submit",
            &rid,
            "--via",
            "manual",
            "--reference",
            "CAC-2025-77",
            "--at",
            &at,
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("reference CAC-2025-77") && out.contains("CN:cac_report_other is met"),
        "{out}"
    );
    let (code, out, err) = cli(&app, RESPONDER, &["summary", &sid]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("# Post-incident summary: incident"), "{out}");
    assert!(
        out.contains("| First regulator report submitted |"),
        "{out}"
    );
    let (code, out, _) = cli(&app, RESPONDER, &["report", "--help"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("待补充") && out.contains("--via manual"),
        "{out}"
    );
    app.stop().await;
}

async fn task_by_key(app: &TestApp, id: i64, key: &str) -> Value {
    let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("no task {key}: {v:#}"))
}

async fn approving_the_report_satisfies_the_playbook_gate_and_versions_count_per_report(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, "")).await
    else {
        return;
    };
    let id = leak(&app, 600, false, true).await;
    common::wait_for("the playbook's tasks", 10, || async {
        let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        v["tasks"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    let (s, v) = app
        .post(
            &format!("/api/v1/incidents/{id}/tasks/prepare_regulator_report/complete"),
            RESPONDER,
            &json!({"note": "drafted"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let inputs = serde_json::from_str::<Value>(INPUTS).unwrap();
    // Two versions of the CAC report, then the PIPL authority's: its first version is 1.
    let mut cac = Value::Null;
    for want in [1, 2] {
        let (s, r) = draft(
            &app,
            id,
            json!({"obligation": "CN:cac_report_other", "inputs": inputs}),
        )
        .await;
        assert_eq!(
            (s, r["version"].as_i64()),
            (StatusCode::CREATED, Some(want)),
            "{r}"
        );
        cac = r;
    }
    let (s, pipl) = draft(
        &app,
        id,
        json!({"obligation": "CN:pipl_authority", "partial": true}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{pipl}");
    assert_eq!(pipl["version"], 1, "numbered per report: {pipl}");

    // The playbook's gate is not a second thing to approve while a version waits for its own.
    let gate = task_by_key(&app, id, "approve_regulator_report").await;
    let gid = gate["id"].as_i64().unwrap();
    let (s, v) = decide(&app, GR, gid, true).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("approving the report"), "{detail}");
    assert!(
        detail.contains(&cac["approval_task"].to_string()),
        "names the report's approval: {detail}"
    );

    // The CAC version approved: the gate still waits for the PIPL version's decision.
    for t in [GR, LEGAL] {
        let (s, v) = decide(&app, t, cac["approval_task"].as_i64().unwrap(), true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert_eq!(
        task_by_key(&app, id, "approve_regulator_report").await["status"],
        "open"
    );
    // Both approved: the gate is approved with them, and the timeline says why.
    for t in [GR, LEGAL] {
        let (s, v) = decide(&app, t, pipl["approval_task"].as_i64().unwrap(), true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let gate = task_by_key(&app, id, "approve_regulator_report").await;
    assert_eq!(gate["status"], "approved", "{gate:#}");
    let satisfied = app.events(id, "report_gate.satisfied").await;
    assert_eq!(satisfied.len(), 1, "{satisfied:#?}");
    assert_eq!(satisfied[0]["data"]["report_id"], pipl["id"]);
    assert_eq!(app.events(id, "report_gate.waiting").await.len(), 1);
    app.stop().await;
}

async fn closing_is_refused_with_open_work_unless_forced_with_a_reason(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, "")).await
    else {
        return;
    };
    let id = leak(&app, 600, false, true).await;
    common::wait_for("the playbook's tasks", 10, || async {
        let (_, v) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
        v["tasks"].as_array().is_some_and(|t| !t.is_empty())
    })
    .await;
    for to in ["triaged", "contained", "eradicated", "recovered"] {
        let (s, v) = app.transition(id, to, None).await;
        assert_eq!(s, StatusCode::OK, "{to}: {v}");
    }
    // Refused, naming the open tasks and the obligations not met.
    let (s, v) = app.transition(id, "closed", Some("handled")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let detail = v["detail"].as_str().unwrap();
    for want in [
        "`contain`",
        "`close_and_review`",
        "CN:cac_report_other",
        "--force",
    ] {
        assert!(detail.contains(want), "{want} in {detail}");
    }
    assert!(
        !detail.contains("CN:cac_closing"),
        "the closing report is owed after closing: {detail}"
    );
    // Forcing needs a reason; a reason without force is a mistake too.
    let path = format!("/api/v1/incidents/{id}/transitions");
    for (body, field) in [
        (
            json!({"to": "closed", "note": "x", "force": true}),
            "reason",
        ),
        (
            json!({"to": "closed", "note": "x", "force": true, "reason": "  "}),
            "reason",
        ),
        (
            json!({"to": "closed", "note": "x", "reason": "why"}),
            "reason",
        ),
        (
            json!({"to": "contained", "force": true, "reason": "why"}),
            "force",
        ),
    ] {
        let (s, v) = app.post(&path, RESPONDER, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["path"], field, "{body}: {v}");
    }
    // The CLI's refusal exits non-zero; forced with a reason it closes.
    let sid = id.to_string();
    let (code, _, err) = cli(
        &app,
        RESPONDER,
        &["transition", &sid, "closed", "--note", "done"],
    )
    .await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("cannot be closed"), "{err}");
    let (code, out, err) = cli(
        &app,
        RESPONDER,
        &[
            "transition",
            &sid,
            "closed",
            "--note",
            "handled outside the plan",
            "--force",
            "--reason",
            "the business unit was sold; the buyer's team carries on",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    // It says what the force did: the tasks it cancelled, what is still owed.
    assert!(
        out.contains("cancelled") && out.contains("contain (it_operations)"),
        "{out}"
    );
    assert!(
        out.contains("still owed, not met by closing: ") && out.contains("CN:cac_report_other"),
        "{out}"
    );
    assert_eq!(app.incident(id).await["status"], "closed");

    // No task is left open: each open one is cancelled with the reason, on the timeline.
    let (_, tasks) = app.get(&format!("/api/v1/incidents/{id}/tasks")).await;
    let tasks = tasks["tasks"].as_array().unwrap();
    assert!(tasks.len() >= 10, "{tasks:#?}");
    for t in tasks {
        assert!(
            ["done", "approved", "rejected", "cancelled"].contains(&t["status"].as_str().unwrap()),
            "{t:#}"
        );
    }
    let contain = tasks.iter().find(|t| t["key"] == "contain").unwrap();
    assert_eq!(contain["status"], "cancelled");
    assert!(
        contain["note"]
            .as_str()
            .unwrap()
            .contains("business unit was sold")
    );
    let cancelled = app.events(id, "task.cancelled").await;
    assert_eq!(cancelled.len(), tasks.len(), "{cancelled:#?}");
    let forced = app.events(id, "incident.closed_with_open_work").await;
    assert_eq!(forced.len(), 1);
    assert!(
        forced[0]["data"]["open_obligations"]
            .as_array()
            .unwrap()
            .contains(&json!("CN:cac_report_other")),
        "{forced:#?}"
    );
    // What the incident owed stays owed: the forced close meets nothing.
    let cac = obligation(&app, id, "CN:cac_report_other").await;
    assert_eq!(cac["status"], "open", "{cac:#}");
    assert!(cac["met_at"].is_null(), "{cac:#}");
    // A cancelled task cannot be completed (the incident is closed).
    let (s, _) = app
        .post(
            &format!("/api/v1/incidents/{id}/tasks/contain/complete"),
            RESPONDER,
            &json!({"note": "late"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.stop().await;
}

/// A submission through the outbox meets its obligation only when the regulator's channel
/// accepts it: while the webhook answers 503 the obligation stays open, a 2xx meets it; a
/// submission the channel refuses (4xx: dead) leaves the obligation open, pages its owner, and
/// a new version can be drafted and submitted in its place.
async fn a_report_is_met_when_its_channel_accepts_it_and_open_again_when_it_dies(backend: Backend) {
    let gateway = Sink::start().await;
    let pager = Sink::start().await;
    let extra = format!(
        "[[channels.webhooks]]\nname = \"cac-gateway\"\nurl = \"{}\"\nsecret = \"{HOOK_SECRET}\"\n\n\
         [[regulators]]\nid = \"cac_provincial\"\nname = \"省网信办\"\nwebhook = \"cac-gateway\"\n",
        gateway.url("/reports")
    );
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&pager, &extra)).await else {
        return;
    };
    let report_delivery = |status: &'static str| {
        move |v: &Value| {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["purpose"] == "report" && d["status"] == status)
        }
    };

    // The gateway is down: the submission is queued and retried; nothing is met.
    gateway.answer("/reports", 503, "{\"error\":\"maintenance\"}");
    let id = leak(&app, 600, false, true).await;
    let rid = approved(&app, id).await["id"].as_i64().unwrap();
    let (s, v) = submit(&app, id, rid, json!({"via": "webhook"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.wait_deliveries(id, 15, report_delivery("failed")).await;
    let o = obligation(&app, id, "CN:cac_report_other").await;
    assert_eq!(o["status"], "open", "queued is not met: {o}");
    assert!(
        app.events(id, "obligation.met")
            .await
            .iter()
            .all(|e| e["data"]["key"] != "CN:cac_report_other")
    );
    // A new draft waits while the submission is on its way.
    let (s, v) = draft(&app, id, json!({"obligation": "CN:cac_report_other", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("is being submitted"),
        "{v}"
    );
    // The gateway accepts it: met, at the moment it was accepted.
    gateway.answer("/reports", 200, "{\"id\":\"CAC-RCPT-1\"}");
    let d = app.wait_deliveries(id, 15, report_delivery("sent")).await;
    wait_for("the report's obligation met", 10, || async {
        obligation(&app, id, "CN:cac_report_other").await["status"] == "met"
    })
    .await;
    let o = obligation(&app, id, "CN:cac_report_other").await;
    assert_eq!(o["met_ref"], format!("report:{rid}"), "{o}");
    let sent = d["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["purpose"] == "report")
        .unwrap();
    let met_at: DateTime<Utc> = o["met_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        Some(met_at.timestamp_micros()),
        Some(common::micros(&sent["sent_at"])),
        "met when accepted: {o} {sent}"
    );

    // The gateway refuses the next incident's report for good: the delivery dies.
    gateway.answer("/reports", 400, "{\"error\":\"unknown reporter\"}");
    let id = leak(&app, 600, false, true).await;
    let r1 = approved(&app, id).await["id"].as_i64().unwrap();
    let (s, v) = submit(&app, id, r1, json!({"via": "webhook"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.wait_deliveries(id, 15, report_delivery("dead")).await;
    wait_for("the dead submission on the timeline", 10, || async {
        !app.events(id, "report.delivery_dead").await.is_empty()
    })
    .await;
    let dead = app.events(id, "report.delivery_dead").await;
    assert_eq!(dead[0]["data"]["report_id"], r1);
    assert_eq!(dead[0]["data"]["owner"], "government_relations");
    assert!(
        dead[0]["data"]["error"].as_str().unwrap().contains("400"),
        "{dead:?}"
    );
    let o = obligation(&app, id, "CN:cac_report_other").await;
    assert_eq!(o["status"], "open", "{o}");
    // Its owner, Government Relations, is paged (the test config pages by SMS).
    wait_for("Government Relations paged", 10, || async {
        pager.received().iter().any(|r| {
            r.path == "/sms"
                && r.json()["to"] == common::phone(2, 1).as_str()
                && r.json()["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("SUBMISSION FAILED"))
        })
    })
    .await;
    // A new version is drafted, approved and submitted by hand with the regulator's reference.
    let (s, r2) = draft(&app, id, json!({"obligation": "CN:cac_report_other", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()})).await;
    assert_eq!(s, StatusCode::CREATED, "{r2}");
    assert_eq!(r2["version"], 2);
    for t in [GR, LEGAL] {
        let (s, v) = decide(&app, t, r2["approval_task"].as_i64().unwrap(), true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let at = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 5, 0).unwrap();
    let r2id = r2["id"].as_i64().unwrap();
    let (s, v) = submit(
        &app,
        id,
        r2id,
        json!({"via": "manual", "reference": "12387-2026-0042", "submitted_at": at}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let o = obligation(&app, id, "CN:cac_report_other").await;
    assert_eq!(
        (o["status"].as_str(), o["met_ref"].as_str()),
        (Some("met"), Some(format!("report:{r2id}").as_str())),
        "{o}"
    );
    app.stop().await;
}

/// The `[[regulators]]` entries of the shipped config/incidentd.toml, as text.
fn shipped_regulators() -> String {
    let text = std::fs::read_to_string(common::repo().join("config/incidentd.toml")).unwrap();
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with('[') {
            inside = line.trim() == "[[regulators]]";
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The issue's dead end: every PI incident owes the PIPL authority a report, and the shipped
/// configuration had no address for it. With the shipped `[[regulators]]`, it is submitted by
/// e-mail, accepted by the SMTP server, and met.
async fn the_shipped_regulators_take_the_pipl_authority_report_by_email(backend: Backend) {
    let smtp = Smtp::start();
    let extra = format!(
        "[channels.email]\nsmtp_url = \"{}\"\nfrom = \"Security <security@example.com>\"\n\n{}",
        smtp.url(),
        shipped_regulators()
    );
    let Some(app) =
        TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, &extra)).await
    else {
        return;
    };
    let id = leak(&app, 600, false, true).await;
    let (s, r) = draft(
        &app,
        id,
        json!({"obligation": "CN:pipl_authority", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    for t in [GR, LEGAL] {
        let (s, v) = decide(&app, t, r["approval_task"].as_i64().unwrap(), true).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let rid = r["id"].as_i64().unwrap();
    let (s, v) = submit(&app, id, rid, json!({"via": "email"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    wait_for("the PIPL authority's report met", 15, || async {
        obligation(&app, id, "CN:pipl_authority").await["status"] == "met"
    })
    .await;
    let to_authority = smtp
        .messages()
        .into_iter()
        .filter(|m| m["to"].to_string().contains("pi-report@cac.example.gov.cn"))
        .count();
    assert_eq!(to_authority, 1);
    app.stop().await;
}

/// Every recipient a shipped pack can owe a report to has a `[[regulators]]` entry in the
/// shipped configuration, with a way to submit: an e-mail address (and [channels.email]), a
/// configured webhook target, or — with neither — by hand with the regulator's reference.
#[test]
fn every_report_the_shipped_packs_can_owe_has_a_way_to_submit() {
    let settings = incidentd::config::load(&common::repo().join("config/incidentd.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let templates = incidentd::server::load_templates(&settings).unwrap_or_else(|e| panic!("{e}"));
    let packs =
        incidentd::server::load_packs(&settings, &templates).unwrap_or_else(|e| panic!("{e}"));
    let mut owed = Vec::new();
    for pack in packs.all() {
        for o in &pack.obligations {
            let recipients = o.recipient.iter().chain(o.recipient_by_operator.values());
            for r in recipients {
                owed.push((pack.code.to_string(), o.id.clone(), r.clone()));
            }
        }
    }
    assert!(owed.iter().any(|(_, _, r)| r == "pi_authority"), "{owed:?}");
    for (code, obligation, recipient) in &owed {
        let g = settings
            .regulators
            .iter()
            .find(|g| &g.id == recipient)
            .unwrap_or_else(|| {
                panic!("{code}:{obligation} is owed to `{recipient}`, which has no [[regulators]] entry in config/incidentd.toml")
            });
        if g.email.is_some() {
            assert!(
                settings.channels.email.is_some(),
                "{recipient} has an e-mail address but there is no [channels.email]"
            );
        }
        if let Some(w) = &g.webhook {
            assert!(
                settings.channels.webhooks.iter().any(|h| &h.name == w),
                "{recipient}'s webhook `{w}` is not a [[channels.webhooks]] target"
            );
        }
    }
}

/// The DLP scenario of issue #16: phone and ID-card numbers of 2.3 million people in China and
/// 4,200 in Singapore. Each jurisdiction's grade, "why" and report carry its own count; the
/// total is derived; a count above a given total and an input the report does not use are
/// refused.
async fn each_jurisdiction_reports_its_own_people_and_words_and_unused_inputs_are_refused(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, &daemon_config(&Sink::start().await, "")).await
    else {
        return;
    };
    let at = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 600, 0).unwrap();
    let inc = app
        .declare(&json!({
            "title": "Customer DB exported to unknown host", "category": "pi_leak",
            "discovered_at": at, "aware_at": at,
            "facts": {
                "data_types": ["phone", "id_number"],
                "by_jurisdiction": {
                    "CN": {"affected_subjects": 2_300_000},
                    "SG": {"affected_subjects": 4200},
                },
                "cause": "数据库导出", "impact": "可能被用于诈骗", "measures_taken": "已阻断",
                "measures_planned": "全面排查", "advice_to_subjects": "警惕诈骗电话",
            },
        }))
        .await;
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(inc["facts"]["affected_subjects"], 2_304_200, "{inc:#}");
    assert_eq!(
        inc["facts"]["jurisdictions"],
        json!(["CN", "SG"]),
        "{inc:#}"
    );

    // A jurisdiction's count above a total a person gives: refused, naming the path.
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"affected_subjects": 100_000}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("by_jurisdiction.CN.affected_subjects") && detail.contains("2300000"),
        "{v}"
    );
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"by_jurisdiction": {"SG": {"affected_subjects": 4200, "people": 3}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `people`"),
        "{v}"
    );

    // Each grade on its own count.
    let (s, o) = app
        .get(&format!("/api/v1/incidents/{id}/obligations"))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let why = |code: &str| {
        o["grades"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["jurisdiction"] == code)
            .unwrap_or_else(|| panic!("no {code} grade: {o:#}"))["why"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        why("SG").contains("affected_subjects in SG 4,200 ≥ 500"),
        "{}",
        why("SG")
    );
    assert!(!why("SG").contains("2,30"), "{}", why("SG"));
    assert!(
        why("CN").contains("affected_subjects in CN 2,300,000 ≥ 1,000,000"),
        "{}",
        why("CN")
    );

    // The free text is Chinese only (a plain string: the default locale, zh-CN): the English
    // PDPC report is refused, naming each fact and the language it needs — never the Chinese.
    let sg_inputs = json!({"how_aware": "DLP alert", "notification_plan": "SMS from tomorrow"});
    let (s, v) = draft(
        &app,
        id,
        json!({"obligation": "SG:pdpc_report", "inputs": sg_inputs}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let cause = v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "facts.cause")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert!(cause["how"].as_str().unwrap().contains("in en"), "{v}");
    // A locale the organisation does not write in is refused.
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({"cause": {"fr": "La base a été exportée"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("`fr` is not a locale"),
        "{v}"
    );
    // Per locale; the cause with an internal version (what regulators read) and a public one.
    let (s, v) = app
        .patch(
            &format!("/api/v1/incidents/{id}/facts"),
            &json!({
                "title": {"zh-CN": "客户数据库被导出至未知主机", "en": "Customer database exported to an unknown host"},
                "cause": {
                    "internal": {
                        "zh-CN": "服务账号 svc-backup 将 crm.customers 表导出至 198.51.100.7",
                        "en": "The service account svc-backup exported the table crm.customers to 198.51.100.7",
                    },
                    "public": {"zh-CN": "客户数据库被导出", "en": "Our customer database was exported"},
                },
                "impact": {"zh-CN": "可能被用于诈骗", "en": "Phone numbers may be used for fraud calls"},
                "measures_taken": {"zh-CN": "已阻断", "en": "The export host was blocked"},
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // An input the PDPC report does not take is refused, not ignored.
    let mut with_affected = sg_inputs.clone();
    with_affected["affected"] = json!("4200");
    let (s, v) = draft(
        &app,
        id,
        json!({"obligation": "SG:pdpc_report", "inputs": with_affected}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("`affected`") && detail.contains("how_aware, notification_plan"),
        "{v}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{id}/reports")).await.1["items"],
        json!([])
    );

    // Each report carries its own jurisdiction's count, never the whole incident's.
    let (s, sg) = draft(
        &app,
        id,
        json!({"obligation": "SG:pdpc_report", "inputs": sg_inputs}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sg}");
    let (_, sg) = app.get(&format!("/api/v1/reports/{}", sg["id"])).await;
    let md = sg["markdown"].as_str().unwrap();
    assert!(md.contains("4,200"), "{md}");
    assert!(
        !md.contains("2,304,200") && !md.contains("2,300,000"),
        "{md}"
    );
    // English, the internal version.
    assert!(
        md.contains("The service account svc-backup exported"),
        "{md}"
    );
    assert!(
        !md.contains("导出") && !md.contains("Our customer database"),
        "{md}"
    );
    let (s, cn) = draft(
        &app,
        id,
        json!({"obligation": "CN:cac_report_other", "inputs": serde_json::from_str::<Value>(INPUTS).unwrap()}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{cn}");
    let (_, cn) = app.get(&format!("/api/v1/reports/{}", cn["id"])).await;
    let md = cn["markdown"].as_str().unwrap();
    assert!(md.contains("2,300,000"), "{md}");
    assert!(!md.contains("2,304,200"), "{md}");
    // 事件名称 in Chinese, from the title fact, not the English alert title.
    assert!(
        md.contains("| 事件名称 | 客户数据库被导出至未知主机 |"),
        "{md}"
    );
    assert!(!md.contains("| 事件名称 | Customer"), "{md}");
    assert!(md.contains("服务账号 svc-backup"), "{md}");
}
