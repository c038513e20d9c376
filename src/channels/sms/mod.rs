//! SMS and voice (text-to-speech) calls through HTTP providers. One [`PhoneChannel`] serves
//! either kind; `[channels.sms]` and `[channels.voice]` each name a provider:
//!
//! | provider | SMS | voice | sends |
//! |---|---|---|---|
//! | `generic_http` | your gateway | your gateway | JSON with the rendered text and the template name/params |
//! | `aliyun` | `SendSms` (dysmsapi, 2017-05-25) | `SingleCallByTts` (dyvmsapi, 2017-05-25) | **template code + params only** |
//! | `tencent` | `SendSms` (sms, 2021-01-11) | `SendTtsVoice` (vms, 2020-09-02) | **template id + params only** |
//! | `twilio` | Messages API | Calls API with `<Say>` TwiML | the rendered text |
//!
//! Recipients are E.164 numbers (`+8613800000000`). Each send is one HTTP request, never
//! retried here: connection failures are [`SendError::NotSent`]; timeouts, HTTP 429/5xx and the
//! providers' throttling codes are [`SendError::Transient`]; everything else the provider
//! refuses is [`SendError::Permanent`] with the provider's code and message (phone numbers
//! masked). Secrets are `SecretString`s: write `key_secret_file = "…"` (a file beside the config
//! or a systemd credential) rather than the secret itself.
//!
//! # Template-only providers (aliyun, tencent)
//!
//! Chinese providers deliver only pre-approved templates. Map each of our template names
//! (`Content::template`, e.g. `page/incident_opened`) to the provider's code under
//! `templates`; the message's `params` fill the template. A message with no template, or one
//! whose template has no code, is refused permanently with the config key to add — free text is
//! never sent to these providers.
//!
//! * Aliyun takes named parameters: `TemplateParam`/`TtsParam` is the JSON object of `params`.
//! * Tencent takes positional parameters (`{1}`, `{2}` …): `TemplateParamSet` lists the values
//!   in the order given by `param_order."<template>" = ["key1", "key2"]`; without an entry the
//!   keys are sorted (numerically when every key is a number, so `"2"` comes before `"10"`;
//!   otherwise by byte order). A key named in `param_order` but missing from the message is a
//!   permanent error.
//!
//! # generic_http
//!
//! ```toml
//! [channels.sms]
//! provider = "generic_http"
//! base_url = "https://sms-gateway.internal.example/send"   # required; http or https
//! from = "INCIDENTD"               # optional, passed through as `from`
//! token_file = "sms-gateway.token" # optional: sent as `Authorization: Bearer <token>`
//! signing_secret_file = "sms-gateway.hmac" # optional: X-Incidentd-Signature, as webhooks
//! timeout = "10s"
//! concurrency = 16
//! rate_per_second = 20
//! ```
//!
//! Each send is `POST base_url` with `Content-Type: application/json`, `Idempotency-Key`, and
//! the body `{"kind","to","text","from","template","params","locale","idempotency_key",
//! "delivery_id"}`. With `signing_secret` set it also carries `X-Incidentd-Timestamp` and
//! `X-Incidentd-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`, exactly like
//! the webhook channel. Any 2xx is success; a JSON `id` or `message_id` in the answer is
//! recorded as the provider's message id.
//!
//! # aliyun
//!
//! ```toml
//! [channels.sms]
//! provider = "aliyun"
//! key_id = "LTAI5tExampleKeyId"          # AccessKey id
//! key_secret_file = "aliyun.secret"      # AccessKey secret
//! sign_name = "某某安全"                  # approved SMS signature (签名), SMS only
//! region = "cn-hangzhou"                 # optional, default cn-hangzhou
//! rate_per_second = 50
//! [channels.sms.templates]
//! "page/incident_opened" = "SMS_123456789"
//!
//! [channels.voice]
//! provider = "aliyun"
//! key_id = "LTAI5tExampleKeyId"
//! key_secret_file = "aliyun.secret"
//! from = "4001112222"                    # CalledShowNumber: a number bought in the console
//! [channels.voice.templates]
//! "page/incident_opened" = "TTS_123456789"
//! ```
//!
//! RPC-style `POST` with every parameter (and `Signature`, HMAC-SHA1) in a form body, to
//! `https://dysmsapi.aliyuncs.com/` (SMS) or `https://dyvmsapi.aliyuncs.com/` (voice).
//! `PhoneNumbers`/`CalledNumber`: mainland numbers without `+86`, others as digits with the
//! country code and no `+`; voice reaches +86 numbers only. `OutId` is the delivery's
//! idempotency key (voice: Aliyun allows 15 bytes, so a longer key is replaced by the delivery
//! id). Success is `Code = "OK"`; the `BizId` (SMS) or `CallId` (voice) is recorded.
//!
//! # tencent
//!
//! ```toml
//! [channels.sms]
//! provider = "tencent"
//! key_id = "AKIDExampleSecretId"          # SecretId
//! key_secret_file = "tencent.secret"      # SecretKey
//! app_id = "1400006666"                   # SmsSdkAppId (voice: VoiceSdkAppid)
//! sign_name = "某某安全"                   # approved signature, SMS only
//! region = "ap-guangzhou"                 # optional, default ap-guangzhou
//! [channels.sms.templates]
//! "page/incident_opened" = "1110"
//! [channels.sms.param_order]
//! "page/incident_opened" = ["title", "severity"]   # fills {1}, {2}
//!
//! [channels.voice]
//! provider = "tencent"
//! key_id = "AKIDExampleSecretId"
//! key_secret_file = "tencent.secret"
//! app_id = "1400006667"
//! [channels.voice.templates]
//! "page/incident_opened" = "4356"
//! ```
//!
//! API 3.0 `POST /` with a JSON body and a TC3-HMAC-SHA256 `Authorization` (signed headers
//! `content-type;host;x-tc-action`, the Host actually used) to `https://sms.tencentcloudapi.com/`
//! or `https://vms.tencentcloudapi.com/`. `SessionContext` is the idempotency key. Tencent
//! answers HTTP 200 even on failure: `Response.Error.Code`, or for SMS a per-number
//! `SendStatusSet[].Code` other than `Ok`. Success records the `SerialNo` (SMS) or `CallId`
//! (voice). Voice reaches +86 numbers only.
//!
//! # twilio
//!
//! ```toml
//! [channels.sms]
//! provider = "twilio"
//! key_id = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"   # Account SID
//! key_secret_file = "twilio.token"               # auth token
//! from = "+14155550100"     # a Twilio number, or a Messaging Service SID (MG…) for SMS
//!
//! [channels.voice]
//! provider = "twilio"
//! key_id = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
//! key_secret_file = "twilio.token"
//! from = "+14155550100"
//! ```
//!
//! `POST https://api.twilio.com/2010-04-01/Accounts/{key_id}/Messages.json` (form `To`, `From`
//! or `MessagingServiceSid`, `Body` = the rendered text) or `…/Calls.json` (form `To`, `From`,
//! `Twiml` = `<Response><Say language="…">text</Say></Response>`, the language from the
//! delivery's locale), with basic auth. 201 records the `sid`; an error's `code` and `message`
//! are kept. Twilio's own webhook signature can be checked with
//! [`crate::channels::sign::twilio_webhook_valid`].
//!
//! # Keys every provider shares
//!
//! `base_url` (overrides the public endpoint: a proxy or a local test server; when signing,
//! the Host of this URL is signed), `timeout` (default `10s`), `concurrency` (default 32),
//! `rate_per_second` (default: no limit).

