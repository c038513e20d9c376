//! Whether a pack's condition holds for an incident, and the facts that make it hold in words
//! (the "why"). Each kind of test is one function; a condition holds when every test it sets
//! does.

use super::*;
use crate::domain::incident::Category;

/// `Some(reasons)` when the condition holds (the facts that made it hold, in words); `None`
/// when it does not.
pub(super) fn check(c: &Condition, env: &Env<'_>) -> Option<Vec<String>> {
    let mut why = Vec::new();
    // The grade first: it reads as the main reason ("grade III ≥ III; operator type other").
    grade(c, env, &mut why)?;
    amounts(c, env, &mut why)?;
    outages(c, env.facts, &mut why)?;
    category(c, env.incident.category, &mut why)?;
    data_types(c, env.facts, &mut why)?;
    flags(c, env.facts, &mut why)?;
    threat_and_risk(c, env.facts, &mut why)?;
    operator(c, env, &mut why)?;
    if !c.any.is_empty() {
        let first = c.any.iter().find_map(|a| check(a, env))?;
        why.extend(first);
    }
    Some(why)
}

/// `grade_at_least`, `grade_below`: against the grade the pack gave the incident.
fn grade(c: &Condition, env: &Env<'_>, why: &mut Vec<String>) -> Option<()> {
    if let Some(g) = &c.grade_at_least {
        let (rank, want) = (env.grade?, env.pack.grade_rank(g)?);
        if rank > want {
            return None;
        }
        why.push(format!("grade {} ≥ {g}", env.pack.grades[rank].id));
    }
    if let Some(g) = &c.grade_below {
        let (rank, want) = (env.grade?, env.pack.grade_rank(g)?);
        if rank <= want {
            return None;
        }
        why.push(format!("grade {} < {g}", env.pack.grades[rank].id));
    }
    Some(())
}

/// The counted facts: people, money and records at least so many; people fewer than so many.
fn amounts(c: &Condition, env: &Env<'_>, why: &mut Vec<String>) -> Option<()> {
    let f = env.facts;
    let subjects = match env.own_count {
        Some(code) => format!("affected_subjects in {code}"),
        None => "affected_subjects".to_string(),
    };
    at_least(
        &subjects,
        f.affected_subjects,
        c.affected_subjects_at_least,
        why,
    )?;
    at_least(
        "economic_loss_cny",
        f.economic_loss_cny,
        c.economic_loss_cny_at_least,
        why,
    )?;
    at_least(
        "records_affected",
        f.records_affected,
        c.records_affected_at_least,
        why,
    )?;
    if let Some(max) = c.affected_subjects_below {
        match f.affected_subjects {
            Some(n) if n >= max => return None,
            n => why.push(format!(
                "{subjects} {} < {}",
                n.map_or("unknown".into(), thousands),
                thousands(max)
            )),
        }
    }
    Some(())
}

/// Holds when no minimum is set, or the fact is known and reaches it.
fn at_least(name: &str, have: Option<u64>, min: Option<u64>, why: &mut Vec<String>) -> Option<()> {
    let Some(m) = min else {
        return Some(());
    };
    match have {
        Some(h) if h >= m => {
            why.push(format!("{name} {} ≥ {}", thousands(h), thousands(m)));
            Some(())
        }
        _ => None,
    }
}

fn outages(c: &Condition, f: &Facts, why: &mut Vec<String>) -> Option<()> {
    for (name, have, min) in [
        (
            "outage_whole_system",
            f.outage_whole_system,
            c.outage_whole_system_at_least,
        ),
        (
            "outage_main_functions",
            f.outage_main_functions,
            c.outage_main_functions_at_least,
        ),
    ] {
        if let Some(min) = min {
            match have {
                Some(h) if h.0 >= min => why.push(format!("{name} {h} ≥ {}", HumanDuration(min))),
                _ => return None,
            }
        }
    }
    Some(())
}

/// `categories` and `personal_information`.
fn category(c: &Condition, category: Category, why: &mut Vec<String>) -> Option<()> {
    if !c.categories.is_empty() {
        if !c.categories.contains(&category) {
            return None;
        }
        why.push(format!("category {category}"));
    }
    if let Some(pi) = c.personal_information {
        if category.is_personal_information() != pi {
            return None;
        }
        why.push(if pi {
            format!("a personal-information incident ({category})")
        } else {
            format!("not a personal-information incident ({category})")
        });
    }
    Some(())
}

/// `data_types_any` (one of them) and `data_types_combination` (one of each group).
fn data_types(c: &Condition, f: &Facts, why: &mut Vec<String>) -> Option<()> {
    if !c.data_types_any.is_empty() {
        let hit: Vec<&str> = c
            .data_types_any
            .iter()
            .filter(|d| f.data_types.contains(d))
            .map(|d| d.as_str())
            .collect();
        if hit.is_empty() {
            return None;
        }
        why.push(format!("data types include {}", hit.join(", ")));
    }
    if !c.data_types_combination.is_empty() {
        let mut parts = Vec::new();
        for group in &c.data_types_combination {
            match group.iter().find(|d| f.data_types.contains(d)) {
                Some(d) => parts.push(d.as_str()),
                None => return None,
            }
        }
        why.push(format!("data types combine {}", parts.join(" + ")));
    }
    Some(())
}

/// `facts_true` and `facts_not_true`.
fn flags(c: &Condition, f: &Facts, why: &mut Vec<String>) -> Option<()> {
    for flag in &c.facts_true {
        if !f.flag(flag) {
            return None;
        }
        why.push(match (flag.as_str(), f.notification_hold) {
            ("notification_hold", Some(h)) => format!("notification_hold = {h}"),
            _ => format!("{flag} = true"),
        });
    }
    if c.facts_not_true.iter().any(|flag| f.flag(flag)) {
        return None;
    }
    Some(())
}

/// `threat_at_least`, `risk_at_least` and `risk_is`.
fn threat_and_risk(c: &Condition, f: &Facts, why: &mut Vec<String>) -> Option<()> {
    if let Some(min) = c.threat_at_least {
        match f.threat {
            Some(t) if t >= min => why.push(format!("threat {t} (≥ {min})")),
            _ => return None,
        }
    }
    if let Some(min) = c.risk_at_least {
        match f.risk {
            Some(r) if r >= min => why.push(format!("risk {r}")),
            _ => return None,
        }
    }
    if !c.risk_is.is_empty() {
        match f.risk {
            Some(r) if c.risk_is.contains(&r) => why.push(format!("risk {r}")),
            _ => return None,
        }
    }
    Some(())
}

fn operator(c: &Condition, env: &Env<'_>, why: &mut Vec<String>) -> Option<()> {
    if !c.operator_types.is_empty() {
        if !c.operator_types.contains(&env.operator) {
            return None;
        }
        why.push(format!(
            "operator type {}{}",
            env.operator,
            if env.facts.critical_infrastructure == Some(true) {
                " (critical information infrastructure involved)"
            } else {
                ""
            }
        ));
    }
    Some(())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
