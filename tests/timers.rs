//! Persisted timers and the scheduler, against the real store (a fresh SQLite file or a fresh
//! PostgreSQL database) through the library API. A recording handler appends one audit event
//! per timer it fires, in the scheduler's transaction: counting those events counts what was
//! committed, which is what "fires exactly once" means.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::Backend;
use incidentd::channels::BoxFuture;
use incidentd::config::{SqliteSync, StoreConfig};
use incidentd::domain::duration::HumanDuration;
use incidentd::domain::time::to_micros;
use incidentd::scheduler::{
    CRON_KIND, CronTick, Scheduler, SchedulerConfig, TimerHandler, fire_due,
};
use incidentd::store::{DueTimer, NewEvent, NewTimer, Store, StoreError, WriteTx};
use serde_json::json;
use sqlx::Connection;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Sqlite).await; }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Postgres).await; }
            )*
        }
    };
}

on_both!(
    timers_fire_once_at_not_before_their_due_time,
    an_earlier_timer_wakes_a_scheduler_sleeping_on_a_later_one,
    timers_overdue_at_start_fire_at_once,
    keys_are_idempotent_even_after_firing,
    cancelled_timers_do_not_fire,
    a_failing_handler_rolls_back_and_the_timer_fires_again_once,
    a_timer_that_always_fails_goes_dead_without_blocking_others,
    a_scheduler_stopped_before_the_due_time_fires_once_after_restart,
    two_schedulers_on_one_database_fire_each_timer_once,
    cron_ticks_make_one_timer_each_even_with_two_schedulers,
    fire_due_fires_what_is_due_at_a_given_time,
);

/// A fresh, migrated database; further `Store`s on it play other instances.
struct Db {
    backend: Backend,
    url: String,
    store: Store,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

fn store_config(url: &str) -> StoreConfig {
    StoreConfig {
        url: url.to_string().into(),
        max_connections: 5,
        sqlite_synchronous: SqliteSync::Normal,
        busy_timeout: HumanDuration(Duration::from_secs(5)),
    }
}

impl Db {
    async fn open(backend: Backend) -> Option<Db> {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = common::fresh_store(backend, dir.path()).await?;
        let db = Db {
            backend,
            store: connect(backend, &url).await,
            url,
            _dir: dir,
            pg,
        };
        db.store.migrate().await.unwrap();
        Some(db)
    }

    /// Another instance's store on the same database.
    async fn instance(&self) -> Store {
        connect(self.backend, &self.url).await
    }

    async fn schedule(&self, timers: &[NewTimer]) -> u64 {
        schedule_on(&self.store, timers).await
    }

    /// Committed `timer.fired` events per timer key.
    async fn fired(&self) -> HashMap<String, usize> {
        const SQL: &str = "SELECT data FROM events WHERE kind = 'timer.fired'";
        let rows: Vec<(String,)> = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap()
            }
        };
        let mut out = HashMap::new();
        for (data,) in rows {
            let v: serde_json::Value = serde_json::from_str(&data).unwrap();
            *out.entry(v["key"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        out
    }

    async fn sql(&self, statement: &'static str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(statement).execute(&mut c).await.unwrap();
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(statement).execute(&mut c).await.unwrap();
            }
        }
    }

    async fn close(mut self) {
        self.store.close().await;
        if let Some((admin, name)) = self.pg.take() {
            common::drop_pg_database(&admin, &name).await;
        }
    }
}

async fn connect(backend: Backend, url: &str) -> Store {
    let cfg = store_config(url);
    match backend {
        Backend::Sqlite => Store::Sqlite(
            incidentd::store::sqlite::SqliteStore::connect(url, &cfg)
                .await
                .unwrap(),
        ),
        Backend::Postgres => Store::Postgres(
            incidentd::store::postgres::PgStore::connect(url, &cfg)
                .await
                .unwrap(),
        ),
    }
}

