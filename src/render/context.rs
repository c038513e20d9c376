//! The data templates see. One shape for every template, so a template checked against the
//! sample renders against a real incident:
//!
//! ```text
//! org        name, contact, default_locale
//! incident   id, title, summary, category, severity, status, drill, origin, rule,
//!            first_seen_at, discovered_at, declared_at, aware_at, contained_at, closed_at,
//!            alert_count, facts_version,
//!            facts { affected_subjects, affected_subjects_estimated, data_types, jurisdictions,
//!                    by_jurisdiction, critical_infrastructure, mitigation_effective, mitigation_justification,
//!                    regulator_requires_notice, suspected_crime, economic_loss_cny, title,
//!                    cause, impact, measures_taken, measures_planned, advice_to_subjects,
//!                    remedies, contact }
//!            free text is one string: for notices and the announcement the public version in
//!            their language, for regulator reports the internal one in the pack's language
//!            (`null` when there is none in that language), elsewhere the internal text in
//!            the default locale (see crate::domain::text)
//! recipient  name, phone, email, site_user_id, locale
//! links      ack: the signed one-click acknowledgement link of a page (null elsewhere);
//!            console: the incident's page in the web console (pages; null elsewhere)
//! notice     url: where the full notice to individuals can be read (null elsewhere)
//! report     the regulator report being rendered (`regulator/*` only; see [`super::report`]);
//!            a sample in previews, null elsewhere
//! digest     `page/digest` only: the pages a coalesced digest holds (count, s1, top_severity,
//!            by_severity [{severity, count}], pages and first [{incident_id, severity, title,
//!            short_title, ack}], more, window; see crate::render::digest); a sample in previews
//! now        the time of rendering (RFC 3339)
//! ```
//!
//! `notice.url` is the link an SMS notice (which cannot hold the whole notice) sends people to;
//! the shipped `notice/*` SMS parts refuse to render without it (`{{required notice.url}}`).
//! Whoever renders a notice for a person fills it in: a notice campaign sets it to that
//! person's own notice page when there is one, else to the public announcement,
//! `{server.public_url}/announcements/{slug}`. Pages, the manual deliveries API and
//! [`incident_context`] leave it `null`; `render --sample` and the content lint use a sample
//! URL ([`SAMPLE_NOTICE_URL`]).
//!
//! Every key is always present: a fact nobody has filled in yet is `null` (a list is `[]`), so
//! strict mode catches a misspelt name while `{{#if incident.facts.cause}}` still works.

use serde_json::{Map, Value, json};

use crate::config::OrganisationConfig;

/// Every fact key, in the order the API documents them.
pub use crate::domain::facts::FACT_FIELDS as FACT_KEYS;

const LIST_FACTS: &[&str] = &["data_types", "jurisdictions"];

/// The full-notice link of previews (`render --sample`, `check`).
pub const SAMPLE_NOTICE_URL: &str =
    "https://incidents.example.com/announcements/2025-06-01-member-backup";

/// `notice` with the full notice's URL (`None`: not a notice, or not known yet).
pub fn notice_value(url: Option<&str>) -> Value {
    json!({ "url": url })
}

/// Incident fields copied from the API's answer; absent ones become `null`.
const INCIDENT_KEYS: &[&str] = &[
    "id",
    "title",
    "summary",
    "category",
    "severity",
    "status",
    "drill",
    "origin",
    "rule",
    "first_seen_at",
    "discovered_at",
    "declared_at",
    "aware_at",
    "assessed_notifiable_at",
    "handling_closed_at",
    "contained_at",
    "closed_at",
    "alert_count",
    "facts_version",
];

pub(crate) fn org_value(org: &OrganisationConfig) -> Value {
    json!({
        "name": org.name,
        "contact": org.contact,
        "default_locale": org.default_locale,
    })
}

/// The recipient used for previews: plausible, obviously not a real person.
pub fn sample_recipient() -> Value {
    json!({
        "name": "张三",
        "phone": "+8613812345678",
        "email": "zhangsan@example.com",
        "site_user_id": "u-10086",
        "locale": "zh-CN",
    })
}

/// The recipient of a real delivery: its address under the key its channel uses, the rest
/// `null` (so strict templates see every key).
pub fn recipient_value(
    name: Option<&str>,
    channel: crate::domain::message::ChannelKind,
    address: &str,
    locale: &str,
) -> Value {
    use crate::domain::message::ChannelKind as K;
    let at = |k: K| (channel == k).then(|| address.to_string());
    json!({
        "name": name,
        "phone": at(K::Sms).or(at(K::Voice)),
        "email": at(K::Email),
        "site_user_id": at(K::Inbox).or(at(K::SiteWebhook)),
        "locale": locale,
    })
}

