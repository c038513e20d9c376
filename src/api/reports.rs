//! Regulator reports and the post-incident summary.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{IncidentId, Json, Path, Query};
use crate::engine::reports::{DraftFailure, DraftRequest, ReportCtx, ReportView, SubmitRequest};
use crate::engine::summary::Summary;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (default), `markdown` or `html`: the document itself.
    #[serde(default)]
    pub format: Option<String>,
}

pub(crate) fn ctx(live: &super::Live) -> ReportCtx<'_> {
    ReportCtx {
        packs: &live.packs,
        templates: &live.templates,
        organisation: &live.organisation,
        approvers: &live.reports.approvers,
        regulators: &live.regulators,
        public_url: &live.public_url,
    }
}

/// The document in the format asked for, or `None` for JSON.
fn document(
    format: Option<&str>,
    markdown: &str,
    html: &str,
) -> Result<Option<Response>, ApiError> {
    let (ctype, body) = match format.unwrap_or("json") {
        "json" => return Ok(None),
        "markdown" | "md" => ("text/markdown; charset=utf-8", markdown.to_string()),
        "html" => ("text/html; charset=utf-8", html.to_string()),
        other => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("format `{other}`: use json, markdown or html"),
            ));
        }
    };
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    Ok(Some(res))
}

/// Draft the next version of a report owed by the incident (a `report` obligation): its fields
/// are resolved from the facts, the timeline, the notices and the `inputs`, linted (422 listing
/// each missing field and how to fill it), rendered in the jurisdiction's language, and given
/// an approval task. Older unsubmitted versions are superseded.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/reports",
    tag = "reports",
    params(("id" = i64, Path)),
    request_body = DraftRequest,
    responses((status = 201, body = ReportView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn draft(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(r): Json<DraftRequest>,
) -> Result<(StatusCode, axum::Json<ReportView>), ApiError> {
    let live = state.live.load_full();
    match state
        .engine
        .draft_report(id, r, &ctx(&live), &caller.actor())
        .await
    {
        Ok(v) => Ok((StatusCode::CREATED, axum::Json(v))),
        Err(DraftFailure::Engine(e)) => Err(e.into()),
        Err(DraftFailure::Lint(l)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "report_incomplete",
            l.detail,
        )
        .with_missing(serde_json::to_value(&l.missing).unwrap_or_default())),
    }
}

/// Every version of the incident's reports (without the documents).
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/reports",
    tag = "reports",
    params(("id" = i64, Path)),
    responses((status = 200, body = ReportList), (status = 404, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
) -> Result<axum::Json<ReportList>, ApiError> {
    Ok(axum::Json(ReportList::whole(
        state.engine.reports(id).await?,
    )))
}

super::page::listing!(
    /// Every version of an incident's reports, without the documents.
    ReportList,
    ReportView
);

/// One version with its Markdown and HTML; `?format=markdown|html` returns the document itself.
#[utoipa::path(
    get,
    path = "/api/v1/reports/{rid}",
    tag = "reports",
    params(("rid" = i64, Path), FormatQuery),
    responses((status = 200, body = ReportView), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Path(rid): Path<i64>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let row = state.engine.report(rid).await?;
    if let Some(doc) = document(q.format.as_deref(), &row.markdown, &row.html)? {
        return Ok(doc);
    }
    Ok(axum::Json(ReportView::of(&row, true)).into_response())
}

/// Submit an approved version: `email` or `webhook` to the regulator's address in
/// `[[regulators]]` (through the outbox), or `manual` with the regulator's reference and the
/// time. Past the obligation's deadline a `late_reason` is required. The obligation is met and
/// the version becomes immutable.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/reports/{rid}/submit",
    tag = "reports",
    params(("id" = i64, Path), ("rid" = i64, Path)),
    request_body = SubmitRequest,
    responses((status = 200, body = ReportView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem))
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    Path((id, rid)): Path<(i64, i64)>,
    Json(r): Json<SubmitRequest>,
) -> Result<axum::Json<ReportView>, ApiError> {
    let live = state.live.load_full();
    Ok(axum::Json(
        state
            .engine
            .submit_report(id, rid, r, &ctx(&live), &caller.actor())
            .await?,
    ))
}

/// The post-incident summary: the times that matter (detected → declared → contained →
/// notified → reported → closed), each against its target, and the condensed timeline.
/// `?format=markdown|html` returns it as a document.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/summary",
    tag = "reports",
    params(("id" = i64, Path), FormatQuery),
    responses((status = 200, body = Summary), (status = 404, body = Problem))
)]
pub async fn summary(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let s = state.engine.summary(id).await?;
    if let Some(doc) = document(q.format.as_deref(), &s.markdown(), &s.html())? {
        return Ok(doc);
    }
    Ok(axum::Json(s).into_response())
}
