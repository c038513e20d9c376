//! Obligations: what the jurisdiction packs say an incident owes (reports, notices, a public
//! announcement, a police report, the breach record), kept as rows with persisted deadlines.
//!
//! * [`recompute`] runs inside the transaction of every change that can move the outcome —
//!   declaration, facts, clocks, classification, closing — and, for incidents opened or changed
//!   by alerts, in an `obligation.recompute` timer (the ingest writer stays lean). It stores the
//!   grade per jurisdiction when it changes (with its criterion and why), inserts new
//!   obligations, updates standing and deadlines, and marks the ones that no longer apply as
//!   `withdrawn`. It never undoes what was met.
//! * Each owed obligation with a deadline gets reminder timers (by default at 50 % and 80 % of
//!   its window) and one at the deadline; they page the owning department, and the one at the
//!   deadline, if the obligation is still open, records it missed and pages the department's
//!   leads too. Timers carry the deadline they were set for: a moved deadline leaves the old
//!   ones harmless.
//! * What meets an obligation is an outcome ([`super::outcomes`]): a report accepted by the
//!   regulator's channel (or submitted by hand with the regulator's reference), notices that
//!   reached every reachable person, a public announcement approved and public, a completed
//!   task, or a person saying so with a reference ([`Engine::meet_obligation`]) — an
//!   assessment (SG) is met only that way: its clock may start by itself, the assessment is a
//!   person's. The breach record is met by the incident record itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::{Engine, EngineError};
use crate::domain::duration::humanize;
use crate::domain::facts::{Facts, Jurisdiction};
use crate::domain::records::Incident;
use crate::domain::regulation::{
    Assessment, Case, Clock, ObligationKind, ObligationOutcome, OperatorType, Packs, Submitted,
};
use crate::domain::time::{from_micros, to_micros};
use crate::store::{DueTimer, GradeRow, NewEvent, NewTask, NewTimer, ObligationRow, WriteTx};

pub const TIMER_RECOMPUTE: &str = "obligation.recompute";
pub const TIMER_REMIND: &str = "obligation.remind";

/// What assessing needs from the configuration: the packs and the organisation's settings.
#[derive(Debug, Clone)]
pub struct Regulation {
    pub packs: Arc<Packs>,
    pub operator_type: OperatorType,
    pub jurisdictions: Vec<Jurisdiction>,
}

impl Default for Regulation {
    fn default() -> Self {
        Regulation {
            packs: Arc::new(Packs::default()),
            operator_type: OperatorType::Other,
            jurisdictions: Vec::new(),
        }
    }
}

impl Regulation {
    pub fn is_active(&self) -> bool {
        !self.packs.is_empty()
    }
}

/// The timer that recomputes an incident's obligations (after alerts opened or changed it).
pub fn recompute_timer(incident_id: i64, now: DateTime<Utc>) -> NewTimer {
    NewTimer {
        key: format!("obligations:{incident_id}:{}", to_micros(now)),
        kind: TIMER_RECOMPUTE.to_string(),
        incident_id: Some(incident_id),
        due_at: to_micros(now),
        payload: json!({}),
    }
}

#[derive(Debug, Deserialize)]
struct Reminder {
    key: String,
    due_at: i64,
    /// Per cent of the window; 100 is the deadline itself.
    percent: u8,
}

fn reminder_timers(incident_id: i64, o: &ObligationOutcome, now: DateTime<Utc>) -> Vec<NewTimer> {
    let (Some(start), Some(due)) = (o.clock_start, o.due_at) else {
        return Vec::new();
    };
    let window = (due - start).num_microseconds().unwrap_or(0).max(0);
    let due_us = to_micros(due);
    let mut out = Vec::new();
    for pct in o.reminders.iter().copied().chain([100u8]) {
        let at = to_micros(start) + window * i64::from(pct) / 100;
        // A reminder whose moment passed before the obligation was known is not sent late;
        // the deadline's always is (it records the miss).
        if pct < 100 && at < to_micros(now) {
            continue;
        }
        out.push(NewTimer {
            key: format!("obl:{incident_id}:{}:{due_us}:{pct}", o.key),
            kind: TIMER_REMIND.to_string(),
            incident_id: Some(incident_id),
            due_at: at,
            payload: json!({ "key": o.key, "due_at": due_us, "percent": pct }),
        });
    }
    out
}

