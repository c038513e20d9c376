//! The response to an incident: its playbook applied — the joint team paged, tasks created —
//! escalation of what nobody acknowledges or finishes in time, and the work people do on
//! tasks and approvals.
//!
//! Everything time-based is a persisted timer, written in the same transaction as the change
//! that made it necessary, and fired by the scheduler inside a write transaction of its own
//! (so a timer's effects and its removal commit together: it fires once, across restarts).
//!
//! * An incident that opens (or whose severity rises) gets a `playbook.apply` timer due at once.
//!   Applying is idempotent: tasks are keyed by the playbook's task ids, departments join the
//!   team once, pages are keyed by incident, department, level, member and channel.
//! * Each department of the team is paged at level 1 on the severity's channels, with an
//!   `escalate` timer at `escalate_after`. Acknowledging any of the department's tasks
//!   acknowledges its page; otherwise the timer pages the next level, and so on to the top.
//! * Each task with a due time has a `task.overdue` timer that pages the department's lead if
//!   the task is still open then. A task due after another's completion gets its due time (and
//!   timer) when that task completes.
//! * Approval tasks are decided by each of their approving departments; all must approve. A
//!   task whose dependencies are not done or approved cannot be completed, and says why.
//! * Pages go through [`super::paging::enqueue_pages`], which coalesces pages to one person
//!   into digests. A page whose every channel (and fallback) died gets a `page.dead` timer
//!   (scheduled by the dispatcher when it records the last death): the department's next level
//!   is paged at once — or, at the top, its lead — and `page.dead` on the timeline says which
//!   page died, why, and what was done.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::warn;

use super::EngineError;
use super::deliveries::DeliveryCtx;
use crate::config::{DepartmentConfig, MemberConfig, PagingConfig};
use crate::domain::message::{ChannelKind, Content, Purpose};
use crate::domain::playbook::{Playbook, Playbooks};
use crate::domain::records::Incident;
use crate::domain::time::{from_micros, to_micros};
use crate::render::context::recipient_value;
use crate::render::incident_context;
use crate::store::{
    ApprovalRow, DueTimer, NewDelivery, NewEvent, NewTask, NewTimer, TaskRow, WriteTx,
};

mod timers;
pub(crate) use timers::digest;
use timers::*;

pub const TIMER_PLAYBOOK: &str = "playbook.apply";
pub const TIMER_ESCALATE: &str = "escalate";
pub const TIMER_OVERDUE: &str = "task.overdue";
pub const TIMER_REARM: &str = "response.rearm";
/// A page whose every channel died (see [`crate::store::PageKey::dead_timer`]).
pub const TIMER_PAGE_DEAD: &str = crate::store::PAGE_DEAD_TIMER;

/// After a reopen: the timer that re-arms the response (its timers fired, or were dropped,
/// while the incident was closed).
pub fn rearm_timer(incident_id: i64, now: DateTime<Utc>) -> NewTimer {
    NewTimer {
        key: format!("rearm:{incident_id}:{}", to_micros(now)),
        kind: TIMER_REARM.to_string(),
        incident_id: Some(incident_id),
        due_at: to_micros(now),
        payload: json!({}),
    }
}

/// What applying playbooks and paging needs, from the live configuration.
pub struct ResponseCtx<'a> {
    /// Where people reach this daemon (for acknowledgement links).
    pub public_url: &'a str,
    pub playbooks: &'a Playbooks,
    pub departments: &'a [DepartmentConfig],
    pub paging: &'a PagingConfig,
    pub render: DeliveryCtx<'a>,
}

impl ResponseCtx<'_> {
    fn department(&self, id: &str) -> Option<&DepartmentConfig> {
        self.departments.iter().find(|d| d.id == id)
    }
}

/// The timer that applies an incident's playbook at its (new) severity, due now.
pub fn playbook_timer(incident: &Incident, now: DateTime<Utc>) -> NewTimer {
    NewTimer {
        // The time makes every change its own timer (fired keys are kept for a week): a
        // category changed back, or a severity lowered then raised, is applied again.
        key: format!(
            "playbook:{}:{}:{}:{}",
            incident.id,
            incident.category,
            incident.severity,
            to_micros(now)
        ),
        kind: TIMER_PLAYBOOK.to_string(),
        incident_id: Some(incident.id),
        due_at: to_micros(now),
        payload: serde_json::json!({}),
    }
}

