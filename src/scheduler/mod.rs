//! The scheduler: fires persisted timers (see [`crate::store::NewTimer`]) when they fall due,
//! and runs cron-style jobs by turning each tick into a timer.
//!
//! * **Sleeping.** The loop sleeps until the earliest pending timer is due, or until a commit in
//!   this process schedules a timer (which may be earlier), or at most
//!   [`SchedulerConfig::poll_interval`] — the bound on how late it notices timers other
//!   instances scheduled and then failed to fire.
//! * **Firing.** Due timers are taken in batches inside a write transaction, and the handler
//!   gets that same transaction: its effects and the timers' `fired` mark commit together, so a
//!   timer fires exactly once, or not at all and again later. Timers that fell due while the
//!   daemon was down are simply due on the first pass. On PostgreSQL the take skips rows
//!   another instance holds, and writers serialise on the store's write lock anyway, so two
//!   instances never fire one timer twice.
//! * **Failures.** A batch whose handler (or commit) fails is rolled back, and its timers are
//!   fired again one by one, each in its own transaction, so a timer that breaks its handler
//!   cannot hold up the others. Each one that fails on its own is due again after a backoff
//!   (doubling from [`SchedulerConfig::retry_base`] to [`SchedulerConfig::retry_max`]), and
//!   after [`SchedulerConfig::max_attempts`] failures it is marked `dead`, logged at error
//!   level and counted in `incidentd_timers_dead_total`. If the database itself is unavailable
//!   (starting a transaction, taking timers, recording a failure), nothing is counted: the
//!   loop backs off and tries again.
//! * **Cron.** Each job of [`SchedulerConfig::cron`] runs in tokio-cron-scheduler (in memory,
//!   UTC) and does one thing per tick: it schedules a timer of kind [`CRON_KIND`] keyed by the
//!   job's name and the tick's time, due at the tick. Every instance does the same, the key
//!   makes it one row, and the timer path fires it once. A tick missed while every instance was
//!   down is not made up for.

mod cron;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

pub use self::cron::{CRON_KIND, CronTick, validate_cron, validate_cron_jobs};
use crate::channels::BoxFuture;
use crate::domain::time::to_micros;
use crate::store::{DueTimer, Store, StoreError, WriteTx};

/// What firing a timer does. Dispatching on [`DueTimer::kind`] is the handler's business.
pub trait TimerHandler: Send + Sync {
    /// Do what `timers` are for, in `tx`: whatever the handler writes there (tasks,
    /// deliveries, audit events, further timers) commits together with the timers being marked
    /// fired, or — if this returns an error — not at all, and the timers are fired again
    /// later. `now` is when the batch was taken (the timers were due at or before it).
    fn fire<'a>(
        &'a self,
        tx: &'a mut WriteTx,
        timers: &'a [DueTimer],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

pub use crate::config::SchedulerConfig;

/// Scheduler start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("invalid scheduler configuration: {0}")]
    Config(String),
    #[error("cannot start the cron scheduler: {0}")]
    Cron(String),
}

/// A running scheduler.
pub struct Scheduler {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    cron: Option<cron::CronJobs>,
}

impl Scheduler {
    /// Validate `cfg`, start the timer loop and the cron jobs. Timers already due fire at once.
    pub async fn start(
        store: Store,
        handler: Arc<dyn TimerHandler>,
        cfg: SchedulerConfig,
    ) -> Result<Scheduler, SchedulerError> {
        cfg.validate().map_err(SchedulerError::Config)?;
        let cron = if cfg.cron.is_empty() {
            None
        } else {
            Some(cron::CronJobs::start(store.clone(), &cfg.cron, &cfg.cron_zones).await?)
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, handler, cfg, stopped));
        Ok(Scheduler { stop, task, cron })
    }

    /// Stop the cron jobs and the timer loop, letting a firing in progress finish within
    /// `limit`. One still running then is cancelled: its transaction rolls back and its timers
    /// fire on the next start.
    pub async fn shutdown(mut self, limit: Duration) {
        let _ = self.stop.send(true);
        if let Some(c) = self.cron.take() {
            c.shutdown().await;
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(limit, &mut self.task).await.is_err() {
            abort.abort();
            let _ = self.task.await;
            warn!(
                "a timer firing was still running at the shutdown limit; it was rolled back and fires again on the next start"
            );
        }
    }
}

