//! Regulator reports. Golden (snapshot) tests of the shipped `regulator/*` templates rendered
//! from the shipped jurisdiction packs, in both languages; the required-field lint; and, through
//! the running daemon on both backends, drafting, the approval gate, submission and immutability.
//!
//! Refresh the goldens after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test reports golden`, then review the diff of `tests/golden/`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use incidentd::config::{OrganisationConfig, RenderConfig};
use incidentd::domain::records::Incident;
use incidentd::domain::regulation::{OperatorType, Pack, Packs};
use incidentd::render::Templates;
use incidentd::render::report::{
    AssessmentInfo, DraftError, Header, LintError, Sources, Stats, Step, draft,
};
use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn templates() -> Templates {
    let cfg = RenderConfig {
        time_zone: "Asia/Shanghai".into(),
        ..RenderConfig::default()
    };
    Templates::load(&root().join("templates"), &cfg).unwrap_or_else(|e| panic!("{}", e.join("\n")))
}

fn packs(t: &Templates) -> Packs {
    Packs::load(&root().join("config/jurisdictions"), &[], &|name| {
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
            "risk": "high",
            "cause": "一份会员数据库备份文件因存储权限配置错误被设置为公开访问，期间被外部地址下载。",
            "impact": "姓名、手机号码和电子邮箱地址可能被用于诈骗电话、短信或钓鱼邮件。",
            "measures_taken": "已关闭公开访问、更换访问密钥、保全访问日志，并启动全量排查。",
            "measures_planned": "全面排查存储权限配置，对备份文件加密并加强访问审计；请求协助追查下载来源。",
            "advice_to_subjects": "警惕自称本公司工作人员的来电、短信和邮件，不向任何人提供验证码。",
            "remedies": "免费提供12个月账户异常登录提醒服务。"
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
    draft(&t, pack, case.report, &src, &header)
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
    let dir = root().join("tests/golden");
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
                "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test --test reports golden",
                path.display()
            )
        });
        assert!(
            &want == got,
            "{} differs from the rendering (refresh with UPDATE_GOLDEN=1 cargo test --test reports golden, then review the diff):\n--- rendered ---\n{got}",
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
    assert!(d.markdown.contains("1,250,000（估计）"), "{}", d.markdown);
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
    assert!(d.markdown.contains("1,250,000 (estimated)"));
    assert!(d.markdown.contains("name, phone number, e-mail address"));
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
            let d = draft(&t, pack, id, &src, &header)
                .unwrap_or_else(|e| panic!("{} {id} ({}): {e}", pack.code, spec.template));
            assert!(!d.subject.is_empty() && !d.html.is_empty());
        }
    }
}
