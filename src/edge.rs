//! The HTTP edge: the accept loop in front of the router. Whoever can reach the port can open
//! connections without a token, so the edge bounds what a connection may cost:
//!
//! * **Header read timeout** (`server.header_read_timeout`): a request's headers must be complete
//!   within it, counted from the connection's start or from the first byte of a later request
//!   on a kept-alive connection. A client trickling headers is disconnected.
//! * **Idle timeout** (`server.idle_timeout`): a connection without a request in progress is
//!   closed after it (HTTP/1.1 keep-alive and HTTP/2 alike); a response whose client stopped
//!   reading it is abandoned after as long.
//! * **Connection limit** (`server.max_connections`): at the limit, a new connection closes the
//!   connection idle longest — an idle one costs its owner nothing to reopen, so idle
//!   connections cannot crowd out `/healthz` or an Alertmanager — and when every connection
//!   has a request in progress, the new one gets an immediate 503 with `Retry-After` instead of
//!   waiting unanswered in the kernel's backlog.
//!
//! Time limits on handlers (`server.request_timeout`) stay in the router.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tower::ServiceExt;
use tracing::{debug, warn};

/// What a connection may cost (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_settings(s: &crate::config::ServerConfig) -> Limits {
        Limits {
            header_read_timeout: s.header_read_timeout.0,
            idle_timeout: s.idle_timeout.0,
            max_connections: s.max_connections,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting, close idle
/// connections, and return once every request in progress has been answered. (The caller
/// bounds that wait: dropping this future closes what is still open.)
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let registry = Arc::new(Registry::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The edge keeps time itself (hyper's own header timer would also cut idle keep-alives).
    builder.http1().header_read_timeout(None);
    let builder = Arc::new(builder);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                match registry.admit() {
                    Some(conn) => {
                        conns.spawn(serve_connection(
                            stream,
                            app.clone(),
                            builder.clone(),
                            conn,
                            registry.clone(),
                            limits,
                            stop_rx.clone(),
                        ));
                    }
                    None => registry.refuse(stream),
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
}

/// `accept` failed: a connection that died before we took it is nothing; anything else (out
/// of file descriptors) is waited out, as hyper did.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    warn!(error = %e, "cannot accept connections; trying again in 1 s (server.max_connections above the open-file limit?)");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    conn: Arc<ConnState>,
    registry: Arc<Registry>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(EdgeIo::new(stream, conn.clone(), limits));
    let tracked = conn.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::enter(&tracked);
        let response = app.clone().oneshot(req);
        async move {
            let res = match response.await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(res.map(|body| Tracked {
                body,
                _guard: guard,
            }))
        }
    });
    let mut served = std::pin::pin!(builder.serve_connection(io, service));
    let mut stopping = false;
    let mut stop_now = false;
    loop {
        if !stopping && (stop_now || *stop.borrow()) {
            stopping = true;
            conn.stopping.store(true, Ordering::Relaxed);
            served.as_mut().graceful_shutdown();
        }
        tokio::select! {
            r = served.as_mut() => {
                if let Err(e) = r {
                    debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            changed = stop.changed(), if !stopping => stop_now = changed.is_err(),
            _ = conn.evict.notified() => {
                if conn.in_flight.load(Ordering::Acquire) == 0 {
                    debug!("connection closed: the connection limit needed its place");
                    break;
                }
                // A request arrived as it was chosen: answer it, then close.
                stopping = true;
                conn.stopping.store(true, Ordering::Relaxed);
                served.as_mut().graceful_shutdown();
            }
        }
    }
    registry.release(conn.id);
}

/// One open connection, as the accept loop, its requests and its I/O see it.
struct ConnState {
    id: u64,
    /// Requests in progress: from the router's call until its response body is sent.
    in_flight: AtomicUsize,
    /// Moves on when a request starts or ends: the edge's timers start again from there.
    epoch: AtomicU64,
    /// The registry's clock: `idle_since` counts milliseconds from it.
    clock: Instant,
    /// When it last had no request in progress (ms on `clock`).
    idle_since: AtomicU64,
    /// Shutting down: a connection without a request in progress ends at its next read.
    stopping: AtomicBool,
    /// Close now: the connection limit needs its place.
    evict: tokio::sync::Notify,
    /// The task reading the connection, woken when its last request ends (its idle time starts).
    reader: Mutex<Option<Waker>>,
}

/// A request in progress; ends with its response body (dropped when sent, or abandoned).
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn enter(conn: &Arc<ConnState>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.epoch.fetch_add(1, Ordering::AcqRel);
        InFlight(conn.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        let last = conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            conn.idle_since.store(millis(conn.clock), Ordering::Relaxed);
        }
        conn.epoch.fetch_add(1, Ordering::AcqRel);
        let reader = conn.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let (true, Some(w)) = (last, reader) {
            w.wake();
        }
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The response body, holding its request's place until it is sent.
struct Tracked {
    body: axum::body::Body,
    _guard: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The open connections, for the limit.
struct Registry {
    max: usize,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Refusals being answered right now (each a small task; more are simply dropped).
    refusing: Arc<tokio::sync::Semaphore>,
    /// When the limit was last reported in the log (ms since `started`; 0: never).
    warned_at: AtomicU64,
}

impl Registry {
    fn new(max: usize) -> Registry {
        Registry {
            max,
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            refusing: Arc::new(tokio::sync::Semaphore::new(64)),
            warned_at: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.started)
    }

    /// A place for a new connection: a free one, or the one of the connection idle longest
    /// (which is told to close); `None` when every connection has a request in progress.
    fn admit(&self) -> Option<Arc<ConnState>> {
        let now = self.now_ms();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.max {
            let victim = open
                .values()
                .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|c| c.idle_since.load(Ordering::Relaxed))
                .map(|c| c.id);
            let Some(victim) = victim.and_then(|id| open.remove(&id)) else {
                drop(open);
                self.limit_reached(
                    "every connection has a request in progress: new connections get 503",
                );
                return None;
            };
            victim.evict.notify_one();
            metrics::counter!("incidentd_http_connections_closed_total", "reason" => "evicted")
                .increment(1);
            drop(open);
            self.limit_reached("closing the connections idle longest to admit new ones");
            return Some(self.insert(now));
        }
        drop(open);
        Some(self.insert(now))
    }

    fn insert(&self, now: u64) -> Arc<ConnState> {
        let conn = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            clock: self.started,
            in_flight: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            idle_since: AtomicU64::new(now),
            stopping: AtomicBool::new(false),
            evict: tokio::sync::Notify::new(),
            reader: Mutex::new(None),
        });
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(conn.id, conn.clone());
        metrics::gauge!("incidentd_http_connections_open").set(open.len() as f64);
        conn
    }

    fn release(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&id);
        metrics::gauge!("incidentd_http_connections_open").set(open.len() as f64);
    }

    /// Say so in the log, at most once a minute.
    fn limit_reached(&self, what: &str) {
        let now = self.now_ms().max(1);
        let last = self.warned_at.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 60_000)
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            warn!(
                max_connections = self.max,
                "connection limit reached (server.max_connections): {what}"
            );
        }
    }

    /// Answer 503 at once and close: better than leaving the client unanswered in the backlog.
    fn refuse(&self, mut stream: TcpStream) {
        metrics::counter!("incidentd_http_connections_refused_total").increment(1);
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let answer = async {
                stream.write_all(REFUSAL.as_bytes()).await?;
                stream.shutdown().await?;
                // Read what the client sent, so closing does not reset the answer away.
                let mut sink = [0u8; 4096];
                let mut read = 0;
                while read < 65_536 {
                    let n = tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await?;
                    if n == 0 {
                        break;
                    }
                    read += n;
                }
                Ok::<_, io::Error>(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
        });
    }
}