/// Fire every timer due at `now`, batch by batch, until none is left; returns how many fired.
/// The loop's own step — and, with a `now` in the future, a test's way to fire timers without
/// waiting for them. Fails only if the database fails outside the handler (handler failures
/// are recorded on their timers, see the module notes).
pub async fn fire_due(
    store: &Store,
    handler: &dyn TimerHandler,
    cfg: &SchedulerConfig,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    fire_until(store, handler, cfg, || Some(now), &|| false).await
}

/// Fire batches while `clock` gives a time (the loop uses the wall clock) and `stopped` is false.
async fn fire_until(
    store: &Store,
    handler: &dyn TimerHandler,
    cfg: &SchedulerConfig,
    clock: impl Fn() -> Option<DateTime<Utc>>,
    stopped: &(dyn Fn() -> bool + Sync),
) -> Result<usize, StoreError> {
    let mut fired = 0;
    while !stopped() {
        let Some(now) = clock() else { break };
        let mut tx = store.begin_write().await?;
        let timers = tx.take_due_timers(to_micros(now), cfg.batch as i64).await?;
        if timers.is_empty() {
            return Ok(fired);
        }
        match fire_in(tx, handler, &timers, now).await {
            Ok(()) => fired += timers.len(),
            Err(e) => {
                warn!(error = %e, timers = timers.len(), "a batch of timers failed; firing them one by one");
                fired += fire_singly(store, handler, cfg, &timers, now).await?;
            }
        }
        if timers.len() < cfg.batch {
            break;
        }
    }
    Ok(fired)
}

/// Hand `timers` (taken in `tx`) to the handler and commit; records metrics once committed.
async fn fire_in(
    mut tx: WriteTx,
    handler: &dyn TimerHandler,
    timers: &[DueTimer],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    handler.fire(&mut tx, timers, now).await?;
    tx.commit().await?;
    let done = to_micros(Utc::now());
    for t in timers {
        metrics::counter!("incidentd_timers_fired_total", "kind" => t.kind.clone()).increment(1);
        metrics::histogram!("incidentd_timer_lateness_seconds")
            .record((done - t.due_at).max(0) as f64 / 1e6);
    }
    debug!(timers = timers.len(), "fired timers");
    Ok(())
}

/// Fire each of a failed batch's timers in a transaction of its own; those that fail alone
/// are retried later or given up on.
async fn fire_singly(
    store: &Store,
    handler: &dyn TimerHandler,
    cfg: &SchedulerConfig,
    batch: &[DueTimer],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut fired = 0;
    for t in batch {
        let mut tx = store.begin_write().await?;
        let one = tx.take_timers(&[t.id], to_micros(now)).await?;
        if one.is_empty() {
            continue;
        }
        match fire_in(tx, handler, &one, now).await {
            Ok(()) => fired += 1,
            // Counted even if it was the database's fault: if the database is really down,
            // recording fails too and the loop backs off without counting.
            Err(e) => record_failure(store, cfg, &one[0], &e).await?,
        }
    }
    Ok(fired)
}

async fn record_failure(
    store: &Store,
    cfg: &SchedulerConfig,
    t: &DueTimer,
    e: &StoreError,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let failures = t.attempts.max(0) as u32 + 1;
    let retry_at = now + retry_delay(cfg, failures);
    let mut tx = store.begin_write().await?;
    let dead = tx
        .record_timer_failure(
            t.id,
            &e.to_string(),
            to_micros(retry_at),
            cfg.max_attempts,
            to_micros(now),
        )
        .await?;
    tx.commit().await?;
    match dead {
        Some(true) => {
            metrics::counter!("incidentd_timers_dead_total", "kind" => t.kind.clone()).increment(1);
            error!(timer = %t.key, kind = %t.kind, incident = t.incident_id, failures, error = %e,
                "timer is dead: its handler failed every time; it will not fire unless rescheduled");
        }
        Some(false) => {
            warn!(timer = %t.key, kind = %t.kind, incident = t.incident_id, failures, error = %e,
                retry_at = %retry_at, "timer handler failed; trying again later");
        }
        None => {}
    }
    Ok(())
}

