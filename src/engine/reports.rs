//! Regulator reports: drafting a version for one of an incident's report obligations (resolved,
//! linted and rendered in one transaction with its approval task and audit event), the approval
//! gate's lint, and submission — by e-mail or webhook through the outbox, or recorded as
//! submitted by hand. A submission by hand (with the regulator's reference) meets the
//! obligation at once; one through the outbox when the regulator's channel accepts it, and a
//! submission whose delivery died leaves it open for a new version ([`super::outcomes`]).
//!
//! Every version is kept: a new draft supersedes the older unsubmitted ones (their open
//! approvals are closed), and the submitted version is immutable (the database refuses to
//! change it).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Engine, EngineError};
use crate::config::{OrganisationConfig, RegulatorConfig};
use crate::domain::message::{ChannelKind, Content, Purpose};
use crate::domain::records::Incident;
use crate::domain::regulation::{Case, ObligationDef, ObligationKind, Pack, Packs};
use crate::domain::time::{from_micros, to_micros};
use crate::render::Templates;
use crate::render::report::{
    self as rr, AssessmentInfo, DraftError, Field, Header, LintError, Missing, Sources, Stats,
};
use crate::store::{
    NewDelivery, NewEvent, NewReport, NewTask, ObligationRow, ReportRow, Submission, TaskRow,
    WriteTx,
};

/// The approval task of report version `rid` is `report-<rid>`.
pub const TASK_PREFIX: &str = "report-";

/// What drafting and submitting need from the live configuration.
pub struct ReportCtx<'a> {
    pub packs: &'a Packs,
    pub templates: &'a Templates,
    pub organisation: &'a OrganisationConfig,
    /// `[reports] approvers`.
    pub approvers: &'a [String],
    pub regulators: &'a [RegulatorConfig],
    pub public_url: &'a str,
}

/// Draft the next version of a report.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// The obligation's key, as the incident lists it (`CN:cac_report_other`).
    pub obligation: String,
    /// Values typed by a person for the pack's `input.<name>` fields.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// A partial initial or supplementary report: the pack's `may_follow` fields may be
    /// missing and are marked "to follow".
    #[serde(default)]
    pub partial: bool,
    /// Why the report is late, shown in it (required at submission past the deadline).
    #[serde(default)]
    pub late_reason: Option<String>,
}

/// Submit an approved version.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// `email` or `webhook` (to the regulator's address in `[[regulators]]`, through the
    /// outbox), or `manual` (submitted by hand: portal, hotline).
    pub via: String,
    /// The regulator's reference (receipt number); required for `manual`.
    #[serde(default)]
    pub reference: Option<String>,
    /// When it was submitted by hand; required for `manual` (RFC 3339).
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub submitted_at: Option<DateTime<Utc>>,
    /// Why it is late; required past the obligation's deadline unless the draft gave one.
    #[serde(default)]
    pub late_reason: Option<String>,
}

/// A report version as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub id: i64,
    pub incident_id: i64,
    pub obligation_key: String,
    pub jurisdiction: String,
    pub obligation: String,
    pub report: String,
    pub report_kind: String,
    pub recipient: Option<String>,
    pub version: i64,
    /// draft | approved | rejected | superseded | submitted
    pub status: String,
    pub locale: String,
    pub partial: bool,
    pub fields: Vec<Field>,
    /// Required fields marked "to follow" (a partial report).
    pub to_follow: Vec<Missing>,
    pub inputs: BTreeMap<String, String>,
    pub subject: String,
    pub facts_version: i64,
    pub content_hash: String,
    /// Its approval (`POST /api/v1/approvals/{id}/approve`).
    pub approval_task: Option<i64>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub submitted_by: Option<String>,
    pub via: Option<String>,
    pub reference: Option<String>,
    pub late_reason: Option<String>,
    /// The document itself (`GET /api/v1/reports/{rid}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl ReportView {
    pub fn of(r: &ReportRow, documents: bool) -> ReportView {
        ReportView {
            id: r.id,
            incident_id: r.incident_id,
            obligation_key: r.obligation_key.clone(),
            jurisdiction: r.jurisdiction.clone(),
            obligation: r.obligation.clone(),
            report: r.report.clone(),
            report_kind: r.report_kind.clone(),
            recipient: r.recipient.clone(),
            version: r.version,
            status: r.status.clone(),
            locale: r.locale.clone(),
            partial: r.partial,
            fields: serde_json::from_str(&r.fields).unwrap_or_default(),
            to_follow: serde_json::from_str(&r.missing).unwrap_or_default(),
            inputs: serde_json::from_str(&r.inputs).unwrap_or_default(),
            subject: r.subject.clone(),
            facts_version: r.facts_version,
            content_hash: r.content_hash.clone(),
            approval_task: r.task_id,
            created_by: r.created_by.clone(),
            created_at: from_micros(r.created_at),
            submitted_at: r.submitted_at.map(from_micros),
            submitted_by: r.submitted_by.clone(),
            via: r.via.clone(),
            reference: r.reference.clone(),
            late_reason: r.late_reason.clone(),
            markdown: documents.then(|| r.markdown.clone()),
            html: documents.then(|| r.html.clone()),
        }
    }
}

