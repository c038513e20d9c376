//! Commands people give: declare, update facts, change classification or clocks, transition.
//! Each runs in one write transaction with its audit events.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::closing::Force;
use super::ingest::reclassified_event;
use super::{Engine, EngineError, classify_incident, reclassify};
use crate::domain::classify::{Rules, Subject};
use crate::domain::facts::Facts;
use crate::domain::incident::{Category, Severity, Status};
use crate::domain::records::Incident;
use crate::store::{NewEvent, Table, WriteTx};

/// A person declaring an incident.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// Omit to let the classification rules decide (`other` if none matches).
    #[serde(default)]
    pub category: Option<Category>,
    /// Omit to take the rules' severity; PI categories are always S1.
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub facts: Facts,
    /// A drill: runs the whole path but never reaches real people or regulators.
    #[serde(default)]
    pub drill: bool,
    /// When the organisation discovered it (the Chinese reporting clock); defaults to now.
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub discovered_at: Option<DateTime<Utc>>,
    /// When it became aware that personal information is affected (the GDPR clock).
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub aware_at: Option<DateTime<Utc>>,
}

/// A person's change to an incident's attributes. Lowering severity, changing the category or
/// moving a clock needs a `reason`, which the audit trail keeps.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub category: Option<Category>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub discovered_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub aware_at: Option<DateTime<Utc>>,
    /// When the breach was assessed notifiable (SG); incidentd sets it when the facts first
    /// make the breach notifiable.
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub assessed_notifiable_at: Option<DateTime<Utc>>,
    /// When handling ended (CN closing report); the closing, unless given.
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub handling_closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A clock a person gives: it has happened (a little clock skew allowed) and is this century.
fn not_future(path: &str, t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), EngineError> {
    match t {
        Some(t) => {
            crate::domain::time::happened(&t, now).map_err(|m| EngineError::invalid(path, m))
        }
        None => Ok(()),
    }
}

