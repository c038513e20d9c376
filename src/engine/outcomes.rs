//! Obligations met by outcomes, not by intentions.
//!
//! * A report submitted by e-mail or webhook meets its obligation when the regulator's channel
//!   accepts it (the SMTP server accepted the message, the webhook answered 2xx): the
//!   dispatcher schedules a [`TIMER_REPORT_OUTCOME`] timer when the submission's delivery is
//!   `sent` or `dead`. Sent: the obligation is met at the moment it was accepted. Dead: the
//!   obligation is (again) open, the timeline says why, and its owning department is paged —
//!   a new version can then be drafted and submitted, or the report submitted by hand.
//! * Notice to individuals is met when every person the incident's campaigns had a channel
//!   for has a notice delivery that reached its provider: the dispatcher (and a campaign that
//!   finished enqueueing) schedules a [`TIMER_NOTICES`] check when a campaign's deliveries are
//!   all sent or dead. When some people were not reached, the obligation stays open and its
//!   owner is paged: a follow-up campaign on another channel, or a person recording it met
//!   with the reason (`incidentd obligation met … --reference …`), closes it.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::EngineError;
use super::obligations::met_event;
use super::response::ResponseCtx;
use crate::domain::message::{Content, Purpose};
use crate::domain::records::Incident;
use crate::domain::regulation::ObligationKind;
use crate::domain::time::{from_micros, to_micros};
use crate::store::{DueTimer, NewDelivery, NewEvent, NewTimer, ObligationRow, WriteTx};

/// A report submission's delivery ended (sent or dead).
pub const TIMER_REPORT_OUTCOME: &str = "obligation.report_outcome";
/// A notice campaign's deliveries all ended: is every reachable person told?
pub const TIMER_NOTICES: &str = "obligation.notices";

/// Page the approvers of an approval an obligation waits for (the public announcement's).
pub const TIMER_APPROVAL_PAGE: &str = "obligation.approval_page";

/// Page the departments that decide approval task `task_id`, due now.
pub fn approval_page_timer(incident_id: i64, task_id: i64, now: i64) -> NewTimer {
    NewTimer {
        key: format!("obl-approval:{incident_id}:{task_id}"),
        kind: TIMER_APPROVAL_PAGE.to_string(),
        incident_id: Some(incident_id),
        due_at: now,
        payload: json!({ "task": task_id }),
    }
}

#[derive(Debug, Deserialize)]
struct ApprovalPage {
    task: i64,
}

/// The check after a report submission's delivery `key` ended with `status`.
pub fn report_outcome_timer(
    incident_id: i64,
    delivery_id: i64,
    key: &str,
    status: &str,
    now: i64,
) -> NewTimer {
    NewTimer {
        key: format!("obl-report:{incident_id}:{delivery_id}:{status}"),
        kind: TIMER_REPORT_OUTCOME.to_string(),
        incident_id: Some(incident_id),
        due_at: now,
        payload: json!({ "delivery_key": key }),
    }
}

/// The check after campaign `campaign_id`'s deliveries all ended (or it finished enqueueing).
pub fn notices_timer(incident_id: i64, campaign_id: i64, now: i64) -> NewTimer {
    NewTimer {
        key: format!("obl-notices:{incident_id}:{campaign_id}:{now}"),
        kind: TIMER_NOTICES.to_string(),
        incident_id: Some(incident_id),
        due_at: now,
        payload: json!({ "campaign": campaign_id }),
    }
}

#[derive(Debug, Deserialize)]
struct ReportOutcome {
    delivery_key: String,
}

/// Fire one of this module's timers; the audit events to append.
pub(super) async fn fire(
    tx: &mut WriteTx,
    response: Option<&ResponseCtx<'_>>,
    inc: &Incident,
    t: &DueTimer,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    match t.kind.as_str() {
        TIMER_REPORT_OUTCOME => match t.payload::<ReportOutcome>() {
            Ok(p) => report_outcome(tx, response, inc, &p.delivery_key, now).await,
            Err(e) => {
                warn!(error = %e, key = %t.key, "unreadable report outcome check; dropped");
                Ok(Vec::new())
            }
        },
        TIMER_NOTICES => notices_outcome(tx, response, inc, now).await,
        TIMER_APPROVAL_PAGE => match t.payload::<ApprovalPage>() {
            Ok(p) => approval_page(tx, response, inc, p.task, now).await,
            Err(e) => {
                warn!(error = %e, key = %t.key, "unreadable approval page; dropped");
                Ok(Vec::new())
            }
        },
        _ => Ok(Vec::new()),
    }
}

