//! Affected people ("subjects"): the lists that name them, checked row by row, and the
//! protection of their contact data.
//!
//! A list is CSV (with a header) or NDJSON with the fields `subject_id, name, phone, email,
//! site_user_id, locale, channels, jurisdiction`. [`validate`] turns one raw row into a [`ValidSubject`] or a
//! reason; problems that do not stop a person being told (an unknown locale, a channel named
//! without its contact) are warnings, and the row is kept.

pub use crate::domain::keyring as crypto;
pub mod parse;

use crate::domain::message::{ChannelKind, Region, mask_email, mask_phone, normalise_phone};
use crate::store::SealedSubject;
use crypto::{Field, KeyRing};
use parse::RawSubject;

/// The channels a subject may be told on, in the order listings show them.
pub const SUBJECT_CHANNELS: [ChannelKind; 4] = [
    ChannelKind::Inbox,
    ChannelKind::Sms,
    ChannelKind::Voice,
    ChannelKind::Email,
];

/// A row that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSubject {
    pub subject_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub site_user_id: Option<String>,
    pub locale: String,
    /// Channels the subject can be reached on (listed, or every one with a contact).
    pub channels: Vec<ChannelKind>,
    /// The jurisdiction the person is affected in, when the list says.
    pub jurisdiction: Option<crate::domain::facts::Jurisdiction>,
    pub warnings: Vec<String>,
}

/// What validation needs to know.
pub struct Rules<'a> {
    /// Locales the notice templates have (a subject's locale outside them falls back).
    pub locales: &'a [String],
    pub default_locale: &'a str,
    /// Where a phone number without a country code is read (`[organisation] default_region`).
    pub region: Option<Region>,
}

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// A locale tag in BCP 47's common shape: `zh`, `zh-CN`, `zh-Hant-TW`, `en`.
fn locale_shape(s: &str) -> bool {
    let mut parts = s.split(['-', '_']);
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Check one row. `Err` is the reason it is rejected.
pub fn validate(raw: RawSubject, rules: &Rules<'_>) -> Result<ValidSubject, String> {
    let subject_id = raw.subject_id.trim().to_string();
    if subject_id.is_empty() {
        return Err("subject_id is empty: every row needs the person's id in your systems".into());
    }
    if subject_id.chars().count() > 128 || !printable(&subject_id) {
        return Err("subject_id must be 1–128 printable characters".into());
    }
    let mut warnings = Vec::new();
    let name = raw
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if let Some(n) = &name
        && (n.chars().count() > 200 || !printable(n))
    {
        return Err("name must be at most 200 printable characters".into());
    }
    let phone = match raw
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => Some(normalise_phone(p, rules.region).map_err(|e| format!("phone: {e}"))?),
        None => None,
    };
    let email = match raw
        .email
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(e) => Some(
            crate::domain::message::validate_recipient(ChannelKind::Email, e)
                .map_err(|m| format!("email: {m}"))?,
        ),
        None => None,
    };
    let site_user_id = match raw
        .site_user_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(u) => Some(
            crate::domain::message::validate_recipient(ChannelKind::Inbox, u)
                .map_err(|m| format!("site_user_id: {m}"))?,
        ),
        None => None,
    };
    let locale = match raw
        .locale
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        None => rules.default_locale.to_string(),
        Some(l) if !locale_shape(l) => {
            warnings.push(format!(
                "locale `{l}` is not a language tag like zh-CN or en; using {}",
                rules.default_locale
            ));
            rules.default_locale.to_string()
        }
        Some(l) => {
            let primary = |t: &str| {
                t.split(['-', '_'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            };
            let used = crate::render::locale_chain(l)
                .into_iter()
                .find(|c| rules.locales.iter().any(|k| k.eq_ignore_ascii_case(c)));
            if used.as_deref().is_none_or(|u| primary(u) != primary(l)) {
                warnings.push(format!(
                    "no notice is written in `{l}`; this person gets the {} one",
                    used.as_deref().unwrap_or(crate::render::LAST_RESORT_LOCALE)
                ));
            }
            l.replace('_', "-")
        }
    };
    let has = |c: ChannelKind| match c {
        ChannelKind::Inbox => site_user_id.is_some(),
        ChannelKind::Sms | ChannelKind::Voice => phone.is_some(),
        ChannelKind::Email => email.is_some(),
        _ => false,
    };
    let channels = match raw
        .channels
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => SUBJECT_CHANNELS.into_iter().filter(|c| has(*c)).collect(),
        Some(list) => {
            let mut out = Vec::new();
            for name in list
                .split([';', '|', ' ', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let c = match name.to_ascii_lowercase().as_str() {
                    "inbox" | "in_site" | "site" => ChannelKind::Inbox,
                    "sms" => ChannelKind::Sms,
                    "voice" | "phone" => ChannelKind::Voice,
                    "email" | "e-mail" => ChannelKind::Email,
                    _ => {
                        return Err(format!(
                            "channels: `{name}` is not a channel; use inbox, sms, voice or email, separated by `;`"
                        ));
                    }
                };
                if !has(c) {
                    warnings.push(format!(
                        "channel {c} is listed but the row has no {} for it; left out",
                        match c {
                            ChannelKind::Inbox => "site_user_id",
                            ChannelKind::Email => "email",
                            _ => "phone",
                        }
                    ));
                } else if !out.contains(&c) {
                    out.push(c);
                }
            }
            out
        }
    };
    let jurisdiction = match raw
        .jurisdiction
        .as_deref()
        .map(str::trim)
        .filter(|j| !j.is_empty())
    {
        Some(j) => Some(j.parse().map_err(|e| format!("jurisdiction: {e}"))?),
        None => None,
    };
    Ok(ValidSubject {
        subject_id,
        name,
        phone,
        email,
        site_user_id,
        locale,
        channels,
        jurisdiction,
        warnings,
    })
}

