//! Pages to one person are coalesced: within `[paging] coalesce` after a page to someone on a
//! channel, further pages to them on that channel are held and go out together, as one digest
//! rendered from `page/digest`, when the window ends. Nothing is dropped: the digest lists every
//! page it holds (most severe first), and each held page ends with the digest's outcome.
//!
//! * Which pages: deliveries with purpose `page` that the response enqueues through
//!   [`enqueue_pages`] (the playbook's pages, escalations, overdue tasks' lead pages, dead-page
//!   escalations). Drills' own traffic (purpose `drill`), notices, reports, the periodic status
//!   digest and pages sent by hand are never held.
//! * Which channels: every channel, except one whose provider accepts only pre-approved
//!   templates (Aliyun, Tencent) and has no code for `page/digest` — a digest could not go out
//!   there, so its pages go out one by one ([`channels_without_digest`]; `incidentd check`
//!   warns).
//! * The window rules and the outbox side are in [`crate::store::WriteTx::hold_or_send`]; the
//!   digest is re-rendered here each time a page joins it, in the same transaction. A digest
//!   that holds one page is that page's own message, sent at the window's end.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::warn;

use super::EngineError;
use super::response::ResponseCtx;
use crate::config::{ChannelsConfig, PagingConfig};
use crate::domain::message::{ChannelKind, Content, Purpose};
use crate::domain::time::{from_micros, to_micros};
use crate::render::context::{org_value, recipient_value};
use crate::render::digest::{PageNote, SHORT_LIST, digest_value};
use crate::store::{HeldPage, NewDelivery, NewEvent, Placement, WriteTx};

pub use crate::config::{DIGEST_TEMPLATE, channels_without_digest};

/// What `incidentd check` says about coalescing: (summary line, warnings).
pub fn check(
    paging: &PagingConfig,
    channels: &ChannelsConfig,
    templates: &[&str],
) -> (String, Vec<String>) {
    if paging.coalesce.0.is_zero() {
        return (
            "no coalescing ([paging] coalesce = \"0s\"): every page goes out by itself".into(),
            Vec::new(),
        );
    }
    let mut warnings = Vec::new();
    for kind in &paging.no_digest {
        let provider = match kind {
            ChannelKind::Sms => channels.sms.as_ref(),
            _ => channels.voice.as_ref(),
        }
        .map(|c| c.provider.as_str())
        .unwrap_or_default();
        warnings.push(format!(
            "paging.coalesce: [channels.{kind}] uses {provider}, which sends only approved templates, and has no code for `{DIGEST_TEMPLATE}`: pages by {kind} are not coalesced (every one goes out by itself). Add [channels.{kind}.templates] \"{DIGEST_TEMPLATE}\" = \"<approved code>\" to coalesce them"
        ));
    }
    if !templates.contains(&DIGEST_TEMPLATE) {
        warnings.push(format!(
            "paging.coalesce: there is no `{DIGEST_TEMPLATE}` template: digests go out in plain built-in English; add templates/page/digest.<locale>.hbs (the shipped ones are a start)"
        ));
    }
    let on: Vec<&str> = [ChannelKind::Email, ChannelKind::Sms, ChannelKind::Voice]
        .into_iter()
        .filter(|k| paging.coalesces(*k))
        .map(ChannelKind::as_str)
        .collect();
    (
        format!(
            "pages to one person within {} are coalesced into one digest ({})",
            paging.coalesce,
            on.join(", ")
        ),
        warnings,
    )
}

