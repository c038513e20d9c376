//! The report's account of what happened: audit events condensed into steps people read, in
//! the report's language, with the daemon's own bookkeeping left out.

use super::*;

/// Audit event kinds left out of `timeline.events` (machine traffic, not what happened).
const NOISE: &[&str] = &[
    "alerts.received",
    "alerts.recorded",
    "deliveries.recorded",
    "deliveries.enqueued",
    "digest.sent",
    "response.rearmed",
];

/// One audit event in words of the report's language: `(text, is a step taken)`. Steps are
/// what people did and decided (`timeline.steps`); the rest is context (`timeline.events`).
pub(super) fn describe(e: &crate::domain::records::Event, zh: bool) -> (String, bool) {
    let d = &e.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let by = &e.actor;
    let (text, step) = match (e.kind.as_str(), zh) {
        ("incident.declared", true) => (format!("{by} 登记事件：{}", s("title")), true),
        ("incident.declared", false) => {
            (format!("Incident declared by {by}: {}", s("title")), true)
        }
        ("incident.opened", true) => (format!("由告警开启事件：{}", s("title")), true),
        ("incident.opened", false) => {
            (format!("Incident opened from alerts: {}", s("title")), true)
        }
        ("incident.transitioned", true) => (
            format!(
                "状态由“{}”变为“{}”{}",
                codes(&[s("from")], true),
                codes(&[s("to")], true),
                note(&s("note"), true)
            ),
            true,
        ),
        ("incident.transitioned", false) => (
            format!(
                "Status changed from {} to {}{}",
                codes(&[s("from")], false),
                codes(&[s("to")], false),
                note(&s("note"), false)
            ),
            true,
        ),
        ("incident.facts_updated", z) => {
            let keys: Vec<String> = d
                .get("patch")
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            let v = d.get("version").and_then(Value::as_i64).unwrap_or(0);
            let what = if keys.is_empty() {
                String::new()
            } else {
                format!(": {}", keys.join(", "))
            };
            if z {
                (format!("事实更新（第{v}版）{what}"), true)
            } else {
                (format!("Facts updated (version {v}){what}"), true)
            }
        }
        ("page.acknowledged", true) => (format!("{} 确认响应", s("department")), true),
        ("page.acknowledged", false) => {
            (format!("{} acknowledged the page", s("department")), true)
        }
        ("task.completed", true) => (
            format!("任务 {} 完成{}", s("task"), note(&s("note"), true)),
            true,
        ),
        ("task.completed", false) => (
            format!("Task {} completed{}", s("task"), note(&s("note"), false)),
            true,
        ),
        ("approval.decided", true) => (format!("审批 {}：{}", s("task"), s("decision")), true),
        ("approval.decided", false) => (format!("Approval {}: {}", s("task"), s("decision")), true),
        ("subjects.imported", true) => ("导入受影响个人名单".to_string(), true),
        ("subjects.imported", false) => ("Affected individuals' list imported".to_string(), true),
        ("notice.campaign_started", true) => ("开始通知受影响的个人".to_string(), true),
        ("notice.campaign_started", false) => (
            "Notification of the affected individuals started".to_string(),
            true,
        ),
        ("notice.exempted", true) => (
            "经法务审批，依法不通知个人（措施有效避免危害）".to_string(),
            true,
        ),
        ("notice.exempted", false) => (
            "Individual notification not required (measures avoid harm), approved by Legal"
                .to_string(),
            true,
        ),
        ("announcement.published", true) => ("发布公告".to_string(), true),
        ("announcement.published", false) => ("Public announcement published".to_string(), true),
        ("report.submitted", true) => (
            format!("向{}报送{}", s("recipient_name"), s("report")),
            true,
        ),
        ("report.submitted", false) => (
            format!(
                "Report {} submitted to {}",
                s("report"),
                s("recipient_name")
            ),
            true,
        ),
        (kind, _) => (kind.to_string(), false),
    };
    (text, step)
}

pub(super) fn note(n: &str, zh: bool) -> String {
    match (n.trim(), zh) {
        ("", _) => String::new(),
        (n, true) => format!("（{n}）"),
        (n, false) => format!(" ({n})"),
    }
}

/// The chronological account from the audit events: `(events, steps)` in the report's
/// language (see [`Sources::events`], [`Sources::steps`]).
pub fn timeline(events: &[crate::domain::records::Event], locale: &str) -> (Vec<Step>, Vec<Step>) {
    let zh = is_zh(locale);
    let mut all = Vec::new();
    let mut steps = Vec::new();
    for e in events.iter().filter(|e| !NOISE.contains(&e.kind.as_str())) {
        let (text, step) = describe(e, zh);
        let s = Step { at: e.at, text };
        if step {
            steps.push(s.clone());
        }
        all.push(s);
    }
    (all, steps)
}
