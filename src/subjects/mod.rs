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
    let subject_id = subject_id(&raw.subject_id)?;
    let name = name(raw.name.as_deref())?;
    let phone = given(&raw.phone)
        .map(|p| normalise_phone(p, rules.region).map_err(|e| format!("phone: {e}")))
        .transpose()?;
    let email = given(&raw.email)
        .map(|e| recipient(ChannelKind::Email, "email", e))
        .transpose()?;
    let site_user_id = given(&raw.site_user_id)
        .map(|u| recipient(ChannelKind::Inbox, "site_user_id", u))
        .transpose()?;
    let mut warnings = Vec::new();
    let locale = locale(given(&raw.locale), rules, &mut warnings);
    let has = |c: ChannelKind| match c {
        ChannelKind::Inbox => site_user_id.is_some(),
        ChannelKind::Sms | ChannelKind::Voice => phone.is_some(),
        ChannelKind::Email => email.is_some(),
        _ => false,
    };
    let channels = channels(given(&raw.channels), has, &mut warnings)?;
    let jurisdiction = given(&raw.jurisdiction)
        .map(|j| j.parse().map_err(|e| format!("jurisdiction: {e}")))
        .transpose()?;
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

/// A field's value trimmed, if it has one (blank counts as none).
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn subject_id(raw: &str) -> Result<String, String> {
    let subject_id = raw.trim().to_string();
    if subject_id.is_empty() {
        return Err("subject_id is empty: every row needs the person's id in your systems".into());
    }
    if subject_id.chars().count() > 128 || !printable(&subject_id) {
        return Err("subject_id must be 1–128 printable characters".into());
    }
    Ok(subject_id)
}

fn name(raw: Option<&str>) -> Result<Option<String>, String> {
    let name = raw.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if let Some(n) = &name
        && (n.chars().count() > 200 || !printable(n))
    {
        return Err("name must be at most 200 printable characters".into());
    }
    Ok(name)
}

/// A contact checked as a recipient of `kind`; the error names the field.
fn recipient(kind: ChannelKind, field: &str, value: &str) -> Result<String, String> {
    crate::domain::message::validate_recipient(kind, value).map_err(|m| format!("{field}: {m}"))
}

/// The locale the person is written to in: theirs, or the default when it is missing or
/// malformed; a warning when no notice is written in their language.
fn locale(given: Option<&str>, rules: &Rules<'_>, warnings: &mut Vec<String>) -> String {
    match given {
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
    }
}

/// The channels listed (or, when none are, every one the row `has` a contact for); a listed
/// channel without its contact is left out with a warning.
fn channels(
    given: Option<&str>,
    has: impl Fn(ChannelKind) -> bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<ChannelKind>, String> {
    let Some(list) = given else {
        return Ok(SUBJECT_CHANNELS.into_iter().filter(|c| has(*c)).collect());
    };
    let mut out = Vec::new();
    for name in list
        .split([';', '|', ' ', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let c = listed_channel(name)?;
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
    Ok(out)
}

/// A channel as a list may name it: any case, with the aliases people write.
fn listed_channel(name: &str) -> Result<ChannelKind, String> {
    match name.to_ascii_lowercase().as_str() {
        "inbox" | "in_site" | "site" => Ok(ChannelKind::Inbox),
        "sms" => Ok(ChannelKind::Sms),
        "voice" | "phone" => Ok(ChannelKind::Voice),
        "email" | "e-mail" => Ok(ChannelKind::Email),
        _ => Err(format!(
            "channels: `{name}` is not a channel; use inbox, sms, voice or email, separated by `;`"
        )),
    }
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