/// A plausible personal-information leak, as `render --sample` and `check` use it. Times are
/// fixed so previews and tests are stable.
pub fn sample_context(org: &OrganisationConfig) -> Value {
    let incident = json!({
        "id": 42,
        "title": "会员数据库备份文件遭未授权访问",
        "summary": "对象存储中的一份会员数据库备份被设置为公开访问，访问日志显示有外部地址下载。",
        "category": "pi_leak",
        "severity": "S1",
        "status": "contained",
        "drill": false,
        "origin": "declaration",
        "rule": null,
        "first_seen_at": "2025-06-01T06:05:00Z",
        "discovered_at": "2025-06-01T06:05:00Z",
        "declared_at": "2025-06-01T06:20:00Z",
        "aware_at": "2025-06-01T06:30:00Z",
        "contained_at": "2025-06-01T07:10:00Z",
        "closed_at": null,
        "alert_count": 3,
        "facts_version": 4,
        "facts": {
            "affected_subjects": 1200,
            "affected_subjects_estimated": true,
            "data_types": ["name", "phone", "email"],
            "jurisdictions": ["CN"],
            "critical_infrastructure": false,
            "regulator_requires_notice": false,
            "cause": "一份会员数据库备份文件因存储权限配置错误被设置为公开访问，期间被外部地址下载。",
            "impact": "您的姓名、手机号码和电子邮箱地址可能已被他人获取，可能被用于冒充本公司的诈骗电话、短信或钓鱼邮件。",
            "measures_taken": "我们已于发现当日关闭该文件的公开访问、更换相关访问密钥，并已向监管部门报告。",
            "measures_planned": "我们正在全面排查存储权限配置，并将加强对备份文件的加密与访问审计。",
            "advice_to_subjects": "请警惕自称本公司工作人员的来电、短信和邮件；我们不会以任何理由向您索要密码或验证码；如有疑问请通过官方渠道核实。",
            "remedies": "我们为受影响用户免费提供 12 个月的账户异常登录提醒服务，并设立专线协助处理由此产生的问题。",
            "contact": null,
        },
    });
    json!({
        "org": org_value(org),
        "incident": normalise_incident(&incident),
        "recipient": sample_recipient(),
        "links": {
            "ack": "https://incidents.example.com/ack/NDIfY29udGFpbh9zZWN1cml0eS8xHzE3NDg3NjQ4MDA.q3Vb0xHk2d5Jm8Lp1Tz7Wg",
            "console": "https://incidents.example.com/console/incidents/42",
        },
        "notice": notice_value(Some(SAMPLE_NOTICE_URL)),
        "report": super::report::sample_report(),
        "drill": super::drill::sample_drill_value(),
        "digest": super::digest::sample_digest(),
        "now": "2025-06-01T08:00:00Z",
    })
}

