//! The public announcement: responders publish it through the API (or the notice campaign
//! does, through the engine); anyone reads it at `/announcements/{slug}`, in the list at
//! `/announcements` and in the Atom feed `/announcements/feed.xml`, without a token.
//!
//! Drill announcements are served at their own address, marked DRILL and `noindex`, and are
//! never listed nor put in the feed.

mod page;
pub(crate) use page::esc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Authorized, role};
use super::error::{ApiError, Problem};
use super::extract::{IncidentId, Json};
use crate::engine::EngineError;
use crate::engine::announce::{AnnouncementVersion, Published, page_url, version_view};

/// Most entries in the list and the feed.
const PUBLIC_LIMIT: i64 = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Why it is published now (a person's decision, or the rule that found individual
    /// notice impractical). Kept in the audit trail and the version history; not shown on the
    /// public page.
    pub reason: String,
}

/// Draft the incident's public announcement from its current facts, or a new version of it
/// when the words changed (201): the version waits for its approval gate (`[announcements]
/// approvers`, who are paged) and is public once approved; `detail` says so. Unchanged words:
/// the latest version, 200, nothing written. Facts the announcement cannot go without are
/// listed in a 409.
#[utoipa::path(
    post,
    path = "/api/v1/incidents/{id}/announcement",
    tag = "announcements",
    params(("id" = i64, Path)),
    request_body = PublishRequest,
    responses(
        (status = 201, body = Published, description = "a new version"),
        (status = 200, body = Published, description = "unchanged: the latest version"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "missing facts, or the template cannot render"),
        (status = 422, body = Problem)
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    caller: Authorized<role::Write>,
    IncidentId(id): IncidentId,
    Json(r): Json<PublishRequest>,
) -> Result<(StatusCode, axum::Json<Published>), ApiError> {
    let live = state.live();
    let p = state
        .engine
        .publish_announcement(&live.announce_ctx(), id, &caller.actor(), &r.reason)
        .await?;
    let status = if p.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(p)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnnouncementHistory {
    pub slug: String,
    /// The public page (latest version).
    pub url: String,
    pub drill: bool,
    /// The version served at `url` (the newest approved one); none before one is approved.
    pub public_version: Option<i64>,
    /// Oldest first, each with its approval status.
    pub versions: Vec<AnnouncementVersion>,
}

/// The incident's announcement and every version of it.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/announcement",
    tag = "announcements",
    params(("id" = i64, Path)),
    responses((status = 200, body = AnnouncementHistory), (status = 404, body = Problem))
)]
pub async fn history(
    State(state): State<AppState>,
    _: Authorized<role::Read>,
    IncidentId(id): IncidentId,
) -> Result<axum::Json<AnnouncementHistory>, ApiError> {
    let store = state.engine.store();
    let Some(a) = store.announcement_of(id).await.map_err(EngineError::from)? else {
        if store
            .incident(id)
            .await
            .map_err(EngineError::from)?
            .is_none()
        {
            return Err(ApiError::not_found(format!("there is no incident {id}")));
        }
        return Err(ApiError::not_found(format!(
            "incident {id} has no announcement yet: publish one with POST /api/v1/incidents/{id}/announcement (incidentd announce {id} --reason …)"
        )));
    };
    let rows = store
        .announcement_versions(a.id)
        .await
        .map_err(EngineError::from)?;
    let gates = store
        .announcement_gates(a.id)
        .await
        .map_err(EngineError::from)?;
    let public_url = state.live().public_url.clone();
    let versions: Vec<AnnouncementVersion> = rows
        .iter()
        .map(|v| {
            let gate = gates.iter().find(|g| g.version == v.version);
            version_view(&a, v, gate, &public_url)
        })
        .collect();
    Ok(axum::Json(AnnouncementHistory {
        url: page_url(&public_url, &a.slug),
        slug: a.slug.clone(),
        drill: a.drill,
        public_version: versions
            .iter()
            .rev()
            .find(|v| v.status == "public")
            .map(|v| v.version),
        versions,
    }))
}

/// `?lang=` and `?version=`; anything else (tracking parameters) is ignored on public pages.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `zh-CN` or `en` (default: the browser's Accept-Language, then the organisation's).
    pub lang: Option<String>,
    /// An older version (default: the latest).
    pub version: Option<String>,
}

fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(h);
    res
}

/// No scripts, no external anything: the pages need only their own inline styles.
fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
}

fn failed(e: EngineError) -> Response {
    tracing::warn!(error = %e, "announcement page failed");
    let status = match e {
        EngineError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    html(status, page::error_page(status, None))
}

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

/// Published announcements, newest first (drills are not listed).
#[utoipa::path(
    get,
    path = "/announcements",
    tag = "announcements",
    security(()),
    params(PageQuery),
    responses((status = 200, content_type = "text/html", description = "the list, HTML"))
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let rows = match state
        .engine
        .store()
        .public_announcements(PUBLIC_LIMIT)
        .await
    {
        Ok(r) => r,
        Err(e) => return failed(e.into()),
    };
    let live = state.live();
    let shell = page::Shell::new(&live, q.lang.as_deref(), accept_language(&headers));
    html(StatusCode::OK, page::list_page(&shell, &rows))
}

