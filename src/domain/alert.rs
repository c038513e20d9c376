//! Normalised alerts, whatever format they arrived in, and the keys derived from them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::classify::Correlation;
use super::facts::Facts;

string_enum! {
    AlertStatus {
        Firing => "firing",
        Resolved => "resolved",
    } what = "an alert status"
}

/// Where an alert came from, beyond its source name: kept for responders, never interpreted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Alertmanager's count of alerts left out of this group's notification.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated_alerts: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One alert in the shape every adapter produces.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub source: String,
    pub status: AlertStatus,
    pub title: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub occurred_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// The sender's fingerprint, or one derived from source, title and labels.
    pub fingerprint: String,
    /// Scope in which (fingerprint, status, occurred_at) identifies a notification: Alertmanager's
    /// group key, empty for the generic format.
    pub dedup_scope: String,
    pub facts: Facts,
    pub origin: Origin,
}

impl NewAlert {
    /// Identifies one notification of one alert state: a re-send (or an HA peer's copy)
    /// has the same key and is recorded once.
    ///
    /// The key starts with the alert's time (microseconds, fixed-width hex) so that new keys
    /// land at the end of the store's unique index instead of on a random page of it: with
    /// millions of alerts that is a few pages written per commit instead of one per alert.
    pub fn dedup_key(&self) -> String {
        let nanos = self
            .occurred_at
            .timestamp_nanos_opt()
            .unwrap_or_else(|| self.occurred_at.timestamp_micros().saturating_mul(1000));
        let hash = short_hash(&[
            self.source.as_bytes(),
            self.dedup_scope.as_bytes(),
            self.fingerprint.as_bytes(),
            self.status.as_str().as_bytes(),
            nanos.to_string().as_bytes(),
        ]);
        format!("{:014x}-{hash}", self.occurred_at.timestamp_micros().max(0))
    }

    /// The key under which this alert joins an open incident: its sender's group (the
    /// fingerprint when the sender names none), its own fingerprint, or the configured labels
    /// when it has them all (else its fingerprint).
    pub fn group_key(&self, how: &Correlation) -> String {
        match how {
            Correlation::Group => match self.origin.group_key.as_deref() {
                Some(g) if !g.is_empty() => format!("{}|group|{g}", self.source),
                _ => self.fingerprint_key(),
            },
            Correlation::Fingerprint => self.fingerprint_key(),
            Correlation::Labels(group_by) => {
                let values: Option<Vec<String>> = group_by
                    .iter()
                    .map(|l| self.labels.get(l).map(|v| format!("{l}={v}")))
                    .collect();
                match values {
                    Some(values) => format!("{}|labels|{}", self.source, values.join(",")),
                    None => self.fingerprint_key(),
                }
            }
        }
    }

    fn fingerprint_key(&self) -> String {
        format!("{}|fp|{}", self.source, self.fingerprint)
    }

    /// Identifies the alert itself across its notifications (firing, resolved, firing again):
    /// an incident keeps one status per alert key.
    pub fn alert_key(&self) -> String {
        alert_key(&self.source, &self.fingerprint)
    }

    /// Everything a text rule looks at: title, description and annotation values.
    pub fn text(&self) -> String {
        let mut t = String::with_capacity(self.title.len() + self.description.len() + 64);
        t.push_str(&self.title);
        t.push('\n');
        t.push_str(&self.description);
        for v in self.annotations.values() {
            t.push('\n');
            t.push_str(v);
        }
        t
    }
}

/// See [`NewAlert::alert_key`].
pub fn alert_key(source: &str, fingerprint: &str) -> String {
    format!("{source}|{fingerprint}")
}

/// A fingerprint for senders that give none: stable over source, title and sorted labels.
pub fn derive_fingerprint(source: &str, title: &str, labels: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<&[u8]> = vec![source.as_bytes(), title.as_bytes()];
    for (k, v) in labels {
        parts.push(k.as_bytes());
        parts.push(v.as_bytes());
    }
    let h = super::audit::sha256_parts(&parts);
    hex::encode(&h[..8])
}

fn short_hash(parts: &[&[u8]]) -> String {
    hex::encode(&super::audit::sha256_parts(parts)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> NewAlert {
        NewAlert {
            source: "alertmanager".into(),
            status: AlertStatus::Firing,
            title: "t".into(),
            description: String::new(),
            labels: [
                ("alertname".into(), "A".into()),
                ("instance".into(), "i1".into()),
            ]
            .into_iter()
            .collect(),
            annotations: BTreeMap::new(),
            occurred_at: "2026-11-25T07:57:56.123456789Z".parse().unwrap(),
            ends_at: None,
            fingerprint: "e7c069c9d88f841a".into(),
            dedup_scope: "{}:{alertname=\"A\"}".into(),
            facts: Facts::default(),
            origin: Origin::default(),
        }
    }

    #[test]
    fn dedup_key_separates_states_and_starts() {
        let a = alert();
        let mut resolved = a.clone();
        resolved.status = AlertStatus::Resolved;
        let mut restarted = a.clone();
        restarted.occurred_at = "2026-11-25T07:57:56.123456790Z".parse().unwrap();
        assert_eq!(a.dedup_key(), alert().dedup_key());
        assert_ne!(a.dedup_key(), resolved.dedup_key());
        assert_ne!(a.dedup_key(), restarted.dedup_key(), "nanoseconds count");
        let mut later = a.clone();
        later.occurred_at += chrono::Duration::microseconds(1);
        assert!(a.dedup_key() < later.dedup_key(), "keys sort by time");
    }

    #[test]
    fn group_key_follows_the_correlation() {
        let mut a = alert();
        let labels = |l: &[&str]| Correlation::Labels(l.iter().map(|s| s.to_string()).collect());
        // Without a sender's group, the group is the alert itself.
        assert_eq!(
            a.group_key(&Correlation::Group),
            "alertmanager|fp|e7c069c9d88f841a"
        );
        a.origin.group_key = Some("{}:{alertname=\"A\"}".into());
        assert_eq!(
            a.group_key(&Correlation::Group),
            "alertmanager|group|{}:{alertname=\"A\"}"
        );
        assert_eq!(
            a.group_key(&Correlation::Fingerprint),
            "alertmanager|fp|e7c069c9d88f841a"
        );
        assert_eq!(
            a.group_key(&labels(&["alertname"])),
            "alertmanager|labels|alertname=A"
        );
        assert_eq!(
            a.group_key(&labels(&["alertname", "cluster"])),
            "alertmanager|fp|e7c069c9d88f841a",
            "labels only when all are present"
        );
        assert_eq!(a.alert_key(), "alertmanager|e7c069c9d88f841a");
    }

    #[test]
    fn derived_fingerprint_ignores_label_order() {
        let mut l1 = BTreeMap::new();
        l1.insert("a".to_string(), "1".to_string());
        l1.insert("b".to_string(), "2".to_string());
        let f1 = derive_fingerprint("s", "t", &l1);
        assert_eq!(f1.len(), 16);
        assert_ne!(f1, derive_fingerprint("s", "u", &l1));
    }
}
