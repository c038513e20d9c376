//! Free-text facts per language and audience (`cause`, `impact`, `measures_taken`,
//! `measures_planned`, `advice_to_subjects`, `remedies`, `contact`, `title`).
//!
//! A text fact is written in one of three shapes (our JSON; anything else is refused):
//!
//! ```json
//! "cause": "数据库被导出"                                   // the organisation's default locale
//! "cause": {"zh-CN": "数据库被导出", "en": "The database was exported"}
//! "cause": {"internal": {"zh-CN": "…svc-backup 导出 crm.customers…", "en": "…"},
//!           "public":   {"zh-CN": "客户数据库被导出", "en": "Our customer database was exported"}}
//! ```
//!
//! `internal` is what the organisation and the regulators read (regulator reports use it);
//! `public` is what affected people and the public read (notices, the announcement). Without a
//! `public` version, the public read the internal text. `internal` and `public` are each a
//! plain string (the default locale) or a map of locale to text.
//!
//! A document in locale L takes the text for L (a map key equal to L, else one of the same
//! language: `en` for `en-SG`); a plain string counts for the default locale only. There is no
//! fallback to another language: a document whose language has no text is refused, naming the
//! fact and the locale.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Who reads a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The organisation and regulators: the internal version.
    Internal,
    /// Affected people and the public: the public version, else the internal one.
    Public,
}

/// One version of a text: a plain string (the default locale) or one text per locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    Plain(String),
    ByLocale(BTreeMap<String, String>),
}

/// A free-text fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub internal: Versions,
    pub public: Option<Versions>,
}

