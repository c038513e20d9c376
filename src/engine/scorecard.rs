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
        pages: team
            .iter()
            .map(|r| Page {
                department: r.department.clone(),
                paged_at: from_micros(r.paged_at),
                acked_at: time(r.acked_at),
            })
            .collect(),
        tasks: tasks
            .iter()
            .map(|t| TaskState {
                key: t.key.clone(),
                title: t.title.clone(),
                department: t.department.clone(),
                due_at: time(t.due_at),
                closed_at: if t.is_closed() {
                    time(t.closed_at)
                } else {
                    None
                },
            })
            .collect(),
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
mod tests {
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
}
