//! Intake benchmark with what users run (issue #15, part 7): the release daemon on the shipped
//! example configuration — the whole `config/` folder copied, so departments, playbooks and
//! jurisdiction packs are live — fed Prometheus Alertmanager webhooks, and, where
//! `prometheus-alertmanager` is installed, Alertmanager 0.25 itself on the same shapes in the
//! same run.
//!
//!     cargo bench --bench intake_load                                  # every shape, 10 s each
//!     cargo bench --bench intake_load -- --shape single --duration 30
//!     cargo bench --bench intake_load -- --shape storm --no-alertmanager
//!     INCIDENTD_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!       cargo bench --bench intake_load -- --backend postgres
//!
//! Options: `--duration S` (single and batch, default 10), `--shape single|batch|storm|all`,
//! `--backend sqlite|postgres`, `--no-alertmanager`, `--settle S` (the storm's bounded wait for
//! the dispatcher, default 60). `INCIDENTD_BENCH_BIN=/path/to/incidentd` runs another build of
//! the daemon (e.g. a copy of the previous commit's), for alternating A/B runs.
//!
//! The daemon reads the copied `config/incidentd.toml`; only what must change is overridden
//! through its `INCIDENTD__<SECTION>__<KEY>` variables: listen on 127.0.0.1:0, a fresh store
//! (SQLite file, or a new PostgreSQL database), `paths.templates` at the repository's
//! `templates/`, and the channels at sinks in this process that accept at once — an SMTP
//! responder for `[channels.email]`, an HTTP gateway answering 200 for `[channels.sms]` and
//! `[channels.voice]` — which record every message per recipient. It ingests with the shipped
//! trial token `dev-alertmanager-token` and is read with `dev-viewer-token`.
//!
//! Alerts are Alertmanager's webhook payloads (version 4, shaped like the captured ones in
//! `tests/fixtures/`), each alert distinct: labels `alertname`, `group`, `instance`, `job`,
//! `severity = critical` and `category = security` (the shipped rule `security-label`
//! classifies them: S2, paging the default playbook's team by SMS and e-mail), a `summary`,
//! `startsAt` with nanoseconds, `endsAt: 0001-01-01T00:00:00Z`, a 16-hex fingerprint. They go
//! on HTTP/1.1 keep-alive connections to `POST /api/v1/alerts/alertmanager`. Each shape starts
//! a fresh daemon:
//!
//! * `single`: one alert per request, each its own group (own `groupKey` and labels),
//!   16 connections, `--duration` seconds.
//! * `batch`: 100 alerts per request, one group's notification, `groupKey` cycling over
//!   10 groups, 4 connections, `--duration` seconds.
//! * `storm`: 10,000 distinct alerts in 50 groups as notifications of 20–50 alerts, paced to be
//!   sent within 10 s, one connection per group (Alertmanager sends a group's notifications in
//!   turn, the groups in parallel; a 5xx or a broken connection is retried, as it does). Then a bounded wait until no delivery is due or being sent and no
//!   timer is due before the wait's end; then the incidents opened (`GET /api/v1/incidents`),
//!   the alerts recorded against those sent, every message the sinks received per
//!   (recipient, channel), and the most any one of them received within any window of the
//!   configured `[paging] coalesce` (60 s when the configuration has none).
//!
//! Alertmanager (when on PATH, unless `--no-alertmanager`) runs `single` and `batch` with the
//! same connections, duration and alerts, fed `POST /api/v2/alerts`: a temporary
//! `--storage.path`, a free loopback port, no cluster, a route grouping by the `group` label
//! (`group_wait` 1 s) to a webhook sink in this process answering 200 at once.
//!
//! Each line: requests/s, alerts/s, latency p50/p99/max, errors, and peak RSS (VmHWM) of the
//! daemon or Alertmanager process; then the ratio incidentd/Alertmanager and PASS/MISS against
//! the issue's aims (single ≥ 2× Alertmanager's alerts/s with p99 < 25 ms; batch ≥ 3×; storm
//! ≤ 50 incidents, ≤ 1 page per person per window, nothing lost; peak RSS < 150 MB).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

#[path = "support/mod.rs"]
mod support;

#[path = "../tests/common/alertmanager.rs"]
mod alertmanager;

use support::{
    Daemon, Inbox, Received, cpu_ticks, phone_sink, proc_status, recipient_smtp_sink, writer_phases,
};

