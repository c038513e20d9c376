//! Recomputing an incident's obligations: grade it, start the assessed-notifiable clock when
//! the facts make the breach notifiable, and bring the stored obligations, their reminders and
//! tasks up to date.

use super::*;

/// Grade the incident and bring its obligations up to date, in the caller's transaction. May
/// start the incident's `assessed_notifiable_at` clock (the caller writes the incident back).
/// Returns the audit events to append.
pub async fn recompute(
    tx: &mut WriteTx,
    reg: &Regulation,
    inc: &mut Incident,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    if !reg.is_active() {
        return Ok(Vec::new());
    }
    let rows = tx.obligations_of(inc.id).await?;
    let mut events = Vec::new();
    let mut assessment = assess(reg, inc, &rows, now);
    // A false positive was no breach, and a merged incident's breach is its survivor's:
    // nothing is owed here (what was met stays met).
    let false_positive = inc.status == crate::domain::incident::Status::FalsePositive;
    let merged = inc.status == crate::domain::incident::Status::Merged;
    if false_positive || merged {
        assessment.jurisdictions.clear();
        assessment.clocks_to_start.clear();
    }
    if let Some(e) = start_assessed_clock(reg, inc, &rows, &mut assessment, now) {
        events.push(e);
    }

    events.extend(record_grades(tx, inc, &assessment, now).await?);

    let now_us = to_micros(now);
    let mut upserts = Vec::new();
    let mut timers = Vec::new();
    let mut tasks = Vec::new();
    let mut seen = Vec::new();
    for j in &assessment.jurisdictions {
        let pack = reg.packs.get(&j.jurisdiction);
        for o in &j.obligations {
            seen.push(o.key.clone());
            let old = rows.iter().find(|r| r.key == o.key);
            let row = obligation_row(inc.id, o, old, now_us);
            let changed = old.is_none_or(|r| {
                (&r.standing, r.due_at, r.clock_start, &r.recipient)
                    != (&row.standing, row.due_at, row.clock_start, &row.recipient)
            });
            if old.is_some_and(|r| r.detail == row.detail && !changed) {
                continue;
            }
            upserts.push(row.clone());
            if changed {
                events.push(obligation_event(inc.id, o, old, now));
            }
            let pending =
                row.status == "open" && o.standing == crate::domain::regulation::Standing::Required;
            if pending && changed {
                timers.extend(reminder_timers(inc.id, o, now));
            }
            if pending
                && old.is_none()
                && let Some(t) = obligation_task(inc.id, o, pack)
            {
                tasks.push((t, o.key.clone()));
            }
        }
    }
    // What no longer applies is withdrawn (kept, with the moment), unless it was met.
    let why = if false_positive {
        "the incident is a false positive"
    } else if merged {
        "the incident was merged into another, which owes what it owed"
    } else {
        "the facts no longer make it owed"
    };
    for r in rows.iter().filter(|r| !seen.contains(&r.key)) {
        if let Some(w) = withdrawn(r, now_us) {
            upserts.push(w);
            events.push(NewEvent::new(
                now,
                "incidentd",
                "obligation.withdrawn",
                Some(inc.id),
                &json!({ "key": r.key, "detail": why }),
            ));
        }
    }
    tx.upsert_obligations(&upserts).await?;
    events.extend(add_tasks(tx, inc.id, &tasks, now).await?);
    events.extend(meet_by_record(tx, inc.id, &assessment, &rows, now).await?);
    if !timers.is_empty() {
        tx.schedule_timers(&timers, now_us).await?;
    }
    Ok(events)
}