/// Enqueue the response's pages: those that may be coalesced through the digest windows, the
/// rest at once. Returns the audit events (`page.coalesced`, per incident with held pages).
pub async fn enqueue_pages(
    tx: &mut WriteTx,
    ctx: &ResponseCtx<'_>,
    pages: &[NewDelivery],
    now: DateTime<Utc>,
) -> Result<Vec<NewEvent>, EngineError> {
    let now_us = to_micros(now);
    let (held, direct): (Vec<&NewDelivery>, Vec<&NewDelivery>) = pages
        .iter()
        .partition(|p| p.purpose == Purpose::Page && ctx.paging.coalesces(p.channel));
    let direct: Vec<NewDelivery> = direct.into_iter().cloned().collect();
    tx.enqueue_deliveries(&direct, now_us).await?;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let window = i64::try_from(ctx.paging.coalesce.0.as_micros()).unwrap_or(i64::MAX);
    let placeholder = Content {
        text: "(a digest of pages; rendered as pages join it)".into(),
        template: Some(DIGEST_TEMPLATE.into()),
        ..Default::default()
    };
    let mut digests: BTreeMap<i64, &NewDelivery> = BTreeMap::new();
    let mut per_incident: BTreeMap<Option<i64>, Vec<Value>> = BTreeMap::new();
    for p in held {
        if let Placement::Held {
            id, digest, due, ..
        } = tx.hold_or_send(p, &placeholder, now_us, window).await?
        {
            digests.insert(digest, p);
            per_incident.entry(p.incident_id).or_default().push(json!({
                "delivery": id,
                "channel": p.channel,
                "digest": digest,
                "due_at": from_micros(due),
            }));
        }
    }
    for (digest, p) in digests {
        let items = tx.held_pages(digest).await?;
        let content = render_digest(ctx, p.channel, &p.recipient, &p.locale, &items, now);
        tx.set_pending_content(digest, &content).await?;
    }
    Ok(per_incident
        .into_iter()
        .map(|(incident, held)| {
            NewEvent::new(
                now,
                "incidentd",
                "page.coalesced",
                incident,
                &json!({ "held": held, "window": ctx.paging.coalesce.to_string() }),
            )
        })
        .collect())
}

fn notes(items: &[HeldPage]) -> Vec<PageNote> {
    let mut out: Vec<PageNote> = items
        .iter()
        .map(|h| {
            let content: Content = serde_json::from_str(&h.content).unwrap_or_default();
            content
                .data
                .and_then(|d| serde_json::from_value::<PageNote>(d).ok())
                .unwrap_or_else(|| PageNote {
                    incident_id: h.incident_id.unwrap_or_default(),
                    severity: "?".into(),
                    title: content.subject.unwrap_or(content.text),
                    ack: None,
                    recipient_name: None,
                })
        })
        .collect();
    // Most severe first (S1 < S2 as text), then in incident order.
    out.sort_by(|a, b| (&a.severity, a.incident_id).cmp(&(&b.severity, b.incident_id)));
    out
}