/// A draft refused by the lint: 422 with the list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LintRefusal {
    pub detail: String,
    pub missing: Vec<Missing>,
}

/// Why drafting failed.
#[derive(Debug)]
pub enum DraftFailure {
    Engine(EngineError),
    Lint(LintRefusal),
}

impl From<EngineError> for DraftFailure {
    fn from(e: EngineError) -> Self {
        DraftFailure::Engine(e)
    }
}

impl From<crate::store::StoreError> for DraftFailure {
    fn from(e: crate::store::StoreError) -> Self {
        DraftFailure::Engine(e.into())
    }
}

fn report_keys(obligations: &[ObligationRow]) -> String {
    let keys: Vec<&str> = obligations
        .iter()
        .filter(|o| o.kind == ObligationKind::Report.as_str())
        .map(|o| o.key.as_str())
        .collect();
    if keys.is_empty() {
        "none: the incident owes no regulator report under its jurisdictions' packs".into()
    } else {
        keys.join(", ")
    }
}

/// The obligation `key` of the incident, which must be a report.
async fn report_obligation(
    tx: &mut WriteTx,
    incident_id: i64,
    key: &str,
) -> Result<ObligationRow, EngineError> {
    let Some(o) = tx.obligation(incident_id, key).await? else {
        let all = tx.obligations_of(incident_id).await?;
        return Err(EngineError::invalid(
            "obligation",
            format!(
                "incident {incident_id} has no obligation `{key}`; its report obligations: {}",
                report_keys(&all)
            ),
        ));
    };
    if o.kind != ObligationKind::Report.as_str() {
        let all = tx.obligations_of(incident_id).await?;
        return Err(EngineError::invalid(
            "obligation",
            format!(
                "`{key}` is a {} obligation, met without a report; its report obligations: {}",
                o.kind,
                report_keys(&all)
            ),
        ));
    }
    Ok(o)
}

fn content_hash(subject: &str, markdown: &str, html: &str) -> String {
    crate::domain::audit::sha256_hex(format!("{subject}\u{1f}{markdown}\u{1f}{html}").as_bytes())
}

fn no_blank(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

mod submit;

/// The names of a draft's inputs: the pack's `input.<name>`, lower-case letters, digits and _.
fn check_input_names(inputs: &BTreeMap<String, String>) -> Result<(), DraftFailure> {
    if let Some(k) = inputs.keys().find(|k| {
        k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }) {
        return Err(EngineError::invalid(
            &format!("inputs.{k}"),
            "input names are lower-case letters, digits and _ (the pack's `input.<name>`)",
        )
        .into());
    }
    Ok(())
}

/// The pack, the obligation's definition and the report that renders it, for a report
/// obligation of the incident; refused when the pack or the definition is gone.
fn report_def<'p>(
    ctx: &ReportCtx<'p>,
    ob: &ObligationRow,
) -> Result<(&'p Pack, &'p ObligationDef, String), EngineError> {
    let pack = ctx
        .packs
        .get(&ob.jurisdiction.parse().map_err(EngineError::Failed)?)
        .ok_or_else(|| {
            EngineError::Conflict(format!(
                "no jurisdiction pack `{}` is loaded; it is needed to draft `{}`",
                ob.jurisdiction, ob.key
            ))
        })?;
    let def = pack.obligation(&ob.obligation).ok_or_else(|| {
        EngineError::Conflict(format!(
            "the {} pack no longer has obligation `{}`",
            pack.code, ob.obligation
        ))
    })?;
    let report_id = def
        .report
        .clone()
        .ok_or_else(|| EngineError::Conflict(format!("obligation `{}` names no report", ob.key)))?;
    Ok((pack, def, report_id))
}

