//! The dispatcher: claims committed deliveries from the outbox, sends them through the
//! channels, and records how each attempt ended.
//!
//! * **Claims** come in batches, bounded by how many sends may be in flight
//!   ([`DispatchConfig::batch_size`] × 2). A commit that enqueues deliveries wakes the claimer
//!   at once (no polling on the hot path); it also looks every `poll_interval` for work it was
//!   not told about (other instances, retries falling due, leases ending).
//! * **Sends** run concurrently, each channel under its own concurrency limit and rate limit.
//!   A send that provably never left (connection refused) is retried at once, twice; anything
//!   else that fails is a durable retry with exponential backoff and jitter, up to
//!   `max_attempts`, then `dead` — and, if the delivery names a fallback, the next channel's
//!   delivery is enqueued in the same transaction.
//! * **Outcomes** are written in batches by one recorder (group commit), with one audit event
//!   per incident per batch.
//! * **Digests** (coalesced pages, see [`crate::engine::paging`]) are sent like any delivery;
//!   when a digest's outcome is `sent` or `dead`, the pages it holds get that outcome in the
//!   same transaction. A page whose every channel is now dead (a digest's included) gets a
//!   `page.dead` timer there too, which escalates it ([`crate::store::PageKey`]).
//! * **The drill guard** sits right before a channel is called: a delivery of a drill incident
//!   goes out only to the (channel, recipient) pairs on that drill's allow-list. Anything else
//!   is refused and dies, with no fallback.
//!
//! After a crash, claimed rows stay `sending` until their lease ends and are then claimed
//! again: nothing is lost, and duplicates at providers are bounded by the sends in flight.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::json;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub mod notices;
mod record;

use crate::channels::{Channel, ChannelKind, Channels, SendError, Sent, mask};
use crate::config::DispatchConfig;
use crate::domain::time::to_micros;
use crate::store::{Claimed, DeliveryStatus, NewDelivery, NewEvent, Outcome, Store};

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent(Sent),
    Failed(SendError),
    /// The drill guard refused it; never retried, never falls back.
    Refused(String),
    /// Not attempted: given back to the queue (the claim's lease ran short while the send
    /// waited for its channel, or the drill list could not be read). The attempt does not count.
    Released(String),
}

/// The (incident, channel, recipient) pairs drills may reach.
pub type DrillAllowList = HashSet<(i64, String, String)>;

/// Send one delivery, unless the drill guard refuses it. This is the only path from a
/// delivery row to a channel.
pub async fn guarded_send(channel: &dyn Channel, d: &Claimed, allowed: &DrillAllowList) -> Attempt {
    if d.drill {
        let ok = d.incident_id.is_some_and(|i| {
            allowed.contains(&(i, d.channel.as_str().to_string(), d.recipient.clone()))
        });
        if !ok {
            metrics::counter!("incidentd_drill_guard_refusals_total", "channel" => d.channel.as_str())
                .increment(1);
            warn!(
                delivery = d.id,
                incident = d.incident_id,
                channel = %d.channel,
                recipient = %mask(d.channel, &d.recipient),
                "drill guard: refused a drill delivery to a recipient not on the drill's list"
            );
            return Attempt::Refused(format!(
                "drill guard: {} is not on this drill's recipient list",
                mask(d.channel, &d.recipient)
            ));
        }
    }
    let msg = d.outgoing();
    let mut waits = [Duration::from_millis(50), Duration::from_millis(250)].into_iter();
    loop {
        match channel.send(&msg).await {
            Ok(s) => return Attempt::Sent(s),
            Err(SendError::NotSent(m)) => match waits.next() {
                Some(w) => {
                    debug!(delivery = d.id, error = %m, "not sent; trying again at once");
                    tokio::time::sleep(w).await;
                }
                None => return Attempt::Failed(SendError::NotSent(m)),
            },
            Err(e) => return Attempt::Failed(e),
        }
    }
}