/// The context for an incident as `GET /api/v1/incidents/{id}` returns it, with `recipient`
/// set to the preview recipient (a real send puts the subject or responder there).
pub fn incident_context(incident: &Value, org: &OrganisationConfig) -> Value {
    json!({
        "org": org_value(org),
        "incident": normalise_incident_in(incident, &org.default_locale),
        "recipient": sample_recipient(),
        "links": { "ack": null, "console": null },
        "notice": notice_value(None),
        "report": Value::Null,
        "now": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// Replace each free-text fact of a normalised incident (`incident.facts.cause`, …) by its text
/// for `locale` and `audience` (`null` when there is none in that language: `{{required …}}`
/// then refuses the document, naming the fact). See [`crate::domain::text`].
pub fn localise_facts(
    incident: &mut Value,
    facts: &crate::domain::facts::Facts,
    locale: &str,
    audience: crate::domain::facts::Audience,
    default_locale: &str,
) {
    let Some(out) = incident.get_mut("facts").and_then(Value::as_object_mut) else {
        return;
    };
    for k in crate::domain::facts::TEXT_FACTS {
        let v = facts
            .text(k)
            .and_then(|t| match audience {
                crate::domain::facts::Audience::Public => t.for_public(locale, default_locale),
                crate::domain::facts::Audience::Internal => t.get(locale, audience, default_locale),
            })
            .map_or(Value::Null, |s| Value::String(s.to_string()));
        out.insert((*k).into(), v);
    }
}

/// A free-text fact in the object form (`{"en": …}`, `{"internal": …}`) as one string for
/// documents that are not localised per audience: the internal text in `locale`, else in any
/// language.
fn flatten_text(v: &Value, locale: &str) -> Value {
    if !v.is_object() {
        return v.clone();
    }
    crate::domain::facts::Text::from_value(v)
        .ok()
        .and_then(|t| {
            t.get(locale, crate::domain::facts::Audience::Internal, locale)
                .or_else(|| t.any())
                .map(|s| Value::String(s.to_string()))
        })
        .unwrap_or(Value::Null)
}

/// [`incident_context`] for a public document (notice, announcement) in `locale`: free text is
/// the public version in that language ([`localise_facts`]).
pub fn public_context(incident: &Value, org: &OrganisationConfig, locale: &str) -> Value {
    let mut data = incident_context(incident, org);
    let facts: crate::domain::facts::Facts = incident
        .get("facts")
        .cloned()
        .and_then(|f| serde_json::from_value(f).ok())
        .unwrap_or_default();
    localise_facts(
        &mut data["incident"],
        &facts,
        locale,
        crate::domain::facts::Audience::Public,
        &org.default_locale,
    );
    data
}

/// Keep the documented keys, each present; facts padded with `null` / `[]`.
pub(crate) fn normalise_incident(incident: &Value) -> Value {
    normalise_incident_in(incident, "zh-CN")
}

/// [`normalise_incident`], free-text facts in the object form shown in `locale`.
pub(crate) fn normalise_incident_in(incident: &Value, locale: &str) -> Value {
    let mut out = Map::new();
    for k in INCIDENT_KEYS {
        out.insert(
            (*k).into(),
            incident.get(*k).cloned().unwrap_or(Value::Null),
        );
    }
    let given = incident.get("facts").and_then(Value::as_object);
    let mut facts = Map::new();
    for k in FACT_KEYS {
        let v = given.and_then(|f| f.get(*k)).cloned().unwrap_or_else(|| {
            if LIST_FACTS.contains(k) {
                Value::Array(vec![])
            } else {
                Value::Null
            }
        });
        let v = if crate::domain::facts::TEXT_FACTS.contains(k) {
            flatten_text(&v, locale)
        } else {
            v
        };
        facts.insert((*k).into(), v);
    }
    out.insert("facts".into(), Value::Object(facts));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facts::Facts;

    #[test]
    fn fact_keys_cover_every_fact() {
        // A struct literal without `..`: adding a fact stops this from compiling until the
        // key is listed.
        let all = Facts {
            affected_subjects: Some(1),
            affected_subjects_estimated: Some(true),
            data_types: vec!["phone".parse().unwrap()],
            jurisdictions: vec!["CN".parse().unwrap()],
            by_jurisdiction: [("CN".parse().unwrap(), Default::default())].into(),
            critical_infrastructure: Some(false),
            mitigation_effective: Some(false),
            mitigation_justification: Some("x".into()),
            regulator_requires_notice: Some(false),
            suspected_crime: Some(false),
            economic_loss_cny: Some(1),
            outage_whole_system: Some("1h".parse().unwrap()),
            outage_main_functions: Some("1h".parse().unwrap()),
            important_data: Some(false),
            threat: Some(crate::domain::facts::Threat::Serious),
            significant_harm: Some(false),
            technological_protection: Some(false),
            notification_hold: Some(crate::domain::facts::NotificationHold::Pdpc),
            risk: Some(crate::domain::facts::Risk::High),
            risk_reason: Some("x".into()),
            disproportionate_effort: Some(false),
            records_affected: Some(1),
            title: Some("x".into()),
            cause: Some("x".into()),
            impact: Some("x".into()),
            measures_taken: Some("x".into()),
            measures_planned: Some("x".into()),
            advice_to_subjects: Some("x".into()),
            remedies: Some("x".into()),
            contact: Some("x".into()),
        };
        let v = serde_json::to_value(all).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed = FACT_KEYS.to_vec();
        listed.sort_unstable();
        let mut keys = keys.clone();
        keys.sort_unstable();
        assert_eq!(keys, listed);
    }

    #[test]
    fn missing_facts_become_null_and_lists_empty() {
        let v = normalise_incident(&json!({"id": 7, "title": "t", "facts": {"cause": "c"}}));
        assert_eq!(v["id"], 7);
        assert_eq!(v["severity"], Value::Null);
        assert_eq!(v["facts"]["cause"], "c");
        assert_eq!(v["facts"]["remedies"], Value::Null);
        assert_eq!(v["facts"]["data_types"], json!([]));
        assert!(v.get("alerts").is_none(), "only documented keys are kept");
    }
}
