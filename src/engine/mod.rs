//! The engine applies commands and alerts to incidents. Every change is written together with
//! its audit events in one transaction; nothing here talks to the outside world.

pub mod acklink;
pub mod announce;
pub mod campaign;
pub mod closing;
mod commands;
pub mod correlate;
pub mod cron;
mod deliveries;
pub mod drills;
pub mod heartbeats;
mod ingest;
pub mod notice_gate;
pub mod obligations;
pub mod outcomes;
pub mod paging;
pub mod report_gate;
pub mod reports;
pub mod response;
pub mod scorecard;
pub mod silences;
pub mod subjects;
pub mod summary;
mod tasks;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use commands::{Declaration, IncidentPatch};
pub use deliveries::{DeliveryCtx, DeliveryRequest, FallbackRequest, ManualReach, derived_key};
pub use ingest::{
    Disposition, IngestOutcome, IngestPolicy, IngestQueue, PreparedAlert, StormPolicy, prepare,
};
pub use notice_gate::GateChecks;
pub use tasks::{NewTaskRequest, Reassign};

use crate::domain::classify::{Rules, Subject};
use crate::domain::incident::{Category, Severity, raise_only, reclassify_category};
use crate::domain::records::Incident;
use crate::store::{Store, StoreError};

/// Why a command was refused or failed. The API maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but the incident's state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (403), e.g. approve for a department it does not act for.
    #[error("{0}")]
    Forbidden(String),
    /// The request is well-formed JSON but its content is wrong (422); `path` names the field.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Transient: busy store, full queue, shutting down (503).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => EngineError::Unavailable(m),
            StoreError::Failed(m) => EngineError::Failed(m),
        }
    }
}

impl EngineError {
    pub(crate) fn invalid(path: &str, message: impl Into<String>) -> Self {
        EngineError::Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// The engine: the store plus the ingest writer. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    ingest: IngestQueue,
    /// Playbooks are configured: opening an incident (or raising its severity) schedules its
    /// playbook. Set at start and on reload.
    respond: Arc<std::sync::atomic::AtomicBool>,
    /// Told when a campaign is created or subjects are imported: wakes the campaign runner.
    campaigns: Arc<tokio::sync::Notify>,
    /// The jurisdiction packs and the organisation's settings (swapped on reload).
    regulation: Arc<arc_swap::ArcSwap<obligations::Regulation>>,
}

impl Engine {
    pub fn new(store: Store, ingest: IngestQueue) -> Self {
        Engine {
            store,
            ingest,
            respond: Default::default(),
            campaigns: Default::default(),
            regulation: Default::default(),
        }
    }

    pub fn set_respond(&self, on: bool) {
        self.respond.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The flag [`Engine::set_respond`] sets, for holders that must not keep the engine (and
    /// with it the ingest queue) alive.
    pub fn respond_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.respond.clone()
    }

    pub(crate) fn responds(&self) -> bool {
        self.respond.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Told when campaigns may have work (created, approved, new subjects).
    pub fn campaigns_wake(&self) -> Arc<tokio::sync::Notify> {
        self.campaigns.clone()
    }

    pub fn ingest_queue(&self) -> &IngestQueue {
        &self.ingest
    }
}

/// A change of category or severity, for the audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct Reclassified {
    pub from: (Category, Severity),
    pub to: (Category, Severity),
    pub rule: Option<String>,
}

/// Raise-only re-classification of `inc` towards `proposed`; PI stays S1. A first move into a
/// PI category starts the awareness clock (GDPR) unless a person already set it.
pub(crate) fn reclassify(
    inc: &mut Incident,
    proposed: (Category, Severity),
    rule: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Reclassified> {
    let from = (inc.category, inc.severity);
    let category = reclassify_category(from, proposed);
    let severity = raise_only(inc.severity, proposed.1, category);
    if (category, severity) == from {
        return None;
    }
    if category != inc.category {
        inc.rule = rule.map(str::to_string).or(inc.rule.take());
    }
    inc.category = category;
    inc.severity = severity;
    if category.is_personal_information() && inc.aware_at.is_none() {
        inc.aware_at = Some(now);
    }
    Some(Reclassified {
        from,
        to: (category, severity),
        rule: rule.map(str::to_string),
    })
}

/// Classify an incident by its own text and facts (after a facts change).
pub(crate) fn classify_incident(
    rules: &Rules,
    inc: &Incident,
) -> Option<crate::domain::classify::Classification> {
    let text = format!("{}\n{}", inc.title, inc.summary);
    let empty = Default::default();
    rules.classify(&Subject {
        source: "incident",
        text: &text,
        labels: &empty,
        annotations: &empty,
        facts: &inc.facts,
    })
}

/// Who did something, as the audit trail records it.
pub fn token_actor(token_name: &str) -> String {
    format!("token:{token_name}")
}

/// The engine's rules at this moment (swapped atomically on reload).
pub type RulesHandle = Arc<arc_swap::ArcSwap<Rules>>;