fn render_digest(
    ctx: &ResponseCtx<'_>,
    channel: ChannelKind,
    address: &str,
    locale: &str,
    items: &[HeldPage],
    now: DateTime<Utc>,
) -> Content {
    // One page held: it goes out as itself, only later (a digest of one would say less).
    if let [only] = items
        && let Ok(content) = serde_json::from_str::<Content>(&only.content)
    {
        return content;
    }
    let notes = notes(items);
    let name = notes.iter().find_map(|n| n.recipient_name.clone());
    let base = ctx.public_url.trim_end_matches('/');
    let digest = digest_value(&notes, &ctx.paging.coalesce.to_string(), Some(base));
    let data = json!({
        "org": org_value(ctx.render.org),
        "recipient": recipient_value(name.as_deref(), channel, address, locale),
        "links": { "ack": null, "console": format!("{base}/console") },
        "digest": digest,
        "now": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    ctx.render
        .templates
        .render(DIGEST_TEMPLATE, channel, locale, &data)
        .unwrap_or_else(|e| {
            warn!(error = %e, template = DIGEST_TEMPLATE, "digest template failed; sending a plain digest");
            plain_digest(&notes, channel)
        })
}

/// The digest when its template cannot be rendered: every page named, in English.
fn plain_digest(notes: &[PageNote], channel: ChannelKind) -> Content {
    let s1 = notes.iter().filter(|n| n.severity == "S1").count();
    let head = format!("{} incidents paged to you, {s1} S1", notes.len());
    let line = |n: &PageNote| format!("#{} [{}] {}", n.incident_id, n.severity, n.title);
    let text = match channel {
        ChannelKind::Email => {
            let mut t = format!("{head}:\n\n");
            for n in notes {
                t.push_str(&line(n));
                if let Some(a) = &n.ack {
                    t.push_str(&format!("\n  acknowledge: {a}"));
                }
                t.push('\n');
            }
            t
        }
        _ => {
            let first: Vec<String> = notes.iter().take(SHORT_LIST).map(line).collect();
            let more = notes.len().saturating_sub(SHORT_LIST);
            let tail = if more > 0 {
                format!("; and {more} more: see e-mail or the console")
            } else {
                String::new()
            };
            format!("{head}: {}{tail}", first.join("; "))
        }
    };
    let mut params = BTreeMap::new();
    params.insert("count".into(), notes.len().to_string());
    params.insert("s1".into(), s1.to_string());
    params.insert(
        "first".into(),
        notes
            .iter()
            .take(SHORT_LIST)
            .map(|n| format!("#{}", n.incident_id))
            .collect::<Vec<_>>()
            .join(","),
    );
    params.insert(
        "more".into(),
        notes.len().saturating_sub(SHORT_LIST).to_string(),
    );
    Content {
        subject: Some(head),
        text,
        template: Some(DIGEST_TEMPLATE.into()),
        params,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(id: i64, sev: &str) -> PageNote {
        PageNote {
            incident_id: id,
            severity: sev.into(),
            title: format!("incident {id}"),
            ack: None,
            recipient_name: None,
        }
    }

    #[test]
    fn the_digest_lists_the_most_severe_first_and_counts_what_it_holds() {
        let held: Vec<HeldPage> = [(5, "S3"), (6, "S1"), (7, "S2"), (8, "S1"), (9, "S3")]
            .into_iter()
            .map(|(id, sev)| HeldPage {
                id,
                incident_id: Some(id),
                content: serde_json::to_string(&Content {
                    text: "x".into(),
                    data: Some(serde_json::to_value(note(id, sev)).unwrap()),
                    ..Default::default()
                })
                .unwrap(),
            })
            .collect();
        let v = digest_value(&notes(&held), "2m", None);
        let ids: Vec<i64> = v["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["incident_id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![6, 8, 7, 5, 9]);
        assert_eq!(v["count"], 5);
        assert_eq!(v["s1"], 2);
        assert_eq!(v["more"], 3);
        assert_eq!(v["first"].as_array().unwrap().len(), SHORT_LIST);
        assert_eq!(v["top_severity"], "S1");
        assert_eq!(v["by_severity"][0], json!({"severity": "S1", "count": 2}));
        let plain = plain_digest(&notes(&held), ChannelKind::Sms);
        assert!(
            plain.text.starts_with("5 incidents paged to you, 2 S1: #6"),
            "{}",
            plain.text
        );
        assert!(plain.text.contains("and 3 more"), "{}", plain.text);
        let mail = plain_digest(&notes(&held), ChannelKind::Email);
        for id in [5, 6, 7, 8, 9] {
            assert!(mail.text.contains(&format!("#{id} ")), "{}", mail.text);
        }
    }

    #[test]
    fn template_only_channels_coalesce_only_with_a_digest_code() {
        let c: ChannelsConfig = toml::from_str(
            "[sms]\nprovider = \"aliyun\"\nkey_id = \"k\"\nkey_secret = \"s\"\nsign_name = \"n\"\n\
             [sms.templates]\n\"page/incident_opened\" = \"SMS_1\"\n\
             [voice]\nprovider = \"tencent\"\nkey_id = \"k\"\nkey_secret = \"s\"\napp_id = \"1\"\n\
             [voice.templates]\n\"page/incident_opened\" = \"1\"\n\"page/digest\" = \"2\"\n",
        )
        .unwrap();
        assert_eq!(channels_without_digest(&c), vec![ChannelKind::Sms]);
        let paging = PagingConfig {
            coalesce: "2m".parse().unwrap(),
            no_digest: channels_without_digest(&c),
            ..PagingConfig::default()
        };
        assert!(!paging.coalesces(ChannelKind::Sms));
        assert!(paging.coalesces(ChannelKind::Voice) && paging.coalesces(ChannelKind::Email));
        let (line, warnings) = check(&paging, &c, &["page/digest"]);
        assert!(
            line.contains("within 2m") && line.contains("(email, voice)"),
            "{line}"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("[channels.sms] uses aliyun")
                && warnings[0].contains("\"page/digest\" = \"<approved code>\""),
            "{}",
            warnings[0]
        );
        let off = PagingConfig::default();
        assert!(!off.coalesces(ChannelKind::Email));
    }
}
