#![allow(clippy::unwrap_used)]
use std::path::Path;

use super::*;
use crate::config::RenderConfig;
use crate::domain::duration::HumanDuration;
use crate::domain::regulation::OperatorType;

fn t0() -> DateTime<Utc> {
    "2026-03-02T01:00:00Z".parse().unwrap()
}

/// `t0` plus `m` minutes.
fn at(m: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::minutes(m)
}

fn mins(m: u64) -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(m * 60))
}

fn page(d: &str, paged: i64, acked: Option<i64>) -> Page {
    Page {
        department: d.into(),
        paged_at: at(paged),
        acked_at: acked.map(at),
    }
}

#[test]
fn containment_is_the_task_or_the_transition_whichever_first() {
    use crate::domain::incident::{Category, Severity};
    let mut inc = Incident::opening(
        "x".into(),
        Category::PiLeak,
        Severity::S1,
        "declaration",
        "t",
        t0(),
    );
    let contain = |status: &str, closed: Option<i64>| TaskRow {
        id: 1,
        incident_id: 0,
        key: "contain".into(),
        playbook: None,
        title: "Contain".into(),
        department: "it_operations".into(),
        description: String::new(),
        approval: false,
        approvers: "[]".into(),
        depends_on: "[]".into(),
        after_task: None,
        due_offset_secs: 3600,
        due_at: None,
        status: status.into(),
        assignee: None,
        acked_by: None,
        acked_at: None,
        closed_by: None,
        closed_at: closed.map(|m| to_micros(at(m))),
        note: None,
        created_at: 0,
        updated_at: 0,
    };
    assert_eq!(contained_at(&inc, None), None);
    // The task alone.
    assert_eq!(
        contained_at(&inc, Some(&contain("done", Some(20)))),
        Some(at(20))
    );
    // A task still open, or cancelled when the drill ended, does not count.
    assert_eq!(contained_at(&inc, Some(&contain("open", None))), None);
    assert_eq!(
        contained_at(&inc, Some(&contain("cancelled", Some(20)))),
        None
    );
    // The transition alone, and both: the earlier one.
    inc.contained_at = Some(at(35));
    assert_eq!(contained_at(&inc, None), Some(at(35)));
    assert_eq!(
        contained_at(&inc, Some(&contain("done", Some(20)))),
        Some(at(20))
    );
    assert_eq!(
        contained_at(&inc, Some(&contain("done", Some(50)))),
        Some(at(35))
    );
}

fn task(key: &str, due: Option<i64>, closed: Option<i64>) -> TaskState {
    TaskState {
        key: key.into(),
        title: format!("Task {key}"),
        department: "legal".into(),
        due_at: due.map(at),
        closed_at: closed.map(at),
    }
}

/// A 120-minute drill.
fn snap() -> Snapshot {
    Snapshot {
        incident_id: 7,
        started_at: at(0),
        ended_at: at(120),
        pages: Vec::new(),
        tasks: Vec::new(),
        reached: BTreeMap::new(),
        owners: BTreeMap::new(),
        completeness: Completeness::default(),
    }
}

fn find<'a>(c: &'a Scorecard, id: &str, dept: Option<&str>) -> &'a Measure {
    c.measures
        .iter()
        .find(|m| m.id == id && (dept.is_none() || m.department.as_deref() == dept))
        .unwrap()
}

#[test]
fn acknowledgement_is_timed_from_the_page_against_the_departments_target_or_the_default() {
    let mut s = snap();
    s.pages = vec![
        page("security", 0, Some(12)),
        page("legal", 10, Some(45)),
        page("public_relations", 0, None),
    ];
    let targets = Targets {
        acknowledge: BTreeMap::from([
            ("security".to_string(), mins(15)),
            ("default".to_string(), mins(30)),
        ]),
        ..Targets::default()
    };
    let c = compute(&s, &targets);
    let sec = find(&c, "acknowledge", Some("security"));
    assert_eq!(
        (sec.actual_secs, sec.target_secs, sec.met),
        (Some(720), Some(900), Some(true))
    );
    assert_eq!(
        (sec.actual.as_str(), sec.target.as_deref()),
        ("12m 0s", Some("15m 0s"))
    );
    // Paged 10 minutes in, acknowledged 35 minutes later: the default 30 m is missed.
    let legal = find(&c, "acknowledge", Some("legal"));
    assert_eq!(
        (legal.from, legal.actual_secs, legal.target_secs, legal.met),
        (at(10), Some(2100), Some(1800), Some(false))
    );
    // Never acknowledged, and the drill ended past the target: missed, not reached.
    let pr = find(&c, "acknowledge", Some("public_relations"));
    assert_eq!(
        (pr.actual.as_str(), pr.actual_secs, pr.met),
        ("not reached", None, Some(false))
    );
    assert_eq!(c.unacknowledged, ["public_relations"]);
    assert_eq!((c.met, c.missed), (1, 2));
}