/// The public address of an announcement.
fn announcement_url(public_url: &str, slug: &str) -> String {
    format!("{}/announcements/{slug}", public_url.trim_end_matches('/'))
}

/// The number of the next version of an obligation's report, unless a submitted version
/// stands in the way ([`submitted_blocks`]).
async fn next_version(
    tx: &mut WriteTx,
    ob: &ObligationRow,
    versions: &[ReportRow],
) -> Result<i64, EngineError> {
    for s in versions.iter().filter(|v| v.status == "submitted") {
        if let Some(why) = submitted_blocks(tx, ob, s).await? {
            return Err(EngineError::Conflict(why));
        }
    }
    Ok(versions.iter().map(|v| v.version).max().unwrap_or(0) + 1)
}

/// A draft, or why the report cannot be drafted: the fields it lacks (with what to do), a
/// partial report that may not be partial, another problem.
fn drafted(result: Result<rr::Draft, DraftError>, key: &str) -> Result<rr::Draft, DraftFailure> {
    match result {
        Ok(d) => Ok(d),
        Err(DraftError::Lint(LintError::Missing(missing))) => {
            let detail = LintError::Missing(missing.clone()).message();
            Err(DraftFailure::Lint(LintRefusal {
                detail: format!("`{key}` cannot be drafted: {detail}"),
                missing,
            }))
        }
        Err(DraftError::Lint(e)) => Err(EngineError::invalid("partial", e.message()).into()),
        Err(e) => Err(EngineError::Conflict(e.to_string()).into()),
    }
}

impl Engine {
    /// What a report draws from outside the incident row, read outside the write lock: the
    /// account of what happened and the notices' figures; the announcement's address only once
    /// a version of it is public (approved).
    async fn report_figures(
        &self,
        incident_id: i64,
        ctx: &ReportCtx<'_>,
    ) -> Result<(Vec<crate::domain::records::Event>, Stats), EngineError> {
        let store = self.store();
        let events = store.timeline(incident_id, 0, 10_000).await?;
        let notice = store.notice_stats(incident_id).await?;
        let subjects = store.subject_count(incident_id).await?;
        let announcement = match store.announcement_of(incident_id).await? {
            Some(a) if !store.public_versions(a.id).await?.is_empty() => Some(a),
            _ => None,
        };
        let stats = Stats {
            subjects: u64::try_from(subjects).ok().filter(|n| *n > 0),
            notified: u64::try_from(notice.notified).ok().filter(|n| *n > 0),
            notices_sent: u64::try_from(notice.sent).ok().filter(|n| *n > 0),
            notices_failed: u64::try_from(notice.failed).ok(),
            announcement_url: announcement.map(|a| announcement_url(ctx.public_url, &a.slug)),
        };
        Ok((events, stats))
    }
}

