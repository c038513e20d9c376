//! Drill scenario files (`config/drills/*.toml`): their shape (unknown keys refused) and their
//! validation. Every problem is reported as `<file>: <key>: <message>`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Mode, Targets};
use crate::domain::classify::{Rules, Subject};
use crate::domain::duration::HumanDuration;
use crate::domain::facts::Facts;
use crate::domain::incident::{Category, Severity, Status};
use crate::domain::message::{ChannelKind, validate_recipient};
use crate::domain::playbook::Playbooks;
use crate::domain::source::Source;

/// One scenario, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The scenario's id: letters, digits, `_`, `-` (used in commands and cron job names).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What the drill sets out to test (listed in the after-action report).
    #[serde(default)]
    pub objectives: Vec<String>,
    pub mode: Mode,
    /// Who organises the drill: receives the after-action report.
    pub owner: String,
    /// The drill ends (and is scored) this long after it starts, if not done before.
    pub time_limit: HumanDuration,
    /// The declaration that starts the drill.
    pub start: Start,
    /// The playbook the scenario exercises; checked to exist.
    #[serde(default)]
    pub playbook: Option<String>,
    /// The notice template the scenario exercises (functional mode); checked to exist.
    #[serde(default)]
    pub notice_template: Option<String>,
    pub participants: Participants,
    #[serde(default)]
    pub capture: Capture,
    /// Synthetic affected people generated for a functional drill (their contacts are the
    /// capture recipients).
    #[serde(default = "default_synthetic_subjects")]
    pub synthetic_subjects: u32,
    #[serde(default)]
    pub targets: Targets,
    #[serde(default)]
    pub injects: Vec<Inject>,
    /// The file it was read from.
    #[serde(skip)]
    pub file: PathBuf,
}

fn default_synthetic_subjects() -> u32 {
    3
}

/// The synthetic declaration that starts a drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub category: Option<Category>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub facts: Facts,
}

/// Who is paged: every member of these departments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participants {
    pub departments: Vec<String>,
}

/// Where notices and reports go instead of real people and regulators.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    #[serde(default)]
    pub email: Vec<String>,
    /// E.164 numbers; allowed for SMS and voice.
    #[serde(default)]
    pub phone: Vec<String>,
    /// Site user ids; allowed for the in-site inbox and the site webhook.
    #[serde(default)]
    pub site_users: Vec<String>,
    /// `[[channels.webhooks]]` target names.
    #[serde(default)]
    pub webhook: Vec<String>,
}

/// Something that happens to the drill at a scripted time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    /// After the drill's start.
    pub after: HumanDuration,
    /// Told to the participants (e-mail and SMS), marked as a drill inject.
    #[serde(default)]
    pub message: Option<String>,
    /// A facts patch, as `PATCH /api/v1/incidents/{id}/facts` takes it.
    #[serde(default)]
    pub facts: Option<toml::Table>,
    /// A status the incident moves to (if the move is allowed at that moment).
    #[serde(default)]
    pub transition: Option<Status>,
}

/// The loaded scenarios, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scenarios {
    scenarios: BTreeMap<String, Scenario>,
}

