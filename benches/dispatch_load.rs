//! Dispatch benchmark: a release daemon (SQLite or PostgreSQL) sending deliveries to local
//! sinks on loopback — an HTTP server standing in for an SMS gateway (`generic_http`), and an
//! SMTP server for mail — with rate limits off.
//!
//!     cargo bench --bench dispatch_load                                  # every scenario
//!     cargo bench --bench dispatch_load -- --scenario sms --count 50000
//!     cargo bench --bench dispatch_load -- --scenario email --smtp sink    # incidentd sink
//!     INCIDENTD_BENCH_PG_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench dispatch_load -- --backend postgres
//!
//! * `sms`, `email`: `--count` deliveries are enqueued through the API in requests of 1,000
//!   (each committed before its answer), while the dispatcher already sends. Two rates: all
//!   deliveries over the time from the sink's first to its last receipt, and — dispatch alone,
//!   with a full queue — those still unsent when the enqueueing ended over the time from then
//!   to the last receipt. CPU per thousand is the daemon's CPU time (enqueue and dispatch
//!   together) over the whole run.
//! * `pickup`: with the queue idle, one delivery at a time; the time from the enqueue request's
//!   answer (the commit) to the sink receiving the message, and from the request's start.
//! * `alert-page`: a daemon with the shipped playbooks and six departments; one S1
//!   personal-information alert at a time (each opening its own incident), idle in between; the
//!   time from the alert's 202 (and from the request's start) to the first page reaching the
//!   SMS sink. Each alert applies the PI plan: 11 tasks, 6 departments paged, timers.
//!
//! The SMTP sink by default is a small SMTP server in this process (it speaks EHLO, MAIL, RCPT,
//! DATA, RSET, NOOP and QUIT, and counts messages); `--smtp sink` uses the tests' SMTP server
//! instead, `incidentd sink` (a process of its own that writes every message to disk before its
//! 250).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use support::{
    Api, Daemon, Receipts, TOKEN, cpu_ticks, http_sink, proc_status, response_config, smtp_sink,
};

struct Opts {
    scenario: String,
    backend: String,
    count: usize,
    concurrency: usize,
    batch: usize,
    smtp: String,
    samples: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        scenario: "all".into(),
        backend: "sqlite".into(),
        count: 20_000,
        concurrency: 64,
        batch: 512,
        smtp: "rust".into(),
        samples: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().expect("a value after the option");
        match a.as_str() {
            "--scenario" => o.scenario = v(),
            "--backend" => o.backend = v(),
            "--count" => o.count = v().parse().unwrap(),
            "--concurrency" => o.concurrency = v().parse().unwrap(),
            "--batch" => o.batch = v().parse().unwrap(),
            "--smtp" => o.smtp = v(),
            "--samples" => o.samples = v().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown argument {other}; see the header of benches/dispatch_load.rs"),
        }
    }
    o
}

/// `incidentd sink`, killed when dropped (also when the benchmark fails half-way: the sink does
/// not watch its parent).
struct SinkProcess(std::process::Child);

impl Drop for SinkProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tests' SMTP server, `incidentd sink` (this build's), keeping messages in `dir`.
fn process_smtp_sink(dir: &std::path::Path) -> (SinkProcess, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(support::BIN)
        .args([
            "sink",
            "--smtp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("incidentd sink for --smtp sink");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.strip_prefix("SMTP ").unwrap().to_string();
    // Its line per message goes nowhere, but must be read for it to go on.
    std::thread::spawn(move || lines.for_each(drop));
    (SinkProcess(child), format!("smtp://{addr}"))
}

/// How many messages `incidentd sink` has kept in `dir` (one `<n>.json` each).
fn kept_messages(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(".json") && name.starts_with(|c: char| c.is_ascii_digit())
            })
            .count()
    })
}

