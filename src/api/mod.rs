//! HTTP API (axum): routes, auth, errors, OpenAPI.

mod ack;
mod alerts;
pub(crate) mod announcements;
pub mod auth;
mod deliveries;
pub(crate) mod drills;
pub mod error;
mod extract;
mod heartbeats;
pub(crate) mod incidents;
pub(crate) mod obligations;
mod ops;
pub(crate) mod page;
pub(crate) mod reports;
mod silences;
mod subjects;
mod tasks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::{DepartmentConfig, OrganisationConfig, PagingConfig, Settings};
use crate::domain::classify::Rules;
use crate::domain::playbook::Playbooks;
use crate::engine::Engine;
use crate::render::Templates;
pub use auth::{Tokens, token_hash};

/// The part of the configuration a SIGHUP swaps in atomically.
#[derive(Debug, Clone)]
pub struct Live {
    pub rules: Arc<Rules>,
    pub tokens: Tokens,
    pub max_body_bytes: usize,
    pub max_alerts_per_request: usize,
    /// `[ingest]` storm control, `None` when off.
    pub storm: Option<crate::engine::StormPolicy>,
    pub default_locale: String,
    pub templates: Arc<Templates>,
    pub organisation: OrganisationConfig,
    /// `None` when no `[[departments]]` are configured: incidents then get no team.
    pub playbooks: Option<Arc<Playbooks>>,
    /// Jurisdiction packs (empty: incidents are not graded).
    pub packs: Arc<crate::domain::regulation::Packs>,
    pub departments: Vec<DepartmentConfig>,
    pub paging: PagingConfig,
    /// Channels configured (the inbox always is), and webhook target names.
    pub channels: Vec<crate::domain::message::ChannelKind>,
    pub webhooks: Vec<String>,
    /// Whom a page sent by hand may reach: the team's members and unreserved webhook targets.
    pub reach: crate::engine::ManualReach,
    pub public_url: String,
    /// Contact encryption keys (`[subjects] key`), if configured.
    pub subject_keys: Option<Arc<crate::subjects::crypto::KeyRing>>,
    pub subjects: crate::config::SubjectsConfig,
    pub notices: crate::config::NoticesConfig,
    pub announcements: crate::config::AnnouncementsConfig,
    /// `[reports]` and `[[regulators]]`: who approves reports, where they are submitted.
    pub reports: crate::config::ReportsConfig,
    pub regulators: Vec<crate::config::RegulatorConfig>,
    /// Drill scenarios (`config/drills/*.toml`) and their schedules.
    pub drills: Arc<crate::domain::drill::Scenarios>,
    pub drill_schedules: Vec<crate::config::DrillSchedule>,
    /// `[[heartbeats]]`: signals expected to keep arriving.
    pub heartbeats: Arc<crate::domain::heartbeat::Heartbeats>,
    /// `[console]`: session expiry and sign-in limits.
    pub console: crate::config::ConsoleConfig,
}

impl Live {
    /// The locales the organisation writes documents in — its default locale, and those of
    /// its notice, announcement and regulator templates and jurisdiction packs: free-text facts
    /// may be given in these.
    pub fn fact_locales(&self) -> Vec<String> {
        let mut out = vec![self.organisation.default_locale.clone()];
        for name in self.templates.names() {
            if ["notice/", "announcement/", "regulator/"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                out.extend(self.templates.locales(name).iter().map(|l| l.to_string()));
            }
        }
        out.extend(self.packs.all().iter().map(|p| p.locale.clone()));
        let mut seen: Vec<String> = Vec::new();
        out.retain(|l| {
            let new = !seen.iter().any(|s| crate::domain::text::same_locale(s, l));
            if new {
                seen.push(l.clone());
            }
            new
        });
        out
    }

    pub fn department_ids(&self) -> Vec<String> {
        self.departments.iter().map(|d| d.id.clone()).collect()
    }

