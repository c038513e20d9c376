//! The public announcement: published when a person decides, or when the notice campaign finds
//! individual notice impractical. It renders the incident's current facts in every locale of
//! the announcement template and, in one transaction with its audit event, creates the
//! incident's announcement (its slug never changes) or appends a version when the words
//! changed. Publishing the same words again changes nothing.
//!
//! A new version is not public yet: it waits for its approval gate (task
//! `announcement-<announcement>-v<version>`, decided by every department in
//! `[announcements] approvers`, Public Relations and Legal by default), whose departments are
//! paged. Only when approved does it become the version served at `/announcements/{slug}`,
//! listed and in the feed; then it is pushed to the webhook and meets the public-announcement
//! obligation ([`approval_decided`]). A newer version supersedes one still waiting.
//!
//! Callers: [`Engine::publish_announcement`] (its own transaction), or [`publish_in`] inside a
//! caller's transaction (e.g. the notice campaign deciding, in the same commit, that a public
//! announcement replaces individual notices). Both need an [`AnnounceCtx`], which
//! `Live::announce_ctx()` gives from the live configuration.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Engine, EngineError};
use crate::config::{AnnouncementsConfig, OrganisationConfig};
use crate::domain::audit::sha256_hex;
use crate::domain::message::{ChannelKind, Content, Purpose};
use crate::domain::records::Incident;
use crate::domain::time::{from_micros, to_micros};
use crate::render::helpers::REQUIRED_EMPTY;
use crate::render::{RenderError, Templates};
use crate::store::{
    AnnouncementGateRow, AnnouncementRow, AnnouncementVersionRow, NewDelivery, NewEvent, NewTask,
    TaskRow, WriteTx,
};

/// The approval task of version `v` of announcement `a` is `announcement-<a>-v<v>`.
pub const TASK_PREFIX: &str = "announcement-";

/// What publishing needs from the live configuration.
pub struct AnnounceCtx<'a> {
    pub templates: &'a Templates,
    pub org: &'a OrganisationConfig,
    pub config: &'a AnnouncementsConfig,
    /// `server.public_url`: the page's address in the webhook push and the feed.
    pub public_url: &'a str,
}

/// One language of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LocaleText {
    pub locale: String,
    pub title: String,
    /// The body, HTML (values escaped by the template engine).
    pub html: String,
}

/// A version, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnnouncementVersion {
    pub incident_id: i64,
    pub slug: String,
    /// 1, 2, …: each publication that changed the words.
    pub version: i64,
    /// `awaiting_approval` (not public yet), `public`, `rejected` or `superseded`.
    pub status: String,
    /// When it became public (for a version not public yet: when it was drafted).
    pub published_at: DateTime<Utc>,
    /// Its approval gate (`POST /api/v1/approvals/{id}/approve`), and who decides it.
    pub approval_task: Option<i64>,
    pub approvers: Vec<String>,
    pub actor: String,
    pub reason: String,
    pub drill: bool,
    /// The public page of this version.
    pub url: String,
    pub template: String,
    /// Every language, the organisation's default first.
    pub locales: Vec<LocaleText>,
    /// SHA-256 of the words (`locales`): the same words are never a new version.
    pub content_hash: String,
    /// The facts version and the SHA-256 of the facts it was rendered from.
    pub facts_version: i64,
    pub facts_hash: String,
}

/// What [`publish_in`] did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// The newest version (the one just appended, or the unchanged latest one).
    #[serde(flatten)]
    pub version: AnnouncementVersion,
    /// False when the words were unchanged and nothing was written.
    pub created: bool,
    /// The signed webhook push enqueued for this version (`[announcements] webhook`), once it
    /// is public.
    pub webhook_delivery: Option<i64>,
    /// What happens next, for people: e.g. "announcement version 2 waits for approval by
    /// public_relations, legal (approval 17)".
    pub detail: String,
}

/// The public address of an announcement (latest version), under `public_url`.
pub fn page_url(public_url: &str, slug: &str) -> String {
    format!("{}/announcements/{slug}", public_url.trim_end_matches('/'))
}

