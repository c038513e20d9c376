//! The after-action report of a drill (NIST SP 800-84's hot-wash and after-action report): the
//! value its template sees, the action items it assigns and the observations it makes, from the
//! scorecard (`crate::domain::drill::scorecard`); rendered by `crate::engine::scorecard`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::drill::scorecard::*;
use crate::domain::drill::{Mode, Targets};
use crate::domain::duration::HumanDuration;
use crate::render::report::Step;

/// The drill scenario the after-action report describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub mode: Mode,
    pub objectives: Vec<String>,
    /// Who receives the after-action report.
    pub owner_email: String,
    /// The report's language (`en`, `zh-CN`).
    pub locale: String,
}

/// A follow-up the after-action report assigns, created as task `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActionItem {
    /// `aar-1`, `aar-2`, …
    pub key: String,
    pub department: String,
    pub title: String,
}

/// Everything an after-action report shows besides the organisation.
#[derive(Debug, Clone)]
pub struct AfterActionReport<'a> {
    pub scenario: &'a ScenarioInfo,
    pub card: &'a Scorecard,
    /// The condensed audit events ([`crate::render::report::timeline`]).
    pub timeline: &'a [Step],
    /// Departments paged and the people who acted.
    pub participants: &'a [String],
    pub action_items: &'a [ActionItem],
    pub now: DateTime<Utc>,
}

fn is_zh(locale: &str) -> bool {
    locale.to_ascii_lowercase().starts_with("zh")
}

fn measure_label(id: &str, zh: bool) -> &'static str {
    match (id, zh) {
        ("acknowledge", false) => "Time to acknowledge the page",
        ("acknowledge", true) => "确认呼叫用时",
        ("contain", false) => "Time to contain",
        ("contain", true) => "控制事态用时",
        ("grade", false) => "Time to grade",
        ("grade", true) => "完成定级用时",
        ("report_draft", false) => "Time to draft the first regulator report",
        ("report_draft", true) => "首份监管报告起草用时",
        ("report_approved", false) => "Time to approve the first regulator report",
        ("report_approved", true) => "首份监管报告审批用时",
        ("notice_approved", false) => "Time to approve the notice",
        ("notice_approved", true) => "告知内容审批用时",
        ("notice_delivered", false) => "Time to the first notice delivered",
        ("notice_delivered", true) => "首条告知送达用时",
        (_, false) => "Time",
        (_, true) => "用时",
    }
}

fn measure_title(m: &Measure, zh: bool) -> String {
    let label = measure_label(&m.id, zh);
    match &m.department {
        Some(d) if m.id == "acknowledge" => format!("{label} ({d})"),
        _ => label.to_string(),
    }
}

fn verdict_label(met: Option<bool>, zh: bool) -> &'static str {
    match (met, zh) {
        (Some(true), false) => "met",
        (Some(true), true) => "达成",
        (Some(false), false) => "MISSED",
        (Some(false), true) => "未达成",
        (None, false) => "—",
        (None, true) => "—",
    }
}

fn missed_measures(card: &Scorecard) -> impl Iterator<Item = &Measure> {
    card.measures.iter().filter(|m| m.met == Some(false))
}

