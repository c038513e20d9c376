//! The generic alert format: one object or an array of them. Our own format, so unknown fields
//! are refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{FormatError, clean, clean_map, from_json};
use crate::domain::alert::{AlertStatus, NewAlert, Origin, derive_fingerprint};
use crate::domain::facts::Facts;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericAlert {
    /// Who sent it: `grafana`, `siem`, `waf`… (letters, digits, `.`, `_`, `-`, `:`; ≤ 64).
    pub source: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// `firing` (default) or `resolved`.
    #[serde(default)]
    pub status: Option<AlertStatus>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it happened (RFC 3339); defaults to when it arrived.
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Stable identity of the alert across re-sends; derived from source, title and labels
    /// when absent.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The problem this alert belongs to, as the sender groups them (like Alertmanager's
    /// `groupKey`): alerts with the same group key join one open incident. Without it, alerts
    /// join by fingerprint.
    #[serde(default)]
    pub group_key: Option<String>,
    #[serde(default)]
    pub facts: Facts,
}

/// Longest accepted `group_key`: a key, not a document.
const MAX_GROUP_KEY: usize = 512;

/// Parse a request body: one alert or an array.
pub fn parse(body: &[u8], now: DateTime<Utc>) -> Result<Vec<NewAlert>, FormatError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let alerts: Vec<GenericAlert> = if first == Some(&b'[') {
        from_json(body)?
    } else {
        vec![from_json(body)?]
    };
    let many = first == Some(&b'[');
    alerts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            normalise(a, now).map_err(|(field, message)| FormatError {
                path: if many {
                    format!("[{i}].{field}")
                } else {
                    field.to_string()
                },
                message,
                syntax: false,
            })
        })
        .collect()
}

fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

fn normalise(a: GenericAlert, now: DateTime<Utc>) -> Result<NewAlert, (&'static str, String)> {
    if !valid_source(&a.source) {
        return Err((
            "source",
            format!(
                "`{}` is not a source name; use letters, digits, `.`, `_`, `-` or `:` (at most 64), e.g. \"grafana\"",
                a.source
            ),
        ));
    }
    let title = clean(a.title).trim().to_string();
    if title.is_empty() {
        return Err(("title", "give the alert a title".into()));
    }
    a.facts
        .validate()
        .map_err(|e| ("facts", format!("{}: {}", e.path, e.message)))?;
    let group_key = a.group_key.map(clean).map(|g| g.trim().to_string());
    if let Some(g) = &group_key {
        if g.is_empty() {
            return Err((
                "group_key",
                "is empty; leave it out to join alerts by fingerprint".into(),
            ));
        }
        if g.len() > MAX_GROUP_KEY {
            return Err((
                "group_key",
                format!(
                    "is {} bytes long; at most {MAX_GROUP_KEY} are accepted (a key such as \"db-3/exfiltration\", not a document)",
                    g.len()
                ),
            ));
        }
    }
    let labels = clean_map(a.labels);
    let fingerprint = match a.fingerprint.map(clean) {
        Some(f) if !f.trim().is_empty() => f.trim().to_string(),
        _ => derive_fingerprint(&a.source, &title, &labels),
    };
    Ok(NewAlert {
        status: a.status.unwrap_or(AlertStatus::Firing),
        title,
        description: clean(a.description),
        annotations: clean_map(a.annotations),
        labels,
        occurred_at: a.occurred_at.unwrap_or(now),
        ends_at: None,
        fingerprint,
        dedup_scope: String::new(),
        facts: a.facts,
        origin: Origin {
            group_key,
            ..Origin::default()
        },
        source: a.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-25T08:00:00Z".parse().unwrap()
    }

    #[test]
    fn one_or_many() {
        let one = parse(br#"{"source":"siem","title":"x"}"#, now()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].occurred_at, now());
        assert_eq!(one[0].status, AlertStatus::Firing);
        let many = parse(
            br#" [{"source":"siem","title":"x"},{"source":"siem","title":"y"}]"#,
            now(),
        )
        .unwrap();
        assert_eq!(many.len(), 2);
        assert_ne!(many[0].fingerprint, many[1].fingerprint);
    }

    #[test]
    fn errors_name_the_item_and_field() {
        let e = parse(
            br#"[{"source":"siem","title":"x"},{"source":"siem","title":"y","sevrity":"S1"}]"#,
            now(),
        )
        .unwrap_err();
        assert_eq!(e.path, "[1].sevrity");
        assert!(e.message.contains("unknown field `sevrity`"), "{e}");
        let e = parse(br#"[{"source":"siem","title":" "}]"#, now()).unwrap_err();
        assert_eq!(e.path, "[0].title");
        let e = parse(br#"{"source":"my source","title":"t"}"#, now()).unwrap_err();
        assert_eq!(e.path, "source");
        let e = parse(
            br#"{"source":"s","title":"t","occurred_at":"yesterday"}"#,
            now(),
        )
        .unwrap_err();
        assert_eq!(e.path, "occurred_at");
        let e = parse(
            br#"{"source":"s","title":"t","facts":{"data_types":["shoe"]}}"#,
            now(),
        )
        .unwrap_err();
        assert_eq!(e.path, "facts.data_types[0]");
    }

    #[test]
    fn group_key_is_kept_and_checked() {
        let a = parse(
            br#"{"source":"siem","title":"x","group_key":" db-3 "}"#,
            now(),
        )
        .unwrap();
        assert_eq!(a[0].origin.group_key.as_deref(), Some("db-3"));
        let e = parse(br#"{"source":"siem","title":"x","group_key":"  "}"#, now()).unwrap_err();
        assert_eq!(e.path, "group_key");
        let long = format!(
            r#"{{"source":"siem","title":"x","group_key":"{}"}}"#,
            "k".repeat(600)
        );
        let e = parse(long.as_bytes(), now()).unwrap_err();
        assert!(e.message.contains("at most 512"), "{e}");
    }

    #[test]
    fn nul_bytes_are_dropped() {
        let a = parse(br#"{"source":"s","title":"a\u0000b"}"#, now()).unwrap();
        assert_eq!(a[0].title, "ab");
    }
}
