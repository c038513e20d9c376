//! Rows as both backends return them, and their conversion into domain records.
//! A row that does not parse is reported as corrupt rather than guessed at.

use super::StoreError;
use crate::domain::audit::AlertContent;
use crate::domain::records::{AlertDetail, AlertRecord, Event, Incident};
use crate::domain::time::{from_micros, to_micros};

#[derive(Debug, sqlx::FromRow)]
pub(super) struct IncidentRow {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub category: String,
    pub severity: String,
    pub status: String,
    pub drill: bool,
    pub origin: String,
    pub rule: Option<String>,
    pub facts: String,
    pub facts_version: i64,
    pub first_seen_at: i64,
    pub discovered_at: i64,
    pub declared_at: Option<i64>,
    pub aware_at: Option<i64>,
    pub contained_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub updated_at: i64,
    pub alert_count: i64,
    pub truncated_alerts: i64,
    pub created_by: String,
    pub assessed_notifiable_at: Option<i64>,
    pub handling_closed_at: Option<i64>,
    pub alerts_firing: i64,
    pub alerts_resolved: i64,
    pub merged_into: Option<i64>,
    pub intake: Option<String>,
    pub storm: bool,
}

/// The incident columns, as a literal for `concat!`.
macro_rules! incident_columns {
    () => {
        "id, title, summary, category, severity, status, drill, origin, rule, facts, facts_version, first_seen_at, discovered_at, declared_at, aware_at, contained_at, closed_at, updated_at, alert_count, truncated_alerts, created_by, assessed_notifiable_at, handling_closed_at, alerts_firing, alerts_resolved, merged_into, intake, storm"
    };
}
pub(super) use incident_columns;

fn corrupt(what: &str, id: i64, e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!(
        "{what} {id} has a value this version cannot read: {e}"
    ))
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;
    fn try_from(r: IncidentRow) -> Result<Self, StoreError> {
        let id = r.id;
        let bad = |e: String| corrupt("incident", id, e);
        Ok(Incident {
            id,
            title: r.title,
            summary: r.summary,
            category: r.category.parse().map_err(bad)?,
            severity: r.severity.parse().map_err(bad)?,
            status: r.status.parse().map_err(bad)?,
            drill: r.drill,
            origin: r.origin,
            rule: r.rule,
            facts: serde_json::from_str(&r.facts).map_err(|e| corrupt("incident", id, e))?,
            facts_version: r.facts_version,
            first_seen_at: from_micros(r.first_seen_at),
            discovered_at: from_micros(r.discovered_at),
            declared_at: r.declared_at.map(from_micros),
            aware_at: r.aware_at.map(from_micros),
            contained_at: r.contained_at.map(from_micros),
            closed_at: r.closed_at.map(from_micros),
            updated_at: from_micros(r.updated_at),
            alert_count: r.alert_count,
            truncated_alerts: r.truncated_alerts,
            created_by: r.created_by,
            assessed_notifiable_at: r.assessed_notifiable_at.map(from_micros),
            handling_closed_at: r.handling_closed_at.map(from_micros),
            alerts_firing: r.alerts_firing,
            alerts_resolved: r.alerts_resolved,
            merged_into: r.merged_into,
            intake: r.intake,
            storm: r.storm,
        })
    }
}

/// An incident as the store writes it.
#[derive(Debug)]
pub(super) struct IncidentOut<'a> {
    pub id: i64,
    pub title: &'a str,
    pub summary: &'a str,
    pub category: &'a str,
    pub severity: &'a str,
    pub status: &'a str,
    pub drill: bool,
    pub origin: &'a str,
    pub rule: Option<&'a str>,
    pub facts: String,
    pub facts_version: i64,
    pub first_seen_at: i64,
    pub discovered_at: i64,
    pub declared_at: Option<i64>,
    pub aware_at: Option<i64>,
    pub contained_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub updated_at: i64,
    pub alert_count: i64,
    pub truncated_alerts: i64,
    pub created_by: &'a str,
    pub assessed_notifiable_at: Option<i64>,
    pub handling_closed_at: Option<i64>,
    pub alerts_firing: i64,
    pub alerts_resolved: i64,
    pub merged_into: Option<i64>,
    pub intake: Option<&'a str>,
    pub storm: bool,
}

