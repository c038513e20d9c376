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
use crate::domain::string_enum;
use crate::domain::time::to_micros;
use crate::store::{
    AlertInsert, HeldAlert, IncidentAlertRow, IntakeKey, NewAlertRow, NewEvent, NewTimer, Store,
    StoreError, WriteTx, storm_key,
};

/// An alert normalised, classified and hashed, waiting for the writer.
#[derive(Debug, Clone)]
pub struct PreparedAlert {
    pub row: NewAlertRow,
    pub status: AlertStatus,
    /// The rule that matched, or a triage of an unmatched critical alert ([`Rules::triage`]);
    /// `None`: no rule matched and it is only recorded.
    pub classification: Option<Classification>,
    /// The sender's own severity (its label mapped through the rules' `severity_map`).
    pub sender_severity: Option<Severity>,
    /// The alert itself across its notifications (`source|fingerprint`).
    pub alert_key: String,
    pub facts: Facts,
    pub description: String,
    pub occurred_at: DateTime<Utc>,
    pub truncated_alerts: u64,
    /// The alert's labels (silences match on them).
    pub labels: BTreeMap<String, String>,
    /// The heartbeats this alert keeps alive (set by the API from the live configuration).
    pub heartbeats: Vec<Arc<crate::domain::heartbeat::Heartbeat>>,
}

impl PreparedAlert {
    /// The intake bucket storm control counts incidents in: the source and the rule.
    fn bucket(&self) -> Option<String> {
        let c = self.classification.as_ref()?;
        Some(format!("{}|{}", self.row.source, c.rule))
    }

    fn opens(&self) -> bool {
        self.status == AlertStatus::Firing
            && self
                .classification
                .as_ref()
                .is_some_and(|c| c.opens_incident)
    }

    fn resolved(&self) -> bool {
        self.status == AlertStatus::Resolved
    }
}

string_enum! {
    /// What became of one alert.
    Disposition {
        /// It opened a new incident.
        Opened => "opened",
        /// It joined an open incident: the one holding the alert already, or its group's.
        Joined => "joined",
        /// It would have opened an incident, but its source and rule opened too many lately
        /// (`[ingest] storm_incidents` within `storm_window`): it joined their storm incident.
        Folded => "folded",
        /// It was already recorded (a re-send, or another Alertmanager peer's copy).
        Duplicate => "duplicate",
        /// Recorded, but it matched no incident rule and no open incident.
        Recorded => "recorded",
        /// Recorded and marked silenced by a silence: it opened and joined nothing, paged
        /// nobody.
        Silenced => "silenced",
    } what = "a disposition"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    pub alert_id: i64,
    pub incident_id: Option<i64>,
    pub disposition: Disposition,
}

pub use crate::config::StormPolicy;

/// What the writer applies to a request's alerts, from the configuration live when it came.
#[derive(Clone)]
pub struct IngestPolicy {
    pub rules: Arc<Rules>,
    /// Playbooks are configured: new incidents (and severity raises) get a playbook timer.
    pub respond: bool,
    /// Jurisdiction packs are loaded: new and changed incidents get an obligations timer.
    pub regulate: bool,
    pub storm: Option<StormPolicy>,
}

/// Normalise, classify and hash one alert. Pure CPU work, done on the request's thread.
pub fn prepare(a: NewAlert, rules: &Rules, received_at: DateTime<Utc>) -> PreparedAlert {
    let mut facts = a.facts.clone();
    facts.absorb(&rules.extract_facts(&a.labels, &a.annotations));
    let text = a.text();
    let classification = rules
        .classify(&Subject {
            source: &a.source,
            text: &text,
            labels: &a.labels,
            annotations: &a.annotations,
            facts: &facts,
        })
        .or_else(|| rules.triage(&a.labels));
    let group_key = a.group_key(
        classification
            .as_ref()
            .map_or(rules.default_correlation(), |c| &c.correlate),
    );
    let sender_severity = rules.sender_severity(&a.labels);
    let alert_key = a.alert_key();
    let dedup_key = a.dedup_key();
    let truncated_alerts = a.origin.truncated_alerts;
    let detail = AlertDetail {
        description: a.description.clone(),
        labels: a.labels,
        annotations: a.annotations,
        origin: a.origin,
        facts: facts.clone(),
    };
    // What an alert sender writes never becomes public text by itself (L1 of issue #17).
    facts.keep_text_internal();
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
        sender_severity,
        alert_key,
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
    policy: IngestPolicy,
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
        policy: IngestPolicy,
    ) -> Result<Vec<IngestOutcome>, EngineError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            alerts,
            actor,
            policy,
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
    // Alerts no rule matched: triaged (an incident) or only recorded, by the sender's severity.
    let mut unmatched: HashMap<(&str, &'static str, &'static str), u64> = HashMap::new();
    for (a, o) in job.alerts.iter().zip(out) {
        let handled = match (&a.classification, o.disposition) {
            (_, Disposition::Duplicate) => continue,
            (None, _) => "recorded",
            (Some(c), _) if c.is_triage() => "triage",
            _ => continue,
        };
        let severity = a.sender_severity.map_or("none", Severity::as_str);
        *unmatched
            .entry((&a.row.source, severity, handled))
            .or_default() += 1;
    }
    for ((source, severity, handled), n) in unmatched {
        metrics::counter!(
            "incidentd_alerts_unmatched_total",
            "source" => crate::telemetry::source_label(source),
            "severity" => severity,
            "handled" => handled
        )
        .increment(n);
    }
}