async fn schedule_on(store: &Store, timers: &[NewTimer]) -> u64 {
    let mut tx = store.begin_write().await.unwrap();
    let n = tx
        .schedule_timers(timers, to_micros(Utc::now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

fn timer(key: &str, due: DateTime<Utc>) -> NewTimer {
    NewTimer {
        key: key.to_string(),
        kind: "test".to_string(),
        incident_id: None,
        due_at: to_micros(due),
        payload: json!({ "key": key }),
    }
}

fn in_ms(ms: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(ms)
}

/// Records what it fires, and appends a `timer.fired` audit event per timer in the firing
/// transaction. `fail` gives, per key, how many more times firing it fails (`u32::MAX`:
/// always); the failure comes after the events are appended, so a rollback must undo them.
#[derive(Default)]
struct Recorder {
    fired: Mutex<Vec<(DueTimer, DateTime<Utc>)>>,
    fail: Mutex<HashMap<String, u32>>,
}

impl Recorder {
    fn failing(key: &str, times: u32) -> Arc<Recorder> {
        let r = Recorder::default();
        r.fail.lock().unwrap().insert(key.to_string(), times);
        Arc::new(r)
    }

    fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .fired
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.key.clone())
            .collect();
        k.sort();
        k
    }
}

impl TimerHandler for Recorder {
    fn fire<'a>(
        &'a self,
        tx: &'a mut WriteTx,
        timers: &'a [DueTimer],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let events: Vec<NewEvent> = timers
                .iter()
                .map(|t| {
                    NewEvent::new(
                        now,
                        "scheduler-test",
                        "timer.fired",
                        t.incident_id,
                        &json!({ "key": t.key }),
                    )
                })
                .collect();
            tx.append(&events).await?;
            for t in timers {
                let mut fail = self.fail.lock().unwrap();
                if let Some(n) = fail.get_mut(&t.key)
                    && *n > 0
                {
                    *n = n.saturating_sub(if *n == u32::MAX { 0 } else { 1 });
                    return Err(StoreError::Failed(format!("{} broke its handler", t.key)));
                }
            }
            let at = Utc::now();
            self.fired
                .lock()
                .unwrap()
                .extend(timers.iter().map(|t| (t.clone(), at)));
            Ok(())
        })
    }
}

fn cfg() -> SchedulerConfig {
    SchedulerConfig {
        // Long, so the tests see the scheduler wake for due times and commits, not poll.
        poll_interval: Duration::from_secs(30),
        batch: 64,
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        ..SchedulerConfig::default()
    }
}

async fn timers_fire_once_at_not_before_their_due_time(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let rec = Arc::new(Recorder::default());
    let s = Scheduler::start(db.store.clone(), rec.clone(), cfg())
        .await
        .unwrap();
    let timers = [
        timer("a", in_ms(300)),
        timer("b", in_ms(600)),
        timer("c", in_ms(900)),
    ];
    assert_eq!(db.schedule(&timers).await, 3);
    common::wait_for("three timers fire", 5, async || rec.keys().len() == 3).await;
    for (t, at) in rec.fired.lock().unwrap().iter() {
        let late = *at - t.due();
        assert!(
            late >= chrono::Duration::zero(),
            "{} fired early: {late}",
            t.key
        );
        assert!(
            late < chrono::Duration::seconds(1),
            "{} fired late: {late}",
            t.key
        );
        assert_eq!(t.kind, "test");
        assert_eq!(t.payload::<serde_json::Value>().unwrap()["key"], t.key);
    }
    s.shutdown(Duration::from_secs(5)).await;
    assert_eq!(rec.keys(), ["a", "b", "c"]);
    let fired = db.fired().await;
    assert_eq!(fired.len(), 3);
    assert!(fired.values().all(|n| *n == 1), "{fired:?}");
    let a = db.store.timer("a").await.unwrap().unwrap();
    assert_eq!((a.status.as_str(), a.attempts), ("fired", 0));
    assert_eq!(db.store.timers_pending().await.unwrap(), 0);
    db.close().await;
}

async fn an_earlier_timer_wakes_a_scheduler_sleeping_on_a_later_one(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    db.schedule(&[timer("later", in_ms(20_000))]).await;
    let rec = Arc::new(Recorder::default());
    let s = Scheduler::start(db.store.clone(), rec.clone(), cfg())
        .await
        .unwrap();
    // Let it look, find "later", and go to sleep (until then or the 30 s poll): the story needs
    // the scheduler asleep, which nothing outside shows, so time passes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let due = in_ms(200);
    db.schedule(&[timer("sooner", due)]).await;
    common::wait_for("the sooner timer fires", 3, async || !rec.keys().is_empty()).await;
    assert_eq!(rec.keys(), ["sooner"]);
    let late = rec.fired.lock().unwrap()[0].1 - due;
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::seconds(1),
        "{late}"
    );
    s.shutdown(Duration::from_secs(5)).await;
    assert_eq!(db.store.timers_pending().await.unwrap(), 1);
    db.close().await;
}