/// `inbox;sms` as stored.
pub fn channels_text(cs: &[ChannelKind]) -> String {
    cs.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(";")
}

/// The stored `inbox;sms` back as channels (unknown names are skipped).
pub fn parse_channels(s: &str) -> Vec<ChannelKind> {
    s.split(';').filter_map(|c| c.parse().ok()).collect()
}

/// A name as listings show it: the first character, then `*`.
pub fn mask_name(name: &str) -> String {
    let mut cs = name.chars();
    let first: String = cs.next().into_iter().collect();
    let rest = cs.count().clamp(1, 3);
    format!("{first}{}", "*".repeat(rest))
}

/// Encrypt a subject's contacts for the store.
pub fn seal(keys: &KeyRing, incident_id: i64, s: &ValidSubject) -> SealedSubject {
    let id = s.subject_id.as_str();
    SealedSubject {
        subject_id: s.subject_id.clone(),
        name_enc: s
            .name
            .as_deref()
            .map(|v| keys.seal(incident_id, id, Field::Name, v)),
        phone_enc: s
            .phone
            .as_deref()
            .map(|v| keys.seal(incident_id, id, Field::Phone, v)),
        email_enc: s
            .email
            .as_deref()
            .map(|v| keys.seal(incident_id, id, Field::Email, v)),
        name_mask: s.name.as_deref().map(mask_name),
        phone_mask: s.phone.as_deref().map(mask_phone),
        email_mask: s.email.as_deref().map(mask_email),
        site_user_id: s.site_user_id.clone(),
        locale: s.locale.clone(),
        channels: channels_text(&s.channels),
        jurisdiction: s.jurisdiction.as_ref().map(|j| j.as_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> (Vec<String>, &'static str) {
        (vec!["zh-CN".into(), "en".into()], "zh-CN")
    }

    fn check(raw: RawSubject) -> Result<ValidSubject, String> {
        check_in(raw, crate::domain::message::parse_region("CN").ok())
    }

    fn check_in(raw: RawSubject, region: Option<Region>) -> Result<ValidSubject, String> {
        let (locales, d) = rules();
        validate(
            raw,
            &Rules {
                locales: &locales,
                default_locale: d,
                region,
            },
        )
    }

    fn raw(id: &str) -> RawSubject {
        RawSubject {
            subject_id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn channels_default_to_every_contact_given() {
        let s = check(RawSubject {
            phone: Some("+86 138 0000 0000".into()),
            email: Some("li@example.com".into()),
            ..raw("u1")
        })
        .unwrap();
        assert_eq!(s.phone.as_deref(), Some("+8613800000000"));
        assert_eq!(
            s.channels,
            [ChannelKind::Sms, ChannelKind::Voice, ChannelKind::Email]
        );
        assert_eq!(s.locale, "zh-CN");
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn bad_rows_say_why() {
        for (r, needle) in [
            (raw(" "), "subject_id is empty"),
            (
                RawSubject {
                    phone: Some("15400000000".into()),
                    ..raw("u")
                },
                "phone: `1540***0000` is not a valid number for CN",
            ),
            (
                RawSubject {
                    phone: Some("+86 1380".into()),
                    ..raw("u")
                },
                "is too short for CN",
            ),
            (
                RawSubject {
                    email: Some("not-an-address".into()),
                    ..raw("u")
                },
                "email:",
            ),
            (
                RawSubject {
                    channels: Some("fax".into()),
                    ..raw("u")
                },
                "`fax` is not a channel",
            ),
        ] {
            let e = check(r).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn national_numbers_are_read_in_the_organisations_region() {
        let phone = |p: &str| RawSubject {
            phone: Some(p.into()),
            ..raw("u")
        };
        let s = check(phone("138 0013 8000")).unwrap();
        assert_eq!(s.phone.as_deref(), Some("+8613800138000"));
        // Without a default region a national number cannot be placed.
        let e = check_in(phone("13800138000"), None).unwrap_err();
        assert!(e.contains("no country code"), "{e}");
        assert_eq!(
            check_in(phone("+8613800138000"), None)
                .unwrap()
                .phone
                .as_deref(),
            Some("+8613800138000")
        );
    }

    #[test]
    fn soft_problems_are_warnings_and_the_row_is_kept() {
        let s = check(RawSubject {
            locale: Some("fr-FR".into()),
            channels: Some("sms;email".into()),
            email: Some("a@example.com".into()),
            ..raw("u")
        })
        .unwrap();
        assert_eq!(s.channels, [ChannelKind::Email]);
        assert_eq!(s.locale, "fr-FR");
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("fr-FR"));
        assert!(s.warnings[1].contains("no phone"));
        let s = check(RawSubject {
            locale: Some("???".into()),
            ..raw("u")
        })
        .unwrap();
        assert_eq!(s.locale, "zh-CN");
    }

    #[test]
    fn sealed_rows_hold_no_plaintext() {
        let keys = KeyRing::parse(&KeyRing::generate("t")).unwrap();
        let s = check(RawSubject {
            name: Some("张三丰".into()),
            phone: Some("+8613812345678".into()),
            email: Some("zhang@example.com".into()),
            ..raw("u9")
        })
        .unwrap();
        let sealed = seal(&keys, 3, &s);
        let all = format!("{sealed:?}");
        for secret in ["张三丰", "13812345678", "zhang@example.com"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
        assert_eq!(sealed.name_mask.as_deref(), Some("张**"));
        assert_eq!(
            keys.open(3, "u9", Field::Phone, sealed.phone_enc.as_deref().unwrap())
                .unwrap(),
            "+8613812345678"
        );
    }
}
