//! Alert ingestion with group commit.
//!
//! Request handlers normalise and classify alerts on their own threads ([`prepare`]), then hand
//! them to the one writer task. The writer takes everything queued (up to a limit) and commits
//! it in a single transaction, then answers every request. Under load many requests share one
//! commit (and one fsync); when idle a request commits alone, at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{EngineError, Reclassified, classify_incident, reclassify};
use crate::config::IngestConfig;
use crate::domain::alert::{AlertStatus, NewAlert};
use crate::domain::audit::{AlertContent, alert_hash};
use crate::domain::classify::{Classification, Rules, Subject};
use crate::domain::facts::Facts;
use crate::domain::incident::{Category, Severity, Status};
use crate::domain::records::{AlertDetail, Incident};
use crate::domain::time::to_micros;
use crate::store::{AlertInsert, NewAlertRow, NewEvent, Store, StoreError};

/// An alert normalised, classified and hashed, waiting for the writer.
#[derive(Debug, Clone)]
pub struct PreparedAlert {
    pub row: NewAlertRow,
    pub status: AlertStatus,
    pub classification: Option<Classification>,
    pub facts: Facts,
    pub description: String,
    pub occurred_at: DateTime<Utc>,
    pub truncated_alerts: u64,
    /// The alert's labels (silences match on them).
    pub labels: BTreeMap<String, String>,
    /// The heartbeats this alert keeps alive (set by the API from the live configuration).
    pub heartbeats: Vec<Arc<crate::domain::heartbeat::Heartbeat>>,
}

/// What became of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// It opened a new incident.
    Opened,
    /// It joined an open incident.
    Joined,
    /// It was already recorded (a re-send, or another Alertmanager peer's copy).
    Duplicate,
    /// Recorded, but it matched no incident rule and no open incident.
    Recorded,
    /// Recorded and marked silenced by a silence: it opened and joined nothing, paged nobody.
    Silenced,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Opened => "opened",
            Disposition::Joined => "joined",
            Disposition::Duplicate => "duplicate",
            Disposition::Recorded => "recorded",
            Disposition::Silenced => "silenced",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    pub alert_id: i64,
    pub incident_id: Option<i64>,
    pub disposition: Disposition,
}

/// Normalise, classify and hash one alert. Pure CPU work, done on the request's thread.
pub fn prepare(a: NewAlert, rules: &Rules, received_at: DateTime<Utc>) -> PreparedAlert {
    let mut facts = a.facts.clone();
    facts.absorb(&rules.extract_facts(&a.labels, &a.annotations));
    let text = a.text();
    let classification = rules.classify(&Subject {
        source: &a.source,
        text: &text,
        labels: &a.labels,
        annotations: &a.annotations,
        facts: &facts,
    });
    let group_key = match &classification {
        Some(c) => a.group_key(&c.group_by),
        None => a.group_key(rules.default_group_by()),
    };
    let dedup_key = a.dedup_key();
    let truncated_alerts = a.origin.truncated_alerts;
    let detail = AlertDetail {
        description: a.description.clone(),
        labels: a.labels,
        annotations: a.annotations,
        origin: a.origin,
        facts: facts.clone(),
    };
    let mut row = NewAlertRow {
        dedup_key,
        source: a.source,
        status: a.status.as_str(),
        fingerprint: a.fingerprint,
        group_key,
        title: a.title,
        detail: serde_json::to_string(&detail).unwrap_or_default(),
        occurred_at: to_micros(a.occurred_at),
        ends_at: a.ends_at.map(to_micros),
        received_at: to_micros(received_at),
        category: classification.as_ref().map(|c| c.category.as_str()),
        severity: classification.as_ref().map(|c| c.severity.as_str()),
        rule: classification.as_ref().map(|c| c.rule.clone()),
        hash: String::new(),
    };
    row.hash = alert_hash(content(&row));
    PreparedAlert {
        row,
        status: a.status,
        classification,
        facts,
        description: a.description,
        occurred_at: a.occurred_at,
        truncated_alerts,
        labels: detail.labels,
        heartbeats: Vec::new(),
    }
}

