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

fn compile(
    raw: &PackFile,
    p: &mut Problems<'_>,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
) -> Pack {
    let code = raw.code.parse::<Jurisdiction>().unwrap_or_else(|e| {
        p.add("code", e);
        "XX".parse().expect("valid code")
    });
    if raw.name.trim().is_empty() {
        p.add("name", "name the law this pack encodes");
    }
    if raw.locale.trim().is_empty() {
        p.add(
            "locale",
            "give the language reports are written in, e.g. zh-CN or en",
        );
    }
    let timezone = raw.timezone.parse::<FixedOffset>().unwrap_or_else(|_| {
        p.add(
            "timezone",
            format!(
                "`{}` is not a UTC offset; write it like +08:00 or +01:00",
                raw.timezone
            ),
        );
        FixedOffset::east_opt(0).expect("UTC")
    });
    // Grades first: obligations refer to them.
    let mut grades = Vec::new();
    let mut seen = HashSet::new();
    if raw.grades.is_empty() {
        p.add("grades", "list the grades, highest first, ending with the grade that applies when no criterion holds");
    }
    for (i, g) in raw.grades.iter().enumerate() {
        let at = format!("grades[{i}]");
        check_id(&g.id, &format!("{at}.id"), p);
        if !seen.insert(g.id.as_str()) {
            p.add(
                &format!("{at}.id"),
                format!("grade `{}` is listed twice", g.id),
            );
        }
        let last = i + 1 == raw.grades.len();
        if last && !g.criteria.is_empty() {
            p.add(&format!("{at}.criteria"), "the last grade is the one that applies when nothing else holds: give it no criteria");
        }
        if !last && g.criteria.is_empty() {
            p.add(
                &format!("{at}.criteria"),
                "only the last grade may have no criteria (a grade nobody can reach is a mistake)",
            );
        }
        let mut criteria = Vec::new();
        for (j, c) in g.criteria.iter().enumerate() {
            let at = format!("{at}.criteria[{j}]");
            check_id(&c.id, &format!("{at}.id"), p);
            if c.text.trim().is_empty() {
                p.add(
                    &format!("{at}.text"),
                    "say what the law says: it is the grade's \"why\"",
                );
            }
            let when = condition(&c.when, &format!("{at}.when"), p, None);
            if when.is_always() {
                p.add(&format!("{at}.when"), "a criterion must test something");
            }
            if when.grade_at_least.is_some() || when.grade_below.is_some() || has_grade_test(&when)
            {
                p.add(&format!("{at}.when"), "grades cannot depend on grades");
            }
            criteria.push(Criterion {
                id: c.id.clone(),
                text: c.text.trim().to_string(),
                when,
            });
        }
        grades.push(Grade {
            id: g.id.clone(),
            name: g.name.clone(),
            criteria,
        });
    }
    let grade_ids: Vec<&str> = grades.iter().map(|g| g.id.as_str()).collect();

    // Report specs and fields.
    let mut fields = BTreeMap::new();
    for (id, f) in &raw.fields {
        let at = format!("fields.{id}");
        check_id(id, &at, p);
        if f.label.trim().is_empty() {
            p.add(
                &format!("{at}.label"),
                "give the field the label the report shows",
            );
        }
        check_source(&f.from, &format!("{at}.from"), p);
        fields.insert(
            id.clone(),
            FieldSpec {
                label: f.label.clone(),
                from: f.from.trim().to_string(),
            },
        );
    }
    let mut recipients = BTreeMap::new();
    for (id, r) in &raw.recipients {
        check_id(id, &format!("recipients.{id}"), p);
        if r.name.trim().is_empty() {
            p.add(
                &format!("recipients.{id}.name"),
                "name the regulator as people know it",
            );
        }
        recipients.insert(id.clone(), r.name.trim().to_string());
    }
    let mut reports = BTreeMap::new();
    for (id, r) in &raw.reports {
        let at = format!("reports.{id}");
        check_id(id, &at, p);
        let k = match r.kind.parse::<ReportKind>() {
            Ok(k) => k,
            Err(e) => {
                p.add(&format!("{at}.kind"), e);
                ReportKind::Initial
            }
        };
        if !r.template.starts_with("regulator/") {
            p.add(
                &format!("{at}.template"),
                format!("`{}`: report templates are `regulator/<name>`", r.template),
            );
        } else if !template_exists(&r.template) {
            p.add(
                &format!("{at}.template"),
                format!(
                    "no template `{}` (files `templates/{}.<locale>.hbs`); add it or name an existing one",
                    r.template, r.template
                ),
            );
        }
        for (i, f) in r.required.iter().enumerate() {
            if !fields.contains_key(f) {
                p.add(
                    &format!("{at}.required[{i}]"),
                    format!("`{f}` is not a field of this pack; define it under [fields.{f}]"),
                );
            }
        }
        for (i, f) in r.may_follow.iter().enumerate() {
            if !r.required.contains(f) {
                p.add(
                    &format!("{at}.may_follow[{i}]"),
                    format!(
                        "`{f}` is not in `required`; only required fields can be marked to follow"
                    ),
                );
            }
        }
        reports.insert(
            id.clone(),
            ReportSpec {
                kind: k,
                template: r.template.clone(),
                required: r.required.clone(),
                may_follow: r.may_follow.clone(),
            },
        );
    }

    let mut obligations: Vec<ObligationDef> = Vec::new();
    let mut ids = HashSet::new();
    for (i, o) in raw.obligations.iter().enumerate() {
        let at = format!("obligations[{i}]");
        check_id(&o.id, &format!("{at}.id"), p);
        if !ids.insert(o.id.as_str()) {
            p.add(
                &format!("{at}.id"),
                format!("obligation `{}` is listed twice", o.id),
            );
        }
        if o.title.trim().is_empty() {
            p.add(
                &format!("{at}.title"),
                "give it a title people will recognise",
            );
        }
        if o.law.trim().is_empty() {
            p.add(
                &format!("{at}.law"),
                "cite the legal basis, e.g. \"PIPL art. 57\": it is shown as the why",
            );
        }
        let kind = o.kind.parse::<ObligationKind>().unwrap_or_else(|e| {
            p.add(&format!("{at}.kind"), e);
            ObligationKind::Record
        });
        let (report, report_kind) = match (&o.report, kind) {
            (Some(r), ObligationKind::Report) => match reports.get(r) {
                Some(spec) => (Some(r.clone()), Some(spec.kind)),
                None => {
                    p.add(
                        &format!("{at}.report"),
                        format!(
                            "there is no [reports.{r}] in this pack to render it; name one of {} or add [reports.{r}] with kind, template and required",
                            ids_or_none(reports.keys())
                        ),
                    );
                    (None, None)
                }
            },
            (None, ObligationKind::Report) => {
                p.add(
                    &format!("{at}.report"),
                    "a report obligation names the report that renders it (an id under [reports])",
                );
                (None, None)
            }
            (Some(_), _) => {
                p.add(
                    &format!("{at}.report"),
                    "only `kind = \"report\"` has a report",
                );
                (None, None)
            }
            (None, _) => (None, None),
        };
        let mut recipient_by_operator = BTreeMap::new();
        for (op, r) in &o.recipient_by_operator {
            match op.parse::<OperatorType>() {
                Ok(op) => {
                    recipient_by_operator.insert(op, r.clone());
                }
                Err(e) => p.add(&format!("{at}.recipient_by_operator.{op}"), e),
            }
        }
        let named: Vec<&String> = o
            .recipient
            .iter()
            .chain(o.recipient_by_operator.values())
            .collect();
        if kind == ObligationKind::Report {
            if named.is_empty() && o.after.is_empty() {
                p.add(&format!("{at}.recipient"), "a report names its recipient (an id under [recipients]), or `recipient_by_operator`");
            }
            if o.recipient.is_some() && !o.recipient_by_operator.is_empty() {
                p.add(
                    &format!("{at}.recipient"),
                    "give `recipient` or `recipient_by_operator`, not both",
                );
            }
            if !o.recipient_by_operator.is_empty()
                && recipient_by_operator.len() < OperatorType::ALL.len()
            {
                p.add(
                    &format!("{at}.recipient_by_operator"),
                    "name a recipient for each operator type: cii, state_organ, other",
                );
            }
        } else if !named.is_empty() {
            p.add(&format!("{at}.recipient"), "only reports have a recipient");
        }
        for r in named {
            if !recipients.contains_key(r) {
                p.add(
                    &format!("{at}.recipient"),
                    format!("`{r}` is not under [recipients]; add [recipients.{r}] name = \"…\""),
                );
            }
        }
        let clock = o.clock.parse::<Clock>().unwrap_or_else(|e| {
            p.add(&format!("{at}.clock"), e);
            Clock::DiscoveredAt
        });
        let window = o
            .deadline
            .parse::<HumanDuration>()
            .map(|d| d.0)
            .unwrap_or_else(|e| {
                p.add(&format!("{at}.deadline"), e);
                Duration::from_secs(3600)
            });
        let counting = match o.counting.as_deref() {
            None | Some("elapsed") => Counting::Elapsed,
            Some("calendar_days_after") => {
                if window.as_secs() % 86_400 != 0 || window.is_zero() {
                    p.add(
                        &format!("{at}.deadline"),
                        "calendar days are whole days: write it like 3d",
                    );
                }
                Counting::CalendarDaysAfter
            }
            Some(other) => {
                p.add(
                    &format!("{at}.counting"),
                    format!("`{other}` is not a way to count; use elapsed or calendar_days_after"),
                );
                Counting::Elapsed
            }
        };
        if !departments.is_empty() && !departments.contains(&o.owner.as_str()) {
            p.add(
                &format!("{at}.owner"),
                format!(
                    "`{}` is not a configured department; use one of {}",
                    o.owner,
                    departments.join(", ")
                ),
            );
        }
        let reminders = o.reminders.clone().unwrap_or_else(|| vec![50, 80]);
        for (j, r) in reminders.iter().enumerate() {
            if *r == 0 || *r >= 100 {
                p.add(&format!("{at}.reminders[{j}]"), format!("{r}: a reminder is a per cent of the window between 1 and 99 (the deadline itself always reminds)"));
            }
        }
        let when = condition(&o.when, &format!("{at}.when"), p, Some(&grade_ids));
        let mut exemptions = Vec::new();
        for (j, e) in o.exemptions.iter().enumerate() {
            let eat = format!("{at}.exemptions[{j}]");
            check_id(&e.id, &format!("{eat}.id"), p);
            let standing = match e.standing.parse::<Standing>() {
                Ok(Standing::Required) | Err(_) => {
                    p.add(
                        &format!("{eat}.standing"),
                        format!(
                            "`{}`: an exemption's standing is exempt, not_required or hold",
                            e.standing
                        ),
                    );
                    Standing::Exempt
                }
                Ok(s) => s,
            };
            if e.text.trim().is_empty() {
                p.add(
                    &format!("{eat}.text"),
                    "say what the law says: it is the why",
                );
            }
            let when = condition(&e.when, &format!("{eat}.when"), p, Some(&grade_ids));
            if when.is_always() {
                p.add(&format!("{eat}.when"), "an exemption must test something");
            }
            let unless = e
                .unless
                .as_ref()
                .map(|u| condition(u, &format!("{eat}.unless"), p, Some(&grade_ids)));
            exemptions.push(Exemption {
                id: e.id.clone(),
                standing,
                text: e.text.trim().to_string(),
                when,
                unless,
            });
        }
        let task = match (&o.task, kind) {
            (Some(t), ObligationKind::Task) => {
                if !departments.is_empty() && !departments.contains(&t.department.as_str()) {
                    p.add(
                        &format!("{at}.task.department"),
                        format!("`{}` is not a configured department", t.department),
                    );
                }
                if t.title.trim().is_empty() {
                    p.add(&format!("{at}.task.title"), "give the task a title");
                }
                Some(TaskTemplate {
                    key: format!(
                        "{}-{}",
                        code.as_str().to_ascii_lowercase(),
                        o.id.replace('_', "-")
                    ),
                    title: t.title.clone(),
                    department: t.department.clone(),
                    description: t.description.clone(),
                })
            }
            (None, ObligationKind::Task) => {
                p.add(
                    &format!("{at}.task"),
                    "a task obligation describes its task: [obligations.task] title, department",
                );
                None
            }
            (Some(_), _) => {
                p.add(&format!("{at}.task"), "only `kind = \"task\"` has a task");
                None
            }
            (None, _) => None,
        };
        if clock == Clock::MaterialChange && (o.after.is_empty() || o.on_change_of.is_empty()) {
            p.add(&format!("{at}.clock"), "`material_change` counts from a change after a report: give `after` (the obligation whose report starts it) and `on_change_of` (the facts that matter)");
        }
        if !o.after.is_empty() && clock != Clock::MaterialChange {
            p.add(&format!("{at}.after"), "`after` is for reports that repeat on material change: use clock = \"material_change\"");
        }
        for (j, f) in o.on_change_of.iter().enumerate() {
            if !FACT_FIELDS.contains(&f.as_str()) {
                p.add(
                    &format!("{at}.on_change_of[{j}]"),
                    format!("`{f}` is not a fact; use one of {}", FACT_FIELDS.join(", ")),
                );
            }
        }
        obligations.push(ObligationDef {
            id: o.id.clone(),
            title: o.title.clone(),
            kind,
            report,
            report_kind,
            recipient: o.recipient.clone(),
            recipient_by_operator,
            law: o.law.trim().to_string(),
            when,
            clock,
            deadline: window,
            deadline_written: o.deadline.trim().to_string(),
            counting,
            owner: o.owner.clone(),
            reminders,
            after: o.after.clone(),
            on_change_of: o.on_change_of.clone(),
            exemptions,
            task,
        });
    }
    // `after` must name a report obligation of this pack.
    for (i, o) in obligations.iter().enumerate() {
        let others: Vec<String> = obligations
            .iter()
            .filter(|x| x.kind == ObligationKind::Report && x.id != o.id)
            .map(|x| x.id.clone())
            .collect();
        let hint = format!("use one of {}", ids_or_none(others.iter()));
        for (j, a) in o.after.iter().enumerate() {
            match obligations.iter().find(|x| &x.id == a) {
                Some(x) if x.kind == ObligationKind::Report && x.id != o.id => {}
                Some(_) => p.add(
                    &format!("obligations[{i}].after[{j}]"),
                    format!("`{a}` must be another report obligation; {hint}"),
                ),
                None => p.add(
                    &format!("obligations[{i}].after[{j}]"),
                    format!("there is no obligation `{a}` in this pack; {hint}"),
                ),
            }
        }
    }
    Pack {
        code,
        name: raw.name.clone(),
        description: raw.description.clone(),
        file: Default::default(),
        locale: raw.locale.clone(),
        timezone,
        sources: raw.sources.clone(),
        grades,
        obligations,
        recipients,
        reports,
        fields,
    }
}

