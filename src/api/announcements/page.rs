//! The public pages and the feed, written out by hand: plain, accessible HTML (one `<h1>`,
//! landmarks, a skip link, a language switch of plain links), inline styles only, no scripts,
//! nothing fetched from elsewhere. Every value is escaped here except the announcement's body,
//! which the template engine rendered with escaping.

use std::fmt::Write;

use axum::http::StatusCode;
use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::api::Live;
use crate::domain::time::from_micros;
use crate::engine::announce::{AnnouncementVersion, LocaleText};
use crate::store::PublishedVersionRow;

mod feed;
pub use feed::atom_feed;

/// Escape text for HTML and XML (content and quoted attributes). Control characters other
/// than line breaks and tabs are dropped: XML 1.0 forbids them, so one would make the whole
/// feed ill-formed (facts refuse them at input; older or imported text may still hold them).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if !allowed(c) => {}
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether XML 1.0 (and HTML) can carry `c` as text.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// Markup the template engine made, without the control characters [`esc`] drops.
fn printable(html: &str) -> std::borrow::Cow<'_, str> {
    if html.chars().all(allowed) {
        std::borrow::Cow::Borrowed(html)
    } else {
        std::borrow::Cow::Owned(html.chars().filter(|c| allowed(*c)).collect())
    }
}

/// The words of the page around the announcement.
struct Ui {
    list_title: &'static str,
    skip: &'static str,
    language: &'static str,
    published: &'static str,
    updated: &'static str,
    /// `{n}`, `{m}`, `{time}`.
    older: &'static str,
    see_latest: &'static str,
    /// `{m}`, `{time}` (first publication).
    was_updated: &'static str,
    history: &'static str,
    /// `{n}`.
    version_n: &'static str,
    latest: &'static str,
    this_version: &'static str,
    drill: &'static str,
    none: &'static str,
    feed: &'static str,
    all: &'static str,
    not_found: &'static str,
    not_found_text: &'static str,
    unavailable: &'static str,
    unavailable_text: &'static str,
    time_format: &'static str,
}

const ZH: Ui = Ui {
    list_title: "公告",
    skip: "跳到正文",
    language: "语言",
    published: "发布于",
    updated: "更新于",
    older: "这是本公告的第 {n} 版（共 {m} 版），发布于 {time}，之后已有更新。",
    see_latest: "查看最新版本",
    was_updated: "本公告已更新，当前为第 {m} 版；首次发布于 {time}。",
    history: "版本记录",
    version_n: "第 {n} 版",
    latest: "最新",
    this_version: "当前显示",
    drill: "演练：本公告属于应急预案演练，不涉及真实事件。",
    none: "目前没有公告。",
    feed: "订阅更新（Atom）",
    all: "全部公告",
    not_found: "找不到该公告",
    not_found_text: "该地址没有公告，或该版本不存在。",
    unavailable: "暂时无法显示",
    unavailable_text: "请稍后再试。",
    time_format: "%Y年%m月%d日 %H:%M（UTC%:z）",
};

const EN: Ui = Ui {
    list_title: "Announcements",
    skip: "Skip to content",
    language: "Language",
    published: "Published",
    updated: "Updated",
    older: "This is version {n} of {m}, published {time}. It has since been updated.",
    see_latest: "See the latest version",
    was_updated: "This announcement has been updated: this is version {m}. First published {time}.",
    history: "Version history",
    version_n: "Version {n}",
    latest: "latest",
    this_version: "shown",
    drill: "DRILL: this announcement is part of an emergency-plan drill and describes no real incident.",
    none: "There are no announcements.",
    feed: "Subscribe to updates (Atom feed)",
    all: "All announcements",
    not_found: "Announcement not found",
    not_found_text: "There is no announcement at this address, or no such version of it.",
    unavailable: "This page cannot be shown right now",
    unavailable_text: "Please try again in a moment.",
    time_format: "%-d %B %Y, %H:%M (UTC%:z)",
};

