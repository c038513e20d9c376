//! Task and approval endpoints: the joint team's work on an incident.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, Caller, role};
use super::error::{ApiError, Problem};
use super::extract::{IncidentId, Json, MaybeJson, Path, Query};
use crate::engine::response::TaskView;
use crate::engine::{EngineError, NewTaskRequest, Reassign};
use crate::store::{TaskFilter, TeamRow};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentTasks {
    /// The playbook the incident runs, and the severity it was applied at.
    pub playbook: Option<String>,
    pub severity: Option<String>,
    /// The joint team: each department's paged level and acknowledgement.
    pub team: Vec<TeamRow>,
    pub tasks: Vec<TaskView>,
}

/// An incident's playbook, team and tasks (with what blocks each one).
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/tasks",
    tag = "tasks",
    params(("id" = i64, Path)),
    responses((status = 200, body = IncidentTasks), (status = 404, body = Problem))
)]
pub async fn incident_tasks(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
) -> Result<axum::Json<IncidentTasks>, ApiError> {
    let store = state.engine.store();
    if store
        .incident(id)
        .await
        .map_err(EngineError::from)?
        .is_none()
    {
        return Err(ApiError::not_found(format!("there is no incident {id}")));
    }
    let pb = store
        .incident_playbook(id)
        .await
        .map_err(EngineError::from)?;
    let team = store.team(id).await.map_err(EngineError::from)?;
    let tasks = state.engine.incident_tasks(id).await?;
    Ok(axum::Json(IncidentTasks {
        playbook: pb.as_ref().map(|p| p.0.clone()),
        severity: pb.map(|p| p.1),
        team,
        tasks,
    }))
}

/// Add a task by hand.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/tasks",
    tag = "tasks",
    params(("id" = i64, Path)),
    request_body = NewTaskRequest,
    responses((status = 201, body = TaskView), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn add_task(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(r): Json<NewTaskRequest>,
) -> Result<(StatusCode, axum::Json<TaskView>), ApiError> {
    let depts = state.live().department_ids();
    let v = state
        .engine
        .add_task(id, r, &depts, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(v)))
}

/// Acknowledge a task (and with it the department's page: escalation stops). Twice is harmless.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/tasks/{task}/ack",
    tag = "tasks",
    params(("id" = i64, Path), ("task" = String, Path)),
    responses((status = 200, body = TaskView), (status = 404, body = Problem), (status = 409, body = Problem))
)]
pub async fn ack(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Path((id, task)): Path<(i64, String)>,
) -> Result<axum::Json<TaskView>, ApiError> {
    Ok(axum::Json(
        state.engine.ack_task(id, &task, &caller.actor()).await?,
    ))
}

/// Acknowledge a department's page (its escalation stops), also when it has no task at this
/// severity. Twice is harmless.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/team/{department}/ack",
    tag = "tasks",
    params(("id" = i64, Path), ("department" = String, Path)),
    responses((status = 200, body = Vec<TeamRow>), (status = 404, body = Problem), (status = 409, body = Problem))
)]
pub async fn ack_page(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Path((id, department)): Path<(i64, String)>,
) -> Result<axum::Json<Vec<TeamRow>>, ApiError> {
    Ok(axum::Json(
        state
            .engine
            .ack_page(id, &department, None, &caller.actor())
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    #[serde(default)]
    pub note: Option<String>,
}

/// Complete a task, with a note. Refused (409) while what it depends on is not done or approved.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/tasks/{task}/complete",
    tag = "tasks",
    params(("id" = i64, Path), ("task" = String, Path)),
    request_body = Note,
    responses((status = 200, body = TaskView), (status = 404, body = Problem), (status = 409, body = Problem))
)]
pub async fn complete(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Path((id, task)): Path<(i64, String)>,
    MaybeJson(body): MaybeJson<Note>,
) -> Result<axum::Json<TaskView>, ApiError> {
    let note = body.note;
    Ok(axum::Json(
        state
            .engine
            .complete_task(id, &task, note, &caller.actor())
            .await?,
    ))
}