mod aliyun;
mod generic;
mod tencent;
mod twilio;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    BoxFuture, Channel, ChannelKind, Limits, Outgoing, SendError, Sent, mask_phone, validate_e164,
};
use crate::domain::duration::HumanDuration;
use crate::domain::string_enum;

string_enum! {
    /// Which HTTP API carries the messages.
    Provider {
        GenericHttp => "generic_http",
        Aliyun => "aliyun",
        Tencent => "tencent",
        Twilio => "twilio",
    } what = "a phone provider"
}

impl Provider {
    /// Providers that accept only pre-approved templates, never free text.
    pub fn template_only(self) -> bool {
        matches!(self, Provider::Aliyun | Provider::Tencent)
    }
}

/// `[channels.sms]` and `[channels.voice]`. See the module documentation for each provider's
/// keys.
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
    /// Sender: Twilio `From` number (or `MG…` Messaging Service SID for SMS), Aliyun voice
    /// `CalledShowNumber`, generic `from` field.
    #[serde(default)]
    pub from: Option<String>,
    /// Aliyun/Tencent: the approved SMS signature (签名).
    #[serde(default)]
    pub sign_name: Option<String>,
    /// Tencent: the SmsSdkAppId / VoiceSdkAppid.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Aliyun/Tencent region (default `cn-hangzhou` / `ap-guangzhou`).
    #[serde(default)]
    pub region: Option<String>,
    /// Our template name (`page/incident_opened`) → the provider's approved template code.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// Tencent: our template name → the `params` keys in the order of the template's `{1}`,
    /// `{2}` … placeholders. Without an entry the keys are sorted (see the module docs).
    #[serde(default)]
    pub param_order: BTreeMap<String, Vec<String>>,
    /// generic_http: sent as `Authorization: Bearer <token>` (use `token_file`).
    #[serde(default)]
    pub token: Option<SecretString>,
    /// generic_http: signs each request like the webhook channel (use `signing_secret_file`).
    #[serde(default)]
    pub signing_secret: Option<SecretString>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(10))
}
fn default_concurrency() -> usize {
    32
}