    /// What deciding an approval checks its gate against (the notice and report lints).
    pub fn gate_checks(&self) -> crate::engine::GateChecks<'_> {
        crate::engine::GateChecks {
            playbooks: self.playbooks.as_deref(),
            templates: &self.templates,
            organisation: &self.organisation,
            public_url: &self.public_url,
            packs: Some(&self.packs),
        }
    }

    /// What assessing incidents under the packs needs.
    pub fn regulation(&self) -> crate::engine::obligations::Regulation {
        crate::engine::obligations::Regulation {
            packs: self.packs.clone(),
            operator_type: self.organisation.operator_type,
            jurisdictions: self.organisation.jurisdictions.clone(),
        }
    }

    /// What applying playbooks needs; `None` without departments.
    pub fn response_ctx(&self) -> Option<crate::engine::response::ResponseCtx<'_>> {
        Some(crate::engine::response::ResponseCtx {
            public_url: &self.public_url,
            playbooks: self.playbooks.as_deref()?,
            departments: &self.departments,
            paging: &self.paging,
            render: self.delivery_ctx(),
        })
    }

    /// What notice campaigns need.
    pub fn campaign_ctx(&self) -> crate::engine::campaign::CampaignCtx<'_> {
        crate::engine::campaign::CampaignCtx {
            templates: &self.templates,
            org: &self.organisation,
            channels: &self.channels,
            notices: &self.notices,
            public_url: &self.public_url,
            announce: self.announce_ctx(),
        }
    }

    /// What starting and running drills needs.
    pub fn drill_ctx<'a>(
        &'a self,
        regulation: &'a crate::engine::obligations::Regulation,
    ) -> crate::engine::drills::DrillCtx<'a> {
        crate::engine::drills::DrillCtx {
            scenarios: &self.drills,
            departments: &self.departments,
            rules: &self.rules,
            regulation,
            responds: self.playbooks.is_some(),
            keys: self.subject_keys.as_deref(),
            default_locale: &self.organisation.default_locale,
            channels: &self.channels,
            templates: &self.templates,
            org: &self.organisation,
        }
    }

    /// What publishing the public announcement needs.
    pub fn announce_ctx(&self) -> crate::engine::announce::AnnounceCtx<'_> {
        crate::engine::announce::AnnounceCtx {
            templates: &self.templates,
            org: &self.organisation,
            config: &self.announcements,
            public_url: &self.public_url,
        }
    }

    /// What firing heartbeat checks needs.
    pub fn heartbeat_ctx(&self) -> crate::engine::heartbeats::HeartbeatCtx<'_> {
        crate::engine::heartbeats::HeartbeatCtx {
            heartbeats: &self.heartbeats,
            respond: self.playbooks.is_some(),
            regulate: !self.packs.is_empty(),
        }
    }

    /// What the engine needs to render templates.
    pub fn delivery_ctx(&self) -> crate::engine::DeliveryCtx<'_> {
        crate::engine::DeliveryCtx {
            templates: &self.templates,
            org: &self.organisation,
            channels: &self.channels,
            webhooks: &self.webhooks,
            reach: &self.reach,
        }
    }

    pub fn from_settings(
        s: &Settings,
        templates: Arc<Templates>,
        playbooks: Option<Arc<Playbooks>>,
        packs: Arc<crate::domain::regulation::Packs>,
    ) -> Self {
        Live {
            templates,
            playbooks,
            packs,
            reports: s.reports.clone(),
            regulators: s.regulators.clone(),
            drills: Default::default(),
            drill_schedules: s.drills.schedule.clone(),
            heartbeats: s.heartbeats.clone(),
            departments: s.departments.clone(),
            paging: s.paging.clone(),
            channels: s.channels.kinds(),
            webhooks: s.channels.webhooks.iter().map(|w| w.name.clone()).collect(),
            reach: crate::engine::ManualReach::new(
                &s.departments,
                &s.channels
                    .webhooks
                    .iter()
                    .map(|w| w.name.clone())
                    .collect::<Vec<_>>(),
                s.announcements.webhook.as_deref(),
                &s.regulators,
            ),
            public_url: s.server.public_url.clone(),
            console: s.console.clone(),
            subject_keys: s.subject_keys.clone(),
            subjects: s.subjects.clone(),
            notices: s.notices.clone(),
            announcements: s.announcements.clone(),
            organisation: s.organisation.clone(),
            rules: s.rules.clone(),
            tokens: Tokens::new(&s.tokens),
            max_body_bytes: s.server.max_body_bytes,
            max_alerts_per_request: s.ingest.max_alerts_per_request,
            storm: s.ingest.storm(),
            default_locale: s.organisation.default_locale.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub live: Arc<ArcSwap<Live>>,
    pub shutting_down: Arc<AtomicBool>,
    /// Why the last reload was refused (the previous configuration keeps running), if it was.
    pub reload_error: Arc<ArcSwap<Option<String>>>,
    /// Failed console sign-ins, by login and by client.
    pub sign_ins: auth::SignInLimiter,
}

impl AppState {
    pub fn live(&self) -> arc_swap::Guard<Arc<Live>> {
        self.live.load()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "incidentd",
        description = "Security incident response and notification daemon. Every error is application/problem+json.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole HTTP surface, with its OpenAPI document: the API, the public pages, and the
/// console's routes (`console`, given by the server: the console sits above the API).
pub fn router(state: AppState, request_timeout: Duration, console: Router<AppState>) -> Router {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(alerts::post_alerts))
        .routes(routes!(alerts::post_alertmanager))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::move_alert))
        .routes(routes!(alerts::promote_alert))
        .routes(routes!(incidents::merge))
        .routes(routes!(incidents::declare, incidents::list))
        .routes(routes!(incidents::show, incidents::update))
        .routes(routes!(incidents::update_facts))
        .routes(routes!(incidents::transition))
        .routes(routes!(incidents::timeline))
        .routes(routes!(deliveries::enqueue, deliveries::list))
        .routes(routes!(deliveries::show))
        .routes(routes!(deliveries::test_send))
        .routes(routes!(deliveries::allow_drill_recipients))
        .routes(routes!(drills::start, drills::list))
        .routes(routes!(drills::show))
        .routes(routes!(deliveries::inbox))
        .routes(routes!(deliveries::mark_read))
        .routes(routes!(tasks::incident_tasks, tasks::add_task))
        .routes(routes!(tasks::ack))
        .routes(routes!(tasks::ack_page))
        .routes(routes!(tasks::complete))
        .routes(routes!(tasks::reassign))
        .routes(routes!(tasks::list))
        .routes(routes!(tasks::approvals))
        .routes(routes!(tasks::approve))
        .routes(routes!(tasks::reject))
        .routes(routes!(subjects::list))
        .routes(routes!(subjects::show))
        .routes(routes!(subjects::imports))
        .routes(routes!(subjects::start_campaign, subjects::campaigns))
        .routes(routes!(subjects::campaign))
        .routes(routes!(announcements::publish, announcements::history))
        .routes(routes!(announcements::list))
        .routes(routes!(announcements::feed))
        .routes(routes!(announcements::show))
        .routes(routes!(reports::draft, reports::list))
        .routes(routes!(reports::show))
        .routes(routes!(reports::submit))
        .routes(routes!(reports::summary))
        .routes(routes!(obligations::list))
        .routes(routes!(obligations::incident_obligations))
        .routes(routes!(obligations::met))
        .routes(routes!(silences::create, silences::list))
        .routes(routes!(silences::show))
        .routes(routes!(silences::expire))
        .routes(routes!(heartbeats::list))
        .routes(routes!(heartbeats::ping))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    // Streamed uploads run as long as the upload does: outside the request timeout.
    let (uploads, upload_doc) = OpenApiRouter::new()
        .routes(routes!(subjects::import))
        .split_for_parts();
    doc.merge(upload_doc);
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let doc = Arc::new(doc);
    api.route(
        "/ack/{token}",
        axum::routing::get(ack::confirm).post(ack::acknowledge),
    )
    .route("/n/{token}", axum::routing::get(announcements::notice))
    .route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .merge(console)
    .fallback(ops::not_found)
    .layer(middleware::from_fn_with_state(request_timeout, time_limit))
    .merge(uploads)
    .layer(middleware::from_fn_with_state(
        state.clone(),
        extract::drain_unread_body,
    ))
    .layer(middleware::from_fn(problems_only))
    .layer(middleware::from_fn(page_headers))
    .layer(middleware::from_fn(track))
    .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |m| m.as_str());
        tracing::debug_span!("request", method = %req.method(), route)
    }))
    .with_state(state)
}