const REFUSAL: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\n",
    "content-type: application/problem+json\r\n",
    "retry-after: 1\r\n",
    "connection: close\r\n",
    "content-length: 209\r\n",
    "\r\n",
    r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"incidentd has server.max_connections connections open, each with a request in progress; retry shortly","code":"connections_exhausted"}"#,
);

/// Where a connection stands, for its read deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request is in progress: the router's limits apply, not the edge's.
    Busy,
    /// Waiting for a request to start (`idle_timeout`).
    Idle,
    /// A request is arriving: its headers must be complete by the deadline.
    Headers,
}

/// The connection's socket, with the edge's deadlines on reading and writing.
struct EdgeIo {
    stream: TcpStream,
    conn: Arc<ConnState>,
    limits: Limits,
    phase: Phase,
    /// The `epoch` the phase was set in.
    seen: u64,
    read_deadline: Pin<Box<Sleep>>,
    /// Armed while a write waits for the client to read.
    write_deadline: Option<Pin<Box<Sleep>>>,
}

impl EdgeIo {
    fn new(stream: TcpStream, conn: Arc<ConnState>, limits: Limits) -> EdgeIo {
        // A new connection must send its first request's headers in time, like any request.
        EdgeIo {
            stream,
            conn,
            limits,
            phase: Phase::Headers,
            seen: 0,
            read_deadline: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
            write_deadline: None,
        }
    }

