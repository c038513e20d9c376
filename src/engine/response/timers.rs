//! What the response's timers do when they fall due: the periodic status digest, escalating an
//! unacknowledged page to the next level, a page that could not be delivered, an overdue task.

use super::*;

/// The periodic status digest: to the level-1 members of each open S1/S2 incident's team, by
/// e-mail, what is open, what is overdue and what falls due next.
pub(crate) async fn digest(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    tick: &crate::scheduler::CronTick,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let mut deliveries = Vec::new();
    let mut events = Vec::new();
    for id in tx.open_incident_ids(&["S1", "S2"]).await? {
        let Some(incident) = tx.incident(id).await? else {
            continue;
        };
        let tasks = tx.tasks_of(id).await?;
        if tasks.is_empty() {
            continue;
        }
        let Status {
            subject,
            text,
            open,
            overdue,
        } = status(&incident, &tasks, now);
        let mut sent_to = 0;
        for team in tx.team_of(id).await? {
            let Some(dept) = ctx.department(&team.department) else {
                continue;
            };
            for (i, m) in dept.members.iter().enumerate() {
                let Some(email) = &m.email else { continue };
                if m.level != 1 {
                    continue;
                }
                sent_to += 1;
                deliveries.push(NewDelivery {
                    idempotency_key: format!(
                        "digest:{id}:{}:{}:{}",
                        tick.tick.timestamp(),
                        dept.id,
                        dept.member_id(i)
                    ),
                    incident_id: Some(id),
                    purpose: if incident.drill {
                        Purpose::Drill
                    } else {
                        Purpose::Page
                    },
                    channel: ChannelKind::Email,
                    recipient: email.clone(),
                    locale: m
                        .locale
                        .clone()
                        .unwrap_or_else(|| ctx.render.org.default_locale.clone()),
                    content: Content {
                        subject: Some(subject.clone()),
                        text: text.clone(),
                        ..Default::default()
                    },
                    fallback: Vec::new(),
                    fallback_of: None,
                });
            }
        }
        if sent_to == 0 {
            continue;
        }
        events.push(NewEvent::new(
            now,
            "incidentd",
            "digest.sent",
            Some(id),
            &json!({"open": open, "overdue": overdue, "recipients": sent_to}),
        ));
    }
    if !ctx.render.channels.contains(&ChannelKind::Email) {
        if !deliveries.is_empty() {
            warn!("status digest not sent: no [channels.email]");
        }
        return Ok(Vec::new());
    }
    tx.enqueue_deliveries(&deliveries, to_micros(now)).await?;
    Ok(events)
}

/// One incident's status digest.
struct Status {
    subject: String,
    text: String,
    /// How many tasks are open, and how many of them overdue.
    open: usize,
    overdue: usize,
}