/// Stable across versions: the discovery date and the incident id, `drill-` for drills.
pub fn slug_for(inc: &Incident) -> String {
    format!(
        "{}{}-{}",
        if inc.drill { "drill-" } else { "" },
        inc.discovered_at.format("%Y-%m-%d"),
        inc.id
    )
}

/// The stored row as the API shows it; `gate` is its approval gate (none: public, published
/// before gates existed, or read from the public listing).
pub fn version_view(
    a: &AnnouncementRow,
    v: &AnnouncementVersionRow,
    gate: Option<&AnnouncementGateRow>,
    public_url: &str,
) -> AnnouncementVersion {
    AnnouncementVersion {
        incident_id: a.incident_id,
        slug: a.slug.clone(),
        version: v.version,
        status: gate.map_or_else(|| "public".to_string(), |g| g.status.clone()),
        published_at: from_micros(
            gate.filter(|g| g.status == "public")
                .and_then(|g| g.decided_at)
                .unwrap_or(v.published_at),
        ),
        approval_task: gate.and_then(|g| g.task_id),
        approvers: gate.map(|g| g.approvers()).unwrap_or_default(),
        actor: v.actor.clone(),
        reason: v.reason.clone(),
        drill: a.drill,
        url: format!("{}?version={}", page_url(public_url, &a.slug), v.version),
        template: v.template.clone(),
        locales: serde_json::from_str(&v.locales).unwrap_or_default(),
        content_hash: v.content_hash.clone(),
        facts_version: v.facts_version,
        facts_hash: v.facts_hash.clone(),
    }
}

/// Check `[announcements]` against the loaded templates (at `check`, start and reload).
pub fn check_config(cfg: &AnnouncementsConfig, templates: &Templates) -> Result<(), String> {
    let name = &cfg.template;
    if !templates.names().contains(&name.as_str()) {
        return Err(format!(
            "announcements.template: there is no template `{name}`; the templates are: {}",
            templates.names().join(", ")
        ));
    }
    Ok(())
}

/// The locales to publish in: every one the template has, the organisation's default first.
fn locales(ctx: &AnnounceCtx<'_>) -> Vec<String> {
    let mut all: Vec<String> = ctx
        .templates
        .locales(&ctx.config.template)
        .into_iter()
        .map(str::to_string)
        .collect();
    let default = ctx.org.default_locale.to_ascii_lowercase();
    all.sort_by_key(|l| l.to_ascii_lowercase() != default);
    all
}

/// The path `required` refused, if that is what `e` is.
fn missing_path(e: &RenderError) -> Option<String> {
    let RenderError::Template { problem, .. } = e else {
        return None;
    };
    let rest = problem.strip_prefix('`')?;
    let (path, tail) = rest.split_once('`')?;
    tail.trim_start()
        .starts_with(REQUIRED_EMPTY)
        .then(|| path.to_string())
}

/// Put a stand-in at `path` so rendering goes on to find the next missing value.
fn fill(data: &mut Value, path: &str) -> bool {
    let Some(slot) = data.pointer_mut(&format!("/{}", path.replace('.', "/"))) else {
        return false;
    };
    *slot = if slot.is_array() {
        json!(["…"])
    } else {
        json!("…")
    };
    true
}

/// Render one locale; every value `required` found empty, not only the first.
fn render_locale(
    ctx: &AnnounceCtx<'_>,
    locale: &str,
    data: &Value,
    missing: &mut Vec<String>,
) -> Result<Option<LocaleText>, EngineError> {
    let mut data = data.clone();
    let mut found = false;
    for _ in 0..64 {
        match ctx
            .templates
            .render_page(&ctx.config.template, locale, &data)
        {
            Ok((title, html, _)) => {
                return Ok((!found).then(|| LocaleText {
                    locale: locale.to_string(),
                    title,
                    html,
                }));
            }
            Err(e) => match missing_path(&e) {
                Some(path) if fill(&mut data, &path) => {
                    found = true;
                    if !missing.contains(&path) {
                        missing.push(path);
                    }
                }
                _ => {
                    return Err(EngineError::Conflict(format!(
                        "the announcement cannot be rendered: {e}"
                    )));
                }
            },
        }
    }
    Err(EngineError::Conflict(
        "the announcement cannot be rendered: too many missing values".into(),
    ))
}