fn content(r: &NewAlertRow) -> AlertContent<'_> {
    AlertContent {
        dedup_key: &r.dedup_key,
        source: &r.source,
        status: r.status,
        fingerprint: &r.fingerprint,
        group_key: &r.group_key,
        title: &r.title,
        detail: &r.detail,
        occurred_at: r.occurred_at,
        ends_at: r.ends_at,
        received_at: r.received_at,
        category: r.category,
        severity: r.severity,
        rule: r.rule.as_deref(),
    }
}

struct Job {
    alerts: Vec<PreparedAlert>,
    actor: String,
    rules: Arc<Rules>,
    /// Playbooks are configured: new incidents (and severity raises) get a playbook timer.
    respond: bool,
    /// Jurisdiction packs are loaded: new and changed incidents get an obligations timer.
    regulate: bool,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, StoreError>>,
}

/// The handle request handlers use to reach the writer.
#[derive(Clone)]
pub struct IngestQueue {
    tx: mpsc::Sender<Job>,
}

impl IngestQueue {
    /// Start the writer task. It ends once every queue handle is dropped and the queue drained.
    pub fn start(store: Store, cfg: &IngestConfig) -> (IngestQueue, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let handle = tokio::spawn(writer(store, rx, cfg.max_batch_alerts));
        (IngestQueue { tx }, handle)
    }

    /// Commit alerts; returns once they are durable. A full queue is refused at once (503) so
    /// that senders back off instead of piling up.
    pub async fn submit(
        &self,
        alerts: Vec<PreparedAlert>,
        actor: String,
        rules: Arc<Rules>,
        respond: bool,
        regulate: bool,
    ) -> Result<Vec<IngestOutcome>, EngineError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            alerts,
            actor,
            rules,
            respond,
            regulate,
            reply,
        };
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Unavailable(
                "too many alerts are waiting to be written; retry shortly".into(),
            ),
            mpsc::error::TrySendError::Closed(_) => {
                EngineError::Unavailable("incidentd is shutting down; retry shortly".into())
            }
        })?;
        match rx.await {
            Ok(r) => r.map_err(EngineError::from),
            Err(_) => Err(EngineError::Unavailable(
                "the writer stopped before committing; retry".into(),
            )),
        }
    }

    /// Jobs waiting for the writer (for metrics).
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    while let Some(first) = rx.recv().await {
        let mut n = first.alerts.len();
        let mut jobs = vec![first];
        while n < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.alerts.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        commit_jobs(&store, jobs).await;
    }
    debug!("ingest writer drained and stopped");
}

/// Commit jobs together; if that fails for a reason other than a busy store, retry each job
/// on its own so one bad request cannot fail its neighbours.
async fn commit_jobs(store: &Store, jobs: Vec<Job>) {
    let started = Instant::now();
    let alerts: usize = jobs.iter().map(|j| j.alerts.len()).sum();
    match apply(store, &jobs, Utc::now()).await {
        Ok(outcomes) => {
            metrics::histogram!("incidentd_ingest_commit_seconds").record(started.elapsed());
            metrics::histogram!("incidentd_ingest_batch_alerts").record(alerts as f64);
            for (job, out) in jobs.into_iter().zip(outcomes) {
                record_metrics(&job, &out);
                let _ = job.reply.send(Ok(out));
            }
        }
        Err(StoreError::Failed(e)) if jobs.len() > 1 => {
            warn!(error = %e, jobs = jobs.len(), "group commit failed; committing requests one by one");
            for job in jobs {
                let r = apply(store, std::slice::from_ref(&job), Utc::now())
                    .await
                    .map(|mut o| o.pop().unwrap_or_default());
                if let Ok(out) = &r {
                    record_metrics(&job, out);
                }
                let _ = job.reply.send(r);
            }
        }
        Err(e) => {
            warn!(error = %e, jobs = jobs.len(), alerts, "ingest commit failed");
            let msg = e.to_string();
            let transient = matches!(e, StoreError::Unavailable(_));
            for job in jobs {
                metrics::counter!("incidentd_alerts_received_total", "source" => "any", "outcome" => "failed")
                    .increment(job.alerts.len() as u64);
                let err = if transient {
                    StoreError::Unavailable(msg.clone())
                } else {
                    StoreError::Failed(msg.clone())
                };
                let _ = job.reply.send(Err(err));
            }
        }
    }
}

