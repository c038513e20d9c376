//! Playbooks as data: which departments respond to an incident and which tasks they owe, read
//! from `config/playbooks/*.toml`.
//!
//! A playbook matches on category and/or severity; the most specific match wins and exactly one
//! default playbook (no `[match]`) catches the rest. Everything is validated when loaded — the
//! team against the configured departments, task references, dependency cycles, the page
//! template — so `incidentd check` reports every problem as `<file>: <key>: <message>`.
//!
//! Reading the folder is the only I/O here; everything after that is pure.

mod compile;
#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::incident::{Category, Severity};
use super::source::Source;

/// The page template used when a playbook names none.
pub const DEFAULT_PAGE_TEMPLATE: &str = "page/incident_opened";

/// The departments the privacy policy names for the joint emergency response team: every
/// playbook that can be chosen for a personal-information incident must page all of them.
pub const PI_TEAM: [&str; 3] = ["security", "government_relations", "legal"];

/// Every playbook in the folder, validated together.
#[derive(Debug, Clone)]
pub struct Playbooks {
    playbooks: Vec<Playbook>,
    default: usize,
}

/// One playbook file, validated.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub id: String,
    pub name: String,
    /// Free text from the file (`description`), for people reading `check` or the API.
    pub description: String,
    pub file: PathBuf,
    /// Categories it matches; empty = any.
    pub categories: Vec<Category>,
    /// Severities it matches; empty = any.
    pub severities: Vec<Severity>,
    /// The joint team, in paging order.
    pub departments: Vec<String>,
    /// Message template used to page the team (default [`DEFAULT_PAGE_TEMPLATE`]).
    pub page_template: String,
    /// In file order, validated.
    pub tasks: Vec<TaskDef>,
}

/// One task of a playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDef {
    pub id: String,
    pub title: String,
    pub department: String,
    pub description: String,
    /// Due this long after the incident was declared/opened, or after `after`'s completion.
    pub due: Duration,
    /// Another task id; due counts from its completion. Also an ordering edge: loading treats
    /// it like a dependency for cycles and severity applicability (see [`TaskDef::prerequisites`]).
    pub after: Option<String>,
    /// Task ids that must be done (or approved) first.
    pub depends_on: Vec<String>,
    /// A gate: approved or rejected by approvers.
    pub approval: bool,
    /// Departments whose approvers decide the gate (default: `[department]`); empty unless
    /// `approval`.
    pub approvers: Vec<String>,
    /// Empty = every severity.
    pub severities: Vec<Severity>,
    /// A content check that must pass before the gate can be approved (`lint = "notice"`).
    pub lint: Option<TaskLint>,
}

string_enum! {
    /// A content check an approval gate runs before it can be approved.
    TaskLint {
        /// The gate approves the notice to individuals: the incident's facts must supply every
        /// required element of a notice ([`crate::domain::notice`]) and the notice templates must
        /// carry them.
        Notice => "notice",
        /// The gate approves the regulator report: approving a report version satisfies it, and
        /// it is not approved directly while a version waits for its own approval
        /// ([`crate::engine::report_gate`]).
        Report => "report",
    } what = "a lint"
}

/// How specific a playbook's match is; a higher value wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Specificity {
    /// No `[match]`: the default playbook.
    Default,
    SeverityOnly,
    CategoryOnly,
    CategoryAndSeverity,
}

