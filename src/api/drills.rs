//! Drill endpoints: start a scenario now, list past drills and the next scheduled ones, show one.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path};
use crate::domain::time::{from_micros, to_micros};
use crate::engine::EngineError;
use crate::store::DrillRow;

/// Start a drill now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDrill {
    /// A scenario's `name` (config/drills/*.toml).
    pub scenario: String,
}

/// One drill run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrillView {
    pub id: i64,
    pub scenario: String,
    /// `tabletop` or `functional`.
    pub mode: String,
    /// The drill incident (`drill = true`).
    pub incident_id: i64,
    pub started_at: DateTime<Utc>,
    /// The time limit: the drill ends and is scored then, if not before.
    pub ends_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `running` or `ended`.
    pub status: String,
    /// Who started it (`schedule` for a cron schedule).
    pub started_by: String,
    pub schedule_key: Option<String>,
    /// How the team did against the scenario's targets, once ended.
    #[schema(value_type = Option<Object>)]
    pub scorecard: Option<Value>,
    /// The after-action report, once ended.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
}

fn view(r: &DrillRow) -> DrillView {
    let json = |s: &Option<String>| s.as_deref().and_then(|t| serde_json::from_str(t).ok());
    DrillView {
        id: r.id,
        scenario: r.scenario.clone(),
        mode: r.mode.clone(),
        incident_id: r.incident_id,
        started_at: from_micros(r.started_at),
        ends_at: from_micros(r.ends_at),
        ended_at: r.ended_at.map(from_micros),
        status: r.status.clone(),
        started_by: r.started_by.clone(),
        schedule_key: r.schedule_key.clone(),
        scorecard: json(&r.scorecard),
        report: json(&r.report),
    }
}

/// A scheduled drill's next run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NextDrill {
    pub scenario: String,
    pub cron: String,
    pub time_zone: String,
    pub next_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrillList {
    /// Past and running drills, newest first (the newest 200).
    pub items: Vec<DrillView>,
    /// Always `null`: the newest 200 drills are all there is to page.
    pub next_cursor: Option<String>,
    /// The `[[drills.schedule]]` entries, soonest first.
    pub scheduled: Vec<NextDrill>,
    /// The scenarios that can be started.
    pub scenarios: Vec<String>,
    /// How the scored drills compare, oldest to newest.
    pub trend: crate::engine::scorecard::Trend,
}

/// Start a drill of a scenario now.
///
/// Declares the drill incident (marked 【演练】DRILL), lets it reach only the scenario's
/// participants, capture recipients and owner, and schedules its injects and its end.
#[utoipa::path(
    post,
    path = "/api/v1/drills",
    tag = "drills",
    request_body = StartDrill,
    responses(
        (status = 201, body = DrillView),
        (status = 404, body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Json(b): Json<StartDrill>,
) -> Result<(StatusCode, HeaderMap, axum::Json<DrillView>), ApiError> {
    let live = state.live();
    let regulation = live.regulation();
    let ctx = live.drill_ctx(&regulation);
    let now = Utc::now();
    let store = state.engine.store();
    let mut tx = store.begin_write().await.map_err(EngineError::from)?;
    let (row, events) =
        crate::engine::drills::start(&mut tx, &ctx, b.scenario.trim(), &caller.actor(), None, now)
            .await?;
    tx.append(&events).await.map_err(EngineError::from)?;
    tx.commit().await.map_err(EngineError::from)?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/drills/{}", row.id)) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, axum::Json(view(&row))))
}

/// Past drills (newest first), the next scheduled ones, and the scenarios.
#[utoipa::path(
    get,
    path = "/api/v1/drills",
    tag = "drills",
    responses((status = 200, body = DrillList))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
) -> Result<axum::Json<DrillList>, ApiError> {
    let rows = state
        .engine
        .store()
        .drills(200)
        .await
        .map_err(EngineError::from)?;
    let live = state.live();
    let now = Utc::now();
    let mut scheduled: Vec<NextDrill> = live
        .drill_schedules
        .iter()
        .map(|s| NextDrill {
            scenario: s.scenario.clone(),
            cron: s.cron.clone(),
            time_zone: s.time_zone.clone(),
            next_at: next_run(&s.cron, &s.time_zone, now),
        })
        .collect();
    scheduled.sort_by_key(|n| n.next_at.map_or(i64::MAX, to_micros));
    let cards: Vec<(DateTime<Utc>, crate::engine::scorecard::Scorecard)> = rows
        .iter()
        .filter_map(|r| {
            let c = serde_json::from_str(r.scorecard.as_deref()?).ok()?;
            Some((from_micros(r.started_at), c))
        })
        .collect();
    Ok(axum::Json(DrillList {
        trend: crate::engine::scorecard::trend(&cards),
        items: rows.iter().map(view).collect(),
        next_cursor: None,
        scheduled,
        scenarios: live.drills.names().iter().map(|s| s.to_string()).collect(),
    }))
}

/// When a schedule fires next.
pub fn next_run(cron: &str, zone: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz: chrono_tz::Tz = zone.parse().ok()?;
    let c = crate::scheduler::validate_cron(cron).ok()?;
    c.find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One drill, with its scorecard and after-action report once it has ended.
#[utoipa::path(
    get,
    path = "/api/v1/drills/{id}",
    tag = "drills",
    params(("id" = i64, Path, description = "drill id")),
    responses((status = 200, body = DrillView), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Path(id): Path<i64>,
) -> Result<axum::Json<DrillView>, ApiError> {
    let row = state
        .engine
        .store()
        .drill(id)
        .await
        .map_err(EngineError::from)?
        .ok_or_else(|| ApiError::not_found(format!("there is no drill {id}")))?;
    Ok(axum::Json(view(&row)))
}