/// One announcement: the latest version, or `?version=N`, in `?lang=` or the reader's language.
#[utoipa::path(
    get,
    path = "/announcements/{slug}",
    tag = "announcements",
    security(()),
    params(("slug" = String, Path), PageQuery),
    responses(
        (status = 200, content_type = "text/html", description = "the page, HTML"),
        (status = 404, content_type = "text/html", description = "no such announcement or version")
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let live = state.live();
    let shell = page::Shell::new(&live, q.lang.as_deref(), accept_language(&headers));
    let store = state.engine.store();
    let a = match store.announcement_by_slug(&slug).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                page::error_page(StatusCode::NOT_FOUND, Some(&shell)),
            );
        }
        Err(e) => return failed(e.into()),
    };
    // Only approved versions are public; one still waiting for its approval is not served.
    let versions = match store.public_versions(a.id).await {
        Ok(v) => v,
        Err(e) => return failed(e.into()),
    };
    let wanted = match q.version.as_deref().map(str::parse::<i64>) {
        None => versions.last(),
        Some(Ok(n)) => versions.iter().find(|v| v.version == n),
        Some(Err(_)) => None,
    };
    let Some(current) = wanted else {
        return html(
            StatusCode::NOT_FOUND,
            page::error_page(StatusCode::NOT_FOUND, Some(&shell)),
        );
    };
    let views: Vec<AnnouncementVersion> = versions
        .iter()
        .map(|v| version_view(&a, v, None, &live.public_url))
        .collect();
    let shown = version_view(&a, current, None, &live.public_url);
    html(
        StatusCode::OK,
        page::announcement_page(&shell, &shown, &views, q.version.is_some()),
    )
}

/// Atom 1.0: one entry per public version of the public announcements, newest first, in
/// `?lang=` or the reader's `Accept-Language` (default: the organisation's language); times in
/// the organisation's time zone.
#[utoipa::path(
    get,
    path = "/announcements/feed.xml",
    tag = "announcements",
    security(()),
    params(PageQuery),
    responses((status = 200, content_type = "application/atom+xml", description = "Atom 1.0 feed"))
)]
pub async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let rows = match state
        .engine
        .store()
        .public_announcement_versions(PUBLIC_LIMIT)
        .await
    {
        Ok(r) => r,
        Err(e) => return failed(e.into()),
    };
    let live = state.live();
    let shell = page::Shell::new(&live, q.lang.as_deref(), accept_language(&headers));
    let mut res = (StatusCode::OK, page::atom_feed(&live, &rows, &shell)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    secure(h);
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    res
}

/// A person's own notice page, `/n/{token}`: the link their SMS (or other short message)
/// carries when the incident has no public announcement. The token names the campaign and the
/// subject and is signed with a key derived from the contact key; the page shows the approved
/// notice in the person's language, without their name or contact.
pub async fn notice(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let live = state.live();
    let not_found = |lang: Option<&str>| {
        let shell = page::Shell::new(&live, lang, accept_language(&headers));
        html(
            StatusCode::NOT_FOUND,
            page::error_page(StatusCode::NOT_FOUND, Some(&shell)),
        )
    };
    let Some((campaign, subject)) = live
        .subject_keys
        .as_deref()
        .and_then(|k| k.verify_link(&token))
    else {
        return not_found(None);
    };
    let store = state.engine.store();
    let (subject_ids, campaign_ids) = ([subject], [campaign]);
    let (subjects, contents) = match tokio::join!(
        store.subject_contacts(&subject_ids),
        store.campaign_contents(&campaign_ids)
    ) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => return failed(e.into()),
    };
    let Some(s) = subjects.first().filter(|s| s.purged_at.is_none()) else {
        return not_found(None);
    };
    // The person's locale, else what it falls back to (their locale may have changed since).
    let pages: Vec<_> = contents
        .iter()
        .filter(|c| c.channel == crate::engine::campaign::PAGE)
        .collect();
    let Some(c) = crate::render::locale_chain(&s.locale)
        .iter()
        .find_map(|l| pages.iter().find(|c| c.locale.eq_ignore_ascii_case(l)))
        .or_else(|| pages.first())
    else {
        return not_found(Some(&s.locale));
    };
    let Ok(content) = serde_json::from_str::<crate::domain::message::Content>(&c.anonymous) else {
        return not_found(Some(&s.locale));
    };
    // The page's own words may name the page's link: it is this token.
    let content = crate::engine::campaign::fill_link(content, &token);
    let shell = page::Shell::new(&live, Some(&c.used_locale), None);
    let body = content.html.unwrap_or_else(|| {
        content
            .text
            .split("\n\n")
            .map(|p| format!("<p>{}</p>", page::esc(p)))
            .collect()
    });
    html(
        StatusCode::OK,
        page::notice_page(
            &shell,
            content.subject.as_deref().unwrap_or_default(),
            &body,
        ),
    )
}
