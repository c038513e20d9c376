//! What the benchmarks share: a release daemon in its own process on a fresh database, and
//! readings of its CPU time and memory from /proc.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

#[path = "../../tests/common/process.rs"]
mod process;

pub const BIN: &str = env!("CARGO_BIN_EXE_incidentd");

/// The daemon the benchmark runs: this build's, or `INCIDENTD_BENCH_BIN` (to compare two
/// builds in alternating runs).
pub fn daemon_binary() -> String {
    process::binary()
}
/// The bearer token the benchmark daemon accepts (all roles the benchmarks need).
pub const TOKEN: &str = "bench-token";

pub struct Daemon {
    pub child: Child,
    pub addr: String,
    /// The store it runs on (an absolute `sqlite://` path, or the PostgreSQL database's URL).
    pub store_url: String,
    /// Its configuration file.
    pub config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Start `incidentd serve` on a fresh `backend` ("sqlite" or "postgres") database, with
    /// `extra` appended to the configuration.
    pub fn start(backend: &str, extra: &str) -> Daemon {
        Daemon::start_with_paths(backend, "", extra)
    }

    /// As [`Daemon::start`], with `paths` added to its `[paths]` table (e.g. `jurisdictions`).
    pub fn start_with_paths(backend: &str, paths: &str, extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(
            root.join("config/classification.toml"),
            dir.path().join("classification.toml"),
        )
        .unwrap();
        let url = match backend {
            "sqlite" => "sqlite://incidentd.db".to_string(),
            "postgres" => fresh_pg_database(),
            other => panic!("--backend {other}: use sqlite or postgres"),
        };
        let sha = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            TOKEN.as_bytes(),
        ));
        let templates = root.join("templates").display().to_string();
        let playbooks = root.join("config/playbooks").display().to_string();
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1"
max_body_bytes = 8388608
[store]
url = "{url}"
sqlite_synchronous = "full"
max_connections = 8
[[auth.tokens]]
name = "bench"
sha256 = "{sha}"
roles = ["ingest", "responder", "admin"]
[paths]
templates = "{templates}"
playbooks = "{playbooks}"
{paths}
[organisation]
name = "Bench"
operator_type = "other"
jurisdictions = ["CN"]
contact = "x@example.com"
[log]
level = "warn,incidentd::cli=info"
{extra}
"#
        );
        std::fs::write(dir.path().join("incidentd.toml"), config).unwrap();
        let (child, addr) = process::spawn_serve(&dir.path().join("incidentd.toml"));
        let store_url = match backend {
            "sqlite" => format!("sqlite://{}/incidentd.db", dir.path().display()),
            _ => url,
        };
        Daemon {
            child,
            addr,
            store_url,
            config: dir.path().join("incidentd.toml"),
            _dir: dir,
        }
    }

    /// Start `incidentd serve` on the repository's shipped example configuration, as a user
    /// runs it: the whole `config/` folder (incidentd.toml, classification.toml, playbooks,
    /// jurisdiction packs, drills) is copied into a temporary folder, and only what must change
    /// is overridden through the daemon's own `INCIDENTD__<SECTION>__<KEY>` variables — the
    /// listen address (port 0), a fresh store on `backend`, `paths.templates` (the copy's
    /// `../templates` would not exist) — plus `env`, e.g. channels pointed at local sinks.
    pub fn start_shipped(backend: &str, env: &[(&str, String)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&root.join("config"), &dir.path().join("config"));
        let store_url = match backend {
            "sqlite" => format!("sqlite://{}/incidentd.db", dir.path().display()),
            "postgres" => fresh_pg_database(),
            other => panic!("--backend {other}: use sqlite or postgres"),
        };
        let mut vars: Vec<(String, String)> = vec![
            ("INCIDENTD__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("INCIDENTD__STORE__URL".into(), store_url.clone()),
            (
                "INCIDENTD__PATHS__TEMPLATES".into(),
                root.join("templates").display().to_string(),
            ),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let config = dir.path().join("config/incidentd.toml");
        let (child, addr) = process::spawn_serve_with_env(&config, &vars);
        Daemon {
            child,
            addr,
            store_url,
            config,
            _dir: dir,
        }
    }
}

/// Copy a folder and everything under it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn fresh_pg_database() -> String {
    let admin = std::env::var("INCIDENTD_BENCH_PG_URL")
        .expect("set INCIDENTD_BENCH_PG_URL for --backend postgres");
    let name = format!(
        "incidentd_bench_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    // On a thread of its own: callers may be inside a runtime already.
    let (a, n) = (admin.clone(), name.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&a).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {n}")))
                .execute(&mut c)
                .await
                .unwrap();
        });
    })
    .join()
    .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

