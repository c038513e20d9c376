//! Heartbeats in the engine: signals recorded (from the ingest writer, or a ping), the check
//! timer, and what a late heartbeat does.
//!
//! * Every configured heartbeat has a row and, unless it is late, a pending `heartbeat.check`
//!   timer keyed by its due time (`heartbeat:<name>:<due µs>`): due when the heartbeat would be
//!   late — its last signal (or when watching began) plus interval plus grace. [`arm`] makes
//!   sure of both at start-up and after a reload; it is idempotent.
//! * A signal only updates the row (one upsert per heartbeat per batch). When the check fires and
//!   the heartbeat was heard from meanwhile, the check schedules the next one.
//! * When the check finds it late, an incident (origin `heartbeat`) says which source went
//!   silent since when, with a `heartbeat.late` event, and the team is paged through the
//!   normal playbook path (so escalation works). If the incident of its last lateness is still
//!   open, that one gets the new `heartbeat.late` event instead.
//! * A signal while late records `heartbeat.recovered` on that incident (which stays open for a
//!   person to close) and arms the check again.
//! * Watching restarts when the daemon starts: a source is not late for what it sent while
//!   incidentd was down.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use super::EngineError;
use super::ingest::PreparedAlert;
use crate::domain::duration::{HumanDuration, humanize};
use crate::domain::heartbeat::{Heartbeat, Heartbeats};
use crate::domain::incident::Category;
use crate::domain::records::Incident;
use crate::domain::time::{from_micros, to_micros};
use crate::store::{DueTimer, HeartbeatRow, NewEvent, NewTimer, Store, StoreError, Table, WriteTx};

pub const TIMER_CHECK: &str = "heartbeat.check";

#[derive(Debug, Serialize, Deserialize)]
struct CheckPayload {
    heartbeat: String,
}

fn check_timer(name: &str, due: DateTime<Utc>) -> NewTimer {
    NewTimer {
        key: format!("heartbeat:{name}:{}", to_micros(due)),
        kind: TIMER_CHECK.to_string(),
        incident_id: None,
        due_at: to_micros(due),
        payload: json!({ "heartbeat": name }),
    }
}

/// What firing heartbeat checks needs, from the live configuration.
pub struct HeartbeatCtx<'a> {
    pub heartbeats: &'a Heartbeats,
    /// Playbooks are configured: a new incident gets its playbook timer (the team is paged).
    pub respond: bool,
    /// Jurisdiction packs are loaded: a new incident gets its obligations assessed.
    pub regulate: bool,
}

/// Give every configured heartbeat its row and a pending check (idempotent). With `restart`
/// (the daemon is starting) watching restarts now for all of them.
pub async fn arm(
    store: &Store,
    heartbeats: &Heartbeats,
    now: DateTime<Utc>,
    restart: bool,
) -> Result<(), EngineError> {
    if heartbeats.is_empty() {
        return Ok(());
    }
    let now_us = to_micros(now);
    let mut tx = store.begin_write().await?;
    tx.ensure_heartbeats(&heartbeats.names(), now_us, restart)
        .await?;
    let mut timers = Vec::new();
    for b in heartbeats.all() {
        let Some(row) = tx.heartbeat(&b.name).await? else {
            continue;
        };
        if row.late_since.is_none() {
            timers.push(check_timer(
                &b.name,
                b.deadline(from_micros(row.watched_since())),
            ));
        }
    }
    tx.schedule_timers(&timers, now_us).await?;
    tx.commit().await?;
    info!(heartbeats = heartbeats.all().len(), "heartbeats armed");
    Ok(())
}

/// The ingest writer's hook: record a signal for every heartbeat that these alerts keep alive
/// (each heartbeat once per batch). Returns the audit events (recoveries) to append.
pub(super) async fn signalled<'a>(
    tx: &mut WriteTx,
    alerts: impl Iterator<Item = &'a PreparedAlert>,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, StoreError> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut signals: Vec<(&Heartbeat, String)> = Vec::new();
    for a in alerts {
        for b in &a.heartbeats {
            if seen.insert(&b.name) {
                signals.push((b, format!("alert:{}", a.row.source)));
            }
        }
    }
    if signals.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<(&Heartbeat, &str)> = signals.iter().map(|(b, v)| (*b, v.as_str())).collect();
    signal(tx, &refs, now).await
}

