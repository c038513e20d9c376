//! `generic_http`: one JSON POST to a gateway of your own.

use std::collections::BTreeMap;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{Answer, PhoneChannel, Prepared, Stamp};
use crate::channels::{ChannelKind, Outgoing, SendError, Sent, sign};

/// The JSON body a `generic_http` gateway receives.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct GenericBody {
    /// `sms` or `voice`.
    pub kind: ChannelKind,
    /// E.164.
    pub to: String,
    /// The rendered text (the SMS body, or the words a call speaks).
    pub text: String,
    pub from: Option<String>,
    /// Our template name, for gateways that map it to approved templates themselves.
    pub template: Option<String>,
    pub params: BTreeMap<String, String>,
    pub locale: String,
    pub idempotency_key: String,
    pub delivery_id: i64,
}

pub(super) fn prepare(
    ch: &PhoneChannel,
    msg: &Outgoing,
    to: &str,
    stamp: &Stamp,
) -> Result<Prepared, SendError> {
    let body = serde_json::to_vec(&GenericBody {
        kind: ch.kind,
        to: to.to_string(),
        text: msg.content.text.clone(),
        from: ch.cfg.from.clone(),
        template: msg.content.template.clone(),
        params: msg.content.params.clone(),
        locale: msg.locale.clone(),
        idempotency_key: msg.idempotency_key.clone(),
        delivery_id: msg.delivery_id,
    })
    .map_err(|e| SendError::Permanent(format!("cannot encode the request: {e}")))?;
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("idempotency-key", msg.idempotency_key.clone()),
    ];
    if let Some(token) = &ch.cfg.token {
        headers.push(("authorization", format!("Bearer {}", token.expose_secret())));
    }
    if let Some(secret) = &ch.cfg.signing_secret {
        let ts = stamp.now.timestamp();
        let sig = sign::webhook_signature(secret.expose_secret().as_bytes(), ts, &body);
        headers.push(("x-incidentd-timestamp", ts.to_string()));
        headers.push(("x-incidentd-signature", format!("sha256={sig}")));
    }
    Ok(Prepared {
        url: ch.base.clone(),
        headers,
        body,
    })
}

pub(super) fn interpret(answer: &Answer) -> Result<Sent, SendError> {
    if !answer.status.is_success() {
        return Err(SendError::from_status(answer.status, &answer.body));
    }
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
    let id = ["id", "message_id"].iter().find_map(|k| match json.get(k) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    });
    Ok(Sent {
        provider_message_id: id,
    })
}
