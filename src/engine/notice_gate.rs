//! The checks an approval gate runs before it can be approved. Today one: the gate that
//! approves the notice to individuals (a playbook task with `lint = "notice"`) refuses while
//! the incident's facts lack a required element of the notice, or a `notice/*` template does
//! not carry one ([`crate::domain::notice`], [`crate::render::lint`]). Rejecting is always
//! allowed, and so is approving when the facts claim the PIPL exemption (nobody is notified).
//! A regulator report's approval (task `report-<id>`) is refused while the report version lacks
//! required fields that may not follow (see [`super::reports`]).

use crate::config::OrganisationConfig;
use crate::domain::notice::{exempt_from_individual_notice, missing_notice_facts};
use crate::domain::playbook::{Playbooks, TaskLint};
use crate::domain::records::Incident;
use crate::render::Templates;
use crate::store::TaskRow;

/// The department that may approve a notice whose public text looks internal, with a reason.
pub const LEGAL: &str = "legal";

/// What approving a gate checks, from the live configuration.
pub struct GateChecks<'a> {
    /// The loaded playbooks (`None` without departments): a task's `lint` comes from its
    /// playbook's definition.
    pub playbooks: Option<&'a Playbooks>,
    pub templates: &'a Templates,
    pub organisation: &'a OrganisationConfig,
    /// `[server] public_url` (links in the lint's sample notice).
    pub public_url: &'a str,
    /// The jurisdiction packs: a regulator report's approval (`report-<id>`) re-runs the
    /// report's required-field lint against them ([`super::reports::approval_refusal`]).
    pub packs: Option<&'a crate::domain::regulation::Packs>,
}

impl GateChecks<'_> {
    /// The lint a task runs before approval: its playbook task's `lint`. A task whose playbook
    /// or definition is gone (reloaded away) keeps no lint; an ad-hoc task is never a gate.
    pub fn lint_of(&self, task: &TaskRow) -> Option<TaskLint> {
        // A follow-up campaign's own approval approves a notice's words too.
        if super::campaign::campaign_of_task(task).is_some() && task.playbook.is_some() {
            return Some(TaskLint::Notice);
        }
        let pb = self.playbooks?.get(task.playbook.as_deref()?)?;
        pb.task(&task.key)?.lint
    }

    /// Why `task` may not be approved yet, or `None`.
    pub(crate) fn refusal(&self, task: &TaskRow, incident: &Incident) -> Option<String> {
        match self.lint_of(task)? {
            TaskLint::Notice => self.notice_refusal(task, incident),
            // Checked against the incident's reports in the transaction (super::report_gate).
            TaskLint::Report => None,
        }
    }

    /// The notice gate's warning: public text (what notices and the announcement show, in each
    /// of their languages) that looks internal — IP addresses, host names, account and table
    /// names ([`crate::domain::text::looks_internal`]). Approving is refused while it holds,
    /// unless Legal overrides it with a reason ([`LEGAL`]), which is recorded.
    pub(crate) fn internal_text(&self, task: &TaskRow, incident: &Incident) -> Option<String> {
        if self.lint_of(task)? != TaskLint::Notice || exempt_from_individual_notice(&incident.facts)
        {
            return None;
        }
        let mut locales: Vec<String> = Vec::new();
        for name in self.templates.names() {
            if name.starts_with("notice/") || name.starts_with("announcement/") {
                for l in self.templates.locales(name) {
                    if !locales
                        .iter()
                        .any(|x| crate::domain::text::same_locale(x, l))
                    {
                        locales.push(l.to_string());
                    }
                }
            }
        }
        let mut found = Vec::new();
        for name in crate::domain::facts::TEXT_FACTS {
            let Some(t) = incident.facts.text(name) else {
                continue;
            };
            for l in &locales {
                let Some(text) = t.for_public(l, &self.organisation.default_locale) else {
                    continue;
                };
                let hits = crate::domain::text::looks_internal(text);
                if !hits.is_empty() {
                    found.push(format!("{name} ({l}): {}", hits.join(", ")));
                }
            }
        }
        (!found.is_empty()).then(|| {
            format!(
                "the public text of the notice looks internal — {}. Give the facts a public version ({{\"cause\": {{\"internal\": …, \"public\": {{\"<locale>\": \"…\"}}}}}}), or Legal may approve anyway, saying why (incidentd approve {} --override-warning --reason \"…\"; API: POST /api/v1/approvals/{}/approve {{\"override_warning\": true, \"reason\": \"…\"}})",
                found.join("; "),
                task.id,
                task.id
            )
        })
    }

    fn notice_refusal(&self, task: &TaskRow, incident: &Incident) -> Option<String> {
        if exempt_from_individual_notice(&incident.facts) {
            return None;
        }
        let facts = missing_notice_facts(&incident.facts, Some(&self.organisation.contact));
        let templates = self
            .templates
            .lint_notices(self.organisation, self.public_url);
        if facts.is_empty() && templates.is_empty() {
            return None;
        }
        let mut why = Vec::new();
        if !facts.is_empty() {
            let list: Vec<String> = facts
                .iter()
                .map(|e| format!("{} (fact `{}`)", e.label(), e.facts.join("` or `")))
                .collect();
            why.push(format!(
                "the incident's facts lack {} of its required elements — {} — fill them in first \
                 (PATCH /api/v1/incidents/{id}/facts, or incidentd facts {id} --set {}=…)",
                list.len(),
                list.join("; "),
                facts[0].facts[0],
                id = incident.id,
            ));
        }
        if !templates.is_empty() {
            let list: Vec<String> = templates.iter().map(ToString::to_string).collect();
            why.push(format!(
                "the notice templates are incomplete: {}",
                list.join("; ")
            ));
        }
        Some(format!(
            "approval {} (`{}`) approves the notice to individuals and cannot be approved yet: {}. \
             A notice must state what happened and its cause, the kinds of personal information, \
             the possible impact, the measures taken, what people can do, the remedies and the \
             contact of the personal-information protection officer (PIPL art. 57, GB/T 35273 §10). \
             Rejecting it is allowed.",
            task.id,
            task.key,
            why.join("; and ")
        ))
    }
}
