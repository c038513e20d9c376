//! Recording a batch of attempts: one write transaction per batch (group commit) that ends or
//! reschedules each delivery and does, in that same transaction, everything an outcome sets
//! off — the next channel's fallback, the pages a digest held, the `page.dead` escalation,
//! campaign progress, the checks of obligations met by outcomes, and one audit event per
//! incident.

use super::*;
use crate::store::{ProgressBump, ResolvedHeld, WriteTx};

/// One attempt the store took, with its outcome.
type Ended<'b> = (&'b Done, &'b Outcome);

pub(super) async fn record(
    store: &Store,
    cfg: &DispatchConfig,
    batch: &[Done],
) -> crate::store::Result<()> {
    let now = Utc::now();
    let now_us = to_micros(now);
    let released: Vec<(i64, i32)> = batch
        .iter()
        .filter(|d| matches!(d.attempt, Attempt::Released(_)))
        .map(|d| (d.claimed.id, d.claimed.attempts))
        .collect();
    let (attempted, outcomes): (Vec<&Done>, Vec<Outcome>) = batch
        .iter()
        .filter_map(|d| outcome(cfg, d, now).map(|o| (d, o)))
        .unzip();
    let mut tx = store.begin_write().await?;
    tx.release_claims(&released, now_us).await?;
    let applied = tx.record_outcomes(&outcomes, now_us).await?;
    // Only the outcomes the store took: a claim whose lease passed to another instance is not
    // ours to end.
    let ended: Vec<Ended<'_>> = attempted
        .iter()
        .copied()
        .zip(&outcomes)
        .filter(|(_, o)| applied.contains(&(o.id, o.attempts)))
        .collect();
    let fallbacks = fallbacks(&ended);
    let fallback_ids = tx.enqueue_deliveries(&fallbacks, now_us).await?;
    let digests = resolve_digests(&mut tx, &ended, now_us).await?;
    tx.schedule_dead_pages(&digests.dead_keys, now_us).await?;
    let bumps = campaign_progress(&ended, &fallbacks);
    tx.bump_campaign_progress(&bumps).await?;
    let checks = outcome_checks(&mut tx, &ended, &bumps, now_us).await?;
    tx.schedule_timers(&checks, now_us).await?;
    let events = audit_events(now, &ended, &digests.resolved, &fallbacks, &fallback_ids);
    tx.append(&events).await?;
    tx.commit().await?;
    count(&ended, &digests.sent);
    Ok(())
}

/// How one attempt ends: sent, dead (refused, permanent, or out of attempts) or failed with
/// its next try after a backoff. None for a claim released unattempted.
fn outcome(cfg: &DispatchConfig, d: &Done, now: chrono::DateTime<Utc>) -> Option<Outcome> {
    let now_us = to_micros(now);
    let c = &d.claimed;
    let (status, next, error) = match &d.attempt {
        Attempt::Released(_) => return None,
        Attempt::Sent(_) => (DeliveryStatus::Sent, now_us, None),
        Attempt::Refused(m) => (DeliveryStatus::Dead, now_us, Some(m.clone())),
        Attempt::Failed(SendError::Permanent(m)) => (DeliveryStatus::Dead, now_us, Some(m.clone())),
        Attempt::Failed(e) => {
            if c.attempts as u32 >= cfg.max_attempts {
                (
                    DeliveryStatus::Dead,
                    now_us,
                    Some(format!("{e} (gave up after {} attempts)", c.attempts)),
                )
            } else {
                let at = now + backoff(cfg, c.attempts);
                (DeliveryStatus::Failed, to_micros(at), Some(e.to_string()))
            }
        }
    };
    Some(Outcome {
        id: c.id,
        attempts: c.attempts,
        status,
        next,
        sent_at: matches!(d.attempt, Attempt::Sent(_)).then_some(now_us),
        provider: Some(d.provider.clone()),
        mid: match &d.attempt {
            Attempt::Sent(s) => s.provider_message_id.clone(),
            _ => None,
        },
        error,
    })
}

