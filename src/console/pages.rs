//! The console's pages: sign-in, My work, an incident. Plain HTML and one inline stylesheet:
//! readable on a phone, usable without JavaScript, labels on every field.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{Lang, Person, html, person};
use crate::api::AppState;
use crate::config::Role;
use crate::engine::response::TaskView;
use crate::store::{IncidentFilter, ObligationFilter, WaitingPage};

pub(crate) use crate::api::announcements::esc;

/// A table's opening and its header row, each heading escaped.
pub(crate) fn table_head(body: &mut String, heads: &[&str]) {
    body.push_str("<table><tr>");
    for h in heads {
        let _ = write!(body, "<th>{}</th>", esc(h));
    }
    body.push_str("</tr>");
}

/// A section of a page: its heading, then [`table_head`].
pub(crate) fn section_table(body: &mut String, title: &str, heads: &[&str]) {
    let _ = write!(body, "<h2>{}</h2>", esc(title));
    table_head(body, heads);
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff;line-height:1.45}\
header{background:#14213d;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}\
header a{color:#fff}header form{margin:0}main{padding:1em;max-width:60em}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4em;border-bottom:1px solid #ccc;vertical-align:top}\
.overdue{color:#b00020;font-weight:bold}.note{background:#fff3cd;padding:.5em}.error{background:#fde2e2;color:#7a0010;padding:.5em}\
button{font-size:1em;padding:.35em .8em;margin:.1em}input,textarea{font-size:1em;padding:.3em;max-width:100%}\
a:focus,button:focus,input:focus{outline:3px solid #f0a500}label{display:block;margin-top:.6em}\
.muted{color:#555}ul.items{list-style:none;padding:0}ul.items>li{border:1px solid #ccc;border-radius:4px;padding:.6em;margin:.6em 0}";

/// The page around a console view: its title, who is signed in, the language switch.
pub(crate) fn shell(lang: Lang, title: &str, who: Option<&Person>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(p) = who {
        let _ = write!(
            nav,
            "<a href=\"/console\">{}</a><a href=\"/console/incidents\">{}</a><a href=\"/console/obligations\">{}</a><a href=\"/console/drills\">{}</a><span>{} · {}</span>\
             <form method=\"post\" action=\"/console/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">{}</button></form>",
            lang.t("我的工作", "My work"),
            lang.t("事件", "Incidents"),
            lang.t("法定义务", "Obligations"),
            lang.t("演练", "Drills"),
            esc(&p.name),
            esc(&p.department_name),
            esc(&p.csrf),
            lang.t("退出", "Sign out")
        );
    }
    let other = if lang.en {
        "<a href=\"/console/lang/zh-CN\" lang=\"zh-CN\">中文</a>"
    } else {
        "<a href=\"/console/lang/en\" lang=\"en\">English</a>"
    };
    format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · incidentd</title><style>{STYLE}</style></head><body>\
         <header><strong>incidentd</strong>{nav}{other}</header><main><h1>{title}</h1>{body}</main></body></html>",
        code = lang.code(),
        title = esc(title),
    )
}

pub(crate) fn login_page(lang: Lang, token: &str, next: &str, note: &str, login: &str) -> String {
    shell(
        lang,
        lang.t("登录", "Sign in"),
        None,
        &format!(
            "{note}<form method=\"post\" action=\"/console/login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{token}\"><input type=\"hidden\" name=\"next\" value=\"{next}\">\
             <label for=\"login\">{l}</label><input id=\"login\" name=\"login\" autocomplete=\"username\" required value=\"{login}\">\
             <label for=\"password\">{pw}</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <p><button type=\"submit\" id=\"sign-in\">{go}</button></p></form>\
             <p class=\"muted\">{help}</p>",
            token = esc(token),
            next = esc(next),
            login = esc(login),
            l = lang.t("登录名", "Login"),
            pw = lang.t("密码", "Password"),
            go = lang.t("登录", "Sign in"),
            help = lang.t(
                "没有密码？请管理员运行 incidentd accounts password 你的登录名。",
                "No password yet? Ask an administrator to run incidentd accounts password YOUR-LOGIN."
            ),
        ),
    )
}

/// "(in 2h 5m)", or "(overdue by 10m)" in red.
pub(super) fn countdown(lang: Lang, due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = due - now;
    let human = crate::domain::duration::humanize(d.abs().to_std().unwrap_or_default());
    if d < chrono::Duration::zero() {
        format!(
            "<span class=\"overdue\">({} {human})</span>",
            lang.t("已逾期", "overdue by")
        )
    } else {
        format!(
            "<span class=\"muted\">({} {human})</span>",
            lang.t("剩余", "in")
        )
    }
}

/// What a task waits for, one note each.
pub(super) fn blockers(lang: Lang, t: &TaskView) -> String {
    let mut h = String::new();
    for b in &t.blocked_by {
        let _ = write!(
            h,
            "<div class=\"note\">{} {}: {}</div>",
            lang.t("等待", "Waiting for"),
            esc(&b.task),
            esc(&b.reason)
        );
    }
    h
}

pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub(super) fn hidden(p: &Person, back: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"back\" value=\"{}\">",
        esc(&p.csrf),
        esc(back)
    )
}

/// At most this many of each kind (pages, approvals, tasks) in My work, the soonest first.
const MY_WORK_LIMIT: i64 = 50;

/// What waits for one person, one line each.
struct Item {
    due: Option<DateTime<Utc>>,
    html: String,
}

/// My work: the pages, approvals and tasks waiting for me or my department, soonest first.
pub(crate) async fn my_work(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match person(&state, &headers, "/console").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let lang = Lang::of(&state, &headers);
    let now = Utc::now();
    let back = "/console";
    let escalate = escalate_after(&state, &p);
    let pages = match state.engine.store().waiting_pages(&p.department).await {
        Ok(pages) => pages,
        Err(e) => return super::unavailable(&e),
    };
    let (tasks, approvals) = match state.engine.work_of(&p.department, MY_WORK_LIMIT).await {
        Ok(w) => w,
        Err(e) => return super::unavailable(&e),
    };
    let titles = incident_titles(&state, approvals.iter().chain(&tasks)).await;
    let mut items = page_items(lang, &p, &pages, escalate, now, back);
    for t in approvals.iter().filter(|t| {
        t.approvers.contains(&p.department)
            && !t.decisions.iter().any(|d| d.department == p.department)
    }) {
        items.push(Item {
            due: t.due_at,
            html: approval_item(lang, &p, t, &titles, back),
        });
    }
    for t in &tasks {
        items.push(Item {
            due: t.due_at,
            html: task_item(lang, &p, t, &titles, back),
        });
    }
    items.sort_by_key(|i| i.due.unwrap_or(DateTime::<Utc>::MAX_UTC));
    let full = pages.len() == MY_WORK_LIMIT as usize
        || approvals.len() == MY_WORK_LIMIT as usize
        || tasks.len() == MY_WORK_LIMIT as usize;
    html(
        StatusCode::OK,
        shell(
            lang,
            lang.t("我的工作", "My work"),
            Some(&p),
            &my_work_list(lang, &items, full, now),
        ),
    )
}

/// How long the person's department has to acknowledge a page before it escalates.
fn escalate_after(state: &AppState, p: &Person) -> std::time::Duration {
    state
        .live()
        .departments
        .iter()
        .find(|d| d.id == p.department)
        .map(|d| d.escalate_after.0)
        .unwrap_or_default()
}

/// The pages waiting for the department, each due when it would escalate, with the
/// acknowledge button for responders.
fn page_items(
    lang: Lang,
    p: &Person,
    pages: &[WaitingPage],
    escalate: std::time::Duration,
    now: DateTime<Utc>,
    back: &str,
) -> Vec<Item> {
    let mut items = Vec::new();
    for w in pages {
        let paged = DateTime::from_timestamp_micros(w.paged_at).unwrap_or(now);
        let due = paged + chrono::Duration::from_std(escalate).unwrap_or_default();
        let mut h = format!(
            "<strong>{}</strong> <a href=\"/console/incidents/{id}\">#{id} {}</a> <span class=\"muted\">{}</span>",
            lang.t("页面待确认", "Page to acknowledge"),
            esc(&w.title),
            esc(&w.severity),
            id = w.incident_id,
        );
        if p.can(Role::Responder) {
            let _ = write!(
                h,
                "<form method=\"post\" action=\"/console/incidents/{}/page/ack\">{}<button type=\"submit\">{}</button></form>",
                w.incident_id,
                hidden(p, back),
                lang.t("确认收到", "Acknowledge")
            );
        }
        items.push(Item {
            due: Some(due),
            html: h,
        });
    }
    items
}

/// The items as a list, each with its due time; a note when a kind was cut at the limit.
fn my_work_list(lang: Lang, items: &[Item], full: bool, now: DateTime<Utc>) -> String {
    let mut body = String::new();
    if items.is_empty() {
        let _ = write!(
            body,
            "<p>{}</p>",
            lang.t(
                "目前没有等待你或你的部门的事项。",
                "Nothing waits for you or your department right now."
            )
        );
        return body;
    }
    body.push_str("<ul class=\"items\">");
    for i in items {
        let due = i.due.map_or_else(String::new, |d| {
            format!(
                "<div class=\"muted\">{}: {} {}</div>",
                lang.t("期限", "Due"),
                when(d),
                countdown(lang, d, now)
            )
        });
        let _ = write!(body, "<li>{}{due}</li>", i.html);
    }
    body.push_str("</ul>");
    if full {
        let _ = write!(
            body,
            "<p class=\"muted\">{}</p>",
            lang.t(
                "每类只显示最紧迫的 50 项；其余见各事件页面。",
                "Only the 50 soonest of each kind are shown; the incidents' pages show the rest."
            )
        );
    }
    body
}

async fn incident_titles<'a>(
    state: &AppState,
    tasks: impl Iterator<Item = &'a TaskView>,
) -> std::collections::HashMap<i64, String> {
    let mut ids: Vec<i64> = tasks.map(|t| t.incident_id).collect();
    ids.sort_unstable();
    ids.dedup();
    state
        .engine
        .store()
        .incident_titles(&ids)
        .await
        .map(|rows| rows.into_iter().collect())
        .unwrap_or_default()
}

fn incident_link(t: &TaskView, titles: &std::collections::HashMap<i64, String>) -> String {
    format!(
        "<a href=\"/console/incidents/{id}\">#{id} {}</a>",
        esc(titles.get(&t.incident_id).map_or("", String::as_str)),
        id = t.incident_id
    )
}

fn approval_item(
    lang: Lang,
    p: &Person,
    t: &TaskView,
    titles: &std::collections::HashMap<i64, String>,
    back: &str,
) -> String {
    let mut h = format!(
        "<strong>{}</strong> {} — {} <div class=\"muted\">{}</div>",
        lang.t("待审批", "Approval"),
        esc(&t.title),
        incident_link(t, titles),
        esc(&t.description),
    );
    h.push_str(&blockers(lang, t));
    h.push_str(&decision_forms(lang, p, t.id, back));
    h
}

/// Approve, and reject with a reason: for approvers only (the engine checks the department).
pub(super) fn decision_forms(lang: Lang, p: &Person, task: i64, back: &str) -> String {
    if !p.can(Role::Approver) {
        return String::new();
    }
    format!(
        "<form method=\"post\" action=\"/console/approvals/{task}/approve\">{hid}\
         <button type=\"submit\" id=\"approve-{task}\">{ok}</button></form>\
         <form method=\"post\" action=\"/console/approvals/{task}/reject\">{hid}\
         <label for=\"reason-{task}\">{why}</label><input id=\"reason-{task}\" name=\"reason\" required>\
         <button type=\"submit\" id=\"reject-{task}\">{no}</button></form>",
        hid = hidden(p, back),
        ok = lang.t("批准", "Approve"),
        why = lang.t("驳回理由", "Reason to reject"),
        no = lang.t("驳回", "Reject"),
    )
}

fn task_item(
    lang: Lang,
    p: &Person,
    t: &TaskView,
    titles: &std::collections::HashMap<i64, String>,
    back: &str,
) -> String {
    let mut h = format!(
        "<strong>{}</strong> {} — {} <span class=\"muted\">({})</span>",
        lang.t("任务", "Task"),
        esc(&t.title),
        incident_link(t, titles),
        esc(&t.status),
    );
    h.push_str(&blockers(lang, t));
    if p.can(Role::Responder) {
        let base = format!("/console/incidents/{}/tasks/{}", t.incident_id, esc(&t.key));
        if t.status == "open" {
            let _ = write!(
                h,
                "<form method=\"post\" action=\"{base}/ack\">{}<button type=\"submit\">{}</button></form>",
                hidden(p, back),
                lang.t("认领", "Acknowledge")
            );
        }
        let _ = write!(
            h,
            "<form method=\"post\" action=\"{base}/complete\">{}\
             <label for=\"note-{id}\">{}</label><input id=\"note-{id}\" name=\"note\">\
             <button type=\"submit\">{}</button></form>",
            hidden(p, back),
            lang.t("备注", "Note"),
            lang.t("完成", "Complete"),
            id = t.id,
        );
    }
    h
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct IncidentsQuery {
    /// `open` (default), `closed` or `all`.
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    category: Option<String>,
    /// `real` (default), `drill` or `all`.
    #[serde(default)]
    drill: Option<String>,
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(&str, &str)]) -> String {
    let mut out =
        format!("<label for=\"{name}\">{label}</label><select id=\"{name}\" name=\"{name}\">");
    for (value, text) in options {
        let sel = if current == Some(*value) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option value=\"{value}\"{sel}>{}</option>", esc(text));
    }
    out.push_str("</select>");
    out
}

/// Incidents, newest first, filtered by state, severity, category and drill.
pub(crate) async fn incidents(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<IncidentsQuery>,
) -> Response {
    let p = match person(&state, &headers, "/console/incidents").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let lang = Lang::of(&state, &headers);
    let list = match state.engine.store().incidents(&incident_filter(&q)).await {
        Ok(l) => l,
        Err(e) => return super::unavailable(&e),
    };
    let mut body = incidents_form(lang, &q);
    incidents_table(lang, &list, &mut body);
    html(
        StatusCode::OK,
        shell(lang, lang.t("事件", "Incidents"), Some(&p), &body),
    )
}

/// The store's filter for the query: open, real incidents unless asked otherwise.
fn incident_filter(q: &IncidentsQuery) -> IncidentFilter {
    IncidentFilter {
        open: match q.state.as_deref() {
            Some("closed") => Some(false),
            Some("all") => None,
            _ => Some(true),
        },
        severity: q.severity.as_deref().and_then(|s| s.parse().ok()),
        category: q.category.as_deref().and_then(|c| c.parse().ok()),
        drill: match q.drill.as_deref() {
            Some("drill") => Some(true),
            Some("all") => None,
            _ => Some(false),
        },
        limit: 200,
        ..Default::default()
    }
}

/// The filter form: state, severity, category and drill, as the query chose them.
fn incidents_form(lang: Lang, q: &IncidentsQuery) -> String {
    let any = lang.t("全部", "any");
    let mut categories: Vec<(&str, &str)> = vec![("", any)];
    categories.extend(
        crate::domain::incident::Category::ALL
            .iter()
            .map(|c| (c.as_str(), c.as_str())),
    );
    format!(
        "<form method=\"get\" action=\"/console/incidents\">{}{}{}{}<p><button type=\"submit\">{}</button></p></form>",
        select(
            "state",
            lang.t("状态", "State"),
            q.state.as_deref().or(Some("open")),
            &[
                ("open", lang.t("处理中", "open")),
                ("closed", lang.t("已结束", "closed")),
                ("all", any)
            ]
        ),
        select(
            "severity",
            lang.t("级别", "Severity"),
            q.severity.as_deref(),
            &[
                ("", any),
                ("S1", "S1"),
                ("S2", "S2"),
                ("S3", "S3"),
                ("S4", "S4")
            ]
        ),
        select(
            "category",
            lang.t("类别", "Category"),
            q.category.as_deref(),
            &categories
        ),
        select(
            "drill",
            lang.t("演练", "Drills"),
            q.drill.as_deref().or(Some("real")),
            &[
                ("real", lang.t("仅真实事件", "real only")),
                ("drill", lang.t("仅演练", "drills only")),
                ("all", any)
            ]
        ),
        lang.t("筛选", "Filter"),
    )
}

/// The incidents found, one row each, or a line saying none matches.
fn incidents_table(lang: Lang, list: &[crate::domain::records::Incident], body: &mut String) {
    if list.is_empty() {
        let _ = write!(
            body,
            "<p>{}</p>",
            lang.t("没有符合条件的事件。", "No incident matches.")
        );
        return;
    }
    table_head(
        body,
        &[
            "#",
            lang.t("标题", "Title"),
            lang.t("级别", "Severity"),
            lang.t("类别", "Category"),
            lang.t("状态", "Status"),
            lang.t("发现于", "Discovered"),
        ],
    );
    for i in list {
        let _ = write!(
            body,
            "<tr><td>{id}</td><td><a href=\"/console/incidents/{id}\">{}{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if i.drill {
                lang.t("【演练】", "[DRILL] ")
            } else {
                ""
            },
            esc(&i.title),
            esc(i.severity.as_str()),
            esc(i.category.as_str()),
            esc(i.status.as_str()),
            when(i.discovered_at),
            id = i.id,
        );
    }
    body.push_str("</table>");
}