impl Scenarios {
    /// The scenarios of a folder's files (`crate::config::files` reads them). `departments`
    /// are the configured department ids, `template_exists` says whether a template name
    /// exists, `playbook_ids` are the loaded playbooks. All problems come back together as
    /// `<file>: <key>: <message>`.
    pub fn from_sources(
        files: &[Source],
        departments: &[&str],
        template_exists: &dyn Fn(&str) -> bool,
        playbook_ids: &[&str],
    ) -> Result<Scenarios, Vec<String>> {
        let mut problems = Vec::new();
        let mut out = Scenarios::default();
        for source in files {
            let shown = source.shown();
            match parse(
                &shown,
                &source.text,
                departments,
                template_exists,
                playbook_ids,
            ) {
                Ok(mut s) => {
                    s.file = source.path.clone();
                    if let Some(other) = out.scenarios.get(&s.name) {
                        problems.push(format!(
                            "{shown}: name: `{}` is also the name of {}; scenario names are unique",
                            s.name,
                            other.file.display()
                        ));
                    } else {
                        out.scenarios.insert(s.name.clone(), s);
                    }
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Scenario> {
        self.scenarios.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.scenarios.keys().map(String::as_str).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.scenarios.is_empty()
    }

    pub fn from_scenarios(list: Vec<Scenario>) -> Scenarios {
        Scenarios {
            scenarios: list.into_iter().map(|s| (s.name.clone(), s)).collect(),
        }
    }
}

/// Parse and check one scenario file.
pub fn parse(
    shown: &str,
    text: &str,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
    playbook_ids: &[&str],
) -> Result<Scenario, Vec<String>> {
    let table = crate::domain::source::parse_table(shown, text).map_err(|e| vec![e])?;
    let s: Scenario = crate::domain::source::deserialize(toml::Value::Table(table))
        .map_err(|(path, msg)| vec![format!("{shown}: {path}: {msg}")])?;
    let mut out = Vec::new();
    let mut p = |key: &str, msg: String| out.push(format!("{shown}: {key}: {msg}"));
    check(&s, departments, template_exists, playbook_ids, &mut p);
    if out.is_empty() { Ok(s) } else { Err(out) }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 48
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// Report every problem of `s` through `p`, section by section in the file's order.
fn check(
    s: &Scenario,
    departments: &[&str],
    template_exists: &dyn Fn(&str) -> bool,
    playbook_ids: &[&str],
    p: &mut dyn FnMut(&str, String),
) {
    check_header(s, p);
    check_start(&s.start, p);
    check_references(s, template_exists, playbook_ids, p);
    check_participants(&s.participants.departments, departments, p);
    check_capture(s, p);
    check_targets(&s.targets, departments, p);
    check_injects(s, p);
}

/// `name`, `owner` and `time_limit`.
fn check_header(s: &Scenario, p: &mut dyn FnMut(&str, String)) {
    if !valid_name(&s.name) {
        p(
            "name",
            format!(
                "`{}`: use 1–48 letters, digits, `_` or `-` (it names the drill in commands and schedules)",
                s.name
            ),
        );
    }
    if let Err(e) = validate_recipient(ChannelKind::Email, &s.owner) {
        p("owner", format!("give the organiser's e-mail address: {e}"));
    }
    if s.time_limit.0.is_zero() {
        p(
            "time_limit",
            "give how long the drill runs, e.g. `2h`".into(),
        );
    }
}

fn check_start(start: &Start, p: &mut dyn FnMut(&str, String)) {
    if start.title.trim().is_empty() {
        p("start.title", "give the drill incident a title".into());
    }
    if let Err(e) = start.facts.validate() {
        p(&format!("start.facts.{}", e.path), e.message);
    }
}

/// The playbook and notice template the scenario names exist.
fn check_references(
    s: &Scenario,
    template_exists: &dyn Fn(&str) -> bool,
    playbook_ids: &[&str],
    p: &mut dyn FnMut(&str, String),
) {
    if let Some(pb) = &s.playbook
        && !playbook_ids.contains(&pb.as_str())
    {
        p(
            "playbook",
            format!(
                "unknown playbook `{pb}`; the playbooks are: {}",
                playbook_ids.join(", ")
            ),
        );
    }
    if let Some(t) = &s.notice_template
        && !template_exists(&format!("notice/{t}"))
        && !template_exists(t)
    {
        p(
            "notice_template",
            format!("unknown template `{t}`: there is no templates/notice/{t}.<locale>.hbs"),
        );
    }
}

/// `participants.departments`: at least one, each a configured department.
fn check_participants(listed: &[String], departments: &[&str], p: &mut dyn FnMut(&str, String)) {
    if listed.is_empty() {
        p(
            "participants.departments",
            "name at least one department whose members are paged".into(),
        );
    }
    for (i, d) in listed.iter().enumerate() {
        if !departments.contains(&d.as_str()) {
            p(
                &format!("participants.departments[{i}]"),
                format!(
                    "unknown department `{d}`; the [[departments]] are: {}",
                    departments.join(", ")
                ),
            );
        }
    }
}

/// Every capture recipient is valid, and a functional drill has one.
fn check_capture(s: &Scenario, p: &mut dyn FnMut(&str, String)) {
    let lists: [(&str, &[String], ChannelKind); 3] = [
        ("capture.email", &s.capture.email, ChannelKind::Email),
        ("capture.phone", &s.capture.phone, ChannelKind::Sms),
        (
            "capture.site_users",
            &s.capture.site_users,
            ChannelKind::Inbox,
        ),
    ];
    for (key, list, kind) in lists {
        for (i, r) in list.iter().enumerate() {
            if let Err(e) = validate_recipient(kind, r) {
                p(&format!("{key}[{i}]"), e);
            }
        }
    }
    if s.mode == Mode::Functional
        && s.capture.email.is_empty()
        && s.capture.phone.is_empty()
        && s.capture.site_users.is_empty()
    {
        p(
            "capture",
            "a functional drill delivers notices to capture recipients: give at least one e-mail, phone or site user".into(),
        );
    }
}

/// Each inject happens within the time limit, does something, moves the drill only where
/// responders may, and patches the facts validly.
fn check_injects(s: &Scenario, p: &mut dyn FnMut(&str, String)) {
    for (i, inj) in s.injects.iter().enumerate() {
        let at = format!("injects[{i}]");
        if inj.after.0 > s.time_limit.0 {
            p(
                &format!("{at}.after"),
                format!(
                    "{} is after the drill's time_limit {}; it would never happen",
                    inj.after, s.time_limit
                ),
            );
        }
        if inj.message.is_none() && inj.facts.is_none() && inj.transition.is_none() {
            p(
                &at,
                "an inject does something: give message, facts and/or transition".into(),
            );
        }
        if let Some(t) = inj.transition
            && !matches!(
                t,
                Status::Triaged | Status::Contained | Status::Eradicated | Status::Recovered
            )
        {
            p(
                &format!("{at}.transition"),
                format!(
                    "`{t}`: an inject may move the drill to triaged, contained, eradicated or recovered; closing is the responders' call"
                ),
            );
        }
        if let Some(f) = &inj.facts {
            let patch = serde_json::to_value(f).unwrap_or_default();
            if let Err(e) = s.start.facts.apply_patch(&patch) {
                p(&format!("{at}.facts.{}", e.path), e.message);
            }
        }
    }
}

fn check_targets(t: &Targets, departments: &[&str], p: &mut dyn FnMut(&str, String)) {
    for d in t.acknowledge.keys() {
        if d != "default" && !departments.contains(&d.as_str()) {
            p(
                &format!("targets.acknowledge.{d}"),
                format!(
                    "unknown department `{d}`; use a [[departments]] id or `default`: {}",
                    departments.join(", ")
                ),
            );
        }
    }
}

/// The category and severity a scenario's drill incident is declared with: as a declaration
/// is classified (what the scenario gives, else what the rules see in its title, summary and
/// facts, else `other`/S3; the rules may raise it, never lower it; personal information is S1).
pub fn declared_class(s: &Scenario, rules: &Rules) -> (Category, Severity) {
    use crate::domain::incident::{raise_only, reclassify_category};
    let text = format!("{}\n{}", s.start.title, s.start.summary);
    let empty = Default::default();
    let classified = rules.classify(&Subject {
        source: "declaration",
        text: &text,
        labels: &empty,
        annotations: &empty,
        facts: &s.start.facts,
    });
    let category = s
        .start
        .category
        .or(classified.as_ref().map(|c| c.category))
        .unwrap_or(Category::Other);
    let severity = s
        .start
        .severity
        .or(classified.as_ref().map(|c| c.severity))
        .unwrap_or(Severity::S3);
    let severity = raise_only(severity, severity, category);
    match classified {
        Some(c) => {
            let cat = reclassify_category((category, severity), (c.category, c.severity));
            (cat, raise_only(severity, c.severity, cat))
        }
        None => (category, severity),
    }
}

/// Problems with what a scenario's drill would page, as `<file>: <key>: <message>`: the
/// playbook its declaration selects must be the one it names (if it names one), and every
/// department that playbook pages must be a participant — the drill guard refuses every
/// delivery to anyone else, so a left-out department's pages die and the scorecard marks its
/// acknowledgement missed.
pub fn check_coverage(s: &Scenario, playbooks: &Playbooks, rules: &Rules) -> Vec<String> {
    let shown = s.file.display().to_string();
    let (category, severity) = declared_class(s, rules);
    let selected = playbooks.select(category, severity);
    let mut out = Vec::new();
    if let Some(named) = &s.playbook
        && named != &selected.id
    {
        out.push(format!(
            "{shown}: playbook: names `{named}`, but the drill is declared as {category} {severity}, \
             which selects playbook `{}`; set [start] category/severity so that `{named}` is \
             selected, or name `{}`",
            selected.id, selected.id
        ));
    }
    let left_out: Vec<&str> = selected
        .departments
        .iter()
        .filter(|d| !s.participants.departments.contains(d))
        .map(String::as_str)
        .collect();
    if !left_out.is_empty() {
        out.push(format!(
            "{shown}: participants.departments: playbook `{}` pages {}, which the participants \
             leave out: the drill guard would refuse their pages and the scorecard would mark \
             them missed; add {} to participants.departments",
            selected.id,
            left_out.join(", "),
            if left_out.len() == 1 { "it" } else { "them" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTS: &[&str] = &["security", "legal"];

    fn load(text: &str) -> Result<Scenario, Vec<String>> {
        parse(
            "d.toml",
            text,
            DEPTS,
            &|t| t == "notice/pi_leak",
            &["pi_incident"],
        )
    }

    const GOOD: &str = r#"
name = "bucket"
mode = "functional"
owner = "drills@example.com"
time_limit = "1h"
playbook = "pi_incident"
notice_template = "pi_leak"
[start]
title = "Bucket open"
category = "pi_leak"
[start.facts]
affected_subjects = 1000
[participants]
departments = ["security"]
[capture]
email = ["capture@example.com"]
phone = ["+8613900000000"]
[targets]
contain = "30m"
[targets.acknowledge]
default = "10m"
[[injects]]
after = "20m"
message = "a journalist asks"
facts = { affected_subjects = 1200000 }
"#;

    #[test]
    fn a_good_scenario_loads() {
        let s = load(GOOD).unwrap();
        assert_eq!(s.name, "bucket");
        assert_eq!(s.mode, Mode::Functional);
        assert_eq!(s.injects.len(), 1);
        assert_eq!(s.targets.contain.unwrap().0.as_secs(), 1800);
    }

    #[test]
    fn unknown_references_are_refused_with_file_key_and_message() {
        let bad = GOOD
            .replace("\"pi_incident\"", "\"nope\"")
            .replace("\"pi_leak\"\n[start]", "\"missing\"\n[start]")
            .replace("[\"security\"]", "[\"security\", \"finance\"]")
            .replace("after = \"20m\"", "after = \"2h\"");
        let e = load(&bad).unwrap_err().join("\n");
        assert!(
            e.contains("d.toml: playbook: unknown playbook `nope`"),
            "{e}"
        );
        assert!(
            e.contains("d.toml: notice_template: unknown template `missing`"),
            "{e}"
        );
        assert!(
            e.contains("d.toml: participants.departments[1]: unknown department `finance`"),
            "{e}"
        );
        assert!(e.contains("d.toml: injects[0].after:"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_facts_are_refused() {
        let e = load(&format!("{GOOD}\nsurprise = 1\n"))
            .unwrap_err()
            .join("\n");
        assert!(e.contains("surprise"), "{e}");
        let e = load(&GOOD.replace(
            "affected_subjects = 1200000",
            "affected_subjects = \"many\"",
        ))
        .unwrap_err()
        .join("\n");
        assert!(e.contains("injects[0].facts"), "{e}");
    }
}
