//! E-mail through SMTP, with a small pool of open connections.
//!
//! Each delivery becomes one message: `From` is the configured sender, `To` the recipient,
//! `Subject` the rendered subject, and the body `multipart/alternative` (plain text, then HTML)
//! when the rendering has HTML, else `text/plain`; everything UTF-8, so Chinese subjects
//! (RFC 2047-encoded by lettre) and bodies arrive intact. Every message also carries:
//!
//! * `Message-ID: <incidentd.{idempotency key}@{domain of from}>` — the same for every retry of
//!   one delivery, so a receiver (or a mailbox rule) can drop a duplicate left behind by a retry
//!   after a timeout. Characters of the key outside `A-Z a-z 0-9 - _` are written `=XX`.
//! * `Date`, `X-Incidentd-Delivery: {delivery id}` and `Auto-Submitted: auto-generated` (so
//!   vacation responders do not answer).
//!
//! A delivery without a subject is refused as permanent: a notice without a subject reads as
//! spam and would mean the template is broken, which a retry will not mend.
//!
//! # How a send ends
//!
//! | what happened | [`SendError`] |
//! |---|---|
//! | no connection: refused, DNS, connect or greeting timeout, TLS handshake, STARTTLS missing, all `pool_max` connections busy for `pool_timeout` | `NotSent` (nothing of the message left) |
//! | an SMTP 4xx reply (greeting, AUTH, MAIL, RCPT, DATA) | `Transient`, with the server's words |
//! | an SMTP 5xx reply (including AUTH failures) | `Permanent`, with the server's words |
//! | timeout or a broken connection once the transaction began (after MAIL FROM was sent) | `Transient`: it may have arrived |
//! | no subject, an address that does not parse, a server that cannot take this message (no `SMTPUTF8` for an internationalised address) | `Permanent` |
//!
//! E-mail addresses in error texts (servers like to repeat them) are masked.
//!
//! # Why not lettre's pooled `AsyncSmtpTransport`
//!
//! lettre 0.11's async transport bounds only the TCP connect by `timeout`: a server that
//! stops answering mid-transaction holds the send forever. Bounding it from outside means
//! dropping its future, and its pool then puts the half-used connection back (it only
//! discards connections that saw an error): the next send could be written into the middle of
//! the previous one, into another person's message. Its pool also caps only the *idle*
//! connections, not how many are opened at once, and cannot say whether a failure came before
//! or after the message was sent. So this module keeps its own pool of lettre's
//! [`AsyncSmtpConnection`]s: at most `pool_max` open at once, a connection goes back to the
//! pool only after a transaction that finished cleanly, and a connection whose send timed out
//! or failed is dropped. The URL rules are lettre's (`from_url`), checked by lettre itself.
//!
//! # Configuration
//!
//! A local relay (Postfix on the same host), plain SMTP on port 25:
//!
//! ```toml
//! [channels.email]
//! smtp_url = "smtp://127.0.0.1:25"
//! from = "安全应急中心 <security@example.com>"
//! ```
//!
//! A submission server with STARTTLS required and a password; the URL (with its password) sits
//! in a file only the daemon reads, or in a systemd credential of that name:
//!
//! ```toml
//! [channels.email]
//! # the file holds: smtp://incidentd:p%40ssword@smtp.example.com:587?tls=required
//! smtp_url_file = "/etc/incidentd/secrets/smtp_url"
//! from = "Security Team <security@example.com>"
//! timeout = "15s"       # connecting, and the mail transaction, each within this
//! pool_max = 5          # connections open at once
//! pool_timeout = "30s"  # a send waits this long for a free connection, then `not_sent`
//! concurrency = 8
//! rate_per_second = 10
//! ```
//!
//! Implicit TLS (SMTPS, port 465):
//!
//! ```toml
//! [channels.email]
//! smtp_url_file = "smtp_url"   # holds: smtps://incidentd:secret@smtp.example.com:465
//! from = "security@example.com"
//! ```
//!
//! URL forms (lettre's rules): `smtp://host[:25]` plain SMTP, no TLS at all;
//! `smtp://host[:587]?tls=opportunistic` STARTTLS when offered; `smtp://host[:587]?tls=required`
//! STARTTLS or fail; `smtps://host[:465]` implicit TLS. Credentials are `user:password@` with
//! `@`, `:` and `%` in them percent-encoded; a path (`smtp://host/mx.example.com`) sets the EHLO
//! name. `incidentd check` refuses credentials that could travel unencrypted (plain or
//! opportunistic TLS) to anything but a loopback address.

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::timeout;

