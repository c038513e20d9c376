//! Signed JSON webhooks: `site_webhook` pushes an in-site notice into the host site's message
//! centre; `webhook` posts to named targets (chat tools, ticketing).
//!
//! Every request carries `X-Incidentd-Timestamp` (Unix seconds), `X-Incidentd-Signature:
//! sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" with the shared secret>` and
//! `Idempotency-Key`. A receiver recomputes the signature over the raw body, compares in
//! constant time, and refuses timestamps more than a few minutes old.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{BoxFuture, Channel, ChannelKind, Content, Limits, Outgoing, SendError, Sent, sign};
use crate::domain::duration::HumanDuration;

/// `[channels.site_webhook]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteWebhookConfig {
    pub url: String,
    /// Shared with the host site to sign requests (use `secret_file`).
    pub secret: SecretString,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default)]
    pub rate_per_second: Option<u32>,
}

/// One `[[channels.webhooks]]` target; deliveries name it as their recipient.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub name: String,
    pub url: String,
    pub secret: SecretString,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_concurrency() -> usize {
    32
}

fn url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => None,
        Ok(u) => Some(format!("`{}` is not http or https", u.scheme())),
        Err(e) => Some(format!(
            "not a URL ({e}); write e.g. \"https://site.example.com/hooks/notices\""
        )),
    }
}

impl SiteWebhookConfig {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if let Some(m) = url_problem(&self.url) {
            p.push(("url".into(), m));
        }
        if self.secret.expose_secret().len() < 16 {
            p.push(("secret".into(), "use at least 16 characters".into()));
        }
        p
    }
}

impl WebhookTarget {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if super::validate_recipient(ChannelKind::Webhook, &self.name).is_err() {
            p.push((
                "name".into(),
                format!(
                    "`{}`: use letters, digits, - and _ (deliveries name it as their recipient)",
                    self.name
                ),
            ));
        }
        if let Some(m) = url_problem(&self.url) {
            p.push(("url".into(), m));
        }
        if self.secret.expose_secret().len() < 16 {
            p.push(("secret".into(), "use at least 16 characters".into()));
        }
        p
    }
}

/// The JSON body a webhook receives.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct WebhookBody {
    pub delivery_id: i64,
    pub idempotency_key: String,
    pub incident_id: Option<i64>,
    pub purpose: String,
    /// The site user (site_webhook) or the target name (webhook).
    pub recipient: String,
    pub locale: String,
    #[serde(flatten)]
    pub content: Content,
}

struct Target {
    url: String,
    secret: SecretString,
    timeout: std::time::Duration,
}

pub struct WebhookChannel {
    kind: ChannelKind,
    targets: HashMap<String, Target>,
    /// site_webhook: the one target, whatever the recipient.
    site: Option<Target>,
    limits: Limits,
    http: reqwest::Client,
}

impl WebhookChannel {
    pub fn site(cfg: &SiteWebhookConfig, http: reqwest::Client) -> Self {
        WebhookChannel {
            kind: ChannelKind::SiteWebhook,
            targets: HashMap::new(),
            site: Some(Target {
                url: cfg.url.clone(),
                secret: cfg.secret.clone(),
                timeout: cfg.timeout.0,
            }),
            limits: Limits {
                concurrency: cfg.concurrency,
                per_second: cfg.rate_per_second,
            },
            http,
        }
    }

    pub fn named(targets: &[WebhookTarget], http: reqwest::Client) -> Self {
        WebhookChannel {
            kind: ChannelKind::Webhook,
            targets: targets
                .iter()
                .map(|t| {
                    (
                        t.name.clone(),
                        Target {
                            url: t.url.clone(),
                            secret: t.secret.clone(),
                            timeout: t.timeout.0,
                        },
                    )
                })
                .collect(),
            site: None,
            limits: Limits {
                concurrency: 32,
                per_second: None,
            },
            http,
        }
    }

    async fn post(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        let target = match &self.site {
            Some(t) => t,
            None => self.targets.get(&msg.recipient).ok_or_else(|| {
                SendError::Permanent(format!(
                    "no [[channels.webhooks]] target is named `{}`",
                    msg.recipient
                ))
            })?,
        };
        let body = serde_json::to_vec(&WebhookBody {
            delivery_id: msg.delivery_id,
            idempotency_key: msg.idempotency_key.clone(),
            incident_id: msg.incident_id,
            purpose: msg.purpose.as_str().to_string(),
            recipient: msg.recipient.clone(),
            locale: msg.locale.clone(),
            content: msg.content.clone(),
        })
        .map_err(|e| SendError::Permanent(format!("cannot encode the webhook body: {e}")))?;
        let ts = chrono::Utc::now().timestamp();
        let sig = sign::webhook_signature(target.secret.expose_secret().as_bytes(), ts, &body);
        let resp = self
            .http
            .post(&target.url)
            .timeout(target.timeout)
            .header("content-type", "application/json")
            .header("x-incidentd-timestamp", ts.to_string())
            .header("x-incidentd-signature", format!("sha256={sig}"))
            .header("idempotency-key", &msg.idempotency_key)
            .body(body)
            .send()
            .await
            .map_err(SendError::from_reqwest)?;
        let status = resp.status();
        let id = resp
            .headers()
            .get("x-message-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if status.is_success() {
            Ok(Sent {
                provider_message_id: id,
            })
        } else {
            let text = resp.text().await.unwrap_or_default();
            Err(SendError::from_status(status, &text))
        }
    }
}

impl Channel for WebhookChannel {
    fn kind(&self) -> ChannelKind {
        self.kind
    }
    fn provider(&self) -> &str {
        self.kind.as_str()
    }
    fn limits(&self) -> Limits {
        self.limits
    }
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.post(msg))
    }
}
