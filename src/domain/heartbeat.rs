//! Heartbeats (dead-man's switches): signals that are expected to keep arriving — an alert
//! that should always be firing (Alertmanager's `Watchdog`) or a ping any source can send.
//! One that stays away longer than its interval plus grace is *late*: the engine opens an
//! incident saying which source went blind, since when.
//!
//! This module holds the configuration (`[[heartbeats]]`), compiled and validated, and the
//! pure rules: which alert is a signal, when a heartbeat is due, how its incident reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::alert::AlertStatus;
use super::duration::{HumanDuration, humanize};
use super::incident::Severity;

/// `[[heartbeats]]` as written in incidentd.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSpec {
    /// Lower-case id: `POST /api/v1/heartbeats/<name>` pings it.
    pub name: String,
    /// Which source this is, for the incident and the listing.
    #[serde(default)]
    pub description: String,
    /// How often the signal is expected.
    pub interval: HumanDuration,
    /// How much later than `interval` it may come before it is late.
    pub grace: HumanDuration,
    /// The severity of the incident a late heartbeat opens.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Alerts that count as the signal (firing ones, re-sends included).
    #[serde(default)]
    pub alert: Option<AlertSignalSpec>,
}

fn default_severity() -> Severity {
    Severity::S2
}

/// `alert = { source = "alertmanager", labels = { alertname = "^Watchdog$" } }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSignalSpec {
    /// The alert's source, exactly (`alertmanager` for the Alertmanager webhook).
    #[serde(default)]
    pub source: Option<String>,
    /// Label patterns, read as classification rules read them (unanchored, case-insensitive:
    /// anchor with `^…$`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One configured heartbeat, compiled.
#[derive(Debug)]
pub struct Heartbeat {
    pub name: String,
    pub description: String,
    pub interval: Duration,
    pub grace: Duration,
    pub severity: Severity,
    /// As configured, for listings.
    pub alert_spec: Option<AlertSignalSpec>,
    source: Option<String>,
    labels: Vec<(String, Regex)>,
}

impl Heartbeat {
    /// Is an alert with this source, status and labels the heartbeat's signal? Only firing
    /// alerts are.
    pub fn signalled_by(
        &self,
        source: &str,
        status: AlertStatus,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.alert_spec.is_some()
            && status == AlertStatus::Firing
            && self.source.as_deref().is_none_or(|s| s == source)
            && self
                .labels
                .iter()
                .all(|(k, r)| labels.get(k).is_some_and(|v| r.is_match(v)))
    }

    /// When a heartbeat watched since `base` (its last signal, or when watching began) is late.
    pub fn deadline(&self, base: DateTime<Utc>) -> DateTime<Utc> {
        base + chrono::Duration::from_std(self.interval + self.grace).unwrap_or_default()
    }

    /// The title of the incident a late heartbeat opens, in Chinese and English.
    pub fn late_title(&self, silent_since: DateTime<Utc>, ever_seen: bool) -> String {
        let since = silent_since.format("%Y-%m-%d %H:%M:%S UTC");
        let every = HumanDuration(self.interval);
        if ever_seen {
            format!(
                "心跳超时：{name} 自 {since} 起无信号（应每 {every} 一次）/ Heartbeat late: {name} silent since {since} (expected every {every})",
                name = self.name
            )
        } else {
            format!(
                "心跳超时：{name} 自 {since} 开始监视起从未收到信号（应每 {every} 一次）/ Heartbeat late: {name} never heard from since {since} (expected every {every})",
                name = self.name
            )
        }
    }