fn channels_config(o: &Opts, sms_url: &str, smtp_url: &str) -> String {
    format!(
        r#"
[dispatch]
batch_size = {batch}
poll_interval = "2s"
[channels.sms]
provider = "generic_http"
base_url = "{sms_url}"
concurrency = {c}
timeout = "10s"
[channels.email]
smtp_url = "{smtp_url}"
from = "Security <security@example.com>"
pool_max = {pool}
concurrency = {c}
"#,
        batch = o.batch,
        c = o.concurrency,
        pool = o.concurrency.min(32),
    )
}

/// Deliveries sent by hand reach only the response team's members, so the daemon has the
/// departments of [`response_config`], the last of which (`it_operations`) gets [`TEAM`] more
/// members; the deliveries go to them in turn, each message its own (`#n` in its words).
const TEAM: usize = 50;

fn team_config() -> String {
    let mut c = response_config();
    for k in 0..TEAM {
        c.push_str(&format!(
            "[[departments.members]]\nname = \"On-call {k}\"\nphone = \"+86138{k:08}\"\nemail = \"oncall{k}@example.com\"\n"
        ));
    }
    c
}

fn delivery(channel: &str, n: usize) -> Value {
    let k = n % TEAM;
    match channel {
        "sms" => json!({"channel": "sms", "recipient": format!("+86138{k:08}"),
                        "content": {"text": format!("【安全】S1 事件 #{n}：客户数据泄露，请立即确认并处置。")}}),
        _ => json!({"channel": "email", "recipient": format!("oncall{k}@example.com"),
                    "content": {"subject": format!("关于您的个人信息安全的通知 #{n}"),
                                "text": "尊敬的用户：我们发现一起安全事件，您的手机号可能受到影响。请修改密码。",
                                "html": "<p>尊敬的用户：我们发现一起<strong>安全事件</strong>。</p>"}}),
    }
}