fn missing(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn missing_secret(v: &Option<SecretString>) -> bool {
    v.as_ref()
        .is_none_or(|s| s.expose_secret().trim().is_empty())
}

impl PhoneConfig {
    /// Problems with this section, each as (key under the section, message). The keys only
    /// SMS or only voice needs (`sign_name`; Aliyun voice's `from`) are checked by
    /// [`PhoneConfig::problems_for`], which [`PhoneChannel::new`] runs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let name = self.provider.as_str();
        match &self.base_url {
            Some(url) => {
                if let Some(m) = url_problem(url) {
                    p.push(("base_url".into(), m));
                }
            }
            None if self.provider == Provider::GenericHttp => p.push((
                "base_url".into(),
                "generic_http needs the gateway's address: write base_url = \"https://sms-gateway.example/send\"".into(),
            )),
            None => {}
        }
        if self.provider != Provider::GenericHttp {
            let (id_name, secret_name) = match self.provider {
                Provider::Aliyun => ("AccessKey id", "AccessKey secret"),
                Provider::Tencent => ("SecretId", "SecretKey"),
                _ => ("Account SID (AC…)", "auth token"),
            };
            if missing(&self.key_id) {
                p.push((
                    "key_id".into(),
                    format!("{name} needs its {id_name}: write key_id = \"…\""),
                ));
            }
            if missing_secret(&self.key_secret) {
                p.push((
                    "key_secret".into(),
                    format!(
                        "{name} needs its {secret_name}: write key_secret_file = \"{name}.secret\" (a file beside the config or a systemd credential)"
                    ),
                ));
            }
        }
        if self.provider == Provider::Tencent {
            if missing(&self.app_id) {
                p.push((
                    "app_id".into(),
                    "tencent needs the SdkAppId from the SMS or voice console: write app_id = \"1400006666\"".into(),
                ));
            }
            for (tpl, code) in &self.templates {
                if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
                    p.push((
                        format!("templates.\"{tpl}\""),
                        format!("`{code}` is not a Tencent template id: use the number the console shows, e.g. \"1110\""),
                    ));
                }
            }
        }
        if self.provider == Provider::Twilio && missing(&self.from) {
            p.push((
                "from".into(),
                "twilio needs a sender: write from = \"+14155550100\" (a Twilio number; for SMS a Messaging Service SID \"MG…\" also works)".into(),
            ));
        }
        for (tpl, code) in &self.templates {
            if code.trim().is_empty() {
                p.push((
                    format!("templates.\"{tpl}\""),
                    "write the provider's approved template code here".into(),
                ));
            }
        }
        for tpl in self.param_order.keys() {
            if !self.templates.contains_key(tpl) {
                p.push((
                    format!("param_order.\"{tpl}\""),
                    format!("there is no templates.\"{tpl}\" entry for this order to apply to"),
                ));
            }
        }
        if self.concurrency == 0 {
            p.push(("concurrency".into(), "use at least 1".into()));
        }
        if self.rate_per_second == Some(0) {
            p.push((
                "rate_per_second".into(),
                "use at least 1, or leave it out for no limit".into(),
            ));
        }
        p
    }

    /// [`PhoneConfig::problems`] plus what only this kind of channel needs.
    pub fn problems_for(&self, kind: ChannelKind) -> Vec<(String, String)> {
        let mut p = self.problems();
        let name = self.provider.as_str();
        if kind == ChannelKind::Sms && self.provider.template_only() && missing(&self.sign_name) {
            p.push((
                "sign_name".into(),
                format!("{name} SMS needs the approved signature (签名): write sign_name = \"…\" exactly as the console shows it"),
            ));
        }
        if kind == ChannelKind::Voice && self.provider == Provider::Aliyun && missing(&self.from) {
            p.push((
                "from".into(),
                "aliyun voice needs the caller number shown to the callee (CalledShowNumber): write from = \"4001112222\", a number bought in the voice console".into(),
            ));
        }
        if !matches!(kind, ChannelKind::Sms | ChannelKind::Voice) {
            p.push(("provider".into(), format!("{kind} is not a phone channel")));
        }
        p
    }
}