use super::{BoxFuture, Channel, ChannelKind, Limits, Outgoing, SendError, Sent, mask_email};
use crate::domain::duration::HumanDuration;

/// `[channels.email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:25` (plain), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://host:465` (implicit TLS); credentials as `smtp://user:password@host` — put the
    /// URL in a file with `smtp_url_file`.
    pub smtp_url: SecretString,
    /// `Name <address>` the mail comes from; its domain also names our Message-IDs.
    pub from: String,
    /// Connecting (TCP, greeting, EHLO, STARTTLS, AUTH) must finish within this, and so must
    /// the mail transaction (MAIL FROM to the server's answer to the message).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Connections open to the server at most.
    #[serde(default = "default_pool")]
    pub pool_max: u32,
    /// How long a send waits for a free connection before giving up as `not_sent`.
    #[serde(default = "default_pool_timeout")]
    pub pool_timeout: HumanDuration,
    /// An unused connection older than this is closed instead of reused.
    #[serde(default = "default_pool_idle_timeout")]
    pub pool_idle_timeout: HumanDuration,
    /// Sends in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Sends started per second; absent = no limit.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_pool() -> u32 {
    10
}
fn default_pool_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_pool_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_concurrency() -> usize {
    16
}

impl EmailConfig {
    /// Problems with this section, each as (key under the section, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if let Err(e) = self.from.parse::<Mailbox>() {
            p.push((
                "from".into(),
                format!("not a mailbox ({e}); write e.g. \"Security Team <security@example.com>\""),
            ));
        }
        match Server::parse(&self.smtp_url) {
            Err(m) => p.push(("smtp_url".into(), m)),
            Ok(s) => {
                if let Some(m) = s.exposure() {
                    p.push(("smtp_url".into(), m));
                }
            }
        }
        let ms = |d: &HumanDuration| d.0.as_millis();
        if !(100..=600_000).contains(&ms(&self.timeout)) {
            p.push(("timeout".into(), "use between 100ms and 10m".into()));
        }
        if !(1..=100).contains(&self.pool_max) {
            p.push((
                "pool_max".into(),
                "use between 1 and 100 connections".into(),
            ));
        }
        if !(100..=600_000).contains(&ms(&self.pool_timeout)) {
            p.push(("pool_timeout".into(), "use between 100ms and 10m".into()));
        }
        if ms(&self.pool_idle_timeout) < 1000 {
            p.push(("pool_idle_timeout".into(), "use at least 1s".into()));
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
}

/// How the connection is protected.
#[derive(Clone)]
enum Security {
    Plain,
    Opportunistic(TlsParameters),
    Required(TlsParameters),
    Implicit(TlsParameters),
}

/// Where and how to connect, from `smtp_url`.
#[derive(Clone)]
struct Server {
    host: String,
    port: u16,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
}

