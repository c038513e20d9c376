//! Facts about an incident: who and what is affected, where, and what was done.
//!
//! Facts are versioned (every change is an audit event) and drive classification now and
//! regulatory grading later. The JSON shape is our own format: unknown fields are refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::duration::HumanDuration;

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

string_enum! {
    /// How serious the threat is (CN grading guide), least to most.
    Threat {
        RelativelySerious => "relatively_serious",
        Serious => "serious",
        ParticularlySerious => "particularly_serious",
    } what = "threat level"
}

string_enum! {
    /// The risk to people's rights and freedoms (GDPR), least to most.
    Risk {
        Unlikely => "unlikely",
        Risk => "risk",
        High => "high",
    } what = "risk level"
}

string_enum! {
    /// Who holds back individual notice (PDPA s 26D(6)).
    NotificationHold {
        LawEnforcement => "law_enforcement",
        Pdpc => "pdpc",
    } what = "notification hold"
}

/// Every fact by name, in the order the API documents them (templates and report fields refer
/// to facts by these names).
pub const FACT_FIELDS: &[&str] = &[
    "affected_subjects",
    "affected_subjects_estimated",
    "data_types",
    "jurisdictions",
    "critical_infrastructure",
    "mitigation_effective",
    "mitigation_justification",
    "regulator_requires_notice",
    "suspected_crime",
    "economic_loss_cny",
    "outage_whole_system",
    "outage_main_functions",
    "important_data",
    "threat",
    "significant_harm",
    "technological_protection",
    "notification_hold",
    "risk",
    "risk_reason",
    "disproportionate_effort",
    "records_affected",
    "cause",
    "impact",
    "measures_taken",
    "measures_planned",
    "advice_to_subjects",
    "remedies",
    "contact",
];

/// The facts that are yes/no, by name: jurisdiction packs test them (`facts_true`).
pub const FLAG_FACTS: &[&str] = &[
    "affected_subjects_estimated",
    "critical_infrastructure",
    "mitigation_effective",
    "regulator_requires_notice",
    "suspected_crime",
    "important_data",
    "significant_harm",
    "technological_protection",
    "notification_hold",
    "disproportionate_effort",
];

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
    /// Outage of the whole system (CN grading: CII outage thresholds), e.g. `"45m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "45m")]
    pub outage_whole_system: Option<HumanDuration>,
    /// Outage of the main functions (CN grading), e.g. `"2h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2h")]
    pub outage_main_functions: Option<HumanDuration>,
    /// Important data (as the Data Security Law defines it) is involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub important_data: Option<bool>,
    /// A person's judgement of the threat to national security, public interest or people's
    /// rights (CN grading): `relatively_serious`, `serious` or `particularly_serious`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<Threat>,
    /// A person's judgement that the breach causes or is likely to cause significant harm to an
    /// affected individual (SG), beyond the data combinations deemed so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub significant_harm: Option<bool>,
    /// The data were protected so that they are unintelligible (e.g. encrypted with a key that
    /// did not leak): SG's technological-measure exception, GDPR art. 34(3)(a).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technological_protection: Option<bool>,
    /// Individual notice must not be given: a law-enforcement agency instructs so, or the PDPC
    /// directs so (SG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_hold: Option<NotificationHold>,
    /// The risk to people's rights and freedoms (GDPR): `unlikely`, `risk` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// Why the risk is what `risk` says; required for `unlikely` (GDPR art. 33(1), 33(5)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_reason: Option<String>,
    /// Telling people one by one would take disproportionate effort (GDPR art. 34(3)(c)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disproportionate_effort: Option<bool>,
    /// Approximate number of personal-data records concerned (GDPR art. 33(3)(a)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_affected: Option<u64>,
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
        if self.risk == Some(Risk::Unlikely)
            && self
                .risk_reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
        {
            return Err(FactsError {
                path: "risk_reason".into(),
                message: "`risk = \"unlikely\"` needs a reason: GDPR art. 33(5) requires the \
                          reason a breach is not reported to be documented"
                    .into(),
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

    /// A yes/no fact by its name in [`FLAG_FACTS`] (`notification_hold`: whether one is set).
    /// Unset reads as no.
    pub fn flag(&self, name: &str) -> bool {
        match name {
            "affected_subjects_estimated" => self.affected_subjects_estimated == Some(true),
            "critical_infrastructure" => self.critical_infrastructure == Some(true),
            "mitigation_effective" => self.mitigation_effective == Some(true),
            "regulator_requires_notice" => self.regulator_requires_notice == Some(true),
            "suspected_crime" => self.suspected_crime == Some(true),
            "important_data" => self.important_data == Some(true),
            "significant_harm" => self.significant_harm == Some(true),
            "technological_protection" => self.technological_protection == Some(true),
            "notification_hold" => self.notification_hold.is_some(),
            "disproportionate_effort" => self.disproportionate_effort == Some(true),
            _ => false,
        }
    }

    /// Fold in facts reported by an alert: counts only grow, lists are unions, and values a
    /// person already set are kept. Returns whether anything changed.
    pub fn absorb(&mut self, other: &Facts) -> bool {
        let before = self.clone();
        if let Some(n) = other.affected_subjects {
            self.affected_subjects = Some(self.affected_subjects.map_or(n, |m| m.max(n)));
        }
        // Outages only grow: a later alert reports the outage so far.
        for (mine, theirs) in [
            (&mut self.outage_whole_system, other.outage_whole_system),
            (&mut self.outage_main_functions, other.outage_main_functions),
        ] {
            if let Some(t) = theirs {
                *mine = Some(mine.map_or(t, |m| m.max(t)));
            }
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
            important_data,
            records_affected,
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
