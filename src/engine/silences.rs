//! Silences in the engine: creating and ending them (each one transaction with its audit
//! event), and the check the ingest writer makes of every new alert at commit time.
//!
//! A silence never hides a personal-information category: such an alert is handled as if no
//! silence existed, and a `silence.overridden` event says which silence it overrode.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::warn;

use super::EngineError;
use super::ingest::PreparedAlert;
use crate::domain::classify::Rules;
use crate::domain::silence::{Conditions, SilenceRequest};
use crate::domain::time::to_micros;
use crate::store::{NewEvent, NewSilenceRow, SilenceRow, Store};

/// Create a silence from a request: validated, stored and audited (`silence.created`).
pub async fn create(
    store: &Store,
    req: &SilenceRequest,
    rules: &Rules,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<SilenceRow, EngineError> {
    let s = req
        .validate(&rules.names(), now)
        .map_err(|r| EngineError::invalid(&r.path, r.message))?;
    if let Some(r) = &s.conditions.rule
        && let Some(c) = rules.category_of(r)
        && c.is_personal_information()
    {
        return Err(EngineError::invalid(
            "rule",
            format!(
                "rule `{r}` classifies alerts as {c}, a personal-information category: those are never silenced"
            ),
        ));
    }
    let matchers = s.conditions.matchers_json();
    let mut tx = store.begin_write().await?;
    let id = tx
        .insert_silence(&NewSilenceRow {
            matchers: &matchers,
            source: s.conditions.source.as_deref(),
            rule: s.conditions.rule.as_deref(),
            starts_at: to_micros(s.starts_at),
            ends_at: to_micros(s.ends_at),
            reason: &s.reason,
            created_by: actor,
            created_at: to_micros(now),
        })
        .await?;
    let shown: Vec<String> = s
        .conditions
        .matchers
        .iter()
        .map(|m| m.to_string())
        .collect();
    tx.append(&[NewEvent::new(
        now,
        actor,
        "silence.created",
        None,
        &json!({
            "silence": id,
            "matchers": shown,
            "source": s.conditions.source,
            "rule": s.conditions.rule,
            "starts_at": s.starts_at,
            "ends_at": s.ends_at,
            "reason": s.reason,
        }),
    )])
    .await?;
    let row = tx.silence(id).await?;
    tx.commit().await?;
    row.ok_or_else(|| EngineError::Failed(format!("silence {id} vanished after it was created")))
}

/// End a silence now, with a reason (`silence.expired`). An unknown silence is 404; one that
/// already ended is 409.
pub async fn expire(
    store: &Store,
    id: i64,
    reason: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<SilenceRow, EngineError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(EngineError::invalid(
            "reason",
            "say why the silence ends early (e.g. the maintenance finished)",
        ));
    }
    let mut tx = store.begin_write().await?;
    let Some(row) = tx.silence(id).await? else {
        return Err(EngineError::NotFound(format!(
            "there is no silence {id}; `GET /api/v1/silences` lists them"
        )));
    };
    let now_us = to_micros(now);
    if let Some(at) = row.expired_at {
        return Err(EngineError::Conflict(format!(
            "silence {id} was already ended early at {} by {}",
            crate::domain::time::from_micros(at),
            row.expired_by.as_deref().unwrap_or("?")
        )));
    }
    if row.ends_at <= now_us {
        return Err(EngineError::Conflict(format!(
            "silence {id} already ended at {}",
            crate::domain::time::from_micros(row.ends_at)
        )));
    }
    if !tx.expire_silence(id, now_us, actor, reason).await? {
        return Err(EngineError::Conflict(format!(
            "silence {id} was ended early by someone else just now"
        )));
    }
    tx.append(&[NewEvent::new(
        now,
        actor,
        "silence.expired",
        None,
        &json!({
            "silence": id,
            "reason": reason,
            "was_pending": row.starts_at > now_us,
            "planned_end": crate::domain::time::from_micros(row.ends_at),
        }),
    )])
    .await?;
    let row = tx.silence(id).await?;
    tx.commit().await?;
    row.ok_or_else(|| EngineError::Failed(format!("silence {id} vanished")))
}

/// What the writer makes of one new alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hit {
    /// No active silence matches.
    None,
    /// This silence silences it.
    Silenced(i64),
    /// This silence matches, but the alert is personal information: it is handled normally.
    Overridden(i64),
}

