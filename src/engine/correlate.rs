//! What people do when the intake's correlation was wrong: move an alert to another incident,
//! promote a recorded alert to an incident of its own, merge two incidents. Each runs in one
//! write transaction with its audit events, and keeps the incidents' alert counts, group keys
//! and per-alert states consistent with what the writer would have built.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::commands::recompute_in;
use super::ingest::reclassified_event;
use super::{Engine, EngineError, reclassify};
use crate::domain::alert::{AlertStatus, alert_key};
use crate::domain::incident::{Category, Severity, Status};
use crate::domain::records::{AlertRecord, Incident};
use crate::domain::time::to_micros;
use crate::store::{HeldAlert, IncidentAlertRow, NewEvent, Table, WriteTx};

/// Move an alert (every notification of it in its incident) to another incident.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAlert {
    /// The incident it belongs to.
    pub incident: i64,
    pub reason: String,
}

/// Open an incident for a recorded alert (one that opened or joined none).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// Defaults to the alert's title.
    #[serde(default)]
    pub title: Option<String>,
    /// Defaults to the alert's classification, else `unclassified`.
    #[serde(default)]
    pub category: Option<Category>,
    /// Defaults to the alert's classification, else the sender's severity, else S3. PI
    /// categories are always S1.
    #[serde(default)]
    pub severity: Option<Severity>,
    pub reason: String,
}

/// Merge an incident into another, which carries on with both.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// The surviving incident.
    pub into: i64,
    pub reason: String,
}

/// What a move did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Moved {
    /// The incident the alert was in (`null`: it was recorded, in none).
    pub from: Option<i64>,
    pub to: i64,
    /// The notifications (alert rows) that moved.
    pub alerts: Vec<i64>,
}

fn reason(r: &str) -> Result<String, EngineError> {
    let r = r.trim();
    if r.is_empty() {
        return Err(EngineError::invalid(
            "reason",
            "say why; the audit trail keeps it",
        ));
    }
    Ok(r.to_string())
}

fn no_alert(id: i64) -> EngineError {
    EngineError::NotFound(format!("there is no alert {id}"))
}

fn no_incident(id: i64) -> EngineError {
    EngineError::NotFound(format!("there is no incident {id}"))
}

/// An incident alerts can be put into: it exists, is open and is not a drill.
async fn open_target(tx: &mut WriteTx, id: i64, path: &str) -> Result<Incident, EngineError> {
    let inc = tx.incident(id).await?.ok_or_else(|| no_incident(id))?;
    if let Some(survivor) = inc.merged_into {
        return Err(EngineError::Conflict(format!(
            "incident {id} was merged into incident {survivor}; use {survivor}"
        )));
    }
    if !inc.status.is_open() {
        return Err(EngineError::Conflict(format!(
            "incident {id} is `{}`; reopen it first ({path})",
            inc.status
        )));
    }
    if inc.drill {
        return Err(EngineError::Conflict(format!(
            "incident {id} is a drill; real alerts and incidents never go into a drill ({path})"
        )));
    }
    Ok(inc)
}

/// Put an alert's state into `inc` (moved or promoted there), keeping the newest notification
/// if `inc` already holds the alert, and adjusting its counts. Returns the row to write.
async fn hold<'k>(
    tx: &mut WriteTx,
    inc: &mut Incident,
    key: &'k str,
    state: HeldAlert,
    alert_id: i64,
) -> Result<Option<IncidentAlertRow<'k>>, EngineError> {
    let new = (state.starts_at, state.resolved);
    let count = |inc: &mut Incident, resolved: bool, by: i64| {
        if resolved {
            inc.alerts_resolved = (inc.alerts_resolved + by).max(0);
        } else {
            inc.alerts_firing = (inc.alerts_firing + by).max(0);
        }
    };
    match tx.incident_alert(key, inc.id).await? {
        Some((old, _)) if (old.starts_at, old.resolved) >= new => return Ok(None),
        Some((old, _)) => count(inc, old.resolved, -1),
        None => {}
    }
    count(inc, new.1, 1);
    Ok(Some(IncidentAlertRow {
        alert_key: key,
        incident_id: inc.id,
        resolved: new.1,
        starts_at: new.0,
        alert_id,
    }))
}

/// The raise-only re-classification an alert (or merged incident) brings to `inc`.
fn raise(
    inc: &mut Incident,
    proposed: Option<(Category, Severity)>,
    rule: Option<&str>,
    now: DateTime<Utc>,
) -> Option<super::Reclassified> {
    reclassify(inc, proposed?, rule, now)
}

