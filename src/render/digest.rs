//! The `digest` value page templates see (`templates/page/digest.*.hbs`): the pages a
//! responder's digest holds, most severe first, with short titles for SMS and calls.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How many pages an SMS or a call names before "and N more".
pub const SHORT_LIST: usize = 2;

/// What a page says about itself for a digest that may hold it (its `content.data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageNote {
    pub incident_id: i64,
    pub severity: String,
    pub title: String,
    /// The page's one-click acknowledgement link, when it has one.
    pub ack: Option<String>,
    pub recipient_name: Option<String>,
}

fn short(title: &str) -> String {
    const MAX: usize = 24;
    if title.chars().count() <= MAX {
        title.to_string()
    } else {
        let mut s: String = title.chars().take(MAX - 1).collect();
        s.push('…');
        s
    }
}

/// The `digest` value templates see (see `templates/page/digest.en.hbs`); with the daemon's
/// public URL, each page links to its incident's console page.
pub fn digest_value(notes: &[PageNote], window: &str, public_url: Option<&str>) -> Value {
    let base = public_url.map(|u| u.trim_end_matches('/'));
    let pages: Vec<Value> = notes
        .iter()
        .map(|n| {
            json!({
                "incident_id": n.incident_id,
                "severity": n.severity,
                "title": n.title,
                "short_title": short(&n.title),
                "ack": n.ack,
                "console": base.map(|b| format!("{b}/console/incidents/{}", n.incident_id)),
            })
        })
        .collect();
    let mut by_severity: Vec<(String, usize)> = Vec::new();
    for n in notes {
        match by_severity.iter_mut().find(|(s, _)| *s == n.severity) {
            Some((_, c)) => *c += 1,
            None => by_severity.push((n.severity.clone(), 1)),
        }
    }
    let first: Vec<Value> = pages.iter().take(SHORT_LIST).cloned().collect();
    json!({
        "count": pages.len(),
        "s1": notes.iter().filter(|n| n.severity == "S1").count(),
        "top_severity": notes.first().map(|n| n.severity.clone()),
        "by_severity": by_severity
            .into_iter()
            .map(|(severity, count)| json!({"severity": severity, "count": count}))
            .collect::<Vec<_>>(),
        "more": pages.len() - first.len(),
        "first": first,
        "pages": pages,
        "window": window,
    })
}

/// The digest of previews (`render --sample`, `check`): five pages, two of them S1.
pub fn sample_digest() -> Value {
    let n = |id: i64, sev: &str, title: &str| PageNote {
        incident_id: id,
        severity: sev.into(),
        title: title.into(),
        ack: Some(format!(
            "https://incidents.example.com/ack/NDIfY29udGFpbh9zZWN1cml0eS8xHzE3NDg3NjQ4MDA.sample{id}"
        )),
        recipient_name: Some("张三".into()),
    };
    digest_value(
        &notes_sorted(vec![
            n(14, "S3", "Web 应用防火墙拦截量异常升高"),
            n(12, "S1", "会员数据库备份文件遭未授权访问"),
            n(15, "S2", "办公网终端检出勒索软件样本"),
            n(
                13,
                "S1",
                "DLP: bulk export of table crm.customers (phone, id_card_no) to unknown host 203.0.113.77",
            ),
            n(16, "S3", "VPN 网关登录失败次数激增"),
        ]),
        "2m",
        None,
    )
}

pub(crate) fn notes_sorted(mut v: Vec<PageNote>) -> Vec<PageNote> {
    v.sort_by(|a, b| (&a.severity, a.incident_id).cmp(&(&b.severity, b.incident_id)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_titles_are_shortened_for_sms() {
        assert_eq!(short("short"), "short");
        let s = short("DLP: bulk export of table crm.customers to an unknown host");
        assert_eq!(s.chars().count(), 24);
        assert!(s.ends_with('…'));
    }
}
