//! The content lint of notice templates (`notice/*`): every language of a notice to
//! individuals must say what the law and the organisation's promise ask for
//! ([`crate::domain::notice::ELEMENTS`], where the rules and their sources are), and its SMS
//! must link to the full notice and stay short.
//!
//! How: each version is rendered part by part against the sample incident with every element's
//! fact replaced by a unique marker (`XQlint_cause_QX`), and each part's output is searched for
//! the markers of the elements it must carry. Rendering (rather than reading the source) sees
//! through helpers, partial branches and `{{#each}}`; an element hidden in a branch the sample
//! does not take is caught by rendering several variants — a normal incident, a drill (an
//! element inside `{{#unless incident.drill}}` is missing from drills, which must be complete
//! notices too), and an incident without a contact of its own (then `org.contact` must show).
//! Every fact an element needs is present in the samples, so `{{#if fact}}` around an element
//! is fine: that is how a template shows `measures_planned` only when there are some. Branches
//! on anything else (`{{#if incident.facts.critical_infrastructure}}`) are taken as the sample
//! incident takes them: an element shown only on the other side is reported missing, one hidden
//! only on the other side is not seen.
//!
//! Parts: `text` and `html` carry every element; `voice`, when present, the essential ones;
//! `sms` (or `text`, which SMS falls back to) must contain `notice.url` and fit
//! `[render] sms_max_segments` for a realistically long sample (many kinds of data, the
//! configured organisation name and contact, a long link, also as a drill); `params`, when
//! present, must pass the link to template-only providers too.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Part, RenderError, Templates, Version, needs, sample_context, sms_segments};
use crate::config::OrganisationConfig;
use crate::domain::message::ChannelKind;
use crate::domain::notice::{ELEMENTS, Element};

pub use crate::domain::notice::{NOTICE_PREFIX, is_notice};

/// One problem the lint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintProblem {
    pub file: PathBuf,
    /// The part it is in, when it is in one.
    pub part: Option<Part>,
    /// The elements the part does not carry (empty for other problems).
    pub missing: Vec<&'static Element>,
    /// In words, e.g. `missing the remedies offered / 提供的补救方式 (incident.facts.remedies)`.
    pub problem: String,
}

impl fmt::Display for LintProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.part {
            Some(p) => write!(f, "{}: {p}: {}", self.file.display(), self.problem),
            None => write!(f, "{}: {}", self.file.display(), self.problem),
        }
    }
}

fn marker(key: &str) -> String {
    format!("XQlint_{key}_QX")
}

/// One way of rendering the marker sample.
struct Variant {
    /// Appended to a problem found only in this variant.
    when: &'static str,
    drill: bool,
    /// The incident has a contact of its own; otherwise `org.contact` must show.
    incident_contact: bool,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        when: "in the normal notice",
        drill: false,
        incident_contact: true,
    },
    Variant {
        when: "in a drill (incident.drill)",
        drill: true,
        incident_contact: true,
    },
    Variant {
        when: "when the incident has no contact of its own (org.contact)",
        drill: false,
        incident_contact: false,
    },
];

/// The sample with a marker for every element's facts, `org.contact` and `notice.url`.
fn marker_context(org: &OrganisationConfig, v: &Variant) -> Value {
    let mut data = sample_context(org);
    data["org"]["contact"] = json!(marker("org_contact"));
    data["notice"]["url"] = json!(marker("notice_url"));
    data["incident"]["drill"] = json!(v.drill);
    let facts = &mut data["incident"]["facts"];
    for e in ELEMENTS {
        for k in e.facts {
            facts[*k] = if *k == "data_types" {
                json!([marker(k)])
            } else {
                json!(marker(k))
            };
        }
    }
    if !v.incident_contact {
        facts["contact"] = Value::Null;
    }
    data
}

/// Whether `out` shows element `e` in variant `v`.
fn shows(out: &str, e: &Element, v: &Variant) -> bool {
    if e.org_fallback && !v.incident_contact {
        return out.contains(&marker("org_contact"));
    }
    e.facts.iter().any(|k| out.contains(&marker(k)))
}

/// A realistically long notice for the SMS length check: many kinds of data, a long link.
fn long_context(org: &OrganisationConfig, public_url: &str, drill: bool) -> Value {
    let mut data = sample_context(org);
    data["incident"]["drill"] = json!(drill);
    data["incident"]["facts"]["data_types"] = json!([
        "name",
        "phone",
        "email",
        "id_number",
        "address",
        "order_history"
    ]);
    data["incident"]["facts"]["contact"] = Value::Null;
    data["notice"]["url"] = json!(format!(
        "{}/announcements/2025-06-01-member-database-backup",
        public_url.trim_end_matches('/')
    ));
    data
}

fn fact_paths(e: &Element) -> String {
    let mut p: Vec<String> = e
        .facts
        .iter()
        .map(|k| format!("incident.facts.{k}"))
        .collect();
    if e.org_fallback {
        p.push("org.contact".into());
    }
    p.join(" or ")
}

impl Templates {
    /// Lint one notice template (every language): what each part lacks, and SMS length and
    /// link. Empty: it may go out. `public_url` is `[server] public_url` (links in the sample).
    /// A template that is not a notice has nothing to check; an unknown name is an error.
    pub fn lint_notice(
        &self,
        name: &str,
        org: &OrganisationConfig,
        public_url: &str,
    ) -> Result<Vec<LintProblem>, RenderError> {
        let versions = self
            .by_name
            .get(name)
            .ok_or_else(|| RenderError::UnknownTemplate {
                name: name.to_string(),
                known: self.by_name.keys().cloned().collect(),
            })?;
        if !is_notice(name) {
            return Ok(Vec::new());
        }
        let mut problems = Vec::new();
        for v in versions.values() {
            self.lint_version(name, v, org, public_url, &mut problems);
        }
        Ok(problems)
    }

