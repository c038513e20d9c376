//! Notice campaigns: telling every affected person of an incident, on the channels chosen, in
//! their language, once the notice is approved.
//!
//! * **Creating** a campaign checks the channels and that the notice renders for the
//!   incident's current facts, then waits for the incident's notice approval task
//!   (`[notices] approval_task`, Legal in the shipped PI playbook). Categories listed in
//!   `[notices] approval_not_required` start at once; personal-information ones never do.
//!   Asking again for the same template returns the campaign that exists: it sends nothing twice.
//! * **Starting** (approval seen by [`Engine::run_campaigns`]) renders the notice once per
//!   channel and locale and stores it with the campaign: what was approved is what is sent,
//!   even if facts or templates change afterwards. The subject's name goes in at send time.
//! * **Enqueueing** walks the incident's subjects in id order, `[notices] batch` at a time;
//!   each batch's deliveries and the campaign's cursor commit in one transaction, and every
//!   delivery has an idempotency key per (campaign, subject, channel). A daemon killed halfway
//!   resumes at the cursor; nobody is skipped and nobody is enqueued twice.
//! * Mode `all` sends on every chosen channel the subject has; `first` sends on the first one
//!   and falls back, in the order given, when that delivery dies.
//! * Deliveries hold no contact: the dispatcher calls [`crate::dispatch::notices::materialise`] right before sending,
//!   which decrypts the subject's contact and fills in the stored words.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Engine, EngineError};
use crate::config::{NoticesConfig, OrganisationConfig};
use crate::domain::message::{ChannelKind, Content, Purpose};
pub use crate::domain::message::{LINK_MARKER, NAME_MARKER, fill_link, fill_name};
use crate::domain::time::to_micros;
use crate::render::Templates;
use crate::render::context::recipient_value;
use crate::store::{
    CampaignContent, CampaignRow, FallbackTarget, NewCampaign, NewDelivery, NewEvent, ProgressBump,
    notice_key, notice_recipient,
};
use crate::subjects::parse_channels;

/// The `campaign_contents` channel name of the full notice shown on a subject's own page.
pub const PAGE: &str = "page";

/// Channels a notice can go out on.
pub const NOTICE_CHANNELS: [ChannelKind; 5] = [
    ChannelKind::Inbox,
    ChannelKind::SiteWebhook,
    ChannelKind::Sms,
    ChannelKind::Voice,
    ChannelKind::Email,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every chosen channel the subject has.
    #[default]
    All,
    /// The first chosen channel the subject has; the next ones if it dies.
    First,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::First => "first",
        }
    }
}

/// `POST /api/v1/incidents/{id}/notices`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignRequest {
    /// Channels in order of preference: inbox, site_webhook, sms, voice, email.
    #[schema(value_type = Vec<String>, example = json!(["inbox", "sms", "email"]))]
    pub channels: Vec<ChannelKind>,
    #[serde(default)]
    pub mode: Mode,
    /// The notice template; `[notices] template` by default.
    #[serde(default)]
    pub template: Option<String>,
    /// `all` (default), or `unreached`: a follow-up for the people no earlier campaign's
    /// delivery reached (none reached its provider), e.g. on another channel.
    #[serde(default)]
    pub audience: Audience,
}

/// Who a campaign is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every affected person.
    #[default]
    All,
    /// Only people no earlier campaign of the incident reached.
    Unreached,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::All => "all",
            Audience::Unreached => "unreached",
        }
    }
}

/// The follow-up approval task of campaign `id` is `notice-<id>`.
pub const NOTICE_TASK_PREFIX: &str = "notice-";

/// The campaign a task approves, if it is a follow-up campaign's own approval.
pub(crate) fn campaign_of_task(t: &crate::store::TaskRow) -> Option<i64> {
    if !t.approval {
        return None;
    }
    t.key.strip_prefix(NOTICE_TASK_PREFIX)?.parse().ok()
}

/// What campaigns need from the live configuration.
pub struct CampaignCtx<'a> {
    pub templates: &'a Templates,
    pub org: &'a OrganisationConfig,
    pub channels: &'a [ChannelKind],
    pub notices: &'a NoticesConfig,
    pub public_url: &'a str,
    /// For the announcement the campaign publishes when individual notice is impractical.
    pub announce: super::announce::AnnounceCtx<'a>,
}

/// A campaign with its progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    #[serde(flatten)]
    pub campaign: CampaignRow,
    /// Deliveries by channel, then status (`pending`, `sending`, `failed`, `sent`, `dead`).
    pub progress: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>,
    /// Set when asking again returned this existing campaign.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub existing: bool,
}

