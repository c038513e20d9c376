//! Test harness: start the real daemon in-process on port 0 with a fresh database (SQLite in a
//! temporary folder, or a fresh PostgreSQL database), talk to it over HTTP, restart it, stop it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use incidentd::server::Server;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Tokens the test config accepts.
pub const INGEST: &str = "test-ingest-token";
pub const RESPONDER: &str = "test-responder-token";
pub const VIEWER: &str = "test-viewer-token";
pub const ADMIN: &str = "test-admin-token";
pub const SITE: &str = "test-site-token";

pub mod alertmanager;
pub mod config;
pub mod process;
pub mod sink;
pub mod smtp;

pub use config::{
    Member, approver, department, departments, page_every_severity_by, paths, phone,
    phone_gateways, repo, shipped, token_sha,
};

/// The six departments of the shipped playbooks, in the order the stories number their
/// members' phones.
pub const DEPTS: [&str; 6] = [
    "security",
    "government_relations",
    "legal",
    "public_relations",
    "customer_service",
    "it_operations",
];

/// The PostgreSQL server tests use: `INCIDENTD_TEST_PG_URL`, an admin URL such as
/// `postgres://postgres@127.0.0.1:5432/postgres` (`.ci/run` sets it).
pub const PG_ENV: &str = "INCIDENTD_TEST_PG_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub backend: Backend,
    pub addr: std::net::SocketAddr,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub store_url: String,
    reloader: Option<incidentd::server::Reloader>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    pg_db: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The repository's shipped classification rules: tests exercise what users get.
fn shipped_rules() -> PathBuf {
    shipped("config/classification.toml")
}

pub fn config_text(store_url: &str, extra: &str) -> String {
    // The shipped templates, unless the test brings its own.
    let templates = if extra.contains("[paths]") {
        String::new()
    } else {
        format!(
            "[paths]\ntemplates = \"{}\"\n",
            shipped("templates").display()
        )
    };
    // A request limit suits the stories, unless the test sets `[ingest]` itself.
    let ingest = if extra.contains("[ingest]") {
        ""
    } else {
        "[ingest]\nmax_alerts_per_request = 200\n"
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8600"
max_body_bytes = 65536
shutdown_timeout = "5s"

[store]
url = "{store_url}"
busy_timeout = "1s"
max_connections = 5

[[auth.tokens]]
name = "ingest"
sha256 = "{}"
roles = ["ingest"]

[[auth.tokens]]
name = "responder"
sha256 = "{}"
roles = ["responder"]

[[auth.tokens]]
name = "viewer"
sha256 = "{}"
roles = ["viewer"]

[[auth.tokens]]
name = "admin"
sha256 = "{}"
roles = ["admin"]

[[auth.tokens]]
name = "site"
sha256 = "{}"
roles = ["site"]

[organisation]
name = "Test Co."
operator_type = "other"
jurisdictions = ["CN"]
contact = "privacy@test.example"
default_region = "CN"

{ingest}
{templates}
{extra}
"#,
        token_sha(INGEST),
        token_sha(RESPONDER),
        token_sha(VIEWER),
        token_sha(ADMIN),
        token_sha(SITE)
    )
}

pub async fn create_pg_database() -> Option<(String, String, String)> {
    let admin = std::env::var(PG_ENV).ok()?;
    let name = format!(
        "incidentd_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("{PG_ENV}={admin} is set but unreachable: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    Some((format!("{base}/{name}"), admin, name))
}

pub async fn drop_pg_database(admin: &str, name: &str) {
    if let Ok(mut c) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await;
    }
}

/// A fresh store URL for `backend` in `dir`: (url, PostgreSQL (admin url, database) to drop).
/// `None` when PostgreSQL is not configured.
pub async fn fresh_store(
    backend: Backend,
    dir: &Path,
) -> Option<(String, Option<(String, String)>)> {
    match backend {
        Backend::Sqlite => Some((format!("sqlite://{}/incidentd.db", dir.display()), None)),
        Backend::Postgres => match create_pg_database().await {
            Some((url, admin, name)) => Some((url, Some((admin, name)))),
            None => {
                eprintln!("SKIPPED: set {PG_ENV} to run the PostgreSQL suite; .ci/run does");
                None
            }
        },
    }
}

