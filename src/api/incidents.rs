//! Incident endpoints: declare, list, show, change, move through the lifecycle, timeline.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{Body, IncidentId, Json, Query};
use crate::domain::incident::{Category, Severity, Status};
use crate::domain::records::{AlertRecord, Event, Incident};
use crate::engine::{Declaration, EngineError, IncidentPatch};
use crate::store::{AlertFilter, IncidentFilter};

/// Declare an incident.
///
/// Category and severity may be omitted: the classification rules decide from the title,
/// summary and facts. Personal-information categories are always S1.
#[utoipa::path(
    post,
    path = "/api/v1/incidents",
    tag = "incidents",
    request_body = Declaration,
    responses(
        (status = 201, body = Incident),
        (status = 400, body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn declare(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Json(d): Json<Declaration>,
) -> Result<(StatusCode, HeaderMap, axum::Json<Incident>), ApiError> {
    let live = state.live();
    d.facts
        .check_locales(&live.fact_locales(), &live.organisation.default_locale)
        .map_err(|e| EngineError::invalid(&format!("facts.{}", e.path), e.message))?;
    let rules = live.rules.clone();
    let inc = state.engine.declare(d, &rules, &caller.actor()).await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/incidents/{}", inc.id)) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, axum::Json(inc)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    pub status: Option<Status>,
    /// `true`: only open incidents (not closed, not false positive); `false`: only ended ones.
    pub open: Option<bool>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub drill: Option<bool>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

super::page::listing!(
    /// Incidents, newest first.
    IncidentList,
    Incident
);

/// List incidents, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "incidents",
    params(IncidentQuery),
    responses((status = 200, body = IncidentList), (status = 400, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Query(q): Query<IncidentQuery>,
) -> Result<axum::Json<IncidentList>, ApiError> {
    let limit = super::page::limit(q.limit)?;
    let incidents = state
        .engine
        .store()
        .incidents(&IncidentFilter {
            status: q.status,
            open: q.open,
            severity: q.severity,
            category: q.category,
            drill: q.drill,
            before: super::page::cursor(q.cursor.as_deref())?,
            limit,
        })
        .await
        .map_err(EngineError::from)?;
    Ok(axum::Json(IncidentList::paged(incidents, limit, |i| i.id)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    #[serde(flatten)]
    pub incident: Incident,
    /// The newest alerts (at most 100); `GET /api/v1/alerts?incident=…` pages through all.
    pub alerts: Vec<AlertRecord>,
    /// The first audited events (at most 500); `…/timeline` pages through all.
    pub timeline: Vec<Event>,
    /// Where this incident may move next.
    pub allowed_transitions: Vec<Status>,
    /// Its grade per jurisdiction and its obligations (`…/obligations` alone).
    pub regulation: super::obligations::IncidentRegulation,
}

/// Show one incident with its alerts, facts and timeline.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(("id" = i64, Path)),
    responses((status = 200, body = IncidentView), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
) -> Result<axum::Json<IncidentView>, ApiError> {
    let store = state.engine.store();
    let incident = store
        .incident(id)
        .await
        .map_err(EngineError::from)?
        .ok_or_else(|| ApiError::not_found(format!("there is no incident {id}")))?;
    let alerts = store
        .alerts(&AlertFilter {
            incident_id: Some(id),
            limit: 100,
            ..AlertFilter::default()
        })
        .await
        .map_err(EngineError::from)?;
    let timeline = store
        .timeline(id, 0, 500)
        .await
        .map_err(EngineError::from)?;
    let regulation = super::obligations::regulation_of(&state, id).await?;
    Ok(axum::Json(IncidentView {
        allowed_transitions: incident.status.allowed_next().to_vec(),
        regulation,
        incident,
        alerts,
        timeline,
    }))
}

/// Change title, summary, category, severity or clocks.
///
/// Lowering severity, changing the category or moving `discovered_at`/`aware_at` needs a
/// `reason`. Personal-information categories stay S1.
#[utoipa::path(
    patch,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(("id" = i64, Path)),
    request_body = IncidentPatch,
    responses((status = 200, body = Incident), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(p): Json<IncidentPatch>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(
        state.engine.update_incident(id, p, &caller.actor()).await?,
    ))
}

/// Update facts with a JSON merge patch (RFC 7396): given fields replace, `null` clears.
///
/// Free text given in a locale the organisation does not write documents in is refused.
/// A facts patch's texts are in the configured languages (the API and the console check alike).
pub(crate) fn text_locales(
    patch: &serde_json::Value,
    live: &crate::api::Live,
) -> Result<(), EngineError> {
    let Some(obj) = patch.as_object() else {
        return Ok(());
    };
    let text: serde_json::Map<String, serde_json::Value> = obj
        .iter()
        .filter(|(k, v)| crate::domain::facts::TEXT_FACTS.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Malformed text is refused by the update itself, with its path.
    if let Ok(f) =
        crate::domain::facts::Facts::default().apply_patch(&serde_json::Value::Object(text))
    {
        f.check_locales(&live.fact_locales(), &live.organisation.default_locale)
            .map_err(|e| EngineError::invalid(&e.path, e.message))?;
    }
    Ok(())
}

/// Facts are versioned; a change may raise (never lower) the classification.
#[utoipa::path(
    patch,
    path = "/api/v1/incidents/{id}/facts",
    tag = "incidents",
    params(("id" = i64, Path)),
    request_body(content = crate::domain::facts::Facts, content_type = "application/merge-patch+json"),
    responses((status = 200, body = Incident), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn update_facts(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Body(body): Body,
) -> Result<axum::Json<Incident>, ApiError> {
    let patch: serde_json::Value = crate::ingest::from_json(&body)?;
    text_locales(&patch, &state.live()).map_err(ApiError::from)?;
    let rules = state.live().rules.clone();
    Ok(axum::Json(
        state
            .engine
            .update_facts(id, patch, &rules, &caller.actor())
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    pub to: Status,
    /// Required for `closed`, `false_positive` and `reopened`.
    #[serde(default)]
    pub note: Option<String>,
    /// Close although tasks or obligations are open (needs `reason`): open tasks are cancelled
    /// with the reason; open obligations stay open, not met.
    #[serde(default)]
    pub force: bool,
    /// Why the incident is closed with open work; only with `force`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Move an incident through its lifecycle.
///
/// `detected → triaged → contained → eradicated → recovered → closed`, `false_positive` from
/// detected or triaged, `reopened → triaged`. Anything else is refused with 409. Closing is
/// refused (409, naming them) while tasks or owed obligations are open, unless `force` with a
/// `reason`: the open tasks are then cancelled with it; the obligations stay open, not met.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/transitions",
    tag = "incidents",
    params(("id" = i64, Path)),
    request_body = TransitionRequest,
    responses((status = 200, body = Incident), (status = 404, body = Problem), (status = 409, body = Problem))
)]
pub async fn transition(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(t): Json<TransitionRequest>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(
        state
            .engine
            .transition_forced(
                id,
                t.to,
                t.note,
                &crate::engine::closing::Force {
                    force: t.force,
                    reason: t.reason,
                },
                &caller.actor(),
            )
            .await?,
    ))
}

/// Merge this incident into another, which carries on.
///
/// Its alerts, their group keys, its facts and earlier clocks go to the survivor (whose
/// classification may rise, never fall); it becomes `merged`, pointing at the survivor, and
/// owes nothing more. The survivor's timeline shows both. An incident that already holds
/// affected people, notice campaigns, submitted reports or an announcement is not merged away:
/// merge the other one into it.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/merge",
    tag = "incidents",
    params(("id" = i64, Path)),
    request_body = crate::engine::correlate::Merge,
    responses(
        (status = 200, description = "the survivor", body = Incident),
        (status = 404, body = Problem),
        (status = 409, body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn merge(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(m): Json<crate::engine::correlate::Merge>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(
        state.engine.merge_incident(id, m, &caller.actor()).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

super::page::listing!(
    /// An incident's audited events, oldest first.
    Timeline,
    Event
);

/// The incident's audited events, oldest first, with those of incidents merged into it.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/timeline",
    tag = "incidents",
    params(("id" = i64, Path), TimelineQuery),
    responses((status = 200, body = Timeline), (status = 404, body = Problem))
)]
pub async fn timeline(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
    Query(q): Query<TimelineQuery>,
) -> Result<axum::Json<Timeline>, ApiError> {
    let limit = super::page::limit(q.limit)?;
    let after = super::page::cursor(q.cursor.as_deref())?.unwrap_or(0);
    let store = state.engine.store();
    if store
        .incident(id)
        .await
        .map_err(EngineError::from)?
        .is_none()
    {
        return Err(ApiError::not_found(format!("there is no incident {id}")));
    }
    let events = store
        .timeline(id, after, limit)
        .await
        .map_err(EngineError::from)?;
    Ok(axum::Json(Timeline::paged(events, limit, |e| e.id)))
}
