//! Regulator reports: each field of a jurisdiction pack's report resolved from the incident into
//! the words the report shows (in the pack's language and time zone), the required-field lint,
//! and the data the `regulator/*` templates render from. Pure: the engine gathers the sources.
//!
//! A field's `from` names its source (`[fields.<id>] from` in the pack):
//!
//! | source | value |
//! |---|---|
//! | `facts.<fact>` | the fact as the pack's jurisdiction sees it (its own `by_jurisdiction` count and data types); data types in words, counts with separators, yes/no |
//! | `incident.<attr or clock>` | times in the pack's time zone; category and status in words |
//! | `organisation.name\|contact\|operator_type` | `[organisation]` |
//! | `assessment.grade\|grade_name\|why\|late_reason\|deadline` | the pack's assessment |
//! | `stats.subjects\|notified\|notices_sent\|notices_failed\|announcement_url` | the notices |
//! | `timeline.events\|steps` | a chronological account from the audit events |
//! | `input.<name>` | typed by a person when drafting |
//!
//! Template data (`report`, beside `org`, `incident` and `now`):
//!
//! ```text
//! report  id, version, kind, kind_name, partial, jurisdiction, obligation, title, law,
//!         recipient { id, name }, deadline (shown), late_reason, grade, drafted_at (shown),
//!         fields [ { id, n, numeral, label, value, lines, to_follow } ]  (the pack's order),
//!         field { <id>: the same },  to_follow [ labels ], to_follow_text (joined)
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::OrganisationConfig;
use crate::domain::facts::{Audience, Facts};
use crate::domain::message::ChannelKind;
use crate::domain::records::Incident;
use crate::domain::regulation::{OperatorType, Pack, ReportKind, ReportSpec};
use crate::render::{RenderError, Templates};

/// The kind folder of report templates (`regulator/cn_initial`).
pub const PREFIX: &str = "regulator/";

/// What a report marks a field that follows later.
pub const TO_FOLLOW_ZH: &str = "待补充";
pub const TO_FOLLOW_EN: &str = "To follow";

/// The pack's assessment of the incident, for `assessment.*`.
#[derive(Debug, Clone, Default)]
pub struct AssessmentInfo {
    pub grade: Option<String>,
    pub grade_name: Option<String>,
    pub why: Option<String>,
    pub deadline: Option<DateTime<Utc>>,
    pub late_reason: Option<String>,
}

/// Counts from the notices, for `stats.*`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub subjects: Option<u64>,
    pub notified: Option<u64>,
    pub notices_sent: Option<u64>,
    pub notices_failed: Option<u64>,
    pub announcement_url: Option<String>,
}

/// One line of a chronological account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub text: String,
}

/// Everything fields are resolved from.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    pub incident: &'a Incident,
    pub org: &'a OrganisationConfig,
    pub assessment: &'a AssessmentInfo,
    pub stats: &'a Stats,
    /// Every audited event, condensed (`timeline.events`).
    pub events: &'a [Step],
    /// The steps taken after becoming aware (`timeline.steps`).
    pub steps: &'a [Step],
    pub inputs: &'a BTreeMap<String, String>,
}

/// One field of a report, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Field {
    pub id: String,
    pub label: String,
    /// The words shown; `None` when there is no value yet.
    pub value: Option<String>,
    /// Marked "to follow" in a partial report.
    #[serde(default)]
    pub to_follow: bool,
    /// Required by the report (others appear because a person gave them).
    #[serde(default)]
    pub required: bool,
}

/// A required field without a value, and how to give it one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Missing {
    pub field: String,
    pub label: String,
    pub from: String,
    /// What to do, e.g. "PATCH …/facts {\"cause\": …}".
    pub how: String,
}

/// Why a report cannot be drafted (or approved) as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LintError {
    /// Required fields lack values (those a partial report may leave to follow excluded).
    Missing(Vec<Missing>),
    /// A partial version was asked for a report that may not be partial.
    PartialNotAllowed(String),
}

