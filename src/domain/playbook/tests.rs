use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::domain::source::Source;

const DEPARTMENTS: [&str; 6] = [
    "security",
    "government_relations",
    "legal",
    "public_relations",
    "customer_service",
    "it_operations",
];

fn templates(name: &str) -> bool {
    matches!(name, "page/incident_opened" | "notice/pi_leak")
}

/// A folder's files as `crate::config::files` hands them over, sorted by name.
struct Folder {
    dir: PathBuf,
    files: Vec<Source>,
}

impl Folder {
    fn path(&self) -> &Path {
        &self.dir
    }
}

/// The shipped playbooks (config/playbooks).
fn shipped() -> Folder {
    let mut f = folder(&[
        (
            "cyber_general.toml",
            include_str!("../../../config/playbooks/cyber_general.toml"),
        ),
        (
            "default.toml",
            include_str!("../../../config/playbooks/default.toml"),
        ),
        (
            "pi_incident.toml",
            include_str!("../../../config/playbooks/pi_incident.toml"),
        ),
        (
            "triage.toml",
            include_str!("../../../config/playbooks/triage.toml"),
        ),
    ]);
    f.dir = PathBuf::from("config/playbooks");
    f
}

fn load_dir(d: &Folder) -> Result<Playbooks, Vec<String>> {
    Playbooks::from_sources(&d.dir, &d.files, Vec::new(), &DEPARTMENTS, &templates)
}

/// A folder with these files, sorted by name.
fn folder(files: &[(&str, &str)]) -> Folder {
    let dir = PathBuf::from("/playbooks");
    let mut files: Vec<Source> = files
        .iter()
        .map(|(name, text)| Source::new(dir.join(name), *text))
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Folder { dir, files }
}

/// The smallest default playbook: one task for Security.
pub(crate) const DEFAULT: &str = r#"
id = "default"
name = "Default"
team = ["security", "government_relations", "legal"]

[[tasks]]
id = "triage"
title = "Triage"
department = "security"
due = "1h"
"#;

/// The problems of loading `default.toml` plus these files, all in one string.
fn problems(files: &[(&str, &str)]) -> (Folder, String) {
    let mut all = vec![("default.toml", DEFAULT)];
    all.extend_from_slice(files);
    let d = folder(&all);
    let errs = load_dir(&d).expect_err("should not load");
    (d, errs.join("\n"))
}

/// `<dir>/<file>: <rest>` as a problem line should read.
fn at(d: &Folder, file: &str, rest: &str) -> String {
    format!("{}: {rest}", d.path().join(file).display())
}

fn assert_has(all: &str, want: &str) {
    assert!(all.contains(want), "missing\n  {want}\nin\n{all}");
}

/// A one-task playbook matching `categories` with this team.
fn simple(id: &str, matching: &str, team: &str) -> String {
    format!(
        r#"
id = "{id}"
name = "{id}"
team = {team}

[match]
{matching}

[[tasks]]
id = "t"
title = "T"
department = "security"
due = "1h"
"#
    )
}

// --- the shipped folder -----------------------------------------------------------------------

#[test]
fn shipped_playbooks_load_without_problems() {
    let p = load_dir(&shipped()).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let ids: Vec<&str> = p.all().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["cyber_general", "default", "pi_incident", "triage"]);
    assert_eq!(p.default_playbook().id, "default");
}

#[test]
fn shipped_selection() {
    let p = load_dir(&shipped()).unwrap();
    for c in [Category::PiLeak, Category::PiDamage, Category::PiLoss] {
        assert_eq!(p.select(c, Severity::S1).id, "pi_incident");
        // even a wrong severity cannot take a PI incident elsewhere
        assert_eq!(p.select(c, Severity::S4).id, "pi_incident");
    }
    assert_eq!(
        p.select(Category::Malware, Severity::S2).id,
        "cyber_general"
    );
    assert_eq!(
        p.select(Category::Intrusion, Severity::S4).id,
        "cyber_general"
    );
    assert_eq!(p.select(Category::Other, Severity::S1).id, "default");
    assert_eq!(p.select(Category::Disaster, Severity::S3).id, "default");
    // An alert no rule classified: Security's on-call triages it.
    let t = p.select(Category::Unclassified, Severity::S2);
    assert_eq!(
        (t.id.as_str(), t.departments.as_slice()),
        ("triage", &["security".to_string()][..])
    );
}