/// The daemon as a separate process (for tests that kill it).
pub struct Daemon {
    pub child: std::process::Child,
    pub addr: String,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        let (child, addr) = process::spawn_serve(config);
        Daemon { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no shutdown, no drain, no final checkpoint.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Send a signal as an operator would: `signal("-HUP")`, `signal("-TERM")`.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Its exit status, once it has exited (after a signal), waiting up to `secs`.
    pub fn exit_status(&mut self, secs: u64) -> std::process::ExitStatus {
        exited_within(&mut self.child, Duration::from_secs(secs))
            .unwrap_or_else(|| panic!("the daemon did not exit within {secs}s"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    /// Start a daemon on a fresh database. `None` (with a note) when the backend is PostgreSQL
    /// and no server is configured.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, "").await
    }

    /// As [`spawn`], with extra config sections appended.
    pub async fn spawn_with(backend: Backend, extra: &str) -> Option<TestApp> {
        Self::spawn_config(backend, |store_url, dir| {
            std::fs::copy(shipped_rules(), dir.join("classification.toml")).unwrap();
            config_text(store_url, extra)
        })
        .await
    }

    /// The shipped `config/incidentd.toml` as a user runs it — its tokens, departments,
    /// playbooks, packs, regulators and templates — with only what a test must change: a fresh
    /// store, any free port, the shipped files by absolute path, and whatever `adjust` changes
    /// (channels at local sinks, shorter dispatch intervals).
    pub async fn spawn_shipped(
        backend: Backend,
        adjust: impl FnOnce(&mut toml::Table),
    ) -> Option<TestApp> {
        let repo = repo();
        let text = std::fs::read_to_string(repo.join("config/incidentd.toml")).unwrap();
        let mut t: toml::Table = toml::from_str(&text).unwrap();
        Self::spawn_config(backend, |store_url, _| {
            let section = |t: &mut toml::Table, name: &str| -> toml::Table {
                t.get(name).and_then(|v| v.as_table()).cloned().unwrap()
            };
            let mut server = section(&mut t, "server");
            server.insert("listen".into(), "127.0.0.1:0".into());
            t.insert("server".into(), server.into());
            let mut store = section(&mut t, "store");
            store.insert("url".into(), store_url.into());
            t.insert("store".into(), store.into());
            let mut paths = section(&mut t, "paths");
            let keys: Vec<String> = paths.keys().cloned().collect();
            for k in keys {
                let rel = paths[&k].as_str().unwrap().to_string();
                let abs = repo.join("config").join(rel).display().to_string();
                paths.insert(k, abs.into());
            }
            t.insert("paths".into(), paths.into());
            adjust(&mut t);
            toml::to_string(&t).unwrap()
        })
        .await
    }

    /// Start a daemon on a fresh database with the config `make` writes for its store URL
    /// (in the test's own folder, which it may fill).
    async fn spawn_config(
        backend: Backend,
        make: impl FnOnce(&str, &Path) -> String,
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().unwrap();
        let (store_url, pg_db) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}/incidentd.db", dir.path().display()),
                None,
            ),
            Backend::Postgres => match create_pg_database().await {
                Some((url, admin, name)) => (url, Some((admin, name))),
                None => {
                    eprintln!(
                        "SKIPPED: set {PG_ENV} (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run the PostgreSQL suite; .ci/run does"
                    );
                    return None;
                }
            },
        };
        let config_path = dir.path().join("incidentd.toml");
        std::fs::write(&config_path, make(&store_url, dir.path())).unwrap();
        let mut app = TestApp {
            backend,
            addr: "127.0.0.1:0".parse().unwrap(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            dir,
            config_path,
            store_url,
            reloader: None,
            shutdown: None,
            handle: None,
            pg_db,
        };
        app.start().await;
        Some(app)
    }

    async fn start(&mut self) {
        let _ = incidentd::telemetry::prometheus();
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_test_writer()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .try_init();
        }
        let settings = incidentd::config::load(&self.config_path).expect("test config is valid");
        let server = Server::build(settings).await.expect("server starts");
        self.addr = server.local_addr();
        self.reloader = Some(server.reloader());
        let (tx, rx) = oneshot::channel::<()>();
        self.shutdown = Some(tx);
        self.handle = Some(tokio::spawn(server.run_until(async {
            let _ = rx.await;
        })));
    }