/// The shipped configuration's trial tokens (config/incidentd.toml, README).
const INGEST_TOKEN: &str = "dev-alertmanager-token";
const VIEWER_TOKEN: &str = "dev-viewer-token";

const SINGLE_CONNECTIONS: usize = 16;
const BATCH_CONNECTIONS: usize = 4;
const BATCH_ALERTS: usize = 100;
const BATCH_GROUPS: u64 = 10;
const STORM_ALERTS: usize = 10_000;
const STORM_GROUPS: usize = 50;
const STORM_WINDOW: Duration = Duration::from_secs(10);

struct Opts {
    duration: Duration,
    shape: String,
    backend: String,
    alertmanager: bool,
    settle: Duration,
}

fn opts() -> Opts {
    let mut o = Opts {
        duration: Duration::from_secs(10),
        shape: "all".into(),
        backend: "sqlite".into(),
        alertmanager: true,
        settle: Duration::from_secs(60),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().expect("a value after the option");
        match a.as_str() {
            "--duration" => o.duration = Duration::from_secs(v().parse().unwrap()),
            "--shape" => o.shape = v(),
            "--backend" => o.backend = v(),
            "--settle" => o.settle = Duration::from_secs(v().parse().unwrap()),
            "--no-alertmanager" => o.alertmanager = false,
            "--bench" => {}
            other => panic!("unknown argument {other}; see the header of benches/intake_load.rs"),
        }
    }
    assert!(
        ["all", "single", "batch", "storm"].contains(&o.shape.as_str()),
        "--shape {}: use single, batch, storm or all",
        o.shape
    );
    o
}

// --- The alerts -------------------------------------------------------------------------------

/// A distinct alert: its group, its number (distinct over the run) and its start.
struct Alert {
    group: String,
    n: u64,
    /// Nanoseconds after the run's start (distinct per alert, see [`Alert::new`]).
    start_ns: u64,
}

impl Alert {
    fn new(group: String, n: u64) -> Alert {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Alert {
            group,
            n,
            start_ns: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// 16 hex digits of a hash, as Alertmanager's fingerprints are (splitmix64 of the number).
    fn fingerprint(&self) -> String {
        let mut x = self.n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        format!("{:016x}", x ^ (x >> 31))
    }

    /// "Now" (the run's start) plus a distinct nanosecond per alert.
    fn starts_at(&self) -> String {
        static START: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
        let start = *START.get_or_init(Utc::now);
        (start + chrono::Duration::nanoseconds(self.start_ns as i64))
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    /// `"labels":{…}` without the braces' neighbours: alertname, category, group, instance,
    /// job, severity.
    fn labels(&self) -> String {
        format!(
            r#"{{"alertname":"BenchSecurityAlert","category":"security","group":"{}","instance":"host-{}.bench:9100","job":"bench","severity":"critical"}}"#,
            self.group, self.n
        )
    }

    fn summary(&self) -> String {
        format!(
            r#"{{"summary":"bench security alert {} in {}"}}"#,
            self.n, self.group
        )
    }
}

/// A distinct alert number for (shape, connection, sequence): never repeats within a run.
fn alert_number(shape: u64, conn: usize, seq: u64) -> u64 {
    (shape << 56) | ((conn as u64) << 40) | seq
}

/// One Alertmanager webhook notification (version 4) of `group` holding `alerts`.
fn webhook(group: &str, alerts: &[Alert]) -> Bytes {
    let mut out = String::with_capacity(alerts.len() * 420 + 600);
    out.push_str(r#"{"receiver":"incidentd","status":"firing","alerts":["#);
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"status":"firing","labels":{},"annotations":{},"startsAt":"{}","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.bench:9090/graph?g0.expr=bench","fingerprint":"{}"}}"#,
            a.labels(),
            a.summary(),
            a.starts_at(),
            a.fingerprint()
        ));
    }
    // The labels every alert of the notification shares (a single alert's are all its own).
    let common = if alerts.len() == 1 {
        alerts[0].labels()
    } else {
        format!(
            r#"{{"alertname":"BenchSecurityAlert","category":"security","group":"{group}","job":"bench","severity":"critical"}}"#
        )
    };
    out.push_str(&format!(
        r#"],"groupLabels":{{"group":"{group}"}},"commonLabels":{common},"commonAnnotations":{{}},"externalURL":"http://alertmanager.bench:9093","version":"4","groupKey":"{{}}:{{group=\"{group}\"}}","truncatedAlerts":0}}"#
    ));
    Bytes::from(out)
}