#[test]
fn shipped_pi_playbook_has_the_joint_team_and_gates() {
    let p = load_dir(&shipped()).unwrap();
    let pi = p.get("pi_incident").unwrap();
    for d in PI_TEAM {
        assert!(pi.departments.iter().any(|t| t == d), "{d}");
    }
    let notice = pi.task("approve_notice").unwrap();
    assert!(notice.approval);
    assert_eq!(notice.approvers, ["legal"]);
    assert_eq!(notice.depends_on, ["prepare_notice"]);
    assert_eq!(
        notice.lint,
        Some(TaskLint::Notice),
        "the notice gate lints first"
    );
    let report = pi.task("approve_regulator_report").unwrap();
    assert!(report.approval);
    assert_eq!(
        report.lint,
        Some(TaskLint::Report),
        "approving a report version satisfies the report gate"
    );
    assert_eq!(report.approvers, ["government_relations", "legal"]);
    assert_eq!(pi.page_template, DEFAULT_PAGE_TEMPLATE);
    assert_eq!(pi.task("contain").unwrap().due, Duration::from_secs(3600));
    for d in PI_TEAM {
        assert!(p.default_playbook().departments.iter().any(|t| t == d));
    }
}

#[test]
fn tasks_for_filters_by_severity() {
    let p = load_dir(&shipped()).unwrap();
    let cyber = p.get("cyber_general").unwrap();
    let ids = |s| -> Vec<&str> { cyber.tasks_for(s).iter().map(|t| t.id.as_str()).collect() };
    assert!(ids(Severity::S1).contains(&"report_external"));
    assert!(ids(Severity::S2).contains(&"preserve_evidence"));
    assert!(!ids(Severity::S3).contains(&"report_external"));
    assert!(!ids(Severity::S4).contains(&"preserve_evidence"));
    assert_eq!(ids(Severity::S4).len(), cyber.tasks.len() - 2);
    // file order is kept
    assert_eq!(ids(Severity::S3)[0], "triage");
}

#[test]
fn after_is_a_prerequisite_once() {
    let p = load_dir(&shipped()).unwrap();
    let t = p.get("cyber_general").unwrap().task("eradicate").unwrap();
    assert_eq!(t.after.as_deref(), Some("contain"));
    assert_eq!(t.prerequisites().collect::<Vec<_>>(), ["contain"]);
}

// --- selection --------------------------------------------------------------------------------

