//! From an incident's facts and clocks to its grade and obligations under each pack. Pure: the
//! same case gives the same assessment, with the reasons ("why") spelled out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    Clock, Condition, ObligationDef, ObligationKind, OperatorType, Pack, Packs, ReportKind,
    Standing, applicable, deadline, effective_operator,
};
use crate::domain::duration::HumanDuration;
use crate::domain::facts::{Facts, Jurisdiction};
use crate::domain::records::Incident;

mod condition;
use condition::check;

/// What an assessment is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    pub incident: &'a Incident,
    /// The organisation's operator type (`[organisation] operator_type`).
    pub operator_type: OperatorType,
    /// Jurisdictions when the facts name none (`[organisation] jurisdictions`).
    pub organisation_jurisdictions: &'a [Jurisdiction],
    /// Reports submitted so far (supplementary reports follow them).
    pub submitted: &'a [Submitted],
    /// When each repeating obligation (by key) was first owed: its clock keeps that start.
    pub started: &'a BTreeMap<String, DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// A report that was submitted, with the facts it was written from.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub jurisdiction: Jurisdiction,
    pub obligation: String,
    pub at: DateTime<Utc>,
    pub facts: Facts,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Assessment {
    pub jurisdictions: Vec<JurisdictionAssessment>,
    /// Jurisdictions that apply but have no pack: nothing is tracked for them.
    #[schema(value_type = Vec<String>)]
    pub without_pack: Vec<Jurisdiction>,
    /// Clocks that start now because an obligation counting from them became owed (SG: the
    /// breach is assessed notifiable when its facts first make it so). The engine sets them and
    /// assesses again.
    pub clocks_to_start: Vec<Clock>,
}