/// A delivery that died (not one the drill guard refused) hands over to the next channel it
/// names.
fn fallbacks(ended: &[Ended<'_>]) -> Vec<NewDelivery> {
    let mut fallbacks = Vec::new();
    for (d, o) in ended {
        if o.status != DeliveryStatus::Dead || matches!(d.attempt, Attempt::Refused(_)) {
            continue;
        }
        let c = &d.claimed;
        if let Some((next, rest)) = c.fallback.split_first() {
            fallbacks.push(NewDelivery {
                idempotency_key: format!("{}>{}", c.idempotency_key, next.channel),
                incident_id: c.incident_id,
                purpose: c.purpose,
                channel: next.channel,
                recipient: next.recipient.clone(),
                locale: c.locale.clone(),
                content: next.content.clone(),
                fallback: rest.to_vec(),
                fallback_of: Some(c.id),
            });
        }
    }
    fallbacks
}

/// What the digests in a batch settled.
struct Digests {
    /// The pages each ended digest held, with the digest and its outcome.
    resolved: Vec<(ResolvedHeld, i64, DeliveryStatus)>,
    /// Each ended digest: its channel, its outcome and how many pages it held (for metrics).
    sent: Vec<(ChannelKind, DeliveryStatus, usize)>,
    /// The pages (direct or held in a digest) now dead, which may escalate.
    dead_keys: Vec<String>,
}

/// The pages a digest holds share its final outcome. Pages that are now dead on every channel
/// escalate (a `page.dead` timer, scheduled by the caller); drill-guard refusals do not.
async fn resolve_digests(
    tx: &mut WriteTx,
    ended: &[Ended<'_>],
    now_us: i64,
) -> crate::store::Result<Digests> {
    let mut out = Digests {
        resolved: Vec::new(),
        sent: Vec::new(),
        dead_keys: Vec::new(),
    };
    for (d, o) in ended {
        let key = &d.claimed.idempotency_key;
        if o.status == DeliveryStatus::Dead && !matches!(d.attempt, Attempt::Refused(_)) {
            out.dead_keys.push(key.clone());
        }
        if !key.starts_with(crate::store::DIGEST_KEY_PREFIX)
            || !matches!(o.status, DeliveryStatus::Sent | DeliveryStatus::Dead)
        {
            continue;
        }
        let why = (o.status == DeliveryStatus::Dead).then(|| {
            format!(
                "coalesced into digest #{}, which died: {}",
                o.id,
                o.error.as_deref().unwrap_or("")
            )
        });
        let rows = tx
            .resolve_held(
                o.id,
                o.status,
                o.sent_at,
                o.provider.as_deref(),
                o.mid.as_deref(),
                why.as_deref(),
                now_us,
            )
            .await?;
        out.sent.push((d.claimed.channel, o.status, rows.len()));
        for r in rows {
            if o.status == DeliveryStatus::Dead {
                out.dead_keys.push(r.idempotency_key.clone());
            }
            out.resolved.push((r, o.id, o.status));
        }
    }
    Ok(out)
}

/// Notice campaigns' progress counters: each ended delivery and each fallback enqueued, per
/// campaign and channel.
fn campaign_progress(ended: &[Ended<'_>], fallbacks: &[NewDelivery]) -> Vec<ProgressBump> {
    let mut bumps: BTreeMap<(i64, ChannelKind), ProgressBump> = BTreeMap::new();
    fn bump<'m>(
        bumps: &'m mut BTreeMap<(i64, ChannelKind), ProgressBump>,
        key: &str,
        channel: ChannelKind,
    ) -> Option<&'m mut ProgressBump> {
        let cid = crate::store::campaign_of_key(key)?;
        Some(bumps.entry((cid, channel)).or_insert_with(|| ProgressBump {
            campaign_id: cid,
            channel: channel.as_str().to_string(),
            ..Default::default()
        }))
    }
    for (d, o) in ended {
        if let Some(b) = bump(&mut bumps, &d.claimed.idempotency_key, d.claimed.channel) {
            match o.status {
                DeliveryStatus::Sent => b.sent += 1,
                DeliveryStatus::Dead => b.dead += 1,
                _ => b.failed += 1,
            }
        }
    }
    for f in fallbacks {
        if let Some(b) = bump(&mut bumps, &f.idempotency_key, f.channel) {
            b.enqueued += 1;
        }
    }
    bumps.into_values().collect()
}

/// Obligations are met by outcomes: a report's submission accepted or dead, a campaign's
/// deliveries all ended ([`crate::engine::outcomes`]). The timers that check them.
async fn outcome_checks(
    tx: &mut WriteTx,
    ended: &[Ended<'_>],
    bumps: &[ProgressBump],
    now_us: i64,
) -> crate::store::Result<Vec<crate::store::NewTimer>> {
    let mut checks = Vec::new();
    for (d, o) in ended {
        if matches!(o.status, DeliveryStatus::Sent | DeliveryStatus::Dead)
            && d.claimed.purpose == crate::domain::message::Purpose::Report
            && let Some(incident) = d.claimed.incident_id
        {
            checks.push(crate::engine::outcomes::report_outcome_timer(
                incident,
                o.id,
                &d.claimed.idempotency_key,
                o.status.as_str(),
                now_us,
            ));
        }
    }
    let mut settled: Vec<i64> = bumps
        .iter()
        .filter(|b| b.sent + b.dead > 0)
        .map(|b| b.campaign_id)
        .collect();
    settled.dedup();
    for (campaign, incident) in tx.settled_campaigns(&settled).await? {
        checks.push(crate::engine::outcomes::notices_timer(
            incident, campaign, now_us,
        ));
    }
    Ok(checks)
}

/// One audit event per incident: what was sent, what failed, what died and why, what went out
/// in a digest and which fallbacks were enqueued.
fn audit_events(
    now: chrono::DateTime<Utc>,
    ended: &[Ended<'_>],
    resolved: &[(ResolvedHeld, i64, DeliveryStatus)],
    fallbacks: &[NewDelivery],
    fallback_ids: &[i64],
) -> Vec<NewEvent> {
    let mut per_incident: BTreeMap<Option<i64>, Recorded> = BTreeMap::new();
    for (d, o) in ended {
        let e = per_incident.entry(d.claimed.incident_id).or_default();
        let failure = || json!({"id": o.id, "channel": d.claimed.channel, "error": o.error});
        match o.status {
            DeliveryStatus::Sent => e.sent.push(o.id),
            DeliveryStatus::Dead => e.dead.push(failure()),
            _ => e.failed.push(failure()),
        }
    }
    for (r, digest, status) in resolved {
        per_incident
            .entry(r.incident_id)
            .or_default()
            .coalesced
            .push(json!({"id": r.id, "digest": digest, "status": status}));
    }
    for (f, id) in fallbacks.iter().zip(fallback_ids) {
        per_incident
            .entry(f.incident_id)
            .or_default()
            .fallback
            .push(json!({"from": f.fallback_of, "to": id, "channel": f.channel}));
    }
    per_incident
        .into_iter()
        .map(|(incident, r)| NewEvent::new(now, "dispatcher", "deliveries.recorded", incident, &r))
        .collect()
}

/// Metrics and the log line for each dead delivery, once the batch is committed.
fn count(ended: &[Ended<'_>], digests: &[(ChannelKind, DeliveryStatus, usize)]) {
    for (channel, status, pages) in digests {
        metrics::counter!("incidentd_page_digests_total", "channel" => channel.as_str(), "outcome" => status.as_str())
            .increment(1);
        metrics::counter!("incidentd_pages_coalesced_total", "channel" => channel.as_str(), "outcome" => status.as_str())
            .increment(*pages as u64);
    }
    for (d, o) in ended {
        metrics::counter!(
            "incidentd_deliveries_total",
            "channel" => d.claimed.channel.as_str(),
            "provider" => d.provider.clone(),
            "outcome" => o.status.as_str()
        )
        .increment(1);
        if o.status == DeliveryStatus::Dead {
            warn!(
                delivery = o.id,
                incident = d.claimed.incident_id,
                channel = %d.claimed.channel,
                recipient = %mask(d.claimed.channel, &d.claimed.recipient),
                error = o.error.as_deref().unwrap_or(""),
                "delivery is dead"
            );
        }
    }
}
