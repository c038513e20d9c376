//! Enqueueing deliveries: checked here (recipients, content), written with an audit event in
//! one transaction. The dispatcher is woken by the commit.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{Engine, EngineError};
use crate::config::{DepartmentConfig, OrganisationConfig, RegulatorConfig};
use crate::domain::message::{
    ChannelKind, Content, Purpose, validate_recipient, validate_recipient_in,
};
use crate::domain::time::to_micros;
use crate::render::context::recipient_value;
use crate::render::{Templates, incident_context};
use crate::store::{FallbackTarget, NewDelivery, NewEvent};

/// One delivery as a caller asks for it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRequest {
    #[schema(value_type = String, example = "sms")]
    pub channel: ChannelKind,
    /// E-mail address, phone number (international, or national in `[organisation]
    /// default_region`), site user id, or webhook target name.
    pub recipient: String,
    #[serde(default = "default_purpose")]
    #[schema(value_type = String, example = "page")]
    pub purpose: Purpose,
    #[serde(default)]
    pub locale: Option<String>,
    /// The message, already written; or leave it out and name a `template`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub content: Option<Content>,
    /// A template (`page/incident_opened`) rendered for this channel, locale and incident.
    #[serde(default)]
    pub template: Option<String>,
    /// The recipient's name, for templates that greet them.
    #[serde(default)]
    pub recipient_name: Option<String>,
    /// Channels to try, in order, if this one dies.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub fallback: Vec<FallbackRequest>,
    /// Unique key; by default derived from the incident, purpose, channel, recipient and
    /// content, so sending the same request twice makes one delivery.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// A channel to fall back to: its own address, and its own words or template.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackRequest {
    #[schema(value_type = String, example = "email")]
    pub channel: ChannelKind,
    pub recipient: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub content: Option<Content>,
    #[serde(default)]
    pub template: Option<String>,
}

/// What enqueueing needs from the live configuration: templates and organisation for
/// rendering, which channels (and webhook targets) exist, and whom a page by hand may reach.
pub struct DeliveryCtx<'a> {
    pub templates: &'a Templates,
    pub org: &'a OrganisationConfig,
    pub channels: &'a [ChannelKind],
    pub webhooks: &'a [String],
    pub reach: &'a ManualReach,
}

/// Whom a message sent by hand (`POST /api/v1/incidents/{id}/deliveries`) may reach: the joint
/// response team — every `[[departments]]` member, on the e-mail address and phone number the
/// configuration gives them — and the `[[channels.webhooks]]` targets that are not reserved for
/// the public announcement or a regulator. Anyone else (affected people, customers, any other
/// address, any site user's inbox) is told through a notice campaign, which is approved first.
#[derive(Debug, Clone, Default)]
pub struct ManualReach {
    /// Members' configured e-mail addresses (lower case) and phone numbers (E.164).
    emails: BTreeSet<String>,
    phones: BTreeSet<String>,
    /// Webhook targets a page may use.
    webhooks: BTreeSet<String>,
    /// Webhook targets that publish or report, and what for.
    reserved: BTreeMap<String, String>,
}

impl ManualReach {
    pub fn new(
        departments: &[DepartmentConfig],
        webhooks: &[String],
        announcement_webhook: Option<&str>,
        regulators: &[RegulatorConfig],
    ) -> ManualReach {
        let mut r = ManualReach::default();
        for m in departments.iter().flat_map(|d| &d.members) {
            if let Some(e) = m.email.as_deref()
                && let Ok(e) = validate_recipient(ChannelKind::Email, e)
            {
                r.emails.insert(e.to_lowercase());
            }
            if let Some(p) = m.phone.as_deref()
                && let Ok(p) = validate_recipient(ChannelKind::Sms, p)
            {
                r.phones.insert(p);
            }
        }
        if let Some(w) = announcement_webhook {
            r.reserved.insert(
                w.to_string(),
                "the public announcement ([announcements] webhook)".into(),
            );
        }
        for g in regulators {
            if let Some(w) = &g.webhook {
                r.reserved
                    .entry(w.clone())
                    .or_insert_with(|| format!("reports to regulator `{}`", g.id));
            }
        }
        r.webhooks = webhooks
            .iter()
            .filter(|w| !r.reserved.contains_key(*w))
            .cloned()
            .collect();
        r
    }