fn escalate_timer(
    incident_id: i64,
    dept: &DepartmentConfig,
    level: i32,
    now: DateTime<Utc>,
    severity: &str,
) -> NewTimer {
    NewTimer {
        key: format!("escalate:{incident_id}:{}:{level}:{severity}", dept.id),
        kind: TIMER_ESCALATE.to_string(),
        incident_id: Some(incident_id),
        due_at: to_micros(now + dept.escalate_after.0),
        payload: json!({ "department": dept.id, "level": level }),
    }
}

pub(super) fn overdue_timer(incident_id: i64, task: &str, due_at: i64) -> NewTimer {
    NewTimer {
        key: format!("overdue:{incident_id}:{task}"),
        kind: TIMER_OVERDUE.to_string(),
        incident_id: Some(incident_id),
        due_at,
        payload: json!({ "task": task }),
    }
}

/// When the incident's clock for task deadlines started: its declaration, else when it opened.
fn base_time(incident: &Incident, now: DateTime<Utc>) -> DateTime<Utc> {
    incident.declared_at.unwrap_or(now).min(now)
}

/// Apply the playbook that fits the incident now. Returns the audit events to append.
///
/// The first application pages every department at level 1. A later one (severity raised,
/// category changed) adds the new tasks and departments, and pages each department already on
/// the team that has not acknowledged again, at its current level, on the (new) severity's
/// channels — a page already sent on a channel is not sent twice.
pub async fn apply_playbook(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    if !incident.status.is_open() {
        return Ok(Vec::new());
    }
    let pb = ctx.playbooks.select(incident.category, incident.severity);
    let sev = incident.severity.as_str();
    let before = tx.playbook_applied(incident.id).await?;
    if before.as_ref().map(|(p, s)| (p.as_str(), s.as_str())) == Some((pb.id.as_str(), sev)) {
        return Ok(Vec::new());
    }
    let now_us = to_micros(now);
    // Deadlines count from the declaration; tasks a later application adds count from now, or
    // they would be overdue before anyone was told about them.
    let base = if before.is_some() {
        now
    } else {
        base_time(incident, now)
    };
    let existing = tx.tasks_of(incident.id).await?;
    let defs = pb.tasks_for(incident.severity);
    let tasks = new_tasks(incident, pb, &defs, &existing, base, now);
    let created = tx.insert_tasks(&tasks, now_us).await?;
    let mut timers: Vec<NewTimer> = tasks
        .iter()
        .filter(|t| created.contains(&t.key))
        .filter_map(|t| Some(overdue_timer(incident.id, &t.key, t.due_at?)))
        .collect();
    let team = tx.team_of(incident.id).await?;
    let mut events = Vec::new();
    let mut paged = Vec::new();
    let mut deliveries = Vec::new();
    for dept_id in &pb.departments {
        let Some(dept) = ctx.department(dept_id) else {
            continue;
        };
        let level = match team.iter().find(|r| &r.department == dept_id) {
            None => {
                tx.add_team(incident.id, dept_id, 1, now_us).await?;
                1
            }
            Some(r) if r.acked_at.is_none() => r.level,
            Some(_) => continue,
        };
        let members = dept.at_level(level as u32).count();
        let first = defs
            .iter()
            .find(|t| &t.department == dept_id)
            .map(|t| t.id.as_str());
        deliveries.extend(page(
            ctx,
            pb,
            incident,
            dept,
            level as u32,
            None,
            first,
            now,
        ));
        timers.push(escalate_timer(incident.id, dept, level, now, sev));
        paged.push(json!({ "department": dept_id, "level": level, "members": members }));
    }
    let coalesced = super::paging::enqueue_pages(tx, ctx, &deliveries, now).await?;
    tx.schedule_timers(&timers, now_us).await?;
    tx.set_playbook(incident.id, &pb.id, sev, now_us).await?;
    events.push(NewEvent::new(
        now,
        "incidentd",
        "playbook.applied",
        Some(incident.id),
        &json!({
            "playbook": pb.id,
            "severity": sev,
            "replaces": before.map(|(p, s)| format!("{p} at {s}")),
            "tasks_created": created,
            "paged": paged,
        }),
    ));
    events.extend(coalesced);
    Ok(events)
}