/// Declare an incident in `tx` (the caller commits): checks, classification, the incident row,
/// its obligations, its playbook timer (when `responds`) and its audit events.
pub(crate) async fn declare_in(
    tx: &mut WriteTx,
    mut d: Declaration,
    rules: &Rules,
    reg: &super::obligations::Regulation,
    responds: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Incident, EngineError> {
    check_declaration(&mut d, now)?;
    let text = format!("{}\n{}", d.title, d.summary);
    let empty = Default::default();
    let classified = rules.classify(&Subject {
        source: "declaration",
        text: &text,
        labels: &empty,
        annotations: &empty,
        facts: &d.facts,
    });
    let category = d
        .category
        .or(classified.as_ref().map(|c| c.category))
        .unwrap_or(Category::Other);
    let severity = d
        .severity
        .or(classified.as_ref().map(|c| c.severity))
        .unwrap_or(Severity::S3);
    let discovered = d.discovered_at.unwrap_or(now);
    let category_severity = category
        .severity_floor()
        .map_or(severity, |f| f.max(severity));
    let mut inc = Incident {
        summary: d.summary,
        drill: d.drill,
        rule: if d.category.is_some() {
            None
        } else {
            classified.as_ref().map(|c| c.rule.clone())
        },
        facts: d.facts,
        first_seen_at: discovered,
        discovered_at: discovered,
        aware_at: d
            .aware_at
            .or(category.is_personal_information().then_some(now)),
        ..Incident::opening(
            d.title.trim().to_string(),
            category,
            category_severity,
            "declaration",
            actor,
            now,
        )
    };
    // What a person declared is raised, never lowered, by what the rules see in it.
    let auto =
        classified.and_then(|c| reclassify(&mut inc, (c.category, c.severity), Some(&c.rule), now));

    inc.id = tx.max_id(Table::Incidents).await? + 1;
    tx.insert_incidents(std::slice::from_ref(&inc)).await?;
    let regulated = recompute_in(tx, reg, &mut inc, now).await?;
    if responds {
        tx.schedule_timers(
            &[super::response::playbook_timer(&inc, now)],
            crate::domain::time::to_micros(now),
        )
        .await?;
    }
    let mut events = vec![event(
        actor,
        "incident.declared",
        inc.id,
        json!({
            "title": inc.title, "summary": inc.summary, "category": inc.category,
            "severity": inc.severity, "status": inc.status, "drill": inc.drill,
            "facts": inc.facts, "discovered_at": inc.discovered_at, "aware_at": inc.aware_at,
            "rule": inc.rule,
        }),
        now,
    )];
    if let Some(r) = auto {
        events.push(reclassified_event(inc.id, &r, "incidentd", None, now));
    }
    events.extend(regulated);
    tx.append(&events).await?;
    Ok(inc)
}

/// A declaration's own checks: a title, S1 for a personal-information category, no time in
/// the future, and facts that settle.
fn check_declaration(d: &mut Declaration, now: DateTime<Utc>) -> Result<(), EngineError> {
    if d.title.trim().is_empty() {
        return Err(EngineError::invalid("title", "give the incident a title"));
    }
    if let (Some(c), Some(s)) = (d.category, d.severity)
        && c.is_personal_information()
        && s != Severity::S1
    {
        return Err(EngineError::invalid(
            "severity",
            format!("`{c}` incidents are always S1; omit severity or give S1"),
        ));
    }
    not_future("discovered_at", d.discovered_at, now)?;
    not_future("aware_at", d.aware_at, now)?;
    d.facts = std::mem::take(&mut d.facts)
        .settled()
        .map_err(|e| EngineError::invalid(&format!("facts.{}", e.path), e.message))?;
    Ok(())
}

/// Recompute an incident's grade and obligations in `tx`, writing it back when a clock started.
pub(crate) async fn recompute_in(
    tx: &mut WriteTx,
    reg: &super::obligations::Regulation,
    inc: &mut Incident,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let before = inc.assessed_notifiable_at;
    let events = super::obligations::recompute(tx, reg, inc, now).await?;
    if inc.assessed_notifiable_at != before {
        tx.update_incident(inc).await?;
    }
    Ok(events)
}

fn not_found(id: i64) -> EngineError {
    EngineError::NotFound(format!("there is no incident {id}"))
}

fn event(actor: &str, kind: &'static str, id: i64, data: Value, now: DateTime<Utc>) -> NewEvent {
    NewEvent::new(now, actor, kind, Some(id), &data)
}

impl Engine {
    pub async fn declare(
        &self,
        d: Declaration,
        rules: &Rules,
        actor: &str,
    ) -> Result<Incident, EngineError> {
        let mut tx = self.store().begin_write().await?;
        let inc = declare_in(
            &mut tx,
            d,
            rules,
            &self.regulation(),
            self.responds(),
            actor,
            Utc::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(inc)
    }

    /// Recompute the incident's grade and obligations in `tx`; writes the incident back when
    /// the recompute started a clock. Returns the events to append after the caller's own.
    pub(crate) async fn recompute_obligations(
        &self,
        tx: &mut WriteTx,
        inc: &mut Incident,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, EngineError> {
        let reg = self.regulation();
        let before = inc.assessed_notifiable_at;
        let events = super::obligations::recompute(tx, &reg, inc, now).await?;
        if inc.assessed_notifiable_at != before {
            tx.update_incident(inc).await?;
        }
        Ok(events)
    }

    async fn load(tx: &mut WriteTx, id: i64) -> Result<Incident, EngineError> {
        tx.incident(id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn transition(
        &self,
        id: i64,
        to: Status,
        note: Option<String>,
        actor: &str,
    ) -> Result<Incident, EngineError> {
        self.transition_forced(id, to, note, &Force::default(), actor)
            .await
    }

    /// A transition; closing is refused while tasks or obligations are open unless `force`
    /// carries a person's reason (see [`super::closing`]).
    pub async fn transition_forced(
        &self,
        id: i64,
        to: Status,
        note: Option<String>,
        force: &Force,
        actor: &str,
    ) -> Result<Incident, EngineError> {
        let now = Utc::now();
        let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        let force_reason = force.reason_for(to)?;
        let mut tx = self.store().begin_write().await?;
        let mut inc = Self::load(&mut tx, id).await?;
        let from = inc.status;
        if let Some(survivor) = inc.merged_into {
            return Err(EngineError::Conflict(format!(
                "incident {id} was merged into incident {survivor}, which carries on; work on {survivor}"
            )));
        }
        // An illegal move is refused as such first: asking for a note it could never use
        // would only send the person round twice.
        from.check_transition(to)
            .map_err(|e| EngineError::Conflict(e.to_string()))?;
        if note.is_none()
            && matches!(
                to,
                Status::Closed | Status::FalsePositive | Status::Reopened
            )
        {
            return Err(EngineError::invalid(
                "note",
                format!("moving an incident to `{to}` needs a note saying why"),
            ));
        }
        let closing = if to == Status::Closed {
            super::closing::checklist(&mut tx, id, force_reason.as_deref(), actor, now).await?
        } else {
            Vec::new()
        };
        inc.status = to;
        inc.updated_at = now;
        match to {
            Status::Contained => {
                inc.contained_at.get_or_insert(now);
            }
            Status::Closed => {
                inc.closed_at = Some(now);
                // Handling ends with the closing unless a person said when (the CN closing
                // report counts from it).
                inc.handling_closed_at.get_or_insert(now);
            }
            Status::FalsePositive => inc.closed_at = Some(now),
            Status::Reopened => {
                // Handling goes on: a handling end that was only the closing is taken back.
                if inc.handling_closed_at == inc.closed_at {
                    inc.handling_closed_at = None;
                }
                inc.closed_at = None;
            }
            _ => {}
        }
        if to == Status::Reopened && self.responds() {
            tx.schedule_timers(
                &[super::response::rearm_timer(id, now)],
                crate::domain::time::to_micros(now),
            )
            .await?;
        }
        tx.update_incident(&inc).await?;
        let mut events = vec![event(
            actor,
            "incident.transitioned",
            id,
            json!({ "from": from, "to": to, "note": note, "forced": force_reason }),
            now,
        )];
        events.extend(closing);
        events.extend(self.recompute_obligations(&mut tx, &mut inc, now).await?);
        tx.append(&events).await?;
        tx.commit().await?;
        Ok(inc)
    }

    /// Apply a JSON merge patch to the facts; re-classify (raise-only) from the new facts.
    pub async fn update_facts(
        &self,
        id: i64,
        patch: Value,
        rules: &Rules,
        actor: &str,
    ) -> Result<Incident, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let mut inc = Self::load(&mut tx, id).await?;
        let facts = inc
            .facts
            .apply_patch(&patch)
            .map_err(|e| EngineError::invalid(&e.path, e.message))?;
        if facts == inc.facts {
            return Ok(inc);
        }
        inc.facts = facts;
        inc.facts_version += 1;
        inc.updated_at = now;
        let mut events = vec![event(
            actor,
            "incident.facts_updated",
            id,
            json!({ "version": inc.facts_version, "patch": patch, "facts": inc.facts, "source": "person" }),
            now,
        )];
        if let Some(c) = classify_incident(rules, &inc)
            && let Some(r) = reclassify(&mut inc, (c.category, c.severity), Some(&c.rule), now)
        {
            events.push(reclassified_event(id, &r, "incidentd", None, now));
            if self.responds() {
                tx.schedule_timers(
                    &[super::response::playbook_timer(&inc, now)],
                    crate::domain::time::to_micros(now),
                )
                .await?;
            }
        }
        tx.update_incident(&inc).await?;
        events.extend(self.recompute_obligations(&mut tx, &mut inc, now).await?);
        tx.append(&events).await?;
        tx.commit().await?;
        Ok(inc)
    }

    /// A person's change of title, summary, classification or clocks.
    pub async fn update_incident(
        &self,
        id: i64,
        p: IncidentPatch,
        actor: &str,
    ) -> Result<Incident, EngineError> {
        let now = Utc::now();
        not_future("discovered_at", p.discovered_at, now)?;
        not_future("aware_at", p.aware_at, now)?;
        not_future("assessed_notifiable_at", p.assessed_notifiable_at, now)?;
        not_future("handling_closed_at", p.handling_closed_at, now)?;
        let reason = p.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        let mut tx = self.store().begin_write().await?;
        let mut inc = Self::load(&mut tx, id).await?;
        let before = inc.clone();

        apply_patch(&mut inc, &p)?;
        let (changes, needs_reason) = changes(&before, &inc);
        if changes.is_empty() {
            return Ok(inc);
        }
        if reason.is_none() && !needs_reason.is_empty() {
            return Err(EngineError::invalid(
                "reason",
                format!(
                    "changing {} needs a reason; the audit trail keeps it",
                    needs_reason.join(", ")
                ),
            ));
        }
        if inc.category.is_personal_information() && inc.aware_at.is_none() {
            inc.aware_at = Some(now);
        }
        inc.updated_at = now;
        if self.responds() && (inc.severity, inc.category) != (before.severity, before.category) {
            tx.schedule_timers(
                &[super::response::playbook_timer(&inc, now)],
                crate::domain::time::to_micros(now),
            )
            .await?;
        }
        tx.update_incident(&inc).await?;
        let mut events = vec![event(
            actor,
            "incident.updated",
            id,
            json!({ "changes": changes, "reason": reason }),
            now,
        )];
        events.extend(self.recompute_obligations(&mut tx, &mut inc, now).await?);
        tx.append(&events).await?;
        tx.commit().await?;
        Ok(inc)
    }
}

/// Apply a patch's fields to the incident. A category with a severity floor raises the
/// severity to it; a severity below the floor is refused.
fn apply_patch(inc: &mut Incident, p: &IncidentPatch) -> Result<(), EngineError> {
    if let Some(t) = &p.title {
        if t.trim().is_empty() {
            return Err(EngineError::invalid("title", "a title cannot be empty"));
        }
        inc.title = t.trim().to_string();
    }
    if let Some(s) = &p.summary {
        inc.summary = s.clone();
    }
    if let Some(c) = p.category {
        inc.category = c;
    }
    if let Some(s) = p.severity {
        inc.severity = s;
    } else if let Some(floor) = inc.category.severity_floor() {
        inc.severity = inc.severity.max(floor);
    }
    if let Some(floor) = inc.category.severity_floor()
        && inc.severity < floor
    {
        return Err(EngineError::invalid(
            "severity",
            format!(
                "`{}` incidents are always {floor}; change the category first if it is not a personal-information incident",
                inc.category
            ),
        ));
    }
    if let Some(t) = p.discovered_at {
        inc.discovered_at = t;
        inc.first_seen_at = inc.first_seen_at.min(t);
    }
    if let Some(t) = p.aware_at {
        inc.aware_at = Some(t);
    }
    if let Some(t) = p.assessed_notifiable_at {
        inc.assessed_notifiable_at = Some(t);
    }
    if let Some(t) = p.handling_closed_at {
        inc.handling_closed_at = Some(t);
    }
    Ok(())
}

/// What a patch changed, field by field (`{from, to}`), and the changed fields that need a
/// reason: the category, a lower severity, the dates a deadline runs from, and an assessment or
/// handling date that was already set.
fn changes(before: &Incident, inc: &Incident) -> (Map<String, Value>, Vec<String>) {
    let mut changes = Map::new();
    let mut needs_reason = Vec::new();
    let mut note = |field: &str, from: Value, to: Value, sensitive: bool| {
        if from != to {
            if sensitive {
                needs_reason.push(field.to_string());
            }
            changes.insert(field.into(), json!({ "from": from, "to": to }));
        }
    };
    note("title", json!(before.title), json!(inc.title), false);
    note("summary", json!(before.summary), json!(inc.summary), false);
    note(
        "category",
        json!(before.category),
        json!(inc.category),
        true,
    );
    note(
        "severity",
        json!(before.severity),
        json!(inc.severity),
        inc.severity < before.severity,
    );
    note(
        "discovered_at",
        json!(before.discovered_at),
        json!(inc.discovered_at),
        true,
    );
    note(
        "aware_at",
        json!(before.aware_at),
        json!(inc.aware_at),
        true,
    );
    note(
        "assessed_notifiable_at",
        json!(before.assessed_notifiable_at),
        json!(inc.assessed_notifiable_at),
        before.assessed_notifiable_at.is_some(),
    );
    note(
        "handling_closed_at",
        json!(before.handling_closed_at),
        json!(inc.handling_closed_at),
        before.handling_closed_at.is_some(),
    );
    (changes, needs_reason)
}
