//! Work on tasks: acknowledge, complete, decide approvals, add, reassign. Each change is one
//! transaction with its audit event (and the timers it makes due).

use std::collections::HashMap;

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::response::{TaskView, overdue_timer, task_view};
use super::{Engine, EngineError};
use crate::domain::duration::HumanDuration;
use crate::domain::records::Incident;
use crate::domain::time::to_micros;
use crate::store::{ApprovalRow, NewEvent, NewTask, TaskRow, WriteTx};

/// An ad-hoc task added by a person.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTaskRequest {
    /// Short id, unique in the incident (`a-z`, `0-9`, `_`, `-`).
    pub key: String,
    pub title: String,
    pub department: String,
    #[serde(default)]
    pub description: String,
    /// Due this long from now (`90m`, `4h`).
    #[schema(value_type = String, example = "4h")]
    pub due: HumanDuration,
    #[serde(default)]
    pub assignee: Option<String>,
}

/// Reassign a task.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reassign {
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
}

async fn open_incident(tx: &mut WriteTx, id: i64) -> Result<Incident, EngineError> {
    let inc = tx
        .incident(id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("there is no incident {id}")))?;
    if !inc.status.is_open() {
        return Err(EngineError::Conflict(format!(
            "incident {id} is {}: its tasks are closed; reopen it first",
            inc.status
        )));
    }
    Ok(inc)
}

/// [`open_incident`], except that an ended drill's action items stay workable on its closed
/// incident.
async fn incident_for_task(tx: &mut WriteTx, id: i64, key: &str) -> Result<Incident, EngineError> {
    match tx.incident(id).await? {
        Some(inc) if super::drills::action_item_workable(&inc, key) => Ok(inc),
        _ => open_incident(tx, id).await,
    }
}

async fn task_of(tx: &mut WriteTx, incident: i64, key: &str) -> Result<TaskRow, EngineError> {
    tx.task_by_key(incident, key)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("incident {incident} has no task `{key}`")))
}

