//! A report version's console page: its document, its "to follow" fields and its approval.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::DateTime;

use super::pages::{esc, shell, when};
use super::{Lang, Person, html, person};
use crate::api::AppState;
use crate::engine::reports::ReportView;

/// A report version's page: what it says (the rendered document), the fields still to follow,
/// its approval (who decided, and the buttons for those who may), and submission once approved.
pub(crate) async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(rid): Path<i64>,
) -> Response {
    let back = format!("/console/reports/{rid}");
    let p = match person(&state, &headers, &back).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let lang = Lang::of(&state, &headers);
    let row = match state.engine.store().report(rid).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                shell(lang, lang.t("没有此报告", "No such report"), Some(&p), ""),
            );
        }
        Err(e) => return super::unavailable(&e),
    };
    let view = ReportView::of(&row, false);
    let mut body = report_summary(lang, &view);
    report_to_follow(lang, &view, &mut body);
    report_approval(&state, lang, &p, &view, &back, &mut body).await;
    let _ = write!(
        body,
        "<h2>{}</h2><article class=\"report\">{}</article>",
        lang.t("报告内容", "The report"),
        row.html
    );
    html(
        StatusCode::OK,
        shell(
            lang,
            &format!("{} v{}", view.obligation_key, view.version),
            Some(&p),
            &body,
        ),
    )
}

/// The report's incident, obligation, version, language and status; how it was submitted.
fn report_summary(lang: Lang, view: &ReportView) -> String {
    let id = view.incident_id;
    let mut body = format!(
        "<p><a href=\"/console/incidents/{id}\">#{id}</a> · {} · {} {} · {} · <strong>{}</strong></p>",
        esc(&view.obligation_key),
        lang.t("版本", "version"),
        view.version,
        esc(&view.locale),
        esc(&view.status),
    );
    if let (Some(at), Some(via)) = (view.submitted_at, view.via.as_deref()) {
        let _ = write!(
            body,
            "<p>{} {} · {} {}{}</p>",
            lang.t("已报送", "Submitted"),
            when(at),
            lang.t("方式", "via"),
            esc(via),
            view.reference
                .as_deref()
                .map(|r| format!(" · {}", esc(r)))
                .unwrap_or_default()
        );
    }
    body
}

/// The required fields a partial report leaves to follow, and where each will come from.
fn report_to_follow(lang: Lang, view: &ReportView, body: &mut String) {
    if view.to_follow.is_empty() {
        return;
    }
    let _ = write!(
        body,
        "<h2>{}</h2><ul>",
        lang.t("待补充（续报）", "To follow (a partial report)")
    );
    for m in &view.to_follow {
        let _ = write!(
            body,
            "<li><strong>{}</strong> — {} <span class=\"muted\">{}</span></li>",
            esc(&m.label),
            esc(&m.from),
            esc(&m.how)
        );
    }
    body.push_str("</ul>");
}

/// The report's approval: its status, who decides, the decisions so far, what it waits for,
/// and the buttons while it is open.
async fn report_approval(
    state: &AppState,
    lang: Lang,
    p: &Person,
    view: &ReportView,
    back: &str,
    body: &mut String,
) {
    let Some(task) = view.approval_task else {
        return;
    };
    let Ok(tasks) = state.engine.incident_tasks(view.incident_id).await else {
        return;
    };
    let Some(t) = tasks.into_iter().find(|t| t.id == task) else {
        return;
    };
    let _ = write!(
        body,
        "<h2>{}</h2><p>{} · {}: {}</p>",
        lang.t("审批", "Approval"),
        esc(&t.status),
        lang.t("审批部门", "decided by"),
        esc(&t.approvers.join(", "))
    );
    if !t.decisions.is_empty() {
        body.push_str("<ul>");
        for d in &t.decisions {
            let _ = write!(
                body,
                "<li>{} · {} · {} {}</li>",
                esc(&d.department),
                esc(&d.decision),
                esc(&d.decided_by),
                when(DateTime::from_timestamp_micros(d.decided_at).unwrap_or_default())
            );
        }
        body.push_str("</ul>");
    }
    body.push_str(&super::pages::blockers(lang, &t));
    if matches!(t.status.as_str(), "open" | "acked") {
        body.push_str(&super::pages::decision_forms(lang, p, t.id, back));
    }
}