async fn timers_overdue_at_start_fire_at_once(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let old: Vec<NewTimer> = (0..300)
        .map(|i| timer(&format!("old{i}"), in_ms(-3_600_000 + i)))
        .collect();
    db.schedule(&old).await;
    db.schedule(&[timer("just", in_ms(-1000))]).await;
    let rec = Arc::new(Recorder::default());
    let started = Instant::now();
    let s = Scheduler::start(db.store.clone(), rec.clone(), cfg())
        .await
        .unwrap();
    common::wait_for("overdue timers fire", 5, async || rec.keys().len() == 301).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    s.shutdown(Duration::from_secs(5)).await;
    // Oldest first, in batches of 64.
    let order: Vec<String> = rec
        .fired
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.key.clone())
        .collect();
    assert_eq!(order[0], "old0");
    assert_eq!(order[300], "just");
    let fired = db.fired().await;
    assert_eq!(fired.len(), 301);
    assert!(fired.values().all(|n| *n == 1));
    db.close().await;
}

async fn keys_are_idempotent_even_after_firing(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let t = timer("escalate:42:security:2", in_ms(-1));
    // Twice in one transaction, and again in another: one row.
    assert_eq!(db.schedule(&[t.clone(), t.clone()]).await, 1);
    assert_eq!(db.schedule(std::slice::from_ref(&t)).await, 0);
    assert_eq!(db.store.timers_pending().await.unwrap(), 1);
    let rec = Recorder::default();
    assert_eq!(
        fire_due(&db.store, &rec, &cfg(), Utc::now()).await.unwrap(),
        1
    );
    // Fired, the key still refuses the same work (a replay, another instance's cron tick).
    assert_eq!(db.schedule(std::slice::from_ref(&t)).await, 0);
    assert_eq!(
        fire_due(&db.store, &rec, &cfg(), in_ms(3_600_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(db.fired().await.get(&t.key), Some(&1));
    // Until it is pruned.
    let mut tx = db.store.begin_write().await.unwrap();
    assert_eq!(
        tx.prune_fired_timers(to_micros(in_ms(1000)), 100)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert!(db.store.timer(&t.key).await.unwrap().is_none());
    db.close().await;
}

async fn cancelled_timers_do_not_fire(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    db.sql(
        "INSERT INTO incidents (id, title, category, severity, status, origin, first_seen_at, \
         discovered_at, updated_at, created_by) VALUES (7, 't', 'malware', 'high', 'open', \
         'declaration', 0, 0, 0, 'test')",
    )
    .await;
    let mut esc = timer("escalate:7:1", in_ms(-1));
    esc.kind = "escalate".into();
    esc.incident_id = Some(7);
    let mut other = timer("remind:7", in_ms(-1));
    other.incident_id = Some(7);
    db.schedule(&[timer("a", in_ms(-1)), timer("b", in_ms(-1)), esc, other])
        .await;
    let mut tx = db.store.begin_write().await.unwrap();
    assert_eq!(tx.cancel_timers(&["a", "nope"]).await.unwrap(), 1);
    assert_eq!(tx.cancel_timers(&["a"]).await.unwrap(), 0);
    assert_eq!(
        tx.cancel_incident_timers(7, Some("escalate"))
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let rec = Recorder::default();
    assert_eq!(
        fire_due(&db.store, &rec, &cfg(), Utc::now()).await.unwrap(),
        2
    );
    assert_eq!(rec.keys(), ["b", "remind:7"]);
    // A cancelled key can be scheduled again.
    assert_eq!(db.schedule(&[timer("a", in_ms(-1))]).await, 1);
    // Rolled back, a cancel cancels nothing.
    let mut tx = db.store.begin_write().await.unwrap();
    assert_eq!(tx.cancel_timers(&["a"]).await.unwrap(), 1);
    drop(tx);
    assert_eq!(
        fire_due(&db.store, &rec, &cfg(), Utc::now()).await.unwrap(),
        1
    );
    db.close().await;
}

async fn a_failing_handler_rolls_back_and_the_timer_fires_again_once(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let rec = Recorder::failing("flaky", 2);
    db.schedule(&[timer("flaky", in_ms(-1)), timer("fine", in_ms(-1))])
        .await;
    let s = Scheduler::start(db.store.clone(), rec.clone(), cfg())
        .await
        .unwrap();
    common::wait_for("the flaky timer fires", 5, async || rec.keys().len() == 2).await;
    s.shutdown(Duration::from_secs(5)).await;
    assert_eq!(rec.keys(), ["fine", "flaky"]);
    let flaky = db.store.timer("flaky").await.unwrap().unwrap();
    // The batch's failure counts against no timer; fired alone, it failed once more.
    assert_eq!((flaky.status.as_str(), flaky.attempts), ("fired", 1));
    assert!(
        flaky
            .last_error
            .unwrap()
            .contains("flaky broke its handler")
    );
    // The failed attempts' events were rolled back with them.
    let fired = db.fired().await;
    assert_eq!(fired.get("flaky"), Some(&1));
    assert_eq!(fired.get("fine"), Some(&1));
    db.close().await;
}

async fn a_timer_that_always_fails_goes_dead_without_blocking_others(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let rec = Recorder::failing("poison", u32::MAX);
    let mut timers = vec![timer("poison", in_ms(-10))];
    timers.extend((0..100).map(|i| timer(&format!("ok{i}"), in_ms(i))));
    db.schedule(&timers).await;
    let cfg = SchedulerConfig {
        max_attempts: 3,
        ..cfg()
    };
    let s = Scheduler::start(db.store.clone(), rec.clone(), cfg)
        .await
        .unwrap();
    common::wait_for("the others fire", 5, async || rec.keys().len() == 100).await;
    common::wait_for("the poison timer is dead", 5, async || {
        db.store.timers_dead().await.unwrap() == 1
    })
    .await;
    s.shutdown(Duration::from_secs(5)).await;
    let p = db.store.timer("poison").await.unwrap().unwrap();
    assert_eq!((p.status.as_str(), p.attempts), ("dead", 3));
    assert!(p.done_at.is_some());
    let fired = db.fired().await;
    assert_eq!(fired.len(), 100);
    assert!(!fired.contains_key("poison"));
    assert_eq!(db.store.timers_pending().await.unwrap(), 0);
    db.close().await;
}

async fn a_scheduler_stopped_before_the_due_time_fires_once_after_restart(backend: Backend) {
    let Some(mut db) = Db::open(backend).await else {
        return;
    };
    let rec = Arc::new(Recorder::default());
    let s = Scheduler::start(db.store.clone(), rec.clone(), cfg())
        .await
        .unwrap();
    let due = in_ms(700);
    db.schedule(&[timer("escalate:1:security:1", due)]).await;
    s.shutdown(Duration::from_secs(5)).await;
    db.store.close().await;
    // Down past the due time (time must pass: the story is the wall clock passing it).
    let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    assert!(rec.keys().is_empty());
    db.store = db.instance().await;
    assert!(db.fired().await.is_empty());
    let rec = Arc::new(Recorder::default());
    let s = Scheduler::start(db.store.clone(), rec.clone(), cfg())
        .await
        .unwrap();
    common::wait_for("the timer fires after the restart", 5, async || {
        !rec.keys().is_empty()
    })
    .await;
    s.shutdown(Duration::from_secs(5)).await;
    assert_eq!(rec.keys(), ["escalate:1:security:1"]);
    assert_eq!(db.fired().await.get("escalate:1:security:1"), Some(&1));
    db.close().await;
}

async fn two_schedulers_on_one_database_fire_each_timer_once(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let other = db.instance().await;
    let (r1, r2) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let s1 = Scheduler::start(db.store.clone(), r1.clone(), cfg())
        .await
        .unwrap();
    let s2 = Scheduler::start(other.clone(), r2.clone(), cfg())
        .await
        .unwrap();
    // 2,000 timers due over the next second, scheduled half through each instance (each wakes
    // its own scheduler; the other finds them when it next looks).
    let timers: Vec<NewTimer> = (0..2000)
        .map(|i| timer(&format!("t{i}"), in_ms(200 + i / 2)))
        .collect();
    let (a, b) = timers.split_at(1000);
    let (x, y) = tokio::join!(db.schedule(a), schedule_on(&other, b));
    assert_eq!(x + y, 2000);
    common::wait_for("all 2,000 timers fire", 10, async || {
        db.store.timers_pending().await.unwrap() == 0
    })
    .await;
    s1.shutdown(Duration::from_secs(5)).await;
    s2.shutdown(Duration::from_secs(5)).await;
    let (n1, n2) = (r1.keys().len(), r2.keys().len());
    eprintln!("instance 1 fired {n1}, instance 2 fired {n2}");
    assert_eq!(n1 + n2, 2000);
    let mut all = r1.keys();
    all.extend(r2.keys());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 2000);
    let fired = db.fired().await;
    assert_eq!(fired.len(), 2000);
    assert!(fired.values().all(|n| *n == 1));
    other.close().await;
    db.close().await;
}

async fn cron_ticks_make_one_timer_each_even_with_two_schedulers(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let other = db.instance().await;
    let cfg = SchedulerConfig {
        cron: vec![("sweep".into(), "* * * * * *".into())],
        ..cfg()
    };
    let (r1, r2) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let s1 = Scheduler::start(db.store.clone(), r1.clone(), cfg.clone())
        .await
        .unwrap();
    let s2 = Scheduler::start(other.clone(), r2.clone(), cfg)
        .await
        .unwrap();
    common::wait_for("three ticks fire", 10, async || {
        r1.keys().len() + r2.keys().len() >= 3
    })
    .await;
    s1.shutdown(Duration::from_secs(5)).await;
    s2.shutdown(Duration::from_secs(5)).await;
    // A tick scheduled during the shutdown fires on the next start; fire it here.
    fire_due(
        &db.store,
        r1.as_ref(),
        &SchedulerConfig::default(),
        in_ms(2000),
    )
    .await
    .unwrap();
    let mut fired: Vec<(DueTimer, DateTime<Utc>)> = r1.fired.lock().unwrap().clone();
    fired.extend(r2.fired.lock().unwrap().iter().cloned());
    let mut ticks = Vec::new();
    for (t, at) in &fired {
        assert_eq!(t.kind, CRON_KIND);
        let p: CronTick = t.payload().unwrap();
        assert_eq!(p.job, "sweep");
        assert_eq!(t.due(), p.tick);
        assert!(*at >= p.tick);
        ticks.push(p.tick);
    }
    ticks.sort();
    let n = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), n, "a tick fired twice");
    // Consecutive seconds: neither instance's ticks were lost.
    for w in ticks.windows(2) {
        assert_eq!(w[1] - w[0], chrono::Duration::seconds(1), "{ticks:?}");
    }
    let events = db.fired().await;
    assert_eq!(events.len(), n);
    assert!(events.values().all(|c| *c == 1));
    other.close().await;
    db.close().await;
}

async fn fire_due_fires_what_is_due_at_a_given_time(backend: Backend) {
    let Some(db) = Db::open(backend).await else {
        return;
    };
    let hour = in_ms(3_600_000);
    db.schedule(&[
        timer("in-a-day", in_ms(86_400_000)),
        timer("in-an-hour", hour),
    ])
    .await;
    assert_eq!(
        db.store.next_timer_due().await.unwrap(),
        Some(to_micros(hour))
    );
    let rec = Recorder::default();
    let cfg = SchedulerConfig { batch: 1, ..cfg() };
    assert_eq!(
        fire_due(&db.store, &rec, &cfg, Utc::now()).await.unwrap(),
        0
    );
    assert_eq!(
        fire_due(&db.store, &rec, &cfg, in_ms(7_200_000))
            .await
            .unwrap(),
        1
    );
    assert_eq!(rec.keys(), ["in-an-hour"]);
    assert_eq!(db.store.timers_pending().await.unwrap(), 1);
    db.close().await;
}