    /// The incident's summary: which source, how it signals, what was seen last.
    pub fn late_summary(
        &self,
        last_seen: Option<(DateTime<Utc>, &str)>,
        now: DateTime<Utc>,
    ) -> String {
        let how = match &self.alert_spec {
            Some(a) => format!(
                "an alert{}{} (or POST /api/v1/heartbeats/{})",
                a.source
                    .as_deref()
                    .map(|s| format!(" from {s}"))
                    .unwrap_or_default(),
                if a.labels.is_empty() {
                    String::new()
                } else {
                    format!(
                        " with {}",
                        a.labels
                            .iter()
                            .map(|(k, v)| format!("{k} ~ {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                self.name
            ),
            None => format!("POST /api/v1/heartbeats/{}", self.name),
        };
        let last = match last_seen {
            Some((t, via)) => format!(
                "上次信号 / last signal: {} via {via} ({} ago).",
                t.format("%Y-%m-%d %H:%M:%S UTC"),
                humanize((now - t).to_std().unwrap_or_default())
            ),
            None => "从未收到信号 / no signal ever received.".to_string(),
        };
        let what = if self.description.is_empty() {
            String::new()
        } else {
            format!("{}\n", self.description)
        };
        format!(
            "{what}监视的信号 / signal watched: {how}, expected every {} (grace {}). {last}\n\
             该来源可能已失明：在它恢复之前，它本应报告的告警不会到达。/ The source may be blind: until it \
             recovers, alerts it should raise will not arrive.",
            HumanDuration(self.interval),
            HumanDuration(self.grace),
        )
    }
}

/// Every configured heartbeat, by name.
#[derive(Debug, Default)]
pub struct Heartbeats {
    all: Vec<Arc<Heartbeat>>,
}

impl Heartbeats {
    /// Compile and check `[[heartbeats]]`; every problem as (key, message).
    pub fn compile(specs: &[HeartbeatSpec]) -> Result<Heartbeats, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut all: Vec<Arc<Heartbeat>> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, s) in specs.iter().enumerate() {
            let at = |k: &str| format!("heartbeats[{i}].{k}");
            let before = problems.len();
            if !is_id(&s.name) {
                problems.push((
                    at("name"),
                    format!(
                        "`{}`: use lower-case letters, digits, _ and -, starting with a letter (it is part of the URL POST /api/v1/heartbeats/<name>)",
                        s.name
                    ),
                ));
            } else if !names.insert(s.name.as_str()) {
                problems.push((
                    at("name"),
                    format!("`{}` is used by another heartbeat", s.name),
                ));
            }
            if s.interval.0 < Duration::from_secs(1) {
                problems.push((
                    at("interval"),
                    format!(
                        "{} is too short; give how often the signal comes, at least 1s (e.g. 1m)",
                        s.interval
                    ),
                ));
            }
            let mut labels = Vec::new();
            if let Some(a) = &s.alert {
                if a.source.as_deref().is_some_and(|x| x.trim().is_empty()) {
                    problems.push((
                        at("alert.source"),
                        "give the alerts' source, e.g. \"alertmanager\", or leave source out"
                            .into(),
                    ));
                }
                if a.source.is_none() && a.labels.is_empty() {
                    problems.push((
                        at("alert"),
                        "say which alerts are the signal: give source and/or labels, e.g. { source = \"alertmanager\", labels = { alertname = \"^Watchdog$\" } }".into(),
                    ));
                }
                for (k, p) in &a.labels {
                    match super::classify::compile_pattern(p) {
                        Ok(r) => labels.push((k.clone(), r)),
                        Err(e) => problems.push((at(&format!("alert.labels.{k}")), e)),
                    }
                }
            }
            if problems.len() == before {
                all.push(Arc::new(Heartbeat {
                    name: s.name.clone(),
                    description: s.description.trim().to_string(),
                    interval: s.interval.0,
                    grace: s.grace.0,
                    severity: s.severity,
                    alert_spec: s.alert.clone(),
                    source: s.alert.as_ref().and_then(|a| a.source.clone()),
                    labels,
                }));
            }
        }
        if problems.is_empty() {
            Ok(Heartbeats { all })
        } else {
            Err(problems)
        }
    }

    pub fn all(&self) -> &[Arc<Heartbeat>] {
        &self.all
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Heartbeat>> {
        self.all.iter().find(|b| b.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.all.iter().map(|b| b.name.as_str()).collect()
    }

    /// The heartbeats an alert is a signal of (none unless it is firing).
    pub fn signalled_by(
        &self,
        source: &str,
        status: AlertStatus,
        labels: &BTreeMap<String, String>,
    ) -> Vec<Arc<Heartbeat>> {
        if status != AlertStatus::Firing || self.all.is_empty() {
            return Vec::new();
        }
        self.all
            .iter()
            .filter(|b| b.signalled_by(source, status, labels))
            .cloned()
            .collect()
    }
}

fn is_id(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::NewAlert;

    fn specs(toml_text: &str) -> Vec<HeartbeatSpec> {
        #[derive(Deserialize)]
        struct F {
            heartbeats: Vec<HeartbeatSpec>,
        }
        toml::from_str::<F>(toml_text).unwrap().heartbeats
    }

    const WATCHDOG: &str = r#"
[[heartbeats]]
name = "alertmanager_watchdog"
description = "Prometheus → Alertmanager"
interval = "1m"
grace = "4m"
alert = { source = "alertmanager", labels = { alertname = "^Watchdog$" } }

[[heartbeats]]
name = "backup-job"
interval = "1d"
grace = "2h"
severity = "S3"
"#;

    fn alert(source: &str, name: &str, status: AlertStatus) -> NewAlert {
        NewAlert {
            source: source.into(),
            status,
            title: name.into(),
            description: String::new(),
            labels: [("alertname".to_string(), name.to_string())]
                .into_iter()
                .collect(),
            annotations: BTreeMap::new(),
            occurred_at: Utc::now(),
            ends_at: None,
            fingerprint: "f".into(),
            dedup_scope: String::new(),
            facts: Default::default(),
            origin: Default::default(),
        }
    }

    #[test]
    fn firing_watchdogs_from_the_source_are_signals() {
        let b = Heartbeats::compile(&specs(WATCHDOG)).unwrap();
        assert_eq!(b.names(), vec!["alertmanager_watchdog", "backup-job"]);
        assert_eq!(b.get("backup-job").unwrap().severity, Severity::S3);
        assert_eq!(
            b.get("alertmanager_watchdog").unwrap().severity,
            Severity::S2
        );
        let hit = |a: &NewAlert| {
            b.signalled_by(&a.source, a.status, &a.labels)
                .iter()
                .map(|h| h.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            hit(&alert("alertmanager", "Watchdog", AlertStatus::Firing)),
            vec!["alertmanager_watchdog"]
        );
        assert!(hit(&alert("alertmanager", "Watchdog", AlertStatus::Resolved)).is_empty());
        assert!(hit(&alert("grafana", "Watchdog", AlertStatus::Firing)).is_empty());
        assert!(hit(&alert("alertmanager", "WatchdogX", AlertStatus::Firing)).is_empty());
        assert!(
            hit(&alert("alertmanager", "DiskFull", AlertStatus::Firing)).is_empty(),
            "a ping-only heartbeat is never signalled by alerts"
        );
    }

    #[test]
    fn problems_name_their_keys() {
        let e = Heartbeats::compile(&specs(
            r#"
[[heartbeats]]
name = "Watch Dog"
interval = "0s"
grace = "1m"
alert = { labels = { alertname = "(" } }

[[heartbeats]]
name = "b"
interval = "1m"
grace = "1m"
alert = {}

[[heartbeats]]
name = "b"
interval = "1m"
grace = "1m"
"#,
        ))
        .unwrap_err();
        let all: Vec<String> = e.iter().map(|(k, m)| format!("{k}: {m}")).collect();
        let all = all.join("\n");
        for needle in [
            "heartbeats[0].name: `Watch Dog`: use lower-case letters",
            "heartbeats[0].interval: 0s is too short",
            "heartbeats[0].alert.labels.alertname: invalid regular expression",
            "heartbeats[1].alert: say which alerts are the signal",
            "heartbeats[2].name: `b` is used by another heartbeat",
        ] {
            assert!(all.contains(needle), "`{needle}` missing from:\n{all}");
        }
    }

    #[test]
    fn deadlines_and_titles() {
        let b = Heartbeats::compile(&specs(WATCHDOG)).unwrap();
        let w = b.get("alertmanager_watchdog").unwrap();
        let t: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        assert_eq!(w.deadline(t), t + chrono::Duration::minutes(5));
        let title = w.late_title(t, true);
        assert!(title.contains("心跳超时：alertmanager_watchdog 自 2026-03-01 10:00:00 UTC 起无信号（应每 1m 一次）"), "{title}");
        assert!(title.contains("Heartbeat late: alertmanager_watchdog silent since 2026-03-01 10:00:00 UTC (expected every 1m)"), "{title}");
        assert!(w.late_title(t, false).contains("never heard from"));
        let s = w.late_summary(
            Some((t, "alert:alertmanager")),
            t + chrono::Duration::minutes(6),
        );
        assert!(s.contains("via alert:alertmanager (6m 0s ago)"), "{s}");
        assert!(s.contains("alertname ~ ^Watchdog$"), "{s}");
    }
}