async fn report_outcome(
    tx: &mut WriteTx,
    response: Option<&ResponseCtx<'_>>,
    inc: &Incident,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let (Some(d), Some(r)) = (
        tx.delivery_outcome(key).await?,
        tx.report_by_delivery_key(key).await?,
    ) else {
        return Ok(Vec::new());
    };
    let Some(o) = tx.obligation(inc.id, &r.obligation_key).await? else {
        return Ok(Vec::new());
    };
    let met_ref = format!("report:{}", r.id);
    let mut events = Vec::new();
    match d.status.as_str() {
        "sent" => {
            let at = d.sent_at.map_or(now, from_micros);
            let late = o.due_at.is_some_and(|due| to_micros(at) > due);
            let late_reason = r.late_reason.as_deref().filter(|_| late);
            let by = r.submitted_by.as_deref().unwrap_or("incidentd");
            if tx
                .meet_obligation(inc.id, &o.key, to_micros(at), by, &met_ref, late_reason)
                .await?
            {
                events.push(met_event(
                    inc.id,
                    &o.key,
                    by,
                    &met_ref,
                    late_reason,
                    o.due_at.map(from_micros),
                    at,
                ));
            }
            events.push(NewEvent::new(
                now,
                "incidentd",
                "report.accepted",
                Some(inc.id),
                &json!({
                    "report_id": r.id, "version": r.version, "obligation": o.key, "via": r.via,
                    "delivery": d.id, "accepted_at": at, "recipient": r.recipient,
                }),
            ));
        }
        "dead" => {
            let error = d.last_error.clone().unwrap_or_default();
            // A submission met before outcomes counted (an older version of incidentd) is
            // opened again too.
            let reopened = o.met_ref.as_deref() == Some(met_ref.as_str())
                && tx.reopen_obligation(inc.id, &o.key, now).await?;
            if !o.is_open() && !reopened {
                return Ok(Vec::new());
            }
            let (subject, text) = dead_submission_page(inc, &o, &r, &error);
            let paged = page_owner(
                tx,
                response,
                inc,
                &o,
                &format!("report-dead:{}", d.id),
                &subject,
                &text,
                now,
            )
            .await?;
            events.push(NewEvent::new(
                now,
                "incidentd",
                "report.delivery_dead",
                Some(inc.id),
                &json!({
                    "report_id": r.id, "version": r.version, "obligation": o.key, "via": r.via,
                    "delivery": d.id, "error": error, "reopened": reopened, "owner": o.owner,
                    "paged": paged,
                    "detail": "the regulator's channel did not accept the report: the obligation is open; draft a new version and submit it, or submit by hand with the reference",
                }),
            ));
        }
        _ => {}
    }
    Ok(events)
}