/// Alerts that joined one incident in this batch, by actor (one timeline event each).
mod batch;
pub(super) use batch::reclassified_event;
use batch::*;

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

/// The state of one alert in one incident while a batch is planned: the newest notification
/// as the store had it and as the batch leaves it, and the row of the batch's newest, if any.
struct AlertState {
    newest: Option<(i64, bool)>,
    alert_id: Option<i64>,
}

/// Storm control's view of one intake bucket during a batch.
struct Bucket {
    /// Incidents (storm incidents aside) it opened within the window, this batch's included.
    opened: i64,
    /// Its open storm incident, if it has one.
    storm: Option<i64>,
}

/// What a batch places, as it places it: the ids it hands out, the incidents it opens and the
/// keys to register for them, where each alert went and its state there, and the rows to write.
struct Batch<'a> {
    next_alert: i64,
    next_incident: i64,
    first_copy: HashMap<&'a str, IngestOutcome>,
    new_incidents: Vec<Incident>,
    opened_by: Vec<&'a str>,
    /// Group keys this batch gave an incident, and the keys to register for them.
    by_group: HashMap<&'a str, i64>,
    new_keys: Vec<(String, i64)>,
    /// Alert keys placed in this batch, and each alert's state per incident.
    placed: HashMap<&'a str, i64>,
    states: HashMap<(&'a str, i64), AlertState>,
    /// Per incident: (firing, resolved) deltas.
    counts: HashMap<i64, (i64, i64)>,
    joined: BTreeMap<i64, Joined<'a>>,
    members: BTreeMap<i64, Vec<&'a PreparedAlert>>,
    unmatched: BTreeMap<&'a str, Vec<AlertItem<'a>>>,
    rows: Vec<AlertInsert<'a>>,
}