/// `a, b, c`, or `(none yet)`.
fn ids_or_none<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&str> = ids.map(String::as_str).collect();
    if all.is_empty() {
        "(none yet)".into()
    } else {
        all.join(", ")
    }
}

fn has_grade_test(c: &Condition) -> bool {
    c.any
        .iter()
        .any(|a| a.grade_at_least.is_some() || a.grade_below.is_some() || has_grade_test(a))
}

fn check_id(id: &str, key: &str, p: &mut Problems<'_>) {
    if id.is_empty()
        || id.len() > 64
        || !id.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_uppercase()
                || c.is_ascii_digit()
                || c == '_'
                || c == '-'
        })
    {
        p.add(
            key,
            format!("`{id}`: ids are 1–64 letters, digits, `_` or `-`"),
        );
    }
}

fn check_source(from: &str, key: &str, p: &mut Problems<'_>) {
    let from = from.trim();
    if from == "input" {
        return;
    }
    let Some((source, name)) = from.split_once('.') else {
        p.add(
            key,
            format!(
                "`{from}`: write <source>.<name>, with source one of {}",
                FIELD_SOURCES.join(", ")
            ),
        );
        return;
    };
    let known: &[&str] = match source {
        "facts" => FACT_FIELDS,
        "incident" => INCIDENT_FIELDS,
        "organisation" => ORGANISATION_FIELDS,
        "assessment" => ASSESSMENT_FIELDS,
        "stats" => STATS_FIELDS,
        "timeline" => TIMELINE_FIELDS,
        "input" => {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                p.add(
                    key,
                    format!("`{from}`: an input's name is lower-case letters, digits and `_`"),
                );
            }
            return;
        }
        other => {
            p.add(
                key,
                format!(
                    "`{other}` is not a source; use one of {}",
                    FIELD_SOURCES.join(", ")
                ),
            );
            return;
        }
    };
    if !known.contains(&name) {
        p.add(
            key,
            format!(
                "`{from}`: {source} has no `{name}`; use one of {}",
                known.join(", ")
            ),
        );
    }
}