impl LintError {
    pub fn message(&self) -> String {
        match self {
            LintError::Missing(m) => format!(
                "the report lacks {} required field{}: {}",
                m.len(),
                if m.len() == 1 { "" } else { "s" },
                m.iter()
                    .map(|x| format!("{} (`{}`): {}", x.label, x.field, x.how))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            LintError::PartialNotAllowed(why) => why.clone(),
        }
    }
}

fn is_zh(locale: &str) -> bool {
    locale.to_ascii_lowercase().starts_with("zh")
}

/// A pack label written `中文 / English` shows its half in the report's language.
pub fn display_label(label: &str, locale: &str) -> String {
    match label.split_once(" / ") {
        Some((zh, en)) => if is_zh(locale) { zh } else { en }.trim().to_string(),
        None => label.trim().to_string(),
    }
}

/// A time as the regulator reads it: in the pack's time zone, the offset shown.
pub fn show_time(t: DateTime<Utc>, tz: FixedOffset, locale: &str) -> String {
    let f = if is_zh(locale) {
        "%Y年%m月%d日 %H:%M（UTC%:z）"
    } else {
        "%Y-%m-%d %H:%M (UTC%:z)"
    };
    t.with_timezone(&tz).format(f).to_string()
}

/// `1234567` → `1,234,567`.
pub fn separated(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn yes_no(b: bool, zh: bool) -> String {
    match (b, zh) {
        (true, true) => "是",
        (false, true) => "否",
        (true, false) => "yes",
        (false, false) => "no",
    }
    .to_string()
}

fn non_blank(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

fn codes(items: &[String], zh: bool) -> String {
    items
        .iter()
        .map(|c| crate::render::helpers::label(c, zh).map_or_else(|| c.clone(), str::to_string))
        .collect::<Vec<_>>()
        .join(if zh { "、" } else { ", " })
}

fn account(steps: &[Step], tz: FixedOffset, locale: &str) -> Option<String> {
    if steps.is_empty() {
        return None;
    }
    Some(
        steps
            .iter()
            .map(|s| format!("{} — {}", show_time(s.at, tz, locale), s.text))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn operator_words(o: OperatorType, zh: bool) -> &'static str {
    match (o, zh) {
        (OperatorType::Cii, true) => "关键信息基础设施运营者",
        (OperatorType::StateOrgan, true) => "中央和国家机关",
        (OperatorType::Other, true) => "其他网络运营者",
        (OperatorType::Cii, false) => "operator of critical information infrastructure",
        (OperatorType::StateOrgan, false) => "central or state organ",
        (OperatorType::Other, false) => "network operator",
    }
}

/// The value of one `from` in `pack`'s language, or `None` when there is none yet.
pub fn resolve(from: &str, src: &Sources<'_>, pack: &Pack) -> Option<String> {
    let loc = pack.locale.as_str();
    let zh = is_zh(loc);
    let tz = pack.timezone;
    let inc = src.incident;
    let (source, name) = from.split_once('.').unwrap_or((from, ""));
    match source {
        // The jurisdiction's own figures where the facts give them (`by_jurisdiction`).
        "facts" => fact(
            name,
            &inc.facts.for_jurisdiction(&pack.code),
            loc,
            &src.org.default_locale,
        ),
        "incident" => {
            let t = |x: Option<DateTime<Utc>>| x.map(|t| show_time(t, tz, loc));
            match name {
                "id" => Some(inc.id.to_string()),
                "title" => title(inc, loc, &src.org.default_locale),
                "summary" => non_blank(Some(&inc.summary)),
                "category" => Some(codes(&[inc.category.to_string()], zh)),
                "severity" => Some(inc.severity.to_string()),
                "status" => Some(codes(&[inc.status.to_string()], zh)),
                "first_seen_at" => t(Some(inc.first_seen_at)),
                "discovered_at" => t(Some(inc.discovered_at)),
                "declared_at" => t(inc.declared_at),
                "aware_at" => t(inc.aware_at),
                "assessed_notifiable_at" => t(inc.assessed_notifiable_at),
                "handling_closed_at" => t(inc.handling_closed_at),
                "contained_at" => t(inc.contained_at),
                "closed_at" => t(inc.closed_at),
                _ => None,
            }
        }
        "organisation" => match name {
            "name" => non_blank(Some(&src.org.name)),
            "contact" => inc
                .facts
                .contact
                .as_ref()
                .and_then(|t| t.get(loc, Audience::Internal, &src.org.default_locale))
                .map(String::from)
                .or_else(|| non_blank(Some(&src.org.contact))),
            "operator_type" => Some(operator_words(src.org.operator_type, zh).to_string()),
            _ => None,
        },
        "assessment" => {
            let a = src.assessment;
            match name {
                "grade" => non_blank(a.grade.as_deref()),
                "grade_name" => a
                    .grade_name
                    .as_deref()
                    .map(|g| display_label(g, loc))
                    .filter(|g| !g.is_empty()),
                "why" => non_blank(a.why.as_deref()),
                "late_reason" => non_blank(a.late_reason.as_deref()),
                "deadline" => a.deadline.map(|t| show_time(t, tz, loc)),
                _ => None,
            }
        }
        "stats" => {
            let s = src.stats;
            match name {
                "subjects" => s.subjects.map(separated),
                "notified" => s.notified.map(separated),
                "notices_sent" => s.notices_sent.map(separated),
                "notices_failed" => s.notices_failed.map(separated),
                "announcement_url" => non_blank(s.announcement_url.as_deref()),
                _ => None,
            }
        }
        "timeline" => match name {
            "events" => account(src.events, tz, loc),
            "steps" => account(src.steps, tz, loc),
            _ => None,
        },
        "input" => non_blank(src.inputs.get(name).map(String::as_str)),
        _ => None,
    }
}

/// The incident's name in `locale`: the `title` fact's text for it when the fact is given
/// (none in that language: `None`), else the incident's title.
pub fn title(inc: &Incident, locale: &str, default_locale: &str) -> Option<String> {
    match &inc.facts.title {
        Some(t) => t
            .get(locale, Audience::Internal, default_locale)
            .map(String::from),
        None => non_blank(Some(&inc.title)),
    }
}

/// A fact in the report's words. Free text is the internal (regulator) version in the report's
/// language; none in that language is no value (the lint then names it).
fn fact(name: &str, f: &Facts, locale: &str, default_locale: &str) -> Option<String> {
    let zh = is_zh(locale);
    if crate::domain::facts::TEXT_FACTS.contains(&name) {
        return f
            .text(name)?
            .get(locale, Audience::Internal, default_locale)
            .map(String::from);
    }
    match name {
        "affected_subjects" => f.affected_subjects.map(|n| {
            let mut s = separated(n);
            if f.affected_subjects_estimated == Some(true) {
                s.push_str(if zh { "（估计）" } else { " (estimated)" });
            }
            s
        }),
        "records_affected" => f.records_affected.map(separated),
        "economic_loss_cny" => f.economic_loss_cny.map(|n| {
            if zh {
                format!("{}元", separated(n))
            } else {
                format!("CNY {}", separated(n))
            }
        }),
        "data_types" if f.data_types.is_empty() => None,
        "data_types" => Some(codes(
            &f.data_types
                .iter()
                .map(|d| d.as_str().to_string())
                .collect::<Vec<_>>(),
            zh,
        )),
        "jurisdictions" if f.jurisdictions.is_empty() => None,
        "jurisdictions" => Some(
            f.jurisdictions
                .iter()
                .map(|j| j.as_str())
                .collect::<Vec<_>>()
                .join(if zh { "、" } else { ", " }),
        ),
        _ => {
            // Every other fact by its JSON: text as written, flags as yes/no, codes as codes.
            let v = serde_json::to_value(f).ok()?;
            match v.get(name)? {
                Value::String(s) => non_blank(Some(s)),
                Value::Bool(b) => Some(yes_no(*b, zh)),
                Value::Number(n) => n.as_u64().map(separated).or(Some(n.to_string())),
                _ => None,
            }
        }
    }
}

/// [`how_to_fill`] in the report's language: a free-text fact is asked for in `locale`.
pub fn how_in(from: &str, incident_id: i64, locale: &str) -> String {
    match from.strip_prefix("facts.") {
        Some(name) if crate::domain::facts::TEXT_FACTS.contains(&name) => format!(
            "give the fact's text in {locale} (the report's language): PATCH /api/v1/incidents/{incident_id}/facts {{\"{name}\": {{\"{locale}\": \"…\", …}}}} — a plain string is the organisation's default locale only"
        ),
        _ => how_to_fill(from, incident_id),
    }
}

/// How to give a missing field its value.
pub fn how_to_fill(from: &str, incident_id: i64) -> String {
    let (source, name) = from.split_once('.').unwrap_or((from, ""));
    match source {
        "facts" => format!(
            "set the fact: PATCH /api/v1/incidents/{incident_id}/facts {{\"{name}\": …}} (incidentd facts {incident_id} --set {name}=…)"
        ),
        "input" => format!(
            "give it when drafting: \"inputs\": {{\"{name}\": \"…\"}} (incidentd report draft {incident_id} --input {name}=…)"
        ),
        "incident" => format!(
            "the incident's `{name}` is not set yet: set it on the incident (it is set by the transition or the declaration that starts it)"
        ),
        "organisation" => {
            format!("set [organisation] {name} in the configuration (or the fact `contact`)")
        }
        "assessment" => format!(
            "the assessment has no `{name}` yet: the jurisdiction's grade and deadline come from the facts"
        ),
        "stats" => format!(
            "no `{name}` yet: import the subjects and start the notice campaign (POST /api/v1/incidents/{incident_id}/notices)"
        ),
        "timeline" => "the incident's timeline has no entries yet".to_string(),
        _ => format!("`{from}` has no value"),
    }
}

/// Resolve every field the report shows: its required fields in the pack's order, then any
/// other field of the pack a person gave as an input (e.g. the ransom demanded).
pub fn resolve_fields(pack: &Pack, spec: &ReportSpec, src: &Sources<'_>) -> Vec<Field> {
    let mut out = Vec::new();
    for id in &spec.required {
        let Some(def) = pack.fields.get(id) else {
            continue;
        };
        out.push(Field {
            id: id.clone(),
            label: display_label(&def.label, &pack.locale),
            value: resolve(&def.from, src, pack),
            to_follow: false,
            required: true,
        });
    }
    for (id, def) in &pack.fields {
        if spec.required.contains(id) || !def.from.starts_with("input.") {
            continue;
        }
        if let Some(value) = resolve(&def.from, src, pack) {
            out.push(Field {
                id: id.clone(),
                label: display_label(&def.label, &pack.locale),
                value: Some(value),
                to_follow: false,
                required: false,
            });
        }
    }
    out
}

/// The required-field lint. A complete report needs every required field; a partial one (only
/// initial and supplementary reports, and only where the pack names `may_follow` fields) may
/// leave those fields to follow — they are marked in `fields` and listed in the `Ok`.
pub fn lint(
    pack: &Pack,
    report_id: &str,
    spec: &ReportSpec,
    fields: &mut [Field],
    partial: bool,
    incident_id: i64,
) -> Result<Vec<Missing>, LintError> {
    if partial {
        if spec.kind == ReportKind::Closing {
            return Err(LintError::PartialNotAllowed(format!(
                "`{report_id}` is a closing report: it is complete or not sent; only initial and supplementary reports may be partial"
            )));
        }
        if spec.may_follow.is_empty() {
            return Err(LintError::PartialNotAllowed(format!(
                "`{report_id}` ({}) names no fields that may follow ([reports.{report_id}] may_follow in the {} pack): it must be complete",
                spec.kind, pack.code
            )));
        }
    }
    let mut refused = Vec::new();
    let mut follows = Vec::new();
    for f in fields
        .iter_mut()
        .filter(|f| f.required && f.value.is_none())
    {
        let from = pack
            .fields
            .get(&f.id)
            .map(|d| d.from.clone())
            .unwrap_or_default();
        let m = Missing {
            field: f.id.clone(),
            label: f.label.clone(),
            how: how_in(&from, incident_id, &pack.locale),
            from,
        };
        if partial && spec.may_follow.contains(&f.id) {
            f.to_follow = true;
            follows.push(m);
        } else {
            refused.push(m);
        }
    }
    if refused.is_empty() {
        Ok(follows)
    } else {
        Err(LintError::Missing(refused))
    }
}

/// The words for a report kind in the report's language.
pub fn kind_name(kind: ReportKind, locale: &str) -> &'static str {
    match (kind, is_zh(locale)) {
        (ReportKind::Initial, true) => "初次报告",
        (ReportKind::Supplementary, true) => "补充报告",
        (ReportKind::Closing, true) => "总结报告",
        (ReportKind::Initial, false) => "Initial notification",
        (ReportKind::Supplementary, false) => "Supplementary information",
        (ReportKind::Closing, false) => "Closing report",
    }
}

const NUMERALS: [&str; 20] = [
    "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三", "十四",
    "十五", "十六", "十七", "十八", "十九", "二十",
];

/// The report's header: what the template shows besides the fields.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub id: Option<i64>,
    pub version: i64,
    pub kind: Option<ReportKind>,
    pub partial: bool,
    pub jurisdiction: String,
    pub obligation: String,
    pub title: String,
    pub law: String,
    pub recipient_id: Option<String>,
    pub recipient_name: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub late_reason: Option<String>,
    pub grade: Option<String>,
    pub drafted_at: DateTime<Utc>,
}

/// The `report` value templates see.
pub fn report_value(pack: &Pack, h: &Header, fields: &[Field]) -> Value {
    let loc = pack.locale.as_str();
    let to_follow = if is_zh(loc) {
        TO_FOLLOW_ZH
    } else {
        TO_FOLLOW_EN
    };
    let list: Vec<Value> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let shown = if f.to_follow {
                Some(to_follow.to_string())
            } else {
                f.value.clone()
            };
            json!({
                "id": f.id,
                "n": i + 1,
                "numeral": NUMERALS.get(i).map_or_else(|| (i + 1).to_string(), |s| s.to_string()),
                "label": f.label,
                "value": shown,
                "lines": shown.as_deref().map(|v| v.lines().collect::<Vec<_>>()).unwrap_or_default(),
                "to_follow": f.to_follow,
            })
        })
        .collect();
    let by_id: serde_json::Map<String, Value> = fields
        .iter()
        .zip(&list)
        .map(|(f, v)| (f.id.clone(), v.clone()))
        .collect();
    let kind = h.kind.unwrap_or(ReportKind::Initial);
    json!({
        "id": h.id,
        "version": h.version,
        "kind": kind.as_str(),
        "kind_name": kind_name(kind, loc),
        "partial": h.partial,
        "jurisdiction": h.jurisdiction,
        "obligation": h.obligation,
        "title": display_label(&h.title, loc),
        "law": h.law,
        "recipient": { "id": h.recipient_id, "name": h.recipient_name.as_deref().map(|n| display_label(n, loc)) },
        "deadline": h.due_at.map(|t| show_time(t, pack.timezone, loc)),
        "late_reason": h.late_reason,
        "grade": h.grade.as_deref().map(|g| display_label(g, loc)),
        "drafted_at": show_time(h.drafted_at, pack.timezone, loc),
        "fields": list,
        "field": by_id,
        "to_follow": fields.iter().filter(|f| f.to_follow).map(|f| f.label.clone()).collect::<Vec<_>>(),
        "to_follow_text": fields.iter().filter(|f| f.to_follow).map(|f| f.label.as_str()).collect::<Vec<_>>()
            .join(if is_zh(loc) { "、" } else { ", " }),
    })
}