/// The incident's announcement in every locale, or a 409 naming every missing fact.
pub fn render(ctx: &AnnounceCtx<'_>, inc: &Incident) -> Result<Vec<LocaleText>, EngineError> {
    let value = serde_json::to_value(inc).unwrap_or_default();
    let mut missing = Vec::new();
    let mut out = Vec::new();
    let all = locales(ctx);
    let mut by_locale: Vec<(String, Vec<String>)> = Vec::new();
    for locale in &all {
        // The public version of the free text, in this page's language.
        let data = crate::render::context::public_context(&value, ctx.org, locale);
        let mut m = Vec::new();
        if let Some(t) = render_locale(ctx, locale, &data, &mut m)? {
            out.push(t);
        }
        for p in &m {
            if !missing.contains(p) {
                missing.push(p.clone());
            }
        }
        by_locale.push((locale.clone(), m));
    }
    if !missing.is_empty() {
        // A fact missing in some languages only is named with them: `cause (en)`.
        let facts: Vec<String> = missing
            .iter()
            .map(|p| {
                let name = p.strip_prefix("incident.facts.").unwrap_or(p).to_string();
                let langs: Vec<&str> = by_locale
                    .iter()
                    .filter(|(_, m)| m.contains(p))
                    .map(|(l, _)| l.as_str())
                    .collect();
                if langs.len() == all.len() {
                    name
                } else {
                    format!("{name} ({})", langs.join(", "))
                }
            })
            .collect();
        return Err(EngineError::Conflict(format!(
            "the announcement cannot be published without these facts of incident {}: {}; fill them in (PATCH /api/v1/incidents/{}/facts, or incidentd facts {} --set {}=…; a fact missing in one language only: --file with {{\"<fact>\": {{\"zh-CN\": \"…\", \"en\": \"…\"}}}}) and publish again",
            inc.id,
            facts.join(", "),
            inc.id,
            inc.id,
            facts[0].split(' ').next().unwrap_or_default()
        )));
    }
    if out.is_empty() {
        return Err(EngineError::Conflict(format!(
            "template `{}` has no locale to publish in",
            ctx.config.template
        )));
    }
    Ok(out)
}

/// The signed push of a version to the configured webhook target.
fn webhook_delivery(public_url: &str, target: &str, v: &AnnouncementVersion) -> NewDelivery {
    let first = &v.locales[0];
    let latest = page_url(public_url, &v.slug);
    let titles: serde_json::Map<String, Value> = v
        .locales
        .iter()
        .map(|l| (l.locale.clone(), json!(l.title)))
        .collect();
    let bodies: serde_json::Map<String, Value> = v
        .locales
        .iter()
        .map(|l| (l.locale.clone(), json!(l.html)))
        .collect();
    NewDelivery {
        idempotency_key: format!(
            "{}:announcement:webhook:{target}:{}:v{}",
            v.incident_id, v.slug, v.version
        ),
        incident_id: Some(v.incident_id),
        purpose: Purpose::Announcement,
        channel: ChannelKind::Webhook,
        recipient: target.to_string(),
        locale: first.locale.clone(),
        content: Content {
            subject: Some(first.title.clone()),
            text: format!("{}\n{latest}", first.title),
            template: Some(v.template.clone()),
            data: Some(json!({
                "slug": v.slug,
                "version": v.version,
                "url": latest,
                "version_url": v.url,
                "published_at": v.published_at,
                "drill": v.drill,
                "titles": titles,
                "bodies": bodies,
                "content_hash": v.content_hash,
            })),
            ..Content::default()
        },
        fallback: vec![],
        fallback_of: None,
    }
}