fn language_name(locale: &str) -> String {
    match locale.to_ascii_lowercase().as_str() {
        "zh-cn" | "zh" | "zh-hans" => "中文".into(),
        "zh-tw" | "zh-hant" => "中文（繁體）".into(),
        "en" | "en-us" | "en-gb" => "English".into(),
        _ => locale.to_string(),
    }
}

/// Which of `available` a reader asking for `tag` gets: the tag, a shorter form of it, or a
/// locale of the same language (`zh-TW` → `zh-CN` rather than nothing).
fn best_match<'a>(tag: &str, available: &'a [String]) -> Option<&'a String> {
    let tag = tag.trim().replace('_', "-");
    if tag.is_empty() || tag == "*" {
        return None;
    }
    let mut cur = tag.as_str();
    while !cur.is_empty() {
        if let Some(l) = available.iter().find(|l| l.eq_ignore_ascii_case(cur)) {
            return Some(l);
        }
        cur = cur.rsplit_once('-').map_or("", |(head, _)| head);
    }
    let lang = tag.split('-').next().unwrap_or_default();
    available.iter().find(|l| {
        l.split('-')
            .next()
            .is_some_and(|p| p.eq_ignore_ascii_case(lang))
    })
}

/// `Accept-Language` tags, most wanted first (q=0 means "not this one").
fn accepted(header: &str) -> Vec<String> {
    let mut tags: Vec<(f32, usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next()?.trim().to_string();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0 && !tag.is_empty()).then_some((q, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().map(|(_, _, t)| t).collect()
}

/// What every page shares: the reader's language, the organisation, the time zone.
pub struct Shell {
    pub locale: String,
    /// The languages the switch offers.
    pub available: Vec<String>,
    org: String,
    tz: Tz,
    /// `?lang=` was given: links keep it.
    explicit: bool,
}

impl Shell {
    pub fn new(live: &Live, lang: Option<&str>, accept_language: Option<&str>) -> Shell {
        let mut available: Vec<String> = live
            .templates
            .locales(&live.announcements.template)
            .into_iter()
            .map(str::to_string)
            .collect();
        let default = live.default_locale.to_ascii_lowercase();
        available.sort_by_key(|l| l.to_ascii_lowercase() != default);
        let from_query = lang.and_then(|l| best_match(l, &available)).cloned();
        let from_header = || {
            accepted(accept_language.unwrap_or_default())
                .iter()
                .find_map(|t| best_match(t, &available))
                .cloned()
        };
        let locale = from_query
            .clone()
            .or_else(from_header)
            .or_else(|| best_match(&live.default_locale, &available).cloned())
            .or_else(|| available.first().cloned())
            .unwrap_or_else(|| live.default_locale.clone());
        Shell {
            explicit: from_query.is_some(),
            locale,
            available,
            org: live.organisation.name.clone(),
            tz: live.templates.time_zone(),
        }
    }

    fn ui(&self) -> &'static Ui {
        if self.locale.to_ascii_lowercase().starts_with("zh") {
            &ZH
        } else {
            &EN
        }
    }

    /// An Atom (RFC 3339) time in the organisation's time zone, with its offset.
    /// A feed time in the organisation's time zone, to the second.
    fn atom_time(&self, t: DateTime<Utc>) -> atom_syndication::FixedDateTime {
        let whole = t.with_nanosecond(0).unwrap_or(t);
        whole.with_timezone(&self.tz).fixed_offset()
    }

    fn time(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.tz);
        format!(
            "<time datetime=\"{}\">{}</time>",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            esc(&local.format(self.ui().time_format).to_string())
        )
    }

    /// A link to `path` keeping the reader's language if they chose one.
    fn href(&self, path: &str, version: Option<i64>) -> String {
        let mut q = Vec::new();
        if self.explicit {
            q.push(format!("lang={}", self.locale));
        }
        if let Some(v) = version {
            q.push(format!("version={v}"));
        }
        if q.is_empty() {
            esc(path)
        } else {
            esc(&format!("{path}?{}", q.join("&")))
        }
    }

    /// The language switch: one plain link per language, keeping the version shown.
    fn switch(&self, path: &str, version: Option<i64>) -> String {
        let ui = self.ui();
        let mut s = format!(
            "<nav class=\"lang\" aria-label=\"{}\"><ul>",
            esc(ui.language)
        );
        for l in &self.available {
            let mut href = format!("{path}?lang={l}");
            if let Some(v) = version {
                let _ = write!(href, "&version={v}");
            }
            let current = if l.eq_ignore_ascii_case(&self.locale) {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(
                s,
                "<li><a href=\"{}\" hreflang=\"{l}\" lang=\"{l}\"{current}>{}</a></li>",
                esc(&href),
                esc(&language_name(l))
            );
        }
        s.push_str("</ul></nav>");
        s
    }

    fn document(&self, title: &str, head_extra: &str, switch: &str, main: &str) -> String {
        let ui = self.ui();
        format!(
            "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n{head_extra}\
             <link rel=\"alternate\" type=\"application/atom+xml\" href=\"/announcements/feed.xml\" title=\"{feed}\">\n\
             <style>{CSS}</style>\n</head>\n<body>\n\
             <a class=\"skip\" href=\"#main\">{skip}</a>\n\
             <header><p class=\"org\"><a href=\"{all_href}\">{org}</a></p>{switch}</header>\n\
             <main id=\"main\">\n{main}\n</main>\n\
             <footer><p><a href=\"{all_href}\">{all}</a> · <a href=\"/announcements/feed.xml\" type=\"application/atom+xml\">{feed}</a></p></footer>\n\
             </body>\n</html>\n",
            lang = esc(&self.locale),
            title = esc(title),
            feed = esc(ui.feed),
            skip = esc(ui.skip),
            org = esc(&self.org),
            all = esc(ui.all),
            all_href = self.href("/announcements", None),
        )
    }
}

const CSS: &str = "\
:root{color-scheme:light;--ink:#1a1a1a;--muted:#4a4a4a;--line:#d0d0d0;--link:#0b4fa8;--bg:#fff}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--ink);font:1.0625rem/1.7 system-ui,-apple-system,'Segoe UI','PingFang SC','Hiragino Sans GB','Microsoft YaHei','Noto Sans CJK SC',sans-serif}\
header,main,footer{max-width:44rem;margin:0 auto;padding:0 1.25rem}\
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5rem;border-bottom:1px solid var(--line);padding-top:.75rem;padding-bottom:.75rem}\
.org{margin:0;font-weight:600}.org a{color:var(--ink);text-decoration:none}\
.lang ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0}\
.lang a[aria-current]{font-weight:700;color:var(--ink);text-decoration:none;border-bottom:2px solid var(--ink)}\
a{color:var(--link)}a:focus-visible{outline:3px solid #f4b400;outline-offset:2px}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:1}\
h1{font-size:1.75rem;line-height:1.3;margin:1.5rem 0 .5rem}\
h2{font-size:1.2rem;margin:1.75rem 0 .25rem}\
.meta{color:var(--muted);margin:0 0 1rem}\
.banner{border-left:6px solid #0b4fa8;background:#eef4fc;padding:.75rem 1rem;margin:1rem 0}\
.banner.old{border-color:#8a5a00;background:#fff6e0}\
.banner.drill,p.drill{border:3px solid #b00020;background:#fde8eb;color:#6b0013;padding:.75rem 1rem;font-weight:700;font-size:1.15rem}\
.history ul{list-style:none;padding:0}.history li{margin:.25rem 0}\
.list{list-style:none;padding:0}.list li{border-bottom:1px solid var(--line);padding:.75rem 0}\
.list a{font-weight:600;font-size:1.1rem}\
footer{border-top:1px solid var(--line);margin-top:2.5rem;padding-top:.75rem;padding-bottom:2rem;color:var(--muted);font-size:.95rem}\
";

fn pick<'a>(locales: &'a [LocaleText], locale: &str) -> Option<&'a LocaleText> {
    locales
        .iter()
        .find(|l| l.locale.eq_ignore_ascii_case(locale))
        .or_else(|| locales.first())
}