/// The same alerts for Alertmanager's own API: a JSON array of
/// `{labels, annotations, startsAt, generatorURL}` (no `endsAt`: firing).
fn am_alerts(alerts: &[Alert]) -> Bytes {
    let mut out = String::with_capacity(alerts.len() * 300 + 2);
    out.push('[');
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"labels":{},"annotations":{},"startsAt":"{}","generatorURL":"http://prometheus.bench:9090/graph?g0.expr=bench"}}"#,
            a.labels(),
            a.summary(),
            a.starts_at()
        ));
    }
    out.push(']');
    Bytes::from(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Single,
    Batch,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Single => "single",
            Shape::Batch => "batch",
        }
    }
    fn connections(self) -> usize {
        match self {
            Shape::Single => SINGLE_CONNECTIONS,
            Shape::Batch => BATCH_CONNECTIONS,
        }
    }
    fn alerts_per_request(self) -> usize {
        match self {
            Shape::Single => 1,
            Shape::Batch => BATCH_ALERTS,
        }
    }
    /// Request `seq` of connection `conn`: its group and its distinct alerts.
    fn request(self, conn: usize, seq: u64) -> (String, Vec<Alert>) {
        match self {
            Shape::Single => {
                let n = alert_number(1, conn, seq);
                let group = format!("single-{conn}-{seq}");
                (group.clone(), vec![Alert::new(group, n)])
            }
            Shape::Batch => {
                let group = format!("batch-{}", (conn as u64 + seq) % BATCH_GROUPS);
                let alerts = (0..BATCH_ALERTS as u64)
                    .map(|i| {
                        Alert::new(
                            group.clone(),
                            alert_number(2, conn, seq * BATCH_ALERTS as u64 + i),
                        )
                    })
                    .collect();
                (group, alerts)
            }
        }
    }
}

// --- Load -------------------------------------------------------------------------------------

/// Where requests go: path, bearer token, the status that means accepted.
#[derive(Clone)]
struct Target {
    addr: String,
    path: &'static str,
    token: Option<&'static str>,
    ok: u16,
}

struct Load {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
    first_error: Option<String>,
}

fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).unwrap()
}

async fn connect(addr: &str) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, c) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(c);
    send
}

/// Send one body; `Ok` with the latency when the answer is `target.ok`, else what came back.
async fn send(
    conn: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    target: &Target,
    body: Bytes,
) -> Result<Duration, (bool, String)> {
    let mut req = hyper::Request::post(target.path)
        .header("host", &target.addr)
        .header("content-type", "application/json");
    if let Some(t) = target.token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(body)).unwrap();
    let t = Instant::now();
    match conn.send_request(req).await {
        Ok(res) => {
            let status = res.status();
            let body = res.into_body().collect().await.map(|b| b.to_bytes());
            if status.as_u16() == target.ok && body.is_ok() {
                Ok(t.elapsed())
            } else {
                let text = body
                    .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                    .unwrap_or_default();
                // 5xx: worth a retry (Alertmanager retries those); anything else is final.
                Err((status.is_server_error(), format!("{status}: {text}")))
            }
        }
        Err(e) => Err((true, format!("connection: {e}"))),
    }
}

/// `shape.connections()` keep-alive connections sending `body(conn, seq)` back to back for
/// `duration`.
async fn load(
    target: &Target,
    shape: Shape,
    duration: Duration,
    body: fn(Shape, usize, u64) -> Bytes,
) -> Load {
    let deadline = Instant::now() + duration;
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..shape.connections() {
        let (target, errors, first_error) = (target.clone(), errors.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut conn = connect(&target.addr).await;
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let b = body(shape, c, seq);
                seq += 1;
                match send(&mut conn, &target, b).await {
                    Ok(t) => hist.record(t.as_micros().max(1) as u64).unwrap(),
                    Err((_, e)) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e);
                        if conn.is_closed() {
                            conn = connect(&target.addr).await;
                        }
                    }
                }
            }
            hist
        }));
    }
    let mut hist = histogram();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    Load {
        requests: hist.len(),
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        hist,
        first_error: first_error.lock().unwrap().take(),
    }
}

fn incidentd_body(shape: Shape, conn: usize, seq: u64) -> Bytes {
    let (group, alerts) = shape.request(conn, seq);
    webhook(&group, &alerts)
}