/// Publish inside the caller's transaction (see the module docs). Nothing is written when the
/// words equal the latest version's (`created: false`).
#[tracing::instrument(skip_all, fields(incident.id = incident_id))]
pub async fn publish_in(
    tx: &mut WriteTx,
    ctx: &AnnounceCtx<'_>,
    incident_id: i64,
    actor: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Published, EngineError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(EngineError::invalid(
            "reason",
            "say why the announcement is published (the audit trail keeps it)",
        ));
    }
    let inc = tx
        .incident(incident_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("there is no incident {incident_id}")))?;
    let locales = render(ctx, &inc)?;
    let locales_json = serde_json::to_string(&locales).unwrap_or_default();
    let content_hash = sha256_hex(locales_json.as_bytes());
    let at = to_micros(now);
    let (announcement, latest) = announcement_for(tx, &inc, at).await?;
    if let Some(l) = latest.as_ref().filter(|l| l.content_hash == content_hash)
        && let Some(published) = unchanged(tx, ctx, &announcement, l).await?
    {
        return Ok(published);
    }
    let row = AnnouncementVersionRow {
        announcement_id: announcement.id,
        version: latest.map_or(1, |l| l.version + 1),
        published_at: at,
        actor: actor.to_string(),
        reason: reason.to_string(),
        template: ctx.config.template.clone(),
        locales: locales_json,
        content_hash,
        facts_version: inc.facts_version,
        facts_hash: sha256_hex(
            serde_json::to_string(&inc.facts)
                .unwrap_or_default()
                .as_bytes(),
        ),
    };
    tx.append_announcement_version(&row).await?;
    let superseded = supersede(tx, announcement.id, row.version, actor, at).await?;
    let task = open_approval(tx, &inc, &announcement, &row, ctx, now).await?;
    let gate = AnnouncementGateRow {
        announcement_id: announcement.id,
        version: row.version,
        task_id: Some(task),
        status: "awaiting_approval".into(),
        approvers: serde_json::to_string(&ctx.config.approvers).unwrap_or_else(|_| "[]".into()),
        webhook: ctx.config.webhook.clone(),
        decided_at: None,
        decided_by: None,
    };
    tx.insert_announcement_gate(&gate).await?;
    let version = version_view(&announcement, &row, Some(&gate), ctx.public_url);
    let detail = format!(
        "announcement version {} waits for approval by {} (approval {task}); it is public once approved",
        row.version,
        ctx.config.approvers.join(", ")
    );
    tx.append(&[NewEvent::new(
        now,
        actor,
        "announcement.awaiting_approval",
        Some(incident_id),
        &json!({
            "slug": version.slug, "version": version.version, "reason": version.reason,
            "content_hash": version.content_hash, "facts_version": version.facts_version,
            "facts_hash": version.facts_hash, "drill": version.drill,
            "locales": version.locales.iter().map(|l| l.locale.as_str()).collect::<Vec<_>>(),
            "approval_task": task, "approvers": ctx.config.approvers, "superseded": superseded,
            "detail": detail,
        }),
    )])
    .await?;
    Ok(Published {
        version,
        created: true,
        webhook_delivery: None,
        detail,
    })
}

/// The incident's announcement and its newest version; a new announcement (with its slug) when
/// it has none yet.
async fn announcement_for(
    tx: &mut WriteTx,
    inc: &Incident,
    at: i64,
) -> Result<(AnnouncementRow, Option<AnnouncementVersionRow>), EngineError> {
    Ok(match tx.announcement_of(inc.id).await? {
        Some(a) => {
            let latest = tx.latest_announcement_version(a.id).await?;
            (a, latest)
        }
        None => {
            let slug = slug_for(inc);
            let id = tx.insert_announcement(inc.id, &slug, inc.drill, at).await?;
            let a = AnnouncementRow {
                id,
                incident_id: inc.id,
                slug,
                drill: inc.drill,
                created_at: at,
                updated_at: at,
            };
            (a, None)
        }
    })
}