fn record_metrics(job: &Job, out: &[IngestOutcome]) {
    let mut counts: HashMap<(&str, &'static str), u64> = HashMap::new();
    for (a, o) in job.alerts.iter().zip(out) {
        *counts
            .entry((&a.row.source, o.disposition.as_str()))
            .or_default() += 1;
    }
    for ((source, outcome), n) in counts {
        metrics::counter!(
            "incidentd_alerts_received_total",
            "source" => crate::telemetry::source_label(source),
            "outcome" => outcome
        )
        .increment(n);
    }
}

/// Alerts that joined one incident in this batch, by actor (one timeline event each).
#[derive(Default)]
struct Joined<'a> {
    by_actor: BTreeMap<&'a str, Vec<AlertItem<'a>>>,
    truncated: u64,
}

/// An alert as the audit events name it.
#[derive(Serialize, Clone, Copy)]
struct AlertItem<'a> {
    id: i64,
    hash: &'a str,
    status: &'a str,
    title: &'a str,
}

/// One transaction for a whole batch. See the module docs.
async fn apply(
    store: &Store,
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<Vec<Vec<IngestOutcome>>, StoreError> {
    let rules = jobs[0].rules.clone();
    let mut phases = Phases::start();
    let mut tx = store.begin_write().await?;
    let mut outcomes: Vec<Vec<IngestOutcome>> = jobs
        .iter()
        .map(|j| Vec::with_capacity(j.alerts.len()))
        .collect();

    // Duplicates: against the store, and within the batch (the first copy wins).
    let keys: Vec<&str> = all(jobs).map(|(_, a)| a.row.dedup_key.as_str()).collect();
    let existing = tx.existing_alerts(&keys).await?;
    let open_keys: Vec<&str> = {
        let mut ks: Vec<&str> = all(jobs).map(|(_, a)| a.row.group_key.as_str()).collect();
        ks.sort_unstable();
        ks.dedup();
        ks
    };
    let open = tx.open_incidents_by_key(&open_keys).await?;

    let (max_alert, max_incident) = tx.max_ids().await?;
    // Silences (issue #15 part 5): those active now; matching new alerts are silenced.
    let mut silences = super::silences::SilenceCheck::load(&mut tx, now).await?;
    phases.lap("lookup");
    let mut next_alert = max_alert + 1;
    let mut next_incident = max_incident + 1;
    let mut first_copy: HashMap<&str, IngestOutcome> = HashMap::new();
    let mut new_incidents: Vec<Incident> = Vec::new();
    let mut new_by_key: HashMap<&str, usize> = HashMap::new();
    let mut opened_by: Vec<&str> = Vec::new();
    let mut joined: BTreeMap<i64, Joined<'_>> = BTreeMap::new();
    let mut members: BTreeMap<i64, Vec<&PreparedAlert>> = BTreeMap::new();
    let mut unmatched: BTreeMap<&str, Vec<AlertItem<'_>>> = BTreeMap::new();
    let mut rows: Vec<AlertInsert<'_>> = Vec::new();

    for (job_index, job) in jobs.iter().enumerate() {
        for a in &job.alerts {
            let key = a.row.dedup_key.as_str();
            if let Some(&(id, incident_id)) = existing.get(key) {
                outcomes[job_index].push(IngestOutcome {
                    alert_id: id,
                    incident_id,
                    disposition: Disposition::Duplicate,
                });
                continue;
            }
            if let Some(first) = first_copy.get(key) {
                outcomes[job_index].push(IngestOutcome {
                    disposition: Disposition::Duplicate,
                    ..*first
                });
                continue;
            }
            let id = next_alert;
            next_alert += 1;
            let gk = a.row.group_key.as_str();
            let firing = a.status == AlertStatus::Firing;
            // Silences: a silenced alert opens and joins nothing (never a PI one, see silences.rs).
            let hit = silences.check(a);
            let (incident_id, disposition) = if hit.silence().is_some() {
                (None, Disposition::Silenced)
            } else if let Some(&iid) = open.get(gk) {
                (Some(iid), Disposition::Joined)
            } else if let Some(&ni) = new_by_key.get(gk) {
                (Some(new_incidents[ni].id), Disposition::Joined)
            } else if firing && a.classification.as_ref().is_some_and(|c| c.opens_incident) {
                let iid = next_incident;
                next_incident += 1;
                new_by_key.insert(gk, new_incidents.len());
                new_incidents.push(open_incident(iid, a, &job.actor, now));
                opened_by.push(job.actor.as_str());
                (Some(iid), Disposition::Opened)
            } else {
                (None, Disposition::Recorded)
            };
            let item = AlertItem {
                id,
                hash: &a.row.hash,
                status: a.row.status,
                title: &a.row.title,
            };
            match incident_id {
                Some(iid) => {
                    let j = joined.entry(iid).or_default();
                    j.by_actor.entry(job.actor.as_str()).or_default().push(item);
                    j.truncated = j.truncated.max(a.truncated_alerts);
                    members.entry(iid).or_default().push(a);
                }
                None if hit.silence().is_some() => {}
                None => unmatched.entry(job.actor.as_str()).or_default().push(item),
            }
            silences.record(hit, &job.actor, id, a, incident_id, now);
            let outcome = IngestOutcome {
                alert_id: id,
                incident_id,
                disposition,
            };
            first_copy.insert(key, outcome);
            outcomes[job_index].push(outcome);
            rows.push(AlertInsert {
                id,
                incident_id,
                silence_id: hit.silence(),
                row: &a.row,
            });
        }
    }

    let mut events = Vec::new();
    // New incidents: the opening alert, then every other alert of this batch that joined it.
    let new_ids: std::collections::HashSet<i64> = new_incidents.iter().map(|i| i.id).collect();
    for (inc, actor) in new_incidents.iter_mut().zip(&opened_by) {
        let group = members.remove(&inc.id).unwrap_or_default();
        let changes = absorb(inc, &group[1..], &rules, now);
        let j = joined.remove(&inc.id).unwrap_or_default();
        inc.truncated_alerts = j.truncated as i64;
        events.push(opened_event(inc, actor, &j, now));
        push_join_events(&mut events, inc.id, j, Some(actor), now);
        push_change_events(&mut events, inc, changes, now);
    }
    // Open incidents that collected alerts.
    let ids: Vec<i64> = members
        .keys()
        .copied()
        .filter(|i| !new_ids.contains(i))
        .collect();
    let mut current = if ids.is_empty() {
        Vec::new()
    } else {
        tx.incidents(&ids).await?
    };
    let respond = jobs.iter().any(|j| j.respond);
    let mut timers: Vec<crate::store::NewTimer> = if respond {
        new_incidents
            .iter()
            .map(|i| super::response::playbook_timer(i, now))
            .collect()
    } else {
        Vec::new()
    };
    let regulate = jobs.iter().any(|j| j.regulate);
    if regulate {
        timers.extend(
            new_incidents
                .iter()
                .map(|i| super::obligations::recompute_timer(i.id, now)),
        );
    }
    for inc in &mut current {
        let group = members.remove(&inc.id).unwrap_or_default();
        let before = (inc.category, inc.severity);
        let facts_version = inc.facts_version;
        let changes = absorb(inc, &group, &rules, now);
        if respond && (inc.category, inc.severity) != before {
            timers.push(super::response::playbook_timer(inc, now));
        }
        if regulate
            && ((inc.category, inc.severity) != before || inc.facts_version != facts_version)
        {
            timers.push(super::obligations::recompute_timer(inc.id, now));
        }
        let j = joined.remove(&inc.id).unwrap_or_default();
        inc.truncated_alerts = inc.truncated_alerts.max(j.truncated as i64);
        inc.updated_at = now;
        push_join_events(&mut events, inc.id, j, None, now);
        push_change_events(&mut events, inc, changes, now);
        tx.update_incident(inc).await?;
    }
    for (actor, items) in unmatched {
        events.push(NewEvent::new(
            now,
            actor,
            "alerts.recorded",
            None,
            &AlertsData {
                alerts: &items,
                truncated_alerts: None,
            },
        ));
    }

    // Silences: `alerts.silenced` per actor, `silence.overridden` per PI alert a silence matched.
    events.extend(silences.events(now));
    // Heartbeats (issue #15 part 4): every firing alert that keeps one alive counts, duplicates
    // (Alertmanager's re-sends) included.
    events.extend(super::heartbeats::signalled(&mut tx, all(jobs).map(|(_, a)| a), now).await?);

    phases.lap("plan");
    tx.insert_incidents(&new_incidents).await?;
    let keys: Vec<(&str, i64)> = new_by_key
        .iter()
        .map(|(k, &i)| (*k, new_incidents[i].id))
        .collect();
    tx.insert_incident_keys(&keys).await?;
    tx.insert_alerts(&rows).await?;
    tx.schedule_timers(&timers, crate::domain::time::to_micros(now))
        .await?;
    tx.append(&events).await?;
    phases.lap("write");
    tx.commit().await?;
    phases.lap("commit");
    phases.record();
    Ok(outcomes)
}

/// Where a group commit's time went, for `incidentd_ingest_phase_seconds{phase}`: `lookup`
/// (the write lock, dedup and open-incident lookups), `plan` (grouping, building incident rows
/// and audit events, reading and updating the open incidents that alerts joined), `write` (the
/// inserts and the audit chain), `commit` (the WAL write and fsync, or PostgreSQL's commit).
/// Recorded only for commits that succeed.
struct Phases {
    at: Instant,
    laps: [(&'static str, std::time::Duration); 4],
    n: usize,
}

impl Phases {
    fn start() -> Self {
        Phases {
            at: Instant::now(),
            laps: [("", std::time::Duration::ZERO); 4],
            n: 0,
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        if let Some(slot) = self.laps.get_mut(self.n) {
            *slot = (phase, now - self.at);
            self.n += 1;
        }
        self.at = now;
    }

    fn record(&self) {
        for (phase, took) in &self.laps[..self.n] {
            metrics::histogram!("incidentd_ingest_phase_seconds", "phase" => *phase).record(*took);
        }
    }
}

fn all(jobs: &[Job]) -> impl Iterator<Item = (&Job, &PreparedAlert)> {
    jobs.iter()
        .flat_map(|j| j.alerts.iter().map(move |a| (j, a)))
}

fn open_incident(id: i64, a: &PreparedAlert, actor: &str, now: DateTime<Utc>) -> Incident {
    let c = a
        .classification
        .as_ref()
        .expect("only classified alerts open incidents");
    let first_seen = a.occurred_at.min(now);
    Incident {
        id,
        title: a.row.title.clone(),
        summary: a.description.clone(),
        category: c.category,
        severity: c.severity,
        status: Status::Detected,
        drill: false,
        origin: "alert".into(),
        rule: Some(c.rule.clone()),
        facts: a.facts.clone(),
        facts_version: 1,
        first_seen_at: first_seen,
        discovered_at: first_seen,
        declared_at: Some(now),
        aware_at: c.category.is_personal_information().then_some(now),
        contained_at: None,
        closed_at: None,
        updated_at: now,
        alert_count: 1,
        truncated_alerts: 0,
        assessed_notifiable_at: None,
        handling_closed_at: None,
        created_by: actor.to_string(),
    }
}

/// What absorbing alerts changed on an incident.
#[derive(Default)]
struct Changes {
    reclassified: Vec<Reclassified>,
    facts_changed: bool,
}

/// Fold alerts into an incident: count, earliest sighting, facts, raise-only re-classification
/// (from each firing alert, then from the incident's facts if they changed).
fn absorb(
    inc: &mut Incident,
    alerts: &[&PreparedAlert],
    rules: &Rules,
    now: DateTime<Utc>,
) -> Changes {
    let mut ch = Changes::default();
    for a in alerts {
        inc.alert_count += 1;
        if a.status != AlertStatus::Firing {
            continue;
        }
        inc.first_seen_at = inc.first_seen_at.min(a.occurred_at.min(now));
        ch.facts_changed |= inc.facts.absorb(&a.facts);
        if let Some(c) = &a.classification
            && let Some(r) = reclassify(inc, (c.category, c.severity), Some(&c.rule), now)
        {
            ch.reclassified.push(r);
        }
    }
    if ch.facts_changed {
        inc.facts_version += 1;
        if let Some(c) = classify_incident(rules, inc)
            && let Some(r) = reclassify(inc, (c.category, c.severity), Some(&c.rule), now)
        {
            ch.reclassified.push(r);
        }
    }
    ch
}

/// `alerts.received` / `alerts.recorded` data.
#[derive(Serialize)]
struct AlertsData<'a> {
    alerts: &'a [AlertItem<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated_alerts: Option<u64>,
}

fn opened_event(inc: &Incident, actor: &str, j: &Joined<'_>, now: DateTime<Utc>) -> NewEvent {
    #[derive(Serialize)]
    struct Opened<'a> {
        title: &'a str,
        category: Category,
        severity: Severity,
        status: Status,
        rule: Option<&'a str>,
        origin: &'a str,
        drill: bool,
        facts: &'a Facts,
        alerts: &'a [AlertItem<'a>],
    }
    let alerts = j.by_actor.get(actor).map(Vec::as_slice).unwrap_or_default();
    NewEvent::new(
        now,
        actor,
        "incident.opened",
        Some(inc.id),
        &Opened {
            title: &inc.title,
            category: inc.category,
            severity: inc.severity,
            status: inc.status,
            rule: inc.rule.as_deref(),
            origin: &inc.origin,
            drill: inc.drill,
            facts: &inc.facts,
            alerts,
        },
    )
}

/// `alerts.received` per actor; `skip` is the actor whose alerts the opening event carries.
fn push_join_events(
    events: &mut Vec<NewEvent>,
    incident_id: i64,
    j: Joined<'_>,
    skip: Option<&str>,
    now: DateTime<Utc>,
) {
    for (actor, items) in &j.by_actor {
        if Some(*actor) == skip {
            continue;
        }
        events.push(NewEvent::new(
            now,
            *actor,
            "alerts.received",
            Some(incident_id),
            &AlertsData {
                alerts: items,
                truncated_alerts: (j.truncated > 0).then_some(j.truncated),
            },
        ));
    }
}

fn push_change_events(events: &mut Vec<NewEvent>, inc: &Incident, ch: Changes, now: DateTime<Utc>) {
    if ch.facts_changed {
        events.push(NewEvent::new(
            now,
            "incidentd",
            "incident.facts_updated",
            Some(inc.id),
            &json!({ "version": inc.facts_version, "facts": inc.facts, "source": "alerts" }),
        ));
    }
    for r in ch.reclassified {
        events.push(reclassified_event(inc.id, &r, "incidentd", None, now));
    }
}

pub(super) fn reclassified_event(
    incident_id: i64,
    r: &Reclassified,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> NewEvent {
    NewEvent::new(
        now,
        actor,
        "incident.reclassified",
        Some(incident_id),
        &json!({
            "from": { "category": r.from.0, "severity": r.from.1 },
            "to": { "category": r.to.0, "severity": r.to.1 },
            "rule": r.rule,
            "automatic": reason.is_none(),
            "reason": reason,
        }),
    )
}