impl Server {
    /// Parse `smtp_url` by lettre's rules. Messages never repeat the URL (it may hold a
    /// password).
    fn parse(url: &SecretString) -> Result<Server, String> {
        let raw = url.expose_secret();
        // lettre's own check first: what it refuses, we refuse, in its words.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(raw).map_err(|e| {
            format!(
                "not an SMTP URL lettre accepts ({}); write smtp://host:25, \
                 smtp://user:password@host:587?tls=required or smtps://user:password@host:465",
                super::error_chain(&e)
            )
        })?;
        let u = reqwest::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
        let host = u
            .host_str()
            .ok_or("the URL names no host")?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let tls = u
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let params = || {
            TlsParameters::new(host.clone())
                .map_err(|e| format!("cannot set up TLS for `{host}`: {e}"))
        };
        let (security, default_port) = match (u.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required")) => (Security::Required(params()?), 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic(params()?), 587),
            ("smtps", _) => (Security::Implicit(params()?), 465),
            (s, t) => return Err(format!("scheme `{s}` with tls={t:?} is not supported")),
        };
        let hello = match u.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_string()),
        };
        let credentials = match u.password() {
            None => None,
            Some(pw) => Some(Credentials::new(decode(u.username())?, decode(pw)?)),
        };
        Ok(Server {
            port: u.port().unwrap_or(default_port),
            host,
            security,
            hello,
            credentials,
        })
    }

    /// Credentials that could cross the network unencrypted.
    fn exposure(&self) -> Option<String> {
        let weak = matches!(self.security, Security::Plain | Security::Opportunistic(_));
        let local = self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (self.credentials.is_some() && weak && !local).then(|| {
            format!(
                "the password would cross the network to `{}` unencrypted (or to anyone who strips \
                 STARTTLS): add ?tls=required or use smtps://",
                self.host
            )
        })
    }

    /// Connect, greet, secure and log in: nothing of any message is sent here.
    /// Open a session: TCP (with `TCP_NODELAY`), greeting, EHLO, TLS as configured, login.
    ///
    /// lettre writes a message and its terminating `.` in two writes; with Nagle's algorithm
    /// on, the second waits for the server's delayed ACK (~40 ms per message). So plain and
    /// STARTTLS sessions go over a socket we open ourselves with `TCP_NODELAY`; implicit TLS
    /// (`smtps://`) uses lettre's own connect, which does not set it.
    async fn connect(&self, limit: Duration) -> Result<AsyncSmtpConnection, SendError> {
        let lettre_err = |e: lettre::transport::smtp::Error| connect_error(&e);
        let mut conn = match &self.security {
            Security::Implicit(p) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(limit),
                &self.hello,
                Some(p.clone()),
                None,
            )
            .await
            .map_err(lettre_err)?,
            _ => {
                let tcp = timeout(
                    limit,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| {
                    SendError::NotSent(format!(
                        "SMTP session not set up: no connection to {}:{} within {limit:?}",
                        self.host, self.port
                    ))
                })?
                .map_err(|e| {
                    SendError::NotSent(format!(
                        "SMTP session not set up: cannot connect to {}:{}: {e}",
                        self.host, self.port
                    ))
                })?;
                let _ = tcp.set_nodelay(true);
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(lettre_err)?
            }
        };
        match &self.security {
            Security::Required(p) => conn
                .starttls(p.clone(), &self.hello)
                .await
                .map_err(lettre_err)?,
            Security::Opportunistic(p) if conn.can_starttls() => conn
                .starttls(p.clone(), &self.hello)
                .await
                .map_err(lettre_err)?,
            _ => {}
        }
        if let Some(c) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, c).await.map_err(lettre_err)?;
        }
        Ok(conn)
    }
}

fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "the credentials in the URL are not UTF-8 once percent-decoded".to_string())
}

/// Open connections not in use, newest last.
struct Pool {
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    slots: Semaphore,
    size: usize,
    wait: Duration,
    idle_timeout: Duration,
}

impl Pool {
    /// A right to hold one connection; at most `pool_max` are handed out.
    async fn slot(&self) -> Result<SemaphorePermit<'_>, SendError> {
        match timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(SendError::NotSent("the SMTP pool is closed".into())),
            Err(_) => Err(SendError::NotSent(format!(
                "all {} SMTP connections stayed busy for {:?}",
                self.size, self.wait
            ))),
        }
    }

    /// The most recently used idle connection that is not too old; older ones are closed.
    fn take(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = |since: &Instant| since.elapsed() < self.idle_timeout;
        let stale: Vec<_> = {
            let (keep, stale): (Vec<_>, Vec<_>) = idle.drain(..).partition(|(_, s)| fresh(s));
            *idle = keep;
            stale
        };
        let conn = idle.pop().map(|(c, _)| c);
        drop(idle);
        for (c, _) in stale {
            close(c);
        }
        conn
    }

    fn put(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push((conn, Instant::now()));
    }
}