fn alertmanager_body(shape: Shape, conn: usize, seq: u64) -> Bytes {
    am_alerts(&shape.request(conn, seq).1)
}

/// One result line, and its alerts/s.
struct Line {
    errors: u64,
    alerts_per_s: f64,
    p99_ms: f64,
    rss_mb: u64,
}

fn print_line(
    shape: &str,
    system: &str,
    conns: usize,
    per_req: usize,
    l: &Load,
    rss_kb: u64,
) -> Line {
    let secs = l.elapsed.as_secs_f64();
    let ms = |q: f64| l.hist.value_at_quantile(q) as f64 / 1000.0;
    let alerts_per_s = (l.requests * per_req as u64) as f64 / secs;
    println!(
        "{shape:<7} {system:<13} {conns:>5} {:>9.0} {:>10.0} {:>8.2} {:>8.2} {:>8.1} {:>7} {:>6} MB",
        l.requests as f64 / secs,
        alerts_per_s,
        ms(0.5),
        ms(0.99),
        l.hist.max() as f64 / 1000.0,
        l.errors,
        rss_kb / 1024
    );
    if let Some(e) = &l.first_error {
        println!("        first error: {e}");
    }
    Line {
        errors: l.errors,
        alerts_per_s,
        p99_ms: ms(0.99),
        rss_mb: rss_kb / 1024,
    }
}

/// The process's CPU during a load: cores busy, and CPU time per alert.
fn cpu_line(ticks: u64, l: &Load, shape: Shape) -> String {
    let secs = ticks as f64 / 100.0;
    let alerts = (l.requests * shape.alerts_per_request() as u64).max(1) as f64;
    format!(
        "        CPU during the run: {:.2} cores, {:.1} µs per alert",
        secs / l.elapsed.as_secs_f64(),
        secs / alerts * 1e6
    )
}

// --- Sinks and the daemon ---------------------------------------------------------------------

struct Sinks {
    inbox: Arc<Inbox>,
    smtp: String,
    phone: String,
}

impl Sinks {
    async fn start() -> Sinks {
        let inbox = Arc::new(Inbox::default());
        Sinks {
            smtp: recipient_smtp_sink(inbox.clone()).await,
            phone: phone_sink(inbox.clone()).await,
            inbox,
        }
    }

    /// The channel overrides pointing the shipped configuration at these sinks.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("INCIDENTD__CHANNELS__EMAIL__SMTP_URL", self.smtp.clone()),
            (
                "INCIDENTD__CHANNELS__SMS__BASE_URL",
                format!("{}/sms", self.phone),
            ),
            (
                "INCIDENTD__CHANNELS__VOICE__BASE_URL",
                format!("{}/voice", self.phone),
            ),
        ]
    }
}

