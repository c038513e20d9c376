//! The web console (issue #18): the joint team's members sign in with their login and work the
//! incident in a browser. Server-rendered HTML from the binary, no JavaScript needed for any
//! action, zh-CN and English. Every action goes through the same engine commands as the API,
//! recorded under the person's name and department (`person:<login>@<department>`).
//!
//! Sessions live in the store (several instances share them); the cookie is `HttpOnly`,
//! `SameSite=Strict`, `Secure` when `server.public_url` is https; only its SHA-256 is kept. Every
//! form carries the session's CSRF token; sign-in carries a double-submit token. Failed
//! sign-ins are limited per login and overall.

mod actions;
mod incident;
mod pages;
mod report;

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::api::AppState;
use crate::config::Role;
use crate::engine::EngineError;

const SESSION_COOKIE: &str = "incidentd_session";
const LOGIN_COOKIE: &str = "incidentd_login";
const LANG_COOKIE: &str = "incidentd_lang";
/// Console pages post their forms to the console; nothing else is allowed.
const CONSOLE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(pages::my_work))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang/{lang}", get(set_lang))
        .route("/console/incidents", get(pages::incidents))
        .route("/console/obligations", get(pages::obligations))
        .route("/console/drills", get(pages::drills))
        .route("/console/incidents/{id}", get(incident::incident))
        .route("/console/incidents/{id}/facts", post(actions::update_facts))
        .route("/console/reports/{rid}", get(report::report))
        .route("/console/incidents/{id}/page/ack", post(actions::ack_page))
        .route(
            "/console/incidents/{id}/tasks/{key}/ack",
            post(actions::ack_task),
        )
        .route(
            "/console/incidents/{id}/tasks/{key}/complete",
            post(actions::complete_task),
        )
        .route(
            "/console/incidents/{id}/reports/{rid}/submit",
            post(actions::submit_report),
        )
        .route("/console/approvals/{task}/approve", post(actions::approve))
        .route("/console/approvals/{task}/reject", post(actions::reject))
}

/// The page's language: the `incidentd_lang` cookie, else the organisation's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lang {
    pub en: bool,
}

impl Lang {
    fn of(state: &AppState, headers: &HeaderMap) -> Lang {
        let chosen = cookie(headers, LANG_COOKIE);
        let code = chosen.unwrap_or_else(|| state.live().organisation.default_locale.clone());
        Lang {
            en: code.starts_with("en"),
        }
    }

    pub fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        if self.en { en } else { zh }
    }

    pub fn code(self) -> &'static str {
        if self.en { "en" } else { "zh-CN" }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn random_hex(n: usize) -> String {
    let mut raw = vec![0u8; n];
    // The system's randomness; without it nothing here can be made safely.
    aws_lc_rs::rand::fill(&mut raw).expect("system randomness");
    hex::encode(raw)
}

fn sha256_hex(s: &str) -> String {
    crate::domain::audit::sha256_hex(s.as_bytes())
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    !a.is_empty()
        && a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn secure(state: &AppState) -> &'static str {
    if state.live().public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// An HTML answer with the console's CSP; never cached (it is one person's view).
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, Html(body)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// A person signed in to the console.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub login: String,
    pub name: String,
    pub department: String,
    pub department_name: String,
    pub roles: Vec<Role>,
    pub csrf: String,
}

impl Person {
    pub fn can(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// How the audit trail names the person.
    pub fn actor(&self) -> String {
        format!("person:{}@{}", self.login, self.department)
    }
}

/// The member of `[[departments]]` with this login: (department id, department name, name,
/// roles).
fn member(state: &AppState, login: &str) -> Option<(String, String, String, Vec<Role>)> {
    let live = state.live();
    live.departments.iter().find_map(|d| {
        d.members
            .iter()
            .find(|m| m.login.as_deref() == Some(login))
            .map(|m| {
                (
                    d.id.clone(),
                    d.name.clone(),
                    m.name.clone(),
                    m.roles
                        .clone()
                        .unwrap_or_else(|| vec![Role::Responder, Role::Approver]),
                )
            })
    })
}

/// The signed-in person, or the answer that sends them to sign in (the session expired, was
/// ended, or never was). The error is the handler's answer as it is, hence its size.
#[allow(clippy::result_large_err)]
pub(crate) async fn person(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<Person, Response> {
    let to_login = |why: &str| {
        let next = percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC);
        Err(see_other(&format!("/console/login?next={next}{why}")))
    };
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return to_login("");
    };
    let hash = sha256_hex(&token);
    let store = state.engine.store();
    let Some(s) = store.session(&hash).await.map_err(|e| unavailable(&e))? else {
        return to_login("&expired=1");
    };
    let now = chrono::Utc::now().timestamp_micros();
    let cfg = state.live().console.clone();
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    if now - s.last_seen_at > micros(cfg.idle_timeout.0)
        || now - s.created_at > micros(cfg.session_lifetime.0)
    {
        let _ = store.end_session(&hash).await;
        return to_login("&expired=1");
    }
    let Some((department, department_name, name, roles)) = member(state, &s.login) else {
        // The login was taken out of the configuration: its sessions end.
        let _ = store.end_session(&hash).await;
        return to_login("");
    };
    if now - s.last_seen_at > 60_000_000 {
        store
            .touch_session(&hash, now)
            .await
            .map_err(|e| unavailable(&e))?;
    }
    Ok(Person {
        login: s.login,
        name,
        department,
        department_name,
        roles,
        csrf: s.csrf,
    })
}