/// Say QUIT in the background, briefly; the socket closes either way.
fn close(mut conn: AsyncSmtpConnection) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = timeout(Duration::from_secs(2), conn.quit()).await;
        });
    }
}

pub struct EmailChannel {
    server: Server,
    from: Mailbox,
    /// The right-hand side of our Message-IDs.
    id_domain: String,
    timeout: Duration,
    pool: Pool,
    limits: Limits,
}

impl EmailChannel {
    pub fn new(cfg: &EmailConfig) -> anyhow::Result<Self> {
        let server = Server::parse(&cfg.smtp_url)
            .map_err(|m| anyhow::anyhow!("channels.email.smtp_url: {m}"))?;
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("channels.email.from: not a mailbox ({e})"))?;
        let domain = from.email.domain();
        let id_domain = if !domain.is_empty() && domain.is_ascii() {
            domain.to_string()
        } else {
            "incidentd.invalid".to_string()
        };
        Ok(EmailChannel {
            server,
            from,
            id_domain,
            timeout: cfg.timeout.0,
            pool: Pool {
                idle: Mutex::new(Vec::new()),
                slots: Semaphore::new(cfg.pool_max.max(1) as usize),
                size: cfg.pool_max.max(1) as usize,
                wait: cfg.pool_timeout.0,
                idle_timeout: cfg.pool_idle_timeout.0,
            },
            limits: Limits {
                concurrency: cfg.concurrency,
                per_second: cfg.rate_per_second,
            },
        })
    }

    /// The Message-ID every attempt of this delivery carries.
    pub fn message_id(&self, idempotency_key: &str) -> String {
        message_id(idempotency_key, &self.id_domain)
    }

    fn build(&self, msg: &Outgoing) -> Result<Message, SendError> {
        let c = &msg.content;
        let to: Mailbox = msg.recipient.trim().parse().map_err(|e| {
            SendError::Permanent(format!(
                "`{}` is not an e-mail address ({e})",
                mask_email(&msg.recipient)
            ))
        })?;
        let subject = c
            .subject
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                SendError::Permanent(
                    "the rendered e-mail has no subject; the template must set one".into(),
                )
            })?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(self.message_id(&msg.idempotency_key)))
            .date_now()
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Incidentd-Delivery"),
                msg.delivery_id.to_string(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ));
        let built = match &c.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                c.text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(c.text.clone()),
            ),
        };
        built.map_err(|e| SendError::Permanent(format!("cannot build the e-mail: {e}")))
    }

    /// A connection: an idle one that still answers NOOP, else a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        while let Some(mut conn) = self.pool.take() {
            if matches!(timeout(self.timeout, conn.test_connected()).await, Ok(true)) {
                return Ok(conn);
            }
            // Broken or silent: dropping it closes the socket.
        }
        match timeout(self.timeout, self.server.connect(self.timeout)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::NotSent(format!(
                "no SMTP session with {}:{} within {:?}",
                self.server.host, self.server.port, self.timeout
            ))),
        }
    }

    async fn deliver(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        let email = self.build(msg)?;
        let bytes = email.formatted();
        let _slot = self.pool.slot().await?;
        let mut conn = self.checkout().await?;
        match timeout(self.timeout, conn.send(email.envelope(), &bytes)).await {
            Ok(Ok(resp)) => {
                self.pool.put(conn);
                let said: String = resp.message().collect::<Vec<_>>().join(" ");
                Ok(Sent {
                    provider_message_id: Some(said.chars().take(200).collect())
                        .filter(|s: &String| !s.is_empty()),
                })
            }
            Ok(Err(e)) => Err(transaction_error(&e)),
            // The connection is dropped with its half-done transaction, never reused.
            Err(_) => Err(SendError::Transient(format!(
                "no answer from the SMTP server within {:?} during the mail transaction; \
                 the message may or may not have arrived",
                self.timeout
            ))),
        }
    }
}

