//! A pack's conditions (`when = …`), checked and compiled: a fact, grade, data type or
//! category the pack does not know is a problem with its key, not a test that never matches.

use super::*;

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

pub(super) fn condition(
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
            match crate::domain::regulation::parse_category(s) {
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