/// A campaign's channels, in order of preference.
fn channels_of(c: &CampaignRow) -> Vec<ChannelKind> {
    serde_json::from_str::<Vec<String>>(&c.channels)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn subject_has(c: ChannelKind, reachable: &[ChannelKind]) -> bool {
    match c {
        ChannelKind::SiteWebhook => reachable.contains(&ChannelKind::Inbox),
        other => reachable.contains(&other),
    }
}

/// A campaign sends a notice to individuals: a `notice/*` template that exists and passes the
/// notice content lint in every language — checked before the campaign (and its approval)
/// exists, so no other message (an internal page, a report) can be approved and sent to
/// affected people, and no unknown name skips the render check.
fn check_notice_template(template: &str, ctx: &CampaignCtx<'_>) -> Result<(), EngineError> {
    let notices: Vec<&str> = ctx
        .templates
        .names()
        .into_iter()
        .filter(|n| crate::render::is_notice(n))
        .collect();
    let known = if notices.is_empty() {
        "there are none: add templates/notice/<name>.<locale>.hbs".to_string()
    } else {
        format!("the notice templates are {}", notices.join(", "))
    };
    if !crate::render::is_notice(template) {
        return Err(EngineError::invalid(
            "template",
            format!(
                "`{template}` is not a notice to individuals: campaigns send only notice templates \
                 (notice/…), which must carry what the law requires and pass their content check; {known}"
            ),
        ));
    }
    if !notices.contains(&template) {
        return Err(EngineError::invalid(
            "template",
            format!("there is no template `{template}`; {known}"),
        ));
    }
    let problems = ctx
        .templates
        .lint_notice(template, ctx.org, ctx.public_url)
        .map_err(|e| EngineError::invalid("template", e.to_string()))?;
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|p| {
                let file = p.file.file_name().map_or_else(
                    || p.file.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                );
                match p.part {
                    Some(part) => format!("{file}: {part}: {}", p.problem),
                    None => format!("{file}: {}", p.problem),
                }
            })
            .collect();
        return Err(EngineError::invalid(
            "template",
            format!(
                "`{template}` fails the notice content check (`incidentd check` lists the same): {}",
                list.join("; ")
            ),
        ));
    }
    Ok(())
}

/// The template data for one channel and locale, with the name marker (or no name).
fn notice_data(
    incident: &serde_json::Value,
    ctx: &CampaignCtx<'_>,
    channel: ChannelKind,
    locale: &str,
    named: bool,
    link: &str,
) -> serde_json::Value {
    // The public version of the free text, in the notice's language.
    let mut data = crate::render::context::public_context(incident, ctx.org, locale);
    data["recipient"] = recipient_value(named.then_some(NAME_MARKER), channel, "", locale);
    data["notice"] = crate::render::context::notice_value(Some(link));
    data
}

/// The link to the full notice a campaign's messages carry: the incident's public announcement
/// if it has a public (approved) version, otherwise each subject's own page (`/n/<token>`,
/// filled in at send time).
async fn notice_link(
    tx: &mut crate::store::WriteTx,
    incident_id: i64,
    ctx: &CampaignCtx<'_>,
) -> Result<String, EngineError> {
    let base = ctx.public_url.trim_end_matches('/');
    let public = match tx.announcement_of(incident_id).await? {
        Some(a) if tx.has_public_announcement(a.id).await? => Some(a),
        _ => None,
    };
    Ok(match public {
        Some(a) => format!("{base}/announcements/{}", a.slug),
        None => format!("{base}/n/{LINK_MARKER}"),
    })
}