/// The delay before attempt `attempts + 1`: `base × 2^(attempts-1)`, capped, with "equal
/// jitter" (half fixed, half random) so retries from one outage spread out.
pub fn backoff(cfg: &DispatchConfig, attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let full = cfg
        .backoff_base
        .0
        .saturating_mul(1u32 << exp.min(20))
        .min(cfg.backoff_max.0);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

#[derive(Clone)]
struct Lane {
    channel: Arc<dyn Channel>,
    concurrency: Arc<Semaphore>,
    rate: Option<Arc<DefaultDirectRateLimiter>>,
}

/// The audit event of one recorded batch, per incident.
#[derive(Default, serde::Serialize)]
struct Recorded {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sent: Vec<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dead: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fallback: Vec<serde_json::Value>,
    /// Pages that went out (or died) in a digest: `{id, digest, status}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    coalesced: Vec<serde_json::Value>,
}

struct Done {
    claimed: Claimed,
    attempt: Attempt,
    provider: String,
    _permit: OwnedSemaphorePermit,
}

/// The contact keys in force now (they may change on reload).
pub type KeySource = Arc<dyn Fn() -> Option<Arc<crate::subjects::crypto::KeyRing>> + Send + Sync>;

/// A running dispatcher.
pub struct Dispatcher {
    stop: Arc<Notify>,
    claimer: JoinHandle<()>,
    recorder: JoinHandle<()>,
}

impl Dispatcher {
    /// `keys` gives the current contact keys: notice deliveries carry no contact, and are
    /// resolved right before sending ([`notices::materialise`]).
    pub fn start(
        store: Store,
        channels: Channels,
        cfg: DispatchConfig,
        keys: KeySource,
    ) -> Dispatcher {
        let mut lanes = HashMap::new();
        for kind in channels.kinds().collect::<Vec<_>>() {
            let Some(ch) = channels.get(kind) else {
                continue;
            };
            let limits = ch.limits();
            let rate = limits
                .per_second
                .and_then(NonZeroU32::new)
                .map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n))));
            lanes.insert(
                kind,
                Lane {
                    channel: ch.clone(),
                    concurrency: Arc::new(Semaphore::new(limits.concurrency.max(1))),
                    rate,
                },
            );
        }
        let stop = Arc::new(Notify::new());
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let inflight = Arc::new(Semaphore::new(cfg.batch_size.max(1) * 2));
        let claimer = tokio::spawn(claim_loop(
            store.clone(),
            Arc::new(lanes),
            cfg.clone(),
            inflight,
            done_tx,
            stop.clone(),
            keys,
        ));
        let recorder = tokio::spawn(record_loop(store, cfg, done_rx));
        Dispatcher {
            stop,
            claimer,
            recorder,
        }
    }

    /// Stop claiming, let sends in flight finish and their outcomes be recorded, within
    /// `limit`. What is still in flight then stays claimed until its lease ends.
    pub async fn shutdown(self, limit: Duration) {
        self.stop.notify_one();
        let all = async {
            let _ = self.claimer.await;
            let _ = self.recorder.await;
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            warn!(
                "deliveries still in flight at the shutdown limit; they are sent again after their lease ends"
            );
        }
    }
}