/// The same words as the newest version `l`, waiting or public: nothing new to publish, and
/// what to say about it. None when that version was rejected or withdrawn.
async fn unchanged(
    tx: &mut WriteTx,
    ctx: &AnnounceCtx<'_>,
    announcement: &AnnouncementRow,
    l: &AnnouncementVersionRow,
) -> Result<Option<Published>, EngineError> {
    let gate = tx.announcement_gate(announcement.id, l.version).await?;
    if gate
        .as_ref()
        .is_none_or(|g| g.status == "public" || g.status == "awaiting_approval")
    {
        let version = version_view(announcement, l, gate.as_ref(), ctx.public_url);
        let detail = match gate.as_ref().filter(|g| g.status == "awaiting_approval") {
            Some(g) => format!(
                "unchanged: the facts give the words of version {}, which waits for approval by {}{}",
                l.version,
                g.approvers().join(", "),
                g.task_id
                    .map(|t| format!(" (approval {t})"))
                    .unwrap_or_default()
            ),
            None => format!(
                "unchanged: the facts give the words of version {}, which is public",
                l.version
            ),
        };
        return Ok(Some(Published {
            version,
            created: false,
            webhook_delivery: None,
            detail,
        }));
    }
    Ok(None)
}

/// Versions still waiting are superseded by version `version`; their approvals are closed.
async fn supersede(
    tx: &mut WriteTx,
    announcement_id: i64,
    version: i64,
    actor: &str,
    at: i64,
) -> Result<Vec<i64>, EngineError> {
    let mut out = Vec::new();
    for g in tx.awaiting_announcement_gates(announcement_id).await? {
        tx.decide_announcement_gate(announcement_id, g.version, "superseded", actor, at)
            .await?;
        if let Some(task) = g.task_id
            && let Some(mut t) = tx.task_by_id(task).await?
            && !t.is_closed()
        {
            t.status = "rejected".into();
            t.closed_by = Some(actor.to_string());
            t.closed_at = Some(at);
            t.note = Some(format!("superseded by version {version}"));
            t.updated_at = at;
            tx.update_task(&t).await?;
        }
        out.push(g.version);
    }
    Ok(out)
}

/// The version's approval task, decided by `[announcements] approvers`; its approvers are paged.
async fn open_approval(
    tx: &mut WriteTx,
    inc: &Incident,
    a: &AnnouncementRow,
    v: &AnnouncementVersionRow,
    ctx: &AnnounceCtx<'_>,
    now: DateTime<Utc>,
) -> Result<i64, EngineError> {
    let key = format!("{TASK_PREFIX}{}-v{}", a.id, v.version);
    let department = ctx
        .config
        .approvers
        .first()
        .cloned()
        .unwrap_or_else(|| "public_relations".into());
    tx.insert_tasks(
        &[NewTask {
            incident_id: inc.id,
            key: key.clone(),
            playbook: None,
            title: format!("Approve public announcement v{}", v.version),
            department,
            description: format!(
                "Review version {} of the public announcement ({}) and approve it to make it public: GET /api/v1/incidents/{}/announcement. Reason given: {}",
                v.version,
                page_url(ctx.public_url, &a.slug),
                inc.id,
                v.reason
            ),
            approval: true,
            approvers: ctx.config.approvers.clone(),
            depends_on: Vec::new(),
            after_task: None,
            due_offset_secs: 0,
            due_at: None,
        }],
        to_micros(now),
    )
    .await?;
    let t = tx
        .task_by_key(inc.id, &key)
        .await?
        .ok_or_else(|| EngineError::Failed(format!("the approval task `{key}` is gone")))?;
    tx.schedule_timers(
        &[super::outcomes::approval_page_timer(
            inc.id,
            t.id,
            to_micros(now),
        )],
        to_micros(now),
    )
    .await?;
    Ok(t.id)
}

/// Why an announcement's approval may not be approved: its version is no longer the one
/// waiting.
pub(crate) async fn approval_refusal(
    tx: &mut WriteTx,
    t: &TaskRow,
) -> Result<Option<String>, EngineError> {
    if !t.key.starts_with(TASK_PREFIX) {
        return Ok(None);
    }
    let Some(g) = tx.announcement_gate_of_task(t.id).await? else {
        return Ok(None);
    };
    Ok((g.status != "awaiting_approval").then(|| {
        format!(
            "announcement version {} is {}: only the version waiting can be approved",
            g.version, g.status
        )
    }))
}

