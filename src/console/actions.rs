//! The console's actions: the forms a signed-in person posts (change the facts, acknowledge a
//! page or a task, complete a task, submit a report, approve or reject), each checked for the
//! session, its CSRF token and the role, then run as the same engine command as the API.

use super::*;

fn forbidden(lang: Lang, what: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::shell(
            lang,
            lang.t("无权操作", "Not allowed"),
            None,
            &format!(
                "<p role=\"alert\">{}</p><p><a href=\"/console\">{}</a></p>",
                pages::esc(what),
                lang.t("返回我的工作", "Back to My work")
            ),
        ),
    )
}

/// Back to where the form came from when the command succeeded; else why not.
fn outcome<T>(lang: Lang, back: &str, r: Result<T, EngineError>) -> Response {
    match r {
        Ok(_) => see_other(back),
        Err(e) => engine_error(lang, back, &e),
    }
}

fn engine_error(lang: Lang, back: &str, e: &EngineError) -> Response {
    let status = match e {
        EngineError::NotFound(_) => StatusCode::NOT_FOUND,
        EngineError::Conflict(_) => StatusCode::CONFLICT,
        EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
        EngineError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        EngineError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    html(
        status,
        pages::shell(
            lang,
            lang.t("未完成", "Not done"),
            None,
            &format!(
                "<p role=\"alert\">{}</p><p><a href=\"{}\">{}</a></p>",
                pages::esc(&e.to_string()),
                pages::esc(back),
                lang.t("返回", "Back")
            ),
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    /// Missing is refused like wrong: an empty token never matches.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// Report submission: `email`, `webhook` or `manual`, the regulator's reference, why late.
    #[serde(default)]
    via: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    late_reason: Option<String>,
    /// Facts: `KEY=VALUE` lines.
    #[serde(default)]
    set: Option<String>,
}

/// The checks every action makes: signed in, the form's CSRF token, the role.
#[allow(clippy::result_large_err)]
async fn acting(
    state: &AppState,
    headers: &HeaderMap,
    f: &ActionForm,
    role: Role,
) -> Result<(Person, Lang, String), Response> {
    let lang = Lang::of(state, headers);
    let back = safe_next(f.back.as_deref());
    let p = person(state, headers, &back).await?;
    if !same(&p.csrf, &f.csrf) {
        return Err(csrf_refused(lang));
    }
    if !p.can(role) {
        return Err(forbidden(
            lang,
            &format!(
                "{} ({}: {})",
                lang.t("你的账号不能执行此操作。", "Your account may not do this."),
                p.login,
                p.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok((p, lang, back))
}

/// Change an incident's facts from `KEY=VALUE` lines, as `incidentd facts --set` takes them: a
/// new version, the one before kept in the timeline.
pub(super) async fn update_facts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<ActionForm>,
) -> Response {
    let (p, lang, back) = match acting(&state, &headers, &f, Role::Responder).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lines: Vec<&str> = f
        .set
        .as_deref()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let patch = match crate::domain::facts::patch_of_pairs(lines.iter().copied()) {
        Ok(p) if !p.is_empty() => serde_json::Value::Object(p),
        Ok(_) => {
            let e = EngineError::invalid("set", "give at least one KEY=VALUE line".to_string());
            return engine_error(lang, &back, &e);
        }
        Err(e) => return engine_error(lang, &back, &EngineError::invalid("set", e)),
    };
    let live = state.live.load_full();
    if let Err(e) = crate::api::incidents::text_locales(&patch, &live) {
        return engine_error(lang, &back, &e);
    }
    outcome(
        lang,
        &back,
        state
            .engine
            .update_facts(id, patch, &live.rules, &p.actor())
            .await,
    )
}

pub(super) async fn ack_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<ActionForm>,
) -> Response {
    let (p, lang, back) = match acting(&state, &headers, &f, Role::Responder).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    outcome(
        lang,
        &back,
        state
            .engine
            .ack_page(id, &p.department, None, &p.actor())
            .await,
    )
}

pub(super) async fn ack_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, key)): Path<(i64, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let (p, lang, back) = match acting(&state, &headers, &f, Role::Responder).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    outcome(
        lang,
        &back,
        state.engine.ack_task(id, &key, &p.actor()).await,
    )
}

pub(super) async fn complete_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, key)): Path<(i64, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let (p, lang, back) = match acting(&state, &headers, &f, Role::Responder).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let note = f.note.clone().filter(|n| !n.trim().is_empty());
    outcome(
        lang,
        &back,
        state.engine.complete_task(id, &key, note, &p.actor()).await,
    )
}

/// Submit an approved report version: through the outbox (`email`, `webhook`), or recorded as
/// submitted by hand now, with the regulator's reference (`manual`).
pub(super) async fn submit_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, rid)): Path<(i64, i64)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let (p, lang, back) = match acting(&state, &headers, &f, Role::Responder).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let via = f.via.clone().unwrap_or_default();
    let r = crate::engine::reports::SubmitRequest {
        submitted_at: (via == "manual").then(chrono::Utc::now),
        via,
        reference: f.reference.clone().filter(|s| !s.trim().is_empty()),
        late_reason: f.late_reason.clone().filter(|s| !s.trim().is_empty()),
    };
    let live = state.live.load_full();
    outcome(
        lang,
        &back,
        state
            .engine
            .submit_report(id, rid, r, &crate::api::reports::ctx(&live), &p.actor())
            .await,
    )
}

pub(super) async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(task): Path<i64>,
    Form(f): Form<ActionForm>,
) -> Response {
    decide(state, headers, task, true, f).await
}

pub(super) async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(task): Path<i64>,
    Form(f): Form<ActionForm>,
) -> Response {
    decide(state, headers, task, false, f).await
}

async fn decide(
    state: AppState,
    headers: HeaderMap,
    task: i64,
    approve: bool,
    f: ActionForm,
) -> Response {
    let (p, lang, back) = match acting(&state, &headers, &f, Role::Approver).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let live = state.live.load_full();
    let checks = live.gate_checks();
    let reason = f.reason.clone().filter(|r| !r.trim().is_empty());
    outcome(
        lang,
        &back,
        state
            .engine
            .decide(
                task,
                approve,
                reason,
                false,
                &p.actor(),
                std::slice::from_ref(&p.department),
                false,
                &checks,
            )
            .await,
    )
}
