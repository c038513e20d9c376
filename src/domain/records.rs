//! What the store gives back: incidents, alerts and audit events as the API shows them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::{AlertStatus, Origin};
use super::facts::Facts;
use super::incident::{Category, Severity, Status};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    pub summary: String,
    pub category: Category,
    pub severity: Severity,
    pub status: Status,
    pub drill: bool,
    /// `alert` (opened by classification) or `declaration` (declared by a person).
    pub origin: String,
    /// The classification rule that set the category, if any.
    pub rule: Option<String>,
    pub facts: Facts,
    pub facts_version: i64,
    pub first_seen_at: DateTime<Utc>,
    pub discovered_at: DateTime<Utc>,
    pub declared_at: Option<DateTime<Utc>>,
    pub aware_at: Option<DateTime<Utc>>,
    pub contained_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Alert notifications received (a firing and its resolution count twice).
    pub alert_count: i64,
    /// Its alerts (by source and fingerprint) whose newest notification is firing…
    #[serde(default)]
    pub alerts_firing: i64,
    /// …and resolved. Resolved alerts never close an incident: a person does.
    #[serde(default)]
    pub alerts_resolved: i64,
    /// Alerts Alertmanager left out of its notifications (the full group is in Alertmanager).
    pub truncated_alerts: i64,
    pub created_by: String,
    /// When the breach was assessed notifiable (the SG reporting clock).
    #[serde(default)]
    pub assessed_notifiable_at: Option<DateTime<Utc>>,
    /// When handling ended (the CN closing-report clock); the closing, unless a person says.
    #[serde(default)]
    pub handling_closed_at: Option<DateTime<Utc>>,
    /// The incident this one was merged into (status `merged`): that one carries on.
    #[serde(default)]
    pub merged_into: Option<i64>,
    /// `source|rule` of the alert that opened it (storm control counts incidents per bucket).
    #[serde(default)]
    pub intake: Option<String>,
    /// A storm incident: alerts of a bucket that opened too many incidents fold into it.
    #[serde(default)]
    pub storm: bool,
}

impl Incident {
    /// A new incident as it opens at `now` (status `detected`, facts empty, every clock but
    /// the declaration unset, no alerts yet); callers set what they know besides. Its id is
    /// given when it is written. A personal-information category starts the awareness clock.
    pub fn opening(
        title: String,
        category: Category,
        severity: Severity,
        origin: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Incident {
        Incident {
            id: 0,
            title,
            summary: String::new(),
            category,
            severity,
            status: Status::Detected,
            drill: false,
            origin: origin.to_string(),
            rule: None,
            facts: Facts::default(),
            facts_version: 1,
            first_seen_at: now,
            discovered_at: now,
            declared_at: Some(now),
            aware_at: category.is_personal_information().then_some(now),
            contained_at: None,
            closed_at: None,
            updated_at: now,
            alert_count: 0,
            alerts_firing: 0,
            alerts_resolved: 0,
            truncated_alerts: 0,
            created_by: actor.to_string(),
            assessed_notifiable_at: None,
            handling_closed_at: None,
            merged_into: None,
            intake: None,
            storm: false,
        }
    }
}

/// The stored part of an alert besides its indexed columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertDetail {
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Facts::is_empty")]
    pub facts: Facts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertRecord {
    pub id: i64,
    pub source: String,
    pub status: AlertStatus,
    pub fingerprint: String,
    pub group_key: String,
    pub title: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub origin: serde_json::Value,
    pub facts: Facts,
    pub occurred_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub category: Option<Category>,
    pub severity: Option<Severity>,
    pub rule: Option<String>,
    pub incident_id: Option<i64>,
    /// The silence that silenced it: it opened and joined nothing, and paged nobody.
    #[serde(default)]
    pub silence_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub incident_id: Option<i64>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub hash: String,
}

/// Serde for a column the store keeps as JSON text (a list of channels, an import report):
/// the API shows the JSON itself, never a string holding JSON. Text that is not JSON (a
/// damaged row) is shown as it is rather than failing the answer.
/// `#[serde(serialize_with = "crate::domain::records::json_text")]`, with a `#[schema(value_type
/// = …)]` saying what the JSON is.
pub fn json_text<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v.serialize(s),
        Err(_) => s.serialize_str(text),
    }
}

/// [`json_text`] for an optional column.
pub fn json_text_option<S: serde::Serializer>(
    text: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => json_text(t, s),
        None => s.serialize_none(),
    }
}

/// Serde for a column the store keeps as a `;`-separated list (a subject's channels): the API
/// shows an array. `#[serde(serialize_with = "crate::domain::records::semicolon_list")]`.
pub fn semicolon_list<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let items: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect();
    let mut seq = s.serialize_seq(Some(items.len()))?;
    for i in items {
        seq.serialize_element(i)?;
    }
    seq.end()
}