    /// Graceful stop (as on SIGTERM): waits for the drain to finish.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    /// Start again after [`shutdown`](Self::shutdown).
    pub async fn start_again(&mut self) {
        self.start().await;
    }

    /// Stop and start again on the same database and config.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.start().await;
    }

    /// Stop and remove the database.
    pub async fn stop(mut self) {
        self.shutdown().await;
        if let Some((admin, name)) = self.pg_db.take() {
            drop_pg_database(&admin, &name).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `/metrics` as text. The recorder is the process's, shared by every daemon a test in
    /// this binary runs: counters add up across them, and a gauge set from this daemon's store
    /// may be set by another's scrape before it is read — check gauges with [`wait_for`].
    pub async fn metrics(&self) -> String {
        let res = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(VIEWER), None).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(RESPONDER), Some(body))
            .await
    }

    /// POST generic alerts; asserts 202.
    pub async fn alerts(&self, body: &Value) -> Value {
        let (s, v) = self.post("/api/v1/alerts", INGEST, body).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        v
    }

    /// POST an Alertmanager payload; asserts 202.
    pub async fn alertmanager(&self, body: &str) -> Value {
        let res = self
            .raw(
                Method::POST,
                "/api/v1/alerts/alertmanager",
                Some(INGEST),
                "application/json",
                body.to_string(),
            )
            .await;
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        v
    }

    /// Wait (up to `secs`) until `check` holds for the incident's delivery listing.
    pub async fn wait_deliveries(
        &self,
        incident: i64,
        secs: u64,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (s, v) = self
                .get(&format!(
                    "/api/v1/incidents/{incident}/deliveries?limit=500"
                ))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            if check(&v) {
                return v;
            }
            assert!(
                std::time::Instant::now() < until,
                "deliveries did not reach the expected state in {secs}s: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn incident(&self, id: i64) -> Value {
        let (s, v) = self.get(&format!("/api/v1/incidents/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    pub async fn declare(&self, body: &Value) -> Value {
        let (s, v) = self.post("/api/v1/incidents", RESPONDER, body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    pub async fn transition(&self, id: i64, to: &str, note: Option<&str>) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/incidents/{id}/transitions"),
            RESPONDER,
            &serde_json::json!({ "to": to, "note": note }),
        )
        .await
    }

    /// The incident's audit events of one kind (its first 500 events).
    pub async fn events(&self, id: i64, kind: &str) -> Vec<Value> {
        let (_, tl) = self
            .get(&format!("/api/v1/incidents/{id}/timeline?limit=500"))
            .await;
        tl["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect()
    }

    /// Run SQL directly on the database, behind the daemon's back.
    pub async fn sql(&self, statements: &[&str]) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.store_url)
                    .await
                    .unwrap();
                for s in statements {
                    sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                        .execute(&mut c)
                        .await
                        .unwrap();
                }
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.store_url).await.unwrap();
                for s in statements {
                    sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                        .execute(&mut c)
                        .await
                        .unwrap();
                }
            }
        }
    }

    /// Verify the audit chain with the daemon's own code (as `incidentd audit verify` does).
    pub async fn verify(&self) -> incidentd::store::VerifyReport {
        let settings = incidentd::config::load(&self.config_path).unwrap();
        let store = incidentd::store::Store::connect(&settings).await.unwrap();
        let r = store.verify_audit(|_| {}).await.unwrap();
        store.close().await;
        r
    }

    /// What SIGHUP does: re-read the config file.
    pub async fn reload(&self) -> Result<(), incidentd::config::ConfigError> {
        self.reloader.as_ref().expect("started").reload().await
    }

    /// Fire every timer due at `at` with the daemon's own timer handler, as its scheduler would
    /// at that moment: moves time on without waiting. Returns how many fired.
    pub async fn fire_due(&self, at: chrono::DateTime<chrono::Utc>) -> usize {
        self.reloader
            .as_ref()
            .expect("started")
            .fire_due(at)
            .await
            .unwrap()
    }

    /// Run the `incidentd` binary against this daemon as `token` (off the runtime the daemon
    /// serves on): its output.
    pub async fn cli_output(&self, token: &str, args: &[&str]) -> std::process::Output {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_incidentd"));
        c.args(args)
            .env("INCIDENTD_URL", self.url(""))
            .env("INCIDENTD_TOKEN", token);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }

    /// Run the `incidentd` binary against this daemon as `token`:
    /// (exit code, standard output, standard error).
    pub async fn cli(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        let o = self.cli_output(token, args).await;
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// The config file's path, for the CLI binary.
    pub fn config_arg(&self) -> String {
        self.config_path.display().to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_db.take() {
            // A failed test still removes its database (a fresh runtime: we may be unwinding).
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_pg_database(&admin, &name));
                }
            })
            .join();
        }
    }
}