impl Engine {
    /// Draft the next version of the report for obligation `r.obligation`: resolve its fields
    /// from the incident, lint them (refusing with the list of what is missing), render it,
    /// supersede older unsubmitted versions, and open its approval.
    pub async fn draft_report(
        &self,
        incident_id: i64,
        r: DraftRequest,
        ctx: &ReportCtx<'_>,
        actor: &str,
    ) -> Result<ReportView, DraftFailure> {
        check_input_names(&r.inputs)?;
        let (events, stats) = self.report_figures(incident_id, ctx).await?;
        let store = self.store();
        let now = Utc::now();
        let mut tx = store.begin_write().await?;
        let inc = tx
            .incident(incident_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("there is no incident {incident_id}")))?;
        let ob = report_obligation(&mut tx, incident_id, &r.obligation).await?;
        let (pack, def, report_id) = report_def(ctx, &ob)?;
        unused_inputs(pack, &report_id, &r.inputs)?;
        let versions = tx.reports_for(incident_id, &ob.key).await?;
        let version = next_version(&mut tx, &ob, &versions).await?;
        let assessment = assessment_of(ctx, &inc, &pack.code, &ob, &r.late_reason, now);
        let (all, steps) = rr::timeline(&events, &pack.locale);
        let src = Sources {
            incident: &inc,
            org: ctx.organisation,
            assessment: &assessment,
            stats: &stats,
            events: &all,
            steps: &steps,
            inputs: &r.inputs,
        };
        let header = Header {
            id: None,
            version,
            kind: def.report_kind,
            partial: r.partial,
            jurisdiction: pack.code.to_string(),
            obligation: ob.obligation.clone(),
            title: def.title.clone(),
            law: def.law.clone(),
            recipient_name: ob.recipient.as_deref().map(|x| pack.recipient_name(x)),
            recipient_id: ob.recipient.clone(),
            due_at: ob.due_at.map(from_micros),
            late_reason: no_blank(r.late_reason.clone()),
            grade: assessment.grade_name.clone(),
            drafted_at: now,
        };
        let d = drafted(
            rr::draft(ctx.templates, pack, &report_id, &src, &header),
            &ob.key,
        )?;
        let n = NewReport {
            incident_id,
            obligation_key: ob.key.clone(),
            jurisdiction: ob.jurisdiction.clone(),
            obligation: ob.obligation.clone(),
            report: report_id.clone(),
            report_kind: def
                .report_kind
                .map_or_else(|| "initial".into(), |k| k.to_string()),
            recipient: ob.recipient.clone(),
            version,
            locale: d.locale.clone(),
            inputs: serde_json::to_string(&r.inputs).unwrap_or_else(|_| "{}".into()),
            fields: serde_json::to_string(&d.fields).unwrap_or_else(|_| "[]".into()),
            missing: serde_json::to_string(&d.to_follow).unwrap_or_else(|_| "[]".into()),
            partial: r.partial,
            content_hash: content_hash(&d.subject, &d.markdown, &d.html),
            subject: d.subject,
            markdown: d.markdown,
            html: d.html,
            facts: serde_json::to_string(&inc.facts).unwrap_or_else(|_| "{}".into()),
            facts_version: inc.facts_version,
            created_by: actor.to_string(),
            created_at: to_micros(now),
        };
        let rid = tx.insert_report(&n).await?;
        let superseded = supersede(&mut tx, &versions, version, actor, now).await?;
        let task = open_approval(&mut tx, &inc, rid, &n, &def.title, &ob, ctx, now).await?;
        tx.set_report_task(rid, task).await?;
        tx.append(&[NewEvent::new(
            now,
            actor,
            "report.drafted",
            Some(incident_id),
            &json!({
                "report_id": rid, "obligation": ob.key, "report": report_id, "version": version,
                "partial": r.partial, "to_follow": n.missing_ids(), "facts_version": inc.facts_version,
                "content_hash": n.content_hash, "approval_task": task, "superseded": superseded,
            }),
        )])
        .await?;
        let row = tx
            .report(rid)
            .await?
            .ok_or_else(|| EngineError::Failed("the report just drafted is gone".into()))?;
        tx.commit().await?;
        Ok(ReportView::of(&row, false))
    }

    /// Every version of an incident's reports.
    pub async fn reports(&self, incident_id: i64) -> Result<Vec<ReportView>, EngineError> {
        let store = self.store();
        if store.incident(incident_id).await?.is_none() {
            return Err(EngineError::NotFound(format!(
                "there is no incident {incident_id}"
            )));
        }
        let rows = store.reports_of(incident_id).await?;
        Ok(rows.iter().map(|r| ReportView::of(r, false)).collect())
    }

    /// One version, with its documents.
    pub async fn report(&self, rid: i64) -> Result<ReportRow, EngineError> {
        self.store()
            .report(rid)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("there is no report {rid}")))
    }
}

impl NewReport {
    fn missing_ids(&self) -> Vec<String> {
        serde_json::from_str::<Vec<Missing>>(&self.missing)
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.field)
            .collect()
    }
}

