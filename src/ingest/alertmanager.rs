//! Prometheus Alertmanager's webhook payload (version 4), and Grafana's variant of it.
//!
//! Alertmanager retries only on 5xx and drops the notification on any 4xx, so this parser is
//! lenient: unknown fields are ignored (`notification_reason`, `routeLabels`, Grafana's
//! `orgId`, `valueString`…) and only a payload that can never succeed is refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{FormatError, clean, clean_map, from_json};
use crate::domain::alert::{AlertStatus, NewAlert, Origin, derive_fingerprint};
use crate::domain::facts::Facts;
use crate::domain::time::is_zero_time;

/// Payload versions accepted: Alertmanager's `4`, and Grafana's webhook `1`, which has the same
/// alert shape.
pub const VERSIONS: &[&str] = &["4", "1"];

#[derive(Debug, Deserialize)]
pub struct Payload {
    pub version: String,
    #[serde(default, rename = "groupKey")]
    pub group_key: String,
    #[serde(default, rename = "truncatedAlerts")]
    pub truncated_alerts: u64,
    #[serde(default)]
    pub receiver: String,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    #[serde(default, rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default, rename = "orgId")]
    pub org_id: Option<serde_json::Value>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
pub struct Alert {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(
        rename = "startsAt",
        deserialize_with = "crate::domain::time::bounded::required"
    )]
    pub starts_at: DateTime<Utc>,
    /// The zero time (still firing) reads as none.
    #[serde(
        default,
        rename = "endsAt",
        deserialize_with = "crate::domain::time::bounded::option_or_zero"
    )]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

/// Parse a webhook body into alerts. Errors here mean the payload can never succeed (4xx).
pub fn parse(body: &[u8]) -> Result<Vec<NewAlert>, FormatError> {
    let p: Payload = from_json(body)?;
    if !VERSIONS.contains(&p.version.as_str()) {
        return Err(FormatError {
            path: "version".into(),
            message: format!(
                "webhook payload version `{}` is not supported; incidentd reads Alertmanager's version 4 (and Grafana's 1)",
                p.version
            ),
            syntax: false,
        });
    }
    if i64::try_from(p.truncated_alerts).is_err() {
        return Err(FormatError {
            path: "truncatedAlerts".into(),
            message: format!(
                "{} is more alerts than any Alertmanager leaves out; at most {} are counted",
                p.truncated_alerts,
                i64::MAX
            ),
            syntax: false,
        });
    }
    let source = if p.org_id.is_some() || p.version == "1" {
        "grafana"
    } else {
        "alertmanager"
    };
    Ok(p.alerts
        .into_iter()
        .map(|a| {
            normalise(
                a,
                source,
                &p.group_key,
                &p.receiver,
                &p.external_url,
                p.truncated_alerts,
            )
        })
        .collect())
}

fn normalise(
    a: Alert,
    source: &str,
    group_key: &str,
    receiver: &str,
    external_url: &str,
    truncated: u64,
) -> NewAlert {
    let labels = clean_map(a.labels);
    let annotations = clean_map(a.annotations);
    let title = title(&labels, &annotations);
    let description = ["description", "message"]
        .iter()
        .find_map(|k| annotations.get(*k).cloned())
        .unwrap_or_default();
    let fingerprint = match clean(a.fingerprint) {
        f if !f.is_empty() => f,
        _ => derive_fingerprint(source, "", &labels),
    };
    NewAlert {
        source: source.to_string(),
        status: a.status,
        title,
        description,
        labels,
        annotations,
        occurred_at: a.starts_at,
        ends_at: a.ends_at.filter(|t| !is_zero_time(t)),
        fingerprint,
        dedup_scope: clean(group_key.to_string()),
        facts: Facts::default(),
        origin: Origin {
            generator_url: Some(clean(a.generator_url)).filter(|s| !s.is_empty()),
            receiver: Some(clean(receiver.to_string())).filter(|s| !s.is_empty()),
            group_key: Some(clean(group_key.to_string())).filter(|s| !s.is_empty()),
            external_url: Some(clean(external_url.to_string())).filter(|s| !s.is_empty()),
            truncated_alerts: truncated,
        },
    }
}

/// `summary` (or `title`) annotation, else the alert name with its instance.
fn title(labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>) -> String {
    if let Some(s) = ["summary", "title"]
        .iter()
        .find_map(|k| annotations.get(*k).filter(|s| !s.trim().is_empty()))
    {
        return s.trim().to_string();
    }
    let name = labels.get("alertname").map_or("Alert", String::as_str);
    match labels.get("instance") {
        Some(i) => format!("{name} on {i}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SINGLE: &str = include_str!("../../tests/fixtures/alertmanager-0.25-webhook-single.json");
    const GROUPED: &str =
        include_str!("../../tests/fixtures/alertmanager-0.25-webhook-grouped.json");

    #[test]
    fn real_payloads_parse() {
        let one = parse(SINGLE.as_bytes()).unwrap();
        assert_eq!(one.len(), 1);
        let a = &one[0];
        assert_eq!(a.source, "alertmanager");
        assert_eq!(a.fingerprint, "5149311743671fb0");
        assert_eq!(a.title, "bench alert gi1s-single-c1-ninst10-d20-rep1-1-2");
        assert_eq!(a.ends_at, None, "the zero time means still firing");
        assert_eq!(a.origin.receiver.as_deref(), Some("sink"));
        let many = parse(GROUPED.as_bytes()).unwrap();
        assert_eq!(many.len(), 10);
        assert!(many.iter().all(|a| a.dedup_scope == many[0].dedup_scope));
    }

    #[test]
    fn newer_and_grafana_fields_are_accepted() {
        let body = SINGLE.replacen(
            "\"receiver\"",
            "\"notification_reason\": \"repeat\", \"routeLabels\": {\"team\": \"sec\"}, \"orgId\": 1, \"receiver\"",
            1,
        )
        .replacen("\"fingerprint\"", "\"valueString\": \"[ var='A' value=1 ]\", \"silenceURL\": \"http://g/s\", \"fingerprint\"", 1);
        let a = parse(body.as_bytes()).unwrap();
        assert_eq!(a[0].source, "grafana");
    }

    #[test]
    fn wrong_version_and_shape_are_refused() {
        let e = parse(
            SINGLE
                .replace("\"version\": \"4\"", "\"version\": \"3\"")
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.path, "version");
        let e = parse(br#"{"version":"4"}"#).unwrap_err();
        assert!(e.message.contains("missing field `alerts`"), "{e}");
        let e = parse(
            br#"{"version":"4","alerts":[{"status":"pending","startsAt":"2026-01-01T00:00:00Z"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "alerts[0].status");
    }

    #[test]
    fn nanosecond_starts_are_kept() {
        let body = SINGLE.replace("2026-11-25T07:48:17Z", "2026-11-25T07:48:17.123456789Z");
        let a = parse(body.as_bytes()).unwrap();
        assert_eq!(a[0].occurred_at.timestamp_subsec_nanos(), 123_456_789);
    }
}
