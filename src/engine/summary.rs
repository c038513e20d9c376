//! The post-incident summary (issue #6, item 5): the times that matter — detected, discovered,
//! declared, contained, first notice, first regulator report, closing report, closed — each
//! against its target (the obligations' deadlines, the playbook's task deadlines), as durations
//! from detection and met or missed; every obligation and timed task with the same verdict; and
//! the condensed timeline. Read-only: computed from the store whenever it is asked for, so it is
//! right after the incident closes (when the closing report's clock starts) and at any time
//! before.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Engine, EngineError};
use crate::domain::duration::{since, verdict};
use crate::domain::time::from_micros;
use crate::render::report as rr;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub incident_id: i64,
    pub title: String,
    pub status: String,
    pub drill: bool,
    pub category: String,
    pub severity: String,
    pub milestones: Vec<Milestone>,
    pub obligations: Vec<Timed>,
    pub tasks: Vec<Timed>,
    pub timeline: Vec<rr::Step>,
}

/// One of the times that matter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Milestone {
    /// detected | discovered | declared | contained | notified | reported | closing_report | closed
    pub id: &'static str,
    pub label: &'static str,
    pub at: Option<DateTime<Utc>>,
    /// From detection (first_seen_at), e.g. `1h 5m`.
    pub after_detection: Option<String>,
    pub target: Option<DateTime<Utc>>,
    /// What set the target (`CN:cac_report_other`, task `contain`).
    pub target_from: Option<String>,
    /// Met (on or before the target), missed (after it, or not yet and past it); `None` without
    /// a target, or while not yet due.
    pub met: Option<bool>,
}

/// An obligation or a task with a deadline, and how it went.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Timed {
    pub key: String,
    pub what: String,
    pub due_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub status: String,
    pub met: Option<bool>,
}

impl Engine {
    /// The post-incident summary of an incident (any status).
    pub async fn summary(&self, incident_id: i64) -> Result<Summary, EngineError> {
        let store = self.store();
        let inc = store
            .incident(incident_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("there is no incident {incident_id}")))?;
        let obligations = store.obligations_of(incident_id).await?;
        let tasks = store.tasks_of_incidents(&[incident_id]).await?;
        let reports = store.reports_of(incident_id).await?;
        let events = store.timeline(incident_id, 0, 10_000).await?;
        let now = Utc::now();
        let milestones = milestones(&inc, &obligations, &tasks, &reports, &events, now);
        let obligations = obligations
            .iter()
            .map(|o| timed_obligation(o, now))
            .collect();
        let tasks = tasks
            .iter()
            .filter(|t| t.due_at.is_some())
            .map(|t| timed_task(t, now))
            .collect();
        let (timeline, _) = rr::timeline(&events, "en");
        Ok(Summary {
            incident_id,
            title: inc.title.clone(),
            status: inc.status.to_string(),
            drill: inc.drill,
            category: inc.category.to_string(),
            severity: inc.severity.to_string(),
            milestones,
            obligations,
            tasks,
            timeline,
        })
    }
}

/// The times that matter, each against its target: the earliest required obligation's
/// deadline, or the containment task's.
fn milestones(
    inc: &crate::domain::records::Incident,
    obligations: &[crate::store::ObligationRow],
    tasks: &[crate::store::TaskRow],
    reports: &[crate::store::ReportRow],
    events: &[crate::domain::records::Event],
    now: DateTime<Utc>,
) -> Vec<Milestone> {
    let earliest = |kind: &str, report_kind: Option<&str>| {
        obligations
            .iter()
            .filter(|o| o.kind == kind && o.standing == "required" && o.due_at.is_some())
            .filter(|o| report_kind.is_none_or(|k| o.report_kind.as_deref() == Some(k)))
            .min_by_key(|o| o.due_at)
            .map(|o| (o.due_at.map(from_micros), o.key.clone()))
    };
    let first_event = |kind: &str| events.iter().find(|e| e.kind == kind).map(|e| e.at);
    let submitted = |kind: &str| {
        reports
            .iter()
            .filter(|r| r.status == "submitted" && r.report_kind == kind)
            .filter_map(|r| r.submitted_at)
            .min()
            .map(from_micros)
    };
    let contain_task = tasks
        .iter()
        .filter(|t| t.key.contains("contain") && t.due_at.is_some())
        .min_by_key(|t| t.due_at);
    let notified = first_event("notice.campaign_started").or(first_event("notice.exempted"));
    let reported = submitted("initial");
    let closing = submitted("closing");
    let mut ms = Vec::new();
    let mut push =
        |id, label, at: Option<DateTime<Utc>>, target: Option<(Option<DateTime<Utc>>, String)>| {
            let (t, from) = target.map_or((None, None), |(t, f)| (t, Some(f)));
            ms.push(Milestone {
                id,
                label,
                at,
                after_detection: since(inc.first_seen_at, at),
                target: t,
                target_from: from,
                met: verdict(at, t, now),
            });
        };
    push(
        "detected",
        "Detected (first alert)",
        Some(inc.first_seen_at),
        None,
    );
    push("discovered", "Discovered", Some(inc.discovered_at), None);
    push("declared", "Declared", inc.declared_at, None);
    push(
        "contained",
        "Contained",
        inc.contained_at,
        contain_task.map(|t| (t.due_at.map(from_micros), format!("task {}", t.key))),
    );
    push(
        "notified",
        "Individuals notified (campaign started)",
        notified,
        earliest("notify_individuals", None),
    );
    push(
        "reported",
        "First regulator report submitted",
        reported,
        earliest("report", Some("initial")),
    );
    push(
        "closing_report",
        "Closing report submitted",
        closing,
        earliest("report", Some("closing")),
    );
    push("closed", "Closed", inc.closed_at, None);
    ms
}

