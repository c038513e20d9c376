//! Operations: health, readiness, metrics.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Problem};
use crate::domain::incident::Severity;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, description = "alive", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers and the daemon is not shutting down. Anyone may ask; why the
/// store does not answer or why the last reload was refused (paths, keys) is told only to a
/// caller with a token, and always to the log.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security((), ("bearer" = [])),
    responses((status = 200, description = "ready", body = String, content_type = "text/plain"), (status = 503, body = Problem))
)]
pub async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Result<String, ApiError> {
    let known = Caller::from_headers(&headers, &state).is_ok();
    if state.is_shutting_down() {
        return Err(ApiError::unavailable("incidentd is shutting down"));
    }
    if let Err(e) = state.engine.store().ping().await {
        tracing::warn!(error = %e, "readiness: the store does not answer");
        return Err(ApiError::unavailable(if known {
            format!("the store does not answer: {e}")
        } else {
            "the store does not answer (the cause is in the log)".to_string()
        }));
    }
    Ok(match (state.reload_error.load().as_ref(), known) {
        (Some(e), true) => format!(
            "ready; the last reload was refused and the previous configuration is running:\n{e}\n"
        ),
        (Some(_), false) => "ready; the last reload was refused and the previous configuration is running (the problems are in the log, or ask /readyz with a token)\n".to_string(),
        (None, _) => "ready\n".to_string(),
    })
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()), responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Open incidents come from the store, so every instance reports the same, true figure.
    match state.engine.store().open_incidents_by_severity().await {
        Ok(counts) => {
            for s in Severity::ALL {
                let n = counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
                metrics::gauge!("incidentd_incidents_open", "severity" => s.as_str()).set(n as f64);
            }
            metrics::gauge!("incidentd_store_up").set(1.0);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count open incidents");
            metrics::gauge!("incidentd_store_up").set(0.0);
        }
    }
    // Delivery backlog, from the store: the same figure on every instance.
    if let Ok((depth, oldest)) = state.engine.store().delivery_queue().await {
        metrics::gauge!("incidentd_delivery_queue_depth").set(depth as f64);
        let age = oldest.map_or(0.0, |t| {
            (crate::domain::time::to_micros(chrono::Utc::now()) - t).max(0) as f64 / 1e6
        });
        metrics::gauge!("incidentd_delivery_oldest_pending_seconds").set(age);
    }
    if let (Ok(pending), Ok(dead)) = (
        state.engine.store().timers_pending().await,
        state.engine.store().timers_dead().await,
    ) {
        metrics::gauge!("incidentd_timers_pending").set(pending as f64);
        metrics::gauge!("incidentd_timers_dead").set(dead as f64);
    }
    metrics::gauge!("incidentd_ingest_queue_depth").set(state.engine.ingest_queue().depth() as f64);
    // Heartbeats, from the store: the same figure on every instance.
    let beats = state.live().heartbeats.clone();
    if let Ok(views) =
        crate::engine::heartbeats::list(state.engine.store(), &beats, chrono::Utc::now()).await
    {
        for v in views {
            let late = if v.state == "late" { 1.0 } else { 0.0 };
            metrics::gauge!("incidentd_heartbeat_late", "name" => v.name.clone()).set(late);
            if let Some(t) = v.last_seen_at {
                metrics::gauge!("incidentd_heartbeat_last_seen_timestamp_seconds", "name" => v.name)
                    .set(t.timestamp_micros() as f64 / 1e6);
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}

pub async fn not_found(uri: Uri) -> ApiError {
    let _ = StatusCode::NOT_FOUND;
    ApiError::not_found(format!(
        "no such endpoint `{}`; the API is described at /api/v1/openapi.json",
        uri.path()
    ))
}
