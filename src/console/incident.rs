//! An incident's console page: its facts (editable by responders), team, tasks, obligations,
//! alerts, what went out (deliveries, campaigns, reports, the announcement) and its timeline.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::pages::{countdown, esc, hidden, section_table, shell, table_head, when};
use super::{Lang, Person, html, person};
use crate::api::AppState;
use crate::config::Role;
use crate::store::ObligationFilter;

/// An incident: its state, team, tasks and obligations.
pub(crate) async fn incident(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let back = format!("/console/incidents/{id}");
    let p = match person(&state, &headers, &back).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let lang = Lang::of(&state, &headers);
    let store = state.engine.store();
    let inc = match store.incident(id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                shell(lang, lang.t("没有此事件", "No such incident"), Some(&p), ""),
            );
        }
        Err(e) => return super::unavailable(&e),
    };
    let now = Utc::now();
    let mut body = incident_summary(lang, &inc);
    let events = store.timeline(id, 0, 1000).await.unwrap_or_default();
    incident_facts(lang, &inc, &mut body);
    facts_history(lang, &events, &mut body);
    if p.can(Role::Responder) {
        facts_form(lang, &p, id, &mut body);
    }
    incident_alerts(&state, lang, id, &mut body).await;
    incident_team(&state, lang, id, now, &mut body).await;
    incident_tasks(&state, lang, id, now, &mut body).await;
    incident_obligations(&state, lang, id, now, &mut body).await;
    let live = incident_outbound(&state, lang, &p, id, &mut body).await;
    incident_timeline(lang, &events, &mut body);
    let page = shell(lang, &format!("#{id} {}", inc.title), Some(&p), &body);
    html(StatusCode::OK, if live { refreshing(&page) } else { page })
}

/// The incident's one-line summary: severity, category, status, when it was discovered.
fn incident_summary(lang: Lang, inc: &crate::domain::records::Incident) -> String {
    format!(
        "<p><strong>{}</strong> · {} · {} · {} {}</p>",
        esc(inc.severity.as_str()),
        esc(inc.category.as_str()),
        esc(inc.status.as_str()),
        lang.t("发现于", "discovered"),
        when(inc.discovered_at)
    )
}

/// Progressive enhancement without script: while a campaign is sending, the page refreshes
/// itself.
fn refreshing(page: &str) -> String {
    page.replacen(
        "<meta charset=\"utf-8\">",
        "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\">",
        1,
    )
}

/// The joint team: each department paged, when, and who acknowledged.
async fn incident_team(
    state: &AppState,
    lang: Lang,
    id: i64,
    now: DateTime<Utc>,
    body: &mut String,
) {
    let Ok(team) = state.engine.store().team(id).await else {
        return;
    };
    section_table(
        body,
        lang.t("联合响应小组", "Joint team"),
        &[
            lang.t("部门", "Department"),
            lang.t("通知时间", "Paged"),
            lang.t("确认", "Acknowledged"),
        ],
    );
    for m in team {
        let acked = match (&m.acked_by, m.acked_at) {
            (Some(by), Some(at)) => format!(
                "{} · {}",
                esc(by),
                when(DateTime::from_timestamp_micros(at).unwrap_or(now))
            ),
            _ => format!(
                "<span class=\"overdue\">{}</span>",
                lang.t("未确认", "not yet")
            ),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{acked}</td></tr>",
            esc(&m.department),
            when(DateTime::from_timestamp_micros(m.paged_at).unwrap_or(now))
        );
    }
    body.push_str("</table>");
}