fn list<T: std::str::FromStr<Err = String>>(
    items: &[String],
    key: &str,
    p: &mut Problems<'_>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match s.parse::<T>() {
            Ok(v) => out.push(v),
            Err(e) => p.add(&format!("{key}[{i}]"), e),
        }
    }
    out
}

fn one<T: std::str::FromStr<Err = String>>(
    item: &Option<String>,
    key: &str,
    p: &mut Problems<'_>,
) -> Option<T> {
    item.as_ref().and_then(|s| match s.parse::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            p.add(key, e);
            None
        }
    })
}

fn condition(
    c: &ConditionSpec,
    at: &str,
    p: &mut Problems<'_>,
    grades: Option<&[&str]>,
) -> Condition {
    let flags = |names: &[String], key: &str, p: &mut Problems<'_>| {
        for (i, f) in names.iter().enumerate() {
            if !FLAG_FACTS.contains(&f.as_str()) {
                p.add(
                    &format!("{at}.{key}[{i}]"),
                    format!(
                        "`{f}` is not a yes/no fact; use one of {}",
                        FLAG_FACTS.join(", ")
                    ),
                );
            }
        }
        names.to_vec()
    };
    let grade = |g: &Option<String>, key: &str, p: &mut Problems<'_>| -> Option<String> {
        let g = g.as_ref()?;
        match grades {
            None => {
                p.add(
                    &format!("{at}.{key}"),
                    "grades are tested in obligations, not in grade criteria",
                );
                None
            }
            Some(ids) if !ids.contains(&g.as_str()) => {
                p.add(
                    &format!("{at}.{key}"),
                    format!(
                        "`{g}` is not a grade of this pack; use one of {}",
                        ids.join(", ")
                    ),
                );
                None
            }
            Some(_) => Some(g.clone()),
        }
    };
    let mut combination = Vec::new();
    for (i, group) in c.data_types_combination.iter().enumerate() {
        if group.is_empty() {
            p.add(
                &format!("{at}.data_types_combination[{i}]"),
                "each group lists the data types of which one must be present",
            );
        }
        combination.push(list::<DataType>(
            group,
            &format!("{at}.data_types_combination[{i}]"),
            p,
        ));
    }
    let categories: Vec<Category> = {
        let mut out = Vec::new();
        for (i, s) in c.categories.iter().enumerate() {
            match super::parse_category(s) {
                Ok(v) => out.push(v),
                Err(e) => p.add(&format!("{at}.categories[{i}]"), e),
            }
        }
        out
    };
    Condition {
        affected_subjects_at_least: c.affected_subjects_at_least,
        affected_subjects_below: c.affected_subjects_below,
        economic_loss_cny_at_least: c.economic_loss_cny_at_least,
        records_affected_at_least: c.records_affected_at_least,
        outage_whole_system_at_least: c.outage_whole_system_at_least.map(|d| d.0),
        outage_main_functions_at_least: c.outage_main_functions_at_least.map(|d| d.0),
        categories,
        personal_information: c.personal_information,
        data_types_any: list(&c.data_types_any, &format!("{at}.data_types_any"), p),
        data_types_combination: combination,
        facts_true: flags(&c.facts_true, "facts_true", p),
        facts_not_true: flags(&c.facts_not_true, "facts_not_true", p),
        threat_at_least: one(&c.threat_at_least, &format!("{at}.threat_at_least"), p),
        risk_at_least: one(&c.risk_at_least, &format!("{at}.risk_at_least"), p),
        risk_is: list(&c.risk_is, &format!("{at}.risk_is"), p),
        operator_types: list(&c.operator_types, &format!("{at}.operator_types"), p),
        grade_at_least: grade(&c.grade_at_least, "grade_at_least", p),
        grade_below: grade(&c.grade_below, "grade_below", p),
        any: c
            .any
            .iter()
            .enumerate()
            .map(|(i, a)| condition(a, &format!("{at}.any[{i}]"), p, grades))
            .collect(),
    }
}