    fn enter(&mut self, phase: Phase) {
        let after = match phase {
            Phase::Busy => return self.phase = phase,
            Phase::Idle => self.limits.idle_timeout,
            Phase::Headers => self.limits.header_read_timeout,
        };
        self.phase = phase;
        self.read_deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + after);
    }

    /// Bring the phase up to date with the requests on this connection.
    fn update_phase(&mut self) {
        let epoch = self.conn.epoch.load(Ordering::Acquire);
        if self.conn.in_flight.load(Ordering::Acquire) > 0 {
            self.seen = epoch;
            self.phase = Phase::Busy;
        } else if epoch != self.seen || self.phase == Phase::Busy {
            // A request ended since: waiting for the next one from now.
            self.seen = epoch;
            self.enter(Phase::Idle);
        }
    }

    fn timed_out(&self) -> io::Error {
        let (reason, what) = match self.phase {
            Phase::Headers => (
                "header_timeout",
                "the request's headers did not arrive within server.header_read_timeout",
            ),
            _ => ("idle_timeout", "no request within server.idle_timeout"),
        };
        metrics::counter!("incidentd_http_connections_closed_total", "reason" => reason)
            .increment(1);
        debug!(reason, "connection closed: {what}");
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

impl AsyncRead for EdgeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.update_phase();
        if this.phase != Phase::Busy && this.conn.stopping.load(Ordering::Relaxed) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "shutting down",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        match (&read, this.phase) {
            (Poll::Pending, Phase::Busy) => {
                // The deadline starts when the request ends: be woken then.
                let mut reader = this.conn.reader.lock().unwrap_or_else(|e| e.into_inner());
                *reader = Some(cx.waker().clone());
                drop(reader);
                if this.conn.in_flight.load(Ordering::Acquire) == 0 {
                    cx.waker().wake_by_ref();
                }
                read
            }
            (_, Phase::Busy) => read,
            (Poll::Ready(Ok(())), Phase::Idle) if buf.filled().len() > before => {
                this.enter(Phase::Headers);
                read
            }
            (Poll::Ready(_), _) => read,
            (Poll::Pending, _) => match this.read_deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(this.timed_out())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl EdgeIo {
    /// A write that cannot proceed because the client stopped reading ends after
    /// `idle_timeout`; one that proceeds disarms the deadline.
    fn write_stalled<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.write_deadline = None;
            return result;
        }
        let limit = self.limits.idle_timeout;
        let deadline = self
            .write_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(deadline.as_mut().poll(cx));
        metrics::counter!("incidentd_http_connections_closed_total", "reason" => "write_timeout")
            .increment(1);
        debug!("connection closed: the client stopped reading its response");
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read its response within server.idle_timeout",
        )))
    }
}

impl AsyncWrite for EdgeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.write_stalled(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.write_stalled(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_flush(cx);
        this.write_stalled(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.write_stalled(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let (head, body) = REFUSAL.split_once("\r\n\r\n").unwrap_or_default();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        assert_eq!(length, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(v["status"], 503);
    }
}