impl Playbooks {
    /// The playbooks of a folder's files (`crate::config::files` reads them, sorted by file
    /// name); `unreadable` are the problems of files that could not be read. `departments`: the
    /// department ids the configuration defines; `template_exists`: whether a message template
    /// name (e.g. "page/incident_opened") exists. Every problem: "<file>: <key>: <message>".
    pub fn from_sources(
        dir: &Path,
        files: &[Source],
        unreadable: Vec<String>,
        departments: &[&str],
        template_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Playbooks, Vec<String>> {
        let ctx = compile::Context {
            departments,
            template_exists,
        };
        let mut compiled = Vec::new();
        // A file that could not be read may be the default one.
        let mut unsure = !unreadable.is_empty();
        let mut problems = unreadable;
        for source in files {
            match compile::file(source, &ctx) {
                Ok(c) => {
                    unsure |= c.empty_match;
                    problems.extend(c.problems.iter().cloned());
                    compiled.push(c);
                }
                Err(e) => {
                    unsure = true;
                    problems.push(e);
                }
            }
        }
        problems.extend(compile::across_files(&compiled));
        let playbooks: Vec<Playbook> = compiled.into_iter().map(|c| c.playbook).collect();
        let defaults: Vec<usize> = (0..playbooks.len())
            .filter(|&i| playbooks[i].is_default())
            .collect();
        // A file that could not be parsed, or has an empty [match], may well be meant as the
        // default: say "no default" only when every file was understood, so fixing one problem
        // does not reveal a false alarm.
        if defaults.is_empty() && !unsure {
            problems.push(format!(
                "{}: match: no default playbook; exactly one playbook must have no [match] \
                 table — it is used when no other playbook matches (e.g. add default.toml)",
                dir.display()
            ));
        }
        match defaults.first() {
            Some(&default) if problems.is_empty() => Ok(Playbooks { playbooks, default }),
            _ => Err(problems),
        }
    }

    /// The most specific playbook matching (category, severity); the default one otherwise.
    ///
    /// A personal-information category counts as S1 whatever `severity` says, so a PI incident
    /// can only ever reach a playbook that loading checked for the PI team.
    pub fn select(&self, category: Category, severity: Severity) -> &Playbook {
        let severity = category
            .severity_floor()
            .map_or(severity, |floor| severity.max(floor));
        let mut best = &self.playbooks[self.default];
        for p in &self.playbooks {
            // strictly greater: among equals the first file wins (loading refused overlaps)
            if p.matches(category, severity) && p.specificity() > best.specificity() {
                best = p;
            }
        }
        best
    }

    pub fn get(&self, id: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.id == id)
    }

    pub fn all(&self) -> &[Playbook] {
        &self.playbooks
    }

    /// The playbook with no `[match]`.
    pub fn default_playbook(&self) -> &Playbook {
        &self.playbooks[self.default]
    }
}

impl Playbook {
    /// The tasks that apply at this severity (a task with no `severities` applies at all).
    pub fn tasks_for(&self, severity: Severity) -> Vec<&TaskDef> {
        self.tasks
            .iter()
            .filter(|t| t.applies_at(severity))
            .collect()
    }

    pub fn task(&self, id: &str) -> Option<&TaskDef> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// No `[match]` at all.
    pub fn is_default(&self) -> bool {
        self.categories.is_empty() && self.severities.is_empty()
    }

    pub fn specificity(&self) -> Specificity {
        match (self.categories.is_empty(), self.severities.is_empty()) {
            (false, false) => Specificity::CategoryAndSeverity,
            (false, true) => Specificity::CategoryOnly,
            (true, false) => Specificity::SeverityOnly,
            (true, true) => Specificity::Default,
        }
    }

    /// Whether this playbook's match admits (category, severity); the default admits everything.
    pub fn matches(&self, category: Category, severity: Severity) -> bool {
        (self.categories.is_empty() || self.categories.contains(&category))
            && (self.severities.is_empty() || self.severities.contains(&severity))
    }

    /// Whether it could be selected for a personal-information incident (those are always S1).
    pub fn can_match_personal_information(&self) -> bool {
        Category::ALL
            .iter()
            .any(|c| c.is_personal_information() && self.matches(*c, Severity::S1))
    }
}

impl TaskDef {
    /// A task with no `severities` applies at every severity.
    pub fn applies_at(&self, severity: Severity) -> bool {
        self.severities.is_empty() || self.severities.contains(&severity)
    }

    /// The tasks this one waits for: `depends_on`, then `after` if it is not already listed.
    pub fn prerequisites(&self) -> impl Iterator<Item = &str> {
        let after = self
            .after
            .as_deref()
            .filter(|a| !self.depends_on.iter().any(|d| d == a));
        self.depends_on.iter().map(String::as_str).chain(after)
    }
}