/// After an announcement's approval is decided: approved, the version is public — pushed to
/// the webhook, and the public-announcement obligation met; rejected, it never is.
pub(crate) async fn approval_decided(
    tx: &mut WriteTx,
    t: &TaskRow,
    actor: &str,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    if !t.key.starts_with(TASK_PREFIX) {
        return Ok(Vec::new());
    }
    let Some(g) = tx.announcement_gate_of_task(t.id).await? else {
        return Ok(Vec::new());
    };
    let status = match t.status.as_str() {
        "approved" => "public",
        "rejected" => "rejected",
        _ => return Ok(Vec::new()),
    };
    let at = to_micros(now);
    if !tx
        .decide_announcement_gate(g.announcement_id, g.version, status, actor, at)
        .await?
    {
        return Ok(Vec::new());
    }
    let (Some(a), Some(v)) = (
        tx.announcement_of(t.incident_id).await?,
        tx.announcement_version(g.announcement_id, g.version)
            .await?,
    ) else {
        return Ok(Vec::new());
    };
    let gate = tx.announcement_gate(g.announcement_id, g.version).await?;
    let version = version_view(&a, &v, gate.as_ref(), public_url);
    if status == "rejected" {
        return Ok(vec![NewEvent::new(
            now,
            actor,
            "announcement.rejected",
            Some(t.incident_id),
            &json!({"slug": a.slug, "version": g.version, "approval_task": t.id, "reason": t.note}),
        )]);
    }
    let webhook_delivery = match &g.webhook {
        Some(target) => tx
            .enqueue_deliveries(&[webhook_delivery(public_url, target, &version)], at)
            .await?
            .first()
            .copied(),
        None => None,
    };
    let mut events = vec![NewEvent::new(
        now,
        actor,
        "announcement.published",
        Some(t.incident_id),
        &json!({
            "slug": version.slug, "version": version.version, "reason": version.reason,
            "content_hash": version.content_hash, "facts_version": version.facts_version,
            "facts_hash": version.facts_hash, "drill": version.drill,
            "locales": version.locales.iter().map(|l| l.locale.as_str()).collect::<Vec<_>>(),
            "approval_task": t.id, "approvers": g.approvers(),
            "webhook": g.webhook, "webhook_delivery": webhook_delivery,
        }),
    )];
    events.extend(
        super::obligations::meet_kind(
            tx,
            t.incident_id,
            crate::domain::regulation::ObligationKind::PublicAnnouncement,
            &format!("announcement:{}:v{}", version.slug, version.version),
            now,
        )
        .await?,
    );
    Ok(events)
}

impl Engine {
    /// Publish (or update) the public announcement of an incident from its current facts, in
    /// one transaction. See [`publish_in`] for what is written.
    pub async fn publish_announcement(
        &self,
        ctx: &AnnounceCtx<'_>,
        incident_id: i64,
        actor: &str,
        reason: &str,
    ) -> Result<Published, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let p = publish_in(&mut tx, ctx, incident_id, actor, reason, now).await?;
        if p.created {
            tx.commit().await?;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requireds_refusals_count_as_missing() {
        let e = RenderError::Template {
            file: "x.hbs".into(),
            line: Some(3),
            part: crate::render::Part::Html,
            problem: format!("`incident.facts.cause` {REQUIRED_EMPTY}: fill it in"),
        };
        assert_eq!(missing_path(&e).as_deref(), Some("incident.facts.cause"));
        let other = RenderError::Template {
            file: "x.hbs".into(),
            line: Some(3),
            part: crate::render::Part::Html,
            problem: "`incident.facts.casue` is not in the data (strict mode)".into(),
        };
        assert_eq!(missing_path(&other), None);
    }

    #[test]
    fn stand_ins_keep_the_shape_of_lists() {
        let mut v = json!({"incident": {"facts": {"data_types": [], "cause": null}}});
        assert!(fill(&mut v, "incident.facts.data_types"));
        assert!(fill(&mut v, "incident.facts.cause"));
        assert!(!fill(&mut v, "incident.facts.nothing_here"));
        assert_eq!(v["incident"]["facts"]["data_types"], json!(["…"]));
        assert_eq!(v["incident"]["facts"]["cause"], json!("…"));
    }
}