/// The reports submitted so far, as the assessment reads them: report obligations met, with
/// the facts of that moment.
fn submitted(rows: &[ObligationRow]) -> Vec<Submitted> {
    rows.iter()
        .filter(|r| r.kind == ObligationKind::Report.as_str() && r.status == "met")
        .filter_map(|r| {
            Some(Submitted {
                jurisdiction: r.jurisdiction.parse().ok()?,
                obligation: r.obligation.clone(),
                at: from_micros(r.met_at?),
                facts: r
                    .met_facts
                    .as_deref()
                    .and_then(|f| serde_json::from_str::<Facts>(f).ok())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn assess(
    reg: &Regulation,
    inc: &Incident,
    rows: &[ObligationRow],
    now: DateTime<Utc>,
) -> Assessment {
    let submitted = submitted(rows);
    let started: BTreeMap<String, DateTime<Utc>> = rows
        .iter()
        .filter(|r| r.clock == Clock::MaterialChange.as_str())
        .filter_map(|r| Some((r.key.clone(), from_micros(r.clock_start?))))
        .collect();
    reg.packs.assess(&Case {
        incident: inc,
        operator_type: reg.operator_type,
        organisation_jurisdictions: &reg.jurisdictions,
        submitted: &submitted,
        started: &started,
        now,
    })
}

mod assess;
pub use assess::recompute;

pub(crate) fn met_event(
    incident_id: i64,
    key: &str,
    actor: &str,
    by: &str,
    late_reason: Option<&str>,
    due_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> NewEvent {
    NewEvent::new(
        now,
        actor,
        "obligation.met",
        Some(incident_id),
        &json!({
            "key": key,
            "by": by,
            "due_at": due_at,
            "late": due_at.is_some_and(|d| now > d),
            "late_reason": late_reason,
        }),
    )
}

/// Meet the incident's open obligations of `kind` (a campaign started, an announcement
/// published), inside the caller's transaction. Returns the events.
pub async fn meet_kind(
    tx: &mut WriteTx,
    incident_id: i64,
    kind: ObligationKind,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let mut events = Vec::new();
    for r in tx.obligations_of(incident_id).await? {
        if r.kind != kind.as_str() || !r.is_open() || r.standing == "withdrawn" {
            continue;
        }
        if tx
            .meet_obligation(incident_id, &r.key, to_micros(now), "incidentd", by, None)
            .await?
        {
            events.push(met_event(
                incident_id,
                &r.key,
                "incidentd",
                by,
                None,
                r.due_at.map(from_micros),
                now,
            ));
        }
    }
    Ok(events)
}

/// Meet the obligation whose task this is (a task obligation's task was completed).
pub async fn meet_task(
    tx: &mut WriteTx,
    reg: &Regulation,
    incident_id: i64,
    task_key: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let mut events = Vec::new();
    for r in tx.obligations_of(incident_id).await? {
        if r.kind != ObligationKind::Task.as_str() || !r.is_open() {
            continue;
        }
        let Ok(code) = r.jurisdiction.parse::<Jurisdiction>() else {
            continue;
        };
        let ours = reg
            .packs
            .get(&code)
            .and_then(|p| p.obligation(&r.obligation))
            .and_then(|d| d.task.as_ref())
            .is_some_and(|t| t.key == task_key);
        if ours
            && tx
                .meet_obligation(
                    incident_id,
                    &r.key,
                    to_micros(now),
                    actor,
                    &format!("task:{task_key}"),
                    None,
                )
                .await?
        {
            events.push(met_event(
                incident_id,
                &r.key,
                actor,
                &format!("task:{task_key}"),
                None,
                r.due_at.map(from_micros),
                now,
            ));
        }
    }
    Ok(events)
}

/// A person's word that an obligation was met outside incidentd.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetRequest {
    /// What shows it was met: a receipt number, a case number, a document reference.
    pub reference: String,
    /// When it was met; defaults to now.
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub at: Option<DateTime<Utc>>,
    /// Required when it was met after its deadline.
    #[serde(default)]
    pub late_reason: Option<String>,
}

/// Re-assess open incidents (after the packs or the organisation's settings changed): each gets
/// a recompute timer. Returns how many.
pub async fn recompute_open(tx: &mut WriteTx, now: DateTime<Utc>) -> Result<usize, EngineError> {
    let ids = tx.open_incidents(100_000).await?;
    let timers: Vec<NewTimer> = ids.iter().map(|id| recompute_timer(*id, now)).collect();
    tx.schedule_timers(&timers, to_micros(now)).await?;
    Ok(ids.len())
}

impl Engine {
    pub fn set_regulation(&self, reg: Regulation) {
        self.regulation.store(Arc::new(reg));
    }

    /// The handle [`Engine::set_regulation`] sets, for the reloader.
    pub fn regulation_handle(&self) -> Arc<arc_swap::ArcSwap<Regulation>> {
        self.regulation.clone()
    }

    pub fn regulation(&self) -> Arc<Regulation> {
        self.regulation.load_full()
    }

    /// Packs are loaded: incidents opened by alerts get a recompute timer.
    pub fn regulates(&self) -> bool {
        self.regulation.load().is_active()
    }

    /// Mark a non-report obligation met on a person's word (reports are met by submitting
    /// them). Past the deadline a late reason is required.
    pub async fn meet_obligation(
        &self,
        incident_id: i64,
        key: &str,
        r: MetRequest,
        actor: &str,
    ) -> Result<ObligationRow, EngineError> {
        let now = Utc::now();
        let at = r.at.unwrap_or(now);
        if at > now + crate::domain::time::MAX_SKEW {
            return Err(EngineError::invalid(
                "at",
                "that is in the future; give when it was met",
            ));
        }
        let reference = r.reference.trim();
        if reference.is_empty() {
            return Err(EngineError::invalid(
                "reference",
                "say what shows it was met: a receipt, case or document number",
            ));
        }
        let late_reason = r
            .late_reason
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let mut tx = self.store().begin_write().await?;
        tx.incident(incident_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("there is no incident {incident_id}")))?;
        let o = tx.obligation(incident_id, key).await?.ok_or_else(|| {
            EngineError::NotFound(format!(
                "incident {incident_id} has no obligation `{key}`; see GET /api/v1/incidents/{incident_id}/obligations"
            ))
        })?;
        if o.kind == ObligationKind::Report.as_str() {
            return Err(EngineError::Conflict(format!(
                "`{key}` is a report: submit the approved report instead (POST /api/v1/incidents/{incident_id}/reports/<id>/submit)"
            )));
        }
        if !o.is_open() {
            return Err(EngineError::Conflict(format!(
                "`{key}` is already {}",
                o.status
            )));
        }
        if let Some(due) = o.due_at
            && to_micros(at) > due
            && late_reason.is_none()
        {
            return Err(EngineError::invalid(
                "late_reason",
                format!(
                    "`{key}` was due {}; say why it was met late",
                    from_micros(due).format("%Y-%m-%d %H:%M UTC")
                ),
            ));
        }
        tx.meet_obligation(
            incident_id,
            key,
            to_micros(at),
            actor,
            reference,
            late_reason,
        )
        .await?;
        tx.append(&[met_event(
            incident_id,
            key,
            actor,
            reference,
            late_reason,
            o.due_at.map(from_micros),
            at,
        )])
        .await?;
        let row = tx.obligation(incident_id, key).await?.expect("just met");
        tx.commit().await?;
        Ok(row)
    }
}

/// Fire obligation timers: recompute, remind, and record a miss. `response` is `None` without
/// departments: nobody is paged then, but a miss is still recorded.
pub async fn fire(
    tx: &mut WriteTx,
    reg: &Regulation,
    response: Option<&super::response::ResponseCtx<'_>>,
    timers: &[DueTimer],
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    let mut events = Vec::new();
    for t in timers {
        let Some(incident_id) = t.incident_id else {
            continue;
        };
        let Some(mut inc) = tx.incident(incident_id).await? else {
            continue;
        };
        match t.kind.as_str() {
            TIMER_RECOMPUTE => {
                let before = inc.clone();
                events.extend(recompute(tx, reg, &mut inc, now).await?);
                if inc != before {
                    tx.update_incident(&inc).await?;
                }
            }
            TIMER_REMIND => {
                let r: Reminder = match t.payload() {
                    Ok(r) => r,
                    Err(e) => {
                        warn!(error = %e, key = %t.key, "unreadable obligation reminder; dropped");
                        continue;
                    }
                };
                events.extend(remind(tx, response, &inc, &r, now).await?);
            }
            super::outcomes::TIMER_REPORT_OUTCOME
            | super::outcomes::TIMER_NOTICES
            | super::outcomes::TIMER_APPROVAL_PAGE => {
                events.extend(super::outcomes::fire(tx, response, &inc, t, now).await?);
            }
            _ => {}
        }
    }
    tx.append(&events).await?;
    Ok(())
}

async fn remind(
    tx: &mut WriteTx,
    response: Option<&super::response::ResponseCtx<'_>>,
    inc: &Incident,
    r: &Reminder,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let Some(o) = tx.obligation(inc.id, &r.key).await? else {
        return Ok(Vec::new());
    };
    // Met, no longer owed, or its deadline moved since this timer was set: nothing to say.
    if !o.is_pending() || o.due_at != Some(r.due_at) {
        return Ok(Vec::new());
    }
    let detail: ObligationOutcome = match serde_json::from_str(&o.detail) {
        Ok(d) => d,
        Err(_) => return Ok(Vec::new()),
    };
    let missed = r.percent >= 100;
    let due = from_micros(r.due_at);
    let left = if missed {
        "deadline reached".to_string()
    } else {
        format!(
            "{} left",
            humanize((due - now).to_std().unwrap_or_default())
        )
    };
    let subject = format!(
        "[{}{}] incident #{}: {} — due {}",
        if inc.drill { "DRILL " } else { "" },
        if missed { "MISSED" } else { "deadline" },
        inc.id,
        detail.title,
        due.format("%Y-%m-%d %H:%M UTC"),
    );
    let text = format!(
        "{subject} ({left}).\n{}\nOwner: {}.\nWhy: {}\n\nincidentd obligations --incident {}\n",
        detail
            .recipient_name
            .as_deref()
            .map(|n| format!("To: {n}."))
            .unwrap_or_default(),
        o.owner,
        detail.why.join(" | "),
        inc.id
    );
    // Level 1 of the owning department; past the deadline, its leads too. One page per
    // reminder (its due time and percent) and member and channel.
    let paged = super::outcomes::page_department(
        tx,
        response,
        inc,
        &o.owner,
        missed,
        &format!("{}:{}:{}", o.key, r.due_at, r.percent),
        &subject,
        &text,
        now,
    )
    .await?;
    Ok(vec![NewEvent::new(
        now,
        "incidentd",
        if missed {
            "obligation.missed"
        } else {
            "obligation.reminded"
        },
        Some(inc.id),
        &json!({
            "key": o.key,
            "percent": r.percent,
            "due_at": due,
            "owner": o.owner,
            "paged": paged,
        }),
    )])
}
