//! A drill's scorecard and after-action report (issue #7, item 4; NIST SP 800-84's hot-wash
//! and after-action report).
//!
//! When a drill ends, [`scorecard`] reads what the response did — pages and their
//! acknowledgements, tasks, containment, grades, regulator report versions and their approval,
//! the notice gate and the notice deliveries — into a [`Snapshot`], and [`compute`] judges each
//! time against the scenario's [`Targets`] with the post-incident summary's rule (met on or
//! before the target; missed after it, or not reached when the drill ended past it).
//! [`after_action`] renders the report for the drill's owner, e-mails it, and turns every
//! missed target and every missed or late task into a tracked task (`aar-<n>`). [`trend`]
//! compares drills: medians and the share of targets met, oldest to newest.
//!
//! The pure parts are below this layer: the scorecard in [`crate::domain::drill::scorecard`],
//! the after-action report's value in [`crate::render::drill`]; both are re-exported here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::EngineError;
use crate::config::OrganisationConfig;
use crate::domain::drill::Targets;
pub use crate::domain::drill::scorecard::*;
use crate::domain::message::{ChannelKind, Purpose, validate_recipient};
use crate::domain::notice::{exempt_from_individual_notice, missing_notice_facts};
use crate::domain::records::Incident;
use crate::domain::time::{from_micros, to_micros};
use crate::render::Templates;
pub use crate::render::drill::*;
use crate::render::report::{Missing, Step};
use crate::store::{NewDelivery, NewEvent, NewTask, ReportRow, TaskRow, TeamRow, WriteTx};

/// How many audit events the report's timeline reads at most.
const TIMELINE_LIMIT: i64 = 10_000;

/// Actors that are the daemon itself, not participants.
const AUTOMATIC_ACTORS: [&str; 3] = ["system", "dispatcher", "scheduler"];

fn time(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.map(from_micros)
}

/// When an approval task was approved.
fn approved_at(t: &TaskRow) -> Option<DateTime<Utc>> {
    (t.status == "approved")
        .then(|| time(t.closed_at))
        .flatten()
}

/// When something was reached and the department that reached it.
type ReachedBy = (DateTime<Utc>, String);

/// When the first initial regulator report was drafted, and when (and by whom) the first one
/// was approved.
fn report_times(
    reports: &[ReportRow],
    tasks: &[TaskRow],
) -> (Option<DateTime<Utc>>, Option<ReachedBy>) {
    let initial = || reports.iter().filter(|r| r.report_kind == "initial");
    let drafted = initial().map(|r| r.created_at).min().map(from_micros);
    let approved = initial()
        .filter_map(|r| tasks.iter().find(|t| Some(t.id) == r.task_id))
        .filter_map(|t| approved_at(t).map(|at| (at, t.department.clone())))
        .min_by_key(|(at, _)| *at);
    (drafted, approved)
}

fn report_gaps(reports: &[ReportRow]) -> Vec<ReportGap> {
    let mut newest: BTreeMap<&str, &ReportRow> = BTreeMap::new();
    for r in reports.iter().filter(|r| r.status != "superseded") {
        let slot = newest.entry(r.obligation_key.as_str()).or_insert(r);
        if r.version > slot.version {
            *slot = r;
        }
    }
    newest
        .values()
        .filter_map(|r| {
            let missing: Vec<Missing> = serde_json::from_str(&r.missing).unwrap_or_default();
            (r.partial || !missing.is_empty()).then(|| ReportGap {
                obligation_key: r.obligation_key.clone(),
                version: r.version,
                status: r.status.clone(),
                partial: r.partial,
                missing: missing.into_iter().map(|m| m.label).collect(),
            })
        })
        .collect()
}

fn is_notice_gate(t: &TaskRow, gate_ids: &[i64]) -> bool {
    t.approval && (gate_ids.contains(&t.id) || t.key.contains("notice"))
}

/// When the incident was contained: the containment task done or the move to `contained`,
/// whichever came first (people may record either, or only one of them).
fn contained_at(inc: &Incident, task: Option<&TaskRow>) -> Option<DateTime<Utc>> {
    let done = task
        .filter(|t| t.is_satisfied())
        .and_then(|t| time(t.closed_at));
    [inc.contained_at, done].into_iter().flatten().min()
}