/// The incident's tasks, with a countdown on those still open.
async fn incident_tasks(
    state: &AppState,
    lang: Lang,
    id: i64,
    now: DateTime<Utc>,
    body: &mut String,
) {
    let Ok(tasks) = state.engine.incident_tasks(id).await else {
        return;
    };
    section_table(
        body,
        lang.t("任务", "Tasks"),
        &[
            lang.t("任务", "Task"),
            lang.t("部门", "Department"),
            lang.t("状态", "Status"),
            lang.t("期限", "Due"),
        ],
    );
    for t in tasks {
        let due = t.due_at.map_or_else(String::new, |d| {
            let open = !matches!(
                t.status.as_str(),
                "done" | "approved" | "rejected" | "cancelled"
            );
            if open {
                format!("{} {}", when(d), countdown(lang, d, now))
            } else {
                when(d)
            }
        });
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{due}</td></tr>",
            esc(&t.title),
            esc(&t.department),
            esc(&t.status)
        );
    }
    body.push_str("</table>");
}

/// The incident's legal obligations, each with why it applies.
async fn incident_obligations(
    state: &AppState,
    lang: Lang,
    id: i64,
    now: DateTime<Utc>,
    body: &mut String,
) {
    let Ok(obligations) = state
        .engine
        .store()
        .obligations(&ObligationFilter {
            incident_id: Some(id),
            limit: 200,
            drills: true,
            ..Default::default()
        })
        .await
    else {
        return;
    };
    if obligations.is_empty() {
        return;
    }
    section_table(
        body,
        lang.t("法定义务", "Obligations"),
        &[
            lang.t("义务", "Obligation"),
            lang.t("负责部门", "Owner"),
            lang.t("状态", "Status"),
            lang.t("期限", "Due"),
        ],
    );
    for o in obligations {
        let due = o
            .due_at
            .and_then(DateTime::from_timestamp_micros)
            .map_or_else(String::new, |d| {
                if o.status == "open" && o.standing == "required" {
                    format!("{} {}", when(d), countdown(lang, d, now))
                } else {
                    when(d)
                }
            });
        let v = crate::api::obligations::view(&o, now);
        let why: String = v
            .why
            .iter()
            .map(|w| format!("<li>{}</li>", esc(w)))
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}<div class=\"muted\">{}</div></td><td>{}</td><td>{} · {}</td><td>{due}</td></tr>\
             <tr><td colspan=\"4\"><details><summary>{}</summary><ul>{why}</ul></details></td></tr>",
            esc(&o.key),
            esc(&v.title),
            esc(&o.owner),
            esc(&o.standing),
            esc(&o.status),
            lang.t("依据", "Why"),
        );
    }
    body.push_str("</table>");
}

/// What went out for an incident: deliveries by channel, notice campaigns and their progress,
/// regulator reports, the public announcement. True while a campaign is still sending.
async fn incident_outbound(
    state: &AppState,
    lang: Lang,
    p: &Person,
    id: i64,
    body: &mut String,
) -> bool {
    outbound_deliveries(state, lang, id, body).await;
    let live = outbound_campaigns(state, lang, id, body).await;
    outbound_reports(state, lang, p, id, body).await;
    outbound_announcement(state, lang, id, body).await;
    live
}

/// Deliveries by channel and status.
async fn outbound_deliveries(state: &AppState, lang: Lang, id: i64, body: &mut String) {
    let Ok(counts) = state.engine.store().delivery_counts(id).await else {
        return;
    };
    if counts.is_empty() {
        return;
    }
    section_table(
        body,
        lang.t("发送记录", "Deliveries"),
        &[
            lang.t("渠道", "Channel"),
            lang.t("状态", "Status"),
            lang.t("数量", "Count"),
        ],
    );
    for (channel, status, n) in counts {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
            esc(&channel),
            esc(&status)
        );
    }
    body.push_str("</table>");
}