async fn throughput(o: &Opts, api: &Api, pid: u32, channel: &str, sink: &Receipts, incident: i64) {
    sink.reset();
    let t0 = cpu_ticks(pid);
    let started = Instant::now();
    for chunk in 0..o.count.div_ceil(1000) {
        let n = (o.count - chunk * 1000).min(1000);
        let ds: Vec<Value> = (0..n)
            .map(|i| delivery(channel, chunk * 1000 + i))
            .collect();
        api.post(
            &format!("/api/v1/incidents/{incident}/deliveries"),
            json!({ "deliveries": ds }),
        )
        .await;
    }
    let enqueued = started.elapsed();
    let (at_enqueued, enqueued_at) = (sink.count(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(600);
    while (sink.count() as usize) < o.count {
        assert!(
            Instant::now() < deadline,
            "only {} of {} arrived",
            sink.count(),
            o.count
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the last outcomes be recorded before reading the CPU time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = (cpu_ticks(pid) - t0) as f64 / 100.0;
    let span = sink.span().as_secs_f64();
    let total = sink.last().unwrap() - started;
    let drain = sink.last().unwrap().saturating_duration_since(enqueued_at);
    println!(
        "{channel:<6} {:>8} deliveries  {:>9.0}/s at the sink, {:>7.0}/s draining the queue after the enqueue  (enqueue {:.2}s, all sent after {:.2}s)  CPU {:.3} s per 1000  peak RSS {} MB",
        o.count,
        o.count as f64 / span,
        (o.count as u64 - at_enqueued) as f64 / drain.as_secs_f64(),
        enqueued.as_secs_f64(),
        total.as_secs_f64(),
        cpu / (o.count as f64 / 1000.0),
        proc_status(pid, "VmHWM:") / 1024
    );
}

async fn alert_to_page(o: &Opts, base: &str, sink: &Receipts) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut from_202 = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut from_request = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..o.samples {
        // Idle between alerts: let the previous plan's pages drain.
        tokio::time::sleep(Duration::from_millis(150)).await;
        sink.reset();
        let start = Instant::now();
        let res = http
            .post(format!("{base}/api/v1/alerts"))
            .bearer_auth(TOKEN)
            .json(&json!({"source": "bench", "title": format!("用户数据库疑似被拖库 {i}"), "fingerprint": format!("bench-{i}")}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        let accepted = Instant::now();
        while sink.count() == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let first = sink.first().unwrap();
        from_202
            .record(first.saturating_duration_since(accepted).as_micros().max(1) as u64)
            .unwrap();
        from_request
            .record((first - start).as_micros().max(1) as u64)
            .unwrap();
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "alert-page {} S1 PI alerts, idle daemon: 202 → first page p50 {:.2} ms p99 {:.2} ms max {:.2} ms; request start → first page p50 {:.2} ms p99 {:.2} ms",
        o.samples,
        ms(&from_202, 0.5),
        ms(&from_202, 0.99),
        from_202.max() as f64 / 1000.0,
        ms(&from_request, 0.5),
        ms(&from_request, 0.99),
    );
}

async fn pickup(o: &Opts, api: &Api, sink: &Receipts, incident: i64) {
    sink.reset();
    let mut from_commit = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut from_request = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..o.samples {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let before = sink.count();
        let start = Instant::now();
        api.post(
            &format!("/api/v1/incidents/{incident}/deliveries"),
            json!({"deliveries": [delivery("sms", 10_000_000 + i)]}),
        )
        .await;
        let committed = Instant::now();
        while sink.count() == before {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let got = sink.last().unwrap();
        from_commit
            .record(got.saturating_duration_since(committed).as_micros().max(1) as u64)
            .unwrap();
        from_request
            .record((got - start).as_micros().max(1) as u64)
            .unwrap();
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "pickup {} samples, idle queue: commit→provider p50 {:.2} ms p99 {:.2} ms max {:.2} ms; request start→provider p50 {:.2} ms p99 {:.2} ms",
        o.samples,
        ms(&from_commit, 0.5),
        ms(&from_commit, 0.99),
        from_commit.max() as f64 / 1000.0,
        ms(&from_request, 0.5),
        ms(&from_request, 0.99),
    );
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sms = Arc::new(Receipts::default());
        let mail = Arc::new(Receipts::default());
        let sms_url = http_sink(sms.clone()).await;
        let mail_dir = tempfile::tempdir().unwrap();
        let mut process = None;
        let smtp_url = if o.smtp == "sink" {
            let (child, url) = process_smtp_sink(mail_dir.path());
            process = Some(child);
            url
        } else {
            smtp_sink(mail.clone()).await
        };
        let d = Daemon::start(
            &o.backend,
            &format!(
                "{}\n{}",
                channels_config(&o, &sms_url, &smtp_url),
                team_config()
            ),
        );
        println!(
            "dispatch load: {} backend, channel concurrency {}, dispatch batch {}, SMTP sink {}, release daemon {}",
            o.backend, o.concurrency, o.batch, o.smtp, support::daemon_binary()
        );
        let api = Api {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: format!("http://{}", d.addr),
        };
        let incident = api
            .post("/api/v1/incidents", json!({"title": "Dispatch benchmark", "category": "malware"}))
            .await["id"]
            .as_i64()
            .unwrap();
        let pid = d.child.id();
        let want = |s: &str| o.scenario == "all" || o.scenario == s;
        if want("pickup") {
            pickup(&o, &api, &sms, incident).await;
        }
        if want("sms") {
            throughput(&o, &api, pid, "sms", &sms, incident).await;
        }
        if want("email") {
            if let Some(_c) = &process {
                // Count the sink's files instead of in-process receipts.
                let dir = mail_dir.path().to_path_buf();
                let m = mail.clone();
                tokio::spawn(async move {
                    let mut seen = 0;
                    loop {
                        let n = kept_messages(&dir);
                        for _ in seen..n {
                            m.record();
                        }
                        seen = n;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
            }
            throughput(&o, &api, pid, "email", &mail, incident).await;
        }
        if want("alert-page") {
            drop(d);
            let pages = Arc::new(Receipts::default());
            let url = http_sink(pages.clone()).await;
            let d = Daemon::start(
                &o.backend,
                &format!(
                    "{}\n{}",
                    channels_config(&o, &url, &smtp_url),
                    response_config()
                ),
            );
            alert_to_page(&o, &format!("http://{}", d.addr), &pages).await;
        }
        drop(process);
    });
}
