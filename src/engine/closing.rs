//! Closing is a checklist: an incident is closed only when its tasks are finished and what it
//! owes regulators and people is met — or when a person forces it, with a reason.
//!
//! * **Open work** is every task that is not done, approved, rejected or cancelled, and every
//!   obligation still owed (`required` and not met) except those that the closing itself starts
//!   (clock `handling_closed_at`, e.g. the CN closing report, owed within 30 days after).
//! * **Refused** (409) while any is open, naming them.
//! * **Forced** (`"force": true` with a `"reason"`): open tasks become `cancelled` with the
//!   reason as their note — never left "open" on a closed incident, where nobody could complete
//!   them. A report version's approval (`report-<id>`) is the exception: it can still be decided
//!   after closing (the closing report is owed after), so it stays open. Open obligations are
//!   *not* met by a forced close: they stay open, listed as not met (obligations list, closing
//!   summary, timeline), so a regulator's deadline is never marked kept by a closing.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::EngineError;
use crate::domain::incident::Status;
use crate::domain::time::to_micros;
use crate::store::{NewEvent, ObligationRow, TaskRow, WriteTx};

/// A person forcing a transition past open work.
#[derive(Debug, Clone, Default)]
pub struct Force {
    /// Close even though tasks or obligations are open: the open tasks are cancelled with
    /// `reason`; open obligations stay open (not met).
    pub force: bool,
    /// Why the incident is closed with open work (required with `force`).
    pub reason: Option<String>,
}

impl Force {
    /// The trimmed reason when forcing a close; refusals for a force without a reason, a reason
    /// without force, or forcing anything but a close.
    pub(crate) fn reason_for(&self, to: Status) -> Result<Option<String>, EngineError> {
        let reason = self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        match (self.force, reason) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(EngineError::invalid(
                "reason",
                "a reason goes with `force` (closing with open work); to say why the incident moves, use `note`",
            )),
            (true, _) if to != Status::Closed => Err(EngineError::invalid(
                "force",
                format!("only closing can be forced, not moving to `{to}`"),
            )),
            (true, None) => Err(EngineError::invalid(
                "reason",
                "forcing a close needs a reason: the open tasks are cancelled with it and the audit trail keeps it",
            )),
            (true, Some(r)) => Ok(Some(r)),
        }
    }
}

/// Obligations owed now that a close leaves unmet (not those the closing starts).
fn blocking(o: &ObligationRow) -> bool {
    o.is_pending() && o.clock != "handling_closed_at"
}

fn task_list(tasks: &[&TaskRow]) -> String {
    tasks
        .iter()
        .map(|t| format!("`{}` ({}, {})", t.key, t.department, t.status))
        .collect::<Vec<_>>()
        .join(", ")
}

fn obligation_list(obs: &[&ObligationRow]) -> String {
    obs.iter()
        .map(|o| format!("`{}` (owner {})", o.key, o.owner))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check the closing checklist of incident `id` in `tx`; when forced, cancel its open tasks.
/// Returns the events to append (after the transition's own).
pub(crate) async fn checklist(
    tx: &mut WriteTx,
    id: i64,
    force: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let tasks = tx.tasks_of(id).await?;
    let open: Vec<&TaskRow> = tasks.iter().filter(|t| !t.is_closed()).collect();
    let obligations = tx.obligations_of(id).await?;
    let owed: Vec<&ObligationRow> = obligations.iter().filter(|o| blocking(o)).collect();
    if open.is_empty() && owed.is_empty() {
        return Ok(Vec::new());
    }
    let Some(reason) = force else {
        let mut why = Vec::new();
        if !open.is_empty() {
            why.push(format!(
                "{} task(s) are open: {}",
                open.len(),
                task_list(&open)
            ));
        }
        if !owed.is_empty() {
            why.push(format!(
                "{} obligation(s) are not met: {}",
                owed.len(),
                obligation_list(&owed)
            ));
        }
        return Err(EngineError::Conflict(format!(
            "incident {id} cannot be closed: {}. Complete them, or force the close with a reason \
             (CLI: --force --reason \"…\"; API: \"force\": true, \"reason\": \"…\"): open tasks are \
             then cancelled with that reason, and open obligations stay open, not met",
            why.join("; ")
        )));
    };
    let mut cancelled = Vec::new();
    let mut events = Vec::new();
    for t in open {
        // A report's approval is decided after closing too (the closing report is owed then).
        if super::reports::report_of_task(t).is_some() {
            continue;
        }
        let mut t = t.clone();
        t.status = "cancelled".into();
        t.closed_by = Some(actor.to_string());
        t.closed_at = Some(to_micros(now));
        t.note = Some(reason.to_string());
        t.updated_at = to_micros(now);
        tx.update_task(&t).await?;
        events.push(NewEvent::new(
            now,
            actor,
            "task.cancelled",
            Some(id),
            &json!({"task": t.key, "department": t.department, "reason": reason}),
        ));
        cancelled.push(t.key);
    }
    events.push(NewEvent::new(
        now,
        actor,
        "incident.closed_with_open_work",
        Some(id),
        &json!({
            "reason": reason,
            "cancelled_tasks": cancelled,
            "open_obligations": owed.iter().map(|o| &o.key).collect::<Vec<_>>(),
        }),
    ));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn force(force: bool, reason: Option<&str>) -> Force {
        Force {
            force,
            reason: reason.map(str::to_string),
        }
    }

    fn path(r: Result<Option<String>, EngineError>) -> String {
        match r {
            Err(EngineError::Invalid { path, .. }) => path,
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn forcing_needs_a_reason_and_only_closes() {
        assert_eq!(force(false, None).reason_for(Status::Closed).unwrap(), None);
        assert_eq!(
            force(true, Some("  sold  "))
                .reason_for(Status::Closed)
                .unwrap(),
            Some("sold".to_string())
        );
        assert_eq!(path(force(true, None).reason_for(Status::Closed)), "reason");
        assert_eq!(
            path(force(true, Some(" ")).reason_for(Status::Closed)),
            "reason"
        );
        assert_eq!(
            path(force(false, Some("x")).reason_for(Status::Closed)),
            "reason"
        );
        assert_eq!(
            path(force(true, Some("x")).reason_for(Status::Triaged)),
            "force"
        );
    }
}