    /// Why `recipient` (checked and normalised) may not be reached by hand on `channel`.
    pub fn refusal(
        &self,
        incident_id: i64,
        channel: ChannelKind,
        recipient: &str,
    ) -> Option<String> {
        let campaign = format!(
            "to tell anyone outside the response team, start a notice campaign \
             (POST /api/v1/incidents/{incident_id}/notices, `incidentd notices start {incident_id}`), \
             which is sent only once it is approved"
        );
        let masked = crate::domain::message::mask(channel, recipient);
        match channel {
            ChannelKind::Email if self.emails.contains(&recipient.to_lowercase()) => None,
            ChannelKind::Sms | ChannelKind::Voice if self.phones.contains(recipient) => None,
            ChannelKind::Webhook if self.webhooks.contains(recipient) => None,
            ChannelKind::Webhook => Some(match self.reserved.get(recipient) {
                Some(what) => format!(
                    "webhook target `{recipient}` is reserved for {what}, which goes out only once approved: pages by hand may not use it"
                ),
                None => format!("no [[channels.webhooks]] target is named `{recipient}`"),
            }),
            ChannelKind::Email | ChannelKind::Sms | ChannelKind::Voice => Some(format!(
                "{masked} is not the {} of a member of the response team ([[departments]] members): \
                 pages by hand reach only the team's members, on the contacts the configuration \
                 gives them, and configured [[channels.webhooks]] targets; {campaign}",
                if channel == ChannelKind::Email {
                    "e-mail address"
                } else {
                    "phone number"
                }
            )),
            ChannelKind::Inbox | ChannelKind::SiteWebhook => Some(format!(
                "{channel} reaches a site user (`{masked}`), not the response team: pages by hand \
                 reach only the team's members and configured [[channels.webhooks]] targets; {campaign}"
            )),
        }
    }
}

/// Most deliveries in one request, and fallbacks per delivery.
pub const MAX_DELIVERIES: usize = 1000;
pub const MAX_FALLBACKS: usize = 3;

impl Engine {
    /// The incident deliveries by hand are sent for, as template values, and whether they may
    /// reach only its response team: a drill's deliveries reach only its own recipient list
    /// (the dispatcher's drill guard); everything else sent by hand reaches only the team.
    async fn sent_for(
        &self,
        incident_id: Option<i64>,
    ) -> Result<(Option<serde_json::Value>, Option<i64>), EngineError> {
        let incident = match incident_id {
            Some(id) => Some(
                self.store()
                    .incident(id)
                    .await?
                    .ok_or_else(|| EngineError::NotFound(format!("there is no incident {id}")))?,
            ),
            None => None,
        };
        let team_only = match (&incident, incident_id) {
            (Some(i), Some(id)) if !i.drill => Some(id),
            _ => None,
        };
        let incident = incident
            .as_ref()
            .map(|i| serde_json::to_value(i).unwrap_or_default());
        Ok((incident, team_only))
    }
}

/// A delivery's idempotency key. A caller's key is scoped to its incident: the same key on
/// another incident is another message, never a silent duplicate. Without one, the key is
/// derived from what is sent.
fn request_key(at: &str, key: Option<String>, d: &NewDelivery) -> Result<String, EngineError> {
    match key {
        Some(k) if !k.trim().is_empty() && k.len() <= 200 => Ok(format!(
            "{}:key:{k}",
            d.incident_id
                .map_or_else(|| "-".to_string(), |i| i.to_string())
        )),
        Some(_) => Err(EngineError::invalid(
            &format!("{at}.idempotency_key"),
            "give 1 to 200 characters, or leave it out",
        )),
        None => Ok(derived_key(d.incident_id, d)),
    }
}

/// What every target of a request (the delivery, then each fallback) is checked against.
struct Targets<'a, 'c> {
    render: &'a DeliveryCtx<'c>,
    /// The incident, for templates.
    incident: Option<&'a serde_json::Value>,
    /// A real incident's deliveries by hand reach only its response team.
    team_only: Option<i64>,
    region: Option<crate::domain::message::Region>,
}

/// One target as a request gives it: the delivery's own, or one of its fallbacks (which share
/// the delivery's name and locale).
struct Asked<'r> {
    channel: ChannelKind,
    recipient: &'r str,
    name: Option<&'r str>,
    locale: &'r str,
    content: Option<Content>,
    template: Option<String>,
}

