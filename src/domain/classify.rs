//! Classification: ordered rules map an alert (or an incident's text and facts) to a category
//! and a severity. The first rule that matches decides. Personal-information categories are
//! always `S1`, whatever a rule or label says.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::facts::{DataType, Facts, Jurisdiction};
use super::incident::{Category, Severity};

/// The rules file as written (`config/classification.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub facts_from: FactsFrom,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// What happens to alerts no rule matches.
    #[serde(default)]
    pub unmatched: UnmatchedSpec,
}

/// `[unmatched]`: alerts no rule matches. A critical signal must never be only recorded, so
/// the default opens a triage incident for what the sender calls critical or high.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmatchedSpec {
    /// `triage`: an unmatched alert whose sender's severity maps to `min_severity` or higher
    /// opens an `unclassified` incident at that severity; `record`: unmatched alerts are only
    /// recorded (and counted on /metrics).
    #[serde(default = "default_unmatched_policy")]
    pub policy: String,
    #[serde(default = "default_unmatched_min")]
    pub min_severity: String,
}

impl Default for UnmatchedSpec {
    fn default() -> Self {
        UnmatchedSpec {
            policy: default_unmatched_policy(),
            min_severity: default_unmatched_min(),
        }
    }
}

fn default_unmatched_policy() -> String {
    "triage".into()
}
fn default_unmatched_min() -> String {
    "S2".into()
}

/// The rule name a triage incident for an unmatched alert carries; no rule may use it.
pub const UNMATCHED_RULE: &str = "unmatched";

/// How alerts join one incident.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Correlation {
    /// The sender's group: Alertmanager's and Grafana's `groupKey`, the generic `group_key`;
    /// the fingerprint for senders that give none.
    #[default]
    Group,
    /// Each alert (fingerprint) on its own.
    Fingerprint,
    /// These labels' values; the fingerprint for an alert that lacks one of them.
    Labels(Vec<String>),
}

impl Correlation {
    /// From `correlate` and `group_by` as a rules file writes them; `at` names the table.
    fn parse(
        correlate: Option<&str>,
        group_by: Option<&[String]>,
        at: &str,
        errors: &mut Vec<String>,
    ) -> Option<Correlation> {
        let labels = group_by.filter(|g| !g.is_empty());
        match (correlate, labels) {
            (None, None) | (Some("group"), None) => Some(Correlation::Group),
            (Some("fingerprint"), None) => Some(Correlation::Fingerprint),
            (None | Some("labels"), Some(l)) => Some(Correlation::Labels(l.to_vec())),
            (Some("labels"), None) => {
                errors.push(format!(
                    "{at}.group_by: correlate = \"labels\" needs the labels: group_by = [\"alertname\", \"service\"]"
                ));
                None
            }
            (Some(c @ ("group" | "fingerprint")), Some(_)) => {
                errors.push(format!(
                    "{at}.group_by: group_by names labels for correlate = \"labels\", not \"{c}\"; remove one of them"
                ));
                None
            }
            (Some(other), _) => {
                errors.push(format!(
                    "{at}.correlate: `{other}` is not a correlation; use \"group\" (the sender's alert group, the default), \"fingerprint\" or \"labels\" (with group_by)"
                ));
                None
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Severity of a matching rule that names none and whose alert has no mapped severity label.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Label whose value is looked up in `severity_map` (Alertmanager's `severity`).
    #[serde(default = "default_severity_label")]
    pub severity_label: String,
    #[serde(default)]
    pub severity_map: BTreeMap<String, String>,
    /// How alerts join one open incident: `group` (default), `fingerprint` or `labels`.
    #[serde(default)]
    pub correlate: Option<String>,
    /// The labels for `correlate = "labels"` (naming them alone implies it).
    #[serde(default)]
    pub group_by: Vec<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            severity: default_severity(),
            severity_label: default_severity_label(),
            severity_map: BTreeMap::new(),
            correlate: None,
            group_by: Vec::new(),
        }
    }
}

fn default_severity() -> String {
    "S3".into()
}
fn default_severity_label() -> String {
    "severity".into()
}

/// Where alerts carry facts: `labels.<name>` or `annotations.<name>`, first present wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsFrom {
    #[serde(default)]
    pub affected_subjects: Vec<String>,
    #[serde(default)]
    pub data_types: Vec<String>,
    #[serde(default)]
    pub jurisdictions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub category: String,
    #[serde(default)]
    pub severity: Option<String>,
    /// `false`: record matching alerts but open no incident (known noise).
    #[serde(default = "yes")]
    pub incident: bool,
    /// How this rule's alerts join one incident (default: `[defaults] correlate`).
    #[serde(default)]
    pub correlate: Option<String>,
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default)]
    pub source: Option<String>,
    /// Matched against title, description and annotation values; case-insensitive.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub facts: Option<FactsCondition>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsCondition {
    #[serde(default)]
    pub min_affected_subjects: Option<u64>,
    #[serde(default)]
    pub data_types_any: Vec<String>,
}

