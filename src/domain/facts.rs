//! Facts about an incident: who and what is affected, where, and what was done.
//!
//! Facts are versioned (every change is an audit event) and drive classification now and
//! regulatory grading later. The JSON shape is our own format: unknown fields are refused.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::duration::HumanDuration;
pub use super::text::{Audience, Text};

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

// A checked name rather than a `string_enum!`: it parses in any case (`Phone` is `phone`),
// which the macro's parse does not, and its `Ord` is the names' alphabetical order.
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
    } what = "a known threat level"
}

string_enum! {
    /// The risk to people's rights and freedoms (GDPR), least to most.
    Risk {
        Unlikely => "unlikely",
        Risk => "risk",
        High => "high",
    } what = "a known risk level"
}

string_enum! {
    /// Who holds back individual notice (PDPA s 26D(6)).
    NotificationHold {
        LawEnforcement => "law_enforcement",
        Pdpc => "pdpc",
    } what = "a known notification hold"
}

/// Every fact by name, in the order the API documents them (templates and report fields refer
/// to facts by these names).
pub const FACT_FIELDS: &[&str] = &[
    "affected_subjects",
    "affected_subjects_estimated",
    "data_types",
    "jurisdictions",
    "by_jurisdiction",
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
    "title",
    "cause",
    "impact",
    "measures_taken",
    "measures_planned",
    "advice_to_subjects",
    "remedies",
    "contact",
];

/// The free-text facts: a value per locale, internal and public ([`Text`]).
pub const TEXT_FACTS: &[&str] = &[
    "title",
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
    /// The figures that differ per jurisdiction: `{"CN": {"affected_subjects": 2300000},
    /// "SG": {"affected_subjects": 4200, "data_types": ["phone", "id_number"]}}`. Each
    /// jurisdiction's grade, obligations and reports use its own entry (see
    /// [`Facts::for_jurisdiction`]); `affected_subjects` is their sum unless a person gave
    /// another total, and `jurisdictions` lists every key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, JurisdictionFacts>)]
    pub by_jurisdiction: BTreeMap<Jurisdiction, JurisdictionFacts>,
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
    /// The incident's name in reports (事件名称 / incident name), per locale; without it
    /// reports show the incident's `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    /// Free text (this and the facts below): a string (the organisation's default locale),
    /// `{"<locale>": text}`, or `{"internal": …, "public": …}` — see [`super::text`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures_taken: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measures_planned: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice_to_subjects: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedies: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Text>,
}