async fn claim_loop(
    store: Store,
    lanes: Arc<HashMap<ChannelKind, Lane>>,
    cfg: DispatchConfig,
    inflight: Arc<Semaphore>,
    done: mpsc::UnboundedSender<Done>,
    stop: Arc<Notify>,
    keys: KeySource,
) {
    let ready = store.deliveries_ready();
    let poll = cfg.poll_interval.0;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // Wait for room before claiming: rows are claimed only when they can be sent soon.
        let first = tokio::select! {
            biased;
            _ = stop.notified() => break,
            p = inflight.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let room = 1 + inflight.available_permits().min(cfg.batch_size - 1);
        let now = Utc::now();
        let lease_until = to_micros(now + cfg.lease.0);
        let mut claimed = match claim(
            &store,
            to_micros(now),
            lease_until,
            room as i64,
            cfg.max_attempts,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot claim deliveries; trying again shortly");
                drop(first);
                tokio::select! {
                    _ = stop.notified() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        };
        while tasks.try_join_next().is_some() {}
        if claimed.is_empty() {
            drop(first);
            let wait = match store.next_delivery_due().await {
                Ok(Some(t)) => {
                    let ms = (t - to_micros(Utc::now())).max(0) / 1000;
                    Duration::from_millis(ms as u64 + 1).min(poll)
                }
                _ => poll,
            };
            tokio::select! {
                biased;
                _ = stop.notified() => break,
                _ = ready.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        // Notices: the subject's contact and the campaign's words, right before sending.
        let unresolved =
            Arc::new(notices::materialise(&store, keys().as_deref(), &mut claimed).await);
        let (allowed, drills_unknown) = drill_lists(&store, &claimed).await;
        // Half the lease: a send that has not started by then is given back, so a claim never
        // runs out while its send is still queued for a slow or rate-limited channel.
        let start_by = now + cfg.lease.0 / 2;
        let mut first = Some(first);
        for c in claimed {
            let permit = match first.take() {
                Some(p) => p,
                None => match inflight.clone().try_acquire_owned() {
                    Ok(p) => p,
                    // Cannot happen (we claimed no more than the free permits), but never block
                    // here while holding claims.
                    Err(_) => match inflight.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                },
            };
            let done = done.clone();
            let lane = lanes.get(&c.channel).cloned();
            let allowed = allowed.clone();
            let unresolved = unresolved.clone();
            tasks.spawn(async move {
                let (attempt, provider) =
                    attempt(&c, lane, &unresolved, drills_unknown, &allowed, start_by).await;
                let _ = done.send(Done {
                    claimed: c,
                    attempt,
                    provider,
                    _permit: permit,
                });
            });
        }
    }
    // Let the sends in flight finish; the recorder ends when the last of them reports.
    while tasks.join_next().await.is_some() {}
    debug!("dispatcher stopped claiming");
}

/// Try one claimed delivery: what came of it, and the provider that was asked. A notice that
/// could not be resolved, a drill whose list could not be read, or a channel not configured
/// never reaches a channel; otherwise the channel's slot and rate token are waited for at most
/// until `start_by` (half the lease), so a claim does not run out while its send is queued.
async fn attempt(
    c: &Claimed,
    lane: Option<Lane>,
    unresolved: &HashMap<i64, notices::Unresolved>,
    drills_unknown: bool,
    allowed: &DrillAllowList,
    start_by: chrono::DateTime<Utc>,
) -> (Attempt, String) {
    match lane {
        _ if unresolved.contains_key(&c.id) => {
            use notices::Unresolved as U;
            let a = match &unresolved[&c.id] {
                U::Retry(m) => Attempt::Released(m.clone()),
                U::Transient(m) => Attempt::Failed(SendError::Transient(m.clone())),
                U::Permanent(m) => Attempt::Failed(SendError::Permanent(m.clone())),
            };
            (a, "none".to_string())
        }
        _ if drills_unknown && c.drill => (
            Attempt::Released("the drill's recipient list could not be read".into()),
            "none".to_string(),
        ),
        None => (
            Attempt::Failed(SendError::Permanent(format!(
                "the {} channel is not configured: add [channels.{}] to the configuration",
                c.channel, c.channel
            ))),
            "none".to_string(),
        ),
        Some(Lane {
            channel,
            concurrency: sem,
            rate,
        }) => {
            // Wait for the channel (its concurrency slot, then a rate token) at most
            // until half the lease: a claim must not run out while its send is
            // still queued, or it would be claimed and sent again.
            let wait = async {
                let slot = sem.acquire_owned().await;
                if let Some(r) = rate {
                    r.until_ready().await;
                }
                slot
            };
            let deadline = (start_by - Utc::now()).to_std().unwrap_or_default();
            let a = match tokio::time::timeout(deadline, wait).await {
                Ok(_slot) => {
                    let started = Instant::now();
                    let a = guarded_send(channel.as_ref(), c, allowed).await;
                    metrics::histogram!(
                        "incidentd_delivery_send_seconds",
                        "channel" => c.channel.as_str(),
                        "provider" => channel.provider().to_string()
                    )
                    .record(started.elapsed().as_secs_f64());
                    a
                }
                Err(_) => Attempt::Released(format!(
                    "waited half its lease for the {} channel (concurrency or rate limit)",
                    c.channel
                )),
            };
            (a, channel.provider().to_string())
        }
    }
}

/// The drill allow-lists of the claimed drill deliveries, and whether they could not be read
/// (without its list nothing of a drill may go out: those claims are given back).
async fn drill_lists(store: &Store, claimed: &[Claimed]) -> (Arc<DrillAllowList>, bool) {
    let drills: Vec<i64> = claimed
        .iter()
        .filter(|c| c.drill)
        .filter_map(|c| c.incident_id)
        .collect();
    // Without its list nothing of a drill may go out: those claims are given back.
    if drills.is_empty() {
        (Arc::new(DrillAllowList::new()), false)
    } else {
        match store.drill_allowed(&drills).await {
            Ok(a) => (Arc::new(a), false),
            Err(e) => {
                warn!(error = %e, "cannot read drill allow-lists; giving this batch's drill deliveries back");
                (Arc::new(DrillAllowList::new()), true)
            }
        }
    }
}

async fn claim(
    store: &Store,
    now: i64,
    lease_until: i64,
    n: i64,
    max_attempts: u32,
) -> crate::store::Result<Vec<Claimed>> {
    let mut tx = store.begin_claim().await?;
    let c = tx
        .claim_deliveries(
            now,
            lease_until,
            n,
            max_attempts.min(i32::MAX as u32) as i32,
        )
        .await?;
    tx.commit().await?;
    Ok(c)
}

async fn record_loop(store: Store, cfg: DispatchConfig, mut done: mpsc::UnboundedReceiver<Done>) {
    let mut batch = Vec::new();
    while done.recv_many(&mut batch, 1024).await > 0 {
        // Until it is recorded, a batch holds its in-flight permits, which holds the claimer
        // back: retry (with a capped backoff) rather than drop outcomes that would make every
        // one of these deliveries go out again.
        let mut wait = Duration::from_millis(100);
        while let Err(e) = record::record(&store, &cfg, &batch).await {
            warn!(error = %e, deliveries = batch.len(), retry_in = ?wait, "cannot record delivery outcomes; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        batch.clear();
    }
    info!("dispatcher stopped");
}

#[cfg(test)]
mod tests;