/// What classification decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub rule: String,
    pub category: Category,
    pub severity: Severity,
    pub opens_incident: bool,
    pub correlate: Correlation,
}

impl Classification {
    /// A triage incident for an alert no rule matched ([`UNMATCHED_RULE`]).
    pub fn is_triage(&self) -> bool {
        self.rule == UNMATCHED_RULE
    }
}

/// What a rule looks at.
pub struct Subject<'a> {
    pub source: &'a str,
    pub text: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub facts: &'a Facts,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    category: Category,
    severity: Option<Severity>,
    opens_incident: bool,
    correlate: Option<Correlation>,
    source: Option<Regex>,
    text: Option<Regex>,
    labels: Vec<(String, Regex)>,
    annotations: Vec<(String, Regex)>,
    min_affected: Option<u64>,
    data_types_any: Vec<DataType>,
}

/// Compiled, validated rules.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    default_severity: Severity,
    severity_label: String,
    severity_map: BTreeMap<String, Severity>,
    correlate: Correlation,
    facts_from: FactsFrom,
    /// `[unmatched]`: the lowest sender severity that opens a triage incident; `None` records
    /// unmatched alerts only.
    triage_from: Option<Severity>,
}

impl Rules {
    /// Compile a rules file. Every problem is reported, each naming its key.
    pub fn compile(file: &RulesFile) -> Result<Rules, Vec<String>> {
        let mut errors = Vec::new();
        let default_severity = parse_or(&file.defaults.severity, "defaults.severity", &mut errors)
            .unwrap_or(Severity::S3);
        let mut severity_map = BTreeMap::new();
        for (k, v) in &file.defaults.severity_map {
            if let Some(s) = parse_or(v, &format!("defaults.severity_map.{k}"), &mut errors) {
                severity_map.insert(k.to_ascii_lowercase(), s);
            }
        }
        for (key, refs) in [
            ("affected_subjects", &file.facts_from.affected_subjects),
            ("data_types", &file.facts_from.data_types),
            ("jurisdictions", &file.facts_from.jurisdictions),
        ] {
            for r in refs {
                if !(r.starts_with("labels.") || r.starts_with("annotations.")) {
                    errors.push(format!(
                        "facts_from.{key}: `{r}` must be `labels.<name>` or `annotations.<name>`"
                    ));
                }
            }
        }
        let correlate = Correlation::parse(
            file.defaults.correlate.as_deref(),
            Some(&file.defaults.group_by),
            "defaults",
            &mut errors,
        )
        .unwrap_or_default();
        let min = parse_or(
            &file.unmatched.min_severity,
            "unmatched.min_severity",
            &mut errors,
        );
        let triage_from = match file.unmatched.policy.as_str() {
            "triage" => min,
            "record" => None,
            other => {
                errors.push(format!(
                    "unmatched.policy: `{other}` is not a policy; use \"triage\" (critical and high alerts no rule matches open a triage incident) or \"record\" (they are only recorded)"
                ));
                None
            }
        };
        let mut names = std::collections::HashSet::new();
        let mut rules = Vec::new();
        for (i, spec) in file.rules.iter().enumerate() {
            let at = format!("rules[{i}] ({})", spec.name);
            if !names.insert(spec.name.clone()) {
                errors.push(format!("{at}.name: another rule already uses this name"));
            }
            if spec.name == UNMATCHED_RULE {
                errors.push(format!(
                    "{at}.name: `{UNMATCHED_RULE}` names the triage of alerts no rule matches; choose another name"
                ));
            }
            if let Some(rule) = compile_rule(spec, &at, &mut errors) {
                rules.push(rule);
            }
        }
        if errors.is_empty() {
            Ok(Rules {
                rules,
                default_severity,
                severity_label: file.defaults.severity_label.clone(),
                severity_map,
                correlate,
                facts_from: file.facts_from.clone(),
                triage_from,
            })
        } else {
            Err(errors)
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How alerts join incidents when no matching rule says otherwise.
    pub fn default_correlation(&self) -> &Correlation {
        &self.correlate
    }

    /// The rules' names, in order (silences name a rule; an unknown one is refused).
    pub fn names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }

    /// The category a rule (by name) gives.
    pub fn category_of(&self, name: &str) -> Option<Category> {
        self.rules
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.category)
    }