/// Read the snapshot of a drill incident inside `tx`.
async fn snapshot(
    tx: &mut WriteTx,
    inc: &Incident,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
) -> Result<Snapshot, EngineError> {
    let id = inc.id;
    let team: Vec<TeamRow> = tx.team_of(id).await?;
    let all_tasks = tx.tasks_of(id).await?;
    let tasks: Vec<&TaskRow> = all_tasks
        .iter()
        .filter(|t| !t.key.starts_with(ACTION_ITEM_PREFIX))
        .collect();
    let reports = tx.reports_of(id).await?;
    let obligations = tx.obligations_of(id).await?;
    let campaigns = tx.campaigns_of(id).await?;
    let gate_ids: Vec<i64> = campaigns.iter().filter_map(|c| c.approval_task).collect();
    let mut reached = BTreeMap::new();
    let mut owners = BTreeMap::new();
    let contain_task = tasks
        .iter()
        .find(|t| t.key == "contain")
        .or_else(|| tasks.iter().find(|t| t.key.contains("contain")));
    if let Some(at) = contained_at(inc, contain_task.copied()) {
        reached.insert("contain", at);
    }
    if let Some(t) = contain_task {
        owners.insert("contain", t.department.clone());
    }
    if let Some(at) = tx.first_grade_at(id).await? {
        reached.insert("grade", from_micros(at));
    }
    let report_owner = obligations
        .iter()
        .filter(|o| o.kind == "report" && o.report_kind.as_deref() == Some("initial"))
        .min_by_key(|o| o.due_at)
        .map(|o| o.owner.clone());
    if let Some(o) = report_owner {
        for m in ["grade", "report_draft", "report_approved"] {
            owners.insert(m, o.clone());
        }
    }
    let (drafted, approved) = report_times(&reports, &all_tasks);
    if let Some(at) = drafted {
        reached.insert("report_draft", at);
    }
    if let Some((at, dept)) = approved {
        reached.insert("report_approved", at);
        owners.insert("report_approved", dept);
    }
    let gates: Vec<&&TaskRow> = tasks
        .iter()
        .filter(|t| is_notice_gate(t, &gate_ids))
        .collect();
    if let Some(at) = gates.iter().filter_map(|t| approved_at(t)).min() {
        reached.insert("notice_approved", at);
    }
    if let Some(t) = gates.first() {
        owners.insert("notice_approved", t.department.clone());
        owners.insert("notice_delivered", t.department.clone());
    }
    if let Some(at) = tx.first_sent_at(id, Purpose::Notice.as_str()).await? {
        reached.insert("notice_delivered", from_micros(at));
    }
    Ok(Snapshot {
        incident_id: id,
        started_at,
        ended_at,
        pages: team.iter().map(page_of).collect(),
        tasks: tasks.iter().map(|t| task_state(t)).collect(),
        reached,
        owners,
        completeness: Completeness {
            notice_exempt: exempt_from_individual_notice(&inc.facts),
            // `[organisation] contact` is required configuration: it supplies the contact.
            notice_missing: missing_notice_facts(&inc.facts, None)
                .into_iter()
                .filter(|e| !e.org_fallback)
                .map(|e| e.en.to_string())
                .collect(),
            reports: report_gaps(&reports),
        },
    })
}

/// When a department was paged, and acknowledged.
fn page_of(r: &TeamRow) -> Page {
    Page {
        department: r.department.clone(),
        paged_at: from_micros(r.paged_at),
        acked_at: time(r.acked_at),
    }
}

/// A task as the scorecard sees it: closed only once it is.
fn task_state(t: &TaskRow) -> TaskState {
    TaskState {
        key: t.key.clone(),
        title: t.title.clone(),
        department: t.department.clone(),
        due_at: time(t.due_at),
        closed_at: if t.is_closed() {
            time(t.closed_at)
        } else {
            None
        },
    }
}

async fn incident_of(tx: &mut WriteTx, incident_id: i64) -> Result<Incident, EngineError> {
    tx.incident(incident_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("there is no incident {incident_id}")))
}

/// The scorecard of drill incident `incident_id`, which ran from `started_at` to `ended_at`,
/// against `targets`. Reads everything inside `tx`; writes nothing.
#[tracing::instrument(skip_all, fields(incident.id = incident_id))]
pub async fn scorecard(
    tx: &mut WriteTx,
    incident_id: i64,
    targets: &Targets,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
) -> Result<Scorecard, EngineError> {
    let inc = incident_of(tx, incident_id).await?;
    let snap = snapshot(tx, &inc, started_at, ended_at).await?;
    Ok(compute(&snap, targets))
}

/// What the after-action report needs from the live configuration (as [`super::DeliveryCtx`]).
pub struct AfterActionCtx<'a> {
    pub templates: &'a Templates,
    pub org: &'a OrganisationConfig,
    /// The configured channels: the report is e-mailed only if e-mail is one of them.
    pub channels: &'a [ChannelKind],
}

/// Render the after-action report: `(subject, markdown, html)`.
pub fn render_after_action(
    templates: &Templates,
    org: &OrganisationConfig,
    incident: &Incident,
    r: &AfterActionReport<'_>,
) -> Result<(String, String, String), EngineError> {
    let incident = serde_json::to_value(incident).unwrap_or(Value::Null);
    let mut data = crate::render::context::incident_context(&incident, org);
    data["drill"] = drill_value(r);
    data["now"] = json!(rfc3339(r.now));
    let c = templates
        .render(
            AFTER_ACTION_TEMPLATE,
            ChannelKind::Email,
            &r.scenario.locale,
            &data,
        )
        .map_err(|e| EngineError::Failed(format!("the after-action report failed: {e}")))?;
    Ok((
        c.subject.unwrap_or_default(),
        c.text,
        c.html.unwrap_or_default(),
    ))
}

