//! One approval per thing: the playbook's regulator-report gate (a task with `lint = "report"`,
//! `approve_regulator_report` in the shipped PI playbook) is satisfied by approving the report
//! version itself, not approved a second time.
//!
//! * When a report version's approval (`report-<id>`) is approved by every department of the
//!   gate's approvers, and no other report version of the incident still waits for approval,
//!   the gate is approved with the same departments' decisions, and the timeline says so
//!   (`report_gate.satisfied`). Its ordering prerequisites (`prepare_regulator_report`) do not
//!   hold it back: the approved report is the proof the preparation happened; they stay open
//!   until completed.
//! * Approving the gate directly is refused while a report version waits for its own approval
//!   (approve that instead). With no draft waiting (no report owed, or the report's approvers
//!   differ from the gate's), the gate is decided as any other.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{EngineError, GateChecks};
use crate::domain::playbook::TaskLint;
use crate::domain::time::to_micros;
use crate::store::{ApprovalRow, NewEvent, TaskRow, WriteTx};

/// Why `gate` (a report gate) may not be approved directly, or `None`.
pub(crate) async fn direct_refusal(
    tx: &mut WriteTx,
    gate: &TaskRow,
) -> Result<Option<String>, EngineError> {
    let drafts: Vec<_> = tx
        .reports_of(gate.incident_id)
        .await?
        .into_iter()
        .filter(|r| r.status == "draft")
        .collect();
    let Some(first) = drafts.first() else {
        return Ok(None);
    };
    let list: Vec<String> = drafts
        .iter()
        .map(|r| {
            format!(
                "report {} ({} version {}, approval {})",
                r.id,
                r.obligation_key,
                r.version,
                r.task_id.map_or_else(|| "?".into(), |t| t.to_string())
            )
        })
        .collect();
    Ok(Some(format!(
        "approval {} (`{}`) is the playbook's report gate: it is approved by approving the report \
         version itself, which then satisfies it — approve {} (incidentd approve {}). One approval \
         per thing",
        gate.id,
        gate.key,
        list.join(", "),
        first
            .task_id
            .map_or_else(|| "<approval>".into(), |t| t.to_string()),
    )))
}

/// After report approval `report_task` was approved: approve the incident's open report gates
/// whose approvers all approved it, unless another version still waits. The events to append.
pub(crate) async fn satisfy(
    tx: &mut WriteTx,
    checks: &GateChecks<'_>,
    report_task: &TaskRow,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let Some(rid) = super::reports::report_of_task(report_task) else {
        return Ok(Vec::new());
    };
    if report_task.status != "approved" {
        return Ok(Vec::new());
    }
    let incident = report_task.incident_id;
    let waiting: Vec<i64> = tx
        .reports_of(incident)
        .await?
        .into_iter()
        .filter(|r| r.status == "draft")
        .map(|r| r.id)
        .collect();
    let all = tx.tasks_of(incident).await?;
    let gates: Vec<TaskRow> = all
        .iter()
        .filter(|t| t.approval && !t.is_closed() && checks.lint_of(t) == Some(TaskLint::Report))
        .cloned()
        .collect();
    if gates.is_empty() {
        return Ok(Vec::new());
    }
    let decisions = tx.approvals_of(report_task.id).await?;
    let mut events = Vec::new();
    for mut gate in gates {
        if !waiting.is_empty() {
            let what = json!(waiting);
            events.push(still_waiting(
                &gate,
                rid,
                "reports_awaiting_approval",
                what,
                now,
            ));
            continue;
        }
        let approvers = gate.approvers();
        let by = match approved_by(&approvers, &decisions) {
            Ok(by) => by,
            Err(missing) => {
                events.push(still_waiting(
                    &gate,
                    rid,
                    "departments_missing",
                    json!(missing),
                    now,
                ));
                continue;
            }
        };
        let already: Vec<String> = tx
            .approvals_of(gate.id)
            .await?
            .into_iter()
            .map(|a| a.department)
            .collect();
        for a in by.iter().filter(|a| !already.contains(&a.department)) {
            tx.record_approval(&ApprovalRow {
                task_id: gate.id,
                reason: Some(format!("approved report {rid}")),
                ..(*a).clone()
            })
            .await?;
        }
        let open_prerequisites: Vec<String> = gate
            .depends_on()
            .into_iter()
            .filter(|k| all.iter().any(|t| &t.key == k && !t.is_satisfied()))
            .collect();
        gate.status = "approved".into();
        gate.closed_by = Some("incidentd".into());
        gate.closed_at = Some(to_micros(now));
        gate.note = Some(format!("satisfied by the approval of report {rid}"));
        gate.updated_at = to_micros(now);
        tx.update_task(&gate).await?;
        let started = super::tasks::start_followers(tx, &gate, now).await?;
        events.push(NewEvent::new(
            now,
            "incidentd",
            "report_gate.satisfied",
            Some(incident),
            &json!({
                "task": gate.key,
                "report_id": rid,
                "report_approval": report_task.id,
                "departments": approvers,
                "prerequisites_open": open_prerequisites,
                "now_due": started,
            }),
        ));
    }
    Ok(events)
}

/// The gate stays open, and why: `{task, approved_report, <why>: <what>}`.
fn still_waiting(
    gate: &TaskRow,
    rid: i64,
    why: &str,
    what: serde_json::Value,
    now: DateTime<Utc>,
) -> NewEvent {
    let mut data = json!({"task": gate.key, "approved_report": rid});
    data[why] = what;
    NewEvent::new(
        now,
        "incidentd",
        "report_gate.waiting",
        Some(gate.incident_id),
        &data,
    )
}

/// The approving decisions of each of a gate's approvers on the report, or the approvers
/// without one.
fn approved_by<'a>(
    approvers: &'a [String],
    decisions: &'a [ApprovalRow],
) -> Result<Vec<&'a ApprovalRow>, Vec<&'a String>> {
    let by: Vec<&ApprovalRow> = approvers
        .iter()
        .filter_map(|d| {
            decisions
                .iter()
                .find(|a| &a.department == d && a.decision == "approved")
        })
        .collect();
    if by.len() == approvers.len() {
        return Ok(by);
    }
    Err(approvers
        .iter()
        .filter(|d| !by.iter().any(|a| &a.department == *d))
        .collect())
}
