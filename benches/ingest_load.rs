//! Ingest load benchmark: a release build of the daemon on SQLite (or PostgreSQL), loaded from
//! concurrent HTTP/1.1 keep-alive clients on loopback.
//!
//!     cargo bench --bench ingest_load                       # all scenarios, 10 s each
//!     cargo bench --bench ingest_load -- --duration 30 --connections 64 --scenario single-own
//!     INCIDENTD_BENCH_PG_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench ingest_load -- --backend postgres
//!
//! Each scenario starts a fresh daemon on a fresh database, so peak RSS is per scenario.
//! Every alert is distinct (no duplicates); "own" scenarios give each alert its own incident,
//! "join" scenarios spread alerts over 10 open incidents. After the last scenario the daemon
//! holds every alert it took (100,000s) open, and its idle CPU is measured for 10 s.
//! Under each scenario's line, the writer's serial time per alert by phase (lookup, plan,
//! write, commit), read from the daemon's `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[path = "support/mod.rs"]
mod support;

use support::{Daemon, cpu_ticks, proc_status, writer_phases};

use support::{BIN, TOKEN};

struct Opts {
    duration: Duration,
    connections: usize,
    scenario: String,
    backend: String,
    idle: Duration,
}

fn opts() -> Opts {
    let mut o = Opts {
        duration: Duration::from_secs(10),
        connections: 64,
        scenario: "all".into(),
        backend: "sqlite".into(),
        idle: Duration::from_secs(10),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--duration" => o.duration = Duration::from_secs(args.next().unwrap().parse().unwrap()),
            "--connections" => o.connections = args.next().unwrap().parse().unwrap(),
            "--scenario" => o.scenario = args.next().unwrap(),
            "--backend" => o.backend = args.next().unwrap(),
            "--idle" => o.idle = Duration::from_secs(args.next().unwrap().parse().unwrap()),
            "--bench" => {}
            other => panic!("unknown argument {other}; see the header of benches/ingest_load.rs"),
        }
    }
    o
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    batch: usize,
    join: bool,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "single-own",
        batch: 1,
        join: false,
    },
    Scenario {
        name: "single-join",
        batch: 1,
        join: true,
    },
    Scenario {
        name: "batch100-own",
        batch: 100,
        join: false,
    },
    Scenario {
        name: "batch100-join",
        batch: 100,
        join: true,
    },
];

/// One request body: `batch` distinct alerts. "join" alerts share 10 fingerprints (so they
/// join 10 incidents) and differ by start time; "own" alerts each have their own fingerprint,
/// 16 hex digits of a hash as Alertmanager's are, so that their group keys land all over the
/// index as real ones do (sequential names made the writer's lookups and commits cheaper).
/// Start times are "now" (the benchmark's start plus a distinct microsecond per alert), as
/// they are for alerts that have just begun firing.
fn body(s: Scenario, seq: u64, conn: usize) -> Bytes {
    static START: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    let start = *START.get_or_init(chrono::Utc::now);
    let mut out = String::with_capacity(s.batch * 200 + 2);
    out.push('[');
    for i in 0..s.batch {
        let n = seq * s.batch as u64 + i as u64;
        let fp = if s.join {
            format!("join-{}", n % 10)
        } else {
            // splitmix64 of (connection, alert number): distinct, and spread like a hash.
            let mut x = ((conn as u64) << 40 | n).wrapping_add(0x9e37_79b9_7f4a_7c15);
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            format!("{:016x}", x ^ (x >> 31))
        };
        if i > 0 {
            out.push(',');
        }
        let occurred = start + chrono::Duration::microseconds((n * 1024 + conn as u64) as i64);
        out.push_str(&format!(
            r#"{{"source":"bench","title":"用户数据外泄 {conn}-{n}","fingerprint":"{fp}","occurred_at":"{}","labels":{{"conn":"{conn}","n":"{n}"}}}}"#,
            occurred.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ));
    }
    out.push(']');
    Bytes::from(out)
}

struct Result_ {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
}

async fn load(addr: &str, s: Scenario, o: &Opts) -> Result_ {
    let deadline = Instant::now() + o.duration;
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..o.connections {
        let addr = addr.to_string();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut send, c) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(c);
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let req = hyper::Request::post("/api/v1/alerts")
                    .header("host", &addr)
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .body(Full::new(body(s, seq, conn)))
                    .unwrap();
                seq += 1;
                let t = Instant::now();
                match send.send_request(req).await {
                    Ok(res) => {
                        let ok = res.status() == 202;
                        let _ = res.into_body().collect().await;
                        if ok {
                            hist.record(t.elapsed().as_micros().max(1) as u64).unwrap();
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            hist
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        hist.add(t.await.unwrap()).unwrap();
    }
    Result_ {
        requests: hist.len(),
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        hist,
    }
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "ingest load: {} backend, {} connections, {} s per scenario, release daemon {}",
        o.backend,
        o.connections,
        o.duration.as_secs(),
        BIN
    );
    println!(
        "{:<14} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "scenario",
        "req/s",
        "alerts/s",
        "p50 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        "errors",
        "peak RSS"
    );
    let mut last: Option<Daemon> = None;
    let mut total_alerts = 0u64;
    for s in SCENARIOS
        .iter()
        .filter(|s| o.scenario == "all" || o.scenario == s.name)
    {
        drop(last.take());
        let d = Daemon::start(&o.backend, "");
        let r = rt.block_on(load(&d.addr, *s, &o));
        let secs = r.elapsed.as_secs_f64();
        let ms = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
        let alerts = r.requests * s.batch as u64;
        total_alerts = alerts;
        println!(
            "{:<14} {:>9.0} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>7} {:>6} MB",
            s.name,
            r.requests as f64 / secs,
            alerts as f64 / secs,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            r.hist.max() as f64 / 1000.0,
            r.errors,
            proc_status(d.child.id(), "VmHWM:") / 1024
        );
        println!("{}", rt.block_on(writer_phases(&d.addr)));
        last = Some(d);
    }
    if let Some(d) = &last {
        let pid = d.child.id();
        std::thread::sleep(Duration::from_secs(1));
        let t0 = cpu_ticks(pid);
        std::thread::sleep(o.idle);
        let ticks = cpu_ticks(pid) - t0;
        let hz = 100.0;
        println!(
            "idle for {} s holding {total_alerts} open alerts: {:.2}% of one core ({ticks} ticks), RSS {} MB",
            o.idle.as_secs(),
            ticks as f64 / hz / o.idle.as_secs_f64() * 100.0,
            proc_status(pid, "VmRSS:") / 1024
        );
    }
}
