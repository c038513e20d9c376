//! SMS and voice (text-to-speech) calls through HTTP providers: `generic_http`, `aliyun`,
//! `tencent`, `twilio`. One [`PhoneChannel`] serves either kind.
//!
//! (Being built: providers and signers land in this folder.)

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use super::{BoxFuture, Channel, ChannelKind, Limits, Outgoing, SendError, Sent};
use crate::domain::duration::HumanDuration;

/// Which HTTP API carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    GenericHttp,
    Aliyun,
    Tencent,
    Twilio,
}

/// `[channels.sms]` and `[channels.voice]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneConfig {
    pub provider: Provider,
    /// The provider's endpoint. Required for `generic_http`; the others default to the
    /// provider's public API (set it to point at a proxy or a local test server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// How long one send may take, connect to answer.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Sends in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Sends started per second (the provider's quota); absent = no limit.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Aliyun AccessKey id / Tencent SecretId / Twilio Account SID.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Aliyun AccessKey secret / Tencent SecretKey / Twilio auth token (use `key_secret_file`).
    #[serde(default)]
    pub key_secret: Option<SecretString>,
    /// Sender: Twilio `From` number, Aliyun voice `CalledShowNumber`, generic `from` field.
    #[serde(default)]
    pub from: Option<String>,
    /// Aliyun/Tencent: the approved SMS signature (签名).
    #[serde(default)]
    pub sign_name: Option<String>,
    /// Tencent: the SmsSdkAppId / VoiceSdkAppid.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Aliyun/Tencent region (e.g. `cn-hangzhou`, `ap-guangzhou`).
    #[serde(default)]
    pub region: Option<String>,
    /// Our template name (`page/incident_opened`) → the provider's approved template code.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_concurrency() -> usize {
    32
}

impl PhoneConfig {
    /// Problems with this section, each as (key under the section, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// SMS or voice through one provider.
pub struct PhoneChannel {
    kind: ChannelKind,
    cfg: PhoneConfig,
    #[allow(dead_code)]
    http: reqwest::Client,
}

impl PhoneChannel {
    pub fn new(
        kind: ChannelKind,
        cfg: &PhoneConfig,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        Ok(PhoneChannel {
            kind,
            cfg: cfg.clone(),
            http,
        })
    }
}

impl Channel for PhoneChannel {
    fn kind(&self) -> ChannelKind {
        self.kind
    }
    fn provider(&self) -> &str {
        "unbuilt"
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
                "the phone channel is not built yet".into(),
            ))
        })
    }
}
