//! The vocabulary of messages, which every layer speaks: the ways of reaching someone
//! ([`ChannelKind`]), why a message exists ([`Purpose`]), the rendered words ([`Content`]), one
//! delivery as a sender sees it ([`Outgoing`]), and recipients checked, normalised and masked.
//! Pure: `crate::channels` sends these, the store keeps them, render writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

string_enum! {
    /// The ways incidentd reaches someone.
    ChannelKind {
        Email => "email",
        Sms => "sms",
        Voice => "voice",
        /// The built-in in-site notice store (`GET /api/v1/inbox/{site_user_id}`).
        Inbox => "inbox",
        /// Pushes an in-site notice into the host site's own message centre.
        SiteWebhook => "site_webhook",
        /// A generic signed JSON webhook (chat tools, ticketing); the recipient names the target.
        Webhook => "webhook",
    } what = "a channel"
}

impl ChannelKind {
    /// Plain text channels render without HTML escaping.
    pub fn is_html(self) -> bool {
        matches!(self, ChannelKind::Email)
    }
}

string_enum! {
    /// Why a delivery exists. Drills are guarded at the lowest layer (see crate::dispatch).
    Purpose {
        /// Paging a responder.
        Page => "page",
        /// A notice to an affected person.
        Notice => "notice",
        /// A public announcement.
        Announcement => "announcement",
        /// A regulator report.
        Report => "report",
        /// A drill's own traffic.
        Drill => "drill",
        /// An operator's `send-test`.
        Test => "test",
    } what = "a purpose"
}

impl Purpose {
    pub fn parse(s: &str) -> Option<Purpose> {
        s.parse().ok()
    }
}

/// A rendered message, stored as JSON in the delivery row so a retry sends exactly the same
/// words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// E-mail subject (the template keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Plain text: the e-mail text part, the SMS body, the words a voice call speaks.
    #[serde(default)]
    pub text: String,
    /// The e-mail HTML part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The template this was rendered from (`page/incident_opened`): providers that accept
    /// only pre-approved templates are sent the code configured for it, with `params`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Flat values for template-only providers (Aliyun, Tencent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Structured payload for webhooks and the inbox (title, link, incident id…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// One delivery as a channel sees it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub delivery_id: i64,
    /// Unique per delivery; passed to providers that accept an idempotency key.
    pub idempotency_key: String,
    pub incident_id: Option<i64>,
    pub purpose: Purpose,
    pub channel: ChannelKind,
    pub recipient: String,
    pub locale: String,
    pub content: Content,
}

/// Check and normalise a recipient for `channel` before it is enqueued: an address that can
/// never work is refused now, with a reason a person can act on, not retried for days. Phone
/// numbers must be international (`+86…`); see [`validate_recipient_in`] for national ones.
pub fn validate_recipient(channel: ChannelKind, recipient: &str) -> Result<String, String> {
    validate_recipient_in(channel, recipient, None)
}

/// [`validate_recipient`], reading a phone number without a country code as one of `region`
/// (the organisation's `default_region`).
pub fn validate_recipient_in(
    channel: ChannelKind,
    recipient: &str,
    region: Option<Region>,
) -> Result<String, String> {
    let r = recipient.trim();
    match channel {
        ChannelKind::Email => validate_email(r),
        ChannelKind::Sms | ChannelKind::Voice => normalise_phone(r, region),
        ChannelKind::Inbox | ChannelKind::SiteWebhook => {
            if r.is_empty() || r.len() > 128 || r.chars().any(char::is_control) {
                Err(format!(
                    "`{}` is not a site user id: give 1–128 printable characters",
                    mask(channel, r)
                ))
            } else {
                Ok(r.to_string())
            }
        }
        ChannelKind::Webhook => {
            if r.is_empty()
                || !r
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                Err(format!(
                    "`{r}` is not a webhook name: use the `name` of a [[channels.webhooks]] entry"
                ))
            } else {
                Ok(r.to_string())
            }
        }
    }
}

/// A country whose numbering plan reads national numbers (ISO 3166 alpha-2, `CN`).
pub type Region = phonenumber::country::Id;

/// `code` (`CN`, `sg`) as a region whose numbering plan incidentd knows.
pub fn parse_region(code: &str) -> Result<Region, String> {
    let upper = code.trim().to_ascii_uppercase();
    match upper.parse::<Region>() {
        Ok(r) if phonenumber::metadata::DATABASE.by_id(r.as_ref()).is_some() => Ok(r),
        _ => Err(format!(
            "`{code}` is not a country code with a telephone numbering plan: give an ISO 3166 alpha-2 code such as CN, SG, HK or US"
        )),
    }
}

/// International phone numbers: `+`, the country code, then a number that country's plan
/// allows — the same check as [`normalise_phone`] without a default region.
pub fn validate_e164(number: &str) -> Result<String, String> {
    normalise_phone(number, None)
}