/// The playbook's tasks at the incident's severity, each due `due` after `base` — or, if it
/// comes after another task, after that task's completion (already past if it is done).
fn new_tasks(
    incident: &Incident,
    pb: &Playbook,
    defs: &[&crate::domain::playbook::TaskDef],
    existing: &[TaskRow],
    base: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<NewTask> {
    let done_at = |key: &str| {
        existing
            .iter()
            .find(|t| t.key == key && t.is_satisfied())
            .and_then(|t| t.closed_at)
    };
    defs.iter()
        .map(|t| NewTask {
            incident_id: incident.id,
            key: t.id.clone(),
            playbook: Some(pb.id.clone()),
            title: t.title.clone(),
            department: t.department.clone(),
            description: t.description.clone(),
            approval: t.approval,
            approvers: t.approvers.clone(),
            depends_on: t.depends_on.clone(),
            after_task: t.after.clone(),
            due_offset_secs: t.due.as_secs() as i64,
            // Due after another task: from its completion — already past if it is done.
            due_at: match &t.after {
                None => Some(to_micros(base + t.due)),
                Some(a) => done_at(a).map(|d| to_micros(now.max(from_micros(d)) + t.due)),
            },
        })
        .collect()
}

/// The channels a member can be paged on at this severity, with the address for each.
pub(super) fn addresses<'m>(
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    m: &'m MemberConfig,
) -> Vec<(ChannelKind, &'m str)> {
    let channels = ctx
        .paging
        .channels
        .get(&incident.severity)
        .cloned()
        .unwrap_or_else(|| vec![ChannelKind::Email]);
    channels
        .into_iter()
        .filter_map(|c| {
            let a = match c {
                ChannelKind::Email => m.email.as_deref(),
                ChannelKind::Sms | ChannelKind::Voice => m.phone.as_deref(),
                _ => None,
            }?;
            Some((c, a))
        })
        .collect()
}

/// Deliveries paging a department's members at `level` (or `only` these members).
#[allow(clippy::too_many_arguments)]
fn page(
    ctx: &ResponseCtx<'_>,
    pb: &Playbook,
    incident: &Incident,
    dept: &DepartmentConfig,
    level: u32,
    only: Option<&[&MemberConfig]>,
    ack_task: Option<&str>,
    now: DateTime<Utc>,
) -> Vec<NewDelivery> {
    let members: Vec<(usize, &MemberConfig)> = dept
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| match only {
            Some(list) => list.iter().any(|o| std::ptr::eq(*o, *m)),
            None => m.level == level,
        })
        .collect();
    let inc_json = serde_json::to_value(incident).unwrap_or_default();
    let mut out = Vec::new();
    for (i, m) in members {
        let member_id = dept.member_id(i);
        let locale = m
            .locale
            .clone()
            .unwrap_or_else(|| ctx.render.org.default_locale.clone());
        let ack = match (ack_task.unwrap_or_default(), &ctx.paging.ack_secret) {
            (task, Some(secret)) => {
                let token = crate::engine::acklink::sign(
                    secrecy::ExposeSecret::expose_secret(secret).as_bytes(),
                    &crate::engine::acklink::AckClaim {
                        incident_id: incident.id,
                        task: task.to_string(),
                        member: format!("{}/{member_id}", dept.id),
                        expires: (now + ctx.paging.ack_link_ttl.0).timestamp(),
                    },
                );
                serde_json::Value::String(format!(
                    "{}/ack/{token}",
                    ctx.public_url.trim_end_matches('/')
                ))
            }
            (_, None) => serde_json::Value::Null,
        };
        let console = format!(
            "{}/console/incidents/{}",
            ctx.public_url.trim_end_matches('/'),
            incident.id
        );
        for (channel, address) in addresses(ctx, incident, m) {
            let mut data = incident_context(&inc_json, ctx.render.org);
            data["recipient"] = recipient_value(Some(&m.name), channel, address, &locale);
            data["links"] = json!({ "ack": ack, "console": console });
            let content = ctx
                .render
                .templates
                .render(&pb.page_template, channel, &locale, &data)
                .unwrap_or_else(|e| {
                    warn!(error = %e, template = %pb.page_template, "page template failed; sending a plain page");
                    plain_page(incident, &dept.name)
                });
            // What a digest that may hold this page shows of it (engine::paging).
            let mut content = content;
            content.data = serde_json::to_value(crate::render::digest::PageNote {
                incident_id: incident.id,
                severity: incident.severity.as_str().to_string(),
                title: incident.title.clone(),
                ack: ack.as_str().map(str::to_string),
                recipient_name: Some(m.name.clone()),
            })
            .ok();
            out.push(NewDelivery {
                idempotency_key: format!(
                    "page:{}:{}:{level}:{member_id}:{channel}",
                    incident.id, dept.id
                ),
                incident_id: Some(incident.id),
                purpose: if incident.drill {
                    Purpose::Drill
                } else {
                    Purpose::Page
                },
                channel,
                recipient: address.to_string(),
                locale: locale.clone(),
                content,
                fallback: Vec::new(),
                fallback_of: None,
            });
        }
    }
    out
}

