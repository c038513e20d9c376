//! Obligation endpoints: what the jurisdiction packs say incidents owe, by when, and why.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{IncidentId, Json, Path, Query};
use crate::domain::duration::{HumanDuration, humanize};
use crate::domain::regulation::ObligationOutcome;
use crate::domain::time::{from_micros, to_micros};
use crate::engine::EngineError;
use crate::engine::obligations::MetRequest;
use crate::store::{GradeRow, ObligationFilter, ObligationRow};

/// An obligation as people read it: what, to whom, by when, how much time is left, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ObligationView {
    pub incident_id: i64,
    pub key: String,
    pub jurisdiction: String,
    pub title: String,
    pub kind: String,
    pub report_kind: Option<String>,
    pub recipient: Option<String>,
    pub recipient_name: Option<String>,
    /// The department reminded and escalated to.
    pub owner: String,
    /// `required`, `exempt`, `not_required`, `hold` or `withdrawn`.
    pub standing: String,
    /// The exemption or hold that decided the standing.
    pub exemption: Option<String>,
    /// `open` or `met`.
    pub status: String,
    pub clock: String,
    pub clock_start: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    /// Seconds until the deadline; negative when overdue. Absent without a deadline.
    pub seconds_left: Option<i64>,
    /// The same in a person's terms: `2h 5m left`, `3h 10m overdue`, `met 20m late`.
    pub time_left: String,
    pub met_at: Option<DateTime<Utc>>,
    pub met_by: Option<String>,
    pub met_ref: Option<String>,
    pub late_reason: Option<String>,
    /// The law, what in the facts made it apply, how the deadline was counted, any exemption.
    pub why: Vec<String>,
}

