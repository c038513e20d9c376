//! Affected people and notice campaigns.
//!
//! The subject import takes its body as a stream (CSV or NDJSON, any size: it is not bound by
//! `server.max_body_bytes` nor by the request timeout) and answers with the import report.
//! Listings show contacts masked; nothing here ever returns a full phone number or address.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{IncidentId, Json, Path, Query};
use super::page::{cursor, limit as page_limit};
use crate::engine::EngineError;
use crate::engine::campaign::{CampaignRequest, CampaignView};
use crate::engine::subjects::{ImportCtx, ImportReport};
use crate::store::SubjectView;
use crate::subjects::parse::Format;

/// Import affected people: CSV (`Content-Type: text/csv`, header row
/// `subject_id,name,phone,email,site_user_id,locale,channels,jurisdiction`) or NDJSON
/// (`application/x-ndjson`, one object per line), streamed. Good rows are kept, bad ones are
/// listed with their line and reason; a subject already present is updated.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/subjects",
    tag = "subjects",
    params(("id" = i64, Path)),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, body = ImportReport),
        (status = 409, body = Problem),
        (status = 415, body = Problem),
        (status = 422, body = Problem)
    )
)]
pub async fn import(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<ImportReport>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::detect(ct).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the subject list as CSV (Content-Type: text/csv) or NDJSON (Content-Type: application/x-ndjson), not `{ct}`"
            ),
        )
    })?;
    let live = state.live();
    let template = live.notices.template.clone();
    let ctx = ImportCtx {
        keys: live.subject_keys.clone(),
        locales: live
            .templates
            .locales(&template)
            .into_iter()
            .map(str::to_string)
            .collect(),
        default_locale: &live.organisation.default_locale,
        region: live.organisation.phone_region(),
        batch: live.subjects.import_batch,
        rules: &live.rules,
    };
    let report = state
        .engine
        .import_subjects(id, format, body, &ctx, &caller.actor())
        .await?;
    Ok(axum::Json(report))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubjectsQuery {
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectPage {
    /// Subjects the incident holds.
    pub total: i64,
    /// This page, in import order.
    pub items: Vec<SubjectView>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An incident's affected people, contacts masked, in import order.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/subjects",
    tag = "subjects",
    params(("id" = i64, Path), SubjectsQuery),
    responses((status = 200, body = SubjectPage), (status = 404, body = Problem))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
    Query(q): Query<SubjectsQuery>,
) -> Result<axum::Json<SubjectPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let store = state.engine.store();
    let subjects = store
        .subjects_page(id, cursor(q.cursor.as_deref())?.unwrap_or(0), limit)
        .await
        .map_err(EngineError::from)?;
    let total = store.subject_count(id).await.map_err(EngineError::from)?;
    Ok(axum::Json(SubjectPage {
        next_cursor: super::page::next(&subjects, limit, |s| s.id),
        total,
        items: subjects,
    }))
}

/// One notice delivery to a subject: the proof of who was told what, when, and how.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeProof {
    pub campaign: i64,
    pub delivery: i64,
    pub channel: String,
    pub locale: String,
    pub status: String,
    pub attempts: i32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::domain::time::micros")]
    pub enqueued_at: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::domain::time::micros::option")]
    pub sent_at: Option<i64>,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    /// The delivery this one replaced when it died (first-reachable campaigns).
    pub fallback_of: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectProof {
    pub subject: SubjectView,
    pub notices: Vec<NoticeProof>,
}

/// A subject and every notice sent to them: channel, time, provider message id and status —
/// the answer to "was this person told, and how?".
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/subjects/{subject_id}",
    tag = "subjects",
    params(("id" = i64, Path), ("subject_id" = String, Path)),
    responses((status = 200, body = SubjectProof), (status = 404, body = Problem))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Path((id, subject_id)): Path<(i64, String)>,
) -> Result<axum::Json<SubjectProof>, ApiError> {
    let store = state.engine.store();
    let subject = store
        .subject(id, &subject_id)
        .await
        .map_err(EngineError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!("incident {id} has no subject `{subject_id}`"))
        })?;
    let notices = store
        .subject_deliveries(id, subject.id)
        .await
        .map_err(EngineError::from)?
        .into_iter()
        .map(|(campaign, d)| NoticeProof {
            campaign,
            delivery: d.id,
            channel: d.channel,
            locale: d.locale,
            status: d.status,
            attempts: d.attempts,
            enqueued_at: d.created_at,
            sent_at: d.sent_at,
            provider: d.provider,
            provider_message_id: d.provider_message_id,
            last_error: d.last_error,
            fallback_of: d.fallback_of,
        })
        .collect();
    Ok(axum::Json(SubjectProof { subject, notices }))
}

/// An incident's subject imports, each with its report.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/subject-imports",
    tag = "subjects",
    params(("id" = i64, Path)),
    responses((status = 200, body = ImportList))
)]
pub async fn imports(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
) -> Result<axum::Json<ImportList>, ApiError> {
    let rows = state
        .engine
        .store()
        .imports(id)
        .await
        .map_err(EngineError::from)?;
    Ok(axum::Json(ImportList::whole(rows)))
}

super::page::listing!(
    /// An incident's subject imports, oldest first, each with its report.
    ImportList,
    crate::store::ImportRow
);

/// Start a notice campaign: one delivery per subject per chosen channel (`mode: all`), or the
/// first reachable channel with the others as fallbacks (`mode: first`). Nothing is sent
/// before the incident's notice approval task is approved. Asking again for the same template
/// returns the existing campaign (200): nobody is told twice.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/notices",
    tag = "subjects",
    params(("id" = i64, Path)),
    request_body = CampaignRequest,
    responses(
        (status = 201, body = CampaignView),
        (status = 200, body = CampaignView),
        (status = 409, body = Problem),
        (status = 422, body = Problem)
    )
)]
pub async fn start_campaign(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(r): Json<CampaignRequest>,
) -> Result<(StatusCode, axum::Json<CampaignView>), ApiError> {
    let live = state.live();
    let v = state
        .engine
        .create_campaign(id, r, &live.campaign_ctx(), &caller.actor())
        .await?;
    let status = if v.existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(v)))
}

/// An incident's notice campaigns with their progress.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/notices",
    tag = "subjects",
    params(("id" = i64, Path)),
    responses((status = 200, body = CampaignList))
)]
pub async fn campaigns(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
) -> Result<axum::Json<CampaignList>, ApiError> {
    let rows = state
        .engine
        .store()
        .campaigns(Some(id))
        .await
        .map_err(EngineError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for c in rows {
        out.push(state.engine.campaign_view(c, false).await?);
    }
    Ok(axum::Json(CampaignList::whole(out)))
}

super::page::listing!(
    /// An incident's notice campaigns, each with its progress.
    CampaignList,
    CampaignView
);

/// One campaign: status, subjects enqueued, unreachable subjects, and deliveries by channel
/// and status (pending, sending, failed, sent, dead).
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/notices/{campaign}",
    tag = "subjects",
    params(("id" = i64, Path), ("campaign" = i64, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = Problem))
)]
pub async fn campaign(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    Path((id, campaign)): Path<(i64, i64)>,
) -> Result<axum::Json<CampaignView>, ApiError> {
    let c = state
        .engine
        .store()
        .campaigns(Some(id))
        .await
        .map_err(EngineError::from)?
        .into_iter()
        .find(|c| c.id == campaign)
        .ok_or_else(|| ApiError::not_found(format!("incident {id} has no campaign {campaign}")))?;
    Ok(axum::Json(state.engine.campaign_view(c, false).await?))
}