/// Request metrics by matched route, and a log line per request (health checks at debug).
async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    metrics::histogram!(
        "incidentd_http_request_duration_seconds",
        "method" => method.to_string(),
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .record(elapsed);
    let ms = elapsed.as_secs_f64() * 1e3;
    if status >= 500 {
        tracing::warn!(%method, route, status, ms, "request failed");
    } else if status >= 400 {
        tracing::info!(%method, route, status, ms, "request refused");
    } else {
        tracing::debug!(%method, route, status, ms, "request");
    }
    res
}

/// `server.request_timeout`: a request still running then is answered 503, as problem+json.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => error::ApiError::unavailable(format!(
            "incidentd did not finish this request within server.request_timeout ({}); retry shortly",
            crate::domain::duration::HumanDuration(limit)
        ))
        .into_response(),
    }
}

/// Every error is problem+json: axum's own rejections (plain text) and bodiless answers (405)
/// are rewritten here; HTML pages and problem+json pass as they are.
async fn problems_only(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let kind = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if [
        "application/problem+json",
        "text/html",
        "application/atom+xml",
    ]
    .iter()
    .any(|k| kind.starts_with(k))
    {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = match (status, text.is_empty()) {
        (_, false) => text,
        (StatusCode::METHOD_NOT_ALLOWED, true) => format!(
            "this endpoint does not take {method}; the Allow header lists the methods it takes (see /api/v1/openapi.json)"
        ),
        (_, true) => status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_string(),
    };
    let mut out = error::ApiError::new(status, error::code_for(status), detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    out
}

/// Content-Security-Policy for HTML: no scripts, nothing from elsewhere, never in a frame.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Every response: no MIME sniffing. HTML pages (acknowledgement links, announcements,
/// notices): a strict CSP unless the page set its own, no framing, no referrer (their URLs
/// carry tokens).
async fn page_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/html"));
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if html {
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(PAGE_CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    res
}
