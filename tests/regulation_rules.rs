//! The rules of the shipped jurisdiction packs, table by table: for CN, SG and EU, cases just
//! below, at and above each threshold, each operator type, the clocks, the exemptions and holds,
//! and supplementary reports — asserting the grade and its criterion, every obligation with its
//! standing and exact deadline, and the "why". Pure: the packs are read from
//! `config/jurisdictions`; no daemon, no database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use incidentd::domain::facts::{Facts, Jurisdiction};
use incidentd::domain::records::Incident;
use incidentd::domain::regulation::{
    Assessment, Case, Clock, JurisdictionAssessment, ObligationOutcome, OperatorType, Packs,
    Submitted,
};
use incidentd::domain::{Category, Severity, Status};
use serde_json::{Value, json};

use OperatorType::{Cii, Other, StateOrgan};

// ---------------------------------------------------------------- the clocks every case starts from

/// Discovered 2026-03-02 10:00 in Beijing and Singapore (+08:00).
const DISCOVERED: &str = "2026-03-02T02:00:00Z";
/// Aware that personal data were affected three hours later.
const AWARE: &str = "2026-03-02T05:00:00Z";
/// "Now", for supplementary reports whose clock starts when they become owed.
const NOW: &str = "2026-03-04T08:30:00Z";
/// What the helper writes when a case claims effective mitigation or a GDPR risk.
const JUSTIFICATION: &str = "the leaked session tokens were revoked within minutes";
const RISK_REASON: &str = "the records hold only hashed e-mail addresses";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn shown(d: DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn packs_in(dir: &Path) -> Packs {
    incidentd::config::files::packs(dir, &[], &|_| true)
        .unwrap_or_else(|p| panic!("{}", p.join("\n")))
}

fn shipped_dir() -> PathBuf {
    crate::common::repo().join("config/jurisdictions")
}

fn shipped() -> Packs {
    packs_in(&shipped_dir())
}

/// An incident of `category` with `facts` (JSON, as the API takes them) and the standard clocks,
/// changed by `clocks`: `("aware_at", "")` unsets one, `("handling_closed_at", "2026-…")` sets it.
fn incident(category: &str, facts: &Value, clocks: &[(&str, &str)]) -> Incident {
    let mut facts = facts.clone();
    let f = facts.as_object_mut().expect("facts are a JSON object");
    if f.get("mitigation_effective") == Some(&json!(true)) {
        f.entry("mitigation_justification")
            .or_insert(json!(JUSTIFICATION));
    }
    if f.contains_key("risk") {
        f.entry("risk_reason").or_insert(json!(RISK_REASON));
    }
    let facts = Facts::default()
        .apply_patch(&facts)
        .unwrap_or_else(|e| panic!("facts {facts}: {e}"));
    let mut inc = Incident {
        id: 1,
        status: Status::Triaged,
        facts,
        aware_at: Some(t(AWARE)),
        alert_count: 1,
        ..Incident::opening(
            "Customer database exposed".into(),
            category.parse::<Category>().unwrap(),
            Severity::S1,
            "declaration",
            "test",
            t(DISCOVERED),
        )
    };
    for (clock, at) in clocks {
        let at = (!at.is_empty()).then(|| t(at));
        match *clock {
            "discovered_at" => inc.discovered_at = at.expect("discovered_at is always set"),
            "aware_at" => inc.aware_at = at,
            "assessed_notifiable_at" => inc.assessed_notifiable_at = at,
            "handling_closed_at" => inc.handling_closed_at = at,
            "closed_at" => inc.closed_at = at,
            other => panic!("no clock {other}"),
        }
    }
    inc
}

struct Given<'a> {
    submitted: &'a [Submitted],
    started: &'a BTreeMap<String, DateTime<Utc>>,
}

const NOTHING_SUBMITTED: Given<'static> = Given {
    submitted: &[],
    started: &EMPTY,
};
static EMPTY: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();

fn assess(
    packs: &Packs,
    code: &str,
    inc: &Incident,
    operator: OperatorType,
    given: &Given<'_>,
) -> Assessment {
    let jurisdictions = [code.parse::<Jurisdiction>().unwrap()];
    packs.assess(&Case {
        incident: inc,
        operator_type: operator,
        organisation_jurisdictions: &jurisdictions,
        submitted: given.submitted,
        started: given.started,
        now: t(NOW),
    })
}

fn only(a: &Assessment) -> &JurisdictionAssessment {
    assert_eq!(a.jurisdictions.len(), 1, "{a:#?}");
    &a.jurisdictions[0]
}

/// `III/pi_1m`, or `IV/-` for the grade that applies when nothing holds.
fn grade_line(j: &JurisdictionAssessment) -> String {
    format!(
        "{}/{}",
        j.grade.id,
        j.grade.criterion.as_deref().unwrap_or("-")
    )
}

/// `CN:pipl_individuals exempt(measures_avoid_harm) 2026-03-05T05:00:00Z`; `-` for no deadline.
fn obligation_line(o: &ObligationOutcome) -> String {
    format!(
        "{} {}{} {}",
        o.key,
        o.standing,
        o.exemption
            .as_ref()
            .map_or(String::new(), |e| format!("({e})")),
        o.due_at.map_or("-".into(), shown)
    )
}

fn obligation<'a>(j: &'a JurisdictionAssessment, key: &str) -> &'a ObligationOutcome {
    j.obligations
        .iter()
        .find(|o| o.key == key)
        .unwrap_or_else(|| panic!("no obligation {key} in {:#?}", j.obligations))
}

/// One case of a rules table.
struct Row {
    name: &'static str,
    category: &'static str,
    facts: Value,
    operator: OperatorType,
    clocks: &'static [(&'static str, &'static str)],
    /// `grade/criterion`.
    grade: &'static str,
    /// Every obligation, in the pack's order, as `key standing(exemption) due_at`.
    obligations: &'static [&'static str],
    /// (`grade` or an obligation key, text its why must contain).
    why: &'static [(&'static str, &'static str)],
}

fn row(name: &'static str, category: &'static str, facts: Value) -> Row {
    Row {
        name,
        category,
        facts,
        operator: Other,
        clocks: &[],
        grade: "",
        obligations: &[],
        why: &[],
    }
}

impl Row {
    fn operator(mut self, o: OperatorType) -> Row {
        self.operator = o;
        self
    }
    fn clocks(mut self, c: &'static [(&'static str, &'static str)]) -> Row {
        self.clocks = c;
        self
    }
    fn grade(mut self, g: &'static str) -> Row {
        self.grade = g;
        self
    }
    fn owes(mut self, o: &'static [&'static str]) -> Row {
        self.obligations = o;
        self
    }
    fn why(mut self, w: &'static [(&'static str, &'static str)]) -> Row {
        self.why = w;
        self
    }
}