/// An obligation added, or changed in standing, deadline, clock or recipient: the audit event.
fn obligation_event(
    incident_id: i64,
    o: &crate::domain::regulation::ObligationOutcome,
    old: Option<&ObligationRow>,
    now: DateTime<Utc>,
) -> NewEvent {
    NewEvent::new(
        now,
        "incidentd",
        if old.is_none() {
            "obligation.added"
        } else {
            "obligation.changed"
        },
        Some(incident_id),
        &json!({
            "key": o.key,
            "title": o.title,
            "standing": o.standing,
            "exemption": o.exemption,
            "due_at": o.due_at,
            "from": old.map(|r| json!({"standing": r.standing, "due_at": r.due_at.map(from_micros)})),
            "why": o.why,
        }),
    )
}

/// A stored obligation the assessment no longer gives, withdrawn (kept, with the moment) —
/// unless it was met, or is withdrawn already.
fn withdrawn(r: &ObligationRow, now_us: i64) -> Option<ObligationRow> {
    if r.standing == "withdrawn" || r.status == "met" {
        return None;
    }
    let mut w = r.clone();
    w.standing = "withdrawn".into();
    w.updated_at = now_us;
    Some(w)
}

/// The facts made the breach notifiable: start the incident's `assessed_notifiable_at` clock
/// (once) and assess again from it; the audit event.
pub(super) fn start_assessed_clock(
    reg: &Regulation,
    inc: &mut Incident,
    rows: &[ObligationRow],
    assessment: &mut crate::domain::regulation::Assessment,
    now: DateTime<Utc>,
) -> Option<NewEvent> {
    if !assessment
        .clocks_to_start
        .contains(&Clock::AssessedNotifiableAt)
        || inc.assessed_notifiable_at.is_some()
    {
        return None;
    }
    inc.assessed_notifiable_at = Some(now);
    inc.updated_at = now;
    let why: Vec<String> = assessment
        .jurisdictions
        .iter()
        .flat_map(|j| &j.obligations)
        .filter(|o| o.clock == Clock::AssessedNotifiableAt && o.clock_start.is_none())
        .map(|o| o.key.clone())
        .collect();
    let event = NewEvent::new(
        now,
        "incidentd",
        "incident.clock_started",
        Some(inc.id),
        &json!({
            "clock": "assessed_notifiable_at",
            "at": now,
            "detail": "the facts make the breach notifiable; a person may set the assessment time with a reason",
            "obligations": why,
        }),
    );
    *assessment = assess(reg, inc, rows, now);
    Some(event)
}

/// A grade row, and its event, for each jurisdiction whose grade changed.
pub(super) async fn record_grades(
    tx: &mut WriteTx,
    inc: &Incident,
    assessment: &crate::domain::regulation::Assessment,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let mut events = Vec::new();
    let current = if assessment.jurisdictions.is_empty() {
        Vec::new()
    } else {
        tx.current_grades(inc.id).await?
    };
    let mut grades = Vec::new();
    for j in &assessment.jurisdictions {
        let code = j.jurisdiction.as_str();
        let before = current.iter().find(|g| g.jurisdiction == code);
        if before.is_some_and(|b| b.grade == j.grade.id && b.criterion == j.grade.criterion) {
            continue;
        }
        grades.push(GradeRow {
            id: 0,
            incident_id: inc.id,
            jurisdiction: code.to_string(),
            grade: j.grade.id.clone(),
            criterion: j.grade.criterion.clone(),
            why: j.grade.why.clone(),
            at: to_micros(now),
        });
        events.push(NewEvent::new(
            now,
            "incidentd",
            "grade.changed",
            Some(inc.id),
            &json!({
                "jurisdiction": code,
                "from": before.map(|b| &b.grade),
                "to": j.grade.id,
                "criterion": j.grade.criterion,
                "why": j.grade.why,
            }),
        ));
    }

    tx.insert_grades(&grades).await?;
    Ok(events)
}