impl Engine {
    /// Create a campaign (or return the one that exists for this template).
    pub async fn create_campaign(
        &self,
        incident_id: i64,
        req: CampaignRequest,
        ctx: &CampaignCtx<'_>,
        actor: &str,
    ) -> Result<CampaignView, EngineError> {
        if req.channels.is_empty() {
            return Err(EngineError::invalid(
                "channels",
                "name at least one channel, in order of preference, e.g. [\"inbox\", \"sms\", \"email\"]",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in req.channels.iter().enumerate() {
            if !NOTICE_CHANNELS.contains(c) {
                return Err(EngineError::invalid(
                    &format!("channels[{i}]"),
                    format!("notices go out on inbox, site_webhook, sms, voice or email, not {c}"),
                ));
            }
            if !ctx.channels.contains(c) {
                return Err(EngineError::invalid(
                    &format!("channels[{i}]"),
                    format!(
                        "the {c} channel is not configured: add [channels.{c}] to the configuration"
                    ),
                ));
            }
            if !seen.insert(c.as_str()) {
                return Err(EngineError::invalid(
                    &format!("channels[{i}]"),
                    format!("{c} is named twice"),
                ));
            }
        }
        let template = req
            .template
            .clone()
            .unwrap_or_else(|| ctx.notices.template.clone());
        check_notice_template(&template, ctx)?;
        let inc =
            self.store().incident(incident_id).await?.ok_or_else(|| {
                EngineError::NotFound(format!("there is no incident {incident_id}"))
            })?;
        // The notice must render now (facts present, template whole), in every language.
        let value = serde_json::to_value(&inc).unwrap_or_default();
        for c in &req.channels {
            for locale in ctx.templates.locales(&template) {
                let data = notice_data(
                    &value,
                    ctx,
                    *c,
                    locale,
                    true,
                    crate::render::context::SAMPLE_NOTICE_URL,
                );
                ctx.templates
                    .render(&template, *c, locale, &data)
                    .map_err(|e| EngineError::invalid("template", e.to_string()))?;
            }
        }
        if crate::domain::notice::exempt_from_individual_notice(&inc.facts) {
            return Err(EngineError::Conflict(exempt_message(incident_id)));
        }
        if self
            .store()
            .has_event(incident_id, "notice.exempted")
            .await?
        {
            return Err(EngineError::Conflict(format!(
                "incident {incident_id}'s notice gate was approved as an exemption (individual notice \
                 not required), not as approval of a notice's words; its facts no longer allow the \
                 exemption, but a new approval of the notice itself cannot be asked for yet: \
                 declare a follow-up incident for the notice"
            )));
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let channels: Vec<String> = req
            .channels
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        let earlier: Vec<CampaignRow> = tx
            .campaigns_of(incident_id)
            .await?
            .into_iter()
            .filter(|c| c.status != "cancelled")
            .collect();
        if let Some(same) = followup_check(&earlier, &template, &channels, &req, inc.facts_version)?
        {
            drop(tx);
            return self.campaign_view(same, true).await;
        }
        let needs_approval = inc.category.is_personal_information()
            || !ctx.notices.approval_not_required.contains(&inc.category);
        let mut own_gate = None;
        let approval_task = if needs_approval {
            let tasks = tx.tasks_of(incident_id).await?;
            let t = tasks
                .iter()
                .find(|t| t.key == ctx.notices.approval_task && t.approval)
                .ok_or_else(|| {
                    EngineError::Conflict(format!(
                        "incident {incident_id} has no `{}` approval task, and its notices need approval: \
                         apply a playbook with that gate (the PI playbook has one), or add it with \
                         POST /api/v1/incidents/{incident_id}/tasks",
                        ctx.notices.approval_task
                    ))
                })?;
            if t.status == "rejected" {
                return Err(EngineError::Conflict(format!(
                    "the notice approval (task {}) was rejected{}: nothing can be sent",
                    t.id,
                    t.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                )));
            }
            // The gate approved the words of the campaigns asked for before its decision; a
            // later campaign's words get their own approval.
            if t.is_closed() && !earlier.is_empty() {
                own_gate = Some(t.clone());
                None
            } else {
                Some(t.id)
            }
        } else {
            None
        };
        let id = tx
            .create_campaign(
                &NewCampaign {
                    incident_id,
                    actor,
                    template: &template,
                    channels: &channels,
                    mode: req.mode.as_str(),
                    approval_task,
                },
                to_micros(now),
            )
            .await?;
        let approval_task = match own_gate {
            Some(gate) => Some(
                followup_gate(&mut tx, &gate, id, &template, &channels, req.audience, now).await?,
            ),
            None => approval_task,
        };
        tx.set_campaign_followup(id, req.audience.as_str(), inc.facts_version, approval_task)
            .await?;
        tx.append(&[NewEvent::new(
            now,
            actor,
            "notice.campaign_created",
            Some(incident_id),
            &json!({
                "campaign": id,
                "template": template,
                "channels": channels,
                "mode": req.mode,
                "audience": req.audience,
                "facts_version": inc.facts_version,
                "follow_up_of": earlier.iter().map(|c| c.id).collect::<Vec<_>>(),
                "approval_task": approval_task,
            }),
        )])
        .await?;
        let c = tx
            .campaign(id)
            .await?
            .ok_or_else(|| EngineError::Failed(format!("campaign {id} vanished")))?;
        tx.commit().await?;
        self.campaigns.notify_one();
        self.campaign_view(c, false).await
    }

    pub async fn campaign_view(
        &self,
        c: CampaignRow,
        existing: bool,
    ) -> Result<CampaignView, EngineError> {
        let mut progress: std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, i64>,
        > = Default::default();
        for (channel, enqueued, sent, failed, dead) in self.store().campaign_progress(c.id).await? {
            progress.insert(
                channel,
                [
                    ("enqueued", enqueued),
                    ("queued", enqueued - sent - dead),
                    ("sent", sent),
                    ("failed_attempts", failed),
                    ("dead", dead),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            );
        }
        Ok(CampaignView {
            campaign: c,
            progress,
            existing,
        })
    }

    /// Move every active campaign on: start the approved ones, enqueue a batch of each running
    /// one. Returns true if there is more to do right away.
    pub async fn run_campaigns(&self, ctx: &CampaignCtx<'_>) -> Result<bool, EngineError> {
        let mut more = false;
        for c in self.store().active_campaigns().await? {
            let r = match c.status.as_str() {
                "awaiting_approval" => self.maybe_start(&c, ctx).await,
                _ => self.enqueue_batch(&c, ctx).await,
            };
            match r {
                Ok(m) => more |= m,
                Err(EngineError::Unavailable(e)) => return Err(EngineError::Unavailable(e)),
                Err(e) => {
                    tracing::warn!(campaign = c.id, error = %e, "notice campaign cannot go on");
                    let mut tx = self.store().begin_write().await?;
                    tx.fail_campaign(c.id, &e.to_string()).await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(more)
    }

    async fn maybe_start(
        &self,
        c: &CampaignRow,
        ctx: &CampaignCtx<'_>,
    ) -> Result<bool, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let Some(c) = tx.campaign(c.id).await? else {
            return Ok(false);
        };
        if c.status != "awaiting_approval" {
            return Ok(true);
        }
        // Only notices reach affected people (campaigns asked for before this was checked at
        // creation included): anything else is cancelled, never sent.
        if !crate::render::is_notice(&c.template) {
            let why = format!(
                "`{}` is not a notice template (notice/…): campaigns send only notices",
                c.template
            );
            tx.cancel_campaign(c.id, &why, to_micros(now)).await?;
            tx.append(&[NewEvent::new(
                now,
                "incidentd",
                "notice.campaign_cancelled",
                Some(c.incident_id),
                &json!({ "campaign": c.id, "reason": why }),
            )])
            .await?;
            tx.commit().await?;
            return Ok(false);
        }
        if let Some(task) = c.approval_task {
            let t = tx
                .tasks_of(c.incident_id)
                .await?
                .into_iter()
                .find(|t| t.id == task);
            match t.as_ref().map(|t| t.status.as_str()) {
                Some("approved") => {}
                Some("rejected") => {
                    tx.cancel_campaign(c.id, "the notice approval was rejected", to_micros(now))
                        .await?;
                    tx.append(&[NewEvent::new(
                        now,
                        "incidentd",
                        "notice.campaign_cancelled",
                        Some(c.incident_id),
                        &json!({ "campaign": c.id, "reason": "the notice approval was rejected" }),
                    )])
                    .await?;
                    tx.commit().await?;
                    return Ok(false);
                }
                _ => return Ok(false),
            }
        }
        let inc = tx
            .incident(c.incident_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("incident {} vanished", c.incident_id)))?;
        // Law enforcement or the regulator directs that individuals must not be told yet (SG):
        // the campaign waits, approved, until the hold is lifted.
        let held: Vec<String> = tx
            .obligations_of(c.incident_id)
            .await?
            .into_iter()
            .filter(|o| o.kind == "notify_individuals" && o.standing == "hold")
            .map(|o| o.key)
            .collect();
        if !held.is_empty() {
            if !self
                .store()
                .has_event(c.incident_id, "notice.campaign_held")
                .await?
            {
                tx.append(&[NewEvent::new(
                    now,
                    "incidentd",
                    "notice.campaign_held",
                    Some(c.incident_id),
                    &json!({ "campaign": c.id, "holds": held,
                             "detail": "individual notice must not be given while law enforcement or the regulator directs so; clear the incident's `notification_hold` fact to send" }),
                )])
                .await?;
                tx.commit().await?;
            }
            return Ok(false);
        }
        if crate::domain::notice::exempt_from_individual_notice(&inc.facts) {
            let why = exempt_message(c.incident_id);
            tx.cancel_campaign(c.id, &why, to_micros(now)).await?;
            tx.append(&[NewEvent::new(
                now,
                "incidentd",
                "notice.campaign_cancelled",
                Some(c.incident_id),
                &json!({ "campaign": c.id, "reason": why }),
            )])
            .await?;
            tx.commit().await?;
            return Ok(false);
        }
        let value = serde_json::to_value(&inc).unwrap_or_default();
        let channels: Vec<ChannelKind> = channels_of(&c);
        let mut locales: BTreeSet<String> = tx
            .subject_locales(c.incident_id)
            .await?
            .into_iter()
            .collect();
        locales.insert(ctx.org.default_locale.clone());
        // Every language the template has, so that people imported later, in any locale, get
        // words rendered (and approved) now: their locale falls back to one of these.
        locales.extend(
            ctx.templates
                .locales(&c.template)
                .into_iter()
                .map(str::to_string),
        );
        // The rule for everyone (an announcement when too few can be reached one by one) is
        // the first campaign's business, not a follow-up's for the people it missed.
        let impractical = if c.audience == "unreached" {
            None
        } else {
            self.impractical(&inc, &channels, ctx).await?
        };
        if let Some(reason) = impractical {
            match super::announce::publish_in(
                &mut tx,
                &ctx.announce,
                c.incident_id,
                "incidentd",
                &reason,
                now,
            )
            .await
            {
                Ok(_) => {}
                Err(e @ (EngineError::Unavailable(_) | EngineError::Failed(_))) => return Err(e),
                // Refused before writing anything (e.g. a fact the announcement needs): the
                // campaign goes on; people can publish it by hand once the facts are there.
                Err(e) => {
                    tracing::warn!(incident = c.incident_id, error = %e, "individual notice is impractical but the announcement cannot be published");
                    tx.append(&[NewEvent::new(
                        now,
                        "incidentd",
                        "announcement.refused",
                        Some(c.incident_id),
                        &json!({ "reason": reason, "error": e.to_string() }),
                    )])
                    .await?;
                }
            }
        }
        let link = notice_link(&mut tx, c.incident_id, ctx).await?;
        let mut contents = Vec::new();
        for locale in &locales {
            for ch in &channels {
                contents.push(render_content(&c, &value, ctx, *ch, locale, &link)?);
            }
            contents.push(
                render_content(&c, &value, ctx, ChannelKind::Email, locale, &link)?.into_page(),
            );
        }
        // Starting meets nothing: notice to individuals is met when the deliveries reach
        // people (super::outcomes).
        tx.start_campaign(c.id, &contents, to_micros(now)).await?;
        tx.append(&[NewEvent::new(
            now,
            "incidentd",
            "notice.campaign_started",
            Some(c.incident_id),
            &json!({
                "campaign": c.id,
                "approval_task": c.approval_task,
                "facts_version": inc.facts_version,
                "contents": contents.iter().map(|x| json!({
                    "channel": x.channel,
                    "locale": x.locale,
                    "used_locale": x.used_locale,
                    "sha256": crate::domain::audit::sha256_hex(x.named.as_bytes()),
                })).collect::<Vec<_>>(),
            }),
        )])
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Why telling people one by one is impractical, if the configured rule says so: too few
    /// of the affected reachable on the campaign's channels, or too many affected.
    async fn impractical(
        &self,
        inc: &crate::domain::records::Incident,
        channels: &[ChannelKind],
        ctx: &CampaignCtx<'_>,
    ) -> Result<Option<String>, EngineError> {
        let (share_below, above) = (
            ctx.notices.announce_when_reachable_below,
            ctx.notices.announce_when_subjects_above,
        );
        let mut held = 0u64;
        let mut reachable = 0u64;
        for (chs, n) in self.store().subject_reach(inc.id).await? {
            let n = n.max(0) as u64;
            held += n;
            let reach = parse_channels(&chs);
            if channels.iter().any(|c| subject_has(*c, &reach)) {
                reachable += n;
            }
        }
        let affected = held.max(inc.facts.affected_subjects.unwrap_or(0));
        if above > 0 && affected > above {
            return Ok(Some(format!(
                "individual notice is impractical: {affected} people are affected (more than {above})"
            )));
        }
        if share_below > 0.0 && affected > 0 && (reachable as f64) < share_below * affected as f64 {
            return Ok(Some(format!(
                "individual notice is impractical: {reachable} of {affected} affected people ({:.0}%) can be reached on {}, fewer than {:.0}%",
                100.0 * reachable as f64 / affected as f64,
                channels
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                100.0 * share_below
            )));
        }
        Ok(None)
    }

    async fn enqueue_batch(
        &self,
        c: &CampaignRow,
        ctx: &CampaignCtx<'_>,
    ) -> Result<bool, EngineError> {
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let Some(c) = tx.campaign(c.id).await? else {
            return Ok(false);
        };
        if c.status != "enqueueing" {
            return Ok(false);
        }
        let subjects = tx
            .subjects_after(c.incident_id, c.enqueued_to, ctx.notices.batch as i64)
            .await?;
        let channels: Vec<ChannelKind> = channels_of(&c);
        if subjects.is_empty() {
            tx.advance_campaign(c.id, c.enqueued_to, 0, 0, 0, Some(to_micros(now)))
                .await?;
            // Its deliveries may all have ended already: see whether everyone was told.
            tx.schedule_timers(
                &[super::outcomes::notices_timer(
                    c.incident_id,
                    c.id,
                    to_micros(now),
                )],
                to_micros(now),
            )
            .await?;
            tx.append(&[NewEvent::new(
                now,
                "incidentd",
                "notice.campaign_enqueued",
                Some(c.incident_id),
                &json!({
                    "campaign": c.id,
                    "subjects": c.subjects,
                    "deliveries": c.deliveries,
                    "unreachable": c.unreachable,
                }),
            )])
            .await?;
            tx.commit().await?;
            return Ok(false);
        }
        // Locales first seen in this batch (subjects imported after the start) get the words
        // rendered at the start for the language they fall back to: never new words.
        let known: BTreeSet<(String, String)> =
            tx.campaign_content_keys(c.id).await?.into_iter().collect();
        let mut extra: Vec<CampaignContent> = Vec::new();
        let mut stored: Option<Vec<CampaignContent>> = None;
        for s in &subjects {
            if known.iter().any(|(ch, l)| ch == PAGE && *l == s.locale)
                || extra.iter().any(|x| x.locale == s.locale)
            {
                continue;
            }
            let have = ctx.templates.locales(&c.template);
            let used = crate::render::locale_chain(&s.locale)
                .into_iter()
                .find(|l| have.iter().any(|h| h.eq_ignore_ascii_case(l)))
                .ok_or_else(|| {
                    EngineError::Conflict(format!(
                        "campaign {}: no language of {} serves locale {}",
                        c.id, c.template, s.locale
                    ))
                })?;
            if stored.is_none() {
                stored = Some(self.store().campaign_contents(&[c.id]).await?);
            }
            let from: Vec<&CampaignContent> = stored
                .iter()
                .flatten()
                .filter(|x| x.locale.eq_ignore_ascii_case(&used))
                .collect();
            if from.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "campaign {}: nothing was rendered for {used} at its start, so people with locale {} cannot be told words Legal approved; start a new campaign",
                    c.id, s.locale
                )));
            }
            extra.extend(from.into_iter().map(|x| CampaignContent {
                locale: s.locale.clone(),
                ..x.clone()
            }));
        }
        if !extra.is_empty() {
            tx.add_campaign_contents(&extra).await?;
        }
        let screen = self.screen_batch(&mut tx, &c, &subjects, &extra).await?;
        let mut deliveries = Vec::new();
        let mut unreachable = 0;
        let mut in_audience = 0;
        let empty = Content::default();
        for s in &subjects {
            if screen.reached.contains(&s.id) {
                continue;
            }
            in_audience += 1;
            let reach = parse_channels(&s.channels);
            let usable: Vec<ChannelKind> = channels
                .iter()
                .copied()
                .filter(|ch| subject_has(*ch, &reach))
                .collect();
            if usable.is_empty() {
                unreachable += 1;
                continue;
            }
            // Nobody gets the same words twice on one channel (an earlier campaign's delivery
            // of them that did not die); in `first` mode one message is all a person gets.
            let told = |ch: &ChannelKind| screen.told.contains(&(s.id, *ch));
            let usable: Vec<ChannelKind> = if c.mode == "first" && usable.iter().any(told) {
                Vec::new()
            } else {
                usable.into_iter().filter(|ch| !told(ch)).collect()
            };
            if usable.is_empty() {
                continue;
            }
            let recipient = notice_recipient(c.id, s.id);
            let one = |ch: ChannelKind, fallback: Vec<FallbackTarget>| NewDelivery {
                idempotency_key: notice_key(c.incident_id, c.id, s.id, ch.as_str()),
                incident_id: Some(c.incident_id),
                purpose: Purpose::Notice,
                channel: ch,
                recipient: recipient.clone(),
                locale: s.locale.clone(),
                content: empty.clone(),
                fallback,
                fallback_of: None,
            };
            if c.mode == "first" {
                let fallback = usable[1..]
                    .iter()
                    .map(|ch| FallbackTarget {
                        channel: *ch,
                        recipient: recipient.clone(),
                        content: empty.clone(),
                    })
                    .collect();
                deliveries.push(one(usable[0], fallback));
            } else {
                deliveries.extend(usable.iter().map(|ch| one(*ch, Vec::new())));
            }
        }
        let last = subjects.last().map_or(c.enqueued_to, |s| s.id);
        if !deliveries.is_empty() {
            tx.enqueue_deliveries_quietly(&deliveries, to_micros(now))
                .await?;
            let mut per_channel: std::collections::BTreeMap<&str, i64> = Default::default();
            for d in &deliveries {
                *per_channel.entry(d.channel.as_str()).or_default() += 1;
            }
            let bumps: Vec<ProgressBump> = per_channel
                .into_iter()
                .map(|(ch, n)| ProgressBump {
                    campaign_id: c.id,
                    channel: ch.to_string(),
                    enqueued: n,
                    ..Default::default()
                })
                .collect();
            tx.bump_campaign_progress(&bumps).await?;
        }
        tx.advance_campaign(
            c.id,
            last,
            in_audience,
            deliveries.len() as i64,
            unreachable,
            None,
        )
        .await?;
        tx.commit().await?;
        metrics::counter!("incidentd_notice_deliveries_enqueued_total")
            .increment(deliveries.len() as u64);
        Ok(true)
    }
}

/// A request against the incident's earlier campaigns: `Some` the campaign that is exactly
/// this request (asked again: returned, nothing sent twice); an error when it would tell
/// everyone words they were already told; `None` for a new campaign (the first one, a
/// follow-up after the facts changed, another template, or one for the unreached).
fn followup_check(
    earlier: &[CampaignRow],
    template: &str,
    channels: &[String],
    req: &CampaignRequest,
    facts_version: i64,
) -> Result<Option<CampaignRow>, EngineError> {
    let same_words: Vec<&CampaignRow> = earlier
        .iter()
        .filter(|c| c.template == template && c.facts_version.is_none_or(|v| v == facts_version))
        .collect();
    if let Some(c) = same_words.iter().find(|c| {
        serde_json::from_str::<Vec<String>>(&c.channels).unwrap_or_default() == channels
            && c.mode == req.mode.as_str()
            && c.audience == req.audience.as_str()
    }) {
        return Ok(Some((*c).clone()));
    }
    match (req.audience, same_words.first(), earlier.is_empty()) {
        (Audience::Unreached, _, true) => Err(EngineError::invalid(
            "audience",
            "there is no earlier campaign for this incident, so nobody is `unreached` yet: ask for audience `all`",
        )),
        (Audience::All, Some(c), _) => Err(EngineError::Conflict(format!(
            "campaign {} already tells everyone these words (template {template}, facts version {facts_version}); nobody gets the same notice twice. To reach the people it did not reach, ask with audience `unreached` on another channel (incidentd notices start … --only-unreached); to tell everyone something new, update the facts first: a follow-up notice is approved on its own words",
            c.id
        ))),
        _ => Ok(None),
    }
}

/// A follow-up campaign's own approval, `notice-<campaign>`: decided by the notice gate's
/// approvers, with the notice lint, due as the gate was.
async fn followup_gate(
    tx: &mut crate::store::WriteTx,
    gate: &crate::store::TaskRow,
    campaign: i64,
    template: &str,
    channels: &[String],
    audience: Audience,
    now: chrono::DateTime<Utc>,
) -> Result<i64, EngineError> {
    let key = format!("{NOTICE_TASK_PREFIX}{campaign}");
    let due_at = to_micros(now) + gate.due_offset_secs.max(0) * 1_000_000;
    tx.insert_tasks(
        &[crate::store::NewTask {
            incident_id: gate.incident_id,
            key: key.clone(),
            playbook: gate.playbook.clone(),
            title: format!("Approve follow-up notice (campaign {campaign})"),
            department: gate.department.clone(),
            description: format!(
                "Campaign {campaign} sends {template} on {} to {} affected people. Its words are rendered from the incident's facts as they are now, not as `{}` approved them: review them (incidentd render {template} --incident {}) and approve or reject.",
                channels.join(", "),
                if audience == Audience::Unreached {
                    "the not yet reached"
                } else {
                    "all"
                },
                gate.key,
                gate.incident_id,
            ),
            approval: true,
            approvers: gate.approvers(),
            depends_on: Vec::new(),
            after_task: None,
            due_offset_secs: gate.due_offset_secs,
            due_at: Some(due_at),
        }],
        to_micros(now),
    )
    .await?;
    let t = tx
        .task_by_key(gate.incident_id, &key)
        .await?
        .ok_or_else(|| EngineError::Failed(format!("the approval task `{key}` is gone")))?;
    tx.schedule_timers(
        &[super::response::overdue_timer(
            gate.incident_id,
            &key,
            due_at,
        )],
        to_micros(now),
    )
    .await?;
    Ok(t.id)
}

/// What earlier campaigns of the incident already did for a batch's people.
#[derive(Default)]
struct Screen {
    /// People a delivery of an earlier campaign reached (only for an `unreached` campaign).
    reached: std::collections::HashSet<i64>,
    /// (person, channel) already given this campaign's words by an earlier campaign's
    /// delivery that did not die.
    told: std::collections::HashSet<(i64, ChannelKind)>,
}

/// The idempotency keys an earlier campaign `e` may have used for subject `s` on channel `ch`:
/// its own, and a fallback onto `ch` from another of its channels.
fn keys_on(incident: i64, e: &CampaignRow, s: i64, ch: ChannelKind) -> Vec<String> {
    let mut keys = vec![notice_key(incident, e.id, s, ch.as_str())];
    for p in channels_of(e).into_iter().filter(|p| *p != ch) {
        keys.push(format!(
            "{}>{}",
            notice_key(incident, e.id, s, p.as_str()),
            ch.as_str()
        ));
    }
    keys
}

impl Engine {
    async fn screen_batch(
        &self,
        tx: &mut crate::store::WriteTx,
        c: &CampaignRow,
        subjects: &[crate::store::CampaignSubject],
        extra: &[CampaignContent],
    ) -> Result<Screen, EngineError> {
        let earlier: Vec<CampaignRow> = tx
            .campaigns_of(c.incident_id)
            .await?
            .into_iter()
            .filter(|e| e.id < c.id && e.started_at.is_some())
            .collect();
        if earlier.is_empty() {
            return Ok(Screen::default());
        }
        let mut ids: Vec<i64> = earlier.iter().map(|e| e.id).collect();
        ids.push(c.id);
        let mut words: HashMap<(i64, String, String), String> = HashMap::new();
        for x in self
            .store()
            .campaign_contents(&ids)
            .await?
            .into_iter()
            .chain(extra.iter().cloned())
        {
            words.insert((x.campaign_id, x.channel, x.locale.to_lowercase()), x.named);
        }
        let channels = channels_of(c);
        // (key, subject, channel, counts as "told" when not dead; else only "reached" if sent)
        let mut asks: Vec<(String, i64, ChannelKind, bool)> = Vec::new();
        for s in subjects {
            let locale = s.locale.to_lowercase();
            for e in &earlier {
                for ch in channels_of(e) {
                    let same = channels.contains(&ch)
                        && words
                            .get(&(e.id, ch.as_str().into(), locale.clone()))
                            .is_some_and(|w| {
                                words.get(&(c.id, ch.as_str().into(), locale.clone())) == Some(w)
                            });
                    if !same && c.audience != "unreached" {
                        continue;
                    }
                    for k in keys_on(c.incident_id, e, s.id, ch) {
                        asks.push((k, s.id, ch, same));
                    }
                }
            }
        }
        let keys: Vec<String> = asks.iter().map(|a| a.0.clone()).collect();
        let status = tx.delivery_statuses(&keys).await?;
        let mut screen = Screen::default();
        for (k, s, ch, same) in asks {
            match status.get(&k).map(String::as_str) {
                Some("sent") if c.audience == "unreached" => {
                    screen.reached.insert(s);
                }
                _ => {}
            }
            if same && status.get(&k).is_some_and(|st| st != "dead") {
                screen.told.insert((s, ch));
            }
        }
        Ok(screen)
    }
}

fn exempt_message(incident_id: i64) -> String {
    format!(
        "incident {incident_id}'s facts claim the exemption from individual notice \
         (mitigation_effective with a justification, and no regulator_requires_notice): when Legal \
         approves the notice gate, individual notice is recorded as not required and nobody is \
         sent one. To tell people anyway, set mitigation_effective to false; a regulator's order \
         (regulator_requires_notice = true) always overrides the exemption"
    )
}

/// Render one channel and locale of a campaign's notice: with the name marker, and without a
/// name.
fn render_content(
    c: &CampaignRow,
    incident: &serde_json::Value,
    ctx: &CampaignCtx<'_>,
    channel: ChannelKind,
    locale: &str,
    link: &str,
) -> Result<CampaignContent, EngineError> {
    // The text in the language of the template version used (`fr-FR` falls back to `en`).
    let have = ctx.templates.locales(&c.template);
    let text_locale = crate::render::locale_chain(locale)
        .into_iter()
        .find_map(|l| {
            have.iter()
                .find(|h| crate::domain::text::same_locale(h, &l))
                .map(|h| h.to_string())
        })
        .unwrap_or_else(|| locale.to_string());
    let render = |named: bool| {
        let data = notice_data(incident, ctx, channel, &text_locale, named, link);
        ctx.templates
            .render_detailed(&c.template, channel, locale, &data)
            .map_err(|e| EngineError::invalid("template", e.to_string()))
    };
    let named = render(true)?;
    let anonymous = render(false)?;
    Ok(CampaignContent {
        campaign_id: c.id,
        channel: channel.as_str().to_string(),
        locale: locale.to_string(),
        used_locale: named.locale.clone(),
        named: serde_json::to_string(&named.content).unwrap_or_default(),
        anonymous: serde_json::to_string(&anonymous.content).unwrap_or_default(),
    })
}

impl CampaignContent {
    /// The e-mail rendering, kept as the full notice of the subject's own page.
    fn into_page(mut self) -> CampaignContent {
        self.channel = PAGE.into();
        self
    }
}

#[cfg(test)]
mod tests;
