//! Drills: a scenario started by hand or by its schedule runs the real path on a drill incident.
//!
//! Starting a drill is one transaction: the drill incident is declared (`drill = true`, its
//! title marked 【演练】DRILL), its allow-list is written (the participants' addresses, the
//! capture recipients and the owner: the dispatcher's drill guard refuses everything else),
//! the drill row is recorded, each scripted inject and the end are scheduled as persisted timers
//! (so a restart continues the drill), and — in functional mode — synthetic affected people
//! whose contacts are the capture recipients are written through the subjects store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::warn;

use super::EngineError;
use super::commands::{Declaration, declare_in, recompute_in};
use crate::config::DepartmentConfig;
use crate::domain::classify::Rules;
use crate::domain::drill::{Inject, Mode, Scenario, Scenarios};
use crate::domain::incident::Status;
use crate::domain::message::{ChannelKind, Content, Purpose, validate_recipient};
use crate::domain::records::Incident;
use crate::domain::time::to_micros;
use crate::store::{DrillRow, DueTimer, NewDelivery, NewDrill, NewEvent, NewTimer, WriteTx};
use crate::subjects::ValidSubject;
use crate::subjects::crypto::KeyRing;

pub const TIMER_INJECT: &str = "drill.inject";
pub const TIMER_END: &str = "drill.end";

/// The prefix of drill incidents' titles and of every drill message's subject and first line.
pub const DRILL_MARK: &str = "【演练】DRILL";

/// What starting and running drills needs from the live configuration.
pub struct DrillCtx<'a> {
    pub scenarios: &'a Scenarios,
    pub departments: &'a [DepartmentConfig],
    pub rules: &'a Rules,
    pub regulation: &'a super::obligations::Regulation,
    /// Playbooks are configured: the drill incident gets its playbook applied.
    pub responds: bool,
    /// Contact encryption keys: without them no synthetic subjects can be stored.
    pub keys: Option<&'a KeyRing>,
    pub default_locale: &'a str,
    /// Channels configured (inject messages go by e-mail and SMS when configured).
    pub channels: &'a [ChannelKind],
    /// For the after-action report.
    pub templates: &'a crate::render::Templates,
    pub org: &'a crate::config::OrganisationConfig,
}

/// What the scorecard, the after-action report and report capture need, as the scenario was
/// when the drill started (kept on the drill row).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default)]
    targets: crate::domain::drill::Targets,
    #[serde(default)]
    description: String,
    #[serde(default)]
    objectives: Vec<String>,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    pub capture: crate::domain::drill::Capture,
}

impl Plan {
    fn of(s: &Scenario) -> Plan {
        Plan {
            targets: s.targets.clone(),
            description: s.description.clone(),
            objectives: s.objectives.clone(),
            owner: s.owner.clone(),
            capture: s.capture.clone(),
        }
    }

    pub fn read(row: &DrillRow) -> Plan {
        serde_json::from_str(&row.plan).unwrap_or_default()
    }
}

/// A drill timer's payload: the inject is copied in at the start, so a scenario edited
/// meanwhile does not change a running drill.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InjectPayload {
    drill: i64,
    index: usize,
    inject: Inject,
    participants: Vec<String>,
}

