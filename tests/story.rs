//! The whole incident of issue #16, as a team plays it with the shipped configuration
//! (config/incidentd.toml: its tokens, departments, playbooks, packs and regulators; only the
//! channels point at local servers): a DLP alert, per-jurisdiction and per-language facts, the
//! preparation tasks, Legal's approval, the notice campaign, the public announcement's approval,
//! a report to each regulator in its own language with its own count, obligations met by what
//! actually happened, closing refused while work is open, and the closing summary.
//!
//! A person's steps go through the `incidentd` CLI, exactly as the walkthrough
//! (docs/walkthrough.md, "A personal-information leak, start to finish") writes them; what
//! each audience receives is checked where it arrives: the SMTP server, the SMS gateway, the
//! public page.

use crate::common;

use common::sink::Sink;
use common::smtp::Smtp;
use common::{Backend, TestApp, wait_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_personal_information_leak_from_the_dlp_alert_to_the_closing_summary,
    audit_verify_names_each_table_edited_outside_incidentd,
    every_answer_of_the_api_is_as_its_openapi_description_says,
);

/// The shipped configuration's trial tokens (README).
const RESPONDER: &str = "dev-responder-token";
const VIEWER: &str = "dev-viewer-token";
const LEGAL: &str = "dev-legal-token";
const GR: &str = "dev-gr-token";
const PR: &str = "dev-pr-token";

const DLP_TITLE: &str =
    "DLP: bulk export of table crm.customers (phone, id_card_no) to unknown host 203.0.113.77";
const INTERNAL_ZH: &str = "服务账号 svc-backup 将 crm.customers 表导出至 203.0.113.77";
const INTERNAL_EN: &str =
    "The service account svc-backup exported the table crm.customers to 203.0.113.77";
/// What must never reach a person or the public page: the attacker's host, the account, the table.
const INTERNAL_DETAIL: [&str; 3] = ["203.0.113.77", "svc-backup", "crm.customers"];

async fn get(app: &TestApp, path: &str) -> Value {
    let (s, v) = app.call(Method::GET, path, Some(VIEWER), None).await;
    assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
    v
}

/// Run the CLI as `token`; assert its exit code; its standard output and error together.
async fn run(app: &TestApp, token: &str, code: i32, args: &[&str]) -> String {
    let (c, out, err) = app.cli(token, args).await;
    // The transcript, shown when the story fails.
    eprintln!(
        "$ INCIDENTD_TOKEN={token} incidentd {}\n{out}{err}",
        args.join(" ")
    );
    assert_eq!(c, code, "incidentd {}\n{out}{err}", args.join(" "));
    format!("{out}{err}")
}

async fn obligation(app: &TestApp, id: i64, key: &str) -> Value {
    let v = get(app, &format!("/api/v1/incidents/{id}/obligations")).await;
    v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == key)
        .unwrap_or_else(|| panic!("no obligation {key}: {v:#}"))
        .clone()
}

