//! `incidentd sink`: a trial sink for e-mail (SMTP) and SMS/voice (`generic_http` gateways over
//! HTTP) that keeps and shows what incidentd sends — for trying incidentd on one machine, and
//! the SMTP peer of its tests. It delivers nothing to anyone.

mod http;
mod out;
mod proto;
mod show;
mod smtp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::watch;

use out::{Out, say};

pub const HELP: &str = "\
A trial sink, for trying incidentd out and for its tests — never for production: it sends
nothing on to anyone. Its defaults are the peers of the shipped configuration
(config/incidentd.toml):
  e-mail       SMTP on --smtp     smtp_url = \"smtp://127.0.0.1:2525\" (plain: no TLS, no AUTH)
  SMS, voice   HTTP on --http     provider = \"generic_http\", base_url = \"http://127.0.0.1:9000/sms\"
                                  and \"http://127.0.0.1:9000/voice\"

Once listening it prints `SMTP <address>` and `HTTP <address>` (port 0 picks a free port), then
one line per message. With --out DIR it keeps each message, written whole before it is
acknowledged (numbering goes on after what DIR already holds):
  DIR/000001.eml         the e-mail as it arrived
  DIR/000001.json        its envelope: peer, mail_from, rcpt_tos, size, received_at
  DIR/http-000001.json   an HTTP request: method, path, query, headers (Authorization
                         included), body (JSON when it parses, else text), received_at

E-mail recipients are answered by their local part, to try incidentd's retries and failures:
  tempfail…@…   451 4.3.0  temporary: incidentd tries again later
  reject…@…     550 5.1.1  permanent: the delivery is dead (and falls back, if it names a fallback)
  anyone else   250
Messages over 25 MiB get 552. Every POST is answered 200 {\"id\": \"sink-<n>\"}, which
generic_http takes as sent; GET / says what the sink is.

It stops on Ctrl-C or SIGTERM (exit 0) and never reads standard input.

Examples:
  incidentd sink                                 beside `incidentd serve` on the shipped config
  incidentd sink --out /tmp/incidentd-sink &     keep every message; stop it with `kill %1`
  incidentd sink --smtp 127.0.0.1:0 --http 127.0.0.1:0 --out DIR    free ports, as the tests do";

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Where to take e-mail over SMTP (port 0: a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:2525")]
    pub smtp: SocketAddr,
    /// Where to take SMS and voice requests over HTTP, any path (port 0: a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9000")]
    pub http: SocketAddr,
    /// Keep each message in this folder (created if missing); without it, only printed.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// How long the HTTP side gets to answer the requests under way once asked to stop.
const HTTP_DRAIN: Duration = Duration::from_secs(3);

pub async fn run(a: SinkArgs) -> anyhow::Result<i32> {
    // Before anything is announced: whoever read our address may stop us at once.
    let mut signals = Signals::install()?;
    let out = Arc::new(Out::open(a.out.as_deref(), true)?);
    let smtp = bind(a.smtp, "--smtp").await?;
    let http = bind(a.http, "--http").await?;
    say(&format!("SMTP {}", smtp.local_addr()?));
    say(&format!("HTTP {}", http.local_addr()?));
    eprintln!(
        "incidentd sink: a trial sink, delivering nothing; {}. Ctrl-C stops it.",
        match &a.out {
            Some(d) => format!("keeping messages in {}", d.display()),
            None => "not keeping messages (--out DIR keeps them)".into(),
        }
    );
    let (stop_tx, stop) = watch::channel(false);
    let mut smtp_task = tokio::spawn(smtp::serve(smtp, out.clone(), stop.clone()));
    let mut http_task = tokio::spawn(http::serve(http, out.clone(), stop));
    let (why, code) = tokio::select! {
        s = signals.next() => (s.to_string(), 0),
        r = &mut http_task => (format!("the HTTP side stopped ({})", match r {
            Ok(Ok(())) => "without an error".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        }), 1),
        r = &mut smtp_task => (format!("the SMTP side stopped ({r:?})"), 1),
    };
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(HTTP_DRAIN, async {
        let _ = smtp_task.await;
        let _ = http_task.await;
    })
    .await;
    let (mail, requests) = out.counts();
    eprintln!("incidentd sink: {why}; stopped (e-mails taken: {mail}, HTTP requests: {requests})");
    Ok(code)
}

/// A listener, or an error that says what to do.
async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let free = SocketAddr::new(addr.ip(), 0);
        match e.kind() {
            std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "port {} is in use: stop the other sink (or whatever listens there), or pass \
                 {flag} {free} for a free port (and point the configuration at it)",
                addr.port()
            ),
            std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
                "may not listen on {addr}: ports below 1024 need privileges; pass {flag} with a \
                 higher port, e.g. {flag} {free}"
            ),
            std::io::ErrorKind::AddrNotAvailable => anyhow::anyhow!(
                "{} is not an address of this machine: pass {flag} 127.0.0.1:{}",
                addr.ip(),
                addr.port()
            ),
            _ => anyhow::Error::new(e).context(format!("cannot listen on {addr} ({flag})")),
        }
    })
}

/// SIGINT and SIGTERM, caught from the start so that neither kills the sink mid-message.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
        })
    }

    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