impl Targets<'_, '_> {
    /// One target at `at`: its recipient read for the channel, its content resolved and
    /// complete, its channel configured, its recipient within reach.
    fn target(&self, at: &str, a: Asked<'_>) -> Result<(String, Content), EngineError> {
        let channel = a.channel;
        let recipient = validate_recipient_in(channel, a.recipient, self.region)
            .map_err(|m| EngineError::invalid(&format!("{at}.recipient"), m))?;
        let content = resolve_content(at, a, &recipient, self.incident, self.render)?;
        check_content(&format!("{at}.content"), channel, &content)?;
        check_channel(at, channel, &recipient, self.render)?;
        check_reach(at, self.team_only, channel, &recipient, self.render)?;
        Ok((recipient, content))
    }
}

/// A delivery on a channel (or to a webhook target) this daemon does not have would only die
/// in the dispatcher: refuse it now.
fn check_channel(
    path: &str,
    channel: ChannelKind,
    recipient: &str,
    ctx: &DeliveryCtx<'_>,
) -> Result<(), EngineError> {
    if !ctx.channels.contains(&channel) {
        return Err(EngineError::invalid(
            &format!("{path}.channel"),
            format!(
                "the {channel} channel is not configured: add [channels.{channel}] to the configuration"
            ),
        ));
    }
    if channel == ChannelKind::Webhook && !ctx.webhooks.iter().any(|w| w == recipient) {
        return Err(EngineError::invalid(
            &format!("{path}.recipient"),
            format!(
                "no [[channels.webhooks]] target is named `{recipient}`; configured: {}",
                ctx.webhooks.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A message sent by hand about a (real) incident reaches the response team only
/// ([`ManualReach`]); an operator's test send (no incident) goes where the operator says.
fn check_reach(
    path: &str,
    team_only: Option<i64>,
    channel: ChannelKind,
    recipient: &str,
    ctx: &DeliveryCtx<'_>,
) -> Result<(), EngineError> {
    let Some(incident_id) = team_only else {
        return Ok(());
    };
    match ctx.reach.refusal(incident_id, channel, recipient) {
        Some(why) => Err(EngineError::invalid(&format!("{path}.recipient"), why)),
        None => Ok(()),
    }
}

fn default_purpose() -> Purpose {
    Purpose::Page
}

/// A stable key for a delivery: what it is for, to whom, and exactly what it says.
pub fn derived_key(incident_id: Option<i64>, d: &NewDelivery) -> String {
    let content = serde_json::to_string(&d.content).unwrap_or_default();
    let mut h = crate::domain::audit::sha256_hex(
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{content}",
            incident_id.map(|i| i.to_string()).unwrap_or_default(),
            d.purpose.as_str(),
            d.channel.as_str(),
            d.recipient
        )
        .as_bytes(),
    );
    h.truncate(32);
    format!(
        "{}:{}:{}:{h}",
        incident_id.map_or_else(|| "-".to_string(), |i| i.to_string()),
        d.purpose.as_str(),
        d.channel.as_str()
    )
}

fn check_content(path: &str, channel: ChannelKind, c: &Content) -> Result<(), EngineError> {
    if c.text.trim().is_empty() && c.html.is_none() && c.template.is_none() {
        return Err(EngineError::invalid(
            &format!("{path}.text"),
            "give the message some text (or a template for template-only providers)",
        ));
    }
    if channel == ChannelKind::Email && c.subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(EngineError::invalid(
            &format!("{path}.subject"),
            "e-mail needs a subject",
        ));
    }
    Ok(())
}

/// The words of one target: given, or rendered from a template against the incident, for the
/// (checked) recipient.
fn resolve_content(
    path: &str,
    a: Asked<'_>,
    recipient: &str,
    incident: Option<&serde_json::Value>,
    render: &DeliveryCtx<'_>,
) -> Result<Content, EngineError> {
    let Asked {
        channel,
        name,
        locale,
        content,
        template,
        ..
    } = a;
    match (content, template) {
        (Some(c), None) => Ok(c),
        (None, Some(t)) => {
            let mut data = match incident {
                Some(i) => incident_context(i, render.org),
                None => {
                    return Err(EngineError::invalid(
                        &format!("{path}.template"),
                        "templates render an incident; give `content` for messages without one",
                    ));
                }
            };
            data["recipient"] = recipient_value(name, channel, recipient, locale);
            render
                .templates
                .render(&t, channel, locale, &data)
                .map_err(|e| EngineError::invalid(&format!("{path}.template"), e.to_string()))
        }
        (Some(_), Some(_)) => Err(EngineError::invalid(
            path,
            "give either `content` or `template`, not both",
        )),
        (None, None) => Err(EngineError::invalid(
            path,
            "give the message as `content` ({\"subject\", \"text\"}) or name a `template`",
        )),
    }
}

impl Engine {
    /// Check and enqueue deliveries (for an incident, or none for operator tests). Returns
    /// their ids in order; a key already enqueued returns the existing delivery's id.
    pub async fn enqueue(
        &self,
        incident_id: Option<i64>,
        requests: Vec<DeliveryRequest>,
        render: &DeliveryCtx<'_>,
        actor: &str,
    ) -> Result<Vec<i64>, EngineError> {
        if requests.is_empty() || requests.len() > MAX_DELIVERIES {
            return Err(EngineError::invalid(
                "deliveries",
                format!("give 1 to {MAX_DELIVERIES} deliveries per request"),
            ));
        }
        let (incident, team_only) = self.sent_for(incident_id).await?;
        let check = Targets {
            render,
            incident: incident.as_ref(),
            team_only,
            region: render.org.phone_region(),
        };
        let default_locale = render.org.default_locale.as_str();
        let mut items = Vec::with_capacity(requests.len());
        for (i, r) in requests.into_iter().enumerate() {
            let at = format!("deliveries[{i}]");
            if r.fallback.len() > MAX_FALLBACKS {
                return Err(EngineError::invalid(
                    &format!("{at}.fallback"),
                    format!("give at most {MAX_FALLBACKS} fallbacks"),
                ));
            }
            let locale = r.locale.unwrap_or_else(|| default_locale.to_string());
            let name = r.recipient_name.as_deref();
            let (recipient, content) = check.target(
                &at,
                Asked {
                    channel: r.channel,
                    recipient: &r.recipient,
                    name,
                    locale: &locale,
                    content: r.content,
                    template: r.template,
                },
            )?;
            let mut fallback = Vec::with_capacity(r.fallback.len());
            for (j, f) in r.fallback.into_iter().enumerate() {
                let (recipient, content) = check.target(
                    &format!("{at}.fallback[{j}]"),
                    Asked {
                        channel: f.channel,
                        recipient: &f.recipient,
                        name,
                        locale: &locale,
                        content: f.content,
                        template: f.template,
                    },
                )?;
                fallback.push(FallbackTarget {
                    channel: f.channel,
                    recipient,
                    content,
                });
            }
            let mut d = NewDelivery {
                idempotency_key: String::new(),
                incident_id,
                purpose: r.purpose,
                channel: r.channel,
                recipient,
                locale,
                content,
                fallback,
                fallback_of: None,
            };
            d.idempotency_key = request_key(&at, r.idempotency_key, &d)?;
            items.push(d);
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let ids = tx.enqueue_deliveries(&items, to_micros(now)).await?;
        let mut channels: Vec<&str> = items.iter().map(|d| d.channel.as_str()).collect();
        channels.sort_unstable();
        channels.dedup();
        tx.append(&[NewEvent::new(
            now,
            actor,
            "deliveries.enqueued",
            incident_id,
            &json!({ "ids": ids, "channels": channels }),
        )])
        .await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Let a drill incident reach these recipients (the drill's responders and capture sinks).
    pub async fn allow_drill_recipients(
        &self,
        incident_id: i64,
        recipients: Vec<(ChannelKind, String)>,
        actor: &str,
    ) -> Result<(), EngineError> {
        let mut checked = Vec::with_capacity(recipients.len());
        for (i, (channel, r)) in recipients.into_iter().enumerate() {
            let r = validate_recipient(channel, &r)
                .map_err(|m| EngineError::invalid(&format!("recipients[{i}].recipient"), m))?;
            checked.push((channel, r));
        }
        let now = Utc::now();
        let mut tx = self.store().begin_write().await?;
        let inc = tx
            .incident(incident_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("there is no incident {incident_id}")))?;
        if !inc.drill {
            return Err(EngineError::Conflict(format!(
                "incident {incident_id} is not a drill: only drills have recipient lists"
            )));
        }
        tx.allow_drill_recipients(incident_id, &checked).await?;
        let masked: Vec<String> = checked
            .iter()
            .map(|(c, r)| format!("{c}:{}", crate::domain::message::mask(*c, r)))
            .collect();
        tx.append(&[NewEvent::new(
            now,
            actor,
            "drill.recipients_allowed",
            Some(incident_id),
            &json!({ "recipients": masked }),
        )])
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