/// Record signals: the last-seen time of each heartbeat; one that was late has recovered
/// (`heartbeat.recovered` on its incident) and its check is armed again.
pub(crate) async fn signal(
    tx: &mut WriteTx,
    signals: &[(&Heartbeat, &str)],
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, StoreError> {
    let now_us = to_micros(now);
    let mut events = Vec::new();
    let mut timers = Vec::new();
    for (b, via) in signals {
        let Some(was) = tx.heartbeat_seen(&b.name, via, now_us).await? else {
            continue;
        };
        let silent_for = (now - from_micros(was.late_since))
            .to_std()
            .unwrap_or_default();
        events.push(NewEvent::new(
            now,
            "incidentd",
            "heartbeat.recovered",
            was.incident_id,
            &json!({
                "heartbeat": b.name,
                "via": via,
                "silent_since": from_micros(was.late_since),
                "late_at": was.late_at.map(from_micros),
                "silent_for": humanize(silent_for),
            }),
        ));
        info!(heartbeat = %b.name, via, silent_for = %humanize(silent_for), "heartbeat recovered");
        timers.push(check_timer(&b.name, b.deadline(now)));
    }
    tx.schedule_timers(&timers, now_us).await?;
    Ok(events)
}

/// A ping (`POST /api/v1/heartbeats/{name}`), in its own transaction; returns the row after.
pub async fn ping(
    store: &Store,
    b: &Heartbeat,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<HeartbeatRow, EngineError> {
    let via = format!("ping:{actor}");
    let mut tx = store.begin_write().await?;
    let events = signal(&mut tx, &[(b, via.as_str())], now).await?;
    tx.append(&events).await?;
    let row = tx.heartbeat(&b.name).await?;
    tx.commit().await?;
    row.ok_or_else(|| EngineError::Failed(format!("heartbeat {} has no row", b.name)))
}

/// Fire `heartbeat.check` timers: reschedule the fresh, act on the late.
pub async fn fire(
    tx: &mut WriteTx,
    ctx: &HeartbeatCtx<'_>,
    due: &[DueTimer],
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    let mut events = Vec::new();
    let mut timers = Vec::new();
    for t in due {
        let p: CheckPayload = match t.payload() {
            Ok(p) => p,
            Err(e) => {
                warn!(key = %t.key, error = %e, "unreadable heartbeat check; dropped");
                continue;
            }
        };
        let Some(b) = ctx.heartbeats.get(&p.heartbeat) else {
            info!(heartbeat = %p.heartbeat, "heartbeat no longer configured; its check is dropped");
            continue;
        };
        let row = match tx.heartbeat(&b.name).await? {
            Some(r) => r,
            None => {
                tx.ensure_heartbeats(&[&b.name], to_micros(now), false)
                    .await?;
                let Some(r) = tx.heartbeat(&b.name).await? else {
                    continue;
                };
                r
            }
        };
        if row.late_since.is_some() {
            // Already late: the next signal arms the check again.
            continue;
        }
        let deadline = b.deadline(from_micros(row.watched_since()));
        if now < deadline {
            timers.push(check_timer(&b.name, deadline));
            continue;
        }
        late(tx, ctx, b, &row, deadline, now, &mut events, &mut timers).await?;
    }
    tx.schedule_timers(&timers, to_micros(now)).await?;
    tx.append(&events).await?;
    Ok(())
}

/// A heartbeat found late: its incident (new, or the still-open one of its last lateness),
/// the `heartbeat.late` event, the team paged.
#[allow(clippy::too_many_arguments)]
async fn late(
    tx: &mut WriteTx,
    ctx: &HeartbeatCtx<'_>,
    b: &Heartbeat,
    row: &HeartbeatRow,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
    events: &mut Vec<NewEvent>,
    timers: &mut Vec<NewTimer>,
) -> Result<(), EngineError> {
    let silent_since = from_micros(row.last_seen_at.unwrap_or(row.created_at));
    let last_seen = row
        .last_seen_at
        .map(|t| (from_micros(t), row.last_via.as_deref().unwrap_or("?")));
    let still_open = match row.incident_id {
        Some(id) => tx.incident(id).await?.filter(|i| i.status.is_open()),
        None => None,
    };
    let (incident_id, opened) = match still_open {
        Some(inc) => (inc.id, false),
        None => {
            let mut inc = incident(b, silent_since, last_seen, now);
            inc.id = tx.max_id(Table::Incidents).await? + 1;
            tx.insert_incidents(std::slice::from_ref(&inc)).await?;
            events.push(NewEvent::new(
                now,
                "incidentd",
                "incident.opened",
                Some(inc.id),
                &json!({
                    "title": inc.title, "category": inc.category, "severity": inc.severity,
                    "status": inc.status, "rule": inc.rule, "origin": inc.origin, "drill": false,
                    "facts": inc.facts, "heartbeat": b.name,
                }),
            ));
            if ctx.respond {
                timers.push(super::response::playbook_timer(&inc, now));
            }
            if ctx.regulate {
                timers.push(super::obligations::recompute_timer(inc.id, now));
            }
            (inc.id, true)
        }
    };
    events.push(NewEvent::new(
        now,
        "incidentd",
        "heartbeat.late",
        Some(incident_id),
        &json!({
            "heartbeat": b.name,
            "description": b.description,
            "silent_since": silent_since,
            "last_seen_at": row.last_seen_at.map(from_micros),
            "last_via": row.last_via,
            "interval": HumanDuration(b.interval).to_string(),
            "grace": HumanDuration(b.grace).to_string(),
            "expected_by": deadline,
            "incident_opened": opened,
        }),
    ));
    tx.heartbeat_late(
        &b.name,
        to_micros(silent_since),
        incident_id,
        to_micros(now),
    )
    .await?;
    warn!(heartbeat = %b.name, incident = incident_id, silent_since = %silent_since, "heartbeat late");
    Ok(())
}

fn incident(
    b: &Heartbeat,
    silent_since: DateTime<Utc>,
    last_seen: Option<(DateTime<Utc>, &str)>,
    now: DateTime<Utc>,
) -> Incident {
    Incident {
        summary: b.late_summary(last_seen, now),
        ..Incident::opening(
            b.late_title(silent_since, last_seen.is_some()),
            Category::Other,
            b.severity,
            "heartbeat",
            "incidentd",
            now,
        )
    }
}

/// Mark which heartbeats each prepared alert keeps alive (the API does this before queueing).
pub fn mark(heartbeats: &Heartbeats, alerts: &mut [PreparedAlert]) {
    if heartbeats.is_empty() {
        return;
    }
    for a in alerts {
        a.heartbeats = heartbeats.signalled_by(&a.row.source, a.status, &a.labels);
    }
}

/// A heartbeat as the API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeartbeatView {
    pub name: String,
    pub description: String,
    /// How often the signal is expected, and how much later it may come.
    pub interval: String,
    pub grace: String,
    /// Of the incident a late heartbeat opens.
    pub severity: crate::domain::incident::Severity,
    /// The alerts that count as the signal (pings always do).
    #[schema(value_type = Option<Object>)]
    pub alert: Option<serde_json::Value>,
    /// `ok`, `late` or `never` (not heard from yet, not late yet).
    pub state: String,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// `alert:<source>` or `ping:<who>`.
    pub last_via: Option<String>,
    /// When it is late unless a signal comes first.
    pub next_due: DateTime<Utc>,
    /// While late: silent since.
    pub late_since: Option<DateTime<Utc>>,
    /// The incident of its latest lateness.
    pub incident_id: Option<i64>,
}

/// The view of one heartbeat from its row (a missing row: watched from `now`).
pub fn view(b: &Arc<Heartbeat>, row: Option<&HeartbeatRow>, now: DateTime<Utc>) -> HeartbeatView {
    let watched = row.map_or(to_micros(now), HeartbeatRow::watched_since);
    let next_due = b.deadline(from_micros(watched));
    let late_since = row.and_then(|r| r.late_since).map(from_micros);
    let last_seen_at = row.and_then(|r| r.last_seen_at).map(from_micros);
    let state = if late_since.is_some() || now >= next_due {
        "late"
    } else if last_seen_at.is_none() {
        "never"
    } else {
        "ok"
    };
    HeartbeatView {
        name: b.name.clone(),
        description: b.description.clone(),
        interval: HumanDuration(b.interval).to_string(),
        grace: HumanDuration(b.grace).to_string(),
        severity: b.severity,
        alert: b
            .alert_spec
            .as_ref()
            .and_then(|a| serde_json::to_value(a).ok()),
        state: state.into(),
        last_seen_at,
        last_via: row.and_then(|r| r.last_via.clone()),
        next_due,
        late_since,
        incident_id: row.and_then(|r| r.incident_id),
    }
}

/// Every configured heartbeat with its state, as configured order.
pub async fn list(
    store: &Store,
    heartbeats: &Heartbeats,
    now: DateTime<Utc>,
) -> Result<Vec<HeartbeatView>, EngineError> {
    if heartbeats.is_empty() {
        return Ok(Vec::new());
    }
    let rows = store.heartbeats().await?;
    Ok(heartbeats
        .all()
        .iter()
        .map(|b| view(b, rows.iter().find(|r| r.name == b.name), now))
        .collect())
}