/// Everything owed across incidents, soonest first, overdue in red.
pub(crate) async fn obligations(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match person(&state, &headers, "/console/obligations").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let lang = Lang::of(&state, &headers);
    let now = Utc::now();
    let mut list = match state
        .engine
        .store()
        .obligations(&ObligationFilter {
            pending: true,
            limit: 1000,
            ..Default::default()
        })
        .await
    {
        Ok(l) => l,
        Err(e) => return super::unavailable(&e),
    };
    list.sort_by_key(|o| o.due_at.unwrap_or(i64::MAX));
    let mut body = String::new();
    if list.is_empty() {
        let _ = write!(
            body,
            "<p>{}</p>",
            lang.t("目前没有待履行的法定义务。", "Nothing is owed right now.")
        );
    } else {
        table_head(
            &mut body,
            &[
                lang.t("期限", "Due"),
                lang.t("事件", "Incident"),
                lang.t("义务", "Obligation"),
                lang.t("负责部门", "Owner"),
                lang.t("接收方", "Recipient"),
            ],
        );
        for o in &list {
            let due = o
                .due_at
                .and_then(DateTime::from_timestamp_micros)
                .map_or_else(
                    || {
                        lang.t("待定（时钟未开始）", "not yet (its clock has not started)")
                            .to_string()
                    },
                    |d| format!("{}<br>{}", when(d), countdown(lang, d, now)),
                );
            let _ = write!(
                body,
                "<tr><td>{due}</td><td><a href=\"/console/incidents/{id}\">#{id}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.key),
                esc(&o.owner),
                esc(o.recipient.as_deref().unwrap_or("")),
                id = o.incident_id,
            );
        }
        body.push_str("</table>");
    }
    html(
        StatusCode::OK,
        shell(lang, lang.t("法定义务", "Obligations"), Some(&p), &body),
    )
}