/// Messages per channel and kind, e.g. `email 120 (page 120), sms 120 (page 120)`.
fn by_channel(msgs: &[Received]) -> String {
    let mut m: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for r in msgs {
        *m.entry(&r.channel).or_default().entry(&r.kind).or_default() += 1;
    }
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(ch, kinds)| {
            let total: u64 = kinds.values().sum();
            let k: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            format!("{ch} {total} ({})", k.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn start_daemon(o: &Opts, sinks: &Sinks) -> Daemon {
    sinks.inbox.reset();
    Daemon::start_shipped(&o.backend, &sinks.env())
}

async fn finish_daemon(o: &Opts, d: Daemon) {
    let url = d.store_url.clone();
    drop(d);
    if o.backend == "postgres" {
        support::drop_pg_db(&url).await;
    }
}

// --- Alertmanager -----------------------------------------------------------------------------

/// Notifications and alerts Alertmanager's webhook delivered to the sink.
#[derive(Default)]
struct Hooks {
    notifications: AtomicU64,
    alerts: AtomicU64,
}

async fn webhook_sink(h: Arc<Hooks>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let h = h.clone();
        async move {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            h.notifications.fetch_add(1, Ordering::Relaxed);
            h.alerts.fetch_add(
                v["alerts"].as_array().map_or(0, Vec::len) as u64,
                Ordering::Relaxed,
            );
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/hook")
}

async fn run_alertmanager(bin: &std::path::Path, shape: Shape, o: &Opts) -> Line {
    let hooks = Arc::new(Hooks::default());
    let url = webhook_sink(hooks.clone()).await;
    let config = alertmanager::Route {
        webhook_url: &url,
        group_by: &["group"],
        group_wait: "1s",
        group_interval: "5s",
        repeat_interval: "4h",
        bearer: None,
    }
    .yaml();
    let am = alertmanager::Alertmanager::start(bin, &config).await;
    let target = Target {
        addr: am.addr.clone(),
        path: "/api/v2/alerts",
        token: None,
        ok: 200,
    };
    let t0 = cpu_ticks(am.pid());
    let l = load(&target, shape, o.duration, alertmanager_body).await;
    let cpu = cpu_ticks(am.pid()) - t0;
    let line = print_line(
        shape.name(),
        "alertmanager",
        shape.connections(),
        shape.alerts_per_request(),
        &l,
        proc_status(am.pid(), "VmHWM:"),
    );
    println!("{}", cpu_line(cpu, &l, shape));
    println!(
        "        webhook sink received {} notifications holding {} alerts during the run",
        hooks.notifications.load(Ordering::Relaxed),
        hooks.alerts.load(Ordering::Relaxed)
    );
    am.stop();
    line
}

// --- The storm --------------------------------------------------------------------------------

/// The storm's notifications: each group's 200 alerts cut into notifications of 20–50,
/// interleaved round-robin over the groups, each with its group's number. Alert numbers are
/// distinct.
fn storm_plan() -> Vec<(usize, String, Vec<Alert>)> {
    let mut rng = fastrand::Rng::with_seed(15);
    let per_group = STORM_ALERTS / STORM_GROUPS;
    let mut groups: Vec<Vec<(usize, String, Vec<Alert>)>> = Vec::new();
    let mut n = 0u64;
    for g in 0..STORM_GROUPS {
        let group = format!("storm-{g:02}");
        let mut left = per_group;
        let mut notes = Vec::new();
        while left > 0 {
            // Leave at least 20 for the last notification.
            let take = if left <= 50 {
                left
            } else {
                rng.usize(20..=50.min(left - 20))
            };
            let alerts = (0..take)
                .map(|_| {
                    n += 1;
                    Alert::new(group.clone(), alert_number(3, 0, n))
                })
                .collect();
            notes.push((g, group.clone(), alerts));
            left -= take;
        }
        groups.push(notes);
    }
    let mut out = Vec::new();
    let rounds = groups.iter().map(Vec::len).max().unwrap_or(0);
    for r in 0..rounds {
        for g in &mut groups {
            if r < g.len() {
                out.push(std::mem::take(&mut g[r]));
            }
        }
    }
    out
}

struct Storm {
    notifications: usize,
    acknowledged: u64,
    errors: u64,
    retries: u64,
    sent_in: Duration,
    hist: Histogram<u64>,
    first_error: Option<String>,
}

/// Send the storm paced over 90 % of the window: notification `i` (of the interleaved plan) at
/// `i` steps from the start, one connection per group — as Alertmanager sends each group's
/// notifications in turn and the groups in parallel. A 5xx or a broken connection is retried
/// (up to 20 times, 250 ms apart), as Alertmanager would.
async fn send_storm(target: &Target) -> Storm {
    let plan = Arc::new(
        storm_plan()
            .into_iter()
            .map(|(g, group, a)| (g, webhook(&group, &a), a.len() as u64))
            .collect::<Vec<_>>(),
    );
    let step = STORM_WINDOW.mul_f64(0.9) / plan.len() as u32;
    let acknowledged = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for g in 0..STORM_GROUPS {
        let (plan, target) = (plan.clone(), target.clone());
        let (acknowledged, errors, retries, first_error) = (
            acknowledged.clone(),
            errors.clone(),
            retries.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut conn = connect(&target.addr).await;
            for (i, (_, body, n)) in plan.iter().enumerate().filter(|(_, p)| p.0 == g) {
                tokio::time::sleep_until((started + step * i as u32).into()).await;
                for attempt in 0..=20 {
                    if conn.is_closed() {
                        conn = connect(&target.addr).await;
                    }
                    match send(&mut conn, &target, body.clone()).await {
                        Ok(t) => {
                            hist.record(t.as_micros().max(1) as u64).unwrap();
                            acknowledged.fetch_add(*n, Ordering::Relaxed);
                            break;
                        }
                        Err((retry, e)) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().unwrap().get_or_insert(e);
                            if !retry || attempt == 20 {
                                break;
                            }
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
            }
            hist
        }));
    }
    let mut hist = histogram();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    Storm {
        notifications: plan.len(),
        acknowledged: acknowledged.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        retries: retries.load(Ordering::Relaxed),
        sent_in: started.elapsed(),
        hist,
        first_error: first_error.lock().unwrap().take(),
    }
}

/// One `count(*)`-like figure from the daemon's store, read behind its back (SQLite read-only).
async fn scalar(d: &Daemon, sql: &str) -> i64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if d.store_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=ro", d.store_url))
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&d.store_url).await.unwrap();
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

/// Deliveries being sent or due by `until` (µs), and timers due by then: the dispatcher's
/// and the scheduler's work still to do within the wait.
async fn work_due(d: &Daemon, until: i64) -> (i64, i64) {
    let deliveries = scalar(
        d,
        &format!(
            "SELECT count(*) FROM deliveries WHERE status = 'sending' \
             OR (status IN ('pending', 'failed') AND next_attempt_at <= {until})"
        ),
    )
    .await;
    let timers = scalar(
        d,
        &format!("SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= {until}"),
    )
    .await;
    (deliveries, timers)
}

/// Every incident, through the API, paging.
async fn incidents(d: &Daemon) -> Vec<Value> {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let v: Value = http
            .get(format!(
                "http://{}/api/v1/incidents?limit=500{before}",
                d.addr
            ))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(b) => before = format!("&cursor={b}"),
            None => return out,
        }
    }
}

/// The coalescing window from the copied configuration's `[paging] coalesce`, if it has one.
fn coalesce_window(d: &Daemon) -> Option<Duration> {
    let text = std::fs::read_to_string(&d.config).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    let s = t.get("paging")?.get("coalesce")?.as_str()?;
    let h: incidentd::domain::duration::HumanDuration = s
        .parse()
        .unwrap_or_else(|e| panic!("[paging] coalesce = {s:?}: {e:?}"));
    Some(h.0)
}

/// The most messages one key received within any `window` (times sorted).
fn most_within(times: &[Instant], window: Duration) -> usize {
    let (mut best, mut lo) = (0, 0);
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

struct StormResult {
    incidents: usize,
    recorded: i64,
    sent: u64,
    most_in_window: usize,
    most_who: String,
    window: Duration,
    rss_mb: u64,
}

async fn run_storm(o: &Opts, sinks: &Sinks) -> StormResult {
    let d = start_daemon(o, sinks);
    let target = Target {
        addr: d.addr.clone(),
        path: "/api/v1/alerts/alertmanager",
        token: Some(INGEST_TOKEN),
        ok: 202,
    };
    let s = send_storm(&target).await;
    let ms = |q: f64| s.hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "storm: {STORM_ALERTS} distinct alerts in {STORM_GROUPS} groups, {} notifications of 20–50 paced over {:.0} s, one connection per group",
        s.notifications,
        STORM_WINDOW.as_secs_f64() * 0.9
    );
    println!(
        "  sent in {:.1} s{}: {} alerts acknowledged, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors, {} retries",
        s.sent_in.as_secs_f64(),
        if s.sent_in <= STORM_WINDOW {
            ""
        } else {
            " (LATE: over the 10 s window)"
        },
        s.acknowledged,
        ms(0.5),
        ms(0.99),
        s.hist.max() as f64 / 1000.0,
        s.errors,
        s.retries
    );
    if let Some(e) = &s.first_error {
        println!("  first error: {e}");
    }

    // Wait until the dispatcher and the scheduler have nothing left that falls due within the
    // bound (a coalesced digest held for its window is waited for).
    let t0 = Instant::now();
    let until = t0 + o.settle;
    let until_us = (Utc::now() + chrono::Duration::from_std(o.settle).unwrap()).timestamp_micros();
    let mut settled = false;
    let (mut deliveries, mut timers) = (0, 0);
    while Instant::now() < until {
        (deliveries, timers) = work_due(&d, until_us).await;
        if deliveries == 0 && timers == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let later = scalar(
        &d,
        "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'failed', 'sending')",
    )
    .await;
    if settled {
        println!(
            "  settled {:.1} s after the storm: nothing due or being sent; {later} deliveries wait for later",
            t0.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "  NOT settled within {} s: {deliveries} deliveries and {timers} timers still due or being sent ({later} deliveries unsent in all)",
            o.settle.as_secs()
        );
    }

    let incidents = incidents(&d).await.len();
    let recorded = scalar(&d, "SELECT count(*) FROM alerts").await;
    let on_incidents = scalar(
        &d,
        "SELECT count(DISTINCT incident_id) FROM alerts WHERE incident_id IS NOT NULL",
    )
    .await;
    let by_status = scalar(&d, "SELECT count(*) FROM deliveries WHERE purpose = 'page'").await;
    println!(
        "  incidents opened: {incidents} (the alerts are on {on_incidents}); alerts recorded: {recorded} of {STORM_ALERTS} sent ({} acknowledged)",
        s.acknowledged
    );
    let msgs = sinks.inbox.snapshot();
    println!(
        "  page deliveries in the store: {by_status}; messages at the sinks: {} — {}",
        msgs.len(),
        by_channel(&msgs)
    );

    let (window, configured) = match coalesce_window(&d) {
        Some(w) => (w, true),
        None => (Duration::from_secs(60), false),
    };
    let mut per: BTreeMap<(String, String), Vec<Instant>> = BTreeMap::new();
    for m in &msgs {
        per.entry((m.recipient.clone(), m.channel.clone()))
            .or_default()
            .push(m.at);
    }
    let mut rows: Vec<(usize, usize, &(String, String))> = per
        .iter_mut()
        .map(|(k, times)| {
            times.sort();
            (most_within(times, window), times.len(), k)
        })
        .collect();
    rows.sort_by(|a, b| b.cmp(a));
    println!(
        "  per (recipient, channel): messages, and the most within any {} s ({})",
        window.as_secs_f64(),
        if configured {
            "[paging] coalesce of the shipped config"
        } else {
            "no [paging] coalesce in the shipped config: per 60 s"
        }
    );
    for (most, total, (who, ch)) in rows.iter().take(20) {
        println!("    {who:<32} {ch:<6} {total:>7}   most in a window {most:>6}");
    }
    if rows.len() > 20 {
        println!("    … and {} more", rows.len() - 20);
    }
    let (most_in_window, most_who) = rows
        .first()
        .map(|(m, _, (who, ch))| (*m, format!("{who} by {ch}")))
        .unwrap_or((0, "nobody".into()));
    let rss_kb = proc_status(d.child.id(), "VmHWM:");
    println!("  peak RSS of the daemon: {} MB", rss_kb / 1024);
    finish_daemon(o, d).await;
    StormResult {
        incidents,
        recorded,
        sent: STORM_ALERTS as u64,
        most_in_window,
        most_who,
        window,
        rss_mb: rss_kb / 1024,
    }
}

// --- Main -------------------------------------------------------------------------------------

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let am_bin = alertmanager::binary();
    let am_note = match (&am_bin, o.alertmanager) {
        (_, false) => Some("not run (--no-alertmanager)".to_string()),
        (None, true) => Some("not run: no prometheus-alertmanager on PATH".to_string()),
        (Some(_), true) => None,
    };
    println!(
        "intake load: {} backend, the shipped config/ (copied), {} s per shape, release daemon {}",
        o.backend,
        o.duration.as_secs(),
        support::daemon_binary()
    );
    match (&am_bin, &am_note) {
        (Some(bin), None) => {
            let v = std::process::Command::new(bin)
                .arg("--version")
                .output()
                .map(|out| {
                    let text = String::from_utf8_lossy(&out.stdout).into_owned()
                        + &String::from_utf8_lossy(&out.stderr);
                    text.lines().next().unwrap_or("").to_string()
                })
                .unwrap_or_default();
            println!("alertmanager: {} ({v})", bin.display());
        }
        (_, Some(note)) => println!("alertmanager: {note}"),
        (None, None) => unreachable!(),
    }
    println!(
        "{:<7} {:<13} {:>5} {:>9} {:>10} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "shape",
        "system",
        "conns",
        "req/s",
        "alerts/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "peak RSS"
    );

    let sinks = rt.block_on(Sinks::start());
    let mut ours: BTreeMap<&str, Line> = BTreeMap::new();
    let mut theirs: BTreeMap<&str, Line> = BTreeMap::new();
    let mut peak_rss = 0u64;
    for shape in [Shape::Single, Shape::Batch] {
        if o.shape != "all" && o.shape != shape.name() {
            continue;
        }
        let d = start_daemon(&o, &sinks);
        let target = Target {
            addr: d.addr.clone(),
            path: "/api/v1/alerts/alertmanager",
            token: Some(INGEST_TOKEN),
            ok: 202,
        };
        let t0 = cpu_ticks(d.child.id());
        let l = rt.block_on(load(&target, shape, o.duration, incidentd_body));
        let cpu = cpu_ticks(d.child.id()) - t0;
        let line = print_line(
            shape.name(),
            "incidentd",
            shape.connections(),
            shape.alerts_per_request(),
            &l,
            proc_status(d.child.id(), "VmHWM:"),
        );
        let msgs = sinks.inbox.snapshot();
        println!(
            "        messages sent to the sinks during the run: {} — {}",
            msgs.len(),
            by_channel(&msgs)
        );
        println!("{}", cpu_line(cpu, &l, shape));
        println!("{}", rt.block_on(writer_phases(&d.addr)));
        peak_rss = peak_rss.max(line.rss_mb);
        ours.insert(shape.name(), line);
        rt.block_on(finish_daemon(&o, d));
        if let (Some(bin), None) = (&am_bin, &am_note) {
            let line = rt.block_on(run_alertmanager(bin, shape, &o));
            if line.alerts_per_s > 0.0 {
                let r = ours[shape.name()].alerts_per_s / line.alerts_per_s;
                println!("        ratio incidentd/alertmanager, alerts/s: {r:.2}×");
            }
            theirs.insert(shape.name(), line);
        }
    }
    let storm = if o.shape == "all" || o.shape == "storm" {
        let s = rt.block_on(run_storm(&o, &sinks));
        peak_rss = peak_rss.max(s.rss_mb);
        Some(s)
    } else {
        None
    };

    println!("aims (issue #15, part 7):");
    let ratio_aim = |shape: &str, times: f64| match (ours.get(shape), theirs.get(shape)) {
        (Some(_), Some(b)) if b.alerts_per_s == 0.0 => format!(
            "NOT MEASURED: Alertmanager accepted nothing ({} errors)",
            b.errors
        ),
        (Some(a), Some(b)) => {
            let r = a.alerts_per_s / b.alerts_per_s;
            let errors = if a.errors + b.errors > 0 {
                format!(
                    "; errors: incidentd {}, Alertmanager {}",
                    a.errors, b.errors
                )
            } else {
                String::new()
            };
            format!(
                "{}  {r:.2}× ({:.0} against {:.0} alerts/s{errors})",
                verdict(r >= times && a.errors == 0),
                a.alerts_per_s,
                b.alerts_per_s
            )
        }
        (None, _) => "not run".into(),
        (Some(_), None) => format!(
            "SKIPPED: Alertmanager {}",
            am_note.clone().unwrap_or_default()
        ),
    };
    println!(
        "  single ≥ 2× Alertmanager's alerts/s          {}",
        ratio_aim("single", 2.0)
    );
    println!(
        "  single p99 < 25 ms                           {}",
        ours.get("single").map_or("not run".into(), |l| format!(
            "{}  {:.2} ms (Alertmanager's {})",
            verdict(l.p99_ms < 25.0),
            l.p99_ms,
            theirs
                .get("single")
                .map_or("not measured".into(), |t| format!("{:.2} ms", t.p99_ms))
        ))
    );
    println!(
        "  batch ≥ 3× Alertmanager's alerts/s           {}",
        ratio_aim("batch", 3.0)
    );
    match &storm {
        Some(s) => {
            println!(
                "  storm ≤ 50 incidents                         {}  {}",
                verdict(s.incidents <= 50),
                s.incidents
            );
            println!(
                "  storm ≤ 1 page per person per {:>4} s window  {}  at most {} ({})",
                s.window.as_secs(),
                verdict(s.most_in_window <= 1),
                s.most_in_window,
                s.most_who
            );
            println!(
                "  storm: nothing lost                          {}  {} of {} alerts recorded",
                verdict(s.recorded >= s.sent as i64),
                s.recorded,
                s.sent
            );
        }
        None => println!("  storm                                        not run"),
    }
    println!(
        "  peak RSS < 150 MB throughout                 {}  {peak_rss} MB at most (Alertmanager's: {})",
        verdict(peak_rss < 150),
        if theirs.is_empty() {
            "not measured".to_string()
        } else {
            theirs
                .values()
                .map(|l| format!("{} MB", l.rss_mb))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
}