/// "`a` (why), `b` (why)" for a refusal.
fn blocked_list(v: &TaskView) -> String {
    v.blocked_by
        .iter()
        .map(|b| format!("`{}` ({})", b.task, b.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The view of one task, computed inside the transaction.
async fn view(tx: &mut WriteTx, t: &TaskRow) -> Result<TaskView, EngineError> {
    let all = tx.tasks_of(t.incident_id).await?;
    let mut decisions: HashMap<i64, Vec<ApprovalRow>> = HashMap::new();
    for x in all.iter().filter(|x| x.approval) {
        decisions.insert(x.id, tx.approvals_of(x.id).await?);
    }
    let fresh = all.iter().find(|x| x.id == t.id).unwrap_or(t);
    Ok(task_view(fresh, &all, &decisions, Utc::now()))
}

impl Engine {
    /// Acknowledge a task; this also acknowledges its department's page (stops escalation).
    /// Acknowledging twice is harmless.
    pub async fn ack_task(
        &self,
        incident_id: i64,
        key: &str,
        actor: &str,
    ) -> Result<TaskView, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        incident_for_task(&mut tx, incident_id, key).await?;
        let mut t = task_of(&mut tx, incident_id, key).await?;
        let mut events = Vec::new();
        if t.status == "open" {
            t.status = "acked".into();
            t.acked_by = Some(actor.to_string());
            t.acked_at = Some(to_micros(now));
            t.updated_at = to_micros(now);
            tx.update_task(&t).await?;
            events.push(NewEvent::new(
                now,
                actor,
                "task.acked",
                Some(incident_id),
                &json!({"task": key}),
            ));
        }
        if tx
            .ack_team(incident_id, &t.department, actor, to_micros(now))
            .await?
        {
            events.push(NewEvent::new(
                now,
                actor,
                "page.acknowledged",
                Some(incident_id),
                &json!({"department": t.department, "via_task": key}),
            ));
        }
        tx.append(&events).await?;
        let v = view(&mut tx, &t).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Acknowledge a department's page directly (also for departments with no task at this
    /// severity): its escalation stops. Twice is harmless. Returns the team.
    pub async fn ack_page(
        &self,
        incident_id: i64,
        department: &str,
        task: Option<&str>,
        actor: &str,
    ) -> Result<Vec<crate::store::TeamRow>, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        open_incident(&mut tx, incident_id).await?;
        let team = tx.team_of(incident_id).await?;
        if !team.iter().any(|r| r.department == department) {
            return Err(EngineError::NotFound(format!(
                "`{department}` is not on incident {incident_id}'s team"
            )));
        }
        let mut events = Vec::new();
        if tx
            .ack_team(incident_id, department, actor, to_micros(now))
            .await?
        {
            events.push(NewEvent::new(
                now,
                actor,
                "page.acknowledged",
                Some(incident_id),
                &json!({"department": department, "via_task": task}),
            ));
        }
        // A link also acknowledges its task, if that task is still the department's.
        if let Some(key) = task
            && let Some(mut t) = tx.task_by_key(incident_id, key).await?
            && t.department == department
            && t.status == "open"
        {
            t.status = "acked".into();
            t.acked_by = Some(actor.to_string());
            t.acked_at = Some(to_micros(now));
            t.updated_at = to_micros(now);
            tx.update_task(&t).await?;
            events.push(NewEvent::new(
                now,
                actor,
                "task.acked",
                Some(incident_id),
                &json!({"task": key}),
            ));
        }
        tx.append(&events).await?;
        let team = tx.team_of(incident_id).await?;
        tx.commit().await?;
        Ok(team)
    }

    /// Complete a task with a note. Refused while what it depends on is not done or approved.
    pub async fn complete_task(
        &self,
        incident_id: i64,
        key: &str,
        note: Option<String>,
        actor: &str,
    ) -> Result<TaskView, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        incident_for_task(&mut tx, incident_id, key).await?;
        let mut t = task_of(&mut tx, incident_id, key).await?;
        if t.approval {
            return Err(EngineError::Conflict(format!(
                "`{key}` is an approval: {} decide it (POST /api/v1/approvals/{}/approve or /reject)",
                t.approvers().join(" and "),
                t.id
            )));
        }
        if t.status == "done" {
            return view(&mut tx, &t).await;
        }
        let v = view(&mut tx, &t).await?;
        if !v.blocked_by.is_empty() {
            return Err(EngineError::Conflict(format!(
                "`{key}` is blocked by {}",
                blocked_list(&v)
            )));
        }
        t.status = "done".into();
        t.closed_by = Some(actor.to_string());
        t.closed_at = Some(to_micros(now));
        t.note = note.clone();
        t.updated_at = to_micros(now);
        if t.acked_at.is_none() {
            t.acked_at = t.closed_at;
            t.acked_by = t.closed_by.clone();
        }
        tx.update_task(&t).await?;
        tx.ack_team(incident_id, &t.department, actor, to_micros(now))
            .await?;
        let started = start_followers(&mut tx, &t, now).await?;
        let mut events = vec![NewEvent::new(
            now,
            actor,
            "task.completed",
            Some(incident_id),
            &json!({"task": key, "note": note, "now_due": started}),
        )];
        events.extend(
            super::obligations::meet_task(
                &mut tx,
                &self.regulation(),
                incident_id,
                &t.key,
                actor,
                now,
            )
            .await?,
        );
        tx.append(&events).await?;
        super::drills::end_if_done(&mut tx, incident_id, now).await?;
        let v = view(&mut tx, &t).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Approve or reject an approval task for the caller's departments among its approvers.
    /// The task is approved when every approving department approved; one rejection rejects it.
    /// Approving is refused (409, nothing recorded) while the gate's lint fails (`checks`).
    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        task_id: i64,
        approve: bool,
        reason: Option<String>,
        override_warning: bool,
        actor: &str,
        departments: &[String],
        admin: bool,
        checks: &super::GateChecks<'_>,
    ) -> Result<TaskView, EngineError> {
        let now = Utc::now();
        if !approve && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(EngineError::invalid("reason", "say why it is rejected"));
        }
        let mut tx = self.store().begin_write().await?;
        let (mut t, incident) = decidable(&mut tx, task_id).await?;
        let (approvers, mine) = deciders(&mut tx, &t, departments, admin).await?;
        if approve {
            approval_refusal(&mut tx, &t, &incident, checks).await?;
        }
        let overridden = internal_text(
            &mut tx,
            &t,
            &incident,
            checks,
            &mine,
            approve,
            override_warning,
            reason.as_deref(),
        )
        .await?;
        let decision = if approve { "approved" } else { "rejected" };
        for d in &mine {
            tx.record_approval(&ApprovalRow {
                task_id: t.id,
                department: d.clone(),
                decision: decision.into(),
                decided_by: actor.to_string(),
                decided_at: to_micros(now),
                reason: reason.clone(),
            })
            .await?;
        }
        let (rejected, complete) = tally(&mut tx, t.id, &approvers).await?;
        let mut started = Vec::new();
        if rejected || complete {
            t.status = if rejected { "rejected" } else { "approved" }.into();
            t.closed_by = Some(actor.to_string());
            t.closed_at = Some(to_micros(now));
            t.note = reason.clone();
            t.updated_at = to_micros(now);
            tx.update_task(&t).await?;
            if complete {
                started = start_followers(&mut tx, &t, now).await?;
            }
        }
        let report_event = super::reports::approval_decided(&mut tx, &t, actor, now).await?;
        let mut events = vec![NewEvent::new(
            now,
            actor,
            "approval.decided",
            Some(t.incident_id),
            &json!({
                "task": t.key,
                "departments": mine,
                "decision": decision,
                "reason": reason,
                "status": t.status,
                "now_due": started,
            }),
        )];
        events.extend(report_event);
        if complete {
            events.extend(super::report_gate::satisfy(&mut tx, checks, &t, now).await?);
        }
        events.extend(
            super::announce::approval_decided(&mut tx, &t, actor, checks.public_url, now).await?,
        );
        if let Some(warning) = overridden {
            events.push(NewEvent::new(
                now,
                actor,
                "notice.lint_overridden",
                Some(t.incident_id),
                &json!({"task": t.key, "warning": warning, "reason": reason}),
            ));
        }
        if complete {
            events.extend(notice_exemption(&t, &incident, checks, actor, now));
        }
        tx.append(&events).await?;
        super::drills::end_if_done(&mut tx, t.incident_id, now).await?;
        let v = view(&mut tx, &t).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Add a task by hand.
    pub async fn add_task(
        &self,
        incident_id: i64,
        r: NewTaskRequest,
        known_departments: &[String],
        actor: &str,
    ) -> Result<TaskView, EngineError> {
        if r.key.is_empty()
            || r.key.len() > 64
            || !r
                .key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(EngineError::invalid(
                "key",
                "use 1–64 characters: a-z, 0-9, _ and -",
            ));
        }
        if r.title.trim().is_empty() {
            return Err(EngineError::invalid("title", "give the task a title"));
        }
        if !known_departments.contains(&r.department) {
            return Err(EngineError::invalid(
                "department",
                format!(
                    "`{}` is not a department; use one of {}",
                    r.department,
                    known_departments.join(", ")
                ),
            ));
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        open_incident(&mut tx, incident_id).await?;
        let due_at = to_micros(now + r.due.0);
        let created = tx
            .insert_tasks(
                &[NewTask {
                    incident_id,
                    key: r.key.clone(),
                    playbook: None,
                    title: r.title.clone(),
                    department: r.department.clone(),
                    description: r.description.clone(),
                    approval: false,
                    approvers: Vec::new(),
                    depends_on: Vec::new(),
                    after_task: None,
                    due_offset_secs: r.due.0.as_secs() as i64,
                    due_at: Some(due_at),
                }],
                to_micros(now),
            )
            .await?;
        if created.is_empty() {
            return Err(EngineError::Conflict(format!(
                "incident {incident_id} already has a task `{}`",
                r.key
            )));
        }
        let mut t = task_of(&mut tx, incident_id, &r.key).await?;
        if r.assignee.is_some() {
            t.assignee = r.assignee.clone();
            tx.update_task(&t).await?;
        }
        tx.schedule_timers(
            &[overdue_timer(incident_id, &t.key, due_at)],
            crate::domain::time::to_micros(now),
        )
        .await?;
        tx.append(&[NewEvent::new(
            now,
            actor,
            "task.added",
            Some(incident_id),
            &json!({"task": r.key, "title": r.title, "department": r.department, "due_at": crate::domain::time::from_micros(due_at)}),
        )])
        .await?;
        let v = view(&mut tx, &t).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Give a task to someone else (a person, and/or another department).
    pub async fn reassign(
        &self,
        incident_id: i64,
        key: &str,
        r: Reassign,
        known_departments: &[String],
        actor: &str,
    ) -> Result<TaskView, EngineError> {
        if r.assignee.is_none() && r.department.is_none() {
            return Err(EngineError::invalid(
                "assignee",
                "give an assignee, a department, or both",
            ));
        }
        if let Some(d) = &r.department
            && !known_departments.contains(d)
        {
            return Err(EngineError::invalid(
                "department",
                format!(
                    "`{d}` is not a department; use one of {}",
                    known_departments.join(", ")
                ),
            ));
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        incident_for_task(&mut tx, incident_id, key).await?;
        let mut t = task_of(&mut tx, incident_id, key).await?;
        if t.is_closed() {
            return Err(EngineError::Conflict(format!(
                "task `{key}` is already {}",
                t.status
            )));
        }
        let from = (t.assignee.clone(), t.department.clone());
        if let Some(a) = &r.assignee {
            t.assignee = Some(a.clone());
        }
        if let Some(d) = &r.department {
            t.department = d.clone();
        }
        t.updated_at = to_micros(now);
        tx.update_task(&t).await?;
        tx.append(&[NewEvent::new(
            now,
            actor,
            "task.reassigned",
            Some(incident_id),
            &json!({"task": key, "from": {"assignee": from.0, "department": from.1},
                    "to": {"assignee": t.assignee, "department": t.department}}),
        )])
        .await?;
        let v = view(&mut tx, &t).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Every task of an incident, with blockers and decisions.
    pub async fn incident_tasks(&self, incident_id: i64) -> Result<Vec<TaskView>, EngineError> {
        let store = self.store();
        let all = store.tasks_of_incidents(&[incident_id]).await?;
        views(store, &all, &all).await
    }

    /// A department's open tasks and the open approvals it decides, soonest first, at most
    /// `limit` of each, as views (the console's My work).
    pub async fn work_of(
        &self,
        department: &str,
        limit: i64,
    ) -> Result<(Vec<TaskView>, Vec<TaskView>), EngineError> {
        let store = self.store();
        let (tasks, approvals) = store.work_of(department, limit).await?;
        let mut incidents: Vec<i64> = tasks
            .iter()
            .chain(&approvals)
            .map(|r| r.incident_id)
            .collect();
        incidents.sort_unstable();
        incidents.dedup();
        let siblings = store.tasks_of_incidents(&incidents).await?;
        Ok((
            views(store, &tasks, &siblings).await?,
            views(store, &approvals, &siblings).await?,
        ))
    }

    /// Tasks across incidents by filter (blockers computed against each incident's tasks).
    pub async fn list_tasks(
        &self,
        f: &crate::store::TaskFilter,
    ) -> Result<Vec<TaskView>, EngineError> {
        let store = self.store();
        let rows = store.tasks(f).await?;
        let mut incidents: Vec<i64> = rows.iter().map(|r| r.incident_id).collect();
        incidents.sort_unstable();
        incidents.dedup();
        let siblings = store.tasks_of_incidents(&incidents).await?;
        views(store, &rows, &siblings).await
    }
}

async fn views(
    store: &crate::store::Store,
    rows: &[TaskRow],
    siblings: &[TaskRow],
) -> Result<Vec<TaskView>, EngineError> {
    let ids: Vec<i64> = siblings
        .iter()
        .filter(|t| t.approval)
        .map(|t| t.id)
        .collect();
    let mut decisions: HashMap<i64, Vec<ApprovalRow>> = HashMap::new();
    for a in store.approvals_for(&ids).await? {
        decisions.entry(a.task_id).or_default().push(a);
    }
    let now = Utc::now();
    let mut by_incident: HashMap<i64, Vec<TaskRow>> = HashMap::new();
    for s in siblings {
        by_incident
            .entry(s.incident_id)
            .or_default()
            .push(s.clone());
    }
    Ok(rows
        .iter()
        .map(|t| {
            let same = by_incident
                .get(&t.incident_id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            task_view(t, same, &decisions, now)
        })
        .collect())
}

/// Tasks due after `done`'s completion get their due time (and overdue timer) now.
pub(super) async fn start_followers(
    tx: &mut WriteTx,
    done: &TaskRow,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<String>, EngineError> {
    let mut started = Vec::new();
    let mut timers = Vec::new();
    for mut f in tx.tasks_of(done.incident_id).await? {
        if f.after_task.as_deref() == Some(done.key.as_str())
            && f.due_at.is_none()
            && !f.is_closed()
        {
            let due = to_micros(now) + f.due_offset_secs * 1_000_000;
            f.due_at = Some(due);
            f.updated_at = to_micros(now);
            tx.update_task(&f).await?;
            timers.push(overdue_timer(f.incident_id, &f.key, due));
            started.push(f.key.clone());
        }
    }
    tx.schedule_timers(&timers, crate::domain::time::to_micros(now))
        .await?;
    Ok(started)
}

/// The approving departments, and those among them the caller decides for now (its own, or
/// all for an admin, less those that decided already); refused when there are none.
async fn deciders(
    tx: &mut WriteTx,
    t: &TaskRow,
    departments: &[String],
    admin: bool,
) -> Result<(Vec<String>, Vec<String>), EngineError> {
    let task_id = t.id;
    let approvers = t.approvers();
    let decided: Vec<String> = tx
        .approvals_of(t.id)
        .await?
        .into_iter()
        .map(|a| a.department)
        .collect();
    let mine: Vec<String> = approvers
        .iter()
        .filter(|d| (admin || departments.contains(d)) && !decided.contains(d))
        .cloned()
        .collect();
    if mine.is_empty() {
        return Err(EngineError::Forbidden(format!(
            "approval {task_id} is decided by {}; this token acts for [{}]{}",
            approvers.join(" and "),
            departments.join(", "),
            if decided.is_empty() {
                String::new()
            } else {
                format!(" (already decided: {})", decided.join(", "))
            }
        )));
    }
    Ok((approvers, mine))
}

/// Approving is refused (409, nothing recorded) while the gate's own checks fail: its lint, a
/// report version that is not complete, a report gate approved directly, an announcement not
/// ready.
async fn approval_refusal(
    tx: &mut WriteTx,
    t: &TaskRow,
    incident: &Incident,
    checks: &super::GateChecks<'_>,
) -> Result<(), EngineError> {
    if let Some(why) = checks.refusal(t, incident) {
        return Err(EngineError::Conflict(why));
    }
    if let Some(why) = super::reports::approval_refusal(tx, t, checks.packs).await? {
        return Err(EngineError::Conflict(why));
    }
    if checks.lint_of(t) == Some(crate::domain::playbook::TaskLint::Report)
        && let Some(why) = super::report_gate::direct_refusal(tx, t).await?
    {
        return Err(EngineError::Conflict(why));
    }
    if let Some(why) = super::announce::approval_refusal(tx, t).await? {
        return Err(EngineError::Conflict(why));
    }
    Ok(())
}

/// Public text that looks internal: a warning only Legal may override, deliberately
/// (`override_warning`) and with a reason; a reason alone ("wording checked") does not. The
/// warning overridden now, if one was.
#[allow(clippy::too_many_arguments)]
async fn internal_text(
    tx: &mut WriteTx,
    t: &TaskRow,
    incident: &Incident,
    checks: &super::GateChecks<'_>,
    mine: &[String],
    approve: bool,
    override_warning: bool,
    reason: Option<&str>,
) -> Result<Option<String>, EngineError> {
    // Public text that looks internal: a warning only Legal may override, deliberately
    // (`override_warning`) and with a reason; a reason alone ("wording checked") does not.
    let given = reason.is_some_and(|r| !r.trim().is_empty());
    if override_warning && (!approve || !given) {
        return Err(EngineError::invalid(
            "override_warning",
            "overriding a warning approves, and needs a reason saying why the text may go public as it is",
        ));
    }
    if approve && let Some(warning) = checks.internal_text(t, incident) {
        let legal_now = override_warning && mine.iter().any(|d| d == super::notice_gate::LEGAL);
        let legal_before = tx.approvals_of(t.id).await?.iter().any(|a| {
            a.department == super::notice_gate::LEGAL
                && a.decision == "approved"
                && a.reason.as_deref().is_some_and(|r| !r.trim().is_empty())
        });
        if !(legal_now || legal_before) {
            return Err(EngineError::Conflict(warning));
        }
        if legal_now {
            return Ok(Some(warning));
        }
    }
    Ok(None)
}

/// The approval `task_id` and its incident, if it can be decided now: an approval, still open,
/// waiting for nothing. A report's approval outlives the incident's closing (the closing
/// report is owed after); any other needs the incident open.
async fn decidable(tx: &mut WriteTx, task_id: i64) -> Result<(TaskRow, Incident), EngineError> {
    let t = tx
        .task_by_id(task_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("there is no approval {task_id}")))?;
    let incident = if super::reports::report_of_task(&t).is_some() {
        tx.incident(t.incident_id).await?.ok_or_else(|| {
            EngineError::NotFound(format!("there is no incident {}", t.incident_id))
        })?
    } else {
        open_incident(tx, t.incident_id).await?
    };
    if !t.approval {
        return Err(EngineError::Conflict(format!(
            "task {task_id} (`{}`) is not an approval; complete it instead",
            t.key
        )));
    }
    if t.is_closed() {
        return Err(EngineError::Conflict(format!(
            "approval {task_id} is already {}",
            t.status
        )));
    }
    let v = view(tx, &t).await?;
    if !v.blocked_by.is_empty() {
        return Err(EngineError::Conflict(format!(
            "approval {task_id} cannot be decided yet: it waits for {}",
            blocked_list(&v)
        )));
    }
    Ok((t, incident))
}

/// The notice gate approved while the facts claim that the measures avoid harm (and no
/// regulator requires notice): individual notice is recorded as not required.
fn notice_exemption(
    t: &TaskRow,
    incident: &Incident,
    checks: &super::GateChecks<'_>,
    actor: &str,
    now: chrono::DateTime<Utc>,
) -> Option<NewEvent> {
    (checks.lint_of(t) == Some(crate::domain::playbook::TaskLint::Notice)
        && crate::domain::notice::exempt_from_individual_notice(&incident.facts))
    .then(|| {
        NewEvent::new(
            now,
            actor,
            "notice.exempted",
            Some(t.incident_id),
            &json!({
                "task": t.key,
                "justification": incident.facts.mitigation_justification,
                "facts_version": incident.facts_version,
                "individual_notice": "not_required",
            }),
        )
    })
}

/// Where an approval stands once its decisions are recorded: one rejection rejects it; it is
/// complete when every approving department approved.
async fn tally(
    tx: &mut WriteTx,
    task_id: i64,
    approvers: &[String],
) -> Result<(bool, bool), EngineError> {
    let all_decisions = tx.approvals_of(task_id).await?;
    let rejected = all_decisions.iter().any(|a| a.decision == "rejected");
    let complete = approvers.iter().all(|d| {
        all_decisions
            .iter()
            .any(|a| &a.department == d && a.decision == "approved")
    });
    Ok((rejected, complete))
}