/// One announcement, `shown` being the version asked for (`versions` oldest first).
pub fn announcement_page(
    shell: &Shell,
    shown: &AnnouncementVersion,
    versions: &[AnnouncementVersion],
    version_asked: bool,
) -> String {
    let path = format!("/announcements/{}", shown.slug);
    let total = versions.len() as i64;
    let empty = LocaleText {
        locale: shell.locale.clone(),
        title: shown.slug.clone(),
        html: String::new(),
    };
    let text = pick(&shown.locales, &shell.locale).unwrap_or(&empty);
    let first = versions
        .first()
        .map_or(shown.published_at, |v| v.published_at);
    let mut main = banners(shell, shown, total, first, &path);
    main.push_str(&article(shell, shown, text, first));
    main.push_str(&history(shell, shown, versions, &path));
    let head = if shown.drill || version_asked {
        "<meta name=\"robots\" content=\"noindex\">\n"
    } else {
        ""
    };
    let switch = shell.switch(&path, version_asked.then_some(shown.version));
    shell.document(&text.title, head, &switch, &main)
}

/// The notes above the text: a drill, an older version than the latest, or one that was
/// updated (`first`: when the first version was published).
fn banners(
    shell: &Shell,
    shown: &AnnouncementVersion,
    total: i64,
    first: DateTime<Utc>,
    path: &str,
) -> String {
    let ui = shell.ui();
    let mut main = String::new();
    if shown.drill {
        let _ = writeln!(
            main,
            "<div class=\"banner drill\" role=\"note\"><p>{}</p></div>",
            esc(ui.drill)
        );
    }
    if shown.version < total {
        let _ = writeln!(
            main,
            "<div class=\"banner old\" role=\"note\"><p>{} <a href=\"{}\">{}</a></p></div>",
            ui.older
                .replace("{n}", &shown.version.to_string())
                .replace("{m}", &total.to_string())
                .replace("{time}", &shell.time(shown.published_at)),
            shell.href(path, None),
            esc(ui.see_latest)
        );
    } else if total > 1 {
        let _ = writeln!(
            main,
            "<div class=\"banner\" role=\"note\"><p>{}</p></div>",
            ui.was_updated
                .replace("{m}", &total.to_string())
                .replace("{time}", &shell.time(first))
        );
    }
    main
}