/// A phone number checked against its country's numbering plan (libphonenumber's, through the
/// `phonenumber` crate) and given back in E.164 (`+8613800138000`). A number without a country
/// code is read as one of `region`'s (`13800138000` with CN); spaces, dashes, brackets and
/// `00`-style prefixes people type are fine. The error says why, with the number masked.
pub fn normalise_phone(number: &str, region: Option<Region>) -> Result<String, String> {
    use phonenumber::ParseError;
    let typed: String = number
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '.'))
        .collect();
    let shown = mask_phone(&typed);
    let parsed = match phonenumber::parse(region, number) {
        Ok(n) => n,
        Err(ParseError::InvalidCountryCode) if region.is_none() && !number.contains('+') => {
            return Err(format!(
                "`{shown}` has no country code: write it with + and the country code, e.g. +8613800000000 (national numbers are read as the organisation's `default_region` only where one is configured)"
            ));
        }
        Err(ParseError::InvalidCountryCode) => {
            return Err(format!(
                "`{shown}` does not start with a known country code: write + and the country code, e.g. +8613800000000"
            ));
        }
        Err(ParseError::TooShortAfterIdd | ParseError::TooShortNsn) => {
            return Err(format!("`{shown}` is too short to be a phone number"));
        }
        Err(ParseError::TooLong) => {
            return Err(format!("`{shown}` is too long to be a phone number"));
        }
        Err(ParseError::NoNumber | ParseError::MalformedInteger(_)) => {
            return Err(format!(
                "`{shown}` is not a phone number: digits with + and the country code, e.g. +8613800000000"
            ));
        }
    };
    if parsed.extension().is_some() {
        return Err(format!(
            "`{shown}` has an extension, which SMS and calls cannot dial: give the number without it"
        ));
    }
    if !phonenumber::is_valid(&parsed) {
        return Err(format!("`{shown}` {}", why_invalid(&parsed)));
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Why a parsed number is not one its country's plan allows: too short or too long for every
/// kind of number there, or the right length but not a number the plan hands out.
fn why_invalid(n: &phonenumber::PhoneNumber) -> String {
    let code = n.code().value();
    let place = match n.country().id() {
        Some(id) => id.as_ref().to_string(),
        None => format!("country code +{code}"),
    };
    let digits = n.national().to_string().len();
    // The lengths of every kind of number the country's plan has.
    use phonenumber::Type as T;
    let kinds = [
        T::FixedLine,
        T::Mobile,
        T::TollFree,
        T::PremiumRate,
        T::SharedCost,
        T::PersonalNumber,
        T::Voip,
        T::Pager,
        T::Uan,
        T::Voicemail,
    ];
    let lengths: Vec<u16> = phonenumber::metadata::DATABASE
        .by_code(&code)
        .into_iter()
        .flatten()
        .flat_map(|m| {
            let d = m.descriptors();
            std::iter::once(d.general())
                .chain(kinds.iter().filter_map(|k| d.get(*k)))
                .flat_map(|desc| desc.possible_length().iter().copied())
                .collect::<Vec<u16>>()
        })
        .collect();
    match (lengths.iter().min(), lengths.iter().max()) {
        (Some(&min), _) if digits < usize::from(min) => format!("is too short for {place}"),
        (_, Some(&max)) if digits > usize::from(max) => format!("is too long for {place}"),
        _ => format!("is not a valid number for {place}"),
    }
}

fn validate_email(addr: &str) -> Result<String, String> {
    match addr.parse::<lettre::Address>() {
        Ok(a) => Ok(a.to_string()),
        Err(e) => Err(format!(
            "`{}` is not an e-mail address ({e}); write it as name@example.com",
            mask(ChannelKind::Email, addr)
        )),
    }
}

/// Contact details as logs and listings show them: enough to tell two apart, not enough to
/// contact anyone.
pub fn mask(channel: ChannelKind, recipient: &str) -> String {
    match channel {
        ChannelKind::Email => mask_email(recipient),
        ChannelKind::Sms | ChannelKind::Voice => mask_phone(recipient),
        ChannelKind::Inbox | ChannelKind::SiteWebhook => mask_middle(recipient),
        ChannelKind::Webhook => recipient.to_string(),
    }
}

pub fn mask_email(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => mask_middle(addr),
    }
}

/// `+8613812345678` → `+86138****5678`.
pub fn mask_phone(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let keep_start = (chars.len() - 7).min(6);
    let hidden = chars.len() - keep_start - 4;
    let mut s: String = chars[..keep_start].iter().collect();
    s.push_str(&"*".repeat(hidden));
    s.extend(&chars[chars.len() - 4..]);
    s
}