/// The follow-ups a scorecard calls for, numbered `aar-1`…: each missed target, then each task
/// missed, then each task late; each for the department responsible (`fallback` when none is
/// known).
pub fn action_items(card: &Scorecard, fallback: &str, locale: &str) -> Vec<ActionItem> {
    let zh = is_zh(locale);
    let mut items: Vec<(String, String)> = Vec::new();
    for m in missed_measures(card) {
        let target = m.target.as_deref().unwrap_or("—");
        let title = if zh {
            format!(
                "演练改进：{}未达目标（目标 {target}，实际 {}）",
                measure_title(m, zh),
                m.actual
            )
        } else {
            format!(
                "Drill follow-up: {} missed its target (target {target}, actual {})",
                measure_title(m, zh),
                m.actual
            )
        };
        let dept = m.department.clone().unwrap_or_else(|| fallback.to_string());
        items.push((dept, title));
    }
    for t in &card.tasks_missed {
        let title = if zh {
            format!("演练改进：任务“{}”（{}）演练结束时仍未完成", t.title, t.key)
        } else {
            format!(
                "Drill follow-up: task `{}` ({}) was still open when the drill ended",
                t.key, t.title
            )
        };
        items.push((t.department.clone(), title));
    }
    for t in &card.tasks_late {
        let by = t.late_by.as_deref().unwrap_or("—");
        let title = if zh {
            format!("演练改进：任务“{}”（{}）逾期 {by} 完成", t.title, t.key)
        } else {
            format!(
                "Drill follow-up: task `{}` ({}) was done {by} late",
                t.key, t.title
            )
        };
        items.push((t.department.clone(), title));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, (department, title))| ActionItem {
            key: format!("{ACTION_ITEM_PREFIX}{}", i + 1),
            department,
            title,
        })
        .collect()
}

