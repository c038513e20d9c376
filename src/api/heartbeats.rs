//! Heartbeats (dead-man's switches): list their state, ping one.

use axum::extract::State;

use super::extract::Path;
use axum::http::StatusCode;
use chrono::Utc;

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use crate::engine::heartbeats::{HeartbeatView, view};

super::page::listing!(
    /// The configured heartbeats, in configuration order, in one page.
    HeartbeatList,
    HeartbeatView
);

/// Every configured heartbeat: last seen, next due, state (`ok`, `late`, `never`), incident.
#[utoipa::path(
    get,
    path = "/api/v1/heartbeats",
    tag = "heartbeats",
    responses((status = 200, body = HeartbeatList))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
) -> Result<axum::Json<HeartbeatList>, ApiError> {
    let beats = state.live().heartbeats.clone();
    let heartbeats =
        crate::engine::heartbeats::list(state.engine.store(), &beats, Utc::now()).await?;
    Ok(axum::Json(HeartbeatList::whole(heartbeats)))
}

/// Signal a heartbeat: the source calling this is alive.
///
/// Any source can keep a heartbeat alive by calling this at least every `interval`. A
/// heartbeat that was late recovers (its incident's timeline says so).
#[utoipa::path(
    post,
    path = "/api/v1/heartbeats/{name}",
    tag = "heartbeats",
    params(("name" = String, Path, description = "a configured heartbeat's name")),
    responses(
        (status = 202, description = "recorded", body = HeartbeatView),
        (status = 404, description = "no heartbeat of that name is configured", body = Problem),
    )
)]
pub async fn ping(
    State(state): State<AppState>,
    caller: Authorized<role::Ingest>,
    Path(name): Path<String>,
) -> Result<(StatusCode, axum::Json<HeartbeatView>), ApiError> {
    let beats = state.live().heartbeats.clone();
    let Some(b) = beats.get(&name) else {
        let names = beats.names();
        return Err(ApiError::not_found(if names.is_empty() {
            format!(
                "no heartbeat `{name}` is configured; none are ([[heartbeats]] in incidentd.toml)"
            )
        } else {
            format!(
                "no heartbeat `{name}` is configured; the configured ones are: {}",
                names.join(", ")
            )
        }));
    };
    let now = Utc::now();
    let row =
        crate::engine::heartbeats::ping(state.engine.store(), b, &caller.actor(), now).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(b, Some(&row), now))))
}