/// Notice campaigns and their progress per channel. True while one is still sending.
async fn outbound_campaigns(state: &AppState, lang: Lang, id: i64, body: &mut String) -> bool {
    let store = state.engine.store();
    let Ok(campaigns) = store.campaigns(Some(id)).await else {
        return false;
    };
    if campaigns.is_empty() {
        return false;
    }
    let mut live = false;
    section_table(
        body,
        lang.t("通知活动", "Notice campaigns"),
        &[
            "#",
            lang.t("状态", "Status"),
            lang.t("对象", "People"),
            lang.t(
                "进度（已送达 / 已排队 / 失败）",
                "Progress (sent / queued / dead)",
            ),
        ],
    );
    for c in campaigns {
        if matches!(c.status.as_str(), "enqueueing" | "enqueued") {
            live = true;
        }
        let mut progress = String::new();
        if let Ok(rows) = store.campaign_progress(c.id).await {
            for (channel, enqueued, sent, _failed, dead) in rows {
                let _ = write!(
                    progress,
                    "<div>{}: <progress max=\"{}\" value=\"{sent}\"></progress> {sent} / {enqueued} / {dead}</div>",
                    esc(&channel),
                    enqueued.max(1)
                );
            }
        }
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{} ({} {})</td><td>{progress}</td></tr>",
            c.id,
            esc(&c.status),
            c.subjects,
            c.unreachable,
            lang.t("人无法联系", "unreachable")
        );
    }
    body.push_str("</table>");
    live
}

/// Regulator reports: each version, its status, and the submit form once approved.
async fn outbound_reports(state: &AppState, lang: Lang, p: &Person, id: i64, body: &mut String) {
    let Ok(reports) = state.engine.store().reports_of(id).await else {
        return;
    };
    if reports.is_empty() {
        return;
    }
    section_table(
        body,
        lang.t("监管报告", "Regulator reports"),
        &[
            lang.t("义务", "Obligation"),
            lang.t("版本", "Version"),
            lang.t("语言", "Language"),
            lang.t("状态", "Status"),
            "",
        ],
    );
    for r in reports {
        let submit = if r.status == "approved" && p.can(Role::Responder) {
            submit_form(lang, p, id, r.id)
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/reports/{rid}\">{}</a></td><td>{}</td><td>{}</td><td>{}{}</td><td>{submit}</td></tr>",
            esc(&r.obligation_key),
            r.version,
            esc(&r.locale),
            esc(&r.status),
            r.reference
                .as_deref()
                .map(|x| format!(" · {}", esc(x)))
                .unwrap_or_default(),
            rid = r.id,
        );
    }
    body.push_str("</table>");
}

/// The form that submits an approved report: by e-mail, or recorded as submitted by hand.
fn submit_form(lang: Lang, p: &Person, id: i64, rid: i64) -> String {
    let back = format!("/console/incidents/{id}");
    format!(
        "<form method=\"post\" action=\"/console/incidents/{id}/reports/{rid}/submit\">{hid}\
         <label for=\"via-{rid}\">{how}</label><select id=\"via-{rid}\" name=\"via\">\
         <option value=\"email\">{email}</option><option value=\"manual\">{manual}</option></select>\
         <label for=\"reference-{rid}\">{reference}</label><input id=\"reference-{rid}\" name=\"reference\">\
         <button type=\"submit\" id=\"submit-{rid}\">{go}</button></form>",
        hid = hidden(p, &back),
        how = lang.t("报送方式", "Submit how"),
        email = lang.t(
            "电子邮件（发往监管地址）",
            "e-mail (to the regulator's address)"
        ),
        manual = lang.t(
            "已人工报送（网站、热线）",
            "already submitted by hand (portal, hotline)"
        ),
        reference = lang.t(
            "监管回执编号（人工报送必填）",
            "The regulator's reference (required by hand)"
        ),
        go = lang.t("报送", "Submit"),
    )
}

/// The public announcement's address and its versions.
async fn outbound_announcement(state: &AppState, lang: Lang, id: i64, body: &mut String) {
    let Ok(Some(a)) = state.engine.store().announcement_of(id).await else {
        return;
    };
    let _ = write!(
        body,
        "<h2>{}</h2><p><a href=\"/announcements/{slug}\">/announcements/{slug}</a></p>",
        lang.t("公告", "Public announcement"),
        slug = esc(&a.slug)
    );
    announcement_versions(state, lang, a.id, body).await;
}