fn plain_page(incident: &Incident, department: &str) -> Content {
    let text = format!(
        "[{}] incident #{} {}: {} — {department}, please acknowledge.",
        incident.severity, incident.id, incident.category, incident.title
    );
    Content {
        subject: Some(text.clone()),
        text,
        ..Default::default()
    }
}

/// Fire due timers of the response kinds (the digest's cron tick: `crate::engine::cron`).
/// Unknown kinds are logged and dropped.
pub async fn fire(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    timers: &[DueTimer],
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    let mut events = Vec::new();
    for t in timers {
        let Some(incident_id) = t.incident_id else {
            warn!(kind = %t.kind, key = %t.key, "timer without an incident; dropped");
            continue;
        };
        let Some(incident) = tx.incident(incident_id).await? else {
            continue;
        };
        let payload: serde_json::Value = serde_json::from_str(&t.payload).unwrap_or_default();
        match t.kind.as_str() {
            TIMER_PLAYBOOK => events.extend(apply_playbook(tx, ctx, &incident, now).await?),
            TIMER_ESCALATE => events.extend(escalate(tx, ctx, &incident, &payload, now).await?),
            TIMER_OVERDUE => events.extend(overdue(tx, ctx, &incident, &payload, now).await?),
            TIMER_REARM => events.extend(rearm(tx, ctx, &incident, now).await?),
            TIMER_PAGE_DEAD => events.extend(page_dead(tx, ctx, &incident, &payload, now).await?),
            other => warn!(kind = other, key = %t.key, "unknown timer kind; dropped"),
        }
    }
    tx.append(&events).await?;
    Ok(())
}

/// Re-arm a reopened incident's response: its playbook (if it never ran), escalation of the
/// departments that have not acknowledged, and the deadlines of its open tasks.
async fn rearm(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    if !incident.status.is_open() {
        return Ok(Vec::new());
    }
    let mut events = apply_playbook(tx, ctx, incident, now).await?;
    let generation = to_micros(now);
    let mut timers = Vec::new();
    let mut departments = Vec::new();
    for r in tx.team_of(incident.id).await? {
        if r.acked_at.is_some() {
            continue;
        }
        if let Some(dept) = ctx.department(&r.department) {
            let mut t = escalate_timer(incident.id, dept, r.level, now, incident.severity.as_str());
            t.key = format!("{}:r{generation}", t.key);
            timers.push(t);
            departments.push(r.department.clone());
        }
    }
    let mut tasks = Vec::new();
    for t in tx.tasks_of(incident.id).await? {
        if let Some(due) = t.due_at
            && !t.is_closed()
        {
            let mut timer = overdue_timer(t.incident_id, &t.key, due.max(generation));
            timer.key = format!("{}:r{generation}", timer.key);
            timers.push(timer);
            tasks.push(t.key.clone());
        }
    }
    tx.schedule_timers(&timers, generation).await?;
    events.push(NewEvent::new(
        now,
        "incidentd",
        "response.rearmed",
        Some(incident.id),
        &json!({"escalating": departments, "deadlines": tasks}),
    ));
    Ok(events)
}