impl<'a> From<&'a Incident> for IncidentOut<'a> {
    fn from(i: &'a Incident) -> Self {
        IncidentOut {
            id: i.id,
            title: &i.title,
            summary: &i.summary,
            category: i.category.as_str(),
            severity: i.severity.as_str(),
            status: i.status.as_str(),
            drill: i.drill,
            origin: &i.origin,
            rule: i.rule.as_deref(),
            facts: serde_json::to_string(&i.facts).unwrap_or_else(|_| "{}".into()),
            facts_version: i.facts_version,
            first_seen_at: to_micros(i.first_seen_at),
            discovered_at: to_micros(i.discovered_at),
            declared_at: i.declared_at.map(to_micros),
            aware_at: i.aware_at.map(to_micros),
            contained_at: i.contained_at.map(to_micros),
            closed_at: i.closed_at.map(to_micros),
            updated_at: to_micros(i.updated_at),
            alert_count: i.alert_count,
            truncated_alerts: i.truncated_alerts,
            created_by: &i.created_by,
            assessed_notifiable_at: i.assessed_notifiable_at.map(to_micros),
            handling_closed_at: i.handling_closed_at.map(to_micros),
            alerts_firing: i.alerts_firing,
            alerts_resolved: i.alerts_resolved,
            merged_into: i.merged_into,
            intake: i.intake.as_deref(),
            storm: i.storm,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct AlertRow {
    pub id: i64,
    pub dedup_key: String,
    pub source: String,
    pub status: String,
    pub fingerprint: String,
    pub group_key: String,
    pub title: String,
    pub detail: String,
    pub occurred_at: i64,
    pub ends_at: Option<i64>,
    pub received_at: i64,
    pub category: Option<String>,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub incident_id: Option<i64>,
    pub hash: String,
    pub silence_id: Option<i64>,
}

/// The alert columns, as a literal for `concat!`.
macro_rules! alert_columns {
    () => {
        "id, dedup_key, source, status, fingerprint, group_key, title, detail, occurred_at, ends_at, received_at, category, severity, rule, incident_id, hash, silence_id"
    };
}
pub(super) use alert_columns;

impl<'a> From<&'a AlertRow> for AlertContent<'a> {
    fn from(r: &'a AlertRow) -> Self {
        AlertContent {
            dedup_key: &r.dedup_key,
            source: &r.source,
            status: &r.status,
            fingerprint: &r.fingerprint,
            group_key: &r.group_key,
            title: &r.title,
            detail: &r.detail,
            occurred_at: r.occurred_at,
            ends_at: r.ends_at,
            received_at: r.received_at,
            category: r.category.as_deref(),
            severity: r.severity.as_deref(),
            rule: r.rule.as_deref(),
        }
    }
}

impl TryFrom<AlertRow> for AlertRecord {
    type Error = StoreError;
    fn try_from(r: AlertRow) -> Result<Self, StoreError> {
        let id = r.id;
        let bad = |e: String| corrupt("alert", id, e);
        let detail: AlertDetail =
            serde_json::from_str(&r.detail).map_err(|e| corrupt("alert", id, e))?;
        Ok(AlertRecord {
            id,
            source: r.source,
            status: r.status.parse().map_err(bad)?,
            fingerprint: r.fingerprint,
            group_key: r.group_key,
            title: r.title,
            description: detail.description,
            labels: detail.labels,
            annotations: detail.annotations,
            origin: serde_json::to_value(&detail.origin).unwrap_or_default(),
            facts: detail.facts,
            occurred_at: from_micros(r.occurred_at),
            ends_at: r.ends_at.map(from_micros),
            received_at: from_micros(r.received_at),
            category: r.category.map(|c| c.parse()).transpose().map_err(bad)?,
            severity: r.severity.map(|s| s.parse()).transpose().map_err(bad)?,
            rule: r.rule,
            incident_id: r.incident_id,
            silence_id: r.silence_id,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct EventRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub incident_id: Option<i64>,
    pub data: String,
    pub hash: String,
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(Event {
            id: r.id,
            at: from_micros(r.at),
            actor: r.actor,
            kind: r.kind,
            incident_id: r.incident_id,
            data: serde_json::from_str(&r.data).map_err(|e| corrupt("event", r.id, e))?,
            hash: r.hash,
        })
    }
}