    /// `[unmatched]`: the lowest sender severity that opens a triage incident, if any do.
    pub fn triage_from(&self) -> Option<Severity> {
        self.triage_from
    }

    /// What becomes of an alert no rule matched: a triage incident when its sender's
    /// severity (mapped) reaches `[unmatched] min_severity`, else nothing (recorded only).
    pub fn triage(&self, labels: &BTreeMap<String, String>) -> Option<Classification> {
        let min = self.triage_from?;
        let severity = self.label_severity(labels).filter(|s| *s >= min)?;
        Some(Classification {
            rule: UNMATCHED_RULE.to_string(),
            category: Category::Unclassified,
            severity,
            opens_incident: true,
            correlate: self.correlate.clone(),
        })
    }

    /// The sender's severity mapped through `severity_map`, if its label has a known value.
    pub fn sender_severity(&self, labels: &BTreeMap<String, String>) -> Option<Severity> {
        self.label_severity(labels)
    }

    /// The first matching rule's verdict, or `None` when no rule matches.
    pub fn classify(&self, s: &Subject<'_>) -> Option<Classification> {
        let rule = self.rules.iter().find(|r| r.matches(s))?;
        let severity = match rule.category.severity_floor() {
            Some(floor) => floor,
            None => rule
                .severity
                .or_else(|| self.label_severity(s.labels))
                .unwrap_or(self.default_severity),
        };
        Some(Classification {
            rule: rule.name.clone(),
            category: rule.category,
            severity,
            opens_incident: rule.opens_incident,
            correlate: rule
                .correlate
                .clone()
                .unwrap_or_else(|| self.correlate.clone()),
        })
    }

    fn label_severity(&self, labels: &BTreeMap<String, String>) -> Option<Severity> {
        let v = labels.get(&self.severity_label)?;
        self.severity_map.get(&v.to_ascii_lowercase()).copied()
    }