/// An obligation and how it went; only a required one is met or missed.
fn timed_obligation(o: &crate::store::ObligationRow, now: DateTime<Utc>) -> Timed {
    let due = o.due_at.map(from_micros);
    let done = o.met_at.map(from_micros);
    Timed {
        key: o.key.clone(),
        what: format!("{} ({})", o.kind, o.standing),
        due_at: due,
        done_at: done,
        status: o.status.clone(),
        met: if o.standing == "required" {
            verdict(done, due, now)
        } else {
            None
        },
    }
}

/// A task with a deadline and how it went: done when it closed satisfied.
fn timed_task(t: &crate::store::TaskRow, now: DateTime<Utc>) -> Timed {
    let due = t.due_at.map(from_micros);
    let done = t.closed_at.filter(|_| t.is_satisfied()).map(from_micros);
    Timed {
        key: t.key.clone(),
        what: format!("{} ({})", t.title, t.department),
        due_at: due,
        done_at: done,
        status: t.status.clone(),
        met: verdict(done, due, now),
    }
}

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map_or_else(
        || "—".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "—",
    }
}

impl Summary {
    /// As Markdown: the times that matter, obligations, tasks, timeline.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Post-incident summary: incident {} — {}\n\n{}{} · {} · {}\n\n## The times that matter\n\n| | at | after detection | target | target from | |\n|---|---|---|---|---|---|\n",
            self.incident_id,
            self.title,
            if self.drill { "DRILL · " } else { "" },
            self.status,
            self.category,
            self.severity
        );
        for m in &self.milestones {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                m.label,
                t(m.at),
                m.after_detection.as_deref().unwrap_or("—"),
                t(m.target),
                m.target_from.as_deref().unwrap_or("—"),
                met(m.met)
            ));
        }
        for (title, rows) in [
            ("Obligations", &self.obligations),
            ("Tasks with deadlines", &self.tasks),
        ] {
            s.push_str(&format!(
                "\n## {title}\n\n| | what | due | done | status | |\n|---|---|---|---|---|---|\n"
            ));
            for r in rows {
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    r.key,
                    r.what,
                    t(r.due_at),
                    t(r.done_at),
                    r.status,
                    met(r.met)
                ));
            }
        }
        s.push_str("\n## Timeline\n\n");
        for e in &self.timeline {
            s.push_str(&format!("- {} — {}\n", t(Some(e.at)), e.text));
        }
        s
    }

    /// As an HTML page (every value escaped).
    pub fn html(&self) -> String {
        let e = |x: &str| handlebars::html_escape(x);
        let mut s = format!(
            "<!doctype html>\n<meta charset=\"utf-8\">\n<title>Post-incident summary: incident {}</title>\n<h1>Post-incident summary: incident {} — {}</h1>\n<p>{}{} · {} · {}</p>\n<h2>The times that matter</h2>\n<table>\n<tr><th></th><th>at</th><th>after detection</th><th>target</th><th>target from</th><th></th></tr>\n",
            self.incident_id,
            self.incident_id,
            e(&self.title),
            if self.drill { "DRILL · " } else { "" },
            e(&self.status),
            e(&self.category),
            e(&self.severity)
        );
        for m in &self.milestones {
            s.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                e(m.label),
                t(m.at),
                e(m.after_detection.as_deref().unwrap_or("—")),
                t(m.target),
                e(m.target_from.as_deref().unwrap_or("—")),
                met(m.met)
            ));
        }
        s.push_str("</table>\n");
        for (title, rows) in [
            ("Obligations", &self.obligations),
            ("Tasks with deadlines", &self.tasks),
        ] {
            s.push_str(&format!("<h2>{title}</h2>\n<table>\n<tr><th></th><th>what</th><th>due</th><th>done</th><th>status</th><th></th></tr>\n"));
            for r in rows {
                s.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    e(&r.key),
                    e(&r.what),
                    t(r.due_at),
                    t(r.done_at),
                    e(&r.status),
                    met(r.met)
                ));
            }
            s.push_str("</table>\n");
        }
        s.push_str("<h2>Timeline</h2>\n<ul>\n");
        for x in &self.timeline {
            s.push_str(&format!("<li>{} — {}</li>\n", t(Some(x.at)), e(&x.text)));
        }
        s.push_str("</ul>\n");
        s
    }
}