/// One transaction for a whole batch. See the module docs.
///
/// An alert goes to the open incident that holds it already (an earlier notification of the
/// same source and fingerprint), else to the open incident of its group (its correlation key),
/// else it opens one if its classification says so — or, when its intake bucket (source and
/// rule) opened `storm.max_incidents` incidents within the window, it folds into the bucket's
/// storm incident — else it is recorded.
// Long because: it reads as the batch's phases in order (lookups, placement, the incidents'
// updates, the writes, timed by `phases`), and the placement loop decides each alert from what
// the alerts before it placed; what each phase does to the batch is `Batch`'s.
async fn apply(
    store: &Store,
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<Vec<Vec<IngestOutcome>>, StoreError> {
    let policy = jobs[0].policy.clone();
    let rules = policy.rules.clone();
    let mut phases = Phases::start();
    let mut tx = store.begin_write().await?;
    phases.lap("begin");
    let mut outcomes: Vec<Vec<IngestOutcome>> = jobs
        .iter()
        .map(|j| Vec::with_capacity(j.alerts.len()))
        .collect();

    // What the store knows of this batch: re-sends, alerts an open incident holds already,
    // groups with an open incident, and for storm control how many incidents each bucket
    // whose alerts may open one opened within the window, and its storm incident.
    let buckets_of: Vec<Option<String>> = all(jobs)
        .map(|(_, a)| a.opens().then(|| a.bucket()).flatten())
        .collect();
    let keys: Vec<IntakeKey<'_>> = all(jobs)
        .zip(&buckets_of)
        .map(|((_, a), b)| IntakeKey {
            dedup: &a.row.dedup_key,
            alert: &a.alert_key,
            group: &a.row.group_key,
            bucket: b.as_deref(),
        })
        .collect();
    let storm_since = policy.storm.map(|storm| {
        let window = chrono::Duration::from_std(storm.window).unwrap_or(chrono::Duration::MAX);
        to_micros(now.checked_sub_signed(window).unwrap_or(now))
    });
    let found = tx
        .intake_lookups(&keys, storm_since, to_micros(now))
        .await?;
    let (existing, held, open) = (&found.existing, &found.held, &found.open);
    let mut buckets: HashMap<String, Bucket> = found
        .opened
        .iter()
        .map(|(name, &opened)| {
            let bucket = Bucket {
                opened,
                storm: open.get(&storm_key(name)).copied(),
            };
            (name.clone(), bucket)
        })
        .collect();
    let (max_alert, max_incident) = (found.max_alert, found.max_incident);
    // Silences (issue #15 part 5): those active now; matching new alerts are silenced.
    let mut silences = super::silences::SilenceCheck::new(&found.silences);
    phases.lap("lookup");

    let mut batch = Batch::new(max_alert, max_incident);

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
            if let Some(first) = batch.first_copy.get(key) {
                outcomes[job_index].push(IngestOutcome {
                    disposition: Disposition::Duplicate,
                    ..*first
                });
                continue;
            }
            let id = batch.next_alert;
            batch.next_alert += 1;
            let ak = a.alert_key.as_str();
            let gk = a.row.group_key.as_str();
            // Silences: a silenced alert opens and joins nothing (never a PI one, see silences.rs).
            let hit = silences.check(a);
            let (incident_id, disposition) = if hit.silence().is_some() {
                (None, Disposition::Silenced)
            } else if let Some(&iid) = batch.placed.get(ak) {
                (Some(iid), Disposition::Joined)
            } else if let Some(h) = held.get(ak) {
                (Some(h.incident_id), Disposition::Joined)
            } else if let Some(&iid) = open.get(gk).or_else(|| batch.by_group.get(gk)) {
                (Some(iid), Disposition::Joined)
            } else if a.opens() {
                let (iid, disposition) =
                    batch.open_for(a, &job.actor, &mut buckets, policy.storm, now);
                (Some(iid), disposition)
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
                    batch.placed.insert(ak, iid);
                    track_state(&mut batch.states, &mut batch.counts, held, a, id, iid);
                    let j = batch.joined.entry(iid).or_default();
                    j.by_actor.entry(job.actor.as_str()).or_default().push(item);
                    j.truncated = j.truncated.max(a.truncated_alerts);
                    batch.members.entry(iid).or_default().push(a);
                }
                None if hit.silence().is_some() => {}
                None => batch
                    .unmatched
                    .entry(job.actor.as_str())
                    .or_default()
                    .push(item),
            }
            silences.record(hit, &job.actor, id, a, incident_id, now);
            let outcome = IngestOutcome {
                alert_id: id,
                incident_id,
                disposition,
            };
            batch.first_copy.insert(key, outcome);
            outcomes[job_index].push(outcome);
            batch.rows.push(AlertInsert {
                id,
                incident_id,
                silence_id: hit.silence(),
                row: &a.row,
            });
        }
    }

    let mut events = batch.opened_events(&rules, policy.storm, now);
    let mut timers = batch.new_timers(&policy, now);
    batch
        .update_current(&mut tx, &rules, &policy, &mut timers, &mut events, now)
        .await?;
    let alert_rows = batch.alert_rows();
    for (actor, items) in std::mem::take(&mut batch.unmatched) {
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
    tx.insert_incidents(&batch.new_incidents).await?;
    batch.new_keys.sort_unstable();
    batch.new_keys.dedup();
    let keys: Vec<(&str, i64)> = batch
        .new_keys
        .iter()
        .map(|(k, i)| (k.as_str(), *i))
        .collect();
    tx.insert_incident_keys(&keys).await?;
    tx.insert_alerts(&batch.rows).await?;
    tx.upsert_incident_alerts(&alert_rows).await?;
    tx.schedule_timers(&timers, crate::domain::time::to_micros(now))
        .await?;
    tx.append(&events).await?;
    phases.lap("write");
    tx.commit().await?;
    phases.lap("commit");
    phases.record();
    Ok(outcomes)
}

/// Where a group commit's time went, for `incidentd_ingest_phase_seconds{phase}`: `begin`
/// (waiting for the store's write lock: other writers — dispatcher, scheduler, API commands —
/// hold it), `lookup` (dedup, held-alert, open-group, storm and silence lookups), `plan` (grouping, building incident rows
/// and audit events, reading and updating the open incidents that alerts joined), `write` (the
/// inserts and the audit chain), `commit` (the WAL write and fsync, or PostgreSQL's commit).
/// Recorded only for commits that succeed.
struct Phases {
    at: Instant,
    laps: [(&'static str, std::time::Duration); 5],
    n: usize,
}

impl Phases {
    fn start() -> Self {
        Phases {
            at: Instant::now(),
            laps: [("", std::time::Duration::ZERO); 5],
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
