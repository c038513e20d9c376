//! Alert ingestion endpoints.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, Caller, role};
use super::error::{ApiError, Problem};
use super::extract::{AlertId, Body, Json, Query};
use crate::domain::alert::NewAlert;
use crate::domain::records::AlertRecord;
use crate::domain::records::Incident;
use crate::engine::correlate::{MoveAlert, Moved, Promote};
use crate::engine::{Disposition, IngestOutcome, IngestPolicy, prepare};
use crate::ingest::{alertmanager, generic};
use crate::store::AlertFilter;

/// Requests with more alerts than this are prepared off the async threads.
const INLINE_PREPARE: usize = 256;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestResponse {
    /// Alerts recorded by this request (new, not duplicates).
    pub accepted: usize,
    pub duplicates: usize,
    pub incidents_opened: usize,
    /// New alerts an active silence silenced (they open and join nothing).
    pub silenced: usize,
    /// One entry per alert, in request order.
    pub alerts: Vec<IngestOutcome>,
}

/// Ingest alerts in the generic format: one object or an array.
///
/// Each alert is committed before the answer (202). It opens an incident when a classification
/// rule says so, joins an open incident with the same fingerprint or group, or is recorded.
#[utoipa::path(
    post,
    path = "/api/v1/alerts",
    tag = "alerts",
    request_body(content = Vec<generic::GenericAlert>, description = "one alert or an array"),
    responses(
        (status = 202, description = "committed", body = IngestResponse),
        (status = 400, description = "malformed JSON", body = Problem),
        (status = 413, description = "too many alerts or too large a body", body = Problem),
        (status = 422, description = "a field is unknown or wrong", body = Problem),
        (status = 503, description = "store busy or shutting down: retry", body = Problem),
    )
)]
pub async fn post_alerts(
    State(state): State<AppState>,
    caller: Authorized<role::Ingest>,
    Body(body): Body,
) -> Result<(StatusCode, axum::Json<IngestResponse>), ApiError> {
    let now = Utc::now();
    let alerts = generic::parse(&body, now)?;
    ingest(&state, &caller, alerts, now).await
}

/// Ingest a Prometheus Alertmanager webhook (version 4; Grafana's variant too).
///
/// Answers 2xx only once the alerts are committed, 5xx for transient faults (Alertmanager
/// retries those), and 4xx only for payloads that can never succeed. Unknown fields are ignored.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/alertmanager",
    tag = "alerts",
    request_body(content = Object, description = "Alertmanager webhook payload, version 4"),
    responses(
        (status = 202, description = "committed", body = IngestResponse),
        (status = 400, description = "not JSON, or not a version 4 payload", body = Problem),
        (status = 503, description = "store busy or shutting down: Alertmanager retries", body = Problem),
    )
)]
pub async fn post_alertmanager(
    State(state): State<AppState>,
    caller: Authorized<role::Ingest>,
    Body(body): Body,
) -> Result<(StatusCode, axum::Json<IngestResponse>), ApiError> {
    let now = Utc::now();
    let alerts = alertmanager::parse(&body).map_err(|e| {
        // Alertmanager drops anything 4xx: a content error here is as final as bad syntax.
        ApiError::bad_request(
            if e.syntax {
                "malformed_json"
            } else {
                "invalid_payload"
            },
            e.to_string(),
        )
    })?;
    ingest(&state, &caller, alerts, now).await
}