pub(crate) fn view(r: &ObligationRow, now: DateTime<Utc>) -> ObligationView {
    let detail: Option<ObligationOutcome> = serde_json::from_str(&r.detail).ok();
    let due = r.due_at.map(from_micros);
    let seconds_left = due.map(|d| (d - now).num_seconds());
    let time_left = match (r.status.as_str(), due, r.met_at) {
        ("met", Some(d), Some(m)) if m > to_micros(d) => format!(
            "met {} late",
            humanize((from_micros(m) - d).to_std().unwrap_or_default())
        ),
        ("met", _, _) => "met".to_string(),
        _ if r.standing != "required" => r.standing.replace('_', " "),
        (_, None, _) => format!("waits for {}", r.clock),
        (_, Some(d), _) if d >= now => {
            format!("{} left", humanize((d - now).to_std().unwrap_or_default()))
        }
        (_, Some(d), _) => format!(
            "{} overdue",
            humanize((now - d).to_std().unwrap_or_default())
        ),
    };
    ObligationView {
        incident_id: r.incident_id,
        key: r.key.clone(),
        jurisdiction: r.jurisdiction.clone(),
        title: detail
            .as_ref()
            .map_or_else(|| r.obligation.clone(), |d| d.title.clone()),
        kind: r.kind.clone(),
        report_kind: r.report_kind.clone(),
        recipient: r.recipient.clone(),
        recipient_name: detail.as_ref().and_then(|d| d.recipient_name.clone()),
        owner: r.owner.clone(),
        standing: r.standing.clone(),
        exemption: detail.as_ref().and_then(|d| d.exemption.clone()),
        status: r.status.clone(),
        clock: r.clock.clone(),
        clock_start: r.clock_start.map(from_micros),
        due_at: due,
        seconds_left: (r.status == "open" && r.standing == "required")
            .then_some(seconds_left)
            .flatten(),
        time_left,
        met_at: r.met_at.map(from_micros),
        met_by: r.met_by.clone(),
        met_ref: r.met_ref.clone(),
        late_reason: r.late_reason.clone(),
        why: detail.map(|d| d.why).unwrap_or_default(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ObligationQuery {
    /// Only those due within this long from now (`4h`, `3d`), overdue ones included.
    #[param(value_type = Option<String>)]
    pub due_within: Option<HumanDuration>,
    pub incident: Option<i64>,
    /// `CN`, `SG`, `EU`, …
    pub jurisdiction: Option<String>,
    /// `true`: also met, exempt, not required, held and withdrawn ones (default: only those
    /// still owed).
    #[serde(default)]
    pub all: bool,
    /// At most this many (default 200, at most 1000).
    pub limit: Option<i64>,
    /// `true`: also drill incidents' obligations (left out by default: drills never count).
    #[serde(default)]
    pub drills: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ObligationList {
    /// Soonest deadline first; those without a deadline last; at most `limit`, in one page.
    pub items: Vec<ObligationView>,
    /// Always `null`: narrow with the filters instead.
    pub next_cursor: Option<String>,
}

/// Obligations across incidents, soonest deadline first.
///
/// By default only those still owed (required and not met); `due_within=4h` keeps those due
/// in the next four hours and those already overdue.
#[utoipa::path(
    get,
    path = "/api/v1/obligations",
    tag = "obligations",
    params(ObligationQuery),
    responses((status = 200, body = ObligationList), (status = 400, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Query(q): Query<ObligationQuery>,
) -> Result<axum::Json<ObligationList>, ApiError> {
    let limit = match q.limit {
        None => 200,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("limit={n}: give a number from 1 to 1000"),
            ));
        }
    };
    let now = Utc::now();
    let rows = state
        .engine
        .store()
        .obligations(&ObligationFilter {
            incident_id: q.incident,
            pending: !q.all,
            due_before: q
                .due_within
                .map(|d| to_micros(now) + d.0.as_micros().min(i64::MAX as u128) as i64),
            jurisdiction: q.jurisdiction.map(|j| j.trim().to_ascii_uppercase()),
            limit,
            drills: q.drills,
        })
        .await
        .map_err(EngineError::from)?;
    Ok(axum::Json(ObligationList {
        items: rows.iter().map(|r| view(r, now)).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentRegulation {
    /// The current grade per jurisdiction, with the criterion that gave it and why.
    pub grades: Vec<GradeRow>,
    /// Every grade change, oldest first.
    pub grade_history: Vec<GradeRow>,
    /// Every obligation, soonest deadline first, including met, exempt and withdrawn ones.
    pub obligations: Vec<ObligationView>,
}

pub(super) async fn regulation_of(
    state: &AppState,
    id: i64,
) -> Result<IncidentRegulation, ApiError> {
    let store = state.engine.store();
    let now = Utc::now();
    let history = store.grades_of(id).await.map_err(EngineError::from)?;
    let mut grades: Vec<GradeRow> = Vec::new();
    for g in history.iter().rev() {
        if !grades.iter().any(|x| x.jurisdiction == g.jurisdiction) {
            grades.push(g.clone());
        }
    }
    grades.sort_by(|a, b| a.jurisdiction.cmp(&b.jurisdiction));
    let rows = store.obligations_of(id).await.map_err(EngineError::from)?;
    Ok(IncidentRegulation {
        grades,
        grade_history: history,
        obligations: rows.iter().map(|r| view(r, now)).collect(),
    })
}

/// An incident's grades and obligations under its jurisdiction packs.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/obligations",
    tag = "obligations",
    params(("id" = i64, Path)),
    responses((status = 200, body = IncidentRegulation), (status = 404, body = Problem))
)]
pub async fn incident_obligations(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
) -> Result<axum::Json<IncidentRegulation>, ApiError> {
    if state
        .engine
        .store()
        .incident(id)
        .await
        .map_err(EngineError::from)?
        .is_none()
    {
        return Err(ApiError::not_found(format!("there is no incident {id}")));
    }
    Ok(axum::Json(regulation_of(&state, id).await?))
}

/// Record that an obligation other than a report was met outside incidentd (a police report
/// filed, an assessment concluded), with a reference. Past its deadline a `late_reason` is
/// required. Reports are met by submitting them.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/obligations/{key}/met",
    tag = "obligations",
    params(("id" = i64, Path), ("key" = String, Path, description = "e.g. CN:police_report")),
    request_body = MetRequest,
    responses(
        (status = 200, body = ObligationView),
        (status = 404, body = Problem),
        (status = 409, body = Problem),
        (status = 422, body = Problem),
    )
)]
pub async fn met(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Path((id, key)): Path<(i64, String)>,
    Json(r): Json<MetRequest>,
) -> Result<axum::Json<ObligationView>, ApiError> {
    let row = state
        .engine
        .meet_obligation(id, &key, r, &caller.actor())
        .await?;
    Ok(axum::Json(view(&row, Utc::now())))
}