#[test]
fn most_specific_match_wins() {
    let team = r#"["security", "government_relations", "legal"]"#;
    let d = folder(&[
        ("a_default.toml", DEFAULT),
        (
            "b_sev.toml",
            &simple("sev", r#"severities = ["S1", "S2"]"#, team),
        ),
        (
            "c_cat.toml",
            &simple("cat", r#"categories = ["malware", "intrusion"]"#, team),
        ),
        (
            "d_both.toml",
            &simple(
                "both",
                "categories = [\"malware\"]\nseverities = [\"S1\"]",
                team,
            ),
        ),
    ]);
    let p = load_dir(&d).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    assert_eq!(p.select(Category::Malware, Severity::S1).id, "both");
    assert_eq!(p.select(Category::Malware, Severity::S2).id, "cat");
    assert_eq!(p.select(Category::Intrusion, Severity::S1).id, "cat");
    assert_eq!(p.select(Category::Other, Severity::S2).id, "sev");
    assert_eq!(p.select(Category::Other, Severity::S3).id, "default");
    assert_eq!(
        p.get("cat").unwrap().specificity(),
        Specificity::CategoryOnly
    );
    assert!(p.get("nope").is_none());
}

// --- problems ---------------------------------------------------------------------------------

#[test]
fn syntax_errors_name_line_and_column() {
    let (d, all) = problems(&[("bad.toml", "id = \"x\"\nname = \n")]);
    assert_has(&all, &format!("{}:2:", d.path().join("bad.toml").display()));
}

#[test]
fn unknown_keys_are_refused() {
    let text = DEFAULT
        .replace("id = \"default\"", "id = \"other\"\nowner = \"x\"")
        .replace("due = \"1h\"", "due = \"1h\"\ndeadline = \"2h\"");
    let (d, all) = problems(&[("x.toml", &text)]);
    assert_has(
        &all,
        &at(
            &d,
            "x.toml",
            "owner: unknown field `owner`, expected one of `id`, `name`",
        ),
    );
    let text = DEFAULT
        .replace("id = \"default\"", "id = \"other\"")
        .replace("due = \"1h\"", "due = \"1h\"\ndeadline = \"2h\"");
    let (d, all) = problems(&[("x.toml", &text)]);
    assert_has(
        &all,
        &at(&d, "x.toml", "tasks[0].deadline: unknown field `deadline`"),
    );
}

#[test]
fn bad_values_name_their_key() {
    let text = r#"
id = "x"
name = ""
page_template = "page/nope"
team = ["security", "securty", "security"]

[match]
categories = ["malware", "leak"]
severities = ["S9"]

[[tasks]]
id = "a"
title = " "
department = "security"
due = "0s"
severities = ["S0"]
"#;
    let (d, all) = problems(&[("x.toml", text)]);
    for want in [
        "name: write a name",
        "page_template: no message template `page/nope`",
        "team[1]: `securty` is not a department the configuration defines; use one of: security,",
        "team[2]: `security` is listed twice",
        "match.categories[1]: `leak` is not a known category",
        "match.severities[0]: `S9` is not a severity",
        "tasks[0] (a).title: write what must be done",
        "tasks[0] (a).due: must be longer than zero",
        "tasks[0] (a).severities[0]: `S0` is not a severity",
    ] {
        assert_has(&all, &at(&d, "x.toml", want));
    }
}

#[test]
fn bad_due_text_names_its_key() {
    let text = DEFAULT
        .replace("id = \"default\"", "id = \"x\"")
        .replace("[[tasks]]", "[match]\nseverities = [\"S4\"]\n\n[[tasks]]")
        .replace("due = \"1h\"", "due = \"1 hour\"");
    let (d, all) = problems(&[("x.toml", &text)]);
    assert_has(&all, &at(&d, "x.toml", "tasks[0].due: `1 hour` has unit"));
}

#[test]
fn duplicate_ids() {
    let twice = r#"
id = "x"
name = "X"
team = ["security"]
[match]
categories = ["malware"]

[[tasks]]
id = "a"
title = "A"
department = "security"
due = "1h"

[[tasks]]
id = "a"
title = "A again"
department = "security"
due = "1h"
"#;
    let again = twice.replace("categories = [\"malware\"]", "categories = [\"intrusion\"]");
    let (d, all) = problems(&[("x.toml", twice), ("y.toml", &again)]);
    assert_has(
        &all,
        &at(
            &d,
            "x.toml",
            "tasks[1] (a).id: tasks[0] already uses this id; task ids must be unique in a playbook",
        ),
    );
    assert_has(
        &all,
        &at(
            &d,
            "y.toml",
            &format!(
                "id: playbook id `x` is already used in {}",
                d.path().join("x.toml").display()
            ),
        ),
    );
}

#[test]
fn departments_must_be_in_the_team_and_configured() {
    let text = r#"
id = "x"
name = "X"
team = ["security", "it_operations"]
[match]
categories = ["malware"]

[[tasks]]
id = "a"
title = "A"
department = "legal"
due = "1h"

[[tasks]]
id = "b"
title = "B"
department = "finance"
due = "1h"
approval = true
approvers = ["security", "public_relations"]

[[tasks]]
id = "c"
title = "C"
department = "security"
due = "1h"
approvers = ["security"]

[[tasks]]
id = "d"
title = "D"
department = "security"
due = "1h"
approval = true
approvers = []
"#;
    let (d, all) = problems(&[("x.toml", text)]);
    for want in [
        "tasks[0] (a).department: `legal` is not in this playbook's team; add it to `team` or use one of: security, it_operations",
        "tasks[1] (b).department: `finance` is not a department the configuration defines",
        "tasks[1] (b).approvers[1]: `public_relations` is not in this playbook's team",
        "tasks[2] (c).approvers: only an approval gate has approvers; add `approval = true` or remove `approvers`",
        "tasks[3] (d).approvers: name at least one department",
    ] {
        assert_has(&all, &at(&d, "x.toml", want));
    }
}

#[test]
fn approvers_default_to_the_department() {
    let text = DEFAULT.replace("due = \"1h\"", "due = \"1h\"\napproval = true");
    let d = folder(&[("default.toml", &text)]);
    let p = load_dir(&d).unwrap();
    assert_eq!(p.default_playbook().tasks[0].approvers, ["security"]);
    assert!(p.default_playbook().tasks[0].approval);
}

const CHAIN: &str = r#"
id = "x"
name = "X"
team = ["security"]
[match]
categories = ["malware"]

[[tasks]]
id = "a"
title = "A"
department = "security"
due = "1h"
depends_on = ["c"]

[[tasks]]
id = "b"
title = "B"
department = "security"
due = "1h"
depends_on = ["a", "ghost"]

[[tasks]]
id = "c"
title = "C"
department = "security"
due = "1h"
after = "b"

[[tasks]]
id = "d"
title = "D"
department = "security"
due = "1h"
depends_on = ["d"]
after = "phantom"
"#;

#[test]
fn missing_references_and_cycles_with_their_path() {
    let (d, all) = problems(&[("x.toml", CHAIN)]);
    for want in [
        "tasks[1] (b).depends_on[1]: no task `ghost` in this playbook; use one of: a, b, c, d",
        "tasks[3] (d).after: no task `phantom` in this playbook",
        "tasks[0] (a).depends_on[0]: dependency cycle a → c → b → a (`depends_on` and `after` both count)",
        "tasks[3] (d).depends_on[0]: dependency cycle d → d",
    ] {
        assert_has(&all, &at(&d, "x.toml", want));
    }
    assert_eq!(all.matches("dependency cycle").count(), 2, "{all}");
}

#[test]
fn a_dependency_must_apply_wherever_its_dependent_does() {
    let text = r#"
id = "x"
name = "X"
team = ["security"]
[match]
categories = ["malware"]
severities = ["S1", "S2", "S3"]

[[tasks]]
id = "report"
title = "Report"
department = "security"
due = "1h"
severities = ["S1", "S2"]

[[tasks]]
id = "review"
title = "Review"
department = "security"
due = "1d"
after = "report"

[[tasks]]
id = "ok"
title = "OK"
department = "security"
due = "1d"
depends_on = ["report"]
severities = ["S1"]

[[tasks]]
id = "never"
title = "Never"
department = "security"
due = "1d"
severities = ["S4"]
"#;
    let (d, all) = problems(&[("x.toml", text)]);
    assert_has(
        &all,
        &at(
            &d,
            "x.toml",
            "tasks[1] (review).after: `report` does not apply at S3, where `review` does",
        ),
    );
    assert_has(
        &all,
        &at(
            &d,
            "x.toml",
            "tasks[3] (never).severities: the task would never apply: the playbook only matches S1, S2, S3",
        ),
    );
    assert!(!all.contains("(ok)"), "{all}");
}

#[test]
fn pi_playbooks_need_the_joint_team() {
    let team = r#"["security", "public_relations"]"#;
    let (d, all) = problems(&[
        (
            "pi.toml",
            &simple("pi", r#"categories = ["pi_loss"]"#, team),
        ),
        ("s1.toml", &simple("s1", r#"severities = ["S1"]"#, team)),
        // S3 only: a PI incident (always S1) can never reach it
        ("s3.toml", &simple("s3", r#"severities = ["S3"]"#, team)),
    ]);
    let want = "team: this playbook can match personal-information incidents (pi_leak, pi_damage, \
                pi_loss), so its team must include security, government_relations and legal \
                (the joint emergency response team); add `government_relations`, `legal`";
    assert_has(&all, &at(&d, "pi.toml", want));
    assert_has(&all, &at(&d, "s1.toml", want));
    assert!(!all.contains("s3.toml"), "{all}");

    let d = folder(&[(
        "default.toml",
        &DEFAULT.replace(
            r#""security", "government_relations", "legal""#,
            r#""security""#,
        ),
    )]);
    let all = load_dir(&d).unwrap_err().join("\n");
    assert_has(
        &all,
        &at(
            &d,
            "default.toml",
            "team: the default playbook is chosen for any personal-information incident no other \
             playbook matches, so its team must include",
        ),
    );
}

#[test]
fn exactly_one_default() {
    let d = folder(&[(
        "x.toml",
        &simple("x", r#"categories = ["malware"]"#, r#"["security"]"#),
    )]);
    let all = load_dir(&d).unwrap_err().join("\n");
    assert_has(
        &all,
        &format!(
            "{}: match: no default playbook; exactly one playbook must have no [match] table",
            d.path().display()
        ),
    );
    let other = DEFAULT.replace("id = \"default\"", "id = \"fallback\"");
    let (d, all) = problems(&[("z.toml", &other)]);
    assert_has(
        &all,
        &at(
            &d,
            "z.toml",
            &format!(
                "match: `fallback` and `default` ({}) are both default playbooks",
                d.path().join("default.toml").display()
            ),
        ),
    );
    let empty_match = DEFAULT
        .replace("id = \"default\"", "id = \"e\"")
        .replace("[[tasks]]", "[match]\n\n[[tasks]]");
    let (d, all) = problems(&[("e.toml", &empty_match)]);
    assert_has(
        &all,
        &at(
            &d,
            "e.toml",
            "match: name at least one of `categories` or `severities`, or remove [match]",
        ),
    );
    assert!(!all.contains("both default"), "{all}");
}

#[test]
fn overlapping_matches_of_equal_specificity_are_ambiguous() {
    let team = r#"["security"]"#;
    let (d, all) = problems(&[
        ("a.toml", &simple("a", r#"categories = ["malware"]"#, team)),
        (
            "b.toml",
            &simple("b", r#"categories = ["intrusion", "malware"]"#, team),
        ),
        // more specific than both: no ambiguity
        (
            "c.toml",
            &simple(
                "c",
                "categories = [\"malware\"]\nseverities = [\"S1\"]",
                team,
            ),
        ),
        // same specificity, disjoint: fine
        ("d.toml", &simple("d", r#"categories = ["disaster"]"#, team)),
    ]);
    assert_has(
        &all,
        &at(
            &d,
            "b.toml",
            &format!(
                "match: `b` and `a` ({}) both match malware S1 with equal specificity",
                d.path().join("a.toml").display()
            ),
        ),
    );
    assert_eq!(all.matches("equal specificity").count(), 1, "{all}");
}

#[test]
fn bad_ids() {
    let text = simple("Bad Id", r#"categories = ["malware"]"#, r#"["security"]"#);
    let (d, all) = problems(&[("x.toml", &text)]);
    assert_has(&all, &at(&d, "x.toml", "id: `Bad Id` is not a valid id"));
}

#[test]
fn an_unreadable_file_may_have_been_the_default() {
    let d = folder(&[(
        "a.toml",
        &simple("a", r#"categories = ["malware"]"#, r#"["security"]"#),
    )]);
    let unreadable = vec!["/playbooks/default.toml: cannot read: permission denied".to_string()];
    let all = Playbooks::from_sources(&d.dir, &d.files, unreadable, &DEPARTMENTS, &templates)
        .unwrap_err()
        .join("\n");
    assert_has(&all, "default.toml: cannot read");
    assert!(!all.contains("no default playbook"), "{all}");
}

#[test]
fn a_lint_is_known_and_only_on_gates() {
    let text = r#"
id = "x"
name = "x"
team = ["security"]

[match]
categories = ["malware"]

[[tasks]]
id = "a"
title = "A"
department = "security"
due = "1h"
lint = "notice"

[[tasks]]
id = "b"
title = "B"
department = "security"
due = "1h"
approval = true
lint = "notices"
"#;
    let (d, all) = problems(&[("x.toml", text)]);
    assert_has(
        &all,
        &at(
            &d,
            "x.toml",
            "tasks[0] (a).lint: only an approval gate runs a lint",
        ),
    );
    assert_has(
        &all,
        &at(
            &d,
            "x.toml",
            "tasks[1] (b).lint: `notices` is not a lint; use one of: notice, report",
        ),
    );
}