    /// [`lint_notice`](Self::lint_notice) for every `notice/*` template.
    pub fn lint_notices(&self, org: &OrganisationConfig, public_url: &str) -> Vec<LintProblem> {
        self.by_name
            .keys()
            .filter(|n| is_notice(n))
            .flat_map(|n| self.lint_notice(n, org, public_url).unwrap_or_default())
            .collect()
    }

    fn lint_version(
        &self,
        name: &str,
        v: &Version,
        org: &OrganisationConfig,
        public_url: &str,
        out: &mut Vec<LintProblem>,
    ) {
        let problem = |part: Option<Part>, problem: String| LintProblem {
            file: v.file.clone(),
            part,
            missing: Vec::new(),
            problem,
        };
        if !v.parts.contains_key(&Part::Text) {
            out.push(problem(
                None,
                "no text part: a notice needs its full content in a {{!-- text --}} part (e-mail, in-site notice)".into(),
            ));
        }
        let contexts: Vec<Value> = VARIANTS.iter().map(|x| marker_context(org, x)).collect();
        for (part, essential_only) in [
            (Part::Text, false),
            (Part::Html, false),
            (Part::Voice, true),
        ] {
            if v.parts.contains_key(&part) {
                self.lint_part(name, v, part, essential_only, &contexts, out);
            }
        }
        self.lint_sms(name, v, &contexts[0], org, public_url, out);
    }

    /// The elements `part` must carry, rendered in every variant.
    fn lint_part(
        &self,
        name: &str,
        v: &Version,
        part: Part,
        essential_only: bool,
        contexts: &[Value],
        out: &mut Vec<LintProblem>,
    ) {
        let wanted: Vec<&'static Element> = ELEMENTS
            .iter()
            .filter(|e| !essential_only || e.essential)
            .collect();
        // element → the variants it is missing in
        let mut missing: Vec<(&'static Element, Vec<&'static str>)> = Vec::new();
        for (variant, data) in VARIANTS.iter().zip(contexts) {
            let rendered = match self.render_part(name, v, part, data) {
                Ok(r) => r,
                Err(e) => {
                    out.push(LintProblem {
                        file: v.file.clone(),
                        part: Some(part),
                        missing: Vec::new(),
                        problem: format!("cannot be rendered for the content check: {e}"),
                    });
                    return;
                }
            };
            for e in &wanted {
                if !shows(&rendered, e, variant) {
                    match missing.iter_mut().find(|(m, _)| m.id == e.id) {
                        Some((_, whens)) => whens.push(variant.when),
                        None => missing.push((e, vec![variant.when])),
                    }
                }
            }
        }
        if missing.is_empty() {
            return;
        }
        let words: Vec<String> = missing
            .iter()
            .map(|(e, whens)| {
                let always = whens.len() == VARIANTS.len();
                let when = if always {
                    String::new()
                } else {
                    format!(", {}", whens.join(" and "))
                };
                format!("{} ({}{when})", e.label(), fact_paths(e))
            })
            .collect();
        out.push(LintProblem {
            file: v.file.clone(),
            part: Some(part),
            missing: missing.iter().map(|(e, _)| *e).collect(),
            problem: format!(
                "missing {}{}",
                words.join("; "),
                if essential_only {
                    " (a call must say at least the kinds of information, what to do and whom to contact)"
                } else {
                    ""
                }
            ),
        });
    }

    /// The SMS links to the full notice and fits the configured segments.
    fn lint_sms(
        &self,
        name: &str,
        v: &Version,
        markers: &Value,
        org: &OrganisationConfig,
        public_url: &str,
        out: &mut Vec<LintProblem>,
    ) {
        let Ok(super::Plan::Phone(part)) = needs(ChannelKind::Sms, &v.parts) else {
            return; // cannot go out by SMS at all
        };
        let problem = |part: Part, problem: String| LintProblem {
            file: v.file.clone(),
            part: Some(part),
            missing: Vec::new(),
            problem,
        };
        let link = marker("notice_url");
        match self.render_detailed(name, ChannelKind::Sms, &v.locale, markers) {
            Err(e) => {
                out.push(problem(
                    part,
                    format!("cannot be rendered for the content check: {e}"),
                ));
                return;
            }
            Ok(r) => {
                if !r.content.text.contains(&link) {
                    out.push(problem(
                        part,
                        "no link to the full notice: an SMS cannot hold the whole notice, so it must carry {{required notice.url}}".into(),
                    ));
                }
                if v.parts.contains_key(&Part::Params)
                    && !r.content.params.values().any(|p| p.contains(&link))
                {
                    out.push(problem(
                        Part::Params,
                        "no link to the full notice for template-only providers: add a line such as url={{required notice.url}}".into(),
                    ));
                }
            }
        }
        let max = self.sms_max_segments;
        for drill in [false, true] {
            let data = long_context(org, public_url, drill);
            let Ok(r) = self.render_detailed(name, ChannelKind::Sms, &v.locale, &data) else {
                continue; // the sample check (`Templates::check`) reports rendering errors
            };
            let s = sms_segments(&r.content.text);
            if s.segments > max as usize {
                out.push(problem(
                    part,
                    format!(
                        "takes {} segments ({} {} units) for a long notice{} (six kinds of data, the configured organisation name and contact, a {}-character link), more than render.sms_max_segments = {max}: shorten it",
                        s.segments,
                        s.units,
                        s.encoding.as_str(),
                        if drill { " in a drill" } else { "" },
                        data["notice"]["url"].as_str().map_or(0, |u| u.chars().count()),
                    ),
                ));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;