/// What is open, what is overdue and the next five to fall due.
fn status(incident: &Incident, tasks: &[TaskRow], now: DateTime<Utc>) -> Status {
    let now_us = to_micros(now);
    let open: Vec<&TaskRow> = tasks.iter().filter(|t| !t.is_closed()).collect();
    let overdue: Vec<&TaskRow> = open
        .iter()
        .copied()
        .filter(|t| t.due_at.is_some_and(|d| d < now_us))
        .collect();
    let mut next: Vec<&TaskRow> = open
        .iter()
        .copied()
        .filter(|t| t.due_at.is_some_and(|d| d >= now_us))
        .collect();
    next.sort_by_key(|t| t.due_at);
    let line = |t: &TaskRow| {
        format!(
            "  - {} [{}] {}{}",
            t.title,
            t.department,
            t.status,
            t.due_at
                .map(|d| format!(", due {}", from_micros(d).format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        )
    };
    let mut text = format!(
        "Status of incident #{} ({}, {}): {}\n\n{} of {} tasks open, {} overdue.\n",
        incident.id,
        incident.severity,
        incident.status,
        incident.title,
        open.len(),
        tasks.len(),
        overdue.len()
    );
    if !overdue.is_empty() {
        text.push_str("\nOverdue:\n");
        for t in &overdue {
            text.push_str(&line(t));
            text.push('\n');
        }
    }
    if !next.is_empty() {
        text.push_str("\nDue next:\n");
        for t in next.iter().take(5) {
            text.push_str(&line(t));
            text.push('\n');
        }
    }
    text.push_str(&format!("\nincidentd tasks --incident {}\n", incident.id));
    let subject = format!(
        "[{}] incident #{} status: {} open, {} overdue",
        incident.severity,
        incident.id,
        open.len(),
        overdue.len()
    );
    Status {
        subject,
        text,
        open: open.len(),
        overdue: overdue.len(),
    }
}

pub(super) async fn escalate(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let dept_id = payload["department"].as_str().unwrap_or_default();
    let level = payload["level"].as_i64().unwrap_or(1) as i32;
    if !incident.status.is_open() {
        return Ok(Vec::new());
    }
    let team = tx.team_of(incident.id).await?;
    let Some(row) = team.iter().find(|r| r.department == dept_id) else {
        return Ok(Vec::new());
    };
    if row.acked_at.is_some() || row.level != level {
        return Ok(Vec::new());
    }
    let Some(dept) = ctx.department(dept_id) else {
        return Ok(Vec::new());
    };
    let next = dept.levels().into_iter().find(|l| *l as i32 > level);
    let Some(next) = next else {
        return Ok(vec![NewEvent::new(
            now,
            "incidentd",
            "incident.escalation_exhausted",
            Some(incident.id),
            &json!({ "department": dept_id, "level": level,
                     "detail": "nobody acknowledged at the highest level" }),
        )]);
    };
    let reason = json!({"after": format!("{}s", dept.escalate_after.0.as_secs())});
    escalate_to(tx, ctx, incident, dept, level, next, reason, now).await
}

/// Page a department's level `next` (from `level`), move the team there and arm the next
/// escalation. `why` is merged into the `incident.escalated` event.
#[allow(clippy::too_many_arguments)]
pub(super) async fn escalate_to(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    dept: &DepartmentConfig,
    level: i32,
    next: u32,
    why: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let pb = playbook_of(tx, ctx, incident).await?;
    let defs = pb.tasks_for(incident.severity);
    let first = defs
        .iter()
        .find(|t| t.department == dept.id)
        .map(|t| t.id.as_str());
    let pages = page(ctx, pb, incident, dept, next, None, first, now);
    let mut events = crate::engine::paging::enqueue_pages(tx, ctx, &pages, now).await?;
    tx.set_team_level(incident.id, &dept.id, next as i32, to_micros(now))
        .await?;
    tx.schedule_timers(
        &[escalate_timer(
            incident.id,
            dept,
            next as i32,
            now,
            incident.severity.as_str(),
        )],
        crate::domain::time::to_micros(now),
    )
    .await?;
    let mut data = json!({
        "department": dept.id,
        "from_level": level,
        "to_level": next,
        "pages": pages.len(),
    });
    if let (Some(d), Some(w)) = (data.as_object_mut(), why.as_object()) {
        d.extend(w.clone());
    }
    events.push(NewEvent::new(
        now,
        "incidentd",
        "incident.escalated",
        Some(incident.id),
        &data,
    ));
    Ok(events)
}

/// A page whose every channel died: page the department's next level, or at the top its
/// lead(s); say on the timeline which page died, why, and what was done. Does nothing while any
/// of the page's deliveries is still alive (a fallback, a retry), and only records when the
/// department has acknowledged or already escalated past the level.
pub(super) async fn page_dead(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let key = crate::store::PageKey {
        incident: incident.id,
        department: payload["department"].as_str().unwrap_or_default().into(),
        level: payload["level"].as_u64().unwrap_or(1) as u32,
        member: payload["member"].as_str().unwrap_or_default().into(),
    };
    let family = tx.page_family(&key.channel_keys()).await?;
    if family.is_empty() || family.iter().any(|d| d.status != "dead") {
        return Ok(Vec::new());
    }
    let dept = ctx.department(&key.department);
    let member = dept.and_then(|d| {
        (0..d.members.len())
            .find(|i| d.member_id(*i) == key.member)
            .map(|i| &d.members[i])
    });
    let mut events = Vec::new();
    let mut paged: Vec<String> = Vec::new();
    let team = tx.team_of(incident.id).await?;
    let row = team.iter().find(|r| r.department == key.department);
    let action = match (dept, row) {
        _ if !incident.status.is_open() => "the incident is closed: nobody else paged".to_string(),
        (None, _) => format!(
            "department `{}` is no longer configured: nobody else paged",
            key.department
        ),
        (_, None) => "the department is not on the team: nobody else paged".to_string(),
        (_, Some(r)) if r.acked_at.is_some() => {
            "the department has acknowledged: nobody else paged".to_string()
        }
        (Some(_), Some(_)) if key.level == 0 => {
            "it was the lead's page: nobody is left to page".to_string()
        }
        (Some(_), Some(r)) if r.level > key.level as i32 => format!(
            "the department was already escalated to level {}: nothing more done",
            r.level
        ),
        (Some(d), Some(_)) => match d.levels().into_iter().find(|l| *l > key.level) {
            Some(next) => {
                let why = json!({"reason": "page.dead", "dead_member": member.map(|m| &m.name)});
                events.extend(
                    escalate_to(tx, ctx, incident, d, key.level as i32, next, why, now).await?,
                );
                paged = d.at_level(next).map(|m| m.name.clone()).collect();
                format!("paged level {next}")
            }
            None => {
                let dead_name = member.map_or(key.member.as_str(), |m| m.name.as_str());
                let (action, leads, paging) =
                    page_leads(tx, ctx, incident, d, member, dead_name, now).await?;
                events.extend(paging);
                paged = leads;
                action
            }
        },
    };
    let deliveries: Vec<serde_json::Value> = family
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "channel": d.channel,
                "error": d.last_error,
                "digest": d.coalesced_into,
            })
        })
        .collect();
    // The death first, then what was done about it.
    events.insert(
        0,
        NewEvent::new(
            now,
            "incidentd",
            "page.dead",
            Some(incident.id),
            &json!({
            "department": key.department,
            "level": if key.level == 0 { json!("lead") } else { json!(key.level) },
            "member": member.map_or(key.member.as_str(), |m| m.name.as_str()),
            "member_id": key.member,
            "deliveries": deliveries,
            "action": action,
            "paged": paged,
            }),
        ),
    );
    Ok(events)
}