fn mask_middle(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    match chars.len() {
        0..=2 => "*".repeat(chars.len()),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

/// Where a subject's name goes in stored words (private-use characters no template writes).
pub const NAME_MARKER: &str = "\u{E000}name\u{E001}";

/// Where the token of a subject's own notice page goes in stored words.
pub const LINK_MARKER: &str = "\u{E002}link\u{E003}";

/// Replace `marker` in every part of stored words: `with` in text parts, `with_html` in the
/// HTML part.
fn fill(mut content: Content, marker: &str, with: &str, with_html: &str) -> Content {
    let put = |s: &mut String, with: &str| {
        if s.contains(marker) {
            *s = s.replace(marker, with);
        }
    };
    if let Some(s) = content.subject.as_mut() {
        put(s, with);
    }
    put(&mut content.text, with);
    if let Some(h) = content.html.as_mut() {
        put(h, with_html);
    }
    for v in content.params.values_mut() {
        put(v, with);
    }
    content
}

/// Put the subject's own page token into stored words (URL-safe: no escaping needed).
pub fn fill_link(content: Content, token: &str) -> Content {
    fill(content, LINK_MARKER, token, token)
}

/// Put the subject's name into stored words, escaped for HTML the way the template's own
/// values were.
pub fn fill_name(content: Content, name: &str) -> Content {
    fill(content, NAME_MARKER, name, &handlebars::html_escape(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn phone_numbers_follow_their_countrys_plan() {
        assert_eq!(
            validate_e164("+86 138-0000-0000").unwrap(),
            "+8613800000000"
        );
        assert_eq!(validate_e164("+14155550100").unwrap(), "+14155550100");
        assert_eq!(validate_e164("+65 8123 4567").unwrap(), "+6581234567");
        for (bad, why) in [
            ("13800000000", "has no country code"),
            ("+0123456789", "known country code"),
            ("+12", "not a phone number"),
            ("+86abc00000", "not a phone number"),
            ("+86 154 0000 0000", "is not a valid number for CN"),
            ("+86 138 0013 800", "is not a valid number for CN"),
            ("+86 1380", "is too short for CN"),
            ("+86 138 0013 8000 012", "is too long for CN"),
            ("+1234567890123456", "country code +1"),
            ("+86 138 0013 8000 ext. 12", "extension"),
        ] {
            let e = validate_e164(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(
                !e.contains(&format!("`{bad}`")),
                "the number is masked in the error: {e}"
            );
        }
    }

    #[test]
    fn national_numbers_are_read_in_the_default_region() {
        let cn = parse_region("cn").unwrap();
        assert_eq!(
            normalise_phone("13800138000", Some(cn)).unwrap(),
            "+8613800138000"
        );
        assert_eq!(
            normalise_phone("138 0013 8000", Some(cn)).unwrap(),
            "+8613800138000"
        );
        // An international number keeps its own country.
        assert_eq!(
            normalise_phone("+65 8123 4567", Some(cn)).unwrap(),
            "+6581234567"
        );
        let e = normalise_phone("15400000000", Some(cn)).unwrap_err();
        assert!(e.contains("not a valid number for CN"), "{e}");
        let e = normalise_phone("1380", Some(cn)).unwrap_err();
        assert!(e.contains("is too short for CN"), "{e}");
        assert_eq!(
            validate_recipient_in(ChannelKind::Sms, " 13800138000 ", Some(cn)).unwrap(),
            "+8613800138000"
        );
        assert!(parse_region("XX").unwrap_err().contains("ISO 3166"));
        assert!(parse_region("China").is_err());
    }

    #[test]
    fn email_addresses_are_checked() {
        assert_eq!(
            validate_recipient(ChannelKind::Email, " a.b@example.com ").unwrap(),
            "a.b@example.com"
        );
        let e = validate_recipient(ChannelKind::Email, "not-an-address").unwrap_err();
        assert!(e.contains("not an e-mail address"), "{e}");
    }

    #[test]
    fn contact_details_are_masked() {
        assert_eq!(mask_phone("+8613812345678"), "+86138****5678");
        assert_eq!(mask_phone("+14155550100"), "+1415***0100");
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask(ChannelKind::Inbox, "user-42"), "u*****2");
    }

    #[test]
    fn names_go_in_escaped_for_html_only() {
        let c = Content {
            subject: Some(format!("Hello {NAME_MARKER}")),
            text: format!("Dear {NAME_MARKER},"),
            html: Some(format!("<p>Dear {NAME_MARKER},</p>")),
            ..Default::default()
        };
        let out = fill_name(c, "O'Brien <b>");
        assert_eq!(out.text, "Dear O'Brien <b>,");
        assert_eq!(out.html.unwrap(), "<p>Dear O&#x27;Brien &lt;b&gt;,</p>");
        assert_eq!(out.subject.unwrap(), "Hello O'Brien <b>");
    }
}