impl Assessment {
    pub fn obligations(&self) -> impl Iterator<Item = &ObligationOutcome> {
        self.jurisdictions.iter().flat_map(|j| j.obligations.iter())
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JurisdictionAssessment {
    #[schema(value_type = String)]
    pub jurisdiction: Jurisdiction,
    pub pack: String,
    pub grade: GradeOutcome,
    /// The operator type the rules used (`cii` when the facts say CII is involved).
    pub operator_type: OperatorType,
    pub obligations: Vec<ObligationOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GradeOutcome {
    pub id: String,
    pub name: String,
    /// The criterion that gave the grade; none for the grade that applies when nothing holds.
    pub criterion: Option<String>,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ObligationOutcome {
    /// Unique per incident: `CN:cac_report_other`, `CN:cac_supplementary#2`.
    pub key: String,
    #[schema(value_type = String)]
    pub jurisdiction: Jurisdiction,
    pub obligation: String,
    pub title: String,
    pub kind: ObligationKind,
    /// The pack's report (`[reports.<id>]`) that renders it.
    pub report: Option<String>,
    pub report_kind: Option<ReportKind>,
    pub recipient: Option<String>,
    pub recipient_name: Option<String>,
    pub owner: String,
    pub standing: Standing,
    /// The exemption (or hold) that decided the standing.
    pub exemption: Option<String>,
    pub clock: Clock,
    /// `None` while the clock has not started (e.g. handling has not ended).
    pub clock_start: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    /// The window as written (`4h`, `3d`).
    pub deadline: String,
    pub reminders: Vec<u8>,
    /// Why: the law, what in the facts made it apply, how the deadline was counted, and the
    /// exemption if one holds.
    pub why: Vec<String>,
}

/// What conditions are tested against.
struct Env<'a> {
    /// The facts as this jurisdiction sees them ([`Facts::for_jurisdiction`]).
    facts: &'a Facts,
    /// The jurisdiction, when its count is its own: the "why" says whose count it is.
    own_count: Option<&'a Jurisdiction>,
    incident: &'a Incident,
    operator: OperatorType,
    pack: &'a Pack,
    grade: Option<usize>,
}

pub(super) fn assess(packs: &Packs, case: &Case<'_>) -> Assessment {
    let inc = case.incident;
    let facts = &inc.facts;
    let mut out = Assessment {
        jurisdictions: Vec::new(),
        without_pack: Vec::new(),
        clocks_to_start: Vec::new(),
    };
    for code in applicable(facts, case.organisation_jurisdictions) {
        let Some(pack) = packs.get(code) else {
            if !out.without_pack.contains(code) {
                out.without_pack.push(code.clone());
            }
            continue;
        };
        if out.jurisdictions.iter().any(|j| &j.jurisdiction == code) {
            continue;
        }
        let operator = effective_operator(facts, case.operator_type);
        let own = facts.for_jurisdiction(code);
        let mut env = Env {
            facts: &own,
            own_count: facts.has_own_count(code).then_some(code),
            incident: inc,
            operator,
            pack,
            grade: None,
        };
        let (rank, grade) = grade(pack, &env);
        env.grade = Some(rank);
        let mut obligations = Vec::new();
        for def in &pack.obligations {
            if let Some(o) = obligation(def, &env, case, &mut out.clocks_to_start) {
                obligations.push(o);
            }
        }
        out.jurisdictions.push(JurisdictionAssessment {
            jurisdiction: code.clone(),
            pack: pack.name.clone(),
            grade,
            operator_type: operator,
            obligations,
        });
    }
    out
}

fn grade(pack: &Pack, env: &Env<'_>) -> (usize, GradeOutcome) {
    for (rank, g) in pack.grades.iter().enumerate() {
        for c in &g.criteria {
            if let Some(reasons) = check(&c.when, env) {
                return (
                    rank,
                    GradeOutcome {
                        id: g.id.clone(),
                        name: g.name.clone(),
                        criterion: Some(c.id.clone()),
                        why: format!("{} — {}: {}", g.name, c.text, reasons.join("; ")),
                    },
                );
            }
        }
    }
    let rank = pack.grades.len().saturating_sub(1);
    let g = &pack.grades[rank];
    (
        rank,
        GradeOutcome {
            id: g.id.clone(),
            name: g.name.clone(),
            criterion: None,
            why: format!("{}: no criterion of a higher grade holds", g.name),
        },
    )
}

fn obligation(
    def: &ObligationDef,
    env: &Env<'_>,
    case: &Case<'_>,
    clocks_to_start: &mut Vec<Clock>,
) -> Option<ObligationOutcome> {
    let applies = check(&def.when, env)?;
    let code = &env.pack.code;
    let mut why = vec![def.law.clone()];
    if !applies.is_empty() {
        why.push(format!("applies because {}", applies.join("; ")));
    }
    let key = format!("{code}:{}", def.id);
    let (key, inherited, clock_start) = if def.clock == Clock::MaterialChange {
        let s = supplement(def, env, case, &key, &mut why)?;
        (s.key, s.inherited, Some(s.clock_start))
    } else {
        (key, None, clock_of(def.clock, env.incident))
    };
    let (standing, exemption) = standing(def, env, &mut why);
    if clock_start.is_none()
        && standing == Standing::Required
        && def.clock == Clock::AssessedNotifiableAt
        && !clocks_to_start.contains(&def.clock)
    {
        clocks_to_start.push(def.clock);
    }
    let due_at = clock_start.map(|s| deadline(s, def.deadline, def.counting, env.pack.timezone));
    why.push(deadline_reason(def, env.pack, clock_start, due_at));
    let recipient = recipient_of(def, env.operator).or(inherited);
    Some(ObligationOutcome {
        key,
        jurisdiction: code.clone(),
        obligation: def.id.clone(),
        title: def.title.clone(),
        kind: def.kind,
        report: def.report.clone(),
        report_kind: def.report_kind,
        recipient_name: recipient.as_deref().map(|r| env.pack.recipient_name(r)),
        recipient,
        owner: def.owner.clone(),
        standing,
        exemption,
        clock: def.clock,
        clock_start,
        due_at,
        deadline: def.deadline_written.clone(),
        reminders: def.reminders.clone(),
        why,
    })
}

/// The next supplementary report of a series (an obligation counting from a material change).
struct Supplement {
    /// The obligation's key with the report's number: `<code>:<id>#<n>`.
    key: String,
    /// Where the report it supplements went.
    inherited: Option<String>,
    /// When it was first owed (now, the first time).
    clock_start: DateTime<Utc>,
}

/// The supplement `def` asks for, with why in `why`; `None` when no report it supplements
/// was submitted, or none of its material facts changed since the last.
fn supplement(
    def: &ObligationDef,
    env: &Env<'_>,
    case: &Case<'_>,
    key: &str,
    why: &mut Vec<String>,
) -> Option<Supplement> {
    let code = &env.pack.code;
    let mut reports: Vec<&Submitted> = case
        .submitted
        .iter()
        .filter(|s| {
            &s.jurisdiction == code && (def.after.contains(&s.obligation) || s.obligation == def.id)
        })
        .collect();
    reports.sort_by_key(|s| s.at);
    let last = reports.last()?;
    // A supplement goes where the report it supplements went.
    let inherited = reports
        .iter()
        .rev()
        .filter_map(|s| env.pack.obligation(&s.obligation))
        .find_map(|o| recipient_of(o, env.operator));
    let changed = changed_facts(
        &last.facts.for_jurisdiction(code),
        env.facts,
        &def.on_change_of,
    );
    if changed.is_empty() {
        return None;
    }
    let n = reports.iter().filter(|s| s.obligation == def.id).count() + 1;
    let key = format!("{key}#{n}");
    let clock_start = case.started.get(&key).copied().unwrap_or(case.now);
    why.push(format!(
        "material facts changed since the report submitted {}: {}",
        last.at.format("%Y-%m-%d %H:%M UTC"),
        changed.join(", ")
    ));
    Some(Supplement {
        key,
        inherited,
        clock_start,
    })
}

/// The deadline in words: how it is counted, from which clock, and when it falls (in UTC and
/// the pack's time zone), or that its clock has not started.
fn deadline_reason(
    def: &ObligationDef,
    pack: &Pack,
    clock_start: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
) -> String {
    let window = match def.counting {
        super::Counting::Elapsed => format!("{} from", def.deadline_written),
        super::Counting::CalendarDaysAfter => format!(
            "{} calendar days after the day of",
            def.deadline.as_secs() / 86_400
        ),
    };
    match (clock_start, due_at) {
        (Some(s), Some(d)) => format!(
            "deadline: {window} {} ({}) → {} ({})",
            def.clock,
            s.with_timezone(&pack.timezone).format("%Y-%m-%d %H:%M %:z"),
            d.format("%Y-%m-%d %H:%M:%S UTC"),
            d.with_timezone(&pack.timezone).format("%Y-%m-%d %H:%M %:z"),
        ),
        _ => format!("deadline: {window} {}, which has not started", def.clock),
    }
}

fn standing(
    def: &ObligationDef,
    env: &Env<'_>,
    why: &mut Vec<String>,
) -> (Standing, Option<String>) {
    // A hold forbids the notice; an exemption only excuses it. So a hold that applies wins
    // wherever the pack lists it (PDPA s 26D(6) before s 26D(5)); otherwise, in order.
    let (holds, others): (Vec<_>, Vec<_>) = def
        .exemptions
        .iter()
        .partition(|e| e.standing == Standing::Hold);
    for e in holds.into_iter().chain(others) {
        let Some(reasons) = check(&e.when, env) else {
            continue;
        };
        if let Some(unless) = &e.unless
            && let Some(over) = check(unless, env)
        {
            why.push(format!(
                "exemption `{}` does not apply: {}",
                e.id,
                over.join("; ")
            ));
            continue;
        }
        let mut line = format!("{} ({}): {}", e.standing, e.id, e.text);
        if !reasons.is_empty() {
            line.push_str(&format!(" — {}", reasons.join("; ")));
        }
        for (flag, text) in [
            (
                "mitigation_effective",
                env.facts.mitigation_justification.as_deref(),
            ),
            ("risk", env.facts.risk_reason.as_deref()),
        ] {
            let mentioned = e.when.facts_true.iter().any(|f| f == flag)
                || (flag == "risk" && !e.when.risk_is.is_empty());
            if mentioned && let Some(t) = text {
                line.push_str(&format!(" — recorded justification: {t}"));
            }
        }
        why.push(line);
        return (e.standing, Some(e.id.clone()));
    }
    (Standing::Required, None)
}

fn recipient_of(def: &ObligationDef, operator: OperatorType) -> Option<String> {
    def.recipient
        .clone()
        .or_else(|| def.recipient_by_operator.get(&operator).cloned())
}

fn clock_of(clock: Clock, inc: &Incident) -> Option<DateTime<Utc>> {
    match clock {
        Clock::DiscoveredAt => Some(inc.discovered_at),
        Clock::AwareAt => inc.aware_at,
        Clock::AssessedNotifiableAt => inc.assessed_notifiable_at,
        Clock::HandlingClosedAt => inc.handling_closed_at.or(inc.closed_at),
        Clock::MaterialChange => None,
    }
}

/// The facts among `names` whose values differ, as `name: before → after`.
fn changed_facts(before: &Facts, after: &Facts, names: &[String]) -> Vec<String> {
    // Lists are sets here: the same data types in another order are no new fact.
    let sorted = |f: &Facts| {
        let mut v = serde_json::to_value(f).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            for x in m.values_mut() {
                if let Some(list) = x.as_array_mut() {
                    list.sort_by_key(|e| e.to_string());
                }
            }
        }
        v
    };
    let (b, a) = (sorted(before), sorted(after));
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "(none)".to_string(),
        serde_json::Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        other => other.to_string(),
    };
    names
        .iter()
        .filter(|n| b.get(n.as_str()) != a.get(n.as_str()))
        .map(|n| {
            format!(
                "{n}: {} → {}",
                show(b.get(n.as_str()).unwrap_or(&serde_json::Value::Null)),
                show(a.get(n.as_str()).unwrap_or(&serde_json::Value::Null))
            )
        })
        .collect()
}