/// A `/proc/<pid>/status` figure (kB for memory lines).
pub fn proc_status(pid: u32, key: &str) -> u64 {
    // 0 once the process is gone.
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime in clock ticks (100 per second).
pub fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Receipts at a sink: how many, and when the first and the latest arrived.
#[derive(Default)]
pub struct Receipts {
    n: AtomicU64,
    times: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Receipts {
    pub fn record(&self) {
        let now = Instant::now();
        let mut t = self.times.lock().unwrap();
        t.0.get_or_insert(now);
        t.1 = Some(now);
        self.n.fetch_add(1, Ordering::SeqCst);
    }
    pub fn count(&self) -> u64 {
        self.n.load(Ordering::SeqCst)
    }
    pub fn reset(&self) {
        *self.times.lock().unwrap() = (None, None);
        self.n.store(0, Ordering::SeqCst);
    }
    pub fn span(&self) -> Duration {
        let t = self.times.lock().unwrap();
        match *t {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        }
    }
    pub fn first(&self) -> Option<Instant> {
        self.times.lock().unwrap().0
    }
    pub fn last(&self) -> Option<Instant> {
        self.times.lock().unwrap().1
    }
}

/// An SMS gateway stand-in: answers every POST `{"id": …}`.
pub async fn http_sink(r: Arc<Receipts>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let r = r.clone();
        async move {
            r.record();
            axum::Json(json!({"id": r.count().to_string()}))
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/sms")
}

/// Departments and paging for `alert-page`: every department has one level-1 member with a
/// phone; every severity pages by SMS.
pub fn response_config() -> String {
    let mut c = String::from(
        "[paging.channels]\nS1 = [\"sms\"]\nS2 = [\"sms\"]\nS3 = [\"sms\"]\nS4 = [\"sms\"]\n\
         [scheduler]\ndigest = \"\"\n",
    );
    for (i, d) in [
        "security",
        "government_relations",
        "legal",
        "public_relations",
        "customer_service",
        "it_operations",
    ]
    .iter()
    .enumerate()
    {
        c.push_str(&format!(
            "[[departments]]\nid = \"{d}\"\nname = \"{d}\"\n[[departments.members]]\nname = \"{d} on-call\"\nphone = \"+86139000000{i:02}\"\n"
        ));
    }
    c
}

/// A minimal SMTP server that accepts everything and counts messages.
pub async fn smtp_sink(r: Arc<Receipts>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let r = r.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = s.into_split();
                let mut rd = tokio::io::BufReader::new(rd);
                let mut line = String::new();
                wr.write_all(b"220 sink ESMTP\r\n").await.ok()?;
                let mut in_data = false;
                loop {
                    line.clear();
                    if rd.read_line(&mut line).await.ok()? == 0 {
                        return Some(());
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            r.record();
                            wr.write_all(b"250 2.0.0 queued\r\n").await.ok()?;
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            wr.write_all(b"221 bye\r\n").await.ok()?;
                            return Some(());
                        }
                        _ => b"250 ok\r\n",
                    };
                    wr.write_all(answer).await.ok()?;
                }
            });
        }
    });
    format!("smtp://{addr}")
}

/// One message a person received, as a sink saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// `email`, `sms` or `voice`.
    pub channel: String,
    /// The address or phone number it went to.
    pub recipient: String,
    /// What the delivery's idempotency key starts with (`page` for pages), else `other`.
    pub kind: String,
    pub at: Instant,
}

/// Every message the channel sinks received, per recipient.
#[derive(Default)]
pub struct Inbox {
    msgs: Mutex<Vec<Received>>,
}

impl Inbox {
    pub fn record(&self, channel: &str, recipient: &str, kind: &str) {
        self.msgs.lock().unwrap().push(Received {
            channel: channel.to_string(),
            recipient: recipient.to_string(),
            kind: kind.to_string(),
            at: Instant::now(),
        });
    }
    pub fn len(&self) -> usize {
        self.msgs.lock().unwrap().len()
    }
    pub fn snapshot(&self) -> Vec<Received> {
        self.msgs.lock().unwrap().clone()
    }
    pub fn reset(&self) {
        self.msgs.lock().unwrap().clear();
    }
}

/// The kind of an idempotency key: its first `:`-separated part (`page:12:security:1:0:sms`).
fn key_kind(key: &str) -> String {
    match key.split_once(':') {
        Some((k, _)) if !k.is_empty() => k.to_string(),
        _ => "other".to_string(),
    }
}