/// The newest events of the incident's audit trail.
fn incident_timeline(lang: Lang, events: &[crate::domain::records::Event], body: &mut String) {
    section_table(
        body,
        lang.t("时间线", "Timeline"),
        &[
            lang.t("时间", "When"),
            lang.t("操作者", "Who"),
            lang.t("事件", "What"),
        ],
    );
    for e in events.iter().rev().take(200) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(e.at),
            esc(&e.actor),
            esc(&e.kind)
        );
    }
    body.push_str("</table>");
}

/// A fact's value as a person reads it: a per-language text in the page's language (else the
/// first), a text per audience labelled, lists joined, counts per jurisdiction as `CN: 2300000`.
fn fact_text(v: &serde_json::Value, lang: Lang) -> String {
    use serde_json::Value;
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| fact_text(i, lang))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(m) => {
            let is_locale =
                |k: &str| k.len() <= 5 && k.chars().all(|c| c.is_ascii_alphabetic() || c == '-');
            if !m.is_empty() && m.keys().all(|k| k == "internal" || k == "public") {
                m.iter()
                    .map(|(k, v)| {
                        let label = if k == "public" {
                            lang.t("对外", "public")
                        } else {
                            lang.t("内部", "internal")
                        };
                        format!("{label}: {}", fact_text(v, lang))
                    })
                    .collect::<Vec<_>>()
                    .join(" · ")
            } else if !m.is_empty()
                && m.keys()
                    .all(|k| (is_locale(k) && k.contains('-')) || k == "en")
            {
                m.get(lang.code())
                    .or_else(|| m.values().next())
                    .map(|v| fact_text(v, lang))
                    .unwrap_or_default()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}: {}", fact_text(v, lang)))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        }
        other => other.to_string(),
    }
}

/// What is known: the incident's facts at their current version.
fn incident_facts(lang: Lang, inc: &crate::domain::records::Incident, body: &mut String) {
    let Ok(serde_json::Value::Object(facts)) = serde_json::to_value(&inc.facts) else {
        return;
    };
    let shown: Vec<(&String, String)> = facts
        .iter()
        .map(|(k, v)| (k, fact_text(v, lang)))
        .filter(|(_, t)| !t.is_empty())
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = write!(
        body,
        "<h2>{} <span class=\"muted\">({} {})</span></h2><table>",
        lang.t("已知事实", "Facts"),
        lang.t("版本", "version"),
        inc.facts_version
    );
    for (k, t) in shown {
        let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&t));
    }
    body.push_str("</table>");
}

/// Every version of the facts: who changed what, when (each version is kept in the timeline).
fn facts_history(lang: Lang, events: &[crate::domain::records::Event], body: &mut String) {
    let changes: Vec<&crate::domain::records::Event> = events
        .iter()
        .filter(|e| e.kind == "incident.facts_updated")
        .collect();
    if changes.is_empty() {
        return;
    }
    let _ = write!(
        body,
        "<details><summary>{} ({})</summary>",
        lang.t("事实的各个版本", "Earlier versions of the facts"),
        changes.len()
    );
    table_head(
        body,
        &[
            lang.t("版本", "Version"),
            lang.t("时间", "When"),
            lang.t("操作者", "Who"),
            lang.t("改动", "Changed"),
        ],
    );
    for e in changes.iter().rev() {
        let version = e.data["facts_version"]
            .as_i64()
            .or_else(|| e.data["version"].as_i64())
            .map_or_else(String::new, |v| v.to_string());
        let changed = e.data["patch"]
            .as_object()
            .or_else(|| e.data["changed"].as_object())
            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{version}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(e.at),
            esc(&e.actor),
            esc(&changed)
        );
    }
    body.push_str("</table></details>");
}