mod timeline;
pub use timeline::timeline;

/// A report rendered and linted, ready to store as a draft.
#[derive(Debug, Clone)]
pub struct Draft {
    pub fields: Vec<Field>,
    /// Required fields left to follow (a partial report).
    pub to_follow: Vec<Missing>,
    pub subject: String,
    /// The `text` part: Markdown.
    pub markdown: String,
    pub html: String,
    pub locale: String,
}

/// Why a report was not drafted.
#[derive(Debug, Clone)]
pub enum DraftError {
    /// The pack has no such report (the pack changed since the obligation was assessed).
    UnknownReport(String),
    Lint(LintError),
    Render(RenderError),
}

impl std::fmt::Display for DraftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DraftError::UnknownReport(m) => f.write_str(m),
            DraftError::Lint(l) => f.write_str(&l.message()),
            DraftError::Render(r) => write!(f, "the report template failed: {r}"),
        }
    }
}

/// Resolve, lint and render report `report_id` of `pack` (in the pack's language): the
/// template gets `org`, `incident`, `report` and `now`.
pub fn draft(
    templates: &Templates,
    pack: &Pack,
    report_id: &str,
    src: &Sources<'_>,
    header: &Header,
) -> Result<Draft, DraftError> {
    let spec = pack.reports.get(report_id).ok_or_else(|| {
        DraftError::UnknownReport(format!(
            "the {} pack has no report `{report_id}`; it has {}",
            pack.code,
            pack.reports.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let mut fields = resolve_fields(pack, spec, src);
    // The incident's name (事件名称) in the report's language.
    let name = title(src.incident, &pack.locale, &src.org.default_locale);
    if name.is_none() {
        return Err(DraftError::Lint(LintError::Missing(vec![Missing {
            field: "title".into(),
            label: display_label("事件名称 / Incident name", &pack.locale),
            from: "facts.title".into(),
            how: how_in("facts.title", src.incident.id, &pack.locale),
        }])));
    }
    let to_follow = lint(
        pack,
        report_id,
        spec,
        &mut fields,
        header.partial,
        src.incident.id,
    )
    .map_err(DraftError::Lint)?;
    let mut header = header.clone();
    header.kind = Some(spec.kind);
    // Templates see the facts as the report's jurisdiction does (its own count, data types).
    let mut own = src.incident.clone();
    own.facts = own.facts.for_jurisdiction(&pack.code);
    own.title = name.unwrap_or_default();
    let incident = serde_json::to_value(&own).unwrap_or(Value::Null);
    // Free text in the report's language, the internal (regulator) version.
    let mut incident = super::context::normalise_incident(&incident);
    super::context::localise_facts(
        &mut incident,
        &own.facts,
        &pack.locale,
        Audience::Internal,
        &src.org.default_locale,
    );
    let data = json!({
        "org": super::context::org_value(src.org),
        "incident": incident,
        "report": report_value(pack, &header, &fields),
        "recipient": super::context::sample_recipient(),
        "links": { "ack": null, "console": null },
        "notice": super::context::notice_value(None),
        "now": header.drafted_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let r = templates
        .render_detailed(&spec.template, ChannelKind::Email, &pack.locale, &data)
        .map_err(DraftError::Render)?;
    Ok(Draft {
        fields,
        to_follow,
        subject: r.content.subject.unwrap_or_default(),
        markdown: r.content.text,
        html: r.content.html.unwrap_or_default(),
        locale: r.locale,
    })
}

/// A plausible report for previews (`render --sample`, `check`): every regulator template
/// renders against it.
pub fn sample_report() -> Value {
    let f = |id: &str, n: usize, numeral: &str, label: &str, value: Option<&str>| {
        json!({"id": id, "n": n, "numeral": numeral, "label": label, "value": value.unwrap_or(TO_FOLLOW_ZH),
               "lines": value.map(|v| vec![v]).unwrap_or_else(|| vec![TO_FOLLOW_ZH]), "to_follow": value.is_none()})
    };
    let fields = vec![
        f("unit", 1, "一", "报告单位", Some("示例科技有限公司")),
        f(
            "discovered_at",
            2,
            "二",
            "发现时间",
            Some("2025年06月01日 14:05（UTC+08:00）"),
        ),
        f("cause", 3, "三", "初步原因", None),
    ];
    let by_id: serde_json::Map<String, Value> = fields
        .iter()
        .map(|v| (v["id"].as_str().unwrap_or_default().to_string(), v.clone()))
        .collect();
    json!({
        "id": 7, "version": 1, "kind": "initial", "kind_name": "初次报告", "partial": true,
        "jurisdiction": "CN", "obligation": "cac_report_other", "title": "网络安全事件报告",
        "law": "网络安全事件报告管理办法",
        "recipient": {"id": "cac_provincial", "name": "属地省级网信部门"},
        "deadline": "2025年06月01日 18:05（UTC+08:00）", "late_reason": null, "grade": "较大",
        "drafted_at": "2025年06月01日 15:00（UTC+08:00）",
        "fields": fields, "field": by_id, "to_follow": ["初步原因"], "to_follow_text": "初步原因",
    })
}

#[cfg(test)]
mod tests;
