//! The SMTP side of `incidentd sink`: one task per connection, several messages per connection,
//! commands answered as they come (so pipelined commands work), every message kept before its
//! 250.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::out::Out;
use super::proto::{self, Next, Session};

/// RFC 5321 4.5.3.2.7 asks a server to wait at least 5 minutes for the next command.
const IDLE: Duration = Duration::from_secs(300);
/// How long connections get to finish their message once the sink is asked to stop.
const DRAIN: Duration = Duration::from_secs(2);

/// Takes connections until `stop` turns true, then lets the open ones finish what they are
/// reading (up to [`DRAIN`]) and closes them with 421.
pub async fn serve(listener: TcpListener, out: Arc<Out>, mut stop: watch::Receiver<bool>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    sessions.spawn(connection(stream, peer, out.clone(), stop.clone()));
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(e) => {
                    eprintln!("incidentd sink: SMTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while sessions.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        sessions.abort_all();
    }
}

/// How a line read ended.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The line, its line end included, is in the buffer.
    Whole,
    /// Longer than the limit: skipped to its end, the buffer left empty.
    TooLong,
    /// The peer closed the connection (a partial line is dropped).
    Closed,
}

/// Reads one line into `buf` (cleared first), keeping at most `limit` bytes of it.
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Closed);
        }
        let end = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..end.map_or(available.len(), |i| i + 1)];
        too_long = too_long || buf.len() + chunk.len() > limit;
        if too_long {
            buf.clear();
        } else {
            buf.extend_from_slice(chunk);
        }
        let used = chunk.len();
        r.consume(used);
        if end.is_some() {
            return Ok(if too_long { Line::TooLong } else { Line::Whole });
        }
    }
}

/// One SMTP connection, from the greeting to QUIT (or the peer leaving, or the sink stopping).
pub async fn connection<S: AsyncRead + AsyncWrite>(
    stream: S,
    peer: SocketAddr,
    out: Arc<Out>,
    mut stop: watch::Receiver<bool>,
) {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::new(reader);
    let mut session = Session::new(peer);
    let mut line = Vec::with_capacity(proto::MAX_COMMAND_LINE);
    if send(&mut writer, proto::GREETING).await.is_err() {
        return;
    }
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(IDLE, read_line(&mut reader, &mut line, proto::MAX_COMMAND_LINE)) => r,
            _ = stopped(&mut stop) => {
                let _ = send(&mut writer, proto::SHUTTING_DOWN).await;
                return;
            }
        };
        let (reply, next) = match read {
            Err(_) => (proto::IDLE.to_string(), Next::Close),
            Ok(Err(_) | Ok(Line::Closed)) => return,
            Ok(Ok(Line::TooLong)) => (proto::LINE_TOO_LONG.to_string(), Next::Command),
            Ok(Ok(Line::Whole)) => {
                let text = String::from_utf8_lossy(&line);
                session.command(text.trim_end_matches(['\r', '\n']))
            }
        };
        if send(&mut writer, &reply).await.is_err() {
            return;
        }
        match next {
            Next::Command => {}
            Next::Close => return,
            Next::Data => {
                let Some(reply) = message(&mut reader, &mut session, &out).await else {
                    return;
                };
                if send(&mut writer, &reply).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads a message up to its lone dot, keeps it, and returns the answer to it; None when the
/// peer left (or went quiet) in the middle.
async fn message<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    session: &mut Session,
    out: &Out,
) -> Option<String> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    let mut too_big = false;
    loop {
        // Past the limit only the lone dot matters; a line longer than that is not it.
        let room = if too_big {
            8
        } else {
            proto::MAX_MESSAGE - raw.len() + 3
        };
        match tokio::time::timeout(IDLE, read_line(reader, &mut line, room)).await {
            Err(_) | Ok(Err(_) | Ok(Line::Closed)) => return None,
            Ok(Ok(Line::TooLong)) => too_big = true,
            Ok(Ok(Line::Whole)) => match proto::unstuff(&line) {
                None => break,
                Some(_) if too_big => {}
                Some(l) if raw.len() + l.len() > proto::MAX_MESSAGE => too_big = true,
                Some(l) => raw.extend_from_slice(l),
            },
        }
    }
    let envelope = session.take();
    if too_big {
        return Some(proto::TOO_BIG.to_string());
    }
    Some(match out.mail(&envelope, &raw).await {
        Ok(n) => format!("250 2.0.0 Ok: queued as test-{n}"),
        Err(e) => {
            eprintln!("incidentd sink: {e:#}");
            "451 4.3.0 The sink cannot keep the message (see its error output)".into()
        }
    })
}

/// Resolves once the sink is asked to stop (or its stop switch is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, reply: &str) -> std::io::Result<()> {
    w.write_all(format!("{reply}\r\n").as_bytes()).await?;
    w.flush().await
}

#[cfg(test)]
#[path = "smtp_tests.rs"]
mod tests;