#[test]
fn each_measure_is_met_missed_not_reached_or_without_a_target() {
    let mut s = snap();
    s.ended_at = at(90);
    s.reached = BTreeMap::from([
        ("contain", at(40)),
        ("grade", at(20)),
        ("report_draft", at(75)),
        // After the drill ended: does not count.
        ("notice_delivered", at(95)),
    ]);
    s.owners = BTreeMap::from([("contain", "security".to_string())]);
    s.pages = vec![page("it_operations", 0, Some(3))];
    let targets = Targets {
        contain: Some(mins(60)),
        grade: Some(mins(15)),
        report_draft: Some(mins(60)),
        report_approved: Some(mins(120)),
        notice_delivered: Some(mins(80)),
        ..Targets::default()
    };
    let c = compute(&s, &targets);
    let got = |id: &str| {
        let m = find(&c, id, None);
        (m.actual_secs, m.met)
    };
    assert_eq!(got("contain"), (Some(2400), Some(true)));
    assert_eq!(got("grade"), (Some(1200), Some(false)));
    assert_eq!(got("report_draft"), (Some(4500), Some(false)));
    // Not reached, but the drill ended (90 m) before its target (120 m) passed.
    assert_eq!(got("report_approved"), (None, None));
    // Reached only after the drill ended, past its target: missed.
    assert_eq!(got("notice_delivered"), (None, Some(false)));
    // No target: measured, not judged.
    assert_eq!(got("notice_approved"), (None, None));
    // Unlisted department, no default: not judged.
    assert_eq!(find(&c, "acknowledge", Some("it_operations")).met, None);
    assert_eq!(
        find(&c, "contain", None).department.as_deref(),
        Some("security")
    );
    // Without an owner the first paged department answers for it.
    assert_eq!(
        find(&c, "grade", None).department.as_deref(),
        Some("it_operations")
    );
    assert_eq!((c.met, c.missed, c.duration.as_str()), (1, 3, "1h 30m"));
}

#[test]
fn open_tasks_are_missed_and_tasks_closed_after_their_due_time_are_late() {
    let mut s = snap();
    s.tasks = vec![
        task("on_time", Some(60), Some(50)),
        task("late", Some(60), Some(80)),
        task("open", Some(60), None),
        task("undated_open", None, None),
        task("undated_done", None, Some(100)),
        // Closed after the drill ended: it was open at the end.
        task("after_end", Some(200), Some(130)),
    ];
    let c = compute(&s, &Targets::default());
    let keys = |v: &[TaskIssue]| v.iter().map(|t| t.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&c.tasks_missed), ["open", "undated_open", "after_end"]);
    assert_eq!(keys(&c.tasks_late), ["late"]);
    let late = &c.tasks_late[0];
    assert_eq!(
        (late.closed_at, late.late_by.as_deref()),
        (Some(at(80)), Some("20m 0s"))
    );
    assert_eq!(c.tasks_missed[0].closed_at, None);
}

#[test]
fn action_items_cover_missed_targets_then_missed_then_late_tasks() {
    let mut s = snap();
    s.pages = vec![page("security", 0, None)];
    s.tasks = vec![task("a", Some(10), None), task("b", Some(10), Some(30))];
    let targets = Targets {
        acknowledge: BTreeMap::from([("default".to_string(), mins(15))]),
        contain: Some(mins(60)),
        ..Targets::default()
    };
    let c = compute(&s, &targets);
    let items = action_items(&c, "security", "en");
    let got: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.key.as_str(), i.department.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("aar-1", "security"),
            ("aar-2", "security"),
            ("aar-3", "legal"),
            ("aar-4", "legal")
        ]
    );
    assert_eq!(
        items[1].title,
        "Drill follow-up: Time to contain missed its target (target 1h 0m, actual not reached)"
    );
    assert_eq!(
        items[3].title,
        "Drill follow-up: task `b` (Task b) was done 20m 0s late"
    );
    assert!(
        action_items(&c, "security", "zh-CN")[0]
            .title
            .starts_with("演练改进")
    );
}

fn card_with(ack_secs: Option<i64>, contain_met: Option<bool>) -> Scorecard {
    let mut s = snap();
    s.pages = vec![page("legal", 0, ack_secs.map(|x| x / 60))];
    if contain_met == Some(true) {
        s.reached.insert("contain", at(30));
    }
    let targets = Targets {
        contain: contain_met.map(|_| mins(60)),
        ..Targets::default()
    };
    compute(&s, &targets)
}

