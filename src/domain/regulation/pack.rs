//! Jurisdiction pack files: their shape (unknown keys refused) and their validation.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::FixedOffset;
use serde::Deserialize;

use super::{
    Clock, Counting, Criterion, Exemption, FieldSpec, Grade, ObligationDef, ObligationKind,
    OperatorType, Pack, Packs, ReportKind, ReportSpec, Standing, TaskTemplate,
};
use crate::domain::duration::HumanDuration;
use crate::domain::facts::{DataType, FLAG_FACTS, Jurisdiction, Risk, Threat};
use crate::domain::incident::Category;
use crate::domain::source::Source;

pub use crate::domain::facts::FACT_FIELDS;

/// Where report fields may come from: `<source>.<name>` (`input` alone: typed by a person).
pub const FIELD_SOURCES: &[&str] = &[
    "facts",
    "incident",
    "organisation",
    "assessment",
    "stats",
    "timeline",
    "input",
];

const INCIDENT_FIELDS: &[&str] = &[
    "id",
    "title",
    "summary",
    "category",
    "severity",
    "status",
    "first_seen_at",
    "discovered_at",
    "declared_at",
    "aware_at",
    "assessed_notifiable_at",
    "handling_closed_at",
    "contained_at",
    "closed_at",
];
const ORGANISATION_FIELDS: &[&str] = &["name", "contact", "operator_type"];
const ASSESSMENT_FIELDS: &[&str] = &["grade", "grade_name", "why", "late_reason", "deadline"];
const STATS_FIELDS: &[&str] = &[
    "subjects",
    "notified",
    "notices_sent",
    "notices_failed",
    "announcement_url",
];
const TIMELINE_FIELDS: &[&str] = &["events", "steps"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    code: String,
    name: String,
    #[serde(default)]
    description: String,
    locale: String,
    timezone: String,
    #[serde(default)]
    sources: Vec<String>,
    grades: Vec<GradeSpec>,
    #[serde(default)]
    obligations: Vec<ObligationSpec>,
    #[serde(default)]
    recipients: BTreeMap<String, RecipientSpec>,
    #[serde(default)]
    reports: BTreeMap<String, ReportFileSpec>,
    #[serde(default)]
    fields: BTreeMap<String, FieldFileSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientSpec {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GradeSpec {
    id: String,
    name: String,
    #[serde(default)]
    criteria: Vec<CriterionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CriterionSpec {
    id: String,
    text: String,
    when: ConditionSpec,
}

/// A test on the facts; every key given must hold (an empty one always holds).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConditionSpec {
    #[serde(default)]
    affected_subjects_at_least: Option<u64>,
    #[serde(default)]
    affected_subjects_below: Option<u64>,
    #[serde(default)]
    economic_loss_cny_at_least: Option<u64>,
    #[serde(default)]
    records_affected_at_least: Option<u64>,
    #[serde(default)]
    outage_whole_system_at_least: Option<HumanDuration>,
    #[serde(default)]
    outage_main_functions_at_least: Option<HumanDuration>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    personal_information: Option<bool>,
    #[serde(default)]
    data_types_any: Vec<String>,
    #[serde(default)]
    data_types_combination: Vec<Vec<String>>,
    #[serde(default)]
    facts_true: Vec<String>,
    #[serde(default)]
    facts_not_true: Vec<String>,
    #[serde(default)]
    threat_at_least: Option<String>,
    #[serde(default)]
    risk_at_least: Option<String>,
    #[serde(default)]
    risk_is: Vec<String>,
    #[serde(default)]
    operator_types: Vec<String>,
    #[serde(default)]
    grade_at_least: Option<String>,
    #[serde(default)]
    grade_below: Option<String>,
    #[serde(default)]
    any: Vec<ConditionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObligationSpec {
    id: String,
    title: String,
    kind: String,
    #[serde(default)]
    report: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    recipient_by_operator: BTreeMap<String, String>,
    law: String,
    #[serde(default)]
    when: ConditionSpec,
    clock: String,
    /// Parsed in `compile`, so the window is shown as the pack writes it (`72h`, not `3d`).
    deadline: String,
    #[serde(default)]
    counting: Option<String>,
    owner: String,
    #[serde(default)]
    reminders: Option<Vec<u8>>,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default)]
    on_change_of: Vec<String>,
    #[serde(default)]
    exemptions: Vec<ExemptionSpec>,
    #[serde(default)]
    task: Option<TaskSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExemptionSpec {
    id: String,
    standing: String,
    text: String,
    when: ConditionSpec,
    #[serde(default)]
    unless: Option<ConditionSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskSpec {
    title: String,
    department: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportFileSpec {
    kind: String,
    template: String,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    may_follow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFileSpec {
    label: String,
    from: String,
}

/// A validated condition. Every part given must hold; `any` holds when one of its alternatives
/// does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    pub affected_subjects_at_least: Option<u64>,
    pub affected_subjects_below: Option<u64>,
    pub economic_loss_cny_at_least: Option<u64>,
    pub records_affected_at_least: Option<u64>,
    pub outage_whole_system_at_least: Option<Duration>,
    pub outage_main_functions_at_least: Option<Duration>,
    pub categories: Vec<Category>,
    pub personal_information: Option<bool>,
    pub data_types_any: Vec<DataType>,
    pub data_types_combination: Vec<Vec<DataType>>,
    pub facts_true: Vec<String>,
    pub facts_not_true: Vec<String>,
    pub threat_at_least: Option<Threat>,
    pub risk_at_least: Option<Risk>,
    pub risk_is: Vec<Risk>,
    pub operator_types: Vec<OperatorType>,
    /// Only in obligations: the pack's grade at this rank or higher.
    pub grade_at_least: Option<String>,
    pub grade_below: Option<String>,
    pub any: Vec<Condition>,
}

impl Condition {
    pub fn is_always(&self) -> bool {
        self == &Condition::default()
    }
}

mod sections;
use sections::compile;

struct Problems<'a> {
    file: &'a str,
    out: &'a mut Vec<String>,
}

impl Problems<'_> {
    fn add(&mut self, key: &str, message: impl AsRef<str>) {
        self.out
            .push(format!("{}: {key}: {}", self.file, message.as_ref()));
    }
}

pub(super) fn from_sources(
    files: &[Source],
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
) -> Result<Packs, Vec<String>> {
    let mut problems = Vec::new();
    let mut packs: Vec<Pack> = Vec::new();
    for source in files {
        let shown = source.shown();
        match parse(&shown, &source.text, departments, template_exists) {
            Ok(mut pack) => {
                pack.file = source.path.clone();
                if let Some(other) = packs.iter().find(|p| p.code == pack.code) {
                    problems.push(format!(
                        "{shown}: code: `{}` is also the code of {}; one pack per jurisdiction",
                        pack.code,
                        other.file.display()
                    ));
                } else {
                    packs.push(pack);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(Packs { packs })
    } else {
        Err(problems)
    }
}

/// Parse and validate one pack's text. `shown` names it in problems.
pub(super) fn parse(
    shown: &str,
    text: &str,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
) -> Result<Pack, Vec<String>> {
    let table = crate::domain::source::parse_table(shown, text).map_err(|e| vec![e])?;
    let raw: PackFile = crate::domain::source::deserialize(toml::Value::Table(table))
        .map_err(|(path, msg)| vec![format!("{shown}: {path}: {msg}")])?;
    let mut out = Vec::new();
    let pack = compile(
        &raw,
        &mut Problems {
            file: shown,
            out: &mut out,
        },
        departments,
        template_exists,
    );
    if out.is_empty() { Ok(pack) } else { Err(out) }
}