impl Hit {
    /// The silence that silences the alert, if one does.
    pub(super) fn silence(self) -> Option<i64> {
        match self {
            Hit::Silenced(id) => Some(id),
            _ => None,
        }
    }
}

/// An alert as `alerts.silenced` names it.
#[derive(Serialize)]
struct SilencedItem {
    id: i64,
    hash: String,
    status: &'static str,
    title: String,
    silence: i64,
}

/// The silences active when a batch commits, and what the batch's alerts made of them.
pub(super) struct SilenceCheck {
    active: Vec<(i64, Arc<Conditions>)>,
    silenced: BTreeMap<String, Vec<SilencedItem>>,
    overridden: Vec<NewEvent>,
}

impl SilenceCheck {
    /// Read the silences active at `now`, in the writer's transaction.
    pub(super) fn new(rows: &[crate::store::ActiveSilence]) -> Self {
        let active = rows
            .iter()
            .filter_map(|r| match compiled(&r.matchers, r.source.clone(), r.rule.clone()) {
                Ok(c) => Some((r.id, c)),
                Err(e) => {
                    // Failing open: the alert is handled as if this silence did not exist.
                    warn!(silence = r.id, error = %e, "a stored silence cannot be read; ignoring it");
                    None
                }
            })
            .collect();
        SilenceCheck {
            active,
            silenced: BTreeMap::new(),
            overridden: Vec::new(),
        }
    }

    /// Does an active silence match this (new) alert? The oldest matching silence is named.
    pub(super) fn check(&self, a: &PreparedAlert) -> Hit {
        if self.active.is_empty() {
            return Hit::None;
        }
        let rule = a.classification.as_ref().map(|c| c.rule.as_str());
        let Some((id, _)) = self
            .active
            .iter()
            .find(|(_, c)| c.matches(&a.row.source, &a.labels, rule))
        else {
            return Hit::None;
        };
        if a.classification
            .as_ref()
            .is_some_and(|c| c.category.is_personal_information())
        {
            Hit::Overridden(*id)
        } else {
            Hit::Silenced(*id)
        }
    }

    /// Note what `hit` meant for the alert given id `alert_id` (and the incident it went to).
    pub(super) fn record(
        &mut self,
        hit: Hit,
        actor: &str,
        alert_id: i64,
        a: &PreparedAlert,
        incident_id: Option<i64>,
        now: DateTime<Utc>,
    ) {
        match hit {
            Hit::None => {}
            Hit::Silenced(silence) => {
                self.silenced
                    .entry(actor.to_string())
                    .or_default()
                    .push(SilencedItem {
                        id: alert_id,
                        hash: a.row.hash.clone(),
                        status: a.row.status,
                        title: a.row.title.clone(),
                        silence,
                    })
            }
            Hit::Overridden(silence) => self.overridden.push(NewEvent::new(
                now,
                "incidentd",
                "silence.overridden",
                incident_id,
                &json!({
                    "silence": silence,
                    "alert_id": alert_id,
                    "title": a.row.title,
                    "category": a.row.category,
                    "why": "a personal-information alert is never silenced: it was handled as if no silence existed",
                }),
            )),
        }
    }

    /// The batch's audit events: one `alerts.silenced` per actor, and each override.
    pub(super) fn events(self, now: DateTime<Utc>) -> Vec<NewEvent> {
        let mut out = self.overridden;
        for (actor, alerts) in self.silenced {
            metrics::counter!("incidentd_alerts_silenced_total").increment(alerts.len() as u64);
            out.push(NewEvent::new(
                now,
                actor,
                "alerts.silenced",
                None,
                &json!({ "alerts": alerts }),
            ));
        }
        out
    }
}

/// Compiled silence conditions, memoised by their stored text: silences never change (they
/// only end), and the writer reads the active ones at every commit. Keyed by content rather
/// than id because one process may serve several databases (tests do), where ids collide.
fn compiled(
    matchers: &str,
    source: Option<String>,
    rule: Option<String>,
) -> Result<Arc<Conditions>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Conditions>>>> = OnceLock::new();
    let key = format!(
        "{matchers}\u{0}{}\u{0}{}",
        source.as_deref().unwrap_or("\u{1}"),
        rule.as_deref().unwrap_or("\u{1}")
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(c);
    }
    let c = Arc::new(Conditions::from_stored(matchers, source, rule)?);
    if let Ok(mut m) = cache.lock() {
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(key, c.clone());
    }
    Ok(c)
}
