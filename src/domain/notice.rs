//! What a notice to individuals must say, defined once, as data.
//!
//! The sources (see `DOMAIN.md`):
//!
//! * the organisation's own promise: the basic situation and possible impact; the measures
//!   taken or to be taken; advice on how people can prevent and reduce the risk themselves; the
//!   remedies offered;
//! * PIPL art. 57: the kinds of personal information involved, the cause and the possible harm;
//!   the remedial measures taken and what individuals can do to reduce harm; the handler's
//!   contact details;
//! * GB/T 35273 §10: the incident and its impact; measures taken or planned; self-protection
//!   advice; remedies; contact of the PI-protection officer;
//! * GDPR art. 34 and PDPA part 6A ask for a subset (contact point, likely consequences,
//!   measures), so a notice that passes this list satisfies them too.
//!
//! The union is [`ELEMENTS`]. Each element names the facts that supply it; how it is checked:
//!
//! * **Facts** ([`missing_notice_facts`]): every element whose [`Need`] is
//!   [`Need::Always`] must have a non-blank fact before the notice approval gate can be
//!   approved. `measures_planned` is [`Need::WhenKnown`]: the sources say "taken *or* planned",
//!   and PIPL asks only for the measures taken, so an incident with nothing further planned
//!   is not held up; a template must still show it when it is known. The contact falls back to
//!   `[organisation] contact`, the PI-protection officer every notice can name.
//! * **Templates** (`crate::render::lint`): the full-content parts — `text` (e-mail text,
//!   in-site notice) and `html` (e-mail) — must carry every element; a `voice` part, when a
//!   template has one, must carry the [`Element::essential`] ones (the kinds of information,
//!   what to do, whom to call: a call cannot read a whole notice out); the `sms` part is exempt
//!   from the list (it cannot hold it within a few segments) but must carry the link to the
//!   full notice (`notice.url`) and fit `[render] sms_max_segments`.
//!
//! The PIPL exemption (the measures effectively avoid harm, [`exempt_from_individual_notice`])
//! is decided at the same approval gate: when the facts claim it, nobody is notified, so the
//! content is not required.

use super::facts::Facts;

/// When an element's facts must be filled in before the notice is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Always.
    Always,
    /// Only templates are checked: they must show it when the incident has it.
    WhenKnown,
}

/// One thing a notice to individuals must tell people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    /// Stable id, used in API answers and logs.
    pub id: &'static str,
    /// What it is, in English.
    pub en: &'static str,
    /// What it is, in Chinese.
    pub zh: &'static str,
    /// The fact keys (`incident.facts.<key>` in templates) that supply it; any one suffices.
    pub facts: &'static [&'static str],
    /// `organisation.contact` stands in when the facts do not have it.
    pub org_fallback: bool,
    pub need: Need,
    /// A `voice` part must carry it too.
    pub essential: bool,
}

impl Element {
    /// `English / 中文`, as refusals show it.
    pub fn label(&self) -> String {
        format!("{} / {}", self.en, self.zh)
    }

    pub fn by_id(id: &str) -> Option<&'static Element> {
        ELEMENTS.iter().find(|e| e.id == id)
    }
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.id, self.label())
    }
}

const fn element(
    id: &'static str,
    en: &'static str,
    zh: &'static str,
    facts: &'static [&'static str],
    need: Need,
    essential: bool,
) -> Element {
    Element {
        id,
        en,
        zh,
        facts,
        org_fallback: false,
        need,
        essential,
    }
}

/// Every element of a notice to individuals, in the order a notice tells them.
pub const ELEMENTS: &[Element] = &[
    element(
        "what_happened",
        "what happened and its cause",
        "事件经过及原因",
        &["cause"],
        Need::Always,
        false,
    ),
    element(
        "data_types",
        "the kinds of personal information involved",
        "涉及的个人信息种类",
        &["data_types"],
        Need::Always,
        true,
    ),
    element(
        "impact",
        "the possible impact",
        "可能造成的影响",
        &["impact"],
        Need::Always,
        false,
    ),
    element(
        "measures_taken",
        "the measures taken",
        "已采取的补救措施",
        &["measures_taken"],
        Need::Always,
        false,
    ),
    element(
        "measures_planned",
        "the measures planned",
        "将要采取的措施",
        &["measures_planned"],
        Need::WhenKnown,
        false,
    ),
    element(
        "advice",
        "what people can do to reduce the risk",
        "个人可采取的防范和减轻风险的措施",
        &["advice_to_subjects"],
        Need::Always,
        true,
    ),
    element(
        "remedies",
        "the remedies offered",
        "提供的补救方式",
        &["remedies"],
        Need::Always,
        false,
    ),
    Element {
        org_fallback: true,
        ..element(
            "contact",
            "the contact of the personal-information protection officer",
            "个人信息保护负责人的联系方式",
            &["contact"],
            Need::Always,
            true,
        )
    },
];

/// Whether the fact `key` has a value worth printing (not absent, not blank, not empty).
pub fn fact_present(facts: &Facts, key: &str) -> bool {
    // A notice is public: a text only the organisation may read (from an alert) is not there.
    let text = |v: &Option<crate::domain::facts::Text>| {
        v.as_ref()
            .and_then(crate::domain::facts::Text::public_any)
            .is_some()
    };
    match key {
        "cause" => text(&facts.cause),
        "impact" => text(&facts.impact),
        "measures_taken" => text(&facts.measures_taken),
        "measures_planned" => text(&facts.measures_planned),
        "advice_to_subjects" => text(&facts.advice_to_subjects),
        "remedies" => text(&facts.remedies),
        "contact" => text(&facts.contact),
        "data_types" => !facts.data_types.is_empty(),
        _ => false,
    }
}