/// Alerts as an event that puts them in its incident lists them: `{id, hash}` each, which
/// `audit verify` checks against where they are.
fn vouch(rows: &[(i64, String)]) -> serde_json::Value {
    rows.iter()
        .map(|(id, hash)| json!({ "id": id, "hash": hash }))
        .collect()
}

fn ids(rows: &[(i64, String)]) -> Vec<i64> {
    rows.iter().map(|(id, _)| *id).collect()
}

fn event(
    actor: &str,
    kind: &'static str,
    id: i64,
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> NewEvent {
    NewEvent::new(now, actor, kind, Some(id), &data)
}

impl Engine {
    /// After a change of classification or facts in `tx`: the playbook again if the category or
    /// severity moved, and the obligations now.
    async fn follow_up(
        &self,
        tx: &mut WriteTx,
        inc: &mut Incident,
        before: (Category, Severity),
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, EngineError> {
        if self.responds() && (inc.category, inc.severity) != before {
            tx.schedule_timers(&[super::response::playbook_timer(inc, now)], to_micros(now))
                .await?;
        }
        recompute_in(tx, &self.regulation(), inc, now).await
    }

    /// Move alert `id` — with every other notification of the same alert in its incident — to
    /// another incident; later notifications of it join that one. A recorded alert (in no
    /// incident) is attached to it.
    pub async fn move_alert(
        &self,
        id: i64,
        m: MoveAlert,
        actor: &str,
    ) -> Result<Moved, EngineError> {
        let why = reason(&m.reason)?;
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let alert = tx.alert(id).await?.ok_or_else(|| no_alert(id))?;
        if alert.incident_id == Some(m.incident) {
            return Err(EngineError::Conflict(format!(
                "alert {id} is in incident {} already",
                m.incident
            )));
        }
        let mut to = open_target(&mut tx, m.incident, "incident").await?;
        let key = alert_key(&alert.source, &alert.fingerprint);
        let before = (to.category, to.severity);
        let mut events = Vec::new();
        let (moved, state) = match alert.incident_id {
            Some(from_id) => {
                let mut from = tx
                    .incident(from_id)
                    .await?
                    .ok_or_else(|| no_incident(from_id))?;
                let moved = tx.move_alerts(from_id, Some(&key), to.id).await?;
                let state = tx.incident_alert(&key, from_id).await?;
                if let Some((s, _)) = state {
                    tx.delete_incident_alert(&key, from_id).await?;
                    if s.resolved {
                        from.alerts_resolved = (from.alerts_resolved - 1).max(0);
                    } else {
                        from.alerts_firing = (from.alerts_firing - 1).max(0);
                    }
                }
                from.alert_count = (from.alert_count - moved.len() as i64).max(0);
                from.updated_at = now;
                tx.update_incident(&from).await?;
                events.push(event(
                    actor,
                    "alert.moved",
                    from_id,
                    json!({ "moved": ids(&moved), "fingerprint": alert.fingerprint, "source": alert.source,
                            "from": from_id, "to": to.id, "reason": why }),
                    now,
                ));
                (moved, state)
            }
            None => {
                let moved = tx.attach_recorded(&key, to.id).await?;
                (moved, None)
            }
        };
        // The alert's state where it goes: as its old incident had it, or from its own row.
        let (state, newest) = state.unwrap_or((
            HeldAlert {
                incident_id: to.id,
                resolved: alert.status == AlertStatus::Resolved,
                starts_at: to_micros(alert.occurred_at),
            },
            alert.id,
        ));
        let row = hold(&mut tx, &mut to, &key, state, newest).await?;
        tx.upsert_incident_alerts(row.as_slice()).await?;
        to.alert_count += moved.len() as i64;
        to.first_seen_at = to.first_seen_at.min(alert.occurred_at.min(now));
        to.updated_at = now;
        let classified = alert.category.zip(alert.severity);
        let auto = (alert.status == AlertStatus::Firing)
            .then(|| raise(&mut to, classified, alert.rule.as_deref(), now))
            .flatten();
        tx.update_incident(&to).await?;
        events.push(event(
            actor,
            "alert.moved",
            to.id,
            json!({ "alerts": vouch(&moved), "fingerprint": alert.fingerprint, "source": alert.source,
                    "from": alert.incident_id, "to": to.id, "reason": why }),
            now,
        ));
        if let Some(r) = auto {
            events.push(reclassified_event(to.id, &r, "incidentd", None, now));
        }
        events.extend(self.follow_up(&mut tx, &mut to, before, now).await?);
        tx.append(&events).await?;
        tx.commit().await?;
        Ok(Moved {
            from: alert.incident_id,
            to: to.id,
            alerts: ids(&moved),
        })
    }

    /// Open an incident for a recorded alert: it and its other recorded notifications go
    /// into it, and later alerts of its group join it.
    pub async fn promote_alert(
        &self,
        id: i64,
        p: Promote,
        actor: &str,
    ) -> Result<Incident, EngineError> {
        let why = reason(&p.reason)?;
        if p.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(EngineError::invalid(
                "title",
                "leave it out to use the alert's title, or give one",
            ));
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let alert = tx.alert(id).await?.ok_or_else(|| no_alert(id))?;
        if let Some(iid) = alert.incident_id {
            return Err(EngineError::Conflict(format!(
                "alert {id} is in incident {iid} already; move it (POST /api/v1/alerts/{id}/move) to put it elsewhere"
            )));
        }
        let category = p
            .category
            .or(alert.category)
            .unwrap_or(Category::Unclassified);
        let severity = p.severity.or(alert.severity).unwrap_or(Severity::S3);
        if let Some(floor) = category.severity_floor()
            && p.severity.is_some_and(|s| s < floor)
        {
            return Err(EngineError::invalid(
                "severity",
                format!("`{category}` incidents are always {floor}; omit severity or give {floor}"),
            ));
        }
        let first_seen = alert.occurred_at.min(now);
        let mut inc = promoted(&alert, p.title, category, severity, actor, now);
        inc.id = tx.max_id(Table::Incidents).await? + 1;
        inc.first_seen_at = first_seen;
        inc.discovered_at = first_seen;
        let key = alert_key(&alert.source, &alert.fingerprint);
        tx.insert_incidents(std::slice::from_ref(&inc)).await?;
        let attached = tx.attach_recorded(&key, inc.id).await?;
        inc.alert_count = attached.len() as i64;
        let state = HeldAlert {
            incident_id: inc.id,
            resolved: alert.status == AlertStatus::Resolved,
            starts_at: to_micros(alert.occurred_at),
        };
        let row = hold(&mut tx, &mut inc, &key, state, alert.id).await?;
        tx.upsert_incident_alerts(row.as_slice()).await?;
        tx.insert_incident_keys(&[(alert.group_key.as_str(), inc.id)])
            .await?;
        tx.update_incident(&inc).await?;
        let mut events = vec![event(
            actor,
            "incident.opened",
            inc.id,
            json!({
                "title": inc.title, "category": inc.category, "severity": inc.severity,
                "status": inc.status, "origin": inc.origin, "drill": false, "facts": inc.facts,
                "promoted_alert": alert.id, "alerts": vouch(&attached), "rule": alert.rule, "reason": why,
            }),
            now,
        )];
        if self.responds() {
            tx.schedule_timers(
                &[super::response::playbook_timer(&inc, now)],
                to_micros(now),
            )
            .await?;
        }
        events.extend(recompute_in(&mut tx, &self.regulation(), &mut inc, now).await?);
        tx.append(&events).await?;
        tx.commit().await?;
        Ok(inc)
    }

    /// Merge incident `id` into `m.into`: its alerts, their states and its group keys move to
    /// the survivor, which takes its facts, its earlier clocks and (raise-only) its
    /// classification; it becomes `merged`, pointing at the survivor, and owes nothing more.
    /// Both timelines are kept; the survivor's shows the merged one's events too.
    pub async fn merge_incident(
        &self,
        id: i64,
        m: Merge,
        actor: &str,
    ) -> Result<Incident, EngineError> {
        let why = reason(&m.reason)?;
        if m.into == id {
            return Err(EngineError::invalid(
                "into",
                format!(
                    "incident {id} cannot be merged into itself; name the incident that carries on"
                ),
            ));
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let (mut gone, mut survivor) = mergeable(&mut tx, id, m.into).await?;
        let before = (survivor.category, survivor.severity);
        // Alerts, their states, and the keys that lead further alerts here.
        let states = tx.incident_alert_states(id).await?;
        let moved = tx.move_alerts(id, None, survivor.id).await?;
        let mut rows = Vec::new();
        for (key, state, alert_id) in &states {
            tx.delete_incident_alert(key, id).await?;
            if let Some(r) = hold(&mut tx, &mut survivor, key, *state, *alert_id).await? {
                rows.push(r);
            }
        }
        tx.upsert_incident_alerts(&rows).await?;
        let keys = tx.copy_incident_keys(id, survivor.id).await?;
        let facts_changed = absorb(&mut survivor, &gone, moved.len());
        survivor.updated_at = now;
        let auto = raise(
            &mut survivor,
            Some((gone.category, gone.severity)),
            gone.rule.as_deref(),
            now,
        );
        gone.status = Status::Merged;
        gone.merged_into = Some(survivor.id);
        gone.alerts_firing = 0;
        gone.alerts_resolved = 0;
        gone.updated_at = now;
        tx.update_incident(&gone).await?;
        tx.update_incident(&survivor).await?;
        let mut events = vec![
            event(
                actor,
                "incident.merged",
                id,
                json!({ "into": survivor.id, "reason": why, "moved": moved.len(), "keys": keys }),
                now,
            ),
            event(
                actor,
                "incident.merged_in",
                survivor.id,
                json!({ "from": id, "title": gone.title, "reason": why, "alerts": vouch(&moved),
                        "keys": keys, "facts_changed": facts_changed }),
                now,
            ),
        ];
        if facts_changed {
            events.push(event(
                "incidentd",
                "incident.facts_updated",
                survivor.id,
                json!({ "version": survivor.facts_version, "facts": survivor.facts, "source": "merge" }),
                now,
            ));
        }
        if let Some(r) = auto {
            events.push(reclassified_event(survivor.id, &r, "incidentd", None, now));
        }
        // The merged incident owes nothing more; the survivor owes what both did.
        events.extend(recompute_in(&mut tx, &self.regulation(), &mut gone, now).await?);
        events.extend(self.follow_up(&mut tx, &mut survivor, before, now).await?);
        tx.append(&events).await?;
        tx.commit().await?;
        Ok(survivor)
    }
}

/// The incident `id` and the one it is merged `into`, if they can be merged: both exist, are
/// open and not merged already, both drills or both real, and `id` has no outward work (a
/// report, a campaign, an announcement) that would have to stay with it.
async fn mergeable(
    tx: &mut crate::store::WriteTx,
    id: i64,
    into: i64,
) -> Result<(Incident, Incident), EngineError> {
    let gone = tx.incident(id).await?.ok_or_else(|| no_incident(id))?;
    if let Some(s) = gone.merged_into {
        return Err(EngineError::Conflict(format!(
            "incident {id} was merged into incident {s} already"
        )));
    }
    if !gone.status.is_open() {
        return Err(EngineError::Conflict(format!(
            "incident {id} is `{}`; only open incidents are merged (reopen it first)",
            gone.status
        )));
    }
    let survivor = tx.incident(into).await?.ok_or_else(|| no_incident(into))?;
    if let Some(s) = survivor.merged_into {
        return Err(EngineError::Conflict(format!(
            "incident {} was merged into incident {s}; merge into {s}",
            into
        )));
    }
    if !survivor.status.is_open() {
        return Err(EngineError::Conflict(format!(
            "incident {} is `{}`; reopen it first (into)",
            into, survivor.status
        )));
    }
    if gone.drill != survivor.drill {
        return Err(EngineError::Conflict(
            "a drill and a real incident are never merged".into(),
        ));
    }
    let outward: Vec<String> = tx
        .outward_work(id)
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} ({n})"))
        .collect();
    if !outward.is_empty() {
        return Err(EngineError::Conflict(format!(
            "incident {id} has {}, which stay with it; merge incident {} into {id} instead",
            outward.join(", "),
            into
        )));
    }
    Ok((gone, survivor))
}

/// The survivor of a merge takes the other incident's facts, the earliest clocks and the
/// counts (`moved` alerts came over). True when its facts changed.
fn absorb(survivor: &mut Incident, gone: &Incident, moved: usize) -> bool {
    let facts_changed = survivor.facts.absorb(&gone.facts);
    if facts_changed {
        survivor.facts_version += 1;
    }
    survivor.alert_count += moved as i64;
    survivor.truncated_alerts = survivor.truncated_alerts.max(gone.truncated_alerts);
    survivor.first_seen_at = survivor.first_seen_at.min(gone.first_seen_at);
    survivor.discovered_at = survivor.discovered_at.min(gone.discovered_at);
    survivor.aware_at = match (survivor.aware_at, gone.aware_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    facts_changed
}

/// The incident a promoted alert opens (its id set by the caller).
fn promoted(
    alert: &AlertRecord,
    title: Option<String>,
    category: Category,
    severity: Severity,
    actor: &str,
    now: DateTime<Utc>,
) -> Incident {
    let severity = category
        .severity_floor()
        .map_or(severity, |f| severity.max(f));
    let title = title.map_or_else(|| alert.title.clone(), |t| t.trim().to_string());
    // The alert's own words stay internal, as when an alert opens an incident.
    let mut facts = alert.facts.clone();
    facts.keep_text_internal();
    Incident {
        summary: alert.description.clone(),
        rule: alert.rule.clone(),
        facts,
        ..Incident::opening(title, category, severity, "promoted", actor, now)
    }
}