    /// Facts an alert carries in its labels or annotations. Foreign senders are not refused for
    /// odd values: an unparseable value is skipped.
    pub fn extract_facts(
        &self,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Facts {
        let lookup = |refs: &[String]| -> Option<String> {
            refs.iter().find_map(|r| {
                if let Some(k) = r.strip_prefix("labels.") {
                    labels.get(k).cloned()
                } else if let Some(k) = r.strip_prefix("annotations.") {
                    annotations.get(k).cloned()
                } else {
                    None
                }
            })
        };
        let list = |v: Option<String>| -> Vec<String> {
            v.map(|v| {
                v.split([',', ' ', ';'])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
        };
        Facts {
            affected_subjects: lookup(&self.facts_from.affected_subjects)
                .and_then(|v| v.trim().replace(['_', ','], "").parse().ok()),
            data_types: list(lookup(&self.facts_from.data_types))
                .iter()
                .filter_map(|d| d.parse::<DataType>().ok())
                .collect(),
            jurisdictions: list(lookup(&self.facts_from.jurisdictions))
                .iter()
                .filter_map(|j| j.parse::<Jurisdiction>().ok())
                .collect(),
            ..Facts::default()
        }
    }
}

fn parse_or<T: std::str::FromStr<Err = String>>(
    v: &str,
    key: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    v.parse()
        .map_err(|e| errors.push(format!("{key}: {e}")))
        .ok()
}

/// `\b` and `\B` become ASCII word boundaries. With Unicode ones, any Chinese text makes the
/// regex engine abandon its fast DFA; with ASCII ones a Chinese character simply counts as a
/// boundary, which is what a rule like `\bPII\b` means in mixed Chinese and English text.
fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn regex(pattern: &str, key: &str, errors: &mut Vec<String>) -> Option<Regex> {
    compile_pattern(pattern)
        .map_err(|e| errors.push(format!("{key}: {e}")))
        .ok()
}

/// A rule's pattern as rules compile it: unanchored, case-insensitive, ASCII word boundaries
/// (heartbeats' label patterns are read the same way).
pub fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&ascii_word_boundaries(pattern))
        .case_insensitive(true)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}

fn compile_rule(spec: &RuleSpec, at: &str, errors: &mut Vec<String>) -> Option<Rule> {
    let before = errors.len();
    let category: Option<Category> = parse_or(&spec.category, &format!("{at}.category"), errors);
    let severity: Option<Severity> = spec
        .severity
        .as_deref()
        .and_then(|s| parse_or(s, &format!("{at}.severity"), errors));
    if let (Some(c), Some(s)) = (category, severity)
        && c.is_personal_information()
        && s != Severity::S1
    {
        errors.push(format!(
            "{at}.severity: `{c}` incidents are always S1; remove `severity` or set it to S1"
        ));
    }
    let source = spec
        .source
        .as_deref()
        .and_then(|p| regex(p, &format!("{at}.source"), errors));
    let text = spec
        .text
        .as_deref()
        .and_then(|p| regex(p, &format!("{at}.text"), errors));
    let labels = compile_map(&spec.labels, &format!("{at}.labels"), errors);
    let annotations = compile_map(&spec.annotations, &format!("{at}.annotations"), errors);
    let (min_affected, data_types_any) = match &spec.facts {
        Some(f) => {
            let types = f
                .data_types_any
                .iter()
                .filter_map(|d| parse_or(d, &format!("{at}.facts.data_types_any"), errors))
                .collect();
            (f.min_affected_subjects, types)
        }
        None => (None, Vec::new()),
    };
    let matches_nothing = spec.source.is_none()
        && spec.text.is_none()
        && spec.labels.is_empty()
        && spec.annotations.is_empty()
        && spec.facts.is_none();
    if matches_nothing {
        errors.push(format!(
            "{at}: a rule needs at least one condition (source, text, labels, annotations or facts)"
        ));
    }
    let correlate = if spec.correlate.is_none() && spec.group_by.is_none() {
        None
    } else {
        Correlation::parse(
            spec.correlate.as_deref(),
            spec.group_by.as_deref(),
            at,
            errors,
        )
    };
    if errors.len() > before {
        return None;
    }
    Some(Rule {
        name: spec.name.clone(),
        category: category?,
        severity,
        opens_incident: spec.incident,
        correlate,
        source,
        text,
        labels,
        annotations,
        min_affected,
        data_types_any,
    })
}

fn compile_map(
    m: &BTreeMap<String, String>,
    at: &str,
    errors: &mut Vec<String>,
) -> Vec<(String, Regex)> {
    m.iter()
        .filter_map(|(k, p)| regex(p, &format!("{at}.{k}"), errors).map(|r| (k.clone(), r)))
        .collect()
}

impl Rule {
    fn matches(&self, s: &Subject<'_>) -> bool {
        self.source.as_ref().is_none_or(|r| r.is_match(s.source))
            && self.text.as_ref().is_none_or(|r| r.is_match(s.text))
            && self
                .labels
                .iter()
                .all(|(k, r)| s.labels.get(k).is_some_and(|v| r.is_match(v)))
            && self
                .annotations
                .iter()
                .all(|(k, r)| s.annotations.get(k).is_some_and(|v| r.is_match(v)))
            && self.facts_match(s.facts)
    }

    fn facts_match(&self, f: &Facts) -> bool {
        let count_ok = self
            .min_affected
            .is_none_or(|min| f.affected_subjects.is_some_and(|n| n >= min));
        let types_ok = self.data_types_any.is_empty()
            || self.data_types_any.iter().any(|d| f.data_types.contains(d));
        count_ok && types_ok
    }
}

#[cfg(test)]
mod tests;