async fn task(app: &TestApp, id: i64, key: &str) -> Value {
    let v = get(app, &format!("/api/v1/incidents/{id}/tasks")).await;
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no task {key}: {v:#}"))
        .clone()
}

fn assert_nothing_internal(what: &str, text: &str) {
    for d in INTERNAL_DETAIL {
        assert!(!text.contains(d), "{what} carries `{d}`:\n{text}");
    }
}

/// Draft the report owed by `obligation`, have Government Relations and Legal approve it;
/// returns the report (its id, version, approval task) as the API shows it.
async fn approved_report(app: &TestApp, id: i64, obligation: &str, inputs: &[&str]) -> Value {
    let sid = id.to_string();
    let mut args = vec![
        "report",
        "draft",
        "--json",
        &sid,
        "--obligation",
        obligation,
    ];
    for i in inputs {
        args.extend(["--input", i]);
    }
    let out = run(app, RESPONDER, 0, &args).await;
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let gate = r["approval_task"].as_i64().unwrap().to_string();
    run(app, GR, 0, &["approve", &gate]).await;
    run(app, LEGAL, 0, &["approve", &gate]).await;
    get(app, &format!("/api/v1/reports/{}", r["id"])).await
}

async fn a_personal_information_leak_from_the_dlp_alert_to_the_closing_summary(backend: Backend) {
    if let Some(app) = play_the_leak(backend).await {
        app.stop().await;
    }
}

/// The whole story; returns the daemon still running, its audit trail verified intact.
pub(crate) async fn play_the_leak(backend: Backend) -> Option<TestApp> {
    let smtp = Smtp::start();
    let gateway = Sink::start().await;
    let app = TestApp::spawn_shipped(backend, |c| {
        let set = |c: &mut toml::Table, path: &[&str], v: toml::Value| {
            let mut t = c;
            for k in &path[..path.len() - 1] {
                t = t.get_mut(*k).unwrap().as_table_mut().unwrap();
            }
            t.insert(path[path.len() - 1].to_string(), v);
        };
        set(c, &["channels", "email", "smtp_url"], smtp.url().into());
        set(
            c,
            &["channels", "sms", "base_url"],
            gateway.url("/sms").into(),
        );
        set(
            c,
            &["channels", "voice", "base_url"],
            gateway.url("/voice").into(),
        );
        set(c, &["dispatch", "poll_interval"], "100ms".into());
        set(c, &["dispatch", "backoff_base"], "200ms".into());
        set(c, &["dispatch", "backoff_max"], "1s".into());
    })
    .await?;

    // 09:00 — DLP sees the customer database exported. The alert (here sent with the CLI, as
    // any sender would) is a personal-information leak: S1, the whole joint team paged.
    let out = run(
        &app,
        "dev-alertmanager-token",
        0,
        &[
            "alert",
            "--source",
            "dlp",
            "--title",
            DLP_TITLE,
            "--label",
            "severity=critical",
            "--label",
            "policy=PII-bulk-export",
        ],
    )
    .await;
    assert!(out.contains("opened (incident 1)"), "{out}");
    let id = 1;
    let sid = id.to_string();
    let inc = get(&app, "/api/v1/incidents/1").await;
    assert_eq!(
        (inc["category"].as_str(), inc["severity"].as_str()),
        (Some("pi_leak"), Some("S1"))
    );
    wait_for("all six departments paged by e-mail", 20, || async {
        let to: Vec<String> = smtp
            .messages()
            .iter()
            .map(|m| m["to"].to_string())
            .collect();
        [
            "security-oncall@",
            "gr-oncall@",
            "legal-oncall@",
            "pr-oncall@",
            "cs-lead@",
            "ops-oncall@",
        ]
        .iter()
        .all(|who| to.iter().any(|t| t.contains(who)))
    })
    .await;
    // Each page links to the incident's page in the web console.
    assert!(
        smtp.messages().iter().all(|m| m["text"]
            .as_str()
            .is_some_and(|t| t.contains("/console/incidents/1"))),
        "every page links to /console/incidents/1: {:#?}",
        smtp.messages()
    );

    // What Security found, per jurisdiction and per language; the cause as Security wrote it.
    let facts = app.dir.path().join("facts.json");
    std::fs::write(
        &facts,
        json!({
            "title": {"zh-CN": "客户数据库被导出至未知主机", "en": "Customer database exported to an unknown host"},
            "data_types": ["phone", "id_number"],
            "by_jurisdiction": {
                "CN": {"affected_subjects": 2_300_000},
                "SG": {"affected_subjects": 4200},
            },
            "cause": {"zh-CN": INTERNAL_ZH, "en": INTERNAL_EN},
            "impact": {"zh-CN": "手机号和身份证号可能被用于诈骗", "en": "Phone and ID-card numbers may be used for fraud"},
            "measures_taken": {"zh-CN": "已阻断导出主机并轮换凭据", "en": "The export host was blocked and credentials rotated"},
            "measures_planned": {"zh-CN": "全面排查数据访问权限", "en": "A review of every data access right"},
            "advice_to_subjects": {"zh-CN": "警惕自称本公司的诈骗电话", "en": "Beware of calls claiming to be from us"},
            "remedies": {"zh-CN": "一年免费账户安全提醒", "en": "A year of free account alerts"},
        })
        .to_string(),
    )
    .unwrap();
    run(
        &app,
        RESPONDER,
        0,
        &["facts", &sid, "--file", &facts.display().to_string()],
    )
    .await;
    let inc = get(&app, "/api/v1/incidents/1").await;
    assert_eq!(inc["facts"]["affected_subjects"], 2_304_200, "{inc:#}");

    // Each jurisdiction graded on its own count; every obligation with its deadline and why.
    let v = get(&app, "/api/v1/incidents/1/obligations").await;
    let why = |code: &str| {
        v["grades"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["jurisdiction"] == code)
            .unwrap_or_else(|| panic!("no {code} grade: {v:#}"))["why"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        why("CN").contains("affected_subjects in CN 2,300,000 ≥ 1,000,000"),
        "{v:#}"
    );
    assert!(
        why("SG").contains("affected_subjects in SG 4,200 ≥ 500"),
        "{v:#}"
    );
    let owed: Vec<String> = v["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_string())
        .collect();
    for key in [
        "CN:cac_report_other",
        "CN:pipl_authority",
        "CN:pipl_individuals",
        "SG:assessment",
        "SG:pdpc_report",
    ] {
        assert!(owed.contains(&key.to_string()), "{key} in {owed:?}");
    }
    let out = run(&app, VIEWER, 0, &["obligations", "--incident", &sid]).await;
    assert!(
        out.contains("CN:cac_report_other") && out.contains("SG:pdpc_report"),
        "{out}"
    );
    // The SG assessment is a person's judgement, not the daemon's.
    assert_eq!(
        obligation(&app, id, "SG:assessment").await["status"],
        "open"
    );
    run(
        &app,
        LEGAL,
        0,
        &[
            "obligation",
            "met",
            &sid,
            "SG:assessment",
            "--reference",
            "Legal memo SG-2026-7: notifiable, 4,200 Singapore residents, significant harm",
        ],
    )
    .await;
    assert_eq!(obligation(&app, id, "SG:assessment").await["status"], "met");

    // The people: a list with each person's jurisdiction and language. Counts are never lowered.
    let list = app.dir.path().join("affected.csv");
    std::fs::write(
        &list,
        "subject_id,name,email,phone,locale,jurisdiction\n\
         cn-1,张三,zhang@example.cn,+8613800138001,zh-CN,CN\n\
         cn-2,李四,li@example.cn,+8613800138002,zh-CN,CN\n\
         sg-1,Tan Wei,tan@example.sg,+6581234567,en,SG\n",
    )
    .unwrap();
    run(
        &app,
        RESPONDER,
        0,
        &["subjects", "import", &sid, &list.display().to_string()],
    )
    .await;
    let inc = get(&app, "/api/v1/incidents/1").await;
    assert_eq!(
        inc["facts"]["by_jurisdiction"]["SG"]["affected_subjects"], 4200,
        "{inc:#}"
    );

    // The notice campaign waits for Legal, and Legal waits for the preparation tasks.
    let out = run(
        &app,
        RESPONDER,
        0,
        &["notices", "start", &sid, "--channel", "email"],
    )
    .await;
    assert!(out.contains("approv"), "{out}");
    let gate = task(&app, id, "approve_notice").await["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let out = run(
        &app,
        LEGAL,
        1,
        &["approve", &gate, "--reason", "wording checked"],
    )
    .await;
    assert!(out.contains("prepare_notice"), "{out}");
    for (key, note) in [
        ("contain", "export host blocked, svc-backup disabled"),
        (
            "assess_affected",
            "2.3M in CN, 4,200 in SG: phone and ID-card numbers",
        ),
        ("prepare_notice", "notice text in both languages"),
    ] {
        run(
            &app,
            RESPONDER,
            0,
            &["task", "complete", &sid, key, "--note", note],
        )
        .await;
    }
    // Public words that read like the security team's: refused, naming what would go public
    // (a reason alone does not override it; only Legal's deliberate --override-warning would).
    let out = run(
        &app,
        LEGAL,
        1,
        &["approve", &gate, "--reason", "wording checked"],
    )
    .await;
    for needle in [
        "203.0.113.77",
        "svc-backup",
        "crm.customers",
        "--override-warning",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    // The cause gets a public version; the internal one stays for the regulators.
    std::fs::write(
        &facts,
        json!({"cause": {
            "internal": {"zh-CN": INTERNAL_ZH, "en": INTERNAL_EN},
            "public": {"zh-CN": "客户数据库被未经授权导出", "en": "Our customer database was exported without authorisation"},
        }})
        .to_string(),
    )
    .unwrap();
    run(
        &app,
        RESPONDER,
        0,
        &["facts", &sid, "--file", &facts.display().to_string()],
    )
    .await;
    run(
        &app,
        LEGAL,
        0,
        &["approve", &gate, "--reason", "wording checked"],
    )
    .await;

    // Each person is told in their language, with the public words only.
    wait_for(
        "the three notices accepted by the SMTP server",
        30,
        || async {
            ["zhang@example.cn", "li@example.cn", "tan@example.sg"]
                .iter()
                .all(|who| {
                    smtp.messages()
                        .iter()
                        .any(|m| m["to"].to_string().contains(who))
                })
        },
    )
    .await;
    for m in smtp.messages() {
        let to = m["to"].to_string();
        if !(to.contains("example.cn") || to.contains("example.sg")) {
            continue;
        }
        let text = m["text"].as_str().unwrap_or_default();
        assert_nothing_internal(&format!("the notice to {to}"), text);
        if to.contains("tan@example.sg") {
            assert!(
                text.contains("Our customer database was exported"),
                "{text}"
            );
            assert!(!text.contains("客户数据库"), "{text}");
        } else {
            assert!(text.contains("客户数据库被未经授权导出"), "{text}");
        }
    }
    wait_for(
        "notice to individuals met by the deliveries",
        30,
        || async { obligation(&app, id, "CN:pipl_individuals").await["status"] == "met" },
    )
    .await;
    let o = obligation(&app, id, "CN:pipl_individuals").await;
    assert_eq!(
        o["met_ref"], "notices: 3 of 3 reachable people reached",
        "{o}"
    );

    // 3 of 2,304,200 reachable: the campaign drafted the public announcement, which is not
    // public until Public Relations and Legal approve it.
    let a = get(&app, "/api/v1/incidents/1/announcement").await;
    let version = a["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(version["status"], "awaiting_approval", "{a:#}");
    let slug = a["slug"].as_str().unwrap().to_string();
    let (s, _) = app
        .call(Method::GET, &format!("/announcements/{slug}"), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "public before approval");
    let ann_gate = version["approval_task"].as_i64().unwrap().to_string();
    let out = run(&app, PR, 0, &["approve", &ann_gate]).await;
    assert!(
        out.contains("approved by public_relations, still waits for legal"),
        "{out}"
    );
    run(&app, LEGAL, 0, &["approve", &ann_gate]).await;
    for (lang, words) in [
        ("en", "Our customer database was exported"),
        ("zh-CN", "客户数据库被未经授权导出"),
    ] {
        let res = app
            .http
            .get(app.url(&format!("/announcements/{slug}?lang={lang}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.unwrap();
        assert!(html.contains(words), "{lang}: {html}");
        assert_nothing_internal(&format!("the {lang} public page"), &html);
    }

    // The regulators. CAC: Chinese, China's count, the internal cause; submitted by e-mail and
    // met when the SMTP server accepts it.
    let cac = approved_report(
        &app,
        id,
        "CN:cac_report_other",
        &[
            "system=客户关系管理系统",
            "location=上海数据中心",
            "likely_development=数据可能在黑市流通",
            "tracing=导出目标主机已锁定",
        ],
    )
    .await;
    assert_eq!(cac["version"], 1, "{cac:#}");
    let md = cac["markdown"].as_str().unwrap();
    assert!(
        md.contains("| 事件名称 | 客户数据库被导出至未知主机 |"),
        "{md}"
    );
    assert!(
        md.contains("2,300,000") && !md.contains("2,304,200"),
        "{md}"
    );
    assert!(md.contains(INTERNAL_ZH), "{md}");
    // One approval serves the report and the playbook's report gate.
    assert_eq!(
        task(&app, id, "approve_regulator_report").await["status"],
        "approved"
    );
    let rid = cac["id"].to_string();
    run(
        &app,
        RESPONDER,
        0,
        &["report", "submit", &rid, "--via", "email"],
    )
    .await;
    wait_for(
        "the CAC report met when the SMTP server accepted it",
        30,
        || async { obligation(&app, id, "CN:cac_report_other").await["status"] == "met" },
    )
    .await;
    assert!(
        smtp.messages()
            .iter()
            .any(|m| m["to"].to_string().contains("report@cac.example.gov.cn")),
        "the report reached the CAC's address"
    );
    // The PIPL authority: the same way, to its own address.
    let pipl = approved_report(
        &app,
        id,
        "CN:pipl_authority",
        &[
            "system=客户关系管理系统",
            "location=上海数据中心",
            "likely_development=数据可能在黑市流通",
            "tracing=导出目标主机已锁定",
        ],
    )
    .await;
    run(
        &app,
        RESPONDER,
        0,
        &[
            "report",
            "submit",
            &pipl["id"].to_string(),
            "--via",
            "email",
        ],
    )
    .await;
    wait_for("the PIPL authority's report met", 30, || async {
        obligation(&app, id, "CN:pipl_authority").await["status"] == "met"
    })
    .await;
    // PDPC: English, Singapore's count, the internal cause in English; an input it does not
    // take is refused, not ignored; submitted through its form and recorded with its reference.
    let (c, out, err) = app
        .cli(
            RESPONDER,
            &[
                "report",
                "draft",
                &sid,
                "--obligation",
                "SG:pdpc_report",
                "--input",
                "affected=4200",
            ],
        )
        .await;
    assert_ne!(c, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("`affected`"), "{out}{err}");
    let pdpc = approved_report(
        &app,
        id,
        "SG:pdpc_report",
        &[
            "how_aware=DLP alert at 09:00",
            "notification_plan=e-mail from today",
        ],
    )
    .await;
    assert_eq!(pdpc["version"], 1, "{pdpc:#}");
    let md = pdpc["markdown"].as_str().unwrap();
    assert!(md.contains("4,200") && !md.contains("2,30"), "{md}");
    assert!(md.contains(INTERNAL_EN), "{md}");
    assert!(!md.contains("导出"), "{md}");
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    run(
        &app,
        GR,
        0,
        &[
            "report",
            "submit",
            &pdpc["id"].to_string(),
            "--via",
            "manual",
            "--reference",
            "PDPC-DBN-2026-0412",
            "--at",
            &at,
        ],
    )
    .await;
    assert_eq!(
        obligation(&app, id, "SG:pdpc_report").await["status"],
        "met"
    );

    // Closing: refused while tasks are open, naming them.
    for to in ["triaged", "contained", "eradicated", "recovered"] {
        run(&app, RESPONDER, 0, &["transition", &sid, to]).await;
    }
    let out = run(
        &app,
        RESPONDER,
        1,
        &["transition", &sid, "closed", "--note", "handled"],
    )
    .await;
    assert!(
        out.contains("cannot be closed") && out.contains("task(s) are open"),
        "{out}"
    );
    let open: Vec<String> = get(&app, "/api/v1/incidents/1/tasks").await["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "open" || t["status"] == "acked")
        .map(|t| t["key"].as_str().unwrap().to_string())
        .collect();
    assert!(!open.is_empty());
    for key in &open {
        assert!(out.contains(&format!("`{key}`")), "{key}: {out}");
        run(
            &app,
            RESPONDER,
            0,
            &["task", "complete", &sid, key, "--note", "done"],
        )
        .await;
    }
    run(
        &app,
        RESPONDER,
        0,
        &["transition", &sid, "closed", "--note", "handled"],
    )
    .await;

    // Every obligation owed before closing was met by what happened, each saying how.
    let v = get(&app, "/api/v1/incidents/1/obligations").await;
    for o in v["obligations"].as_array().unwrap() {
        if o["key"] == "CN:cac_closing" {
            assert_eq!(o["status"], "open", "owed after closing: {o}");
            continue;
        }
        assert_eq!(o["status"], "met", "{o:#}");
        assert!(
            o["met_ref"].as_str().is_some_and(|r| !r.is_empty()),
            "{o:#}"
        );
    }
    let out = run(&app, VIEWER, 0, &["summary", &sid]).await;
    assert!(
        out.contains("CN:cac_report_other") && out.contains("SG:pdpc_report"),
        "{out}"
    );

    // Nothing of this reached the public but the approved page.
    let feed = app
        .http
        .get(app.url("/announcements/feed.xml?lang=en"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        feed.contains("Our customer database was exported"),
        "{feed}"
    );
    assert_nothing_internal("the English feed", &feed);
    let r = app.verify().await;
    assert!(r.broken_at.is_none() && r.problem.is_none(), "{r:?}");
    assert!(r.keyed && r.macs_checked == r.events, "{r:?}");
    assert!(r.rows_checked > 50, "{r:?}");
    Some(app)
}

/// Issue #17 M5: after the whole story, someone with write access to the database (and without
/// the audit key) edits what people decided from and what the public read, one table after the
/// other. `audit verify` names each edit; the chain of events itself stays intact.
async fn audit_verify_names_each_table_edited_outside_incidentd(backend: Backend) {
    let Some(mut app) = play_the_leak(backend).await else {
        return;
    };
    app.shutdown().await;
    // Such a person drops the append-only triggers first.
    match backend {
        Backend::Sqlite => {
            app.sql(&[
                "DROP TRIGGER announcement_versions_no_update",
                "DROP TRIGGER reports_submitted_update",
            ])
            .await
        }
        Backend::Postgres => {
            app.sql(&[
                "DROP TRIGGER announcement_versions_append_only ON announcement_versions",
                "DROP TRIGGER reports_submitted_immutable ON reports",
            ])
            .await
        }
    }
    let edits: [(&str, &str); 14] = [
        (
            "UPDATE incidents SET title = 'Routine maintenance' WHERE id = (SELECT MIN(id) FROM incidents)",
            "incidents",
        ),
        (
            "UPDATE tasks SET status = 'done', note = 'done long ago' WHERE id = (SELECT MIN(id) FROM tasks WHERE key = 'contain')",
            "tasks",
        ),
        (
            "UPDATE approvals SET decided_by = 'mallory' WHERE task_id = (SELECT MIN(task_id) FROM approvals) \
             AND department = (SELECT MIN(department) FROM approvals WHERE task_id = (SELECT MIN(task_id) FROM approvals))",
            "approvals",
        ),
        (
            "UPDATE incident_team SET acked_by = 'mallory' WHERE department = 'legal' AND incident_id = (SELECT MIN(id) FROM incidents)",
            "incident_team",
        ),
        (
            "UPDATE deliveries SET recipient = 'attacker@example.net' WHERE id = (SELECT MIN(id) FROM deliveries WHERE purpose = 'notice')",
            "deliveries",
        ),
        (
            "UPDATE campaigns SET template = 'page/incident_opened' WHERE id = (SELECT MIN(id) FROM campaigns)",
            "campaigns",
        ),
        (
            "UPDATE announcements SET slug = 'nothing-to-see' WHERE id = (SELECT MIN(id) FROM announcements)",
            "announcements",
        ),
        (
            "UPDATE announcement_versions SET locales = replace(locales, '</p>', ' Nothing else happened.</p>') WHERE version = (SELECT MAX(version) FROM announcement_versions)",
            "announcement_versions",
        ),
        (
            "UPDATE announcement_gates SET decided_by = 'mallory' WHERE version = (SELECT MAX(version) FROM announcement_gates)",
            "announcement_gates",
        ),
        (
            "UPDATE reports SET markdown = markdown || ' Only 42 people were affected.' WHERE jurisdiction = 'SG'",
            "reports",
        ),
        (
            "UPDATE obligations SET due_at = due_at + 864000000000 WHERE key = 'SG:pdpc_report'",
            "obligations",
        ),
        (
            "UPDATE grades SET grade = 'I' WHERE id = (SELECT MIN(id) FROM grades WHERE jurisdiction = 'CN')",
            "grades",
        ),
        (
            "DELETE FROM approvals WHERE task_id = (SELECT MAX(task_id) FROM approvals) \
             AND department = (SELECT MIN(department) FROM approvals WHERE task_id = (SELECT MAX(task_id) FROM approvals))",
            "approvals",
        ),
        (
            "INSERT INTO grades (incident_id, jurisdiction, grade, criterion, why, at) \
             SELECT incident_id, jurisdiction, 'IV', criterion, 'nothing to report', at FROM grades WHERE id = (SELECT MIN(id) FROM grades)",
            "grades",
        ),
    ];
    let mut named: Vec<String> = Vec::new();
    for (i, (sql, table)) in edits.iter().enumerate() {
        app.sql(&[sql]).await;
        let r = app.verify().await;
        assert!(!r.intact(), "after `{sql}`: {r:?}");
        assert_eq!(
            r.problems.len(),
            i + 1,
            "after `{sql}`, one more problem: {:#?}",
            r.problems
        );
        let new: Vec<&String> = r.problems.iter().filter(|p| !named.contains(p)).collect();
        assert_eq!(new.len(), 1, "after `{sql}`: {:#?}", r.problems);
        assert!(
            new[0].starts_with(&format!("{table} ")),
            "after `{sql}` the problem names {table}: {}",
            new[0]
        );
        named.push(new[0].clone());
    }
    assert!(
        named[12].contains("was deleted outside incidentd"),
        "{named:?}"
    );
    assert!(
        named[13].contains("was added outside incidentd"),
        "{named:?}"
    );
    // The CLI says the same, and exits 1.
    let (code, out, _) = app
        .cli("", &["audit", "verify", "--config", &app.config_arg()])
        .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("audit trail BROKEN: 14 sealed rows differ")
            && out.contains("deliveries ")
            && out.contains("the chain itself is intact"),
        "{out}"
    );
    app.stop().await;
}

/// Issue #18 part 4: after the whole story (and a drill and a silence, so no listing is empty
/// for want of data), every `GET` the served OpenAPI description lists is called; each answer
/// must match its documented schema — no undocumented field, no missing required one — and
/// the API's conventions: times are RFC 3339 UTC strings, arrays are arrays (never JSON in a
/// string), every listing is `{"items": [...], "next_cursor": …}` and pages by `?cursor=`.
async fn every_answer_of_the_api_is_as_its_openapi_description_says(backend: Backend) {
    // The conventions' check knows the seams issue #18 found.
    let mut seen = Vec::new();
    conventions(
        &json!({"created_at": 1796327524753413_i64, "x": [{"at": "2026-11-20T10:30:00+08:00"}], "channels": "[\"email\"]", "clock_start": 1796327524753413_i64, "subjects": 2300000}),
        "",
        &mut |p| seen.push(p),
    );
    assert_eq!(seen.len(), 4, "{seen:?}");

    let Some(app) = play_the_leak(backend).await else {
        return;
    };
    let admin = "dev-admin-token";
    let (_, drills) = app
        .call(Method::GET, "/api/v1/drills", Some(admin), None)
        .await;
    let scenario = drills["scenarios"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no scenario: {drills}"))
        .to_string();
    let (s, drill) = app
        .post("/api/v1/drills", admin, &json!({ "scenario": scenario }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{drill}");
    let (s, silence) = app
        .post(
            "/api/v1/silences",
            admin,
            &json!({"matchers": ["alertname=BruteForce"], "duration": "1h", "reason": "noisy rule"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{silence}");

    let (_, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let first = |v: &Value, k: &str| -> String {
        match &v["items"][0][k] {
            Value::String(x) => x.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("no {k} in the first item of {v:#} ({other})"),
        }
    };
    let listed = |path: &str| {
        let app = &app;
        let path = path.to_string();
        async move { app.call(Method::GET, &path, Some(admin), None).await.1 }
    };
    let subjects = listed("/api/v1/incidents/1/subjects").await;
    let site_user = subjects["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["site_user_id"].as_str())
        .unwrap_or("u-10001")
        .to_string();
    let slug = listed("/api/v1/incidents/1/announcement").await["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let samples: Vec<(&str, String)> = vec![
        ("/api/v1/drills/{id}", drill["id"].to_string()),
        ("/api/v1/silences/{id}", silence["id"].to_string()),
        ("{id}", "1".into()),
        (
            "{rid}",
            first(&listed("/api/v1/incidents/1/reports").await, "id"),
        ),
        (
            "{delivery}",
            first(&listed("/api/v1/incidents/1/deliveries").await, "id"),
        ),
        (
            "{campaign}",
            first(&listed("/api/v1/incidents/1/notices").await, "id"),
        ),
        ("{subject_id}", first(&subjects, "subject_id")),
        ("{site_user_id}", site_user),
        ("{slug}", slug),
    ];

    let validate = schema_checker(&doc);
    let mut checked = 0;
    let mut problems = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let mut path = template.clone();
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            let hole = format!("{{{name}}}");
            match p["in"].as_str() {
                Some("path") => {
                    assert!(
                        template.contains(&hole),
                        "{template}: `{name}` is documented as a path parameter but the path has no {hole}"
                    );
                    let value = samples
                        .iter()
                        .find(|(k, _)| *k == template || *k == hole)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| {
                            panic!("{template}: this test has no sample for {hole}; add one")
                        });
                    path = path.replace(&hole, &value);
                }
                Some("query") => assert!(
                    !template.contains(&hole),
                    "{template}: `{name}` is in the path but documented as a query parameter"
                ),
                other => panic!("{template}: parameter `{name}` is in {other:?}"),
            }
        }
        assert!(
            !path.contains('{'),
            "{template}: a path parameter is not documented"
        );
        let documented = &op["responses"]["200"]["content"];
        let r = app
            .http
            .get(app.url(&path))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string();
        let Some(media) = documented.get(&ctype) else {
            problems.push(format!(
                "GET {template}: answers {ctype}, documented {documented}"
            ));
            continue;
        };
        checked += 1;
        if ctype != "application/json" {
            continue;
        }
        let body: Value = r.json().await.unwrap();
        problems.extend(
            validate(&media["schema"], &body)
                .into_iter()
                .map(|e| format!("GET {template}: {e}")),
        );
        conventions(&body, "", &mut |e| {
            problems.push(format!("GET {template}: {e}"))
        });
        let listing = media["schema"]["$ref"]
            .as_str()
            .and_then(|r| doc.pointer(&r[1..]))
            .is_some_and(|s| s["properties"]["items"]["type"] == "array");
        match (&body, listing) {
            (Value::Array(_), _) => problems.push(format!(
                "GET {template}: a bare array; a listing answers {{items, next_cursor}}"
            )),
            (Value::Object(o), true) if !o.contains_key("next_cursor") => {
                problems.push(format!("GET {template}: a listing without next_cursor"))
            }
            (Value::Object(o), false)
                if !template.ends_with('}')
                    && o.values().any(Value::is_array)
                    && !DOCUMENTS.contains(&template.as_str()) =>
            {
                problems.push(format!(
                    "GET {template}: lists something but not as {{items, next_cursor}}"
                ))
            }
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked >= 30, "only {checked} answers checked");

    // One paging scheme: the timeline read two events at a time is the timeline read at once.
    let whole = listed("/api/v1/incidents/1/timeline?limit=500").await;
    let mut paged = Vec::new();
    let mut next = String::new();
    loop {
        let page = listed(&format!("/api/v1/incidents/1/timeline?limit=2{next}")).await;
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(&Value::Array(paged), &whole["items"]);
    let (s, v) = app
        .call(
            Method::GET,
            "/api/v1/incidents?cursor=abc",
            Some(admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("next_cursor"), "{v}");
}

/// Answers that are one thing with lists inside (not listings).
const DOCUMENTS: [&str; 5] = [
    "/api/v1/incidents/{id}/announcement",
    "/api/v1/incidents/{id}/obligations",
    "/api/v1/incidents/{id}/tasks",
    "/api/v1/incidents/{id}/summary",
    "/api/v1/drills",
];

/// A validator of a value against a schema of `doc` (OpenAPI 3.1 schemas are JSON Schema
/// 2020-12): every object schema is closed (`unevaluatedProperties: false`), so a field the
/// description does not name is a problem too.
fn schema_checker(doc: &Value) -> impl Fn(&Value, &Value) -> Vec<String> {
    let mut components = doc["components"].clone();
    let named = components["schemas"].clone();
    for (_, s) in components["schemas"].as_object_mut().unwrap() {
        merge_all_of(s, &named);
        close(s);
    }
    move |schema: &Value, value: &Value| {
        let mut root = schema.clone();
        root["components"] = components.clone();
        let v = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{schema}: {e}"));
        v.iter_errors(value)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect()
    }
}

/// Replaces an `allOf` of object schemas (how a flattened struct is described) by the one
/// object they make, so that closing it judges the whole.
fn merge_all_of(s: &mut Value, named: &Value) {
    if let Some(all) = s.get("allOf").and_then(Value::as_array).cloned() {
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for part in all {
            let part = match part["$ref"].as_str() {
                Some(r) => named[r.rsplit('/').next().unwrap()].clone(),
                None => part,
            };
            properties.extend(part["properties"].as_object().cloned().unwrap_or_default());
            required.extend(part["required"].as_array().cloned().unwrap_or_default());
        }
        *s = json!({"type": "object", "properties": properties, "required": required});
    }
    match s {
        Value::Object(o) => o.values_mut().for_each(|v| merge_all_of(v, named)),
        Value::Array(a) => a.iter_mut().for_each(|v| merge_all_of(v, named)),
        _ => {}
    }
}

/// Closes every object schema with properties (recursively): a field the description does
/// not name is a problem.
fn close(s: &mut Value) {
    let Some(o) = s.as_object_mut() else { return };
    if o.contains_key("properties") && !o.contains_key("additionalProperties") {
        o.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    for v in o.values_mut() {
        match v {
            Value::Object(_) => close(v),
            Value::Array(a) => a.iter_mut().for_each(close),
            _ => {}
        }
    }
}

/// The API's conventions, checked on every value of an answer.
fn conventions(v: &Value, path: &str, problem: &mut impl FnMut(String)) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let at = format!("{path}.{k}");
                let timeish = k == "at"
                    || k == "now"
                    || k.ends_with("_at")
                    || k.ends_with("_since")
                    || k.ends_with("_until");
                match x {
                    Value::Number(_) if timeish => {
                        problem(format!("{at} is a number ({x}); times are RFC 3339 UTC"))
                    }
                    Value::String(t) if timeish && !is_utc(t) => {
                        problem(format!("{at} is `{t}`, not an RFC 3339 UTC time"))
                    }
                    _ => conventions(x, &at, problem),
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                conventions(x, &format!("{path}[{i}]"), problem);
            }
        }
        Value::String(t)
            if (t.starts_with('[') || t.starts_with('{'))
                && serde_json::from_str::<Value>(t)
                    .is_ok_and(|j| j.is_array() || j.is_object()) =>
        {
            problem(format!("{path} is JSON inside a string: `{t}`"));
        }
        // Whatever its name: microseconds between 2000 and 2100 are a time written as a number.
        Value::Number(n)
            if n.as_i64()
                .is_some_and(|us| (946_684_800_000_000..4_102_444_800_000_000).contains(&us)) =>
        {
            problem(format!(
                "{path} is {n}: a time in microseconds; times are RFC 3339 UTC"
            ));
        }
        _ => {}
    }
}

fn is_utc(t: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(t).is_ok_and(|d| d.offset().local_minus_utc() == 0)
}