/// The responders' form: facts as `KEY=VALUE` lines, as `incidentd facts --set` takes them.
fn facts_form(lang: Lang, p: &Person, id: i64, body: &mut String) {
    let _ = write!(
        body,
        "<details><summary id=\"facts-edit\">{summary}</summary>\
         <form method=\"post\" action=\"/console/incidents/{id}/facts\">{hid}\
         <label for=\"facts-set\">{label}</label>\
         <textarea id=\"facts-set\" name=\"set\" rows=\"5\" cols=\"60\" required \
         placeholder=\"by_jurisdiction.CN.affected_subjects=2300000&#10;data_types=phone,id_number&#10;cause.public.en=…\"></textarea>\
         <p class=\"muted\">{help}</p>\
         <button type=\"submit\" id=\"facts-save\">{save}</button></form></details>",
        summary = lang.t("修改事实", "Change the facts"),
        hid = hidden(p, &format!("/console/incidents/{id}")),
        label = lang.t(
            "每行一项：键=值（与 incidentd facts --set 相同）",
            "One per line: KEY=VALUE (as incidentd facts --set takes them)"
        ),
        help = lang.t(
            "列表用逗号分隔（data_types、jurisdictions）；点号指定部分：by_jurisdiction.CN.affected_subjects=…（按法域）、cause.public.zh-CN=…（对外、按语言）；留空则删除该项。每次保存是一个新版本，受影响人数只升不降时严重级别随之调整。",
            "Lists are comma-separated (data_types, jurisdictions); a dot sets a part: by_jurisdiction.CN.affected_subjects=… (per jurisdiction), cause.public.en=… (the public text, per language); an empty value removes the fact. Each save is a new version; more affected people may raise the severity."
        ),
        save = lang.t("保存为新版本", "Save as a new version"),
    );
}

/// The incident's newest alerts.
async fn incident_alerts(state: &AppState, lang: Lang, id: i64, body: &mut String) {
    let Ok(alerts) = state
        .engine
        .store()
        .alerts(&crate::store::AlertFilter {
            incident_id: Some(id),
            limit: 20,
            ..Default::default()
        })
        .await
    else {
        return;
    };
    if alerts.is_empty() {
        return;
    }
    section_table(
        body,
        lang.t("告警（最新 20 条）", "Alerts (the newest 20)"),
        &[
            lang.t("收到", "Received"),
            lang.t("来源", "Source"),
            lang.t("状态", "Status"),
            lang.t("标题", "Title"),
        ],
    );
    for a in alerts {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(a.received_at),
            esc(&a.source),
            esc(a.status.as_str()),
            esc(&a.title)
        );
    }
    body.push_str("</table>");
}

/// The announcement's versions: when each was published, by whom and why, and its approval.
async fn announcement_versions(state: &AppState, lang: Lang, announcement: i64, body: &mut String) {
    let store = state.engine.store();
    let (Ok(versions), Ok(gates)) = (
        store.announcement_versions(announcement).await,
        store.announcement_gates(announcement).await,
    ) else {
        return;
    };
    table_head(
        body,
        &[
            lang.t("版本", "Version"),
            lang.t("发布", "Published"),
            lang.t("操作者", "Who"),
            lang.t("原因", "Why"),
            lang.t("审批", "Approval"),
        ],
    );
    for v in versions.iter().rev() {
        let gate = gates.iter().find(|g| g.version == v.version).map_or_else(
            || lang.t("公开", "public").to_string(),
            |g| {
                let by = g
                    .decided_by
                    .as_deref()
                    .map(|b| format!(" · {}", esc(b)))
                    .unwrap_or_default();
                format!("{}{by}", esc(&g.status))
            },
        );
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{gate}</td></tr>",
            v.version,
            when(DateTime::from_timestamp_micros(v.published_at).unwrap_or_default()),
            esc(&v.actor),
            esc(&v.reason)
        );
    }
    body.push_str("</table>");
}