#[test]
fn trend_takes_medians_and_the_share_met_oldest_first() {
    let day = |d: i64| t0() + chrono::Duration::days(d);
    // Given newest first: the trend sorts them.
    let cards = vec![
        (day(3), card_with(Some(600), Some(true))),
        (day(1), card_with(Some(1200), Some(false))),
        (day(2), card_with(None, Some(true))),
        (day(0), card_with(Some(300), None)),
    ];
    let tr = trend(&cards);
    assert_eq!(tr.drills, 4);
    let legal = &tr.acknowledge[0];
    assert_eq!(legal.department, "legal");
    // Reached in three drills: 300, 1200, 600 → median 600.
    assert_eq!(
        (legal.median_secs, legal.median.as_deref()),
        (Some(600), Some("10m 0s"))
    );
    let order: Vec<DateTime<Utc>> = legal.series.iter().map(|p| p.drill_at).collect();
    assert_eq!(order, [day(0), day(1), day(2), day(3)]);
    let contain = tr.measures.iter().find(|m| m.id == "contain").unwrap();
    // Judged in three drills, met in two.
    assert_eq!(contain.met_share, Some(2.0 / 3.0));
    // Reached at 30 m in the two that met it.
    assert_eq!(contain.median_secs, Some(1800));
    assert_eq!(
        tr.measures
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        MEASURES
    );
}

fn incident() -> Incident {
    serde_json::from_value(json!({
        "id": 42, "title": "Drill: backup exposed", "summary": "", "category": "pi_leak",
        "severity": "S2", "status": "contained", "drill": true, "origin": "declaration",
        "rule": null, "facts": {}, "facts_version": 1,
        "first_seen_at": "2025-06-01T06:05:00Z", "discovered_at": "2025-06-01T06:05:00Z",
        "declared_at": "2025-06-01T06:20:00Z", "aware_at": null,
        "contained_at": "2025-06-01T07:40:00Z", "closed_at": null,
        "updated_at": "2025-06-01T07:40:00Z", "alert_count": 0, "truncated_alerts": 0,
        "created_by": "token:test"
    }))
    .unwrap()
}

#[test]
fn the_after_action_report_renders_every_section_in_both_locales() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let t = Templates::load(&dir, &RenderConfig::default()).unwrap();
    let org = OrganisationConfig {
        name: "Example Co.".into(),
        operator_type: OperatorType::Other,
        jurisdictions: vec![],
        contact: "privacy@example.com".into(),
        default_locale: "zh-CN".into(),
        default_region: None,
    };
    let (card, mut scenario) = sample();
    let timeline = [Step {
        at: "2025-06-01T06:20:00Z".parse().unwrap(),
        text: "Declared".into(),
    }];
    let participants = ["security".to_string(), "alice".to_string()];
    let sections = [
        (
            "en",
            "[DRILL] After-action report: pi_leak_tabletop (incident #42)",
            [
                "## Scope",
                "## Objectives",
                "## Scenario",
                "## Timeline",
                "## Observations",
                "## Metrics against targets",
                "## Participants",
                "## Action items",
            ],
            "| Time to contain | security | 1h 0m | 1h 20m | MISSED |",
        ),
        (
            "zh-CN",
            "【演练】演练总结报告：pi_leak_tabletop（事件 #42）",
            [
                "## 演练范围",
                "## 演练目标",
                "## 演练情景",
                "## 时间线",
                "## 发现的问题",
                "## 指标与目标对照",
                "## 参与人员",
                "## 改进事项",
            ],
            "| 控制事态用时 | security | 1h 0m | 1h 20m | 未达成 |",
        ),
    ];
    for (locale, subject, headings, row) in sections {
        scenario.locale = locale.into();
        let items = action_items(&card, "security", locale);
        let r = AfterActionReport {
            scenario: &scenario,
            card: &card,
            timeline: &timeline,
            participants: &participants,
            action_items: &items,
            now: "2025-06-01T09:00:00Z".parse().unwrap(),
        };
        let (s, md, html) = render_after_action(&t, &org, &incident(), &r).unwrap();
        assert_eq!(s, subject);
        for h in headings {
            assert!(md.contains(h), "{locale}: {h} missing in\n{md}");
        }
        assert!(md.contains(row), "{locale}: {row} missing in\n{md}");
        assert!(md.contains("A member database backup is found publicly readable."));
        assert!(md.contains("Page and acknowledge within 15 minutes"));
        assert!(md.contains("alice"), "{md}");
        // Legal never acknowledged; prepare_notice open; contain late.
        assert!(
            md.contains("`aar-1` (legal)") || md.contains("`aar-1`（legal）"),
            "{md}"
        );
        assert!(md.contains("`aar-4`"), "{md}");
        assert!(html.contains("<h2>") && html.contains("<strong>"), "{html}");
    }
}

#[test]
fn shipped_templates_still_pass_the_check_with_the_after_action_report() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let cfg = RenderConfig::default();
    let t = Templates::load(&dir, &cfg).unwrap();
    assert_eq!(t.locales(AFTER_ACTION_TEMPLATE), ["en", "zh-CN"]);
    let org = OrganisationConfig {
        name: "Example Co.".into(),
        operator_type: OperatorType::Other,
        jurisdictions: vec![],
        contact: "privacy@example.com".into(),
        default_locale: "zh-CN".into(),
        default_region: None,
    };
    let data = crate::render::context::sample_context(&org);
    let report = t.check(&data, cfg.sms_max_segments);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
}