async fn ingest(
    state: &AppState,
    caller: &Caller,
    alerts: Vec<NewAlert>,
    now: DateTime<Utc>,
) -> Result<(StatusCode, axum::Json<IngestResponse>), ApiError> {
    let live = state.live();
    if alerts.len() > live.max_alerts_per_request {
        return Err(ApiError::too_large(format!(
            "{} alerts in one request; at most {} are accepted (ingest.max_alerts_per_request)",
            alerts.len(),
            live.max_alerts_per_request
        )));
    }
    let rules = live.rules.clone();
    let policy = IngestPolicy {
        rules: rules.clone(),
        respond: live.playbooks.is_some(),
        regulate: state.engine.regulates(),
        storm: live.storm,
    };
    let heartbeats = live.heartbeats.clone();
    drop(live);
    let mut prepared: Vec<_> = if alerts.len() <= INLINE_PREPARE {
        alerts
            .into_iter()
            .map(|a| prepare(a, &rules, now))
            .collect()
    } else {
        let rules = rules.clone();
        tokio::task::spawn_blocking(move || {
            alerts
                .into_iter()
                .map(|a| prepare(a, &rules, now))
                .collect()
        })
        .await
        .map_err(|_| ApiError::internal())?
    };
    // Heartbeats (issue #15 part 4): which of them each alert keeps alive.
    crate::engine::heartbeats::mark(&heartbeats, &mut prepared);
    let outcomes = state
        .engine
        .ingest_queue()
        .submit(prepared, caller.actor(), policy)
        .await?;
    let count = |d: Disposition| outcomes.iter().filter(|o| o.disposition == d).count();
    let duplicates = count(Disposition::Duplicate);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(IngestResponse {
            accepted: outcomes.len() - duplicates,
            duplicates,
            incidents_opened: count(Disposition::Opened),
            silenced: count(Disposition::Silenced),
            alerts: outcomes,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// Only alerts that opened or joined no incident and were not silenced.
    #[serde(default)]
    pub unmatched: bool,
    /// Only alerts a silence silenced.
    #[serde(default)]
    pub silenced: bool,
    /// Only alerts of this incident.
    pub incident: Option<i64>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

super::page::listing!(
    /// Recorded alerts, newest first.
    AlertList,
    AlertRecord
);

/// List recorded alerts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    params(AlertQuery),
    responses((status = 200, body = AlertList), (status = 400, body = Problem))
)]
pub async fn list_alerts(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Query(q): Query<AlertQuery>,
) -> Result<axum::Json<AlertList>, ApiError> {
    let limit = super::page::limit(q.limit)?;
    let alerts = state
        .engine
        .store()
        .alerts(&AlertFilter {
            unmatched: q.unmatched,
            silenced: q.silenced,
            incident_id: q.incident,
            before: super::page::cursor(q.cursor.as_deref())?,
            limit,
        })
        .await
        .map_err(crate::engine::EngineError::from)?;
    Ok(axum::Json(AlertList::paged(alerts, limit, |a| a.id)))
}

/// Move an alert to another incident.
///
/// Every notification of the alert (its source and fingerprint) in its incident moves, and
/// later ones join the new incident; a recorded alert (in no incident) is attached. Both
/// incidents' timelines say so, with the reason.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/move",
    tag = "alerts",
    params(("id" = i64, Path)),
    request_body = MoveAlert,
    responses(
        (status = 200, body = Moved),
        (status = 404, description = "no such alert or incident", body = Problem),
        (status = 409, description = "already there, or the incident is not open", body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn move_alert(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    AlertId(id): AlertId,
    Json(m): Json<MoveAlert>,
) -> Result<axum::Json<Moved>, ApiError> {
    Ok(axum::Json(
        state.engine.move_alert(id, m, &caller.actor()).await?,
    ))
}

/// Open an incident for a recorded alert (one no rule opened an incident for).
///
/// Its other recorded notifications go with it, and later alerts of its group join the new
/// incident, which gets its playbook like any other.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/promote",
    tag = "alerts",
    params(("id" = i64, Path)),
    request_body = Promote,
    responses(
        (status = 201, body = Incident),
        (status = 404, body = Problem),
        (status = 409, description = "the alert is in an incident already", body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn promote_alert(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    AlertId(id): AlertId,
    Json(p): Json<Promote>,
) -> Result<(StatusCode, axum::Json<Incident>), ApiError> {
    let inc = state.engine.promote_alert(id, p, &caller.actor()).await?;
    Ok((StatusCode::CREATED, axum::Json(inc)))
}