/// Give a task to another person or department.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/tasks/{task}/reassign",
    tag = "tasks",
    params(("id" = i64, Path), ("task" = String, Path)),
    request_body = Reassign,
    responses((status = 200, body = TaskView), (status = 404, body = Problem), (status = 422, body = Problem))
)]
pub async fn reassign(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Path((id, task)): Path<(i64, String)>,
    Json(r): Json<Reassign>,
) -> Result<axum::Json<TaskView>, ApiError> {
    let depts = state.live().department_ids();
    Ok(axum::Json(
        state
            .engine
            .reassign(id, &task, r, &depts, &caller.actor())
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// `true`: tasks of the departments this token acts for, or assigned to its name.
    #[serde(default)]
    pub mine: Option<bool>,
    /// `true`: only open tasks past their due time.
    #[serde(default)]
    pub overdue: Option<bool>,
    pub department: Option<String>,
    pub incident: Option<i64>,
    /// Include done, approved and rejected tasks (default: open ones only).
    #[serde(default)]
    pub all: Option<bool>,
    pub limit: Option<i64>,
}

super::page::listing!(
    /// Tasks (or approvals) across incidents, soonest due first: at most `limit`, in one
    /// page — narrow with the filters.
    TaskList,
    TaskView
);

/// Open tasks across incidents (`mine`, `overdue`, `department`, `incident` filters).
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    tag = "tasks",
    params(TaskQuery),
    responses((status = 200, body = TaskList))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<role::Read>,
    Query(q): Query<TaskQuery>,
) -> Result<axum::Json<TaskList>, ApiError> {
    let limit = super::page::limit(q.limit)?;
    let mut f = TaskFilter {
        incident_id: q.incident,
        open: !q.all.unwrap_or(false),
        overdue_at: q
            .overdue
            .unwrap_or(false)
            .then(|| crate::domain::time::to_micros(chrono::Utc::now())),
        limit,
        ..Default::default()
    };
    if let Some(d) = q.department {
        f.departments = vec![d];
    }
    let mut tasks = Vec::new();
    if q.mine.unwrap_or(false) {
        if !caller.departments.is_empty() {
            let mut by_dept = f.clone();
            if by_dept.departments.is_empty() {
                by_dept.departments = caller.departments.clone();
            }
            tasks.extend(state.engine.list_tasks(&by_dept).await?);
        }
        let mut assigned = f.clone();
        assigned.assignee = Some(caller.name.clone());
        for t in state.engine.list_tasks(&assigned).await? {
            if !tasks.iter().any(|x: &TaskView| x.id == t.id) {
                tasks.push(t);
            }
        }
    } else {
        tasks = state.engine.list_tasks(&f).await?;
    }
    Ok(axum::Json(TaskList::whole(tasks)))
}

/// Approval tasks still waiting for a decision (the gates), across incidents.
#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    tag = "approvals",
    params(TaskQuery),
    responses((status = 200, body = TaskList))
)]
pub async fn approvals(
    State(state): State<AppState>,
    caller: Authorized<role::Read>,
    Query(q): Query<TaskQuery>,
) -> Result<axum::Json<TaskList>, ApiError> {
    let limit = super::page::limit(q.limit)?;
    let f = TaskFilter {
        incident_id: q.incident,
        open: !q.all.unwrap_or(false),
        approval: Some(true),
        limit,
        ..Default::default()
    };
    let mut tasks = state.engine.list_tasks(&f).await?;
    if q.mine.unwrap_or(false) {
        tasks.retain(|t| t.approvers.iter().any(|d| caller.departments.contains(d)));
    }
    Ok(axum::Json(TaskList::whole(tasks)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why; required to reject, and to override a warning.
    #[serde(default)]
    pub reason: Option<String>,
    /// Approve although the notice's public text looks internal (Legal only, with a reason):
    /// the warning and the reason are recorded. Without it a warning refuses the approval,
    /// whatever the reason says.
    #[serde(default)]
    pub override_warning: bool,
}

/// Approve a gate for the departments this token acts for. It is approved once every
/// approving department has approved.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{approval}/approve",
    tag = "approvals",
    params(("approval" = i64, Path)),
    request_body = Decision,
    responses((status = 200, body = TaskView), (status = 403, body = Problem), (status = 409, body = Problem))
)]
pub async fn approve(
    State(state): State<AppState>,
    caller: Authorized<role::Approve>,
    Path(approval): Path<i64>,
    MaybeJson(body): MaybeJson<Decision>,
) -> Result<axum::Json<TaskView>, ApiError> {
    decide(state, caller.into_caller(), approval, true, body).await
}

/// Reject a gate (with a reason): what depends on it stays blocked, showing the reason.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{approval}/reject",
    tag = "approvals",
    params(("approval" = i64, Path)),
    request_body = Decision,
    responses((status = 200, body = TaskView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn reject(
    State(state): State<AppState>,
    caller: Authorized<role::Approve>,
    Path(approval): Path<i64>,
    MaybeJson(body): MaybeJson<Decision>,
) -> Result<axum::Json<TaskView>, ApiError> {
    decide(state, caller.into_caller(), approval, false, body).await
}

async fn decide(
    state: AppState,
    caller: Caller,
    approval: i64,
    approve: bool,
    body: Decision,
) -> Result<axum::Json<TaskView>, ApiError> {
    let reason = body.reason.clone();
    let live = state.live.load_full();
    let checks = live.gate_checks();
    Ok(axum::Json(
        state
            .engine
            .decide(
                approval,
                approve,
                reason,
                body.override_warning,
                &caller.actor(),
                &caller.departments,
                caller.is_admin(),
                &checks,
            )
            .await?,
    ))
}