/// The delay after the `failures`-th failure: `retry_base × 2^(failures-1)`, capped.
pub fn retry_delay(cfg: &SchedulerConfig, failures: u32) -> Duration {
    let exp = failures.clamp(1, 21) - 1;
    cfg.retry_base
        .saturating_mul(1u32 << exp)
        .min(cfg.retry_max)
}

/// How long to sleep before looking again, given the earliest pending due time.
fn wait_for(next_due: Option<i64>, poll: Duration) -> Duration {
    match next_due {
        Some(t) => {
            let us = (t - to_micros(Utc::now())).max(0) as u64;
            // Waking a moment early only costs an empty look; firing early cannot happen.
            Duration::from_micros(us).min(poll)
        }
        None => poll,
    }
}

const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_CHUNK: u64 = 5000;

async fn run(
    store: Store,
    handler: Arc<dyn TimerHandler>,
    cfg: SchedulerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let wake = store.timers_changed();
    let mut troubles = 0u32;
    let mut next_prune = Instant::now();
    info!(
        poll = ?cfg.poll_interval,
        batch = cfg.batch,
        cron_jobs = cfg.cron.len(),
        "scheduler started"
    );
    loop {
        let stopped = {
            let s = stop.clone();
            move || *s.borrow()
        };
        if stopped() {
            break;
        }
        let step = async {
            let next = store.next_timer_due().await?;
            if next.is_some_and(|t| t <= to_micros(Utc::now())) {
                fire_until(
                    &store,
                    handler.as_ref(),
                    &cfg,
                    || Some(Utc::now()),
                    &stopped,
                )
                .await?;
                return store.next_timer_due().await;
            }
            Ok(next)
        };
        let wait = match step.await {
            Ok(next) => {
                troubles = 0;
                wait_for(next, cfg.poll_interval)
            }
            Err(e) => {
                troubles += 1;
                let w = Duration::from_millis(100 * u64::from(troubles.min(50)));
                warn!(error = %e, retry_in = ?w, "cannot fire timers; trying again shortly");
                w
            }
        };
        if next_prune <= Instant::now() {
            next_prune = Instant::now() + PRUNE_EVERY;
            prune(&store, &cfg).await;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    info!("scheduler stopped");
}

/// Forget timers fired longer ago than the retention, a chunk per transaction.
async fn prune(store: &Store, cfg: &SchedulerConfig) {
    let Ok(keep) = chrono::Duration::from_std(cfg.retain_fired) else {
        return;
    };
    let before = to_micros(Utc::now() - keep);
    loop {
        let r = async {
            let mut tx = store.begin_write().await?;
            let n = tx.prune_fired_timers(before, PRUNE_CHUNK as i64).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(n)
        }
        .await;
        match r {
            Ok(PRUNE_CHUNK) => continue,
            Ok(n) => {
                if n > 0 {
                    debug!(pruned = n, "pruned fired timers");
                }
                return;
            }
            Err(e) => {
                warn!(error = %e, "cannot prune fired timers; trying again in an hour");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let cfg = SchedulerConfig {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            ..SchedulerConfig::default()
        };
        let d: Vec<u64> = (1..=8).map(|n| retry_delay(&cfg, n).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(&cfg, 0).as_secs(), 1);
        assert_eq!(retry_delay(&cfg, u32::MAX).as_secs(), 60);
    }

    #[test]
    fn the_sleep_is_bounded_by_the_poll_interval() {
        let poll = Duration::from_secs(1);
        assert_eq!(wait_for(None, poll), poll);
        let soon = to_micros(Utc::now()) + 200_000;
        assert!(wait_for(Some(soon), poll) <= Duration::from_millis(200));
        assert_eq!(wait_for(Some(0), poll), Duration::ZERO);
        assert_eq!(wait_for(Some(i64::MAX), poll), poll);
    }

    #[test]
    fn the_defaults_are_valid_and_bad_settings_are_named() {
        assert_eq!(SchedulerConfig::default().validate(), Ok(()));
        let bad = SchedulerConfig {
            batch: 0,
            ..SchedulerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("scheduler.batch"));
    }
}