/// `<incidentd.{key}@{domain}>`, the key written with `A-Z a-z 0-9 - _` and `=XX` for any
/// other byte, which keeps it a valid dot-atom and distinct keys distinct.
fn message_id(key: &str, domain: &str) -> String {
    let mut local = String::from("incidentd");
    if !key.is_empty() {
        local.push('.');
    }
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            local.push(char::from(b));
        } else {
            local.push_str(&format!("={b:02X}"));
        }
    }
    format!("<{local}@{domain}>")
}

/// The server's words without full e-mail addresses, kept short.
fn server_words(e: &lettre::transport::smtp::Error) -> String {
    static ADDR: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
            .unwrap_or_else(|e| unreachable!("{e}"))
    });
    let text = super::error_chain(e);
    let masked = ADDR.replace_all(&text, |c: &regex::Captures<'_>| mask_email(&c[0]));
    masked.chars().take(500).collect()
}

/// A failure before MAIL FROM: only the server's own 4xx/5xx replies are not `NotSent`.
fn connect_error(e: &lettre::transport::smtp::Error) -> SendError {
    let m = format!("SMTP session not set up: {}", server_words(e));
    if e.is_transient() {
        SendError::Transient(m)
    } else if e.is_permanent() {
        SendError::Permanent(m)
    } else {
        SendError::NotSent(m)
    }
}