fn url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => None,
        Ok(u) => Some(format!(
            "`{}` is not http or https; write e.g. \"https://sms-gateway.example/send\"",
            u.scheme()
        )),
        Err(e) => Some(format!(
            "not a URL ({e}); write e.g. \"https://sms-gateway.example/send\""
        )),
    }
}

/// The time and nonce one request is signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub now: DateTime<Utc>,
    pub nonce: String,
}

impl Stamp {
    fn fresh() -> Stamp {
        Stamp {
            now: Utc::now(),
            nonce: super::sign::nonce(),
        }
    }
}

type Clock = Arc<dyn Fn() -> Stamp + Send + Sync>;

/// One HTTP request a provider wants sent (always a POST).
struct Prepared {
    url: reqwest::Url,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// The provider's answer.
struct Answer {
    status: reqwest::StatusCode,
    body: String,
}

/// SMS or voice through one provider.
pub struct PhoneChannel {
    kind: ChannelKind,
    cfg: PhoneConfig,
    /// The endpoint: `base_url` or the provider's public API for this kind.
    base: reqwest::Url,
    http: reqwest::Client,
    clock: Clock,
}

impl fmt::Debug for PhoneChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneChannel")
            .field("kind", &self.kind)
            .field("provider", &self.cfg.provider)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl PhoneChannel {
    pub fn new(
        kind: ChannelKind,
        cfg: &PhoneConfig,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let problems = cfg.problems_for(kind);
        if !problems.is_empty() {
            let list: Vec<String> = problems
                .iter()
                .map(|(k, m)| format!("channels.{kind}.{k}: {m}"))
                .collect();
            anyhow::bail!("cannot build the {kind} channel: {}", list.join("; "));
        }
        let base = match &cfg.base_url {
            Some(u) => reqwest::Url::parse(u)?,
            None => reqwest::Url::parse(default_endpoint(cfg.provider, kind))?,
        };
        Ok(PhoneChannel {
            kind,
            cfg: cfg.clone(),
            base,
            http,
            clock: Arc::new(Stamp::fresh),
        })
    }

    /// Sign with a fixed time and nonce (tests reproduce exact signatures with it).
    #[doc(hidden)]
    pub fn with_clock(mut self, clock: impl Fn() -> Stamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    #[tracing::instrument(skip_all, fields(
        delivery.id = msg.delivery_id,
        channel = %self.kind,
        provider = self.cfg.provider.as_str(),
        to = %mask_phone(&msg.recipient),
    ), err(Display))]
    async fn deliver(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        let to = validate_e164(&msg.recipient).map_err(SendError::Permanent)?;
        let stamp = (self.clock)();
        let req = match self.cfg.provider {
            Provider::GenericHttp => generic::prepare(self, msg, &to, &stamp)?,
            Provider::Aliyun => aliyun::prepare(self, msg, &to, &stamp)?,
            Provider::Tencent => tencent::prepare(self, msg, &to, &stamp)?,
            Provider::Twilio => twilio::prepare(self, msg, &to)?,
        };
        let answer = self.post(req).await?;
        let result = match self.cfg.provider {
            Provider::GenericHttp => generic::interpret(&answer),
            Provider::Aliyun => aliyun::interpret(self.kind, &answer),
            Provider::Tencent => tencent::interpret(self.kind, &answer),
            Provider::Twilio => twilio::interpret(&answer),
        };
        // Providers echo numbers back in their messages; logs and delivery rows get them masked.
        result.map_err(|e| scrub_error(e, &to))
    }

    async fn post(&self, req: Prepared) -> Result<Answer, SendError> {
        let mut builder = self
            .http
            .post(req.url)
            .timeout(self.cfg.timeout.0)
            .body(req.body);
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        let resp = builder.send().await.map_err(SendError::from_reqwest)?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| {
            SendError::Transient(format!(
                "the provider answered {status} but the answer could not be read: {}",
                super::error_chain(&e)
            ))
        })?;
        Ok(Answer { status, body })
    }

    fn key_id(&self) -> &str {
        self.cfg.key_id.as_deref().unwrap_or_default()
    }

    fn key_secret(&self) -> &str {
        self.cfg
            .key_secret
            .as_ref()
            .map(|s| s.expose_secret())
            .unwrap_or_default()
    }

    /// The approved template code for this message, or why there is none.
    fn template_code(&self, msg: &Outgoing) -> Result<&str, SendError> {
        let provider = self.cfg.provider.as_str();
        let kind = self.kind;
        let Some(name) = msg.content.template.as_deref() else {
            return Err(SendError::Permanent(format!(
                "{provider} sends only pre-approved templates and this {kind} message was not rendered from a template; free text cannot be sent through {provider}"
            )));
        };
        match self.cfg.templates.get(name) {
            Some(code) if !code.trim().is_empty() => Ok(code),
            _ => Err(SendError::Permanent(format!(
                "{provider} has no approved template code for `{name}`: add channels.{kind}.templates.\"{name}\" = \"<code from the {provider} console>\""
            ))),
        }
    }
}