fn unavailable(e: &dyn std::fmt::Display) -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::shell(
            Lang { en: true },
            "Unavailable",
            None,
            &format!(
                "<p>The store is not available right now: {}. Try again shortly.</p>",
                pages::esc(&e.to_string())
            ),
        ),
    )
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    expired: Option<String>,
}

/// Only a console path is a place to go back to.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/console".to_string(),
    }
}

async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let lang = Lang::of(&state, &headers);
    let note = if q.expired.is_some() {
        format!(
            "<p class=\"note\">{}</p>",
            lang.t(
                "会话已过期，请重新登录。",
                "Your session expired. Sign in again."
            )
        )
    } else {
        String::new()
    };
    sign_in_page(
        &state,
        lang,
        StatusCode::OK,
        &safe_next(q.next.as_deref()),
        &note,
        "",
    )
}

/// The sign-in form with a fresh double-submit token: in the form and in a cookie.
fn sign_in_page(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    next: &str,
    note: &str,
    login: &str,
) -> Response {
    let token = random_hex(16);
    let mut res = html(status, pages::login_page(lang, &token, next, note, login));
    set_cookie(
        &mut res,
        &format!(
            "{LOGIN_COOKIE}={token}; Path=/console; Max-Age=600; HttpOnly; SameSite=Strict{}",
            secure(state)
        ),
    );
    res
}

fn set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    login: String,
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&state, &headers);
    let next = safe_next(f.next.as_deref());
    let refuse = |status: StatusCode, msg: &str| {
        let note = format!("<p class=\"error\" role=\"alert\">{}</p>", pages::esc(msg));
        sign_in_page(&state, lang, status, &next, &note, &f.login)
    };
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same(&c, &f.csrf)) {
        return refuse(
            StatusCode::FORBIDDEN,
            lang.t(
                "登录表单已失效，请重试。",
                "This sign-in form is no longer valid: try again.",
            ),
        );
    }
    let cfg = state.live().console.clone();
    let window = cfg.lockout.0;
    let key = format!("login:{}", f.login);
    if state.sign_ins.locked(&key, cfg.max_failed_logins, window)
        || state
            .sign_ins
            .locked("*", cfg.max_failed_logins.saturating_mul(20), window)
    {
        tracing::warn!(login = %f.login, "console sign-in refused: too many failed attempts");
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "{} {}",
                lang.t(
                    "登录失败次数过多，请稍后再试：",
                    "Too many failed sign-ins; try again after"
                ),
                crate::domain::duration::HumanDuration(window)
            ),
        );
    }
    let store = state.engine.store();
    let stored = match store.password_hash(&f.login).await {
        Ok(h) => h,
        Err(e) => return unavailable(&e),
    };
    let known = member(&state, &f.login).is_some();
    let password = f.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref()))
        .await
        .unwrap_or(false);
    if !(ok && known) {
        state.sign_ins.failed(&key, window);
        state.sign_ins.failed("*", window);
        tracing::info!(login = %f.login, "console sign-in failed");
        return refuse(
            StatusCode::UNAUTHORIZED,
            lang.t("登录名或密码不正确。", "Wrong login or password."),
        );
    }
    state.sign_ins.succeeded(&key);
    let token = random_hex(32);
    let csrf = random_hex(16);
    let now = chrono::Utc::now().timestamp_micros();
    if let Err(e) = store
        .create_session(&sha256_hex(&token), &f.login, &csrf, now)
        .await
    {
        return unavailable(&e);
    }
    tracing::info!(login = %f.login, "console sign-in");
    let mut res = see_other(&next);
    set_cookie(
        &mut res,
        &format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
            secure(&state)
        ),
    );
    set_cookie(
        &mut res,
        &format!("{LOGIN_COOKIE}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
    res
}

/// A fixed hash to verify against when the login has no password, so that an unknown login
/// takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Jx3QX8qHXvaJ7wc6oB3nPo0IdTwG1p7Gfvbn2VcdS6g";

pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let hash = stored.unwrap_or(DUMMY_HASH);
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && stored.is_some()
}

/// An argon2id hash (PHC string) of a new password.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no randomness available".to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let p = match person(&state, &headers, "/console").await {
        Ok(p) => p,
        Err(to_login) => return to_login,
    };
    if !same(&p.csrf, &f.csrf) {
        return csrf_refused(Lang::of(&state, &headers));
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let _ = state.engine.store().end_session(&sha256_hex(&token)).await;
    }
    let mut res = see_other("/console/login");
    set_cookie(
        &mut res,
        &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
    res
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct BackQuery {
    #[serde(default)]
    back: Option<String>,
}

async fn set_lang(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    Query(q): Query<BackQuery>,
) -> Response {
    let code = if lang.starts_with("en") {
        "en"
    } else {
        "zh-CN"
    };
    let mut res = see_other(&safe_next(q.back.as_deref()));
    set_cookie(
        &mut res,
        &format!(
            "{LANG_COOKIE}={code}; Path=/; Max-Age=31536000; SameSite=Strict{}",
            secure(&state)
        ),
    );
    res
}

fn csrf_refused(lang: Lang) -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::shell(
            lang,
            lang.t("已拒绝", "Refused"),
            None,
            &format!(
                "<p role=\"alert\">{}</p><p><a href=\"/console\">{}</a></p>",
                lang.t(
                    "此表单缺少有效的安全令牌（CSRF），未执行任何操作。请从控制台页面重新提交。",
                    "This form did not carry its security token (CSRF): nothing was done. Submit it again from the console page."
                ),
                lang.t("返回我的工作", "Back to My work")
            ),
        ),
    )
}

#[cfg(test)]
mod tests;