/// Drills: the schedule, past drills with their scorecards, and the trend of measures met.
pub(crate) async fn drills(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = match person(&state, &headers, "/console/drills").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let lang = Lang::of(&state, &headers);
    let now = Utc::now();
    let mut body = String::new();
    let schedules = state.live().drill_schedules.clone();
    let _ = write!(body, "<h2>{}</h2>", lang.t("计划", "Schedule"));
    if schedules.is_empty() {
        let _ = write!(
            body,
            "<p>{}</p>",
            lang.t(
                "没有定期演练（[[drills.schedule]]）。",
                "No drill is scheduled ([[drills.schedule]])."
            )
        );
    } else {
        body.push_str("<ul>");
        for s in &schedules {
            let next = crate::api::drills::next_run(&s.cron, &s.time_zone, now).map_or_else(
                String::new,
                |t| {
                    format!(
                        " — {} {} {}",
                        lang.t("下次", "next"),
                        when(t),
                        countdown(lang, t, now)
                    )
                },
            );
            let _ = write!(
                body,
                "<li>{} — <code>{}</code> ({}){next}</li>",
                esc(&s.scenario),
                esc(&s.cron),
                esc(&s.time_zone)
            );
        }
        body.push_str("</ul>");
    }
    let list = match state.engine.store().drills(200).await {
        Ok(l) => l,
        Err(e) => return super::unavailable(&e),
    };
    let _ = write!(body, "<h2>{}</h2>", lang.t("历次演练", "Past drills"));
    if list.is_empty() {
        let _ = write!(body, "<p>{}</p>", lang.t("还没有演练。", "No drill yet."));
    } else {
        table_head(
            &mut body,
            &[
                "#",
                lang.t("场景", "Scenario"),
                lang.t("开始", "Started"),
                lang.t("状态", "Status"),
                lang.t("达标项", "Measures met"),
                lang.t("事件", "Incident"),
            ],
        );
        for d in &list {
            let score = d
                .scorecard
                .as_deref()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .and_then(|v| Some((v["met"].as_u64()?, v["missed"].as_u64()?)))
                .map_or_else(String::new, |(met, missed)| {
                    let total = (met + missed).max(1);
                    format!(
                        "<progress max=\"{total}\" value=\"{met}\"></progress> {met} / {}",
                        met + missed
                    )
                });
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{score}</td><td><a href=\"/console/incidents/{inc}\">#{inc}</a></td></tr>",
                d.id,
                esc(&d.scenario),
                esc(&d.mode),
                when(DateTime::from_timestamp_micros(d.started_at).unwrap_or(now)),
                esc(&d.status),
                inc = d.incident_id,
            );
        }
        body.push_str("</table>");
    }
    html(
        StatusCode::OK,
        shell(lang, lang.t("演练", "Drills"), Some(&p), &body),
    )
}
