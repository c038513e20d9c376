//! Twilio Messages (`…/Messages.json`) and Calls (`…/Calls.json` with inline `<Say>` TwiML).

use serde::Deserialize;

use super::{Answer, PhoneChannel, Prepared, short};
use crate::channels::{ChannelKind, Outgoing, SendError, Sent, sign};

const API: &str = "2010-04-01";

/// `Say`'s `language` for a delivery locale: a full tag (`zh-CN`, `en-GB`) is used as it is; a
/// bare language gets its most common region.
pub(super) fn say_language(locale: &str) -> String {
    let locale = locale.trim().replace('_', "-");
    if locale.contains('-') {
        return locale;
    }
    let full = match locale.to_ascii_lowercase().as_str() {
        "zh" => "zh-CN",
        "en" | "" => "en-US",
        "fr" => "fr-FR",
        "de" => "de-DE",
        "es" => "es-ES",
        "it" => "it-IT",
        "ja" => "ja-JP",
        "ko" => "ko-KR",
        "pt" => "pt-BR",
        "ru" => "ru-RU",
        other => return other.to_string(),
    };
    full.to_string()
}

/// XML-escape text for an element or a double-quoted attribute.
pub(super) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn twiml(text: &str, locale: &str) -> String {
    format!(
        "<Response><Say language=\"{}\">{}</Say></Response>",
        xml_escape(&say_language(locale)),
        xml_escape(text)
    )
}

pub(super) fn prepare(ch: &PhoneChannel, msg: &Outgoing, to: &str) -> Result<Prepared, SendError> {
    if msg.content.text.trim().is_empty() {
        return Err(SendError::Permanent(format!(
            "the {} message has no text to send through twilio",
            ch.kind
        )));
    }
    let from = ch.cfg.from.as_deref().unwrap_or_default();
    let (resource, fields): (&str, Vec<(&str, String)>) = if ch.kind == ChannelKind::Voice {
        (
            "Calls.json",
            vec![
                ("To", to.to_string()),
                ("From", from.to_string()),
                ("Twiml", twiml(&msg.content.text, &msg.locale)),
            ],
        )
    } else {
        let sender = if from.starts_with("MG") {
            "MessagingServiceSid"
        } else {
            "From"
        };
        (
            "Messages.json",
            vec![
                ("To", to.to_string()),
                (sender, from.to_string()),
                ("Body", msg.content.text.clone()),
            ],
        )
    };
    let mut url = ch.base.clone();
    url.path_segments_mut()
        .map_err(|()| SendError::Permanent(format!("base_url `{}` cannot take a path", ch.base)))?
        .pop_if_empty()
        .extend([API, "Accounts", ch.key_id(), resource]);
    let body = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                sign::percent_encode_rfc3986(k),
                sign::percent_encode_rfc3986(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    Ok(Prepared {
        url,
        headers: vec![
            (
                "authorization",
                sign::basic_auth(ch.key_id(), ch.key_secret()),
            ),
            (
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("accept", "application/json".to_string()),
        ],
        body: body.into_bytes(),
    })
}

#[derive(Debug, Default, Deserialize)]
struct Reply {
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    more_info: Option<String>,
}

pub(super) fn interpret(answer: &Answer) -> Result<Sent, SendError> {
    let reply: Reply = serde_json::from_str(&answer.body).unwrap_or_default();
    if answer.status.is_success() {
        return match reply.sid {
            Some(sid) => Ok(Sent {
                provider_message_id: Some(sid),
            }),
            // Accepted, but we cannot name it: sent all the same.
            None => Ok(Sent::default()),
        };
    }
    let Some(message) = reply.message else {
        return Err(SendError::from_status(answer.status, &answer.body));
    };
    let code = match reply.code {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s,
        _ => "-".to_string(),
    };
    let text = format!(
        "twilio answered {}: error {code}: {}{}",
        answer.status,
        short(&message),
        reply
            .more_info
            .map(|u| format!(" ({u})"))
            .unwrap_or_default()
    );
    // The status decides: 429 and 5xx are worth another try, other 4xx are not.
    Err(match SendError::from_status(answer.status, "") {
        SendError::Transient(_) => SendError::Transient(text),
        _ => SendError::Permanent(text),
    })
}