/// A failure in the transaction (MAIL FROM onwards).
fn transaction_error(e: &lettre::transport::smtp::Error) -> SendError {
    let m = format!("SMTP server refused the message: {}", server_words(e));
    if e.is_permanent() {
        SendError::Permanent(m)
    } else if e.is_client() {
        // lettre checks SMTPUTF8/8BITMIME support before MAIL FROM: this server never will.
        SendError::Permanent(format!("cannot send to this server: {}", server_words(e)))
    } else if e.is_transient() {
        SendError::Transient(m)
    } else {
        SendError::Transient(format!(
            "SMTP connection failed during the mail transaction (the message may have arrived): {}",
            server_words(e)
        ))
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
        self.limits
    }
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let r = self.deliver(msg).await;
            match &r {
                Ok(_) => tracing::debug!(
                    delivery.id = msg.delivery_id,
                    to = %mask_email(&msg.recipient),
                    "e-mail accepted by the SMTP server"
                ),
                Err(e) => tracing::info!(
                    delivery.id = msg.delivery_id,
                    to = %mask_email(&msg.recipient),
                    outcome = e.kind(),
                    error = %e,
                    "e-mail not delivered"
                ),
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, from: &str) -> EmailConfig {
        EmailConfig {
            smtp_url: SecretString::from(url.to_string()),
            from: from.into(),
            timeout: default_timeout(),
            pool_max: default_pool(),
            pool_timeout: default_pool_timeout(),
            pool_idle_timeout: default_pool_idle_timeout(),
            concurrency: default_concurrency(),
            rate_per_second: None,
        }
    }

    fn keys(c: &EmailConfig) -> Vec<String> {
        c.problems().into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    }

    #[test]
    fn good_configurations_have_no_problems() {
        for url in [
            "smtp://127.0.0.1:25",
            "smtp://localhost",
            "smtp://relay.example.com:2525",
            "smtp://u:p%40ss@smtp.example.com:587?tls=required",
            "smtps://u:p@smtp.example.com",
            "smtp://u:p@127.0.0.1:25",
            "smtp://relay.example.com/mx.example.com",
        ] {
            let c = cfg(url, "安全应急中心 <security@example.com>");
            assert!(c.problems().is_empty(), "{url}: {:?}", c.problems());
            assert!(EmailChannel::new(&c).is_ok(), "{url}");
        }
    }

    #[test]
    fn bad_urls_are_reported_without_the_password() {
        for url in [
            "http://u:hunter2secret@smtp.example.com",
            "smtp://u:hunter2secret@smtp.example.com?tls=sometimes",
            "smtp://u:hunter2secret@",
            "not a url hunter2secret",
            "smtp://u:hunter2secret@smtp.example.com:587",
            "smtp://u:hunter2secret@smtp.example.com:587?tls=opportunistic",
        ] {
            let p = cfg(url, "security@example.com").problems();
            assert_eq!(p.len(), 1, "{url}: {p:?}");
            assert_eq!(p[0].0, "smtp_url");
            assert!(!p[0].1.contains("hunter2secret"), "{url}: {}", p[0].1);
            let e = EmailChannel::new(&cfg(url, "security@example.com"));
            if let Err(e) = e {
                assert!(!format!("{e:#}").contains("hunter2secret"));
            }
        }
        let p = cfg("smtp://u:pw@smtp.example.com", "a@example.com").problems();
        assert!(p[0].1.contains("unencrypted"), "{p:?}");
    }

    #[test]
    fn bad_sender_and_sizes_are_reported() {
        let mut c = cfg("smtp://127.0.0.1", "not an address");
        c.timeout = HumanDuration(Duration::ZERO);
        c.pool_max = 0;
        c.pool_timeout = HumanDuration(Duration::from_secs(3600));
        c.pool_idle_timeout = HumanDuration(Duration::ZERO);
        c.concurrency = 0;
        c.rate_per_second = Some(0);
        assert_eq!(
            keys(&c),
            [
                "from",
                "timeout",
                "pool_max",
                "pool_timeout",
                "pool_idle_timeout",
                "concurrency",
                "rate_per_second"
            ]
        );
        assert!(EmailChannel::new(&c).is_err());
    }

    #[test]
    fn urls_follow_lettres_rules() {
        let s = |u: &str| {
            Server::parse(&SecretString::from(u.to_string())).unwrap_or_else(|e| panic!("{e}"))
        };
        let plain = s("smtp://relay.example.com");
        assert_eq!((plain.port, plain.credentials.is_some()), (25, false));
        assert!(matches!(plain.security, Security::Plain));
        let sub = s("smtp://a%40b:p%3Aw@smtp.example.com?tls=required");
        assert_eq!(sub.port, 587);
        assert!(matches!(sub.security, Security::Required(_)));
        assert!(sub.credentials.is_some());
        let wrapped = s("smtps://smtp.example.com");
        assert_eq!(wrapped.port, 465);
        assert!(matches!(wrapped.security, Security::Implicit(_)));
        assert_eq!(s("smtp://[::1]:2525").host, "::1");
        // A user name without a password logs in as nobody, as in lettre.
        assert!(s("smtp://user@relay.example.com").credentials.is_none());
    }

    #[test]
    fn the_documented_examples_parse_and_pass() {
        for section in [
            "smtp_url = \"smtp://127.0.0.1:25\"\nfrom = \"安全应急中心 <security@example.com>\"",
            "smtp_url = \"smtp://incidentd:p%40ssword@smtp.example.com:587?tls=required\"\n\
             from = \"Security Team <security@example.com>\"\ntimeout = \"15s\"\n\
             pool_max = 5\npool_timeout = \"30s\"\nconcurrency = 8\nrate_per_second = 10",
            "smtp_url = \"smtps://incidentd:secret@smtp.example.com:465\"\n\
             from = \"security@example.com\"",
        ] {
            let c: EmailConfig = toml::from_str(section).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.problems().is_empty(), "{section}: {:?}", c.problems());
        }
    }

    #[test]
    fn message_ids_are_valid_stable_and_distinct() {
        assert_eq!(message_id("", "example.com"), "<incidentd@example.com>");
        assert_eq!(
            message_id("d-42_x", "example.com"),
            "<incidentd.d-42_x@example.com>"
        );
        assert_eq!(
            message_id("a.b=c d", "example.com"),
            "<incidentd.a=2Eb=3Dc=20d@example.com>"
        );
        assert_ne!(message_id("a.b", "x"), message_id("a=2Eb", "x"));
        assert_eq!(message_id("k", "x"), message_id("k", "x"));
    }
}