/// The report's timeline (condensed audit events, in `locale`) and participants (departments
/// paged, then people who acted), read inside `tx`.
pub async fn after_action_inputs(
    tx: &mut WriteTx,
    incident_id: i64,
    locale: &str,
) -> Result<(Vec<Step>, Vec<String>), EngineError> {
    let events = tx.events_of(incident_id, TIMELINE_LIMIT).await?;
    let (steps, _) = crate::render::report::timeline(&events, locale);
    let mut participants: Vec<String> = tx
        .team_of(incident_id)
        .await?
        .into_iter()
        .map(|t| t.department)
        .collect();
    for e in &events {
        if !AUTOMATIC_ACTORS.contains(&e.actor.as_str()) && !participants.contains(&e.actor) {
            participants.push(e.actor.clone());
        }
    }
    Ok((steps, participants))
}

fn item_task(incident_id: i64, item: &ActionItem, scenario: &str, due_at: i64) -> NewTask {
    NewTask {
        incident_id,
        key: item.key.clone(),
        playbook: None,
        title: item.title.clone(),
        department: item.department.clone(),
        description: format!("From the after-action report of drill `{scenario}`."),
        approval: false,
        approvers: Vec::new(),
        depends_on: Vec::new(),
        after_task: None,
        due_offset_secs: ACTION_ITEM_DUE_DAYS * 86_400,
        due_at: Some(due_at),
    }
}

/// The idempotency key of a drill's after-action e-mail.
pub fn after_action_key(incident_id: i64) -> String {
    format!("drill:{incident_id}:after_action")
}

/// Close a drill: render its after-action report, e-mail it to the owner (purpose `drill`, once
/// per drill) if e-mail is configured, and create one task per action item (`aar-<n>`, due in
/// [`ACTION_ITEM_DUE_DAYS`] days; existing keys are kept). Returns the audit events
/// (`drill.scorecard`, `drill.after_action`) for the caller to append.
#[tracing::instrument(skip_all, fields(incident.id = incident.id))]
pub async fn after_action(
    tx: &mut WriteTx,
    ctx: &AfterActionCtx<'_>,
    incident: &Incident,
    scenario: &ScenarioInfo,
    card: &Scorecard,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let (timeline, participants) = after_action_inputs(tx, incident.id, &scenario.locale).await?;
    let fallback = participants.first().map_or("security", String::as_str);
    let items = action_items(card, fallback, &scenario.locale);
    let report = AfterActionReport {
        scenario,
        card,
        timeline: &timeline,
        participants: &participants,
        action_items: &items,
        now,
    };
    let (subject, markdown, html) = render_after_action(ctx.templates, ctx.org, incident, &report)?;
    let due_at = to_micros(now + chrono::Duration::days(ACTION_ITEM_DUE_DAYS));
    let tasks: Vec<NewTask> = items
        .iter()
        .map(|i| item_task(incident.id, i, &scenario.name, due_at))
        .collect();
    let created = tx.insert_tasks(&tasks, to_micros(now)).await?;
    let emailed = if ctx.channels.contains(&ChannelKind::Email) {
        let to = validate_recipient(ChannelKind::Email, &scenario.owner_email)
            .map_err(|m| EngineError::invalid("owner_email", m))?;
        tx.allow_drill_recipients(incident.id, &[(ChannelKind::Email, to.clone())])
            .await?;
        let d = NewDelivery {
            idempotency_key: after_action_key(incident.id),
            incident_id: Some(incident.id),
            purpose: Purpose::Drill,
            channel: ChannelKind::Email,
            recipient: to,
            locale: scenario.locale.clone(),
            content: crate::domain::message::Content {
                subject: Some(subject.clone()),
                text: markdown,
                html: Some(html),
                template: Some(AFTER_ACTION_TEMPLATE.into()),
                ..Default::default()
            },
            fallback: Vec::new(),
            fallback_of: None,
        };
        tx.enqueue_deliveries(&[d], to_micros(now)).await?;
        true
    } else {
        false
    };
    let measures: Vec<Value> = card
        .measures
        .iter()
        .map(|m| json!({"id": m.id, "department": m.department, "actual_secs": m.actual_secs, "target_secs": m.target_secs, "met": m.met}))
        .collect();
    Ok(vec![
        NewEvent::new(
            now,
            "system",
            "drill.scorecard",
            Some(incident.id),
            &json!({
                "scenario": scenario.name, "started_at": card.started_at, "ended_at": card.ended_at,
                "met": card.met, "missed": card.missed, "measures": measures,
                "tasks_missed": card.tasks_missed.iter().map(|t| &t.key).collect::<Vec<_>>(),
                "tasks_late": card.tasks_late.iter().map(|t| &t.key).collect::<Vec<_>>(),
                "unacknowledged": card.unacknowledged,
            }),
        ),
        NewEvent::new(
            now,
            "system",
            "drill.after_action",
            Some(incident.id),
            &json!({
                "scenario": scenario.name, "subject": subject,
                "action_items": items.iter().map(|i| &i.key).collect::<Vec<_>>(),
                "created": created,
                "emailed": emailed.then(|| after_action_key(incident.id)),
            }),
        ),
    ])
}

#[cfg(test)]
mod tests;