async fn playbook_of<'a>(
    tx: &mut WriteTx,
    ctx: &'a ResponseCtx<'_>,
    incident: &Incident,
) -> Result<&'a Playbook, EngineError> {
    Ok(match tx.playbook_applied(incident.id).await? {
        Some((id, _)) => ctx
            .playbooks
            .get(&id)
            .unwrap_or_else(|| ctx.playbooks.select(incident.category, incident.severity)),
        None => ctx.playbooks.select(incident.category, incident.severity),
    })
}

/// A task as the API shows it: with what blocks it and the approval decisions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    pub id: i64,
    pub incident_id: i64,
    /// The playbook's task id (used in paths: `/incidents/{id}/tasks/{key}`).
    pub key: String,
    pub playbook: Option<String>,
    pub title: String,
    pub department: String,
    pub description: String,
    pub approval: bool,
    pub approvers: Vec<String>,
    pub depends_on: Vec<String>,
    pub after_task: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    /// `open`, `acked`, `done`, `approved`, `rejected` or `cancelled` (`note` says why).
    pub status: String,
    pub assignee: Option<String>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    /// What must happen first, each with why it blocks ("open", "rejected by legal: …").
    pub blocked_by: Vec<Blocker>,
    pub decisions: Vec<ApprovalRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Blocker {
    pub task: String,
    pub reason: String,
}

/// Why the dependencies of `t` among `all` are not yet satisfied.
pub fn blockers(
    t: &TaskRow,
    all: &[TaskRow],
    decisions: &HashMap<i64, Vec<ApprovalRow>>,
) -> Vec<Blocker> {
    let by_key: BTreeMap<&str, &TaskRow> = all.iter().map(|x| (x.key.as_str(), x)).collect();
    let mut keys = t.depends_on();
    if let Some(a) = &t.after_task
        && !keys.contains(a)
    {
        keys.push(a.clone());
    }
    keys.into_iter()
        .filter_map(|k| {
            let d = by_key.get(k.as_str())?;
            if d.is_satisfied() {
                return None;
            }
            let reason = if d.status == "rejected" {
                decisions
                    .get(&d.id)
                    .and_then(|v| v.iter().find(|a| a.decision == "rejected"))
                    .map(|a| {
                        format!(
                            "rejected by {}: {}",
                            a.department,
                            a.reason.clone().unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|| "rejected".into())
            } else if d.approval {
                format!("awaiting approval by {}", d.approvers().join(" and "))
            } else {
                format!("{}, {}", d.status, d.department)
            };
            Some(Blocker { task: k, reason })
        })
        .collect()
}

pub fn task_view(
    t: &TaskRow,
    all: &[TaskRow],
    decisions: &HashMap<i64, Vec<ApprovalRow>>,
    now: DateTime<Utc>,
) -> TaskView {
    TaskView {
        id: t.id,
        incident_id: t.incident_id,
        key: t.key.clone(),
        playbook: t.playbook.clone(),
        title: t.title.clone(),
        department: t.department.clone(),
        description: t.description.clone(),
        approval: t.approval,
        approvers: t.approvers(),
        depends_on: t.depends_on(),
        after_task: t.after_task.clone(),
        due_at: t.due_at.map(from_micros),
        overdue: !t.is_closed() && t.due_at.is_some_and(|d| d < to_micros(now)),
        status: t.status.clone(),
        assignee: t.assignee.clone(),
        acked_by: t.acked_by.clone(),
        acked_at: t.acked_at.map(from_micros),
        closed_by: t.closed_by.clone(),
        closed_at: t.closed_at.map(from_micros),
        note: t.note.clone(),
        blocked_by: blockers(t, all, decisions),
        decisions: decisions.get(&t.id).cloned().unwrap_or_default(),
    }
}
