//! Cron ticks, fired: the one place a tick's timer is read and sent to its job — `digest` (the
//! response's periodic status digest) or `drill.<scenario>` (a scheduled drill). The scheduler
//! (`crate::scheduler::cron`) schedules one timer of kind [`CRON_KIND`] per tick; every other
//! timer kind goes to its own module's `fire`.

use chrono::{DateTime, Utc};
use tracing::warn;

use super::EngineError;
use super::drills::DrillCtx;
use super::response::ResponseCtx;
use crate::config::DRILL_JOB_PREFIX;
use crate::scheduler::{CRON_KIND, CronTick};
use crate::store::{DueTimer, NewEvent, WriteTx};

/// Whether `t` is a cron tick's timer.
pub fn is_tick(t: &DueTimer) -> bool {
    t.kind == CRON_KIND
}

/// Fire due cron ticks. A tick whose payload cannot be read, or whose job is unknown (removed
/// from the configuration since), is logged and dropped, never retried forever; the digest
/// needs departments (`response` is `None` without them) and is skipped then.
pub async fn fire(
    tx: &mut WriteTx,
    ticks: &[DueTimer],
    drills: &DrillCtx<'_>,
    response: Option<&ResponseCtx<'_>>,
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    let mut events: Vec<NewEvent> = Vec::new();
    for t in ticks {
        let tick = match t.payload::<CronTick>() {
            Ok(tick) => tick,
            Err(e) => {
                warn!(error = %e, key = %t.key, "unreadable cron timer; ignored");
                continue;
            }
        };
        if let Some(scenario) = tick.job.strip_prefix(DRILL_JOB_PREFIX) {
            match super::drills::start(tx, drills, scenario, "schedule", Some(&t.key), now).await {
                Ok((_, e)) => events.extend(e),
                // A scenario removed since: logged, not retried forever.
                Err(EngineError::NotFound(m)) => warn!(key = %t.key, "{m}"),
                Err(e) => return Err(e),
            }
        } else if tick.job == "digest" {
            if let Some(ctx) = response {
                events.extend(super::response::digest(tx, ctx, &tick, now).await?);
            }
        } else {
            warn!(job = %tick.job, "unknown cron job; ignored");
        }
    }
    tx.append(&events).await?;
    Ok(())
}