/// The stored row of an assessed obligation: what is assessed now, with what happened to it
/// (status, when and how it was met) kept from `old`.
pub(super) fn obligation_row(
    incident_id: i64,
    o: &crate::domain::regulation::ObligationOutcome,
    old: Option<&ObligationRow>,
    now_us: i64,
) -> ObligationRow {
    ObligationRow {
        id: old.map_or(0, |r| r.id),
        incident_id,
        key: o.key.clone(),
        jurisdiction: o.jurisdiction.to_string(),
        obligation: o.obligation.clone(),
        kind: o.kind.as_str().to_string(),
        report_kind: o.report_kind.map(|k| k.as_str().to_string()),
        recipient: o.recipient.clone(),
        owner: o.owner.clone(),
        standing: o.standing.as_str().to_string(),
        clock: o.clock.as_str().to_string(),
        clock_start: o.clock_start.map(to_micros),
        due_at: o.due_at.map(to_micros),
        detail: serde_json::to_string(o).unwrap_or_else(|_| "{}".into()),
        status: old.map_or_else(|| "open".to_string(), |r| r.status.clone()),
        met_at: old.and_then(|r| r.met_at),
        met_by: old.and_then(|r| r.met_by.clone()),
        met_ref: old.and_then(|r| r.met_ref.clone()),
        late_reason: old.and_then(|r| r.late_reason.clone()),
        met_facts: old.and_then(|r| r.met_facts.clone()),
        created_at: old.map_or(now_us, |r| r.created_at),
        updated_at: now_us,
    }
}

/// The task a task obligation asks for, due when the obligation is.
pub(super) fn obligation_task(
    incident_id: i64,
    o: &crate::domain::regulation::ObligationOutcome,
    pack: Option<&crate::domain::regulation::Pack>,
) -> Option<NewTask> {
    if o.kind != ObligationKind::Task {
        return None;
    }
    let t = pack
        .and_then(|p| p.obligation(&o.obligation))
        .and_then(|d| d.task.clone())?;
    Some(NewTask {
        incident_id,
        key: t.key.clone(),
        playbook: None,
        title: t.title.clone(),
        department: t.department.clone(),
        description: format!("{}\n\n{}", t.description, o.why.join("\n")),
        approval: false,
        approvers: Vec::new(),
        depends_on: Vec::new(),
        after_task: None,
        due_offset_secs: o
            .due_at
            .zip(o.clock_start)
            .map_or(0, |(d, s)| (d - s).num_seconds()),
        due_at: o.due_at.map(to_micros),
    })
}

/// Add the tasks obligations ask for (once each); their events.
pub(super) async fn add_tasks(
    tx: &mut WriteTx,
    incident_id: i64,
    tasks: &[(NewTask, String)],
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let now_us = to_micros(now);
    let mut events = Vec::new();
    for (task, key) in tasks {
        if !tx
            .insert_tasks(std::slice::from_ref(task), now_us)
            .await?
            .is_empty()
        {
            events.push(NewEvent::new(
                now,
                "incidentd",
                "task.added",
                Some(incident_id),
                &json!({"task": task.key, "title": task.title, "department": task.department,
                        "due_at": task.due_at.map(from_micros), "obligation": key}),
            ));
        }
    }
    Ok(events)
}

/// Obligations met by what is already there: the record by the incident itself. (An
/// assessment is a person's: its clock starting does not meet it.)
pub(super) async fn meet_by_record(
    tx: &mut WriteTx,
    incident_id: i64,
    assessment: &crate::domain::regulation::Assessment,
    rows: &[ObligationRow],
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let now_us = to_micros(now);
    let mut events = Vec::new();
    for o in assessment.obligations() {
        let by = match o.kind {
            ObligationKind::Record => Some("incident record"),
            _ => None,
        };
        let open = rows
            .iter()
            .find(|r| r.key == o.key)
            .is_none_or(|r| r.is_open());
        if let Some(by) = by
            && open
            && o.standing == crate::domain::regulation::Standing::Required
            && tx
                .meet_obligation(incident_id, &o.key, now_us, "incidentd", by, None)
                .await?
        {
            events.push(met_event(
                incident_id,
                &o.key,
                "incidentd",
                by,
                None,
                o.due_at,
                now,
            ));
        }
    }
    Ok(events)
}