fn default_endpoint(provider: Provider, kind: ChannelKind) -> &'static str {
    match (provider, kind) {
        (Provider::Aliyun, ChannelKind::Voice) => "https://dyvmsapi.aliyuncs.com/",
        (Provider::Aliyun, _) => "https://dysmsapi.aliyuncs.com/",
        (Provider::Tencent, ChannelKind::Voice) => "https://vms.tencentcloudapi.com/",
        (Provider::Tencent, _) => "https://sms.tencentcloudapi.com/",
        (Provider::Twilio, _) => "https://api.twilio.com/",
        // Unreachable: problems() requires base_url for generic_http.
        (Provider::GenericHttp, _) => "http://127.0.0.1/",
    }
}

/// The Host header reqwest sends for `url` (the port only when it is not the scheme's default):
/// what Tencent's signature must cover.
fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// A number as mainland Chinese providers want it: mainland numbers without `+86`, others as
/// digits with the country code and no `+`.
fn cn_provider_number(e164: &str) -> String {
    match e164.strip_prefix("+86") {
        Some(national) => national.to_string(),
        None => e164.trim_start_matches('+').to_string(),
    }
}

fn require_mainland(provider: Provider, e164: &str) -> Result<(), SendError> {
    if e164.starts_with("+86") {
        Ok(())
    } else {
        Err(SendError::Permanent(format!(
            "{} voice calls reach mainland China (+86) numbers only, not {}",
            provider.as_str(),
            mask_phone(e164)
        )))
    }
}

/// Replace the recipient's number, in the forms providers echo it, with its masked form.
fn scrub(text: &str, e164: &str) -> String {
    let masked = mask_phone(e164);
    let mut forms = vec![e164.to_string(), e164.trim_start_matches('+').to_string()];
    if let Some(national) = e164.strip_prefix("+86") {
        forms.push(national.to_string());
    }
    let mut out = text.to_string();
    for f in forms.iter().filter(|f| f.len() >= 7) {
        out = out.replace(f.as_str(), &masked);
    }
    out
}

fn scrub_error(e: SendError, e164: &str) -> SendError {
    match e {
        SendError::NotSent(m) => SendError::NotSent(scrub(&m, e164)),
        SendError::Transient(m) => SendError::Transient(scrub(&m, e164)),
        SendError::Permanent(m) => SendError::Permanent(scrub(&m, e164)),
    }
}

/// At most 300 characters of a provider's words.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(300).collect();
    if text.chars().nth(300).is_some() {
        s.push('…');
    }
    s
}

impl Channel for PhoneChannel {
    fn kind(&self) -> ChannelKind {
        self.kind
    }
    fn provider(&self) -> &str {
        self.cfg.provider.as_str()
    }
    fn limits(&self) -> Limits {
        Limits {
            concurrency: self.cfg.concurrency,
            per_second: self.cfg.rate_per_second,
        }
    }
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(self.deliver(msg))
    }
}

#[cfg(test)]
mod tests;
