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
use crate::domain::string_enum;
use crate::domain::time::to_micros;
use crate::render::Templates;
use crate::render::context::recipient_value;
use crate::store::{
    CampaignContent, CampaignRow, FallbackTarget, NewCampaign, NewDelivery, NewEvent, ProgressBump,
    TaskRow, WriteTx, notice_key, notice_recipient,
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

string_enum! {
    #[derive(Default)]
    Mode {
        /// Every chosen channel the subject has.
        #[default]
        All => "all",
        /// The first chosen channel the subject has; the next ones if it dies.
        First => "first",
    } what = "a campaign mode"
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

string_enum! {
    /// Who a campaign is for.
    #[derive(Default)]
    Audience {
        /// Every affected person.
        #[default]
        All => "all",
        /// Only people no earlier campaign of the incident reached.
        Unreached => "unreached",
    } what = "a campaign audience"
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

/// A campaign's channels: at least one, each a notice channel that is configured, none twice.
fn check_channels(channels: &[ChannelKind], ctx: &CampaignCtx<'_>) -> Result<(), EngineError> {
    if channels.is_empty() {
        return Err(EngineError::invalid(
            "channels",
            "name at least one channel, in order of preference, e.g. [\"inbox\", \"sms\", \"email\"]",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, c) in channels.iter().enumerate() {
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
    Ok(())
}

/// The notice must render now (facts present, template whole), on every channel and in every
/// language.
fn must_render(
    inc: &crate::domain::records::Incident,
    template: &str,
    channels: &[ChannelKind],
    ctx: &CampaignCtx<'_>,
) -> Result<(), EngineError> {
    let value = serde_json::to_value(inc).unwrap_or_default();
    for c in channels {
        for locale in ctx.templates.locales(template) {
            let data = notice_data(
                &value,
                ctx,
                *c,
                locale,
                true,
                crate::render::context::SAMPLE_NOTICE_URL,
            );
            ctx.templates
                .render(template, *c, locale, &data)
                .map_err(|e| EngineError::invalid("template", e.to_string()))?;
        }
    }
    Ok(())
}

/// The notice gate a campaign that needs approval waits for: the incident's approval task
/// (refused when missing or rejected); or, when that gate was decided for earlier campaigns, the
/// gate to copy into this campaign's own approval (`followup_gate`).
async fn notice_gate_of(
    tx: &mut WriteTx,
    incident_id: i64,
    ctx: &CampaignCtx<'_>,
    has_earlier: bool,
) -> Result<(Option<i64>, Option<TaskRow>), EngineError> {
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
    if t.is_closed() && has_earlier {
        Ok((None, Some(t.clone())))
    } else {
        Ok((Some(t.id), None))
    }
}

impl Engine {
    /// A campaign is refused for an incident whose facts exempt it from individual notice, or
    /// whose notice gate was approved as such an exemption.
    async fn not_exempted(
        &self,
        inc: &crate::domain::records::Incident,
    ) -> Result<(), EngineError> {
        if crate::domain::notice::exempt_from_individual_notice(&inc.facts) {
            return Err(EngineError::Conflict(exempt_message(inc.id)));
        }
        if self.store().has_event(inc.id, "notice.exempted").await? {
            return Err(EngineError::Conflict(format!(
                "incident {}'s notice gate was approved as an exemption (individual notice \
                 not required), not as approval of a notice's words; its facts no longer allow the \
                 exemption, but a new approval of the notice itself cannot be asked for yet: \
                 declare a follow-up incident for the notice",
                inc.id
            )));
        }
        Ok(())
    }
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
        check_channels(&req.channels, ctx)?;
        let template = req
            .template
            .clone()
            .unwrap_or_else(|| ctx.notices.template.clone());
        check_notice_template(&template, ctx)?;
        let inc =
            self.store().incident(incident_id).await?.ok_or_else(|| {
                EngineError::NotFound(format!("there is no incident {incident_id}"))
            })?;
        must_render(&inc, &template, &req.channels, ctx)?;
        self.not_exempted(&inc).await?;
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
        let (approval_task, own_gate) = if needs_approval {
            notice_gate_of(&mut tx, incident_id, ctx, !earlier.is_empty()).await?
        } else {
            (None, None)
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

mod run;

#[cfg(test)]
mod tests;