/// The elements a notice cannot go out without that the facts do not supply yet, in
/// [`ELEMENTS`] order. `org_contact` is `[organisation] contact` (the contact's fallback).
pub fn missing_notice_facts(facts: &Facts, org_contact: Option<&str>) -> Vec<&'static Element> {
    let org_ok = org_contact.is_some_and(|c| !c.trim().is_empty());
    ELEMENTS
        .iter()
        .filter(|e| e.need == Need::Always)
        .filter(|e| {
            let supplied = e.facts.iter().any(|k| fact_present(facts, k));
            !(supplied || (e.org_fallback && org_ok))
        })
        .collect()
}

/// The facts claim the PIPL art. 57 exemption: the measures effectively avoid harm (with a
/// justification) and no regulator requires notice. Individuals are then not notified, so the
/// approval of that decision does not need the notice's content.
pub fn exempt_from_individual_notice(facts: &Facts) -> bool {
    facts.mitigation_effective == Some(true)
        && facts
            .mitigation_justification
            .as_deref()
            .is_some_and(|j| !j.trim().is_empty())
        && facts.regulator_requires_notice != Some(true)
}

/// Templates of this kind are notices to individuals and must pass the lint.
pub const NOTICE_PREFIX: &str = "notice/";

/// Whether a template name is a notice to individuals (`notice/pi_leak`).
pub fn is_notice(name: &str) -> bool {
    name.starts_with(NOTICE_PREFIX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn full() -> Facts {
        Facts {
            cause: Some("c".into()),
            impact: Some("i".into()),
            data_types: vec!["phone".parse().unwrap()],
            measures_taken: Some("m".into()),
            advice_to_subjects: Some("a".into()),
            remedies: Some("r".into()),
            ..Facts::default()
        }
    }

    fn ids(v: &[&Element]) -> Vec<&'static str> {
        v.iter().map(|e| e.id).collect()
    }

    #[test]
    fn nothing_known_lists_every_always_element() {
        let m = missing_notice_facts(&Facts::default(), None);
        assert_eq!(
            ids(&m),
            [
                "what_happened",
                "data_types",
                "impact",
                "measures_taken",
                "advice",
                "remedies",
                "contact"
            ]
        );
        // The organisation's contact stands in for the incident's.
        let m = missing_notice_facts(&Facts::default(), Some("dpo@example.com"));
        assert!(!ids(&m).contains(&"contact"), "{m:?}");
        let m = missing_notice_facts(&Facts::default(), Some("  "));
        assert!(ids(&m).contains(&"contact"), "{m:?}");
    }

    #[test]
    fn blank_counts_as_missing_and_planned_measures_are_optional() {
        let mut f = full();
        assert!(missing_notice_facts(&f, Some("x")).is_empty());
        f.remedies = Some("   ".into());
        f.data_types.clear();
        assert_eq!(
            ids(&missing_notice_facts(&f, Some("x"))),
            ["data_types", "remedies"]
        );
        f = full();
        f.contact = Some("officer@example.com".into());
        assert!(missing_notice_facts(&f, None).is_empty());
    }

    #[test]
    fn text_only_the_organisation_may_read_is_missing_from_a_notice() {
        let mut f = full();
        f.keep_text_internal();
        assert_eq!(
            ids(&missing_notice_facts(&f, Some("x"))),
            [
                "what_happened",
                "impact",
                "measures_taken",
                "advice",
                "remedies"
            ]
        );
        // A responder's public version is there again.
        f.cause = Some(
            crate::domain::facts::Text::from_value(
                &serde_json::json!({"internal": "svc-backup", "public": "A backup was copied."}),
            )
            .unwrap(),
        );
        assert!(!ids(&missing_notice_facts(&f, Some("x"))).contains(&"what_happened"));
    }

    #[test]
    fn every_fact_an_element_names_is_a_real_fact() {
        for e in ELEMENTS {
            for k in e.facts {
                assert!(
                    crate::domain::facts::FACT_FIELDS.contains(k),
                    "{}: {k} is not a fact",
                    e.id
                );
            }
            assert!(!e.en.is_empty() && !e.zh.is_empty());
        }
        // Each element's facts are recognised by `fact_present` (a typo would make it always
        // missing).
        let mut f = full();
        f.measures_planned = Some("p".into());
        f.contact = Some("c".into());
        for e in ELEMENTS {
            assert!(e.facts.iter().all(|k| fact_present(&f, k)), "{}", e.id);
        }
    }

    #[test]
    fn the_exemption_needs_a_justification_and_no_regulator_demand() {
        let mut f = Facts {
            mitigation_effective: Some(true),
            ..Facts::default()
        };
        assert!(!exempt_from_individual_notice(&f));
        f.mitigation_justification = Some("the data was encrypted, keys not exposed".into());
        assert!(exempt_from_individual_notice(&f));
        f.regulator_requires_notice = Some(true);
        assert!(!exempt_from_individual_notice(&f));
    }
}
