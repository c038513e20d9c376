//! The announcements' Atom feed (RFC 4287): one entry per version, written by the
//! `atom_syndication` crate.

use super::*;
use crate::engine::announce::page_url;

/// Atom 1.0 (RFC 4287): one entry per version, in the organisation's default language.
pub fn atom_feed(live: &Live, rows: &[PublishedVersionRow], shell: &Shell) -> String {
    let base = live.public_url.trim_end_matches('/');
    let lang = &shell.locale;
    // The default language's feed keeps the plain addresses; another language's names itself.
    let other = !lang.eq_ignore_ascii_case(&live.default_locale);
    let q = if other {
        format!("?lang={lang}")
    } else {
        String::new()
    };
    let zh = lang.to_ascii_lowercase().starts_with("zh");
    let title = if zh {
        format!("{}公告", live.organisation.name)
    } else {
        format!("{}: announcements", live.organisation.name)
    };
    let updated = rows
        .iter()
        .map(|r| r.version.published_at)
        .max()
        .map_or_else(Utc::now, from_micros);
    let items = rows
        .iter()
        .filter_map(|r| {
            let locales: Vec<LocaleText> =
                serde_json::from_str(&r.version.locales).unwrap_or_default();
            let text = pick(&locales, lang)?;
            let n = r.version.version;
            let title = match (n, zh) {
                (1, _) => text.title.clone(),
                (_, true) => format!("{}（第 {n} 版更新）", text.title),
                (_, false) => format!("{} (update: version {n})", text.title),
            };
            let url = if other {
                format!("{}?lang={lang}&version={n}", page_url(base, &r.slug))
            } else {
                format!("{}?version={n}", page_url(base, &r.slug))
            };
            Some(FeedItem {
                url,
                title,
                at: shell.atom_time(from_micros(r.version.published_at)),
                locale: text.locale.clone(),
                html: text.html.clone(),
            })
        })
        .collect();
    atom_document(
        &FeedHead {
            lang,
            id: &format!("{base}/announcements{q}"),
            title: &title,
            self_href: &format!("{base}/announcements/feed.xml{q}"),
            html_href: &format!("{base}/announcements{q}"),
            author: &live.organisation.name,
            updated: shell.atom_time(updated),
        },
        items,
    )
}

/// The feed's own elements.
struct FeedHead<'a> {
    lang: &'a str,
    id: &'a str,
    title: &'a str,
    self_href: &'a str,
    html_href: &'a str,
    author: &'a str,
    updated: atom_syndication::FixedDateTime,
}

/// One version of an announcement, as an entry.
struct FeedItem {
    url: String,
    title: String,
    at: atom_syndication::FixedDateTime,
    locale: String,
    html: String,
}

/// The Atom document, written by the `atom_syndication` crate (which escapes markup); what
/// XML 1.0 cannot carry at all — control characters — is dropped from every value first.
fn atom_document(head: &FeedHead<'_>, items: Vec<FeedItem>) -> String {
    use atom_syndication::{Content, Entry, Feed, Link, Person, Text};
    let link = |rel: &str, mime: &str, href: &str, hreflang: Option<&str>| Link {
        href: xml_text(href),
        rel: rel.into(),
        mime_type: Some(mime.into()),
        hreflang: hreflang.map(xml_text),
        ..Default::default()
    };
    let entries = items
        .into_iter()
        .map(|i| Entry {
            id: xml_text(&i.url),
            title: Text::plain(xml_text(&i.title)),
            updated: i.at,
            published: Some(i.at),
            links: vec![link("alternate", "text/html", &i.url, Some(&i.locale))],
            content: Some(Content {
                value: Some(xml_text(&i.html)),
                content_type: Some("html".into()),
                lang: Some(xml_text(&i.locale)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let feed = Feed {
        id: xml_text(head.id),
        title: Text::plain(xml_text(head.title)),
        updated: head.updated,
        links: vec![
            link("self", "application/atom+xml", head.self_href, None),
            link("alternate", "text/html", head.html_href, None),
        ],
        authors: vec![Person {
            name: xml_text(head.author),
            ..Default::default()
        }],
        lang: Some(xml_text(head.lang)),
        entries,
        ..Default::default()
    };
    let config = atom_syndication::WriteConfig {
        write_document_declaration: true,
        indent_size: Some(1),
    };
    // Writing into memory has no I/O to fail, and every value written is a `String`.
    let xml = feed
        .write_with_config(Vec::new(), config)
        .unwrap_or_default();
    String::from_utf8(xml).unwrap_or_default()
}

/// `s` without the characters XML 1.0 forbids (see [`esc`]); the writer escapes the rest.
fn xml_text(s: &str) -> String {
    printable(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_stays_well_formed_whatever_the_text_holds() {
        let at = Utc::now().fixed_offset();
        let xml = atom_document(
            &FeedHead {
                lang: "zh-CN",
                id: "https://x.example/announcements",
                title: "Bell\u{7} & <Co>公告",
                self_href: "https://x.example/announcements/feed.xml",
                html_href: "https://x.example/announcements",
                author: "Bell\u{7} & <Co>",
                updated: at,
            },
            vec![FeedItem {
                url: "https://x.example/announcements/a?lang=en&version=2".into(),
                title: "Beep\u{7}\u{0}\u{1b}[31m \"quoted\"".into(),
                at,
                locale: "en".into(),
                html: "<p>a\u{7}b &amp; c\u{FFFF}</p>".into(),
            }],
        );
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
        let atom = "http://www.w3.org/2005/Atom";
        let text = |name: &str| {
            doc.descendants()
                .find(|n| {
                    n.has_tag_name((atom, name))
                        && n.parent().is_some_and(|p| p.has_tag_name((atom, "entry")))
                })
                .and_then(|n| n.text())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(text("title"), "Beep[31m \"quoted\"");
        assert_eq!(text("content"), "<p>ab &amp; c</p>");
        assert_eq!(
            text("id"),
            "https://x.example/announcements/a?lang=en&version=2"
        );
        // And the crate reads back what it wrote.
        let feed: atom_syndication::Feed = xml.parse().unwrap();
        assert_eq!(feed.title().as_str(), "Bell & <Co>公告");
        assert_eq!(feed.authors()[0].name(), "Bell & <Co>");
        assert_eq!(feed.lang(), Some("zh-CN"));
    }
}
