//! E-mail through SMTP (lettre's async transport with a connection pool).
//!
//! (Being built.)

use secrecy::SecretString;
use serde::Deserialize;

use super::{BoxFuture, Channel, ChannelKind, Limits, Outgoing, SendError, Sent};
use crate::domain::duration::HumanDuration;

/// `[channels.email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:port` (STARTTLS if offered; `?tls=required` to insist), `smtps://host:465`
    /// (implicit TLS); credentials as `smtp://user:password@host` — use `smtp_url_file`.
    pub smtp_url: SecretString,
    /// `Name <address>` the mail comes from.
    pub from: String,
    /// Connect, and each SMTP command, time out after this.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Connections kept open to the server.
    #[serde(default = "default_pool")]
    pub pool_max: u32,
    /// Sends in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Sends started per second; absent = no limit.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_pool() -> u32 {
    10
}
fn default_concurrency() -> usize {
    16
}

impl EmailConfig {
    /// Problems with this section, each as (key under the section, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

pub struct EmailChannel {
    cfg: EmailConfig,
}

impl EmailChannel {
    pub fn new(cfg: &EmailConfig) -> anyhow::Result<Self> {
        Ok(EmailChannel { cfg: cfg.clone() })
    }
}

impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }
    fn provider(&self) -> &str {
        "smtp"
    }
    fn limits(&self) -> Limits {
        Limits {
            concurrency: self.cfg.concurrency,
            per_second: self.cfg.rate_per_second,
        }
    }
    fn send<'a>(&'a self, _msg: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async {
            Err(SendError::Permanent(
                "the email channel is not built yet".into(),
            ))
        })
    }
}
