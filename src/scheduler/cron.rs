//! Cron jobs as timers: each tick schedules one timer row, and the timer path fires it.
//!
//! tokio-cron-scheduler decides *when* (in memory, polling every half second); the tick's key
//! (`cron:{job}:{tick time}`) decides *how often*: every instance schedules the same key for
//! the same tick, so there is one row, and its `fired` mark outlives the instances' skew.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{debug, error, warn};

use super::SchedulerError;
pub use crate::domain::cron::{validate_cron, validate_cron_jobs};
use crate::domain::time::to_micros;
use crate::store::{NewTimer, Store};

/// The kind of the timers cron ticks schedule; their payload is a [`CronTick`].
pub const CRON_KIND: &str = "cron";

/// The payload of a [`CRON_KIND`] timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronTick {
    /// The job's name in [`super::SchedulerConfig::cron`].
    pub job: String,
    /// The scheduled time of this tick.
    pub tick: DateTime<Utc>,
}

/// The timer of job `name`'s tick at `tick`.
pub fn cron_timer(name: &str, tick: DateTime<Utc>) -> NewTimer {
    let at = tick.to_rfc3339_opts(SecondsFormat::Secs, true);
    NewTimer {
        key: format!("cron:{name}:{at}"),
        kind: CRON_KIND.to_string(),
        incident_id: None,
        due_at: to_micros(tick),
        payload: serde_json::to_value(CronTick {
            job: name.to_string(),
            tick,
        })
        .unwrap_or_default(),
    }
}

/// The tick a run at `now` is for: the latest scheduled second not after `now`.
fn tick_at(
    cron: &Cron,
    now: DateTime<Utc>,
    tz: Tz,
) -> Result<DateTime<Utc>, croner::errors::CronError> {
    // croner keeps the sub-second part of a matching start time; ticks are whole seconds.
    let second = now.with_nanosecond(0).unwrap_or(now).with_timezone(&tz);
    cron.find_previous_occurrence(&second, true)
        .map(|t| t.with_timezone(&Utc))
}

/// One cron job: on each tick, schedule that tick's timer.
struct TickJob {
    store: Store,
    name: String,
    cron: Cron,
    /// The zone the expression is read in.
    tz: Tz,
}

impl TickJob {
    async fn tick(&self, now: DateTime<Utc>) {
        // The tick this run is for: the latest scheduled time not after now (tokio-cron-
        // scheduler runs a job at or shortly after its time, never before).
        let tick = match tick_at(&self.cron, now, self.tz) {
            Ok(t) => t,
            Err(e) => {
                warn!(job = %self.name, error = %e, "cannot place this cron run on its schedule; skipped");
                return;
            }
        };
        let timer = cron_timer(&self.name, tick);
        for attempt in 1..=5u32 {
            match self.schedule(&timer).await {
                Ok(added) => {
                    debug!(job = %self.name, key = %timer.key, added, "cron tick");
                    return;
                }
                Err(e) => {
                    warn!(job = %self.name, key = %timer.key, error = %e, attempt, "cannot schedule a cron tick; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
        error!(job = %self.name, key = %timer.key, "cron tick lost: the database stayed unavailable");
    }

    async fn schedule(&self, timer: &NewTimer) -> crate::store::Result<u64> {
        let mut tx = self.store.begin_write().await?;
        let added = tx
            .schedule_timers(std::slice::from_ref(timer), to_micros(Utc::now()))
            .await?;
        tx.commit().await?;
        Ok(added)
    }
}

/// The running cron jobs.
pub(super) struct CronJobs {
    sched: JobScheduler,
}

impl CronJobs {
    pub(super) async fn start(
        store: Store,
        jobs: &[(String, String)],
        zones: &std::collections::HashMap<String, Tz>,
    ) -> Result<CronJobs, SchedulerError> {
        let fail = |e: tokio_cron_scheduler::JobSchedulerError| SchedulerError::Cron(e.to_string());
        let sched = JobScheduler::new().await.map_err(fail)?;
        for (name, expr) in jobs {
            let cron = validate_cron(expr)
                .map_err(|e| SchedulerError::Config(format!("cron job `{name}`: {e}")))?;
            let tz = zones.get(name).copied().unwrap_or(Tz::UTC);
            let job = Arc::new(TickJob {
                store: store.clone(),
                name: name.clone(),
                cron,
                tz,
            });
            let j = Job::new_async_tz(expr.as_str(), tz, move |_id, _sched| {
                let job = job.clone();
                Box::pin(async move { job.tick(Utc::now()).await })
            })
            .map_err(fail)?;
            sched.add(j).await.map_err(fail)?;
        }
        sched.start().await.map_err(fail)?;
        Ok(CronJobs { sched })
    }

    /// Stop ticking. A tick being scheduled right now may still commit; that is harmless.
    pub(super) async fn shutdown(mut self) {
        if let Err(e) = self.sched.shutdown().await {
            warn!(error = %e, "cron scheduler did not shut down cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_and_nonsense_are_refused_with_a_reason() {
        let e = validate_cron("0 9 * * *").unwrap_err();
        assert!(e.contains("six") && e.contains("seconds first"), "{e}");
        let e = validate_cron("0 0 25 * * *").unwrap_err();
        assert!(e.contains("not a valid cron expression"), "{e}");
        assert!(validate_cron("0 0 9 * * Mon-Fri").is_ok());
        assert!(validate_cron("*/5 * * * * *").is_ok());
    }

    #[test]
    fn job_names_must_be_unique_and_fit_a_key() {
        let job = |n: &str| (n.to_string(), "0 * * * * *".to_string());
        assert_eq!(
            validate_cron_jobs(&[job("digest"), job("sweep.sla")]),
            Ok(())
        );
        assert!(
            validate_cron_jobs(&[job("a"), job("a")])
                .unwrap_err()
                .contains("twice")
        );
        assert!(validate_cron_jobs(&[job("a:b")]).is_err());
        assert!(validate_cron_jobs(&[job("")]).is_err());
    }

    #[test]
    fn a_run_shortly_after_its_tick_names_that_tick() {
        let cron = validate_cron("0 */5 * * * *").unwrap();
        let tick = Utc.with_ymd_and_hms(2026, 3, 1, 9, 5, 0).unwrap();
        for late_ms in [0, 1, 499, 1500] {
            let now = tick + chrono::Duration::milliseconds(late_ms);
            assert_eq!(tick_at(&cron, now, Tz::UTC).unwrap(), tick);
        }
        let t = cron_timer("digest", tick);
        assert_eq!(t.key, "cron:digest:2026-03-01T09:05:00Z");
        assert_eq!(t.kind, CRON_KIND);
        assert_eq!(t.due_at, to_micros(tick));
        let p: CronTick = serde_json::from_value(t.payload).unwrap();
        assert_eq!(p.job, "digest");
    }

    #[test]
    fn a_job_in_a_time_zone_ticks_at_local_time() {
        let cron = validate_cron("0 0 9 * * *").unwrap();
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        // 09:00 in Shanghai is 01:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 1, 0, 0).unwrap();
        assert_eq!(tick_at(&cron, now, tz).unwrap(), now);
        assert_eq!(
            tick_at(&cron, now, Tz::UTC).unwrap(),
            Utc.with_ymd_and_hms(2026, 2, 28, 9, 0, 0).unwrap()
        );
    }
}