/// The top level's page died: page the department's lead(s) — not the one whose page died —
/// with the playbook's first task for the department, the page marked as standing in for the
/// dead one. What was done, who was paged, and the paging's events.
async fn page_leads(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    d: &DepartmentConfig,
    dead: Option<&MemberConfig>,
    dead_name: &str,
    now: DateTime<Utc>,
) -> Result<(String, Vec<String>, Vec<NewEvent>), EngineError> {
    let leads: Vec<&MemberConfig> = d
        .leads()
        .into_iter()
        .filter(|m| !dead.is_some_and(|dead| std::ptr::eq(*m, dead)))
        .collect();
    if leads.is_empty() {
        let action = format!(
            "{dead_name} is the department's only lead, and it is their page that died: nobody else to page"
        );
        return Ok((action, Vec::new(), Vec::new()));
    }
    let pb = playbook_of(tx, ctx, incident).await?;
    let defs = pb.tasks_for(incident.severity);
    let first = defs
        .iter()
        .find(|t| t.department == d.id)
        .map(|t| t.id.as_str());
    let mut pages = page(ctx, pb, incident, d, 0, Some(&leads), first, now);
    let prefix = format!("[the page to {dead_name} died] ");
    for p in &mut pages {
        p.content.subject = p.content.subject.take().map(|s| format!("{prefix}{s}"));
        p.content.text = format!("{prefix}{}", p.content.text);
    }
    let events = crate::engine::paging::enqueue_pages(tx, ctx, &pages, now).await?;
    let paged = leads.iter().map(|m| m.name.clone()).collect();
    Ok((
        "the top level's page died: paged the department's lead".to_string(),
        paged,
        events,
    ))
}

pub(super) async fn overdue(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    incident: &Incident,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let key = payload["task"].as_str().unwrap_or_default();
    if !incident.status.is_open() {
        return Ok(Vec::new());
    }
    let Some(task) = tx.task_by_key(incident.id, key).await? else {
        return Ok(Vec::new());
    };
    if task.is_closed() {
        return Ok(Vec::new());
    }
    let Some(dept) = ctx.department(&task.department) else {
        return Ok(Vec::new());
    };
    let pb = playbook_of(tx, ctx, incident).await?;
    let leads = dept.leads();
    let mut pages = page(
        ctx,
        pb,
        incident,
        dept,
        0,
        Some(&leads),
        Some(&task.key),
        now,
    );
    for p in &mut pages {
        p.idempotency_key = format!("overdue:{}:{}:{}", p.idempotency_key, task.key, p.channel);
        let prefix = format!("[overdue: {}] ", task.title);
        p.content.subject = p.content.subject.take().map(|s| format!("{prefix}{s}"));
        p.content.text = format!("{prefix}{}", p.content.text);
    }
    let mut events = crate::engine::paging::enqueue_pages(tx, ctx, &pages, now).await?;
    events.push(NewEvent::new(
        now,
        "incidentd",
        "task.overdue",
        Some(incident.id),
        &json!({
            "task": task.key,
            "title": task.title,
            "department": task.department,
            "due_at": task.due_at.map(from_micros),
            "paged": leads.iter().map(|m| &m.name).collect::<Vec<_>>(),
        }),
    ));
    Ok(events)
}