/// Why a submitted version `s` stops a new draft for its obligation: the obligation is met
/// by it, or its submission is still on its way. A submission whose delivery died does not:
/// the obligation is open again and a new version is submitted in its place.
async fn submitted_blocks(
    tx: &mut WriteTx,
    ob: &ObligationRow,
    s: &ReportRow,
) -> Result<Option<String>, EngineError> {
    let delivery = match s.delivery_key.as_deref() {
        Some(k) => tx.delivery_outcome(k).await?,
        None => None,
    };
    Ok(match delivery {
        Some(d) if d.status == "dead" && ob.is_open() => None,
        Some(d) if d.status != "sent" && d.status != "dead" => Some(format!(
            "version {} (report {}) of `{}` is being submitted (delivery {} is {}): it is met when the regulator's channel accepts it; if it dies, draft again",
            s.version, s.id, ob.key, d.id, d.status
        )),
        _ => Some(format!(
            "`{}` was met by version {} (report {}), submitted and immutable; what changed since goes in the supplementary report the pack owes",
            ob.key, s.version, s.id
        )),
    })
}

/// Inputs the report would not show are refused, never ignored: a report shows the pack's
/// `input.<name>` fields (required by it, or given).
fn unused_inputs(
    pack: &crate::domain::regulation::Pack,
    report_id: &str,
    inputs: &BTreeMap<String, String>,
) -> Result<(), EngineError> {
    let taken: Vec<&str> = pack
        .fields
        .values()
        .filter_map(|f| f.from.strip_prefix("input."))
        .collect();
    let unused: Vec<&str> = inputs
        .keys()
        .map(String::as_str)
        .filter(|k| !taken.contains(k))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    let mut taken = taken;
    taken.sort_unstable();
    taken.dedup();
    Err(EngineError::invalid(
        &format!("inputs.{}", unused[0]),
        format!(
            "report `{report_id}` of the {} pack does not use the input{} {}: {} would be ignored. \
             The inputs it takes: {}. Figures such as the people affected are facts, per \
             jurisdiction: PATCH /api/v1/incidents/{{id}}/facts {{\"by_jurisdiction\": {{\"{}\": {{\"affected_subjects\": …}}}}}}",
            pack.code,
            if unused.len() == 1 { "" } else { "s" },
            unused
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if unused.len() == 1 { "it" } else { "they" },
            if taken.is_empty() {
                "none".to_string()
            } else {
                taken.join(", ")
            },
            pack.code,
        ),
    ))
}

/// The pack's assessment of the incident (grade) and the obligation's deadline.
fn assessment_of(
    ctx: &ReportCtx<'_>,
    inc: &Incident,
    code: &crate::domain::facts::Jurisdiction,
    ob: &ObligationRow,
    late_reason: &Option<String>,
    now: DateTime<Utc>,
) -> AssessmentInfo {
    let started = BTreeMap::new();
    let a = ctx.packs.assess(&Case {
        incident: inc,
        operator_type: ctx.organisation.operator_type,
        organisation_jurisdictions: &ctx.organisation.jurisdictions,
        submitted: &[],
        started: &started,
        now,
    });
    let grade = a.jurisdictions.iter().find(|j| &j.jurisdiction == code);
    AssessmentInfo {
        grade: grade.map(|g| g.grade.id.clone()),
        grade_name: grade.map(|g| g.grade.name.clone()),
        why: grade.map(|g| g.grade.why.clone()),
        deadline: ob.due_at.map(from_micros),
        late_reason: no_blank(late_reason.clone()),
    }
}

