//! The law incidentd operates under, as data: jurisdiction packs (`config/jurisdictions/*.toml`)
//! grade an incident per jurisdiction and say which obligations follow — reports to regulators
//! with their deadlines, notice to individuals, a public announcement, a police report, the
//! breach record — each with the reason ("why") a person can check against the law.
//!
//! * [`pack`] reads and validates the files (every number, clock and field is data);
//! * [`eval`] is the pure function from an incident's facts and clocks to its [`Assessment`].
//!
//! Reading the folder is the only I/O here.

mod eval;
mod pack;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::facts::{Facts, Jurisdiction};
use super::incident::Category;

pub use eval::{
    Assessment, Case, GradeOutcome, JurisdictionAssessment, ObligationOutcome, Submitted,
};
pub use pack::{Condition, FACT_FIELDS, FIELD_SOURCES};

string_enum! {
    /// The operator type that sets the Chinese reporting deadlines (1 h, 2 h, 4 h). An incident
    /// whose facts say critical information infrastructure is involved counts as `cii`.
    OperatorType {
        Cii => "cii",
        StateOrgan => "state_organ",
        Other => "other",
    } what = "an operator type"
}

string_enum! {
    /// The instant a deadline counts from.
    Clock {
        /// When the organisation discovered the incident (CN).
        DiscoveredAt => "discovered_at",
        /// When it became aware that personal data were affected (GDPR).
        AwareAt => "aware_at",
        /// When the breach was assessed notifiable (SG); started by incidentd when the facts first
        /// make it notifiable, unless a person set it.
        AssessedNotifiableAt => "assessed_notifiable_at",
        /// When handling ended (CN closing report); defaults to the incident's closing.
        HandlingClosedAt => "handling_closed_at",
        /// When a material fact changed after a report was submitted (supplementary reports).
        MaterialChange => "material_change",
    } what = "a clock"
}

string_enum! {
    /// What an obligation asks for.
    ObligationKind {
        /// A report to a regulator (met by submitting a report of its `report_kind`).
        Report => "report",
        /// Notice to the affected individuals (met by starting the notice campaign).
        NotifyIndividuals => "notify_individuals",
        /// A public announcement (met by publishing it).
        PublicAnnouncement => "public_announcement",
        /// A task for a department (e.g. report a suspected crime to the police); met when done.
        Task => "task",
        /// The breach is documented (GDPR art. 33(5)); the incident record meets it.
        Record => "record",
        /// Assess whether the breach is notifiable (SG); met when the assessment clock is set.
        Assessment => "assessment",
    } what = "an obligation kind"
}

string_enum! {
    /// Which report of a series.
    ReportKind {
        Initial => "initial",
        Supplementary => "supplementary",
        Closing => "closing",
    } what = "a report kind"
}

string_enum! {
    /// Where an obligation stands under the law (not whether it is done: that is the store's).
    Standing {
        /// Owed, with a deadline once its clock has started.
        Required => "required",
        /// Not owed because of an exemption the facts claim (recorded with its justification).
        Exempt => "exempt",
        /// Not owed (e.g. GDPR: unlikely to result in a risk, with the reason recorded).
        NotRequired => "not_required",
        /// Must not be done now (SG: law enforcement or the PDPC directs so).
        Hold => "hold",
    } what = "a standing"
}

/// How a deadline is counted from its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counting {
    /// The clock plus the duration.
    Elapsed,
    /// Whole calendar days after the clock's day, in the pack's time zone: the deadline is the
    /// end of the last day ("no later than 3 calendar days after the day …").
    CalendarDaysAfter,
}

/// One validated jurisdiction pack.
#[derive(Debug, Clone)]
pub struct Pack {
    pub code: Jurisdiction,
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// The language its reports are written in (`zh-CN`, `en`).
    pub locale: String,
    /// The regulator's time zone: calendar days are counted, and times shown, in it.
    pub timezone: FixedOffset,
    pub sources: Vec<String>,
    /// Highest first; the last has no criteria and is the grade when nothing else holds.
    pub grades: Vec<Grade>,
    pub obligations: Vec<ObligationDef>,
    /// Regulators by id, with the name people know them by.
    pub recipients: BTreeMap<String, String>,
    /// Reports by id: kind, template and the fields each requires.
    pub reports: BTreeMap<String, ReportSpec>,
    /// The fields reports are made of: label and where the value comes from.
    pub fields: BTreeMap<String, FieldSpec>,
}

impl Pack {
    pub fn grade(&self, id: &str) -> Option<&Grade> {
        self.grades.iter().find(|g| g.id == id)
    }

    /// The regulator's name, or its id when the pack names none.
    pub fn recipient_name(&self, id: &str) -> String {
        self.recipients
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    pub fn obligation(&self, id: &str) -> Option<&ObligationDef> {
        self.obligations.iter().find(|o| o.id == id)
    }

    /// Rank of a grade: 0 is the highest.
    pub fn grade_rank(&self, id: &str) -> Option<usize> {
        self.grades.iter().position(|g| g.id == id)
    }
}

#[derive(Debug, Clone)]
pub struct Grade {
    pub id: String,
    pub name: String,
    /// Any one of them gives this grade.
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone)]
pub struct Criterion {
    pub id: String,
    /// What the law says, for the "why".
    pub text: String,
    pub when: Condition,
}

