//! Timer benchmark: how late persisted timers fire. In this process, through the library API,
//! on a fresh SQLite file (`synchronous = full`, as the daemon ships) or PostgreSQL database.
//!
//!     cargo bench --bench timers                                         # both scenarios
//!     cargo bench --bench timers -- --scenario burst --timers 20000 --batch 512 --work none
//!     INCIDENTD_BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench timers -- --backend postgres
//!
//! * `spread`: `--timers` timers (10,000) due evenly over `--window-ms` (2,000 ms).
//! * `burst`: as many, all due at the same instant.
//!
//! The timers are scheduled (committed) before they fall due, with the scheduler already
//! running and sleeping on the first of them. The handler does what an escalation does at the
//! least: it appends one audit event per timer, in the firing transaction. Lateness is the
//! time from a timer's due time to the handler being called for it (its batch commits right
//! after); p50/p99/max over all timers. The run also checks that every timer fired exactly
//! once (one audit event each). `--work none` leaves the audit event out, measuring the
//! scheduler's own cost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use incidentd::channels::BoxFuture;
use incidentd::domain::time::to_micros;
use incidentd::scheduler::{Scheduler, SchedulerConfig, TimerHandler};
use incidentd::store::{DueTimer, NewEvent, NewTimer, StoreError, WriteTx};
use sqlx::Connection;

struct Opts {
    scenario: String,
    backend: String,
    timers: usize,
    window_ms: i64,
    batch: usize,
    work: String,
}

fn opts() -> Opts {
    let mut o = Opts {
        scenario: "all".into(),
        backend: "sqlite".into(),
        timers: 10_000,
        window_ms: 2_000,
        batch: 256,
        work: "audit".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().expect("a value after the option");
        match a.as_str() {
            "--scenario" => o.scenario = v(),
            "--backend" => o.backend = v(),
            "--timers" => o.timers = v().parse().expect("--timers N"),
            "--window-ms" => o.window_ms = v().parse().expect("--window-ms N"),
            "--batch" => o.batch = v().parse().expect("--batch N"),
            "--work" => o.work = v(),
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// Records, per timer, (due, handler called), and appends one audit event per timer.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(i64, i64)>>,
    /// Append the audit events (`--work audit`), or do nothing but record (`--work none`).
    audit: bool,
}

impl TimerHandler for Recorder {
    fn fire<'a>(
        &'a self,
        tx: &'a mut WriteTx,
        timers: &'a [DueTimer],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let called = to_micros(Utc::now());
            let events: Vec<NewEvent> = timers
                .iter()
                .map(|t| {
                    NewEvent::new(
                        now,
                        "bench",
                        "timer.fired",
                        None,
                        &serde_json::json!({"key": t.key}),
                    )
                })
                .collect();
            if self.audit {
                tx.append(&events).await?;
            }
            self.seen
                .lock()
                .unwrap()
                .extend(timers.iter().map(|t| (t.due_at, called)));
            Ok(())
        })
    }
}

async fn scenario(o: &Opts, name: &str) {
    let db = support::open_db(&o.backend).await;
    let rec = Arc::new(Recorder {
        audit: match o.work.as_str() {
            "audit" => true,
            "none" => false,
            other => panic!("--work {other}: use audit or none"),
        },
        ..Recorder::default()
    });
    let cfg = SchedulerConfig {
        batch: o.batch,
        ..SchedulerConfig::default()
    };
    let sched = Scheduler::start(db.store.clone(), rec.clone(), cfg)
        .await
        .unwrap();
    // Far enough ahead that scheduling them all ends before the first is due.
    let start = Utc::now() + chrono::Duration::milliseconds(3000);
    let step = if name == "burst" {
        0
    } else {
        o.window_ms * 1000 / o.timers as i64
    };
    let timers: Vec<NewTimer> = (0..o.timers)
        .map(|i| NewTimer {
            key: format!("bench:{i}"),
            kind: "bench".into(),
            incident_id: None,
            due_at: to_micros(start) + step * i as i64,
            payload: serde_json::json!({"level": 1}),
        })
        .collect();
    let t0 = Instant::now();
    for chunk in timers.chunks(1000) {
        let mut tx = db.store.begin_write().await.unwrap();
        tx.schedule_timers(chunk, to_micros(Utc::now()))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let scheduled_in = t0.elapsed();
    assert!(
        Utc::now() < start,
        "scheduling took too long: {scheduled_in:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while db.store.timers_pending().await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "timers still pending after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sched.shutdown(Duration::from_secs(10)).await;
    let seen = rec.seen.lock().unwrap().clone();
    let mut late: Vec<i64> = seen.iter().map(|(due, at)| at - due).collect();
    late.sort_unstable();
    let late_ms: Vec<f64> = late.iter().map(|l| *l as f64 / 1000.0).collect();
    assert_eq!(late.len(), o.timers, "handler calls per timer");
    let events: i64 = {
        // With `--work none` nothing but the fired mark is written.
        let sql = if rec.audit {
            "SELECT COUNT(*) FROM events WHERE kind = 'timer.fired'"
        } else {
            "SELECT COUNT(*) FROM timers WHERE status = 'fired'"
        };
        if o.backend == "postgres" {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    };
    let within_1s = late.iter().filter(|l| **l <= 1_000_000).count();
    let last_due = timers.last().map(|t| t.due_at).unwrap_or_default();
    println!(
        "{:<8} {:<6} {:<5} timers {:>6}  batch {:>4}  lateness ms: p50 {:>7.1}  p99 {:>7.1}  max {:>7.1}  \
         within 1 s {:>6}/{}  events {}  scheduled in {:.0} ms  last fired {:.0} ms after the last due",
        o.backend,
        name,
        o.work,
        o.timers,
        o.batch,
        support::pct(&late_ms, 0.50),
        support::pct(&late_ms, 0.99),
        late_ms.last().unwrap(),
        within_1s,
        o.timers,
        events,
        scheduled_in.as_secs_f64() * 1000.0,
        seen.iter()
            .map(|(_, at)| *at)
            .max()
            .unwrap_or(0)
            .saturating_sub(last_due) as f64
            / 1000.0,
    );
    assert_eq!(events, o.timers as i64, "each timer fires exactly once");
    assert!(late[0] >= 0, "a timer fired before its due time");
    db.store.close().await;
    if o.backend == "postgres" {
        support::drop_pg_db(&db.url).await;
    }
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for name in ["spread", "burst"] {
            if o.scenario == "all" || o.scenario == name {
                scenario(&o, name).await;
            }
        }
    });
}