fn language(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Whether two locale tags name the same locale (`zh-CN` = `zh_cn`).
pub fn same_locale(a: &str, b: &str) -> bool {
    a.replace('_', "-")
        .eq_ignore_ascii_case(&b.replace('_', "-"))
}

fn non_blank(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

impl Versions {
    /// The text for `locale`: exact, else the same language; a plain string for the default
    /// locale (or its language) only.
    pub fn get(&self, locale: &str, default_locale: &str) -> Option<&str> {
        match self {
            Versions::Plain(s) => (same_locale(locale, default_locale)
                || language(locale) == language(default_locale))
            .then(|| non_blank(s))
            .flatten(),
            Versions::ByLocale(m) => m
                .iter()
                .find(|(k, _)| same_locale(k, locale))
                .or_else(|| m.iter().find(|(k, _)| language(k) == language(locale)))
                .and_then(|(_, v)| non_blank(v)),
        }
    }

    /// The locales it has text for (`default_locale` for a plain string).
    pub fn locales(&self, default_locale: &str) -> Vec<String> {
        match self {
            Versions::Plain(_) => vec![default_locale.to_string()],
            Versions::ByLocale(m) => m.keys().cloned().collect(),
        }
    }

    fn any(&self) -> Option<&str> {
        match self {
            Versions::Plain(s) => non_blank(s),
            Versions::ByLocale(m) => m.values().find_map(|v| non_blank(v)),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Versions::Plain(s) => Value::String(s.clone()),
            Versions::ByLocale(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        }
    }

    fn from_value(v: &Value, at: &str) -> Result<Versions, String> {
        match v {
            Value::String(s) => Ok(Versions::Plain(s.clone())),
            Value::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    if !locale_shape(k) {
                        return Err(format!(
                            "{at}`{k}` is not a locale tag such as zh-CN or en (a text is a string, \
                             {{\"<locale>\": \"…\"}}, or {{\"internal\": …, \"public\": …}})"
                        ));
                    }
                    let Value::String(s) = v else {
                        return Err(format!("{at}`{k}`: the text for a locale is a string"));
                    };
                    out.insert(k.clone(), s.clone());
                }
                if out.is_empty() {
                    return Err(format!("{at}no locale given: use null to clear the fact"));
                }
                Ok(Versions::ByLocale(out))
            }
            _ => Err(format!(
                "{at}a text is a string, {{\"<locale>\": \"…\"}}, or {{\"internal\": …, \"public\": …}}"
            )),
        }
    }
}

/// A locale tag in BCP 47's common shape: `zh`, `zh-CN`, `zh-Hant-TW`, `en`.
pub fn locale_shape(s: &str) -> bool {
    let mut parts = s.split(['-', '_']);
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

impl Text {
    /// The text `audience` reads in `locale`, or `None` when there is none in that language.
    pub fn get(&self, locale: &str, audience: Audience, default_locale: &str) -> Option<&str> {
        match (audience, &self.public) {
            (Audience::Public, Some(p)) => p.get(locale, default_locale),
            _ => self.internal.get(locale, default_locale),
        }
    }

    /// The text of a public document (notice, announcement) in `locale`: the public version,
    /// else the internal one — never another language's. A plain string is the default
    /// locale's text, as everywhere: a document in another language without its own text is
    /// refused, naming the fact and the language.
    pub fn for_public(&self, locale: &str, default_locale: &str) -> Option<&str> {
        self.get(locale, Audience::Public, default_locale)
    }

    /// Some text, in whatever language (whether the fact is known at all).
    pub fn any(&self) -> Option<&str> {
        self.internal
            .any()
            .or_else(|| self.public.as_ref().and_then(Versions::any))
    }

    /// Every locale named, internal and public.
    pub fn locales(&self, default_locale: &str) -> Vec<String> {
        let mut out = self.internal.locales(default_locale);
        if let Some(p) = &self.public {
            out.extend(p.locales(default_locale));
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether a public version is given.
    pub fn has_public(&self) -> bool {
        self.public.is_some()
    }

    /// Some text a public document would show, in whatever language: the public version, or
    /// the internal one when there is no public version.
    pub fn public_any(&self) -> Option<&str> {
        match &self.public {
            Some(p) => p.any(),
            None => self.internal.any(),
        }
    }

    /// The same text for the organisation and regulators only: its public version is empty, so
    /// notices and the announcement show nothing of it (and refuse, naming the fact, where they
    /// require it) until a person writes one. Text from alert senders is kept this way.
    pub fn internal_only(self) -> Text {
        Text {
            internal: self.internal,
            public: Some(Versions::Plain(String::new())),
        }
    }
}

/// The first control character in `s` other than a line break or a tab, if any.
pub fn control_character(s: &str) -> Option<char> {
    s.chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

impl Text {
    /// Every string of the text, each with where it is (`.public.en`; empty for a plain one).
    pub fn parts(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        let versions = std::iter::once(("", &self.internal))
            .chain(self.public.as_ref().map(|p| (".public", p)));
        let internal_at = if self.public.is_some() {
            ".internal"
        } else {
            ""
        };
        for (at, v) in versions {
            let at = if at.is_empty() { internal_at } else { at };
            match v {
                Versions::Plain(s) => out.push((at.to_string(), s.as_str())),
                Versions::ByLocale(m) => {
                    out.extend(m.iter().map(|(k, s)| (format!("{at}.{k}"), s.as_str())))
                }
            }
        }
        out
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text {
            internal: Versions::Plain(s.to_string()),
            public: None,
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text {
            internal: Versions::Plain(s),
            public: None,
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.any().unwrap_or(""))
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.public {
            None => self.internal.to_value().serialize(s),
            Some(p) => {
                serde_json::json!({"internal": self.internal.to_value(), "public": p.to_value()})
                    .serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Text::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl Text {
    pub fn from_value(v: &Value) -> Result<Text, String> {
        if let Value::Object(m) = v
            && (m.contains_key("internal") || m.contains_key("public"))
        {
            if let Some(k) = m.keys().find(|k| *k != "internal" && *k != "public") {
                return Err(format!(
                    "`{k}`: beside `internal` and `public` a text has no other keys; give locales inside them"
                ));
            }
            let internal = m.get("internal").ok_or_else(|| {
                "`public` without `internal`: give the internal text too (what regulators read)"
                    .to_string()
            })?;
            return Ok(Text {
                internal: Versions::from_value(internal, "internal: ")?,
                public: match m.get("public") {
                    None | Some(Value::Null) => None,
                    Some(p) => Some(Versions::from_value(p, "public: ")?),
                },
            });
        }
        Ok(Text {
            internal: Versions::from_value(v, "")?,
            public: None,
        })
    }
}

impl utoipa::PartialSchema for Text {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .description(Some(
                "A string (the default locale), {\"<locale>\": text}, or {\"internal\": …, \"public\": …}",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Text {}

/// What in a text looks internal — IP addresses, host names, account names, table names — as
/// `` `198.51.100.7` (an IP address) ``. Public text (notices, the announcement) should not
/// carry these; the notice gate warns (see `crate::engine::notice_gate`). E-mail addresses and
/// web links (a contact, the organisation's site) are public by nature and not reported.
pub fn looks_internal(text: &str) -> Vec<String> {
    const TLDS: &[&str] = &[
        "com", "net", "org", "cn", "sg", "io", "local", "internal", "corp", "lan", "intra",
        "cloud", "int", "priv", "home",
    ];
    let mut out = Vec::new();
    let keep = |c: char| c.is_ascii_alphanumeric() || "._-:@/".contains(c);
    for raw in text.split(|c: char| !keep(c)) {
        let t = raw.trim_matches(|c: char| ".:-/".contains(c));
        if t.is_empty() || t.contains('@') || t.contains("://") {
            continue;
        }
        let lower = t.to_ascii_lowercase();
        let labels: Vec<&str> = lower.split('.').collect();
        let ipv4 = labels.len() == 4
            && labels
                .iter()
                .all(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()));
        let ipv6 = lower.matches(':').count() >= 2
            && lower
                .split(':')
                .all(|g| g.len() <= 4 && g.bytes().all(|b| b.is_ascii_hexdigit()));
        let kind = if ipv4 || ipv6 {
            Some("an IP address")
        } else if labels.len() >= 2
            && labels
                .iter()
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            && labels
                .last()
                .is_some_and(|l| l.bytes().all(|b| b.is_ascii_alphabetic()))
            && (labels.len() >= 3 || TLDS.contains(labels.last().unwrap_or(&"")))
        {
            Some("a host name")
        } else if labels.len() == 2
            && labels.iter().all(|l| {
                l.len() >= 2
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !l.as_bytes()[0].is_ascii_digit()
            })
            && t == lower
        {
            Some("a table name")
        } else if !lower.contains('.')
            && (["svc-", "svc_", "srv-", "srv_", "sa-", "sa_"]
                .iter()
                .any(|p| lower.starts_with(p) && lower.len() > p.len())
                || ["-svc", "_svc", "-bot", "_bot", "-sa", "_sa"]
                    .iter()
                    .any(|p| lower.ends_with(p) && lower.len() > p.len()))
        {
            Some("an account name")
        } else {
            None
        };
        if let Some(k) = kind {
            let item = format!("`{t}` ({k})");
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn text(v: Value) -> Text {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_plain_string_is_the_default_locale_for_everyone() {
        let t = text(json!("数据库被导出"));
        assert_eq!(
            t.get("zh-CN", Audience::Public, "zh-CN"),
            Some("数据库被导出")
        );
        assert_eq!(t.get("en", Audience::Internal, "zh-CN"), None);
        assert_eq!(serde_json::to_value(&t).unwrap(), json!("数据库被导出"));
    }

    #[test]
    fn locales_and_versions() {
        let t = text(json!({
            "internal": {"zh-CN": "svc-backup 导出 crm.customers", "en": "svc-backup exported crm.customers"},
            "public": {"zh-CN": "客户数据库被导出", "en-SG": "Our customer database was exported"},
        }));
        assert_eq!(
            t.get("en", Audience::Internal, "zh-CN"),
            Some("svc-backup exported crm.customers")
        );
        assert_eq!(
            t.get("en", Audience::Public, "zh-CN"),
            Some("Our customer database was exported")
        );
        assert_eq!(t.get("fr", Audience::Public, "zh-CN"), None);
        // Round trip.
        assert_eq!(text(serde_json::to_value(&t).unwrap()), t);
        // Without a public version the public read the internal one.
        let t = text(json!({"zh-CN": "甲", "en": "A"}));
        assert_eq!(t.get("en", Audience::Public, "zh-CN"), Some("A"));
    }

    #[test]
    fn internal_only_text_is_public_nowhere_and_round_trips() {
        let t =
            text(json!({"zh-CN": "svc-backup 导出", "en": "svc-backup exported"})).internal_only();
        for l in ["zh-CN", "en", "fr"] {
            assert_eq!(t.for_public(l, "zh-CN"), None, "{l}");
        }
        assert_eq!(
            t.get("en", Audience::Internal, "zh-CN"),
            Some("svc-backup exported")
        );
        assert_eq!(
            (t.public_any(), t.any()),
            (None, Some("svc-backup exported"))
        );
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            json!({"internal": {"en": "svc-backup exported", "zh-CN": "svc-backup 导出"}, "public": ""})
        );
        assert_eq!(text(v), t);
    }

    #[test]
    fn internal_detail_is_recognised_and_public_detail_is_not() {
        let found = looks_internal(
            "服务账号svc-backup将crm.customers表导出至198.51.100.7（db01.prod.example.com，fe80::1:2:3）",
        );
        assert_eq!(
            found,
            [
                "`svc-backup` (an account name)",
                "`crm.customers` (a table name)",
                "`198.51.100.7` (an IP address)",
                "`db01.prod.example.com` (a host name)",
                "`fe80::1:2:3` (an IP address)",
            ]
        );
        for fine in [
            "Write to privacy@example.com or see https://www.example.com/help.",
            "We closed public access, e.g. the bucket, on 1.5 days' notice; 2,300,000 people.",
            "客户数据库被导出。",
        ] {
            assert_eq!(looks_internal(fine), Vec::<String>::new(), "{fine}");
        }
    }

    #[test]
    fn bad_shapes_say_why() {
        for (v, needle) in [
            (json!({"english": "x"}), "not a locale tag"),
            (json!({"public": "x"}), "without `internal`"),
            (json!({"internal": "x", "en": "y"}), "no other keys"),
            (json!(3), "a text is a string"),
            (json!({"en": 3}), "is a string"),
        ] {
            let e = serde_json::from_value::<Text>(v).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
