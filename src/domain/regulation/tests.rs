//! Smoke tests of the shipped packs; the table-driven rule tests are in `tests/regulation_rules.rs`.

use std::path::Path;

use super::*;
use crate::domain::source::Source;

/// The shipped packs (config/jurisdictions), as `crate::config::files` hands them over.
pub(crate) fn shipped() -> Packs {
    let files = [
        (
            "cn.toml",
            include_str!("../../../config/jurisdictions/cn.toml"),
        ),
        (
            "eu.toml",
            include_str!("../../../config/jurisdictions/eu.toml"),
        ),
        (
            "sg.toml",
            include_str!("../../../config/jurisdictions/sg.toml"),
        ),
    ]
    .map(|(name, text)| Source::new(Path::new("config/jurisdictions").join(name), text));
    Packs::from_sources(&files, &[], &|_| true).unwrap_or_else(|p| panic!("{}", p.join("\n")))
}

#[test]
fn shipped_packs_load() {
    let packs = shipped();
    let codes: Vec<&str> = packs.all().iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["CN", "EU", "SG"]);
}

#[test]
fn calendar_days_end_at_the_end_of_the_last_local_day() {
    let tz = FixedOffset::east_opt(8 * 3600).unwrap();
    // 2026-03-02 10:00 SGT = 02:00 UTC; 3 calendar days after that day: end of 2026-03-05 SGT.
    let start = "2026-03-02T02:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let d = deadline(
        start,
        Duration::from_secs(3 * 86_400),
        Counting::CalendarDaysAfter,
        tz,
    );
    assert_eq!(d.to_rfc3339(), "2026-03-05T15:59:59.999999+00:00");
}

/// The smallest valid pack: one grade above the default, one report, one field.
const MINIMAL: &str = r#"
code = "XY"
name = "Test law"
locale = "en"
timezone = "+00:00"

[[grades]]
id = "high"
name = "High"
[[grades.criteria]]
id = "many"
text = "1,000 people or more"
when = { affected_subjects_at_least = 1000 }

[[grades]]
id = "low"
name = "Low"

[recipients.authority]
name = "The authority"

[[obligations]]
id = "initial"
title = "Report"
kind = "report"
report = "first"
recipient = "authority"
law = "Test law art. 1"
when = { grade_at_least = "high", facts_true = ["suspected_crime"] }
clock = "discovered_at"
deadline = "4h"
owner = "legal"

[reports.first]
kind = "initial"
template = "regulator/test"
required = ["unit"]

[fields.unit]
label = "Unit"
from = "organisation.name"
"#;

