//! Silences (maintenance windows): create, list, show, end early.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::domain::silence::{Conditions, SilenceRequest, SilenceState};
use crate::domain::time::{from_micros, to_micros};
use crate::engine::EngineError;
use crate::store::{SilenceFilter, SilenceRow};

/// A silence: what it matches, when, who made it and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SilenceView {
    pub id: i64,
    /// Label matchers, all of which must match (`name=value`, `name!=value`, `name=~regex`,
    /// `name!~regex`).
    pub matchers: Vec<String>,
    pub source: Option<String>,
    pub rule: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `pending`, `active` or `expired`.
    pub state: SilenceState,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Ended early: when, by whom, why.
    pub expired_at: Option<DateTime<Utc>>,
    pub expired_by: Option<String>,
    pub expire_reason: Option<String>,
    /// Alerts it silenced.
    pub alerts_silenced: i64,
}

fn view(r: &SilenceRow, now: DateTime<Utc>) -> SilenceView {
    let matchers = Conditions::from_stored(&r.matchers, None, None)
        .map(|c| c.matchers.iter().map(|m| m.to_string()).collect())
        .unwrap_or_else(|e| vec![format!("(unreadable: {e})")]);
    let (starts_at, ends_at) = (from_micros(r.starts_at), from_micros(r.ends_at));
    let expired_at = r.expired_at.map(from_micros);
    SilenceView {
        id: r.id,
        matchers,
        source: r.source.clone(),
        rule: r.rule.clone(),
        starts_at,
        ends_at,
        state: SilenceState::of(starts_at, ends_at, expired_at, now),
        reason: r.reason.clone(),
        created_by: r.created_by.clone(),
        created_at: from_micros(r.created_at),
        expired_at,
        expired_by: r.expired_by.clone(),
        expire_reason: r.expire_reason.clone(),
        alerts_silenced: r.alerts,
    }
}

/// Silence matching alerts for a while (a maintenance window).
///
/// Matching alerts are recorded and marked silenced: they open and join no incident and page
/// nobody. An alert classified as personal information is never silenced. Give exactly one of
/// `ends_at` and `duration`, and a `reason`.
#[utoipa::path(
    post,
    path = "/api/v1/silences",
    tag = "silences",
    request_body = SilenceRequest,
    responses(
        (status = 201, body = SilenceView),
        (status = 400, description = "malformed JSON", body = Problem),
        (status = 422, description = "a field is missing, unknown or wrong (named in `path`)", body = Problem),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Json(req): Json<SilenceRequest>,
) -> Result<(StatusCode, axum::Json<SilenceView>), ApiError> {
    let rules = state.live().rules.clone();
    let now = Utc::now();
    let row =
        crate::engine::silences::create(state.engine.store(), &req, &rules, &caller.actor(), now)
            .await?;
    Ok((StatusCode::CREATED, axum::Json(view(&row, now))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SilenceQuery {
    /// Only silences in this state now: `active`, `pending` or `expired`.
    pub state: Option<SilenceState>,
    /// Page: silences with ids below this.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

super::page::listing!(
    /// Silences, newest first.
    SilenceList,
    SilenceView
);

/// List silences, newest first; expired ones are kept.
#[utoipa::path(
    get,
    path = "/api/v1/silences",
    tag = "silences",
    params(SilenceQuery),
    responses((status = 200, body = SilenceList), (status = 400, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Query(q): Query<SilenceQuery>,
) -> Result<axum::Json<SilenceList>, ApiError> {
    let limit = super::page::limit(q.limit)?;
    let now = Utc::now();
    let rows = state
        .engine
        .store()
        .silences(&SilenceFilter {
            state: q.state.map(SilenceState::as_str),
            now: to_micros(now),
            before: super::page::cursor(q.cursor.as_deref())?,
            limit,
        })
        .await
        .map_err(EngineError::from)?;
    let next_cursor = super::page::next(&rows, limit, |r| r.id);
    Ok(axum::Json(SilenceList {
        items: rows.iter().map(|r| view(r, now)).collect(),
        next_cursor,
    }))
}

/// A silence id from the path.
fn silence_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::not_found(format!(
            "there is no silence `{raw}`; silence ids are numbers"
        ))
    })
}

/// One silence.
#[utoipa::path(
    get,
    path = "/api/v1/silences/{id}",
    tag = "silences",
    params(("id" = i64, Path, description = "the silence's id")),
    responses((status = 200, body = SilenceView), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Path(raw): Path<String>,
) -> Result<axum::Json<SilenceView>, ApiError> {
    let id = silence_id(&raw)?;
    let row = state
        .engine
        .store()
        .silence(id)
        .await
        .map_err(EngineError::from)?
        .ok_or_else(|| ApiError::not_found(format!("there is no silence {id}")))?;
    Ok(axum::Json(view(&row, Utc::now())))
}

/// Why a silence ends early.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpireRequest {
    pub reason: Option<String>,
}

/// End a silence now (it is kept, expired, with who ended it and why).
#[utoipa::path(
    post,
    path = "/api/v1/silences/{id}/expire",
    tag = "silences",
    params(("id" = i64, Path, description = "the silence's id")),
    request_body = ExpireRequest,
    responses(
        (status = 200, body = SilenceView),
        (status = 404, body = Problem),
        (status = 409, description = "it has already ended", body = Problem),
        (status = 422, description = "no reason given", body = Problem),
    )
)]
pub async fn expire(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Path(raw): Path<String>,
    Json(req): Json<ExpireRequest>,
) -> Result<axum::Json<SilenceView>, ApiError> {
    let id = silence_id(&raw)?;
    let now = Utc::now();
    let row = crate::engine::silences::expire(
        state.engine.store(),
        id,
        req.reason.as_deref(),
        &caller.actor(),
        now,
    )
    .await?;
    Ok(axum::Json(view(&row, now)))
}
