//! A real Prometheus Alertmanager (`prometheus-alertmanager`, Debian's 0.25) in its own process,
//! for stories that go through it and for the intake benchmark's side-by-side run.
//!
//! Each instance gets a free loopback port, a temporary `--storage.path`, no cluster
//! (`--cluster.listen-address=` empty) and its own `alertmanager.yml`; its log goes to a file in
//! its temporary folder (see [`Alertmanager::log`]). The process is killed when the value is
//! dropped.
//!
//! Without the binary, [`available`] prints `SKIPPED: …` and says no — unless
//! `INCIDENTD_REQUIRE_ALERTMANAGER=1` (`.ci/run` sets it), where a missing binary fails the test
//! with how to install it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Set to `1` to make a missing Alertmanager a failure instead of a skip.
pub const REQUIRE_ENV: &str = "INCIDENTD_REQUIRE_ALERTMANAGER";

/// The Alertmanager binary on `PATH`: Debian names it `prometheus-alertmanager`, upstream's
/// release tarball `alertmanager`.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["prometheus-alertmanager", "alertmanager"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The binary, or `None` after printing why the caller skips. Panics (the test fails) when it
/// is missing and [`REQUIRE_ENV`] is `1`.
pub fn available(what: &str) -> Option<PathBuf> {
    match binary() {
        Some(p) => Some(p),
        None if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") => panic!(
            "{what} needs a real Prometheus Alertmanager, and {REQUIRE_ENV}=1 says it must run: \
             install it with `apt-get install prometheus-alertmanager` (Debian/Ubuntu; the \
             binary is prometheus-alertmanager on PATH) or put upstream's `alertmanager` on PATH"
        ),
        None => {
            eprintln!(
                "SKIPPED: {what}: no prometheus-alertmanager on PATH (apt-get install prometheus-alertmanager; .ci/run does)"
            );
            None
        }
    }
}

/// One webhook receiver with one route: `group_by` labels, waits and intervals as Alertmanager
/// writes them (`1s`, `5m`), and an optional bearer token sent with every notification.
pub struct Route<'a> {
    pub webhook_url: &'a str,
    pub group_by: &'a [&'a str],
    pub group_wait: &'a str,
    pub group_interval: &'a str,
    pub repeat_interval: &'a str,
    pub bearer: Option<&'a str>,
}

impl Route<'_> {
    /// The `alertmanager.yml` text.
    pub fn yaml(&self) -> String {
        let group_by = self
            .group_by
            .iter()
            .map(|l| format!("'{l}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let auth = match self.bearer {
            Some(t) => format!(
                "        http_config:\n          authorization:\n            type: Bearer\n            credentials: '{t}'\n"
            ),
            None => String::new(),
        };
        format!(
            "route:\n  receiver: hook\n  group_by: [{group_by}]\n  group_wait: {}\n  group_interval: {}\n  repeat_interval: {}\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{}'\n        send_resolved: true\n        max_alerts: 0\n{auth}",
            self.group_wait, self.group_interval, self.repeat_interval, self.webhook_url
        )
    }
}

pub struct Alertmanager {
    pub child: Child,
    /// `127.0.0.1:<port>` of its API.
    pub addr: String,
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Alertmanager {
    /// Start `bin` with `config` (an `alertmanager.yml` text) and wait until `/-/ready` answers
    /// (up to 30 s).
    pub async fn start(bin: &Path, config: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        let storage = dir.path().join("data");
        std::fs::create_dir(&storage).unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut am = Alertmanager {
            child,
            addr,
            dir,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = am.http.get(am.url("/-/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return am;
            }
            if let Ok(Some(status)) = am.child.try_wait() {
                panic!(
                    "Alertmanager exited ({status}) before it was ready:\n{}",
                    am.log()
                );
            }
            assert!(
                Instant::now() < until,
                "Alertmanager was not ready within 30 s:\n{}",
                am.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged (warnings and errors: a failed webhook shows here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// `POST /api/v2/alerts` with `alerts`, a JSON array of
    /// `{labels, annotations, startsAt, endsAt?, generatorURL}`; asserts 200.
    pub async fn post_alerts(&self, alerts: &Value) {
        let res = self
            .http
            .post(self.url("/api/v2/alerts"))
            .json(alerts)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "Alertmanager refused the alerts: {status}: {body}"
        );
    }

    /// The alerts it holds (`GET /api/v2/alerts`).
    pub async fn alerts(&self) -> Value {
        self.http
            .get(self.url("/api/v2/alerts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Kill it and wait for it to exit.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An Alertmanager whose only receiver is incidentd's webhook at `incidentd` (`http://host:port`),
/// with the bearer `token`, grouping by `alertname` and `service` as the README's example does,
/// `group_wait` and `group_interval` 1 s (so a story does not wait), and a long
/// `repeat_interval`. `None` when the binary is missing (see [`available`]).
pub async fn for_incidentd(what: &str, incidentd: &str, token: &str) -> Option<Alertmanager> {
    let bin = available(what)?;
    let url = format!("{incidentd}/api/v1/alerts/alertmanager");
    let config = Route {
        webhook_url: &url,
        group_by: &["alertname", "service"],
        group_wait: "1s",
        group_interval: "1s",
        repeat_interval: "24h",
        bearer: Some(token),
    }
    .yaml();
    Some(Alertmanager::start(&bin, &config).await)
}