/// The page to a report's owner when the regulator's channel gave up on it: its subject and
/// text, with what to do.
fn dead_submission_page(
    inc: &Incident,
    o: &crate::store::ObligationRow,
    r: &crate::store::ReportRow,
    error: &str,
) -> (String, String) {
    let subject = format!(
        "[{}SUBMISSION FAILED] incident #{}: report {} v{} was not accepted",
        if inc.drill { "DRILL " } else { "" },
        inc.id,
        o.key,
        r.version
    );
    let text = format!(
        "{subject}.\nThe {} channel gave up: {error}\n`{}` is open{}.\nDraft a new version and submit it again, or submit by hand with the regulator's reference:\nincidentd reports --incident {}\n",
        r.via.as_deref().unwrap_or("?"),
        o.key,
        o.due_at
            .map(|d| format!(", due {}", from_micros(d).format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default(),
        inc.id
    );
    (subject, text)
}

async fn notices_outcome(
    tx: &mut WriteTx,
    response: Option<&ResponseCtx<'_>>,
    inc: &Incident,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let pending: Vec<ObligationRow> = tx
        .obligations_of(inc.id)
        .await?
        .into_iter()
        .filter(|o| o.kind == ObligationKind::NotifyIndividuals.as_str() && o.is_pending())
        .collect();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let reach = tx.notice_reach(inc.id).await?;
    // Still going, or nobody had a channel: nothing to decide yet.
    if reach.enqueueing || reach.in_flight > 0 || reach.people == 0 {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    if reach.reached == reach.people {
        let by = format!(
            "notices: {} of {} reachable people reached",
            reach.reached, reach.people
        );
        for o in &pending {
            if tx
                .meet_obligation(inc.id, &o.key, to_micros(now), "incidentd", &by, None)
                .await?
            {
                events.push(met_event(
                    inc.id,
                    &o.key,
                    "incidentd",
                    &by,
                    None,
                    o.due_at.map(from_micros),
                    now,
                ));
            }
        }
        return Ok(events);
    }
    let unreached = reach.people - reach.reached;
    for o in &pending {
        let subject = format!(
            "[{}NOT REACHED] incident #{}: {unreached} of {} people were not told",
            if inc.drill { "DRILL " } else { "" },
            inc.id,
            reach.people
        );
        let text = format!(
            "{subject}: every notice delivery to them died.\n`{}` stays open. Start a campaign on another channel for them, or record it met with the reason:\nincidentd obligation met {} {} --reference '…'\n",
            o.key, inc.id, o.key
        );
        let paged = page_owner(
            tx,
            response,
            inc,
            o,
            &format!("notices-unreached:{}", to_micros(now)),
            &subject,
            &text,
            now,
        )
        .await?;
        events.push(NewEvent::new(
            now,
            "incidentd",
            "notice.unreached",
            Some(inc.id),
            &json!({
                "obligation": o.key, "people": reach.people, "reached": reach.reached,
                "unreached": unreached, "owner": o.owner, "paged": paged,
            }),
        ));
    }
    Ok(events)
}

async fn approval_page(
    tx: &mut WriteTx,
    response: Option<&ResponseCtx<'_>>,
    inc: &Incident,
    task_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let Some(t) = tx.task_by_id(task_id).await? else {
        return Ok(Vec::new());
    };
    if t.is_closed() {
        return Ok(Vec::new());
    }
    let approvers = t.approvers();
    let subject = format!(
        "[{}APPROVAL] incident #{}: {} — waits for {}",
        if inc.drill { "DRILL " } else { "" },
        inc.id,
        t.title,
        approvers.join(", ")
    );
    let text = format!(
        "{subject}.
{}

incidentd approve {task_id}   (or reject it with --reason)
",
        t.description
    );
    let mut paged = Vec::new();
    for d in &approvers {
        paged.extend(
            page_department(
                tx,
                response,
                inc,
                d,
                false,
                &format!("approval:{task_id}:{d}"),
                &subject,
                &text,
                now,
            )
            .await?,
        );
    }
    Ok(vec![NewEvent::new(
        now,
        "incidentd",
        "approval.paged",
        Some(inc.id),
        &json!({ "task": t.key, "approval": task_id, "approvers": approvers, "paged": paged }),
    )])
}

/// Page the obligation's owning department (its level-1 members and its leads) on the
/// incident's paging channels; the names paged. Without departments nobody is paged.
#[allow(clippy::too_many_arguments)]
async fn page_owner(
    tx: &mut WriteTx,
    response: Option<&ResponseCtx<'_>>,
    inc: &Incident,
    o: &ObligationRow,
    what: &str,
    subject: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, EngineError> {
    let what = format!("{}:{what}:{}", o.key, o.owner);
    page_department(tx, response, inc, &o.owner, true, &what, subject, text, now).await
}

/// Page a department's level-1 members (and its leads, with `with_leads`) on the incident's
/// paging channels, once per `what` (the deliveries' idempotency keys are
/// `obligation:{incident}:{what}:{member}:{channel}`); the names paged. Obligation reminders and
/// outcome pages both go through here.
#[allow(clippy::too_many_arguments)]
pub(super) async fn page_department(
    tx: &mut WriteTx,
    response: Option<&ResponseCtx<'_>>,
    inc: &Incident,
    department: &str,
    with_leads: bool,
    what: &str,
    subject: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, EngineError> {
    let Some(ctx) = response else {
        return Ok(Vec::new());
    };
    let Some(dept) = ctx.departments.iter().find(|d| d.id == department) else {
        return Ok(Vec::new());
    };
    let leads = dept.leads();
    let mut deliveries = Vec::new();
    let mut paged = Vec::new();
    for (i, m) in dept.members.iter().enumerate() {
        let lead = with_leads && leads.iter().any(|l| std::ptr::eq(*l, m));
        if m.level != 1 && !lead {
            continue;
        }
        for (channel, address) in super::response::addresses(ctx, inc, m) {
            deliveries.push(NewDelivery {
                idempotency_key: format!(
                    "obligation:{}:{what}:{}:{channel}",
                    inc.id,
                    dept.member_id(i)
                ),
                incident_id: Some(inc.id),
                purpose: if inc.drill {
                    Purpose::Drill
                } else {
                    Purpose::Page
                },
                channel,
                recipient: address.to_string(),
                locale: m
                    .locale
                    .clone()
                    .unwrap_or_else(|| ctx.render.org.default_locale.clone()),
                content: Content {
                    subject: Some(subject.to_string()),
                    text: text.to_string(),
                    ..Default::default()
                },
                fallback: Vec::new(),
                fallback_of: None,
            });
        }
        paged.push(m.name.clone());
    }
    tx.enqueue_deliveries(&deliveries, to_micros(now)).await?;
    Ok(paged)
}
