//! Facts about an incident: who and what is affected, where, and what was done.
//!
//! Facts are versioned (every change is an audit event) and drive classification now and
//! regulatory grading later. The JSON shape is our own format: unknown fields are refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Kinds of personal data, as used by the jurisdiction rules (e.g. Singapore's significant-harm
/// combinations). A closed list, so a typo is refused instead of silently weakening a rule.
pub const DATA_TYPES: &[&str] = &[
    "name",
    "phone",
    "email",
    "address",
    "id_number",
    "passport",
    "account_id",
    "credentials",
    "bank_account",
    "payment_card",
    "financial",
    "biometric",
    "health",
    "location",
    "minor_data",
    "device_id",
    "browsing",
    "contacts",
    "messages",
    "order_history",
    "other",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[schema(value_type = String, example = "phone")]
pub struct DataType(String);

impl DataType {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DataType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        if DATA_TYPES.contains(&t.as_str()) {
            Ok(DataType(t))
        } else {
            Err(format!(
                "`{s}` is not a known data type; use one of: {}",
                DATA_TYPES.join(", ")
            ))
        }
    }
}

impl<'de> Deserialize<'de> for DataType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A jurisdiction code: ISO 3166 alpha-2 (`CN`, `SG`) or a union such as `EU`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[schema(value_type = String, example = "CN")]
pub struct Jurisdiction(String);

impl Jurisdiction {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Jurisdiction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_uppercase();
        if (2..=3).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Jurisdiction(t))
        } else {
            Err(format!(
                "`{s}` is not a jurisdiction code; use two or three letters such as CN, SG or EU"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Jurisdiction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// Number of people affected; may be an estimate and may grow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_subjects: Option<u64>,
    /// True while `affected_subjects` is an estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_subjects_estimated: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_types: Vec<DataType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jurisdictions: Vec<Jurisdiction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_infrastructure: Option<bool>,
    /// The measures taken effectively prevent harm (PIPL art. 57 exemption); needs a justification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation_effective: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation_justification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regulator_requires_notice: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspected_crime: Option<bool>,
    /// Direct economic loss in CNY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub economic_loss_cny: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures_taken: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures_planned: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice_to_subjects: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedies: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// Why a facts update was refused; `path` names the field (`data_types[1]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FactsError {
    pub path: String,
    pub message: String,
}

impl Facts {
    pub fn is_empty(&self) -> bool {
        self == &Facts::default()
    }

    /// Rules that cross fields (the type system covers the rest).
    pub fn validate(&self) -> Result<(), FactsError> {
        if self.mitigation_effective == Some(true)
            && self
                .mitigation_justification
                .as_deref()
                .is_none_or(|j| j.trim().is_empty())
        {
            return Err(FactsError {
                path: "mitigation_justification".into(),
                message: "`mitigation_effective = true` needs a justification: say which measures prevent harm and why".into(),
            });
        }
        Ok(())
    }

    /// Apply a JSON merge patch (RFC 7396): present fields replace, `null` clears.
    pub fn apply_patch(&self, patch: &serde_json::Value) -> Result<Facts, FactsError> {
        let serde_json::Value::Object(changes) = patch else {
            return Err(FactsError {
                path: "(body)".into(),
                message: "a facts update is a JSON object, e.g. {\"affected_subjects\": 1200}"
                    .into(),
            });
        };
        let mut merged = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for (k, v) in changes {
            if v.is_null() {
                merged.remove(k);
            } else {
                merged.insert(k.clone(), v.clone());
            }
        }
        let facts: Facts = serde_path_to_error::deserialize(serde_json::Value::Object(merged))
            .map_err(|e| FactsError {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        facts.validate()?;
        Ok(facts)
    }

    /// Fold in facts reported by an alert: counts only grow, lists are unions, and values a
    /// person already set are kept. Returns whether anything changed.
    pub fn absorb(&mut self, other: &Facts) -> bool {
        let before = self.clone();
        if let Some(n) = other.affected_subjects {
            self.affected_subjects = Some(self.affected_subjects.map_or(n, |m| m.max(n)));
        }
        for d in &other.data_types {
            if !self.data_types.contains(d) {
                self.data_types.push(d.clone());
            }
        }
        for j in &other.jurisdictions {
            if !self.jurisdictions.contains(j) {
                self.jurisdictions.push(j.clone());
            }
        }
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f.clone(); } )* };
        }
        fill!(
            affected_subjects_estimated,
            critical_infrastructure,
            suspected_crime,
            economic_loss_cny,
            cause,
            impact
        );
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_field_is_refused_with_its_path() {
        let e = Facts::default()
            .apply_patch(&json!({"affected": 3}))
            .unwrap_err();
        assert!(e.message.contains("unknown field `affected`"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_path() {
        let e = Facts::default()
            .apply_patch(&json!({"data_types": ["phone", "fone"]}))
            .unwrap_err();
        assert_eq!(e.path, "data_types[1]");
        assert!(e.message.contains("not a known data type"), "{e}");
    }

    #[test]
    fn merge_patch_replaces_and_clears() {
        let f = Facts::default()
            .apply_patch(&json!({"affected_subjects": 10, "cause": "x"}))
            .unwrap();
        let f = f
            .apply_patch(&json!({"affected_subjects": 12, "cause": null}))
            .unwrap();
        assert_eq!(f.affected_subjects, Some(12));
        assert_eq!(f.cause, None);
    }

    #[test]
    fn mitigation_needs_justification() {
        let e = Facts::default()
            .apply_patch(&json!({"mitigation_effective": true}))
            .unwrap_err();
        assert_eq!(e.path, "mitigation_justification");
    }

    #[test]
    fn absorb_only_grows() {
        let mut f = Facts {
            affected_subjects: Some(100),
            cause: Some("person".into()),
            ..Facts::default()
        };
        let alert = Facts {
            affected_subjects: Some(50),
            data_types: vec!["phone".parse().unwrap()],
            cause: Some("alert".into()),
            ..Facts::default()
        };
        assert!(f.absorb(&alert));
        assert_eq!(f.affected_subjects, Some(100));
        assert_eq!(f.cause.as_deref(), Some("person"));
        assert_eq!(f.data_types.len(), 1);
        assert!(!f.absorb(&alert));
    }
}
