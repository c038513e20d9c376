//! One-click acknowledgement pages: `GET /ack/{token}` shows what the link acknowledges and a
//! button; `POST /ack/{token}` acknowledges. No bearer token: the signed link is the credential.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secrecy::ExposeSecret;

use super::AppState;
use crate::engine::acklink::{AckClaim, AckLinkError, verify};

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body style=\"font-family: sans-serif; max-width: 36em; margin: 2em auto\">\
         <h1>{title}</h1>{body}</body></html>"
    ))
}

/// The page's form posts back to itself; nothing else is allowed (see `super::PAGE_CSP`).
const ACK_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An acknowledgement page: its own CSP (the button posts to the page), never cached (it is
/// one person's link). nosniff, no framing and no referrer are added for every page.
fn answer((status, page): (StatusCode, Html<String>)) -> Response {
    let mut res = (status, page).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(ACK_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn claim(state: &AppState, token: &str) -> Result<AckClaim, (StatusCode, Html<String>)> {
    if token.len() > 512 {
        return Err((
            StatusCode::FORBIDDEN,
            page(
                "确认失败 / Cannot acknowledge",
                "<p>This link is not valid.</p>",
            ),
        ));
    }
    let live = state.live();
    let Some(secret) = &live.paging.ack_secret else {
        return Err((
            StatusCode::NOT_FOUND,
            page(
                "Not available",
                "<p>Acknowledgement links are not configured.</p>",
            ),
        ));
    };
    verify(
        secret.expose_secret().as_bytes(),
        token,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| {
        let status = match e {
            AckLinkError::Invalid => StatusCode::FORBIDDEN,
            AckLinkError::Expired => StatusCode::GONE,
        };
        (
            status,
            page(
                "确认失败 / Cannot acknowledge",
                &format!("<p>{}</p>", esc(&e.to_string())),
            ),
        )
    })
}

/// Show what the link acknowledges, with a button (a GET never changes anything).
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    answer(confirm_page(&state, &token).await)
}

async fn confirm_page(state: &AppState, token: &str) -> (StatusCode, Html<String>) {
    let c = match claim(state, token) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let title = match state.engine.store().incident(c.incident_id).await {
        Ok(Some(i)) => i.title,
        _ => String::new(),
    };
    (
        StatusCode::OK,
        page(
            "确认处理 / Acknowledge",
            &format!(
                "<p>事件 / Incident #{} {}</p><p>任务 / Task: <code>{}</code></p><p>{}</p>\
                 <form method=\"post\"><button type=\"submit\" style=\"font-size: 1.3em\">确认 / Acknowledge</button></form>",
                c.incident_id,
                esc(&title),
                esc(&c.task),
                esc(&c.member)
            ),
        ),
    )
}

/// Acknowledge the task (and with it the department's page) for the link's member.
pub async fn acknowledge(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    answer(acknowledge_page(&state, &token).await)
}

async fn acknowledge_page(state: &AppState, token: &str) -> (StatusCode, Html<String>) {
    let c = match claim(state, token) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let department = c.member.split('/').next().unwrap_or_default().to_string();
    let task = (!c.task.is_empty()).then_some(c.task.as_str());
    match state
        .engine
        .ack_page(
            c.incident_id,
            &department,
            task,
            &format!("member:{}", c.member),
        )
        .await
    {
        Ok(_) => (
            StatusCode::OK,
            page(
                "已确认 / Acknowledged",
                &format!(
                    "<p>事件 #{} 已由 {} 确认；升级呼叫已停止。</p>\
                     <p>Incident #{} is acknowledged for {}; escalation stopped.</p>",
                    c.incident_id,
                    esc(&department),
                    c.incident_id,
                    esc(&department)
                ),
            ),
        ),
        Err(e) => {
            use crate::engine::EngineError;
            // What the person can act on is shown; a fault stays in the log.
            let (status, shown) = match &e {
                EngineError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
                EngineError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
                EngineError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "incidentd is busy; try again in a moment.".to_string(),
                ),
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "incidentd could not record the acknowledgement; the cause is in its log."
                        .to_string(),
                ),
            };
            if status.is_server_error() {
                tracing::warn!(error = %e, "acknowledgement link failed");
            }
            (
                status,
                page(
                    "确认失败 / Cannot acknowledge",
                    &format!(
                        "<p>{}</p>",
                        esc(&super::error::without_server_paths(&shown))
                    ),
                ),
            )
        }
    }
}