/// One jurisdiction's own figures (`by_jurisdiction.<code>`). A figure left out is the
/// incident's (`data_types` left out: the incident's data types).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionFacts {
    /// People affected in this jurisdiction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_subjects: Option<u64>,
    /// True while this jurisdiction's count is an estimate (else the incident's flag holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_subjects_estimated: Option<bool>,
    /// The kinds of data concerned in this jurisdiction, where they differ from the incident's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_types: Vec<DataType>,
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

    /// Rules that cross fields (the type system covers the rest), and free text without
    /// control characters: they end up in mails, reports, the public page and its Atom feed,
    /// where most of them are not even allowed.
    pub fn validate(&self) -> Result<(), FactsError> {
        self.no_control_characters()?;
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

    fn no_control_characters(&self) -> Result<(), FactsError> {
        let texts = TEXT_FACTS
            .iter()
            .filter_map(|name| Some((*name, self.text(name)?)))
            .flat_map(|(name, t)| {
                t.parts()
                    .into_iter()
                    .map(move |(at, s)| (format!("{name}{at}"), s))
            });
        let plain = [
            ("mitigation_justification", &self.mitigation_justification),
            ("risk_reason", &self.risk_reason),
        ]
        .into_iter()
        .filter_map(|(name, v)| Some((name.to_string(), v.as_deref()?)));
        for (path, s) in texts.chain(plain) {
            if let Some(c) = super::text::control_character(s) {
                return Err(FactsError {
                    path,
                    message: format!(
                        "contains the control character U+{:04X}; text may hold line breaks and tabs, no other control characters (U+0000–U+001F, U+007F–U+009F)",
                        u32::from(c)
                    ),
                });
            }
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
            } else if let (true, serde_json::Value::Object(per)) = (k == "by_jurisdiction", v) {
                // Merged per jurisdiction: `{"SG": {…}}` replaces SG's entry and keeps the
                // others; `{"SG": null}` removes it.
                let mut have = match merged.remove(k) {
                    Some(serde_json::Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                for (code, entry) in per {
                    let code = code
                        .parse::<Jurisdiction>()
                        .map_or_else(|_| code.clone(), |j| j.0);
                    if entry.is_null() {
                        have.remove(&code);
                    } else {
                        have.insert(code, entry.clone());
                    }
                }
                if !have.is_empty() {
                    merged.insert(k.clone(), serde_json::Value::Object(have));
                }
            } else {
                merged.insert(k.clone(), v.clone());
            }
        }
        let mut facts: Facts = serde_path_to_error::deserialize(serde_json::Value::Object(merged))
            .map_err(|e| FactsError {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        let given = |k: &str| changes.get(k).is_some_and(|v| !v.is_null());
        facts.settle_jurisdictions(self, given("affected_subjects"), given("jurisdictions"))?;
        facts.validate()?;
        Ok(facts)
    }

    /// Facts given whole (a declaration): the cross-field rules, with the total derived from
    /// the per-jurisdiction counts when none is given and `jurisdictions` completed.
    pub fn settled(mut self) -> Result<Facts, FactsError> {
        let total_given = self.affected_subjects.is_some();
        self.settle_jurisdictions(&Facts::default(), total_given, false)?;
        self.validate()?;
        Ok(self)
    }

    /// The sum of the per-jurisdiction counts, when any is given.
    pub fn jurisdiction_sum(&self) -> Option<u64> {
        let counts: Vec<u64> = self
            .by_jurisdiction
            .values()
            .filter_map(|j| j.affected_subjects)
            .collect();
        (!counts.is_empty()).then(|| counts.iter().sum())
    }

    /// After a change: the total follows the per-jurisdiction counts — it moves by as much as
    /// their sum moved, so people counted in no jurisdiction (or in two) stay as they were; it is
    /// their sum when there was none — unless the change gives a total, which is taken as
    /// given. No jurisdiction's count may exceed the total; `jurisdictions` lists every
    /// jurisdiction with figures.
    fn settle_jurisdictions(
        &mut self,
        before: &Facts,
        total_given: bool,
        list_given: bool,
    ) -> Result<(), FactsError> {
        if self.by_jurisdiction.is_empty() {
            return Ok(());
        }
        if let Some(sum) = self.jurisdiction_sum()
            && !total_given
        {
            self.affected_subjects = match (self.affected_subjects, before.jurisdiction_sum()) {
                (Some(total), Some(was)) => {
                    let moved = i128::from(total) + i128::from(sum) - i128::from(was);
                    // Never below a jurisdiction's own count.
                    let floor = self
                        .by_jurisdiction
                        .values()
                        .filter_map(|j| j.affected_subjects)
                        .max()
                        .unwrap_or(0);
                    Some(u64::try_from(moved.max(i128::from(floor))).unwrap_or(sum))
                }
                (Some(total), None) => Some(total.max(sum)),
                (None, _) => Some(sum),
            };
        }
        if let Some(total) = self.affected_subjects {
            for (code, j) in &self.by_jurisdiction {
                if let Some(n) = j.affected_subjects.filter(|n| *n > total) {
                    return Err(FactsError {
                        path: format!("by_jurisdiction.{code}.affected_subjects"),
                        message: format!(
                            "{code}'s count {n} is above the incident's total affected_subjects {total}: \
                             raise the total, or clear it (\"affected_subjects\": null) to have it \
                             derived as the sum of the jurisdictions' counts"
                        ),
                    });
                }
            }
        }
        for code in self.by_jurisdiction.keys() {
            if self.jurisdictions.contains(code) {
                continue;
            }
            if list_given {
                return Err(FactsError {
                    path: "jurisdictions".into(),
                    message: format!(
                        "`{code}` has figures in by_jurisdiction, so it is one of the incident's \
                         jurisdictions: list it too, or remove its figures with \
                         {{\"by_jurisdiction\": {{\"{code}\": null}}}}"
                    ),
                });
            }
            self.jurisdictions.push(code.clone());
        }
        Ok(())
    }

    /// The facts as jurisdiction `code` sees them: its own count and data types (from
    /// `by_jurisdiction`) in place of the incident's, and no other jurisdiction's figures.
    /// Without an entry for `code` the incident's figures hold.
    pub fn for_jurisdiction(&self, code: &Jurisdiction) -> Facts {
        let mut f = self.clone();
        f.by_jurisdiction.retain(|c, _| c == code);
        if let Some(j) = self.by_jurisdiction.get(code) {
            if let Some(n) = j.affected_subjects {
                f.affected_subjects = Some(n);
                f.affected_subjects_estimated = j
                    .affected_subjects_estimated
                    .or(self.affected_subjects_estimated);
            }
            if !j.data_types.is_empty() {
                f.data_types = j.data_types.clone();
            }
        }
        f
    }

    /// Whether jurisdiction `code` has a count of its own.
    pub fn has_own_count(&self, code: &Jurisdiction) -> bool {
        self.by_jurisdiction
            .get(code)
            .is_some_and(|j| j.affected_subjects.is_some())
    }

    /// A free-text fact by its name in [`TEXT_FACTS`].
    pub fn text(&self, name: &str) -> Option<&Text> {
        match name {
            "title" => self.title.as_ref(),
            "cause" => self.cause.as_ref(),
            "impact" => self.impact.as_ref(),
            "measures_taken" => self.measures_taken.as_ref(),
            "measures_planned" => self.measures_planned.as_ref(),
            "advice_to_subjects" => self.advice_to_subjects.as_ref(),
            "remedies" => self.remedies.as_ref(),
            "contact" => self.contact.as_ref(),
            _ => None,
        }
    }

    /// The first text fact naming a locale outside `allowed` (the organisation's locales), as
    /// an error naming the fact and the locale.
    pub fn check_locales(
        &self,
        allowed: &[String],
        default_locale: &str,
    ) -> Result<(), FactsError> {
        for name in TEXT_FACTS {
            let Some(t) = self.text(name) else { continue };
            for l in t.locales(default_locale) {
                if !allowed.iter().any(|a| super::text::same_locale(a, &l)) {
                    return Err(FactsError {
                        path: (*name).into(),
                        message: format!(
                            "`{l}` is not a locale the organisation uses (its documents are written in {}): give the text in those",
                            allowed.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(())
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

    /// Keep every free-text fact internal ([`Text::internal_only`]): for facts from alert
    /// senders (the ingest role), which must never become what notices and the public
    /// announcement say. A responder's own public version is written with a facts update.
    pub fn keep_text_internal(&mut self) {
        for t in [
            &mut self.title,
            &mut self.cause,
            &mut self.impact,
            &mut self.measures_taken,
            &mut self.measures_planned,
            &mut self.advice_to_subjects,
            &mut self.remedies,
            &mut self.contact,
        ] {
            if let Some(text) = t.take() {
                *t = Some(text.internal_only());
            }
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
        // Per-jurisdiction counts only grow too; data types are unions.
        for (code, theirs) in &other.by_jurisdiction {
            let mine = self.by_jurisdiction.entry(code.clone()).or_default();
            if let Some(n) = theirs.affected_subjects {
                mine.affected_subjects = Some(mine.affected_subjects.map_or(n, |m| m.max(n)));
            }
            for d in &theirs.data_types {
                if !mine.data_types.contains(d) {
                    mine.data_types.push(d.clone());
                }
            }
            if !self.jurisdictions.contains(code) {
                self.jurisdictions.push(code.clone());
            }
        }
        if let Some(sum) = self.jurisdiction_sum()
            && self.affected_subjects.is_none_or(|n| n < sum)
        {
            self.affected_subjects = Some(sum);
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

/// A facts patch from `KEY=VALUE` lines, as `incidentd facts --set` and the console's facts
/// form take them: `data_types` and `jurisdictions` are comma-separated lists, whole numbers
/// are numbers, `true`/`false` booleans, an empty value removes the fact (JSON null), anything
/// else is text. A dotted key sets a part: `cause.public.en=…` (one audience, one language),
/// `by_jurisdiction.CN.affected_subjects=2300000` (one jurisdiction's count).
pub fn patch_of_pairs<'a>(
    pairs: impl IntoIterator<Item = &'a str>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    use serde_json::{Map, Value, json};
    let mut patch = Map::new();
    for pair in pairs {
        let (key, raw) = pair
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("fact `{pair}` must be KEY=VALUE"))?;
        let path: Vec<&str> = key.split('.').map(str::trim).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(format!("fact `{pair}`: `{key}` has an empty part"));
        }
        let value = if raw.is_empty() {
            Value::Null
        } else if matches!(path[path.len() - 1], "data_types" | "jurisdictions") {
            json!(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            )
        } else if let Ok(n) = raw.parse::<u64>() {
            json!(n)
        } else {
            match raw {
                "true" => json!(true),
                "false" => json!(false),
                _ => json!(raw),
            }
        };
        let mut at = &mut patch;
        for part in &path[..path.len() - 1] {
            let slot = at
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(next) = slot else {
                unreachable!("made an object above")
            };
            at = next;
        }
        at.insert(path[path.len() - 1].to_string(), value);
    }
    Ok(patch)
}

#[cfg(test)]
mod pair_tests {
    use serde_json::json;

    #[test]
    fn pairs_make_a_patch_with_lists_numbers_parts_and_removals() {
        let p = super::patch_of_pairs([
            "by_jurisdiction.CN.affected_subjects=2300000",
            "by_jurisdiction.SG.affected_subjects=4200",
            "by_jurisdiction.SG.data_types=phone",
            "data_types=phone, id_number",
            "cause.public.en=A misconfigured export",
            "remedies=",
        ])
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(p),
            json!({
                "by_jurisdiction": {
                    "CN": {"affected_subjects": 2300000},
                    "SG": {"affected_subjects": 4200, "data_types": ["phone"]}
                },
                "data_types": ["phone", "id_number"],
                "cause": {"public": {"en": "A misconfigured export"}},
                "remedies": null
            })
        );
        assert!(super::patch_of_pairs(["no equals sign"]).is_err());
        assert!(super::patch_of_pairs(["cause..en=x"]).is_err());
    }
}

#[cfg(test)]
mod tests;