/// Older versions not submitted become `superseded`; their open approvals are closed.
async fn supersede(
    tx: &mut WriteTx,
    older: &[ReportRow],
    version: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, EngineError> {
    let mut out = Vec::new();
    for v in older
        .iter()
        .filter(|v| v.status != "submitted" && v.status != "superseded")
    {
        tx.set_report_status(v.id, "superseded", to_micros(now))
            .await?;
        if let Some(task) = v.task_id
            && let Some(mut t) = tx.task_by_id(task).await?
            && !t.is_closed()
        {
            t.status = "rejected".into();
            t.closed_by = Some(actor.to_string());
            t.closed_at = Some(to_micros(now));
            t.note = Some(format!("superseded by version {version}"));
            t.updated_at = to_micros(now);
            tx.update_task(&t).await?;
        }
        out.push(v.id);
    }
    Ok(out)
}

/// The version's approval task, `report-<rid>`, decided by `[reports] approvers`.
#[allow(clippy::too_many_arguments)]
async fn open_approval(
    tx: &mut WriteTx,
    inc: &Incident,
    rid: i64,
    n: &NewReport,
    title: &str,
    ob: &ObligationRow,
    ctx: &ReportCtx<'_>,
    now: DateTime<Utc>,
) -> Result<i64, EngineError> {
    let key = format!("{TASK_PREFIX}{rid}");
    let department = ctx
        .approvers
        .first()
        .cloned()
        .unwrap_or_else(|| ob.owner.clone());
    tx.insert_tasks(
        &[NewTask {
            incident_id: inc.id,
            key: key.clone(),
            playbook: None,
            title: format!("Approve report v{}: {title}", n.version),
            department,
            description: format!(
                "Review report {rid} ({} version {}{}) to {} and approve it for submission: GET /api/v1/reports/{rid}?format=html",
                n.obligation_key,
                n.version,
                if n.partial { ", partial" } else { "" },
                n.recipient.as_deref().unwrap_or("the regulator"),
            ),
            approval: true,
            approvers: ctx.approvers.to_vec(),
            depends_on: Vec::new(),
            after_task: None,
            due_offset_secs: 0,
            due_at: ob.due_at,
        }],
        to_micros(now),
    )
    .await?;
    let t = tx
        .task_by_key(inc.id, &key)
        .await?
        .ok_or_else(|| EngineError::Failed(format!("the approval task `{key}` is gone")))?;
    Ok(t.id)
}

/// The report version a task approves, if it is a report's approval.
pub(crate) fn report_of_task(t: &TaskRow) -> Option<i64> {
    t.key.strip_prefix(TASK_PREFIX)?.parse().ok()
}

/// Why a report's approval may not be approved: the version is no longer the current draft,
/// or the lint (against the pack as loaded now) finds required fields missing that may not
/// follow.
pub(crate) async fn approval_refusal(
    tx: &mut WriteTx,
    t: &TaskRow,
    packs: Option<&Packs>,
) -> Result<Option<String>, EngineError> {
    let Some(rid) = report_of_task(t) else {
        return Ok(None);
    };
    let Some(r) = tx.report(rid).await? else {
        return Ok(Some(format!(
            "approval {} names report {rid}, which does not exist",
            t.id
        )));
    };
    if r.status != "draft" {
        return Ok(Some(format!(
            "report {rid} (version {}) is {}: only the current draft can be approved",
            r.version, r.status
        )));
    }
    let Some(pack) = packs.and_then(|p| p.get(&r.jurisdiction.parse().ok()?)) else {
        return Ok(Some(format!(
            "no jurisdiction pack `{}` is loaded: report {rid} cannot be checked",
            r.jurisdiction
        )));
    };
    let Some(spec) = pack.reports.get(&r.report) else {
        return Ok(Some(format!(
            "the {} pack no longer has report `{}`: draft a new version",
            pack.code, r.report
        )));
    };
    let mut fields: Vec<Field> = serde_json::from_str(&r.fields).unwrap_or_default();
    for f in &mut fields {
        f.to_follow = false;
    }
    match rr::lint(pack, &r.report, spec, &mut fields, r.partial, r.incident_id) {
        Ok(_) => Ok(None),
        Err(e) => Ok(Some(format!(
            "report {rid} (version {}) cannot be approved: {}. Draft a new version with them (POST /api/v1/incidents/{}/reports). Rejecting it is allowed.",
            r.version,
            e.message(),
            r.incident_id
        ))),
    }
}

/// After a report's approval is decided: the version becomes `approved` or `rejected`.
pub(crate) async fn approval_decided(
    tx: &mut WriteTx,
    t: &TaskRow,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<NewEvent>, EngineError> {
    let Some(rid) = report_of_task(t) else {
        return Ok(None);
    };
    let status = match t.status.as_str() {
        "approved" => "approved",
        "rejected" => "rejected",
        _ => return Ok(None),
    };
    tx.set_report_status(rid, status, to_micros(now)).await?;
    Ok(Some(NewEvent::new(
        now,
        actor,
        if status == "approved" {
            "report.approved"
        } else {
            "report.rejected"
        },
        Some(t.incident_id),
        &json!({"report_id": rid, "approval_task": t.id, "approvers": t.approvers()}),
    )))
}