/// Read rows directly from the database behind a store URL, every column as text (cast
/// non-text columns in the query); for checking what is stored, behind the daemon's back.
pub async fn query_text(backend: Backend, store_url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    macro_rules! rows {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(store_url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut c)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.get::<Option<String>, _>(i))
                        .collect()
                })
                .collect()
        }};
    }
    match backend {
        Backend::Sqlite => rows!(sqlx::SqliteConnection),
        Backend::Postgres => rows!(sqlx::PgConnection),
    }
}

/// How often the waits below look again.
const POLL: Duration = Duration::from_millis(50);

/// Wait up to `secs` until `check` holds, looking again every 50 ms; `what` names the
/// condition in the failure. The way a story waits for the daemon's background work (a send, a
/// timer, a restart): never a fixed sleep.
pub async fn wait_for(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    wait_until(what, secs, async || check().await.then_some(())).await
}

/// As [`wait_for`], for a condition that yields what the story needs next: waits until `check`
/// gives `Some` and returns it.
pub async fn wait_until<T>(what: &str, secs: u64, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "{what} did not happen within {secs}s"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// As [`wait_for`], for a test without a runtime (blocking the thread between looks).
pub fn wait_for_blocking(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            std::time::Instant::now() < until,
            "{what} did not happen within {secs}s"
        );
        std::thread::sleep(POLL);
    }
}

/// The child's exit status once it has exited, or `None` if it is still running after `limit`.
pub fn exited_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Generate `#[tokio::test]`s running each story against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// Tests that start their own daemon (their config names local sinks): each takes the backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Sqlite).await; }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::common::Backend::Postgres).await; }
            )*
        }
    };
}

/// Facts for stories that are not about language: each free-text fact given as a plain string
/// becomes the same words in both of the organisation's languages (zh-CN, the default, and
/// en), so that every notice and page has its language's text. Stories about language give
/// each language its own words instead.
pub fn both_languages(mut facts: Value) -> Value {
    if let Some(m) = facts.as_object_mut() {
        for (k, v) in m.iter_mut() {
            if incidentd::domain::facts::TEXT_FACTS.contains(&k.as_str())
                && let Value::String(s) = v
            {
                *v = serde_json::json!({"zh-CN": s.clone(), "en": s.clone()});
            }
        }
    }
    facts
}

/// Whether the browser a test drives (`chromium`, `chromedriver`) is installed. Missing, the
/// test is skipped, saying so and how to install it — unless `INCIDENTD_REQUIRE_BROWSER` is set
/// (as `.ci/run` does), when a missing browser fails the test.
pub fn have_browser(program: &str, install: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()));
    if !found {
        assert!(
            std::env::var_os("INCIDENTD_REQUIRE_BROWSER").is_none(),
            "this test needs {program}: {install}"
        );
        eprintln!("SKIPPED: this test needs {program} ({install}); .ci/run installs it");
    }
    found
}

/// A time of the API (RFC 3339) as microseconds since the epoch, as the store keeps it.
pub fn micros(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
        .timestamp_micros()
}