/// The announcement itself in one language: its title, when it was published and updated,
/// its version, its text.
fn article(
    shell: &Shell,
    shown: &AnnouncementVersion,
    text: &LocaleText,
    first: DateTime<Utc>,
) -> String {
    let ui = shell.ui();
    format!(
        "<article lang=\"{lang}\">\n<h1>{title}</h1>\n<p class=\"meta\">{published} {first}{updated} · {version}</p>\n{body}\n</article>\n",
        lang = esc(&text.locale),
        title = esc(&text.title),
        published = esc(ui.published),
        first = shell.time(first),
        updated = if shown.published_at != first {
            format!(" · {} {}", esc(ui.updated), shell.time(shown.published_at))
        } else {
            String::new()
        },
        version = esc(&ui.version_n.replace("{n}", &shown.version.to_string())),
        body = printable(&text.html),
    )
}

/// Every version, newest first, each linked; the latest and the one shown marked.
fn history(
    shell: &Shell,
    shown: &AnnouncementVersion,
    versions: &[AnnouncementVersion],
    path: &str,
) -> String {
    let ui = shell.ui();
    let total = versions.len() as i64;
    let mut main = format!(
        "<section class=\"history\" aria-labelledby=\"history\">\n<h2 id=\"history\">{}</h2>\n<ul>\n",
        esc(ui.history)
    );
    for v in versions.iter().rev() {
        let label = esc(&ui.version_n.replace("{n}", &v.version.to_string()));
        let mut notes = Vec::new();
        if v.version == total {
            notes.push(ui.latest);
        }
        if v.version == shown.version {
            notes.push(ui.this_version);
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", esc(&notes.join(", ")))
        };
        let current = if v.version == shown.version {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = writeln!(
            main,
            "<li><a href=\"{href}\"{current}>{label}</a> · {time}{notes}</li>",
            href = shell.href(path, Some(v.version)),
            time = shell.time(v.published_at),
        );
    }
    main.push_str("</ul>\n</section>");
    main
}

/// The list of public announcements (newest version of each), newest first.
pub fn list_page(shell: &Shell, rows: &[PublishedVersionRow]) -> String {
    let ui = shell.ui();
    let mut main = format!("<h1>{}</h1>\n", esc(ui.list_title));
    if rows.is_empty() {
        let _ = writeln!(main, "<p>{}</p>", esc(ui.none));
    } else {
        main.push_str("<ul class=\"list\">\n");
        for r in rows {
            let locales: Vec<LocaleText> =
                serde_json::from_str(&r.version.locales).unwrap_or_default();
            let Some(text) = pick(&locales, &shell.locale) else {
                continue;
            };
            let updated = if r.version.version > 1 {
                format!(
                    " · {} ({})",
                    esc(ui.updated),
                    esc(&ui.version_n.replace("{n}", &r.version.version.to_string()))
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                main,
                "<li><a href=\"{href}\" lang=\"{lang}\">{title}</a><br><span class=\"meta\">{time}{updated}</span></li>",
                href = shell.href(&format!("/announcements/{}", r.slug), None),
                lang = esc(&text.locale),
                title = esc(&text.title),
                time = shell.time(from_micros(r.version.published_at)),
            );
        }
        main.push_str("</ul>");
    }
    let switch = shell.switch("/announcements", None);
    shell.document(ui.list_title, "", &switch, &main)
}

/// A person's own notice (`/n/<token>`): the approved words, with no name or contact on the
/// page, never indexed.
pub fn notice_page(shell: &Shell, title: &str, body_html: &str) -> String {
    let main = format!(
        "<article>\n<h1>{}</h1>\n{}\n</article>",
        esc(title),
        printable(body_html)
    );
    shell.document(
        title,
        "<meta name=\"robots\" content=\"noindex\">\n",
        "",
        &main,
    )
}

/// A 404 or 5xx page; without a shell (the store failed) in both languages.
pub fn error_page(status: StatusCode, shell: Option<&Shell>) -> String {
    let (zh_title, zh_text, en_title, en_text) = if status == StatusCode::NOT_FOUND {
        (
            ZH.not_found,
            ZH.not_found_text,
            EN.not_found,
            EN.not_found_text,
        )
    } else {
        (
            ZH.unavailable,
            ZH.unavailable_text,
            EN.unavailable,
            EN.unavailable_text,
        )
    };
    match shell {
        Some(s) => {
            let ui = s.ui();
            let (title, text) = if std::ptr::eq(ui, &ZH) {
                (zh_title, zh_text)
            } else {
                (en_title, en_text)
            };
            let main = format!("<h1>{}</h1>\n<p>{}</p>", esc(title), esc(text));
            s.document(
                title,
                "<meta name=\"robots\" content=\"noindex\">\n",
                "",
                &main,
            )
        }
        None => format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{en_title}</title><style>{CSS}</style></head>\n\
             <body><main id=\"main\"><h1>{en_title}</h1><p>{en_text}</p><p lang=\"zh-CN\">{zh_title}。{zh_text}</p></main></body>\n</html>\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_get_their_language_or_a_sibling() {
        let have = vec!["zh-CN".to_string(), "en".to_string()];
        assert_eq!(best_match("en-US", &have).map(String::as_str), Some("en"));
        assert_eq!(
            best_match("zh-TW", &have).map(String::as_str),
            Some("zh-CN")
        );
        assert_eq!(
            best_match("ZH-cn", &have).map(String::as_str),
            Some("zh-CN")
        );
        assert_eq!(best_match("fr", &have), None);
        assert_eq!(
            accepted("fr;q=0.9, en;q=0.8, zh-CN, de;q=0"),
            vec!["zh-CN", "fr", "en"]
        );
    }

    #[test]
    fn drops_what_xml_forbids() {
        assert_eq!(
            esc("a\u{7}b\u{0}c\u{1b}[31m\td\ne\u{FFFF}"),
            "abc[31m\td\ne"
        );
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