fn run_table(code: &str, rows: Vec<Row>) {
    let packs = shipped();
    let mut failures = Vec::new();
    for r in &rows {
        let inc = incident(r.category, &r.facts, r.clocks);
        let a = assess(&packs, code, &inc, r.operator, &NOTHING_SUBMITTED);
        let j = only(&a);
        let got_grade = grade_line(j);
        let got: Vec<String> = j.obligations.iter().map(obligation_line).collect();
        if got_grade != r.grade {
            failures.push(format!("{}: grade {got_grade}, want {}", r.name, r.grade));
        }
        if got != r.obligations {
            failures.push(format!(
                "{}: obligations\n    got  {got:?}\n    want {:?}",
                r.name, r.obligations
            ));
        }
        for (target, text) in r.why {
            let lines: Vec<String> = if *target == "grade" {
                vec![j.grade.why.clone()]
            } else {
                match j.obligations.iter().find(|o| o.key == *target) {
                    Some(o) => o.why.clone(),
                    None => vec![format!("(no obligation {target})")],
                }
            };
            if !lines.iter().any(|l| l.contains(text)) {
                failures.push(format!(
                    "{}: the why of {target} lacks `{text}`: {lines:#?}",
                    r.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------- CN
//
// Discovered 2026-03-02 02:00Z: CII 1 h → 03:00Z, state organ 2 h → 04:00Z, other 4 h → 06:00Z,
// police 24 h → 03-03 02:00Z. Aware 05:00Z: PIPL authority 24 h → 03-03 05:00Z, individuals and
// announcement 72 h → 03-05 05:00Z. Closing: 30 days after handling ends.

#[test]
fn cn_grades_people_affected() {
    const IV_PIPL: &[&str] = &[
        "CN:pipl_authority required 2026-03-03T05:00:00Z",
        "CN:pipl_individuals required 2026-03-05T05:00:00Z",
    ];
    const III_PIPL: &[&str] = &[
        "CN:cac_report_other required 2026-03-02T06:00:00Z",
        "CN:cac_closing required -",
        "CN:pipl_authority required 2026-03-03T05:00:00Z",
        "CN:pipl_individuals required 2026-03-05T05:00:00Z",
    ];
    let pi = |n: u64| json!({ "affected_subjects": n, "data_types": ["name", "phone"] });
    run_table(
        "CN",
        vec![
            row("999,999 people", "pi_leak", pi(999_999))
                .grade("IV/-")
                .owes(IV_PIPL)
                .why(&[
                    ("grade", "一般 / general (IV): no criterion of a higher grade holds"),
                    ("CN:pipl_authority", "个人信息保护法 第五十七条"),
                    ("CN:pipl_authority", "a personal-information incident (pi_leak)"),
                ]),
            row("1,000,000 people", "pi_leak", pi(1_000_000))
                .grade("III/pi_1m")
                .owes(III_PIPL)
                .why(&[
                    ("grade", "较大 / relatively major (III) — 泄露100万人以上公民个人信息"),
                    ("grade", "[text]: affected_subjects 1,000,000 ≥ 1,000,000; a personal-information incident (pi_leak)"),
                    ("CN:cac_report_other", "applies because grade III ≥ III; operator type other"),
                ]),
            row("1,000,001 people", "pi_leak", pi(1_000_001)).grade("III/pi_1m").owes(III_PIPL),
            row("9,999,999 people", "pi_loss", pi(9_999_999)).grade("III/pi_1m").owes(III_PIPL),
            row("10,000,000 people", "pi_leak", pi(10_000_000))
                .grade("II/pi_10m")
                .owes(III_PIPL)
                .why(&[("grade", "affected_subjects 10,000,000 ≥ 10,000,000")]),
            row("99,999,999 people", "pi_damage", pi(99_999_999)).grade("II/pi_10m").owes(III_PIPL),
            row("100,000,000 people", "pi_leak", pi(100_000_000))
                .grade("I/pi_100m")
                .owes(III_PIPL)
                .why(&[("grade", "特别重大 / particularly major (I) — 泄露1亿人以上")]),
            row("5,000,000 people but not a PI incident", "intrusion", pi(5_000_000))
                .grade("IV/-")
                .owes(&[]),
        ],
    );
}

#[test]
fn cn_grades_economic_loss() {
    const III: &[&str] = &[
        "CN:cac_report_other required 2026-03-02T06:00:00Z",
        "CN:cac_closing required -",
    ];
    let loss = |cny: u64| json!({ "economic_loss_cny": cny });
    run_table(
        "CN",
        vec![
            row("CNY 4,999,999", "malware", loss(4_999_999))
                .grade("IV/-")
                .owes(&[]),
            row("CNY 5,000,000", "malware", loss(5_000_000))
                .grade("III/loss_5m_cny")
                .owes(III)
                .why(&[("grade", "economic_loss_cny 5,000,000 ≥ 5,000,000")]),
            row("CNY 19,999,999", "malware", loss(19_999_999))
                .grade("III/loss_5m_cny")
                .owes(III),
            row("CNY 20,000,000", "malware", loss(20_000_000))
                .grade("II/loss_20m_cny")
                .owes(III)
                .why(&[("grade", "direct economic loss ≥ CNY 20 million [summary]")]),
            row("CNY 99,999,999", "malware", loss(99_999_999))
                .grade("II/loss_20m_cny")
                .owes(III),
            row("CNY 100,000,000", "malware", loss(100_000_000))
                .grade("I/loss_100m_cny")
                .owes(III),
        ],
    );
}

#[test]
fn cn_grades_cii_outages_only_when_cii_is_involved() {
    const CII: &[&str] = &[
        "CN:cac_report_cii required 2026-03-02T03:00:00Z",
        "CN:cac_closing required -",
    ];
    let whole =
        |d: &str, cii: bool| json!({ "outage_whole_system": d, "critical_infrastructure": cii });
    let main =
        |d: &str, cii: bool| json!({ "outage_main_functions": d, "critical_infrastructure": cii });
    let plain = |key: &str, d: &str| json!({ key: d });
    run_table(
        "CN",
        vec![
            row("whole system 9 min", "equipment_fault", whole("9m", true))
                .grade("IV/-")
                .owes(&[]),
            row("whole system 10 min", "equipment_fault", whole("10m", true))
                .grade("III/cii_whole_10m")
                .owes(CII)
                .why(&[
                    (
                        "grade",
                        "outage_whole_system 10m ≥ 10m; critical_infrastructure = true",
                    ),
                    (
                        "CN:cac_report_cii",
                        "operator type cii (critical information infrastructure involved)",
                    ),
                ]),
            row(
                "whole system 10 min, CII not involved",
                "equipment_fault",
                whole("10m", false),
            )
            .grade("IV/-")
            .owes(&[]),
            row(
                "whole system 10 min, CII unknown",
                "equipment_fault",
                plain("outage_whole_system", "10m"),
            )
            .grade("IV/-")
            .owes(&[]),
            row(
                "whole system 359 min",
                "equipment_fault",
                whole("359m", true),
            )
            .grade("III/cii_whole_10m")
            .owes(CII),
            row("whole system 6 h", "equipment_fault", whole("6h", true))
                .grade("I/cii_whole_6h")
                .owes(CII),
            row(
                "whole system 6 h, CII not involved",
                "equipment_fault",
                whole("6h", false),
            )
            .grade("IV/-")
            .owes(&[]),
            row("main functions 29 min", "network_attack", main("29m", true))
                .grade("IV/-")
                .owes(&[]),
            row("main functions 30 min", "network_attack", main("30m", true))
                .grade("III/cii_main_30m")
                .owes(CII)
                .why(&[("grade", "outage_main_functions 30m ≥ 30m")]),
            row("main functions 23 h", "network_attack", main("23h", true))
                .grade("III/cii_main_30m")
                .owes(CII),
            row("main functions 24 h", "network_attack", main("24h", true))
                .grade("I/cii_main_24h")
                .owes(CII),
            row(
                "main functions 24 h, CII not involved",
                "network_attack",
                main("24h", false),
            )
            .grade("IV/-")
            .owes(&[]),
        ],
    );
}

#[test]
fn cn_grades_threats_to_important_data_and_bulk_pi() {
    const III: &[&str] = &[
        "CN:cac_report_other required 2026-03-02T06:00:00Z",
        "CN:cac_closing required -",
    ];
    let important = |threat: &str| json!({ "important_data": true, "threat": threat });
    run_table(
        "CN",
        vec![
            row("important data, relatively serious", "information_destruction", important("relatively_serious"))
                .grade("III/data_threat_relatively_serious")
                .owes(III)
                .why(&[("grade", "threat relatively_serious (≥ relatively_serious); important_data = true")]),
            row("important data, serious", "information_destruction", important("serious"))
                .grade("II/data_threat_serious")
                .owes(III),
            row("important data, particularly serious", "information_destruction", important("particularly_serious"))
                .grade("I/data_threat_particularly_serious")
                .owes(III)
                .why(&[("grade", "threat particularly_serious (≥ particularly_serious)")]),
            row("a threat but neither important data nor PI", "information_destruction", json!({ "threat": "particularly_serious" }))
                .grade("IV/-")
                .owes(&[]),
            row("important data but no threat", "information_destruction", json!({ "important_data": true }))
                .grade("IV/-")
                .owes(&[]),
            row("PI of 200 people, relatively serious", "pi_leak", json!({ "affected_subjects": 200, "threat": "relatively_serious" }))
                .grade("III/data_threat_relatively_serious")
                .owes(&[
                    "CN:cac_report_other required 2026-03-02T06:00:00Z",
                    "CN:cac_closing required -",
                    "CN:pipl_authority required 2026-03-03T05:00:00Z",
                    "CN:pipl_individuals required 2026-03-05T05:00:00Z",
                ])
                .why(&[("grade", "threat relatively_serious (≥ relatively_serious); a personal-information incident (pi_leak)")]),
        ],
    );
}

#[test]
fn cn_deadline_and_recipient_follow_the_operator_type() {
    let iii = json!({ "economic_loss_cny": 5_000_000 });
    let iii_cii = json!({ "economic_loss_cny": 5_000_000, "critical_infrastructure": true });
    let iii_not_cii = json!({ "economic_loss_cny": 5_000_000, "critical_infrastructure": false });
    run_table(
        "CN",
        vec![
            row("CII operator: 1 h", "malware", iii.clone())
                .operator(Cii)
                .grade("III/loss_5m_cny")
                .owes(&["CN:cac_report_cii required 2026-03-02T03:00:00Z", "CN:cac_closing required -"])
                .why(&[
                    ("CN:cac_report_cii", "report within 1 hour of discovery"),
                    ("CN:cac_report_cii", "deadline: 1h from discovered_at (2026-03-02 10:00 +08:00) → 2026-03-02 03:00:00 UTC (2026-03-02 11:00 +08:00)"),
                ]),
            row("state organ: 2 h", "malware", iii.clone())
                .operator(StateOrgan)
                .grade("III/loss_5m_cny")
                .owes(&["CN:cac_report_state_organ required 2026-03-02T04:00:00Z", "CN:cac_closing required -"])
                .why(&[("CN:cac_report_state_organ", "applies because grade III ≥ III; operator type state_organ")]),
            row("other operator: 4 h", "malware", iii.clone())
                .operator(Other)
                .grade("III/loss_5m_cny")
                .owes(&["CN:cac_report_other required 2026-03-02T06:00:00Z", "CN:cac_closing required -"]),
            row("state organ with CII involved: 1 h", "malware", iii_cii.clone())
                .operator(StateOrgan)
                .grade("III/loss_5m_cny")
                .owes(&["CN:cac_report_cii required 2026-03-02T03:00:00Z", "CN:cac_closing required -"]),
            row("other operator with CII involved: 1 h", "malware", iii_cii)
                .operator(Other)
                .grade("III/loss_5m_cny")
                .owes(&["CN:cac_report_cii required 2026-03-02T03:00:00Z", "CN:cac_closing required -"])
                .why(&[("CN:cac_report_cii", "operator type cii (critical information infrastructure involved)")]),
            row("other operator, CII explicitly not involved: 4 h", "malware", iii_not_cii)
                .operator(Other)
                .grade("III/loss_5m_cny")
                .owes(&["CN:cac_report_other required 2026-03-02T06:00:00Z", "CN:cac_closing required -"]),
            row("general (IV): no report whatever the operator", "malware", json!({ "economic_loss_cny": 4_999_999 }))
                .operator(Cii)
                .grade("IV/-")
                .owes(&[]),
        ],
    );
    // The closing report goes where the first one went.
    let packs = shipped();
    for (op, recipient) in [
        (Cii, "cii_protection"),
        (StateOrgan, "state_organ_cyberspace"),
        (Other, "cac_provincial"),
    ] {
        let inc = incident("malware", &iii, &[]);
        let a = assess(&packs, "CN", &inc, op, &NOTHING_SUBMITTED);
        let closing = obligation(only(&a), "CN:cac_closing");
        assert_eq!(closing.recipient.as_deref(), Some(recipient), "{op}");
    }
}

#[test]
fn cn_clocks_closing_police_and_pipl() {
    let iii = json!({ "affected_subjects": 1_000_000 });
    run_table(
        "CN",
        vec![
            row(
                "handling not ended: no closing deadline",
                "pi_leak",
                iii.clone(),
            )
            .grade("III/pi_1m")
            .owes(&[
                "CN:cac_report_other required 2026-03-02T06:00:00Z",
                "CN:cac_closing required -",
                "CN:pipl_authority required 2026-03-03T05:00:00Z",
                "CN:pipl_individuals required 2026-03-05T05:00:00Z",
            ])
            .why(&[(
                "CN:cac_closing",
                "deadline: 30d from handling_closed_at, which has not started",
            )]),
            row(
                "handling ended: closing within 30 days",
                "pi_leak",
                iii.clone(),
            )
            .clocks(&[("handling_closed_at", "2026-03-20T09:15:00Z")])
            .grade("III/pi_1m")
            .owes(&[
                "CN:cac_report_other required 2026-03-02T06:00:00Z",
                "CN:cac_closing required 2026-04-19T09:15:00Z",
                "CN:pipl_authority required 2026-03-03T05:00:00Z",
                "CN:pipl_individuals required 2026-03-05T05:00:00Z",
            ])
            .why(&[("CN:cac_closing", "within 30 days after handling ends")]),
            row(
                "incident closed, handling end not set: closing counts from the closing",
                "pi_leak",
                iii.clone(),
            )
            .clocks(&[("closed_at", "2026-03-25T00:00:00Z")])
            .grade("III/pi_1m")
            .owes(&[
                "CN:cac_report_other required 2026-03-02T06:00:00Z",
                "CN:cac_closing required 2026-04-24T00:00:00Z",
                "CN:pipl_authority required 2026-03-03T05:00:00Z",
                "CN:pipl_individuals required 2026-03-05T05:00:00Z",
            ]),
            row(
                "handling end set by a person wins over the closing",
                "pi_leak",
                iii.clone(),
            )
            .clocks(&[
                ("closed_at", "2026-03-25T00:00:00Z"),
                ("handling_closed_at", "2026-03-20T09:15:00Z"),
            ])
            .grade("III/pi_1m")
            .owes(&[
                "CN:cac_report_other required 2026-03-02T06:00:00Z",
                "CN:cac_closing required 2026-04-19T09:15:00Z",
                "CN:pipl_authority required 2026-03-03T05:00:00Z",
                "CN:pipl_individuals required 2026-03-05T05:00:00Z",
            ]),
            row(
                "discovered earlier: the report clock moves with it",
                "malware",
                json!({ "economic_loss_cny": 5_000_000 }),
            )
            .clocks(&[("discovered_at", "2026-03-01T23:30:00Z")])
            .grade("III/loss_5m_cny")
            .owes(&[
                "CN:cac_report_other required 2026-03-02T03:30:00Z",
                "CN:cac_closing required -",
            ]),
            row(
                "PI awareness not recorded: PIPL deadlines wait for it",
                "pi_leak",
                json!({ "affected_subjects": 10 }),
            )
            .clocks(&[("aware_at", "")])
            .grade("IV/-")
            .owes(&[
                "CN:pipl_authority required -",
                "CN:pipl_individuals required -",
            ])
            .why(&[(
                "CN:pipl_authority",
                "deadline: 24h from aware_at, which has not started",
            )]),
            row(
                "suspected crime: a police report task, from discovery",
                "malware",
                json!({ "suspected_crime": true }),
            )
            .grade("IV/-")
            .owes(&["CN:police_report required 2026-03-03T02:00:00Z"])
            .why(&[
                (
                    "CN:police_report",
                    "suspected crime is also reported to the public security organs",
                ),
                ("CN:police_report", "applies because suspected_crime = true"),
            ]),
            row(
                "no suspected crime: no police task",
                "malware",
                json!({ "suspected_crime": false }),
            )
            .grade("IV/-")
            .owes(&[]),
        ],
    );
}

#[test]
fn cn_pipl_exemption_never_covers_the_authority() {
    let pi = |extra: Value| {
        let mut f = json!({ "affected_subjects": 50, "data_types": ["phone"] });
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        f
    };
    run_table(
        "CN",
        vec![
            row("no mitigation: both notified", "pi_leak", pi(json!({})))
                .grade("IV/-")
                .owes(&[
                    "CN:pipl_authority required 2026-03-03T05:00:00Z",
                    "CN:pipl_individuals required 2026-03-05T05:00:00Z",
                ]),
            row("effective mitigation: individuals exempt, authority still notified", "pi_leak", pi(json!({ "mitigation_effective": true })))
                .grade("IV/-")
                .owes(&[
                    "CN:pipl_authority required 2026-03-03T05:00:00Z",
                    "CN:pipl_individuals exempt(measures_avoid_harm) 2026-03-05T05:00:00Z",
                ])
                .why(&[
                    ("CN:pipl_individuals", "exempt (measures_avoid_harm): 采取措施能够有效避免信息泄露"),
                    ("CN:pipl_individuals", "mitigation_effective = true — recorded justification: the leaked session tokens were revoked within minutes"),
                    ("CN:pipl_authority", "the mitigation exemption never covers the authority"),
                ]),
            row("effective mitigation but the regulator requires notice", "pi_leak", pi(json!({ "mitigation_effective": true, "regulator_requires_notice": true })))
                .grade("IV/-")
                .owes(&[
                    "CN:pipl_authority required 2026-03-03T05:00:00Z",
                    "CN:pipl_individuals required 2026-03-05T05:00:00Z",
                ])
                .why(&[("CN:pipl_individuals", "exemption `measures_avoid_harm` does not apply: regulator_requires_notice = true")]),
            row("one by one is impractical: a public announcement too", "pi_leak", pi(json!({ "disproportionate_effort": true })))
                .grade("IV/-")
                .owes(&[
                    "CN:pipl_authority required 2026-03-03T05:00:00Z",
                    "CN:pipl_individuals required 2026-03-05T05:00:00Z",
                    "CN:public_announcement required 2026-03-05T05:00:00Z",
                ])
                .why(&[("CN:public_announcement", "applies because a personal-information incident (pi_leak); disproportionate_effort = true")]),
            row("announcement exempt with the individual notice", "pi_leak", pi(json!({ "disproportionate_effort": true, "mitigation_effective": true })))
                .grade("IV/-")
                .owes(&[
                    "CN:pipl_authority required 2026-03-03T05:00:00Z",
                    "CN:pipl_individuals exempt(measures_avoid_harm) 2026-03-05T05:00:00Z",
                    "CN:public_announcement exempt(measures_avoid_harm) 2026-03-05T05:00:00Z",
                ]),
            row("not a PI incident: no PIPL duty", "intrusion", pi(json!({})))
                .grade("IV/-")
                .owes(&[]),
        ],
    );
}

#[test]
fn cn_report_why_in_full() {
    let inc = incident("pi_leak", &json!({ "affected_subjects": 1_000_000 }), &[]);
    let a = assess(&shipped(), "CN", &inc, Other, &NOTHING_SUBMITTED);
    let j = only(&a);
    assert_eq!(
        j.grade.why,
        "较大 / relatively major (III) — 泄露100万人以上公民个人信息 / personal information of ≥ 1 \
         million citizens leaked [text]: affected_subjects 1,000,000 ≥ 1,000,000; a \
         personal-information incident (pi_leak)"
    );
    let report = obligation(j, "CN:cac_report_other");
    assert_eq!(
        report.why,
        [
            "网络安全事件报告管理办法: relatively major and above, other operators — report within 4 \
             hours of discovery [text]",
            "applies because grade III ≥ III; operator type other",
            "deadline: 4h from discovered_at (2026-03-02 10:00 +08:00) → 2026-03-02 06:00:00 UTC \
             (2026-03-02 14:00 +08:00)",
        ]
    );
    assert_eq!(report.recipient.as_deref(), Some("cac_provincial"));
    assert_eq!(
        report.recipient_name.as_deref(),
        Some("属地省级网信部门 / the provincial cyberspace administration")
    );
    assert_eq!(report.report.as_deref(), Some("cac_initial"));
    assert_eq!(report.clock, Clock::DiscoveredAt);
    assert_eq!(report.clock_start, Some(t(DISCOVERED)));
    assert_eq!(report.deadline, "4h");
    assert_eq!(a.clocks_to_start, []);
}

// ---------------------------------------------------------------- CN supplementary reports

fn submitted(code: &str, obligation: &str, at: &str, facts: &Value) -> Submitted {
    Submitted {
        jurisdiction: code.parse().unwrap(),
        obligation: obligation.into(),
        at: t(at),
        facts: incident("pi_leak", facts, &[]).facts,
    }
}

/// The obligations of one pack whose key starts with `prefix`, as lines.
fn lines_of(a: &Assessment, prefix: &str) -> Vec<String> {
    a.obligations()
        .filter(|o| o.key.starts_with(prefix))
        .map(obligation_line)
        .collect()
}

#[test]
fn cn_supplementary_reports_follow_material_changes() {
    let packs = shipped();
    let reported = json!({ "affected_subjects": 1_000_000, "data_types": ["name", "phone"], "cause": "open bucket" });
    let first = [submitted(
        "CN",
        "cac_report_other",
        "2026-03-02T05:40:00Z",
        &reported,
    )];
    let no_start = BTreeMap::new();
    let kept_start = BTreeMap::from([(
        "CN:cac_supplementary#1".to_string(),
        t("2026-03-03T12:00:00Z"),
    )]);
    let first_then_supplement = [
        first[0].clone(),
        submitted(
            "CN",
            "cac_supplementary",
            "2026-03-03T20:00:00Z",
            &json!({ "affected_subjects": 1_200_000, "data_types": ["name", "phone"], "cause": "open bucket" }),
        ),
    ];
    let grown = json!({ "affected_subjects": 1_200_000, "data_types": ["name", "phone"], "cause": "open bucket" });
    struct Sup {
        name: &'static str,
        now_facts: Value,
        submitted: &'static str,
        kept: bool,
        want: &'static [&'static str],
    }
    let rows = [
        Sup {
            name: "no report submitted: no supplement",
            now_facts: grown.clone(),
            submitted: "none",
            kept: false,
            want: &[],
        },
        Sup {
            name: "submitted, facts unchanged: none",
            now_facts: reported.clone(),
            submitted: "first",
            kept: false,
            want: &[],
        },
        Sup {
            name: "submitted, data types reordered: none",
            now_facts: json!({ "affected_subjects": 1_000_000, "data_types": ["phone", "name"], "cause": "open bucket" }),
            submitted: "first",
            kept: false,
            want: &[],
        },
        Sup {
            name: "submitted, a fact that is not material changed: none",
            now_facts: json!({ "affected_subjects": 1_000_000, "data_types": ["name", "phone"], "cause": "open bucket", "remedies": "a year of credit monitoring" }),
            submitted: "first",
            kept: false,
            want: &[],
        },
        Sup {
            name: "more people: #1, due 24 h from now",
            now_facts: grown.clone(),
            submitted: "first",
            kept: false,
            want: &["CN:cac_supplementary#1 required 2026-03-05T08:30:00Z"],
        },
        Sup {
            name: "more people, first owed earlier: the start is kept",
            now_facts: grown.clone(),
            submitted: "first",
            kept: true,
            want: &["CN:cac_supplementary#1 required 2026-03-04T12:00:00Z"],
        },
        Sup {
            name: "fewer people, grade down to IV: still #1",
            now_facts: json!({ "affected_subjects": 900_000, "data_types": ["name", "phone"], "cause": "open bucket" }),
            submitted: "first",
            kept: false,
            want: &["CN:cac_supplementary#1 required 2026-03-05T08:30:00Z"],
        },
        Sup {
            name: "#1 submitted, unchanged since: none",
            now_facts: grown.clone(),
            submitted: "both",
            kept: false,
            want: &[],
        },
        Sup {
            name: "#1 submitted, the cause changed: #2",
            now_facts: json!({ "affected_subjects": 1_200_000, "data_types": ["name", "phone"], "cause": "a stolen access key" }),
            submitted: "both",
            kept: false,
            want: &["CN:cac_supplementary#2 required 2026-03-05T08:30:00Z"],
        },
    ];
    let mut failures = Vec::new();
    for r in &rows {
        let subs: &[Submitted] = match r.submitted {
            "none" => &[],
            "first" => &first,
            _ => &first_then_supplement,
        };
        let given = Given {
            submitted: subs,
            started: if r.kept { &kept_start } else { &no_start },
        };
        let inc = incident("pi_leak", &r.now_facts, &[]);
        let got = lines_of(
            &assess(&packs, "CN", &inc, Other, &given),
            "CN:cac_supplementary",
        );
        if got != r.want {
            failures.push(format!("{}: got {got:?}, want {:?}", r.name, r.want));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cn_supplement_goes_where_the_report_went_and_says_what_changed() {
    let reported = json!({ "affected_subjects": 1_000_000, "economic_loss_cny": 100 });
    let subs = [submitted(
        "CN",
        "cac_report_cii",
        "2026-03-02T02:50:00Z",
        &reported,
    )];
    let started = BTreeMap::new();
    let inc = incident(
        "pi_leak",
        &json!({ "affected_subjects": 1_500_000, "economic_loss_cny": 100 }),
        &[],
    );
    let a = assess(
        &shipped(),
        "CN",
        &inc,
        Cii,
        &Given {
            submitted: &subs,
            started: &started,
        },
    );
    let sup = obligation(only(&a), "CN:cac_supplementary#1");
    assert_eq!(sup.recipient.as_deref(), Some("cii_protection"));
    assert_eq!(sup.report.as_deref(), Some("cac_supplementary"));
    assert_eq!(sup.clock, Clock::MaterialChange);
    assert_eq!(sup.clock_start, Some(t(NOW)));
    assert_eq!(
        sup.why,
        [
            "网络安全事件报告管理办法: report the basic items first and supplement promptly; new \
             important facts require a supplementary report [summary]",
            "material facts changed since the report submitted 2026-03-02 02:50 UTC: \
             affected_subjects: 1000000 → 1500000",
            "deadline: 24h from material_change (2026-03-04 16:30 +08:00) → 2026-03-05 08:30:00 \
             UTC (2026-03-05 16:30 +08:00)",
        ]
    );
}

// ---------------------------------------------------------------- SG
//
// Assessed notifiable 2026-03-02 10:00 SGT: PDPC and individuals by the end of the third
// calendar day after that day, 5 March 23:59:59.999999 SGT = 2026-03-05T15:59:59.999999Z.
// Aware 05:00Z: assessment within 30 days → 2026-04-01 05:00Z.

/// Assessed at 10:00 SGT on 2 March.
const ASSESSED: &str = "2026-03-02T02:00:00Z";

#[test]
fn sg_notifiable_by_scale_or_significant_harm() {
    const ASSESSMENT: &str = "SG:assessment required 2026-04-01T05:00:00Z";
    const SCALE: &[&str] = &[
        ASSESSMENT,
        "SG:pdpc_report required 2026-03-05T15:59:59.999999Z",
    ];
    const HARM: &[&str] = &[
        ASSESSMENT,
        "SG:pdpc_report required 2026-03-05T15:59:59.999999Z",
        "SG:individuals required 2026-03-05T15:59:59.999999Z",
    ];
    const ASSESSED_AT: &[(&str, &str)] = &[("assessed_notifiable_at", ASSESSED)];
    let people = |n: u64| json!({ "affected_subjects": n, "data_types": ["email", "phone"] });
    let few = |types: &[&str]| json!({ "affected_subjects": 12, "data_types": types });
    run_table(
        "SG",
        vec![
            row("499 people", "pi_leak", people(499))
                .grade("not_notifiable/-")
                .owes(&[ASSESSMENT])
                .why(&[
                    ("SG:assessment", "PDPA s 26C"),
                    (
                        "grade",
                        "Not notifiable: no criterion of a higher grade holds",
                    ),
                ]),
            row(
                "500 people: PDPC only, not individuals",
                "pi_leak",
                people(500),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_scale/scale_500")
            .owes(SCALE)
            .why(&[
                ("grade", "affected_subjects 500 ≥ 500"),
                (
                    "SG:pdpc_report",
                    "applies because grade notifiable_scale ≥ notifiable_scale",
                ),
            ]),
            row("501 people", "pi_leak", people(501))
                .clocks(ASSESSED_AT)
                .grade("notifiable_scale/scale_500")
                .owes(SCALE),
            row(
                "1,000,000 people: still scale alone",
                "pi_loss",
                people(1_000_000),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_scale/scale_500")
            .owes(SCALE),
            row("name + financial", "pi_leak", few(&["name", "financial"]))
                .clocks(ASSESSED_AT)
                .grade("notifiable_harm/identity_plus_prescribed")
                .owes(HARM)
                .why(&[
                    ("grade", "data types combine name + financial"),
                    (
                        "SG:individuals",
                        "applies because grade notifiable_harm ≥ notifiable_harm",
                    ),
                    ("SG:individuals", "not for significant scale alone"),
                ]),
            row(
                "ID number + bank account",
                "pi_leak",
                few(&["id_number", "bank_account"]),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_harm/identity_plus_prescribed")
            .owes(HARM),
            row(
                "passport + payment card",
                "pi_leak",
                few(&["passport", "payment_card"]),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_harm/identity_plus_prescribed")
            .owes(HARM),
            row(
                "name + minor's data",
                "pi_leak",
                few(&["name", "minor_data"]),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_harm/identity_plus_prescribed")
            .owes(HARM),
            row("name + health", "pi_leak", few(&["name", "health"]))
                .clocks(ASSESSED_AT)
                .grade("notifiable_harm/identity_plus_prescribed")
                .owes(HARM),
            row(
                "account + credentials",
                "pi_leak",
                few(&["account_id", "credentials"]),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_harm/account_plus_credential")
            .owes(HARM)
            .why(&[("grade", "data types combine account_id + credentials")]),
            row(
                "account + biometric",
                "pi_leak",
                few(&["account_id", "biometric"]),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_harm/account_plus_credential")
            .owes(HARM),
            row("name alone", "pi_leak", few(&["name"]))
                .grade("not_notifiable/-")
                .owes(&[ASSESSMENT]),
            row(
                "name + phone + e-mail",
                "pi_leak",
                few(&["name", "phone", "email"]),
            )
            .grade("not_notifiable/-")
            .owes(&[ASSESSMENT]),
            row(
                "financial without an identity",
                "pi_leak",
                few(&["financial", "phone"]),
            )
            .grade("not_notifiable/-")
            .owes(&[ASSESSMENT]),
            row(
                "credentials without an account identifier",
                "pi_leak",
                few(&["credentials", "email"]),
            )
            .grade("not_notifiable/-")
            .owes(&[ASSESSMENT]),
            row(
                "assessed significant harm",
                "pi_leak",
                json!({ "affected_subjects": 3, "significant_harm": true }),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_harm/assessed_significant_harm")
            .owes(HARM)
            .why(&[("grade", "significant_harm = true")]),
            row(
                "500 people and a harmful combination: harm decides",
                "pi_leak",
                json!({ "affected_subjects": 500, "data_types": ["name", "bank_account"] }),
            )
            .clocks(ASSESSED_AT)
            .grade("notifiable_harm/identity_plus_prescribed")
            .owes(HARM),
            row("not a PI incident", "intrusion", people(5_000))
                .grade("not_notifiable/-")
                .owes(&[]),
        ],
    );
}

#[test]
fn sg_counts_calendar_days_after_the_assessment_day_in_singapore() {
    let packs = shipped();
    let harm = json!({ "affected_subjects": 12, "data_types": ["name", "financial"] });
    // (assessed at, UTC; the same in SGT; the PDPC and individual deadline)
    let rows = [
        (
            "2026-03-02T02:00:00Z",
            "10:00 on 2 March",
            "2026-03-05T15:59:59.999999Z",
        ),
        (
            "2026-03-01T16:00:00Z",
            "00:00 on 2 March",
            "2026-03-05T15:59:59.999999Z",
        ),
        (
            "2026-03-02T15:59:59Z",
            "23:59:59 on 2 March",
            "2026-03-05T15:59:59.999999Z",
        ),
        (
            "2026-03-02T16:00:00Z",
            "00:00 on 3 March",
            "2026-03-06T15:59:59.999999Z",
        ),
        (
            "2026-03-01T15:59:59Z",
            "23:59:59 on 1 March",
            "2026-03-04T15:59:59.999999Z",
        ),
        (
            "2026-02-26T10:00:00Z",
            "18:00 on 26 February (2026 is not a leap year)",
            "2026-03-01T15:59:59.999999Z",
        ),
        (
            "2026-12-30T20:00:00Z",
            "04:00 on 31 December",
            "2027-01-03T15:59:59.999999Z",
        ),
    ];
    let mut failures = Vec::new();
    for (at, local, want) in rows {
        let inc = incident("pi_leak", &harm, &[("assessed_notifiable_at", at)]);
        let a = assess(&packs, "SG", &inc, Other, &NOTHING_SUBMITTED);
        let j = only(&a);
        for key in ["SG:pdpc_report", "SG:individuals"] {
            let got = obligation(j, key).due_at.map(shown);
            if got.as_deref() != Some(want) {
                failures.push(format!("{key}, assessed {local}: got {got:?}, want {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let inc = incident(
        "pi_leak",
        &harm,
        &[("assessed_notifiable_at", "2026-03-02T15:59:59Z")],
    );
    let a = assess(&packs, "SG", &inc, Other, &NOTHING_SUBMITTED);
    assert_eq!(
        obligation(only(&a), "SG:pdpc_report").why.last().unwrap(),
        "deadline: 3 calendar days after the day of assessed_notifiable_at (2026-03-02 23:59 \
         +08:00) → 2026-03-05 15:59:59 UTC (2026-03-05 23:59 +08:00)"
    );
}

#[test]
fn sg_starts_the_assessment_clock_when_the_facts_first_make_it_notifiable() {
    let packs = shipped();
    let scale = json!({ "affected_subjects": 500 });
    let inc = incident("pi_leak", &scale, &[]);
    let a = assess(&packs, "SG", &inc, Other, &NOTHING_SUBMITTED);
    assert_eq!(a.clocks_to_start, [Clock::AssessedNotifiableAt]);
    let report = obligation(only(&a), "SG:pdpc_report");
    assert_eq!((report.clock_start, report.due_at), (None, None));
    assert_eq!(
        report.why.last().unwrap(),
        "deadline: 3 calendar days after the day of assessed_notifiable_at, which has not \
         started"
    );
    // Set: nothing to start.
    let inc = incident("pi_leak", &scale, &[("assessed_notifiable_at", ASSESSED)]);
    assert_eq!(
        assess(&packs, "SG", &inc, Other, &NOTHING_SUBMITTED).clocks_to_start,
        []
    );
    // Not notifiable: nothing to start.
    let inc = incident("pi_leak", &json!({ "affected_subjects": 499 }), &[]);
    assert_eq!(
        assess(&packs, "SG", &inc, Other, &NOTHING_SUBMITTED).clocks_to_start,
        []
    );
    // The other packs never ask for it.
    let inc = incident("pi_leak", &json!({ "affected_subjects": 5_000_000 }), &[]);
    for code in ["CN", "EU"] {
        assert_eq!(
            assess(&packs, code, &inc, Other, &NOTHING_SUBMITTED).clocks_to_start,
            [],
            "{code}"
        );
    }
}

#[test]
fn sg_holds_come_before_the_exceptions() {
    const PDPC: &str = "SG:pdpc_report required 2026-03-05T15:59:59.999999Z";
    const ASSESSMENT: &str = "SG:assessment required 2026-04-01T05:00:00Z";
    const ASSESSED_AT: &[(&str, &str)] = &[("assessed_notifiable_at", ASSESSED)];
    let harm = |extra: Value| {
        let mut f = json!({ "affected_subjects": 12, "data_types": ["name", "financial"] });
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        f
    };
    let g = "notifiable_harm/identity_plus_prescribed";
    run_table(
        "SG",
        vec![
            row("law enforcement instructs: hold", "pi_leak", harm(json!({ "notification_hold": "law_enforcement" })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals hold(law_enforcement_or_pdpc_hold) 2026-03-05T15:59:59.999999Z"])
                .why(&[("SG:individuals", "hold (law_enforcement_or_pdpc_hold): Individuals must not be notified while a prescribed law-enforcement agency instructs, or the Commission directs, so (s 26D(6)) [text] — notification_hold = law_enforcement")]),
            row("the PDPC directs: hold", "pi_leak", harm(json!({ "notification_hold": "pdpc" })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals hold(law_enforcement_or_pdpc_hold) 2026-03-05T15:59:59.999999Z"])
                .why(&[("SG:individuals", "notification_hold = pdpc")]),
            row("hold and remedial action: the hold wins", "pi_leak", harm(json!({ "notification_hold": "pdpc", "mitigation_effective": true })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals hold(law_enforcement_or_pdpc_hold) 2026-03-05T15:59:59.999999Z"]),
            row("hold and a regulator requiring notice: still hold", "pi_leak", harm(json!({ "notification_hold": "law_enforcement", "regulator_requires_notice": true })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals hold(law_enforcement_or_pdpc_hold) 2026-03-05T15:59:59.999999Z"]),
            row("remedial action: exempt", "pi_leak", harm(json!({ "mitigation_effective": true })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals exempt(remedial_action) 2026-03-05T15:59:59.999999Z"])
                .why(&[("SG:individuals", "(s 26D(5)(a)) [text] — mitigation_effective = true — recorded justification: the leaked session tokens were revoked within minutes")]),
            row("encrypted before the breach: not required", "pi_leak", harm(json!({ "technological_protection": true })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals not_required(technological_measure) 2026-03-05T15:59:59.999999Z"])
                .why(&[("SG:individuals", "technological_protection = true")]),
            row("remedial action, but the regulator requires notice", "pi_leak", harm(json!({ "mitigation_effective": true, "regulator_requires_notice": true })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals required 2026-03-05T15:59:59.999999Z"])
                .why(&[("SG:individuals", "exemption `remedial_action` does not apply: regulator_requires_notice = true")]),
            row("both exceptions: the first listed decides", "pi_leak", harm(json!({ "mitigation_effective": true, "technological_protection": true })))
                .clocks(ASSESSED_AT).grade(g)
                .owes(&[ASSESSMENT, PDPC, "SG:individuals exempt(remedial_action) 2026-03-05T15:59:59.999999Z"]),
            row("a hold on a breach of scale alone: nothing to hold", "pi_leak", json!({ "affected_subjects": 800, "notification_hold": "pdpc" }))
                .clocks(ASSESSED_AT).grade("notifiable_scale/scale_500")
                .owes(&[ASSESSMENT, PDPC]),
        ],
    );
}

#[test]
fn sg_updates_follow_the_pdpc_notification() {
    let packs = shipped();
    let reported = json!({ "affected_subjects": 600, "data_types": ["email"] });
    let subs = [submitted(
        "SG",
        "pdpc_report",
        "2026-03-03T01:00:00Z",
        &reported,
    )];
    let started = BTreeMap::new();
    let given = Given {
        submitted: &subs,
        started: &started,
    };
    let rows: [(&str, Value, &[&str]); 4] = [
        ("unchanged", reported.clone(), &[]),
        (
            "more data types",
            json!({ "affected_subjects": 600, "data_types": ["email", "phone"] }),
            // 3 days from now, elapsed: the Act sets no time for updates.
            &["SG:pdpc_update#1 required 2026-03-07T08:30:00Z"],
        ),
        (
            "fewer people, below 500: still an update",
            json!({ "affected_subjects": 450, "data_types": ["email"] }),
            &["SG:pdpc_update#1 required 2026-03-07T08:30:00Z"],
        ),
        (
            "a fact the update does not track",
            json!({ "affected_subjects": 600, "data_types": ["email"], "remedies": "support line" }),
            &[],
        ),
    ];
    for (name, facts, want) in rows {
        let inc = incident("pi_leak", &facts, &[("assessed_notifiable_at", ASSESSED)]);
        let a = assess(&packs, "SG", &inc, Other, &given);
        assert_eq!(lines_of(&a, "SG:pdpc_update"), want, "{name}");
    }
    // Before any notification: no update.
    let inc = incident(
        "pi_leak",
        &json!({ "affected_subjects": 900 }),
        &[("assessed_notifiable_at", ASSESSED)],
    );
    let a = assess(&packs, "SG", &inc, Other, &NOTHING_SUBMITTED);
    assert_eq!(lines_of(&a, "SG:pdpc_update"), Vec::<String>::new());
}

// ---------------------------------------------------------------- EU
//
// Aware 2026-03-02 05:00Z: authority, record and data subjects 72 h → 2026-03-05 05:00Z.

#[test]
fn eu_risk_levels_decide_the_authority_and_the_data_subjects() {
    const RECORD: &str = "EU:record required 2026-03-05T05:00:00Z";
    const SA: &str = "EU:sa_report required 2026-03-05T05:00:00Z";
    const SUBJECTS: &str = "EU:data_subjects required 2026-03-05T05:00:00Z";
    let risk = |r: &str| json!({ "affected_subjects": 40, "records_affected": 55, "risk": r });
    run_table(
        "EU",
        vec![
            row("risk not assessed: notification presumed", "pi_leak", json!({ "affected_subjects": 40 }))
                .grade("not_assessed/-")
                .owes(&[RECORD, SA])
                .why(&[
                    ("EU:sa_report", "GDPR art. 33(1)"),
                    ("EU:sa_report", "deadline: 72h from aware_at (2026-03-02 06:00 +01:00) → 2026-03-05 05:00:00 UTC (2026-03-05 06:00 +01:00)"),
                    ("EU:record", "GDPR art. 33(5): document every personal data breach"),
                ]),
            row("unlikely to result in a risk: not reported, reason recorded, still documented", "pi_leak", risk("unlikely"))
                .grade("unlikely_risk/assessed_unlikely")
                .owes(&[RECORD, "EU:sa_report not_required(unlikely_risk) 2026-03-05T05:00:00Z"])
                .why(&[
                    ("grade", "Unlikely to result in a risk — "),
                    ("EU:sa_report", "not_required (unlikely_risk): Unlikely to result in a risk to the rights and freedoms of natural persons (art. 33(1)); the reason is documented (art. 33(5)) [text] — risk unlikely — recorded justification: the records hold only hashed e-mail addresses"),
                ]),
            row("a risk: reported, subjects not told", "pi_leak", risk("risk"))
                .grade("risk/assessed_risk")
                .owes(&[RECORD, SA])
                .why(&[("grade", "risk risk")]),
            row("a high risk: subjects told too", "pi_leak", risk("high"))
                .grade("high_risk/assessed_high")
                .owes(&[RECORD, SA, SUBJECTS])
                .why(&[
                    ("grade", "High risk to rights and freedoms — Likely to result in a high risk"),
                    ("EU:data_subjects", "applies because grade high_risk ≥ high_risk"),
                ]),
            row("awareness not recorded: the 72 h wait for it", "pi_leak", risk("high"))
                .clocks(&[("aware_at", "")])
                .grade("high_risk/assessed_high")
                .owes(&["EU:record required -", "EU:sa_report required -", "EU:data_subjects required -"]),
            row("aware later: the clock moves with it", "pi_leak", risk("risk"))
                .clocks(&[("aware_at", "2026-03-03T23:10:00Z")])
                .grade("risk/assessed_risk")
                .owes(&["EU:record required 2026-03-06T23:10:00Z", "EU:sa_report required 2026-03-06T23:10:00Z"]),
            row("not a personal data breach", "intrusion", risk("high")).grade("not_assessed/-").owes(&[]),
        ],
    );
}

#[test]
fn eu_three_exceptions_and_the_public_communication() {
    const RECORD: &str = "EU:record required 2026-03-05T05:00:00Z";
    const SA: &str = "EU:sa_report required 2026-03-05T05:00:00Z";
    let high = |extra: Value| {
        let mut f = json!({ "affected_subjects": 40_000, "risk": "high" });
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        f
    };
    let g = "high_risk/assessed_high";
    run_table(
        "EU",
        vec![
            row(
                "data were encrypted: not required",
                "pi_leak",
                high(json!({ "technological_protection": true })),
            )
            .grade(g)
            .owes(&[
                RECORD,
                SA,
                "EU:data_subjects not_required(data_protected) 2026-03-05T05:00:00Z",
            ])
            .why(&[(
                "EU:data_subjects",
                "(art. 34(3)(a)) [text] — technological_protection = true",
            )]),
            row(
                "later measures removed the high risk: not required",
                "pi_leak",
                high(json!({ "mitigation_effective": true })),
            )
            .grade(g)
            .owes(&[
                RECORD,
                SA,
                "EU:data_subjects not_required(high_risk_removed) 2026-03-05T05:00:00Z",
            ])
            .why(&[(
                "EU:data_subjects",
                "recorded justification: the leaked session tokens were revoked within minutes",
            )]),
            row(
                "disproportionate effort: a public communication instead",
                "pi_leak",
                high(json!({ "disproportionate_effort": true })),
            )
            .grade(g)
            .owes(&[
                RECORD,
                SA,
                "EU:data_subjects exempt(disproportionate_effort) 2026-03-05T05:00:00Z",
                "EU:public_communication required 2026-03-05T05:00:00Z",
            ])
            .why(&[(
                "EU:public_communication",
                "applies because grade high_risk ≥ high_risk; disproportionate_effort = true",
            )]),
            row(
                "disproportionate effort, data encrypted: neither",
                "pi_leak",
                high(json!({ "disproportionate_effort": true, "technological_protection": true })),
            )
            .grade(g)
            .owes(&[
                RECORD,
                SA,
                "EU:data_subjects not_required(data_protected) 2026-03-05T05:00:00Z",
                "EU:public_communication not_required(data_protected) 2026-03-05T05:00:00Z",
            ]),
            row(
                "disproportionate effort, high risk removed: neither",
                "pi_leak",
                high(json!({ "disproportionate_effort": true, "mitigation_effective": true })),
            )
            .grade(g)
            .owes(&[
                RECORD,
                SA,
                "EU:data_subjects not_required(high_risk_removed) 2026-03-05T05:00:00Z",
                "EU:public_communication not_required(high_risk_removed) 2026-03-05T05:00:00Z",
            ]),
            row(
                "encrypted, but the authority requires communication",
                "pi_leak",
                high(
                    json!({ "technological_protection": true, "regulator_requires_notice": true }),
                ),
            )
            .grade(g)
            .owes(&[RECORD, SA, "EU:data_subjects required 2026-03-05T05:00:00Z"])
            .why(&[(
                "EU:data_subjects",
                "exemption `data_protected` does not apply: regulator_requires_notice = true",
            )]),
            row(
                "disproportionate effort, but the authority requires communication",
                "pi_leak",
                high(json!({ "disproportionate_effort": true, "regulator_requires_notice": true })),
            )
            .grade(g)
            .owes(&[
                RECORD,
                SA,
                "EU:data_subjects required 2026-03-05T05:00:00Z",
                "EU:public_communication required 2026-03-05T05:00:00Z",
            ]),
            row(
                "disproportionate effort at a mere risk: nothing to replace",
                "pi_leak",
                json!({ "risk": "risk", "disproportionate_effort": true }),
            )
            .grade("risk/assessed_risk")
            .owes(&[RECORD, SA]),
        ],
    );
}

#[test]
fn eu_information_in_phases_follows_the_notification() {
    let packs = shipped();
    let reported = json!({ "affected_subjects": 40, "risk": "risk" });
    let subs = [submitted(
        "EU",
        "sa_report",
        "2026-03-03T09:00:00Z",
        &reported,
    )];
    let started = BTreeMap::from([("EU:sa_update#1".to_string(), t("2026-03-04T00:00:00Z"))]);
    let given = Given {
        submitted: &subs,
        started: &started,
    };
    let rows: [(&str, Value, &[&str]); 5] = [
        ("unchanged", reported.clone(), &[]),
        (
            "a fact the update does not track",
            json!({ "affected_subjects": 40, "risk": "risk", "remedies": "support line" }),
            &[],
        ),
        (
            "records counted: #1, from when it was first owed",
            json!({ "affected_subjects": 40, "risk": "risk", "records_affected": 90 }),
            &["EU:sa_update#1 required 2026-03-07T00:00:00Z"],
        ),
        (
            "the risk is now judged unlikely: still further information",
            json!({ "affected_subjects": 40, "risk": "unlikely", "measures_planned": "rotate keys" }),
            &["EU:sa_update#1 required 2026-03-07T00:00:00Z"],
        ),
        (
            "the risk is now judged high: further information",
            json!({ "affected_subjects": 40, "risk": "high" }),
            &["EU:sa_update#1 required 2026-03-07T00:00:00Z"],
        ),
    ];
    for (name, facts, want) in rows {
        let inc = incident("pi_leak", &facts, &[]);
        let a = assess(&packs, "EU", &inc, Other, &given);
        assert_eq!(lines_of(&a, "EU:sa_update"), want, "{name}");
    }
}

// ---------------------------------------------------------------- several jurisdictions at once

#[test]
fn the_facts_jurisdictions_win_over_the_organisations() {
    let packs = shipped();
    let inc = incident(
        "pi_leak",
        &json!({ "affected_subjects": 700, "jurisdictions": ["SG", "EU", "US"] }),
        &[("assessed_notifiable_at", ASSESSED)],
    );
    let org = ["CN".parse::<Jurisdiction>().unwrap()];
    let a = packs.assess(&Case {
        incident: &inc,
        operator_type: Other,
        organisation_jurisdictions: &org,
        submitted: &[],
        started: &EMPTY,
        now: t(NOW),
    });
    let grades: Vec<String> = a
        .jurisdictions
        .iter()
        .map(|j| format!("{}: {}", j.jurisdiction, grade_line(j)))
        .collect();
    assert_eq!(
        grades,
        ["SG: notifiable_scale/scale_500", "EU: not_assessed/-"]
    );
    assert_eq!(a.without_pack, ["US".parse::<Jurisdiction>().unwrap()]);
}

/// The DLP scenario of issue #16: ~2.3 million people in China and a few thousand in Singapore.
/// Each jurisdiction is graded on its own people, and its "why" says so.
#[test]
fn each_jurisdiction_is_graded_on_its_own_people() {
    let packs = shipped();
    let inc = incident(
        "pi_leak",
        &json!({
            "data_types": ["phone", "id_number"],
            "by_jurisdiction": {
                "CN": { "affected_subjects": 2_300_000 },
                "SG": { "affected_subjects": 420, "data_types": ["phone"] },
            },
        }),
        &[("assessed_notifiable_at", ASSESSED)],
    );
    // The total is derived and the jurisdictions follow.
    assert_eq!(inc.facts.affected_subjects, Some(2_300_420));
    let org = ["CN".parse::<Jurisdiction>().unwrap()];
    let assess = |inc: &Incident, submitted: &[Submitted]| {
        packs.assess(&Case {
            incident: inc,
            operator_type: Other,
            organisation_jurisdictions: &org,
            submitted,
            started: &EMPTY,
            now: t(NOW),
        })
    };
    let a = assess(&inc, &[]);
    let cn = &a.jurisdictions[0];
    assert_eq!(cn.jurisdiction.as_str(), "CN");
    assert_eq!(grade_line(cn), "III/pi_1m");
    assert!(
        cn.grade
            .why
            .contains("affected_subjects in CN 2,300,000 ≥ 1,000,000"),
        "{}",
        cn.grade.why
    );
    // 420 Singaporeans with only phone numbers: below the scale threshold, and phone alone is
    // no significant-harm combination — not notifiable in SG, whatever the Chinese count.
    let sg = &a.jurisdictions[1];
    assert_eq!(sg.jurisdiction.as_str(), "SG");
    assert_ne!(
        grade_line(sg),
        "notifiable_scale/scale_500",
        "{:#?}",
        sg.grade
    );
    assert!(!sg.grade.why.contains("2,300"), "{}", sg.grade.why);
    // A few thousand: notifiable by scale, on Singapore's count.
    let more = Incident {
        facts: inc
            .facts
            .apply_patch(&json!({"by_jurisdiction": {"SG": {"affected_subjects": 4200}}}))
            .unwrap(),
        ..inc.clone()
    };
    assert_eq!(more.facts.affected_subjects, Some(2_304_200));
    let a = assess(&more, &[]);
    let sg = &a.jurisdictions[1];
    assert_eq!(grade_line(sg), "notifiable_scale/scale_500");
    assert!(
        sg.grade.why.contains("affected_subjects in SG 4,200 ≥ 500"),
        "{}",
        sg.grade.why
    );
    // After the PDPC report, a change of the Chinese count is no material change for SG.
    let reported = Submitted {
        jurisdiction: "SG".parse().unwrap(),
        obligation: "pdpc_report".into(),
        at: t("2026-03-03T02:00:00Z"),
        facts: more.facts.clone(),
    };
    let cn_grew = Incident {
        facts: more
            .facts
            .apply_patch(&json!({"by_jurisdiction": {"CN": {"affected_subjects": 2_400_000}}}))
            .unwrap(),
        ..more.clone()
    };
    let a = assess(&cn_grew, std::slice::from_ref(&reported));
    assert!(
        !a.obligations().any(|o| o.key.starts_with("SG:pdpc_update")),
        "{:#?}",
        a.obligations().map(|o| &o.key).collect::<Vec<_>>()
    );
    let sg_grew = Incident {
        facts: more
            .facts
            .apply_patch(&json!({"by_jurisdiction": {"SG": {"affected_subjects": 5000}}}))
            .unwrap(),
        ..more.clone()
    };
    let a = assess(&sg_grew, std::slice::from_ref(&reported));
    let update = a
        .obligations()
        .find(|o| o.key.starts_with("SG:pdpc_update"))
        .unwrap_or_else(|| panic!("{:#?}", a.obligations().map(|o| &o.key).collect::<Vec<_>>()));
    assert!(
        update
            .why
            .iter()
            .any(|w| w.contains("affected_subjects: 4200 → 5000")),
        "{:?}",
        update.why
    );
}

// ---------------------------------------------------------------- a lawyer changes a number

/// Copies the shipped packs into a temporary folder with `edits` applied to `file`: each `from`
/// must occur exactly once.
fn packs_with(file: &str, edits: &[(&str, &str)]) -> (tempfile::TempDir, Packs) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let mut text = std::fs::read_to_string(&path).unwrap();
            if path.file_name().unwrap() == file {
                for (from, to) in edits {
                    assert_eq!(text.matches(from).count(), 1, "`{from}` in {file}");
                    text = text.replace(from, to);
                }
            }
            std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    let packs = packs_in(dir.path());
    (dir, packs)
}

#[test]
fn changing_a_number_in_a_pack_changes_the_outcome_without_code() {
    let inc = incident("pi_leak", &json!({ "affected_subjects": 600_000 }), &[]);
    let cn = |packs: &Packs| {
        let a = assess(packs, "CN", &inc, Other, &NOTHING_SUBMITTED);
        let j = only(&a);
        (
            grade_line(j),
            lines_of(&a, "CN:cac_report"),
            j.grade.why.clone(),
        )
    };
    let (grade, reports, _) = cn(&shipped());
    assert_eq!((grade.as_str(), reports), ("IV/-", vec![]));

    // A lawyer lowers the grade III threshold to 500,000 people and gives other operators 6 h.
    let (_dir, edited) = packs_with(
        "cn.toml",
        &[
            (
                "affected_subjects_at_least = 1_000_000",
                "affected_subjects_at_least = 500_000",
            ),
            ("deadline = \"4h\"", "deadline = \"6h\""),
        ],
    );
    let (grade, reports, why) = cn(&edited);
    assert_eq!(grade, "III/pi_1m");
    assert_eq!(
        reports,
        ["CN:cac_report_other required 2026-03-02T08:00:00Z"]
    );
    assert!(
        why.contains("[text]: affected_subjects 600,000 ≥ 500,000; "),
        "{why}"
    );

    // SG: the significant-scale threshold from 500 to 1,000 people.
    let (_dir, edited) = packs_with(
        "sg.toml",
        &[(
            "affected_subjects_at_least = 500",
            "affected_subjects_at_least = 1000",
        )],
    );
    let inc = incident("pi_leak", &json!({ "affected_subjects": 700 }), &[]);
    let sg =
        |packs: &Packs| grade_line(only(&assess(packs, "SG", &inc, Other, &NOTHING_SUBMITTED)));
    assert_eq!(sg(&shipped()), "notifiable_scale/scale_500");
    assert_eq!(sg(&edited), "not_notifiable/-");
}

#[test]
fn a_broken_edit_is_refused_before_it_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped_dir().join("eu.toml"))
        .unwrap()
        .replacen("clock = \"aware_at\"", "clock = \"became_aware\"", 1);
    std::fs::write(dir.path().join("eu.toml"), text).unwrap();
    let problems = incidentd::config::files::packs(dir.path(), &[], &|_| true).unwrap_err();
    let file = dir.path().join("eu.toml").display().to_string();
    assert_eq!(
        problems,
        [format!(
            "{file}: obligations[0].clock: `became_aware` is not a clock; use one of: \
             discovered_at, aware_at, assessed_notifiable_at, handling_closed_at, material_change"
        )]
    );
}