/// One obligation a pack may impose.
#[derive(Debug, Clone)]
pub struct ObligationDef {
    pub id: String,
    pub title: String,
    pub kind: ObligationKind,
    /// For reports: the pack's report (`[reports.<id>]`) that renders it, and its kind.
    pub report: Option<String>,
    pub report_kind: Option<ReportKind>,
    /// Regulator id (`[[regulators]]` in the configuration gives its address) for reports.
    pub recipient: Option<String>,
    /// Or the regulator by operator type (the CN table: CII, state organ, other).
    pub recipient_by_operator: BTreeMap<OperatorType, String>,
    /// The legal basis, cited in the "why".
    pub law: String,
    pub when: Condition,
    pub clock: Clock,
    pub deadline: Duration,
    /// The window as the pack writes it (`72h`), for the why.
    pub deadline_written: String,
    pub counting: Counting,
    /// The department reminded and escalated to.
    pub owner: String,
    /// Reminders, in per cent of the window (the deadline itself always reminds).
    pub reminders: Vec<u8>,
    /// Supplementary reports: repeat after a report of one of these obligations is submitted,
    /// each time a fact in `on_change_of` changes.
    pub after: Vec<String>,
    pub on_change_of: Vec<String>,
    /// Holds (`standing = "hold"`) first, then in order; the first that applies decides.
    pub exemptions: Vec<Exemption>,
    /// For `task` obligations: the task to create.
    pub task: Option<TaskTemplate>,
}

#[derive(Debug, Clone)]
pub struct Exemption {
    pub id: String,
    pub standing: Standing,
    pub text: String,
    pub when: Condition,
    /// The exemption does not apply when this holds (e.g. a regulator requires notice).
    pub unless: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTemplate {
    pub key: String,
    pub title: String,
    pub department: String,
    pub description: String,
}

/// A report's kind, template and required fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    pub kind: ReportKind,
    /// `regulator/<name>`: rendered in the pack's locale.
    pub template: String,
    /// Field ids that must have a value before the report can be approved.
    pub required: Vec<String>,
    /// Of those, the ones a partial report may mark "to follow" (the law allows reporting the
    /// basic items first and supplementing the rest).
    pub may_follow: Vec<String>,
}

/// One report field: what it is called and where its value comes from (`facts.cause`,
/// `incident.discovered_at`, `organisation.name`, `assessment.grade`, `stats.notified`,
/// `input.ransom` — typed by a person when drafting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub label: String,
    pub from: String,
}

/// Every pack in the folder.
#[derive(Debug, Clone, Default)]
pub struct Packs {
    packs: Vec<Pack>,
}

impl Packs {
    /// The packs of a folder's files (`crate::config::files` reads them). `departments` are
    /// the configured ones (obligation owners and task departments must be among them; empty:
    /// not checked) and `template_exists` says whether a report template is there. All problems
    /// are returned together as `<file>: <key>: <message>`.
    pub fn from_sources(
        files: &[crate::domain::source::Source],
        departments: &[&str],
        template_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Packs, Vec<String>> {
        pack::from_sources(files, departments, template_exists)
    }

    pub fn from_packs(packs: Vec<Pack>) -> Packs {
        Packs { packs }
    }

    pub fn get(&self, code: &Jurisdiction) -> Option<&Pack> {
        self.packs.iter().find(|p| &p.code == code)
    }

    pub fn all(&self) -> &[Pack] {
        &self.packs
    }

    pub fn is_empty(&self) -> bool {
        self.packs.is_empty()
    }

    /// Grade the incident and list its obligations under every applicable pack.
    pub fn assess(&self, case: &Case<'_>) -> Assessment {
        eval::assess(self, case)
    }
}

/// The jurisdictions an incident is assessed under: its facts' list, else the organisation's.
pub fn applicable<'a>(facts: &'a Facts, organisation: &'a [Jurisdiction]) -> &'a [Jurisdiction] {
    if facts.jurisdictions.is_empty() {
        organisation
    } else {
        &facts.jurisdictions
    }
}

/// The operator type for an incident: `cii` when its facts say critical information
/// infrastructure is involved, else the organisation's.
pub fn effective_operator(facts: &Facts, organisation: OperatorType) -> OperatorType {
    if facts.critical_infrastructure == Some(true) {
        OperatorType::Cii
    } else {
        organisation
    }
}

/// A deadline counted from `start` by `def`'s rule, in the pack's time zone.
pub fn deadline(
    start: DateTime<Utc>,
    length: Duration,
    counting: Counting,
    tz: FixedOffset,
) -> DateTime<Utc> {
    match counting {
        Counting::Elapsed => {
            start + chrono::Duration::from_std(length).unwrap_or(chrono::Duration::MAX)
        }
        Counting::CalendarDaysAfter => {
            let days = (length.as_secs() / 86_400) as i64;
            let local_day = start.with_timezone(&tz).date_naive();
            // The end of the last day: the first instant of the day after it, less 1 µs.
            let after = local_day + chrono::Days::new((days + 1) as u64);
            let midnight = after
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_local_timezone(tz)
                .single()
                .expect("fixed offsets are unambiguous");
            midnight.with_timezone(&Utc) - chrono::Duration::microseconds(1)
        }
    }
}

/// Categories as packs name them (re-exported for condition parsing).
pub(crate) fn parse_category(s: &str) -> Result<Category, String> {
    s.parse()
}