/// Start scenario `name` in `tx`. With a `schedule_key` (a cron tick), a drill already started
/// for that key is returned instead of starting a second one.
pub async fn start(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    name: &str,
    actor: &str,
    schedule_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DrillRow, Vec<NewEvent>), EngineError> {
    let s = ctx.scenarios.get(name).ok_or_else(|| {
        EngineError::NotFound(format!(
            "there is no drill scenario `{name}`; the scenarios are: {} (config/drills/*.toml)",
            ctx.scenarios.names().join(", ")
        ))
    })?;
    if let Some(key) = schedule_key
        && let Some(d) = tx.drill_by_schedule_key(key).await?
    {
        return Ok((d, Vec::new()));
    }
    let inc = declare_in(
        tx,
        declaration(s),
        ctx.rules,
        ctx.regulation,
        ctx.responds,
        actor,
        now,
    )
    .await?;
    let allowed = allow_list(s, ctx.departments);
    tx.allow_drill_recipients(inc.id, &allowed).await?;
    let ends_at = now + chrono::Duration::from_std(s.time_limit.0).unwrap_or_default();
    let mode = mode_str(s.mode);
    let plan = serde_json::to_string(&Plan::of(s)).unwrap_or_default();
    let drill_id = tx
        .insert_drill(&NewDrill {
            scenario: &s.name,
            mode,
            incident_id: inc.id,
            started_at: to_micros(now),
            ends_at: to_micros(ends_at),
            started_by: actor,
            schedule_key,
            plan: &plan,
        })
        .await?;
    tx.schedule_timers(&timers(s, drill_id, inc.id, now, ends_at), to_micros(now))
        .await?;
    let mut events = vec![NewEvent::new(
        now,
        actor,
        "drill.started",
        Some(inc.id),
        &json!({
            "drill": drill_id, "scenario": s.name, "mode": mode, "ends_at": ends_at,
            "schedule_key": schedule_key, "injects": s.injects.len(),
            "allowed_recipients": allowed.len(),
        }),
    )];
    if s.mode == Mode::Functional {
        events.push(synthetic_subjects(tx, ctx, s, inc.id, drill_id, actor, now).await?);
    }
    let row = DrillRow {
        id: drill_id,
        scenario: s.name.clone(),
        mode: mode.to_string(),
        incident_id: inc.id,
        started_at: to_micros(now),
        ends_at: to_micros(ends_at),
        ended_at: None,
        status: "running".into(),
        started_by: actor.to_string(),
        schedule_key: schedule_key.map(str::to_string),
        scorecard: None,
        report: None,
        plan,
    };
    Ok((row, events))
}

pub fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Tabletop => "tabletop",
        Mode::Functional => "functional",
    }
}

fn declaration(s: &Scenario) -> Declaration {
    Declaration {
        title: format!("{DRILL_MARK} {}", s.start.title.trim()),
        summary: format!(
            "{DRILL_MARK}: 本事件为应急预案演练（场景 {}），不涉及真实事件。This incident is a drill (scenario {}) and describes no real incident.\n\n{}",
            s.name, s.name, s.start.summary
        ),
        category: s.start.category,
        severity: s.start.severity,
        facts: s.start.facts.clone(),
        drill: true,
        discovered_at: None,
        aware_at: None,
    }
}

/// Who the drill may reach: every participant department's members (e-mail; phone for SMS
/// and voice), the capture recipients and the owner. Addresses that do not validate are left
/// out (the guard then refuses them).
pub fn allow_list(s: &Scenario, departments: &[DepartmentConfig]) -> Vec<(ChannelKind, String)> {
    let mut raw: Vec<(ChannelKind, &str)> = vec![(ChannelKind::Email, s.owner.as_str())];
    for d in departments
        .iter()
        .filter(|d| s.participants.departments.contains(&d.id))
    {
        for m in &d.members {
            if let Some(e) = &m.email {
                raw.push((ChannelKind::Email, e));
            }
            if let Some(p) = &m.phone {
                raw.push((ChannelKind::Sms, p));
                raw.push((ChannelKind::Voice, p));
            }
        }
    }
    let c = &s.capture;
    raw.extend(c.email.iter().map(|e| (ChannelKind::Email, e.as_str())));
    for p in &c.phone {
        raw.push((ChannelKind::Sms, p));
        raw.push((ChannelKind::Voice, p));
    }
    for u in &c.site_users {
        raw.push((ChannelKind::Inbox, u));
        raw.push((ChannelKind::SiteWebhook, u));
    }
    raw.extend(c.webhook.iter().map(|w| (ChannelKind::Webhook, w.as_str())));
    let mut out: Vec<(ChannelKind, String)> = raw
        .into_iter()
        .filter_map(|(k, r)| validate_recipient(k, r).ok().map(|r| (k, r)))
        .collect();
    out.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    out.dedup();
    out
}

