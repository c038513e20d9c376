//! Channels: the only code that talks to people and systems outside. Each channel implements
//! [`Channel`]; the dispatcher (crate::dispatch) claims committed deliveries from the outbox and
//! hands them here one by one. A channel never retries by itself: it sends once and says how
//! the attempt ended ([`SendError`] sorts failures into never-left, transient and permanent).

pub mod email;
pub mod inbox;
pub mod sign;
pub mod sms;
pub mod webhook;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;

pub use crate::domain::message::{
    ChannelKind, Content, Outgoing, Purpose, Region, mask, mask_email, mask_phone, normalise_phone,
    parse_region, validate_e164, validate_recipient, validate_recipient_in,
};

/// A boxed future, so channels can be kept as `Arc<dyn Channel>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A send the provider accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id for the message, when it gives one.
    pub provider_message_id: Option<String>,
}

/// How a send failed, which decides what the dispatcher does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Provably never left this machine (connection refused, DNS failure, connect timeout):
    /// the dispatcher may try again at once within the same attempt.
    #[error("not sent: {0}")]
    NotSent(String),
    /// May or may not have arrived, or the provider asked us to come back later (timeouts,
    /// HTTP 429 and 5xx, SMTP 4xx): a durable retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// Will never succeed as it is (HTTP 4xx, SMTP 5xx, a recipient the provider refuses):
    /// the delivery goes `dead` and, where configured, falls back to the next channel.
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::NotSent(_) => "not_sent",
            SendError::Transient(_) => "transient",
            SendError::Permanent(_) => "permanent",
        }
    }

    /// Sort a reqwest error: connect failures never left; everything else (timeouts while
    /// waiting for an answer, broken connections) may have.
    /// The URL is left out of the message: webhook URLs often carry their token.
    pub fn from_reqwest(e: reqwest::Error) -> SendError {
        let e = e.without_url();
        let msg = error_chain(&e);
        if e.is_connect() {
            SendError::NotSent(msg)
        } else if e.is_builder() {
            // A request that cannot be built (a bad URL) will never succeed.
            SendError::Permanent(msg)
        } else {
            SendError::Transient(msg)
        }
    }

    /// Sort an HTTP answer that was not a success: 408, 425, 429 and 5xx are worth another try;
    /// other 4xx never succeed. `body` is the provider's words, kept short.
    pub fn from_status(status: reqwest::StatusCode, body: &str) -> SendError {
        let text: String = body.chars().take(500).collect();
        if status.is_redirection() {
            return SendError::Permanent(format!(
                "provider answered {status} (a redirect, which is not followed: a POST would become a GET without its body); configure the final URL"
            ));
        }
        let msg = format!("provider answered {status}: {text}");
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status.as_u16() == 425
        {
            SendError::Transient(msg)
        } else {
            SendError::Permanent(msg)
        }
    }
}

/// An error and its sources on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Per-channel limits the dispatcher enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Sends started per second; `None` = no limit.
    pub per_second: Option<u32>,
}

/// One way of reaching someone.
pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;
    /// The provider, for metrics and logs (`smtp`, `aliyun`, `tencent`, `twilio`,
    /// `generic_http`, `inbox`, `site_webhook`, `webhook`).
    fn provider(&self) -> &str;
    fn limits(&self) -> Limits;
    /// Send once. Never retries by itself.
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>>;
}

/// `[channels.*]`: each channel that is configured can be used; the inbox always can.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    #[serde(default)]
    pub email: Option<email::EmailConfig>,
    #[serde(default)]
    pub sms: Option<sms::PhoneConfig>,
    #[serde(default)]
    pub voice: Option<sms::PhoneConfig>,
    #[serde(default)]
    pub site_webhook: Option<webhook::SiteWebhookConfig>,
    #[serde(default)]
    pub webhooks: Vec<webhook::WebhookTarget>,
}

impl ChannelsConfig {
    /// The channels this configuration provides; the inbox always.
    pub fn kinds(&self) -> Vec<ChannelKind> {
        use ChannelKind as K;
        let mut k = vec![K::Inbox];
        if self.email.is_some() {
            k.push(K::Email);
        }
        if self.sms.is_some() {
            k.push(K::Sms);
        }
        if self.voice.is_some() {
            k.push(K::Voice);
        }
        if self.site_webhook.is_some() {
            k.push(K::SiteWebhook);
        }
        if !self.webhooks.is_empty() {
            k.push(K::Webhook);
        }
        k
    }
}

/// The configured channels, built once from the settings.
#[derive(Clone, Default)]
pub struct Channels {
    by_kind: HashMap<ChannelKind, Arc<dyn Channel>>,
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.by_kind.keys().collect();
        kinds.sort();
        f.debug_struct("Channels")
            .field("configured", &kinds)
            .finish()
    }
}

impl Channels {
    /// Build every channel the configuration names; the inbox is always there.
    pub fn new(c: &ChannelsConfig, inbox: Arc<dyn inbox::InboxSink>) -> anyhow::Result<Self> {
        let http = http_client()?;
        let mut ch = Channels::default();
        ch.insert(Arc::new(inbox::InboxChannel::new(inbox)));
        if let Some(e) = &c.email {
            ch.insert(Arc::new(email::EmailChannel::new(e)?));
        }
        if let Some(s) = &c.sms {
            ch.insert(Arc::new(sms::PhoneChannel::new(
                ChannelKind::Sms,
                s,
                http.clone(),
            )?));
        }
        if let Some(v) = &c.voice {
            ch.insert(Arc::new(sms::PhoneChannel::new(
                ChannelKind::Voice,
                v,
                http.clone(),
            )?));
        }
        if let Some(w) = &c.site_webhook {
            ch.insert(Arc::new(webhook::WebhookChannel::site(w, http.clone())));
        }
        if !c.webhooks.is_empty() {
            ch.insert(Arc::new(webhook::WebhookChannel::named(&c.webhooks, http)));
        }
        Ok(ch)
    }

    pub fn insert(&mut self, channel: Arc<dyn Channel>) {
        self.by_kind.insert(channel.kind(), channel);
    }

    pub fn get(&self, kind: ChannelKind) -> Option<&Arc<dyn Channel>> {
        self.by_kind.get(&kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = ChannelKind> + '_ {
        self.by_kind.keys().copied()
    }
}

/// One HTTP client for every HTTP channel: connection reuse, bounded connect time, idle
/// connections dropped before typical proxies drop them.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .pool_idle_timeout(std::time::Duration::from_secs(50))
        // A redirected POST would arrive as a GET without its body, yet answer 2xx.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("incidentd/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_sort_into_transient_and_permanent() {
        use reqwest::StatusCode as S;
        for s in [
            S::TOO_MANY_REQUESTS,
            S::INTERNAL_SERVER_ERROR,
            S::BAD_GATEWAY,
            S::REQUEST_TIMEOUT,
        ] {
            assert!(
                matches!(SendError::from_status(s, ""), SendError::Transient(_)),
                "{s}"
            );
        }
        for s in [S::BAD_REQUEST, S::UNAUTHORIZED, S::FORBIDDEN, S::NOT_FOUND] {
            assert!(
                matches!(SendError::from_status(s, "x"), SendError::Permanent(_)),
                "{s}"
            );
        }
    }
}