/// An SMS and voice gateway (`generic_http`) that accepts at once: answers every POST 200
/// `{"id": …}` and records the body's `kind` (sms/voice), `to` and idempotency key.
pub async fn phone_sink(inbox: Arc<Inbox>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (inbox, n) = (inbox.clone(), n.clone());
        async move {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let key = v["idempotency_key"].as_str().unwrap_or("");
            inbox.record(
                v["kind"].as_str().unwrap_or("?"),
                v["to"].as_str().unwrap_or("?"),
                &key_kind(key),
            );
            axum::Json(json!({"id": n.fetch_add(1, Ordering::Relaxed).to_string()}))
        }
    });
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// A minimal SMTP server that accepts everything at once (220, 250, 354, 250, 221) and records
/// each message once per `RCPT TO`, with the kind read from incidentd's
/// `Message-ID: <incidentd.{idempotency key}@…>` (`:` written `=3A`).
pub async fn recipient_smtp_sink(inbox: Arc<Inbox>) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = s.into_split();
                let mut rd = tokio::io::BufReader::new(rd);
                let mut line = String::new();
                wr.write_all(b"220 sink ESMTP\r\n").await.ok()?;
                let mut rcpts: Vec<String> = Vec::new();
                let mut kind = String::from("other");
                let (mut in_data, mut in_headers) = (false, false);
                loop {
                    line.clear();
                    if rd.read_line(&mut line).await.ok()? == 0 {
                        return Some(());
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            for r in rcpts.drain(..) {
                                inbox.record("email", &r, &kind);
                            }
                            wr.write_all(b"250 2.0.0 queued\r\n").await.ok()?;
                        } else if in_headers {
                            if line == "\r\n" {
                                in_headers = false;
                            } else if line.to_ascii_lowercase().starts_with("message-id:") {
                                if let Some(i) = line.find("<incidentd.") {
                                    let key = &line[i + 11..];
                                    let end = key.find(['@', '>']).unwrap_or(key.len());
                                    kind = key_kind(&key[..end].replace("=3A", ":"));
                                }
                            }
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                    } else if upper.starts_with("MAIL") || upper.starts_with("RSET") {
                        rcpts.clear();
                        kind = "other".into();
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        let to = line[8..].trim();
                        let to = to.split_whitespace().next().unwrap_or("");
                        rcpts.push(to.trim_matches(['<', '>']).to_string());
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        (in_data, in_headers) = (true, true);
                        b"354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        wr.write_all(b"221 bye\r\n").await.ok()?;
                        return Some(());
                    } else {
                        b"250 ok\r\n"
                    };
                    wr.write_all(answer).await.ok()?;
                }
            });
        }
    });
    format!("smtp://{addr}")
}

/// The daemon's API with the benchmark token; every answer must be a success.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status}: {v}");
        v
    }
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }
}

/// A fresh, migrated store in this process (SQLite file in a temporary folder, or a new
/// PostgreSQL database), for benchmarks through the library API.
pub struct Db {
    pub store: incidentd::store::Store,
    pub url: String,
    _dir: tempfile::TempDir,
}

pub async fn open_db(backend: &str) -> Db {
    use incidentd::config::{SqliteSync, StoreConfig};
    use incidentd::domain::duration::HumanDuration;
    use incidentd::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        "sqlite" => format!("sqlite://{}/incidentd.db", dir.path().display()),
        "postgres" => fresh_pg_database(),
        other => panic!("--backend {other}: use sqlite or postgres"),
    };
    let cfg = StoreConfig {
        url: url.clone().into(),
        max_connections: 8,
        sqlite_synchronous: SqliteSync::Full,
        busy_timeout: HumanDuration(Duration::from_secs(5)),
    };
    let store = if backend == "postgres" {
        Store::Postgres(
            incidentd::store::postgres::PgStore::connect(&url, &cfg)
                .await
                .unwrap(),
        )
    } else {
        Store::Sqlite(
            incidentd::store::sqlite::SqliteStore::connect(&url, &cfg)
                .await
                .unwrap(),
        )
    };
    store.migrate().await.unwrap();
    Db {
        store,
        url,
        _dir: dir,
    }
}

/// Drop a database [`open_db`] made.
pub async fn drop_pg_db(url: &str) {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("INCIDENTD_BENCH_PG_URL") else {
        return;
    };
    let name = url.rsplit_once('/').unwrap().1;
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await
    .unwrap();
}

/// The `p`-quantile of sorted samples (nearest rank).
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Print one line of latencies in milliseconds — count, p50, p99, max, with `decimals`
/// places — and return the p99.
pub fn latency(name: &str, mut ms: Vec<f64>, decimals: usize) -> f64 {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p99 = pct(&ms, 0.99);
    println!(
        "{name:<22} n={:<6} p50 {:>7.decimals$} ms   p99 {:>7.decimals$} ms   max {:>7.decimals$} ms",
        ms.len(),
        pct(&ms, 0.50),
        p99,
        ms.last().copied().unwrap_or_default()
    );
    p99
}

/// The writer's serial path per committed alert, from the daemon's own
/// `incidentd_ingest_phase_seconds{phase}` and `incidentd_ingest_batch_alerts` metrics.
pub async fn writer_phases(addr: &str) -> String {
    let text = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let alerts = value("incidentd_ingest_batch_alerts_sum");
    let commits = value("incidentd_ingest_batch_alerts_count");
    if alerts == 0.0 {
        return "  writer: no commits recorded".into();
    }
    let mut parts = Vec::new();
    let mut all = 0.0;
    for phase in ["begin", "lookup", "plan", "write", "commit"] {
        let us = value(&format!(
            "incidentd_ingest_phase_seconds_sum{{phase=\"{phase}\"}}"
        )) / alerts
            * 1e6;
        all += us;
        parts.push(format!("{phase} {us:.2}"));
    }
    format!(
        "  writer, µs per alert: {} = {all:.2} ({:.0} alerts per commit)",
        parts.join(", "),
        alerts / commits
    )
}