/// Parse `MINIMAL` with `from` replaced by `to` (which must occur), and return its problems.
fn problems_after(from: &str, to: &str) -> Vec<String> {
    assert!(MINIMAL.contains(from), "the test pack has no `{from}`");
    let text = MINIMAL.replacen(from, to, 1);
    match pack::parse("packs/xy.toml", &text, &[], &|_| true) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

#[test]
fn the_minimal_pack_is_valid() {
    assert_eq!(
        problems_after("Test law art. 1", "Test law art. 1"),
        Vec::<String>::new()
    );
}

#[test]
fn invalid_packs_are_refused_naming_file_key_and_remedy() {
    let (discovered, bad_clock) = ("clock = \"discovered_at\"", "clock = \"discovery\"");
    let clocks =
        "discovered_at, aware_at, assessed_notifiable_at, handling_closed_at, material_change";
    let flags = crate::domain::facts::FLAG_FACTS.join(", ");
    let cases: Vec<(&str, &str, &str, String)> = vec![
        (
            "unknown clock",
            discovered,
            bad_clock,
            format!("packs/xy.toml: obligations[0].clock: `discovery` is not a clock; use one of: {clocks}"),
        ),
        (
            "bad duration",
            "deadline = \"4h\"",
            "deadline = \"4 hours\"",
            "packs/xy.toml: obligations[0].deadline: `4 hours` has unit ` hours`; use one of s, m, h, d (e.g. 90s, 10m, 4h, 3d)".into(),
        ),
        (
            "unknown fact in facts_true",
            "facts_true = [\"suspected_crime\"]",
            "facts_true = [\"suspected_crim\"]",
            format!("packs/xy.toml: obligations[0].when.facts_true[0]: `suspected_crim` is not a yes/no fact; use one of {flags}"),
        ),
        (
            "unknown grade in grade_at_least",
            "grade_at_least = \"high\"",
            "grade_at_least = \"III\"",
            "packs/xy.toml: obligations[0].when.grade_at_least: `III` is not a grade of this pack; use one of high, low".into(),
        ),
        (
            "report without [reports.x]",
            "report = \"first\"",
            "report = \"initial_report\"",
            "packs/xy.toml: obligations[0].report: there is no [reports.initial_report] in this pack to render it; name one of first or add [reports.initial_report] with kind, template and required".into(),
        ),
        (
            "field from an unknown source",
            "from = \"organisation.name\"",
            "from = \"company.name\"",
            format!("packs/xy.toml: fields.unit.from: `company` is not a source; use one of {}", FIELD_SOURCES.join(", ")),
        ),
        (
            "field from an unknown name of a known source",
            "from = \"organisation.name\"",
            "from = \"organisation.title\"",
            "packs/xy.toml: fields.unit.from: `organisation.title`: organisation has no `title`; use one of name, contact, operator_type".into(),
        ),
        (
            "calendar days that are not whole days",
            "deadline = \"4h\"",
            "deadline = \"36h\"\ncounting = \"calendar_days_after\"",
            "packs/xy.toml: obligations[0].deadline: calendar days are whole days: write it like 3d".into(),
        ),
        (
            "unknown way to count",
            "deadline = \"4h\"",
            "deadline = \"4h\"\ncounting = \"business_days\"",
            "packs/xy.toml: obligations[0].counting: `business_days` is not a way to count; use elapsed or calendar_days_after".into(),
        ),
        (
            "an exemption that is `required`",
            "owner = \"legal\"",
            "owner = \"legal\"\n[[obligations.exemptions]]\nid = \"x\"\nstanding = \"required\"\ntext = \"t\"\nwhen = { facts_true = [\"mitigation_effective\"] }",
            "packs/xy.toml: obligations[0].exemptions[0].standing: `required`: an exemption's standing is exempt, not_required or hold".into(),
        ),
    ];
    for (what, from, to, want) in cases {
        assert_eq!(problems_after(from, to), vec![want], "{what}");
    }
}

#[test]
fn unknown_keys_are_refused_with_the_keys_that_exist() {
    // A typo in an obligation's key.
    assert_eq!(
        problems_after("deadline = \"4h\"", "dedline = \"4h\""),
        [
            "packs/xy.toml: obligations[0].dedline: unknown field `dedline`, expected one of `id`, \
          `title`, `kind`, `report`, `recipient`, `recipient_by_operator`, `law`, `when`, \
          `clock`, `deadline`, `counting`, `owner`, `reminders`, `after`, `on_change_of`, \
          `exemptions`, `task`"
        ]
    );
    // A typo in a condition.
    let p = problems_after(
        "affected_subjects_at_least = 1000",
        "affected_subject_at_least = 1000",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "packs/xy.toml: grades[0].criteria[0].when.affected_subject_at_least: unknown field \
             `affected_subject_at_least`, expected one of `affected_subjects_at_least`, "
        ),
        "{}",
        p[0]
    );
}

#[test]
fn supplementary_after_an_unknown_obligation_names_the_reports_to_follow() {
    let p = problems_after(
        "[reports.first]",
        "[[obligations]]\nid = \"update\"\ntitle = \"Update\"\nkind = \"report\"\nreport = \"first\"\nlaw = \"art. 2\"\nclock = \"material_change\"\ndeadline = \"1d\"\nowner = \"legal\"\nafter = [\"intial\"]\non_change_of = [\"cause\"]\n\n[reports.first]",
    );
    assert_eq!(
        p,
        [
            "packs/xy.toml: obligations[1].after[0]: there is no obligation `intial` in this pack; use one of initial"
        ]
    );
}