/// What did not go as planned, one sentence each.
fn observations(card: &Scorecard, zh: bool) -> Vec<String> {
    let mut out = Vec::new();
    for m in missed_measures(card) {
        let target = m.target.as_deref().unwrap_or("—");
        out.push(if zh {
            format!(
                "{}未达目标：目标 {target}，实际 {}。",
                measure_title(m, zh),
                m.actual
            )
        } else {
            format!(
                "{} missed its target: target {target}, actual {}.",
                measure_title(m, zh),
                m.actual
            )
        });
    }
    for d in &card.unacknowledged {
        out.push(if zh {
            format!("部门 {d} 的呼叫始终未被确认。")
        } else {
            format!("The page to {d} was never acknowledged.")
        });
    }
    let open: Vec<&str> = card.tasks_missed.iter().map(|t| t.key.as_str()).collect();
    if !open.is_empty() {
        out.push(if zh {
            format!(
                "演练结束时仍有 {} 项任务未完成：{}。",
                open.len(),
                open.join("、")
            )
        } else {
            format!(
                "{} task(s) were still open when the drill ended: {}.",
                open.len(),
                open.join(", ")
            )
        });
    }
    let late: Vec<&str> = card.tasks_late.iter().map(|t| t.key.as_str()).collect();
    if !late.is_empty() {
        out.push(if zh {
            format!("{} 项任务逾期完成：{}。", late.len(), late.join("、"))
        } else {
            format!(
                "{} task(s) were done late: {}.",
                late.len(),
                late.join(", ")
            )
        });
    }
    let c = &card.completeness;
    if !c.notice_exempt && !c.notice_missing.is_empty() {
        out.push(if zh {
            format!("告知内容缺少要素：{}。", c.notice_missing.join("、"))
        } else {
            format!("The notice lacked: {}.", c.notice_missing.join("; "))
        });
    }
    for r in &c.reports {
        out.push(if zh {
            format!(
                "监管报告 {}（第 {} 版）不完整，待补充：{}。",
                r.obligation_key,
                r.version,
                r.missing.join("、")
            )
        } else {
            format!(
                "Regulator report {} (version {}) was incomplete; to follow: {}.",
                r.obligation_key,
                r.version,
                r.missing.join("; ")
            )
        });
    }
    out
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The `drill` value the after-action templates render (documented in
/// `templates/drill/after_action.en.hbs`).
pub fn drill_value(r: &AfterActionReport<'_>) -> Value {
    let zh = is_zh(&r.scenario.locale);
    let card = r.card;
    let measures: Vec<Value> = card
        .measures
        .iter()
        .map(|m| {
            json!({
                "measure": measure_title(m, zh),
                "department": m.department.clone().unwrap_or_default(),
                "target": m.target.clone().unwrap_or_else(|| "—".into()),
                "actual": m.actual,
                "verdict": verdict_label(m.met, zh),
                "missed": m.met == Some(false),
            })
        })
        .collect();
    let mode = match (r.scenario.mode, zh) {
        (Mode::Tabletop, false) => "tabletop (tasks and pages only)",
        (Mode::Tabletop, true) => "桌面推演（仅任务与呼叫）",
        (Mode::Functional, false) => "functional (notices and reports to capture recipients)",
        (Mode::Functional, true) => "功能演练（告知与报告发往捕获收件人）",
    };
    json!({
        "name": r.scenario.name,
        "description": r.scenario.description,
        "mode": mode,
        "objectives": r.scenario.objectives,
        "owner": r.scenario.owner_email,
        "started_at": rfc3339(card.started_at),
        "ended_at": rfc3339(card.ended_at),
        "duration": card.duration,
        "met": card.met,
        "missed": card.missed,
        "measures": measures,
        "observations": observations(card, zh),
        "timeline": r.timeline.iter().map(|s| json!({"at": rfc3339(s.at), "text": s.text})).collect::<Vec<_>>(),
        "participants": r.participants,
        "action_items": r.action_items,
        "now": rfc3339(r.now),
    })
}

/// A plausible drill's `drill` value, for previews and `incidentd check` (every after-action
/// template renders against it).
pub fn sample_drill_value() -> Value {
    let (card, scenario) = sample();
    let items = action_items(&card, "security", "en");
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
    let timeline = vec![
        Step {
            at: at("2025-06-01T06:20:00Z"),
            text: "Incident declared (drill)".into(),
        },
        Step {
            at: at("2025-06-01T07:10:00Z"),
            text: "Contained".into(),
        },
    ];
    drill_value(&AfterActionReport {
        scenario: &scenario,
        card: &card,
        timeline: &timeline,
        participants: &["security".into(), "legal".into(), "alice".into()],
        action_items: &items,
        now: at("2025-06-01T09:00:00Z"),
    })
}

/// The sample drill: a scorecard with one target met, one missed, a task missed and one late.
pub(crate) fn sample() -> (Scorecard, ScenarioInfo) {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
    let start = at("2025-06-01T06:20:00Z");
    let d = |s: u64| HumanDuration(std::time::Duration::from_secs(s));
    let targets = Targets {
        acknowledge: BTreeMap::from([("default".to_string(), d(900))]),
        contain: Some(d(3600)),
        ..Targets::default()
    };
    let snap = Snapshot {
        incident_id: 42,
        started_at: start,
        ended_at: at("2025-06-01T08:20:00Z"),
        pages: vec![
            Page {
                department: "security".into(),
                paged_at: start,
                acked_at: Some(at("2025-06-01T06:25:00Z")),
            },
            Page {
                department: "legal".into(),
                paged_at: start,
                acked_at: None,
            },
        ],
        tasks: vec![
            TaskState {
                key: "contain".into(),
                title: "Contain the leak".into(),
                department: "security".into(),
                due_at: Some(at("2025-06-01T07:20:00Z")),
                closed_at: Some(at("2025-06-01T07:40:00Z")),
            },
            TaskState {
                key: "prepare_notice".into(),
                title: "Prepare the notice".into(),
                department: "legal".into(),
                due_at: Some(at("2025-06-01T08:00:00Z")),
                closed_at: None,
            },
        ],
        reached: BTreeMap::from([("contain", at("2025-06-01T07:40:00Z"))]),
        owners: BTreeMap::from([("contain", "security".to_string())]),
        completeness: Completeness::default(),
    };
    let scenario = ScenarioInfo {
        name: "pi_leak_tabletop".into(),
        description: "A member database backup is found publicly readable.".into(),
        mode: Mode::Tabletop,
        objectives: vec!["Page and acknowledge within 15 minutes".into()],
        owner_email: "drills@example.com".into(),
        locale: "en".into(),
    };
    (compute(&snap, &targets), scenario)
}

/// The after-action report's template.
pub const AFTER_ACTION_TEMPLATE: &str = "drill/after_action";