fn timers(
    s: &Scenario,
    drill_id: i64,
    incident_id: i64,
    now: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Vec<NewTimer> {
    let mut out: Vec<NewTimer> = s
        .injects
        .iter()
        .enumerate()
        .map(|(index, inj)| NewTimer {
            key: format!("drill:{drill_id}:inject:{index}"),
            kind: TIMER_INJECT.to_string(),
            incident_id: Some(incident_id),
            due_at: to_micros(now + chrono::Duration::from_std(inj.after.0).unwrap_or_default()),
            payload: serde_json::to_value(InjectPayload {
                drill: drill_id,
                index,
                inject: inj.clone(),
                participants: s.participants.departments.clone(),
            })
            .unwrap_or_default(),
        })
        .collect();
    out.push(NewTimer {
        key: format!("drill:{drill_id}:end"),
        kind: TIMER_END.to_string(),
        incident_id: Some(incident_id),
        due_at: to_micros(ends_at),
        payload: json!({ "drill": drill_id }),
    });
    out
}

/// Generated affected people for a functional drill: their only contacts are the capture
/// recipients, so the notice campaign reaches nobody real.
async fn synthetic_subjects(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    s: &Scenario,
    incident_id: i64,
    drill_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<NewEvent, EngineError> {
    let Some(keys) = ctx.keys else {
        return Ok(NewEvent::new(
            now,
            actor,
            "drill.subjects_skipped",
            Some(incident_id),
            &json!({ "drill": drill_id, "why": "no [subjects] key is configured: synthetic subjects cannot be stored, so no notices are sent in this drill" }),
        ));
    };
    let pick = |list: &[String], i: usize| -> Option<String> {
        (!list.is_empty()).then(|| list[i % list.len()].clone())
    };
    let c = &s.capture;
    let rows: Vec<_> = (0..s.synthetic_subjects as usize)
        .map(|i| {
            let phone = pick(&c.phone, i);
            let email = pick(&c.email, i);
            let site_user_id = pick(&c.site_users, i);
            let mut channels = Vec::new();
            if site_user_id.is_some() {
                channels.push(ChannelKind::Inbox);
            }
            if phone.is_some() {
                channels.push(ChannelKind::Sms);
            }
            if email.is_some() {
                channels.push(ChannelKind::Email);
            }
            let v = ValidSubject {
                subject_id: format!("drill-{drill_id}-{}", i + 1),
                name: Some(format!("演练用户 Drill subject {}", i + 1)),
                phone,
                email,
                site_user_id,
                locale: ctx.default_locale.to_string(),
                channels,
                jurisdiction: None,
                warnings: Vec::new(),
            };
            crate::subjects::seal(keys, incident_id, &v)
        })
        .collect();
    let at = to_micros(now);
    let import_id = tx
        .create_import(incident_id, actor, "synthetic", at)
        .await?;
    let written = tx
        .upsert_subjects(incident_id, import_id, &rows, at)
        .await?;
    let report = json!({
        "import_id": import_id, "incident_id": incident_id, "format": "synthetic",
        "status": "done", "rows": rows.len(), "accepted": written.len(),
        "inserted": written.len(), "synthetic": true,
    });
    tx.finish_import(import_id, "done", &report.to_string(), at)
        .await?;
    Ok(NewEvent::new(
        now,
        actor,
        "subjects.imported",
        Some(incident_id),
        &json!({ "drill": drill_id, "synthetic": true, "import_id": import_id, "accepted": written.len() }),
    ))
}

/// Fire due drill timers (injects, ends); scheduled drills start from their cron tick
/// (`crate::engine::cron`).
pub async fn fire(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    timers: &[DueTimer],
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    let mut events = Vec::new();
    for t in timers {
        let Some(incident_id) = t.incident_id else {
            continue;
        };
        let Some(drill) = tx.drill_of_incident(incident_id).await? else {
            warn!(key = %t.key, "drill timer without its drill; dropped");
            continue;
        };
        if drill.status != "running" {
            continue;
        }
        match t.kind.as_str() {
            TIMER_INJECT => match t.payload::<InjectPayload>() {
                Ok(p) => events.extend(inject(tx, ctx, incident_id, &p, now).await?),
                Err(e) => warn!(error = %e, key = %t.key, "unreadable drill inject; dropped"),
            },
            TIMER_END => {
                let why = if t.key.ends_with(":tasks") {
                    "every task is done"
                } else {
                    "time limit reached"
                };
                events.extend(end(tx, ctx, &drill, why, now).await?)
            }
            other => warn!(kind = other, key = %t.key, "unknown drill timer kind; dropped"),
        }
    }
    tx.append(&events).await?;
    Ok(())
}

/// End a running drill: score it against its targets, write the after-action report (e-mailed
/// to the owner, action items as tasks), and keep both on the drill row. Returns the audit
/// events (none if it had ended already).
async fn end(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    drill: &DrillRow,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let p = Plan::read(drill);
    match scored(tx, ctx, drill, &p, why, now).await {
        Err(EngineError::Unavailable(m)) => Err(EngineError::Unavailable(m)),
        Err(e) => {
            // A drill that cannot be scored still ends: its time is up either way.
            warn!(error = %e, drill = drill.id, "drill ended without a scorecard");
            if !tx.end_drill(drill.id, to_micros(now), None, None).await? {
                return Ok(Vec::new());
            }
            let mut events = vec![NewEvent::new(
                now,
                "incidentd",
                "drill.ended",
                Some(drill.incident_id),
                &json!({ "drill": drill.id, "scenario": drill.scenario, "why": why,
                         "scorecard_error": e.to_string() }),
            )];
            events.extend(close_incident(tx, ctx, drill, why, now).await?);
            Ok(events)
        }
        ok => ok,
    }
}

async fn scored(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    drill: &DrillRow,
    p: &Plan,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let started = crate::domain::time::from_micros(drill.started_at);
    let card = super::scorecard::scorecard(tx, drill.incident_id, &p.targets, started, now).await?;
    let Some(inc) = tx.incident(drill.incident_id).await? else {
        return Ok(Vec::new());
    };
    let info = super::scorecard::ScenarioInfo {
        name: drill.scenario.clone(),
        description: p.description.clone(),
        mode: if drill.mode == "functional" {
            Mode::Functional
        } else {
            Mode::Tabletop
        },
        objectives: p.objectives.clone(),
        owner_email: p.owner.clone(),
        locale: ctx.default_locale.to_string(),
    };
    let actx = super::scorecard::AfterActionCtx {
        templates: ctx.templates,
        org: ctx.org,
        channels: ctx.channels,
    };
    let mut events = super::scorecard::after_action(tx, &actx, &inc, &info, &card, now).await?;
    let report: serde_json::Value = events
        .iter()
        .find(|e| e.kind == "drill.after_action")
        .and_then(|e| serde_json::from_str(&e.data).ok())
        .unwrap_or_default();
    let card_json = serde_json::to_string(&card).unwrap_or_default();
    if !tx
        .end_drill(
            drill.id,
            to_micros(now),
            Some(&card_json),
            Some(&report.to_string()),
        )
        .await?
    {
        return Ok(Vec::new());
    }
    events.push(NewEvent::new(
        now,
        "incidentd",
        "drill.ended",
        Some(drill.incident_id),
        &json!({ "drill": drill.id, "scenario": drill.scenario, "why": why,
                 "met": card.met, "missed": card.missed }),
    ));
    events.extend(close_incident(tx, ctx, drill, why, now).await?);
    Ok(events)
}

/// The reason a drill's open tasks are cancelled with when it ends.
pub const DRILL_ENDED: &str = "drill ended";

/// Close an ended drill's incident, whatever its status (a drill does not run the lifecycle to
/// its end): its open tasks are cancelled with the reason [`DRILL_ENDED`] — the scorecard has
/// already counted them as missed — and the incident moves to `closed`. The after-action
/// report's action items (`aar-<n>`) stay open: they are the follow-up, and stay workable on
/// the closed drill incident ([`action_item_workable`]). An incident people closed already is
/// left as it is.
async fn close_incident(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    drill: &DrillRow,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let Some(mut inc) = tx.incident(drill.incident_id).await? else {
        return Ok(Vec::new());
    };
    if !inc.status.is_open() {
        return Ok(Vec::new());
    }
    let cancelled = cancel_open_tasks(tx, inc.id, now).await?;
    let from = inc.status;
    inc.status = Status::Closed;
    inc.closed_at = Some(now);
    inc.handling_closed_at.get_or_insert(now);
    inc.updated_at = now;
    tx.update_incident(&inc).await?;
    let mut events = vec![NewEvent::new(
        now,
        "incidentd",
        "incident.transitioned",
        Some(inc.id),
        &json!({ "from": from, "to": Status::Closed,
                 "note": format!("{DRILL_ENDED} ({why})"),
                 "drill": drill.id, "tasks_cancelled": cancelled }),
    )];
    events.extend(recompute_in(tx, ctx.regulation, &mut inc, now).await?);
    Ok(events)
}

/// Cancel the drill incident's open tasks (not its action items); returns their keys.
async fn cancel_open_tasks(
    tx: &mut WriteTx,
    incident_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<String>, EngineError> {
    let mut keys = Vec::new();
    for mut t in tx.tasks_of(incident_id).await? {
        if t.is_closed() || t.key.starts_with(super::scorecard::ACTION_ITEM_PREFIX) {
            continue;
        }
        t.status = "cancelled".into();
        t.closed_by = Some("incidentd".into());
        t.closed_at = Some(to_micros(now));
        t.note = Some(DRILL_ENDED.into());
        t.updated_at = to_micros(now);
        tx.update_task(&t).await?;
        keys.push(t.key);
    }
    Ok(keys)
}

/// Whether task `key` of `inc` may still be worked although the incident is closed: the
/// action items of an ended drill, which outlive the drill they came from.
pub fn action_item_workable(inc: &Incident, key: &str) -> bool {
    inc.drill
        && inc.status == Status::Closed
        && key.starts_with(super::scorecard::ACTION_ITEM_PREFIX)
}

async fn inject(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    incident_id: i64,
    p: &InjectPayload,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let Some(mut inc) = tx.incident(incident_id).await? else {
        return Ok(Vec::new());
    };
    let mut events = vec![NewEvent::new(
        now,
        "drill",
        "drill.inject",
        Some(incident_id),
        &json!({ "drill": p.drill, "index": p.index, "after": p.inject.after.to_string(),
                 "message": p.inject.message, "facts": p.inject.facts, "transition": p.inject.transition }),
    )];
    if let Some(f) = &p.inject.facts {
        let patch = serde_json::to_value(f).unwrap_or_default();
        events.extend(patch_facts(tx, ctx, &mut inc, &patch, now).await?);
    }
    if let Some(to) = p.inject.transition {
        events.extend(move_to(tx, ctx, &mut inc, to, now).await?);
    }
    if let Some(m) = &p.inject.message {
        let out = messages(ctx, &inc, p, m);
        tx.enqueue_deliveries(&out, to_micros(now)).await?;
    }
    Ok(events)
}

/// After a task of a drill incident closes: when every task is closed, the drill ends now
/// (through its timer, so the scorecard runs where the scheduler's live configuration is).
pub async fn end_if_done(
    tx: &mut WriteTx,
    incident_id: i64,
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    let Some(drill) = tx.drill_of_incident(incident_id).await? else {
        return Ok(());
    };
    if drill.status != "running" {
        return Ok(());
    }
    let tasks = tx.tasks_of(incident_id).await?;
    if tasks.is_empty() || !tasks.iter().all(|t| t.is_closed()) {
        return Ok(());
    }
    let t = NewTimer {
        key: format!("drill:{}:end:tasks", drill.id),
        kind: TIMER_END.to_string(),
        incident_id: Some(incident_id),
        due_at: to_micros(now),
        payload: json!({ "drill": drill.id }),
    };
    tx.schedule_timers(&[t], to_micros(now)).await?;
    Ok(())
}

/// Where a scenario drill's regulator report goes instead of the regulator: its first capture
/// e-mail or webhook (`Some(None)`: the scenario captures nothing on that channel). `None`: not
/// a scenario drill.
pub async fn report_capture(
    tx: &mut WriteTx,
    incident_id: i64,
    channel: ChannelKind,
) -> Result<Option<Option<String>>, EngineError> {
    let Some(drill) = tx.drill_of_incident(incident_id).await? else {
        return Ok(None);
    };
    let c = Plan::read(&drill).capture;
    Ok(Some(match channel {
        ChannelKind::Email => c.email.first().cloned(),
        ChannelKind::Webhook => c.webhook.first().cloned(),
        _ => None,
    }))
}

/// A facts patch from the script, as a person's `PATCH …/facts` would apply it.
async fn patch_facts(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    inc: &mut Incident,
    patch: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let facts = match inc.facts.apply_patch(patch) {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, incident.id = inc.id, "drill inject's facts do not apply; skipped");
            return Ok(Vec::new());
        }
    };
    if facts == inc.facts {
        return Ok(Vec::new());
    }
    inc.facts = facts;
    inc.facts_version += 1;
    inc.updated_at = now;
    let mut events = vec![NewEvent::new(
        now,
        "drill",
        "incident.facts_updated",
        Some(inc.id),
        &json!({ "version": inc.facts_version, "patch": patch, "facts": inc.facts, "source": "drill" }),
    )];
    if let Some(c) = super::classify_incident(ctx.rules, inc)
        && let Some(r) = super::reclassify(inc, (c.category, c.severity), Some(&c.rule), now)
    {
        events.push(super::ingest::reclassified_event(
            inc.id,
            &r,
            "incidentd",
            None,
            now,
        ));
        if ctx.responds {
            tx.schedule_timers(&[super::response::playbook_timer(inc, now)], to_micros(now))
                .await?;
        }
    }
    tx.update_incident(inc).await?;
    events.extend(recompute_in(tx, ctx.regulation, inc, now).await?);
    Ok(events)
}

/// A scripted status change, when the incident may make it now (people may have moved it on).
async fn move_to(
    tx: &mut WriteTx,
    ctx: &DrillCtx<'_>,
    inc: &mut Incident,
    to: Status,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let from = inc.status;
    if from.check_transition(to).is_err() {
        return Ok(Vec::new());
    }
    inc.status = to;
    inc.updated_at = now;
    if to == Status::Contained {
        inc.contained_at.get_or_insert(now);
    }
    tx.update_incident(inc).await?;
    let mut events = vec![NewEvent::new(
        now,
        "drill",
        "incident.transitioned",
        Some(inc.id),
        &json!({ "from": from, "to": to, "note": "drill inject" }),
    )];
    events.extend(recompute_in(tx, ctx.regulation, inc, now).await?);
    Ok(events)
}

/// The inject's message to every participant member, by e-mail and SMS (when configured).
fn messages(ctx: &DrillCtx<'_>, inc: &Incident, p: &InjectPayload, m: &str) -> Vec<NewDelivery> {
    let subject = format!("{DRILL_MARK} #{} {}", inc.id, inject_headline(m));
    let text = format!(
        "{DRILL_MARK} — 演练注入 / drill inject {}\n{}\n\n{m}",
        p.index + 1,
        inc.title
    );
    let mut out = Vec::new();
    for d in ctx
        .departments
        .iter()
        .filter(|d| p.participants.contains(&d.id))
    {
        for (i, member) in d.members.iter().enumerate() {
            let locale = member
                .locale
                .clone()
                .unwrap_or_else(|| ctx.default_locale.to_string());
            let mut to = Vec::new();
            if ctx.channels.contains(&ChannelKind::Email)
                && let Some(e) = &member.email
            {
                to.push((ChannelKind::Email, e.clone()));
            }
            if ctx.channels.contains(&ChannelKind::Sms)
                && let Some(ph) = &member.phone
            {
                to.push((ChannelKind::Sms, ph.clone()));
            }
            for (channel, recipient) in to {
                out.push(NewDelivery {
                    idempotency_key: format!(
                        "drill:{}:inject:{}:{}:{}:{channel}",
                        p.drill,
                        p.index,
                        d.id,
                        d.member_id(i)
                    ),
                    incident_id: Some(inc.id),
                    purpose: Purpose::Drill,
                    channel,
                    recipient,
                    locale: locale.clone(),
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
    }
    out
}

/// The most of an inject's first line a subject carries.
const HEADLINE_MAX: usize = 200;

/// The inject's first line, whole. Only a line longer than [`HEADLINE_MAX`] is shortened,
/// marked `…`, and never inside a word or a figure ("rises to 1.2 million" never becomes
/// "rises to 1"); the message body always carries the whole text.
fn inject_headline(m: &str) -> String {
    let first = m
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let chars: Vec<char> = first.chars().collect();
    if chars.len() <= HEADLINE_MAX {
        return first.to_string();
    }
    let joined = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '%' | '-');
    let mut end = HEADLINE_MAX;
    while end > HEADLINE_MAX / 2 && joined(chars[end - 1]) && joined(chars[end]) {
        end -= 1;
    }
    let head: String = chars[..end].iter().collect();
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests;
