//! The helpers templates may use besides handlebars' built-ins:
//!
//! * `{{datetime incident.discovered_at}}` — a time (RFC 3339 text or epoch seconds) in the
//!   configured time zone (`[render] time_zone`); an optional second argument is a strftime
//!   format: `{{datetime incident.discovered_at "%Y年%m月%d日 %H:%M"}}`.
//! * `{{mask recipient.phone}}` — a phone number or e-mail address masked as logs show it
//!   (`+86138****5678`, `z***@example.com`); `"phone"` or `"email"` as a second argument forces
//!   the kind.
//! * `{{required incident.facts.remedies}}` — the value, or a render error naming the empty
//!   field: for words a message must not go out without.
//! * `{{label incident.category "zh-CN"}}` — a code (category, status, data type) in words of
//!   the locale; a list of codes is joined (`姓名、手机号码` / `name, phone number`).
//! * `if` and `unless` are replaced by strict versions: in strict mode handlebars lets
//!   `{{#if incident.facts.casue}}` pass silently; these refuse a path that is not in the data
//!   (a present `null` is fine and false).
//!
//! Helpers return values (`call_inner`), so the HTML registry escapes what they produce.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonTruthy, Output, PathAndJson,
    RenderContext, RenderError, RenderErrorReason, Renderable, ScopedJson,
};
use serde_json::Value;

/// Register every helper on `reg`.
pub(crate) fn register(reg: &mut Handlebars<'static>, tz: Tz) {
    reg.register_helper("datetime", Box::new(DateTimeHelper { tz }));
    reg.register_helper("mask", Box::new(MaskHelper));
    reg.register_helper("required", Box::new(RequiredHelper));
    reg.register_helper("label", Box::new(LabelHelper));
    reg.register_helper("if", Box::new(StrictIf { positive: true }));
    reg.register_helper("unless", Box::new(StrictIf { positive: false }));
}

/// The names templates can call, for error messages.
pub(crate) const NAMES: &str = "datetime, mask, required, label, and the built-ins if, unless, \
each, with, lookup, eq, ne, gt, gte, lt, lte, and, or, not, len";

/// The default `datetime` format: unambiguous in every language.
pub const DEFAULT_DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M (UTC%:z)";

fn fail(msg: String) -> RenderError {
    RenderErrorReason::Other(msg).into()
}

/// Parameter `idx`, refusing one that is absent from the data.
fn param<'a, 'rc>(
    h: &'a Helper<'rc>,
    idx: usize,
    helper: &'static str,
) -> Result<&'a PathAndJson<'rc>, RenderError> {
    let p = h
        .param(idx)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, idx))?;
    if p.is_value_missing() {
        return Err(RenderError::strict_error(p.relative_path()));
    }
    Ok(p)
}

fn path_of(p: &PathAndJson<'_>) -> String {
    p.relative_path()
        .cloned()
        .unwrap_or_else(|| p.value().to_string())
}

fn derived<'rc>(s: String) -> Result<ScopedJson<'rc>, RenderError> {
    Ok(ScopedJson::Derived(Value::String(s)))
}

/// A time from JSON: RFC 3339 text or epoch seconds.
pub(crate) fn parse_time(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("is `{s}`, not an RFC 3339 time ({e})")),
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .ok_or_else(|| format!("is {n}, not a time in epoch seconds")),
        Value::Null => Err("is empty (null); wrap it in {{#if …}} if it may be".to_string()),
        other => Err(format!("is {other}, not a time")),
    }
}

/// Format `t` in `tz`; a bad format is an error, never a panic.
pub(crate) fn format_time(t: DateTime<Utc>, tz: Tz, format: &str) -> Result<String, String> {
    use chrono::format::{Item, StrftimeItems};
    use std::fmt::Write;
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!("`{format}` is not a valid strftime format"));
    }
    let mut s = String::new();
    write!(
        s,
        "{}",
        t.with_timezone(&tz).format_with_items(items.iter())
    )
    .map_err(|_| format!("`{format}` cannot format this time"))?;
    Ok(s)
}

struct DateTimeHelper {
    tz: Tz,
}

impl HelperDef for DateTimeHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let p = param(h, 0, "datetime")?;
        let t =
            parse_time(p.value()).map_err(|m| fail(format!("datetime: `{}` {m}", path_of(p))))?;
        let format = match h.param(1) {
            None => DEFAULT_DATETIME_FORMAT,
            Some(f) => f.value().as_str().ok_or_else(|| {
                fail(
                    "datetime: the second argument is a format in quotes, e.g. \"%Y-%m-%d %H:%M\""
                        .into(),
                )
            })?,
        };
        derived(format_time(t, self.tz, format).map_err(|m| fail(format!("datetime: {m}")))?)
    }
}

struct MaskHelper;

impl HelperDef for MaskHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let p = param(h, 0, "mask")?;
        let value = p.value().as_str().ok_or_else(|| {
            fail(format!(
                "mask: `{}` is {}, not a phone number or e-mail address",
                path_of(p),
                p.value()
            ))
        })?;
        let kind = h.param(1).and_then(|k| k.value().as_str());
        let masked = match kind {
            Some("email") => crate::domain::message::mask_email(value),
            Some("phone") => crate::domain::message::mask_phone(value),
            None if value.contains('@') => crate::domain::message::mask_email(value),
            None => crate::domain::message::mask_phone(value),
            Some(other) => {
                return Err(fail(format!(
                    "mask: the kind is \"phone\" or \"email\", not \"{other}\""
                )));
            }
        };
        derived(masked)
    }
}

struct RequiredHelper;

/// What `required` says after the backticked path of an empty value; callers that want every
/// missing value at once (the announcement) look for it.
pub(crate) const REQUIRED_EMPTY: &str = "is empty and this message cannot go out without it";

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

impl HelperDef for RequiredHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let p = param(h, 0, "required")?;
        if is_blank(p.value()) {
            let path = path_of(p);
            // Free-text facts are per language: say which language this message needs.
            let locale = ctx.data().get("locale").and_then(Value::as_str);
            let hint = path
                .strip_prefix("incident.facts.")
                .map(|k| match locale {
                    Some(l) if crate::domain::facts::TEXT_FACTS.contains(&k) => format!(
                        " in {l} (incidentd facts <id> --file f.json with {{\"{k}\": {{\"{l}\": \"…\"}}}}; --set {k}=… gives the default language's)"
                    ),
                    _ => format!(" (incidentd facts <id> --set {k}=…)"),
                })
                .unwrap_or_default();
            return Err(fail(format!("`{path}` {REQUIRED_EMPTY}: fill it in{hint}")));
        }
        Ok(ScopedJson::Derived(p.value().clone()))
    }
}

struct LabelHelper;

impl HelperDef for LabelHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let p = param(h, 0, "label")?;
        let locale = h.param(1).and_then(|l| l.value().as_str()).ok_or_else(|| {
            fail("label: give the locale as the second argument, e.g. {{label incident.category \"zh-CN\"}}".into())
        })?;
        let zh = locale.to_ascii_lowercase().starts_with("zh");
        let one = |v: &Value| -> String {
            match v.as_str() {
                Some(code) => label(code, zh).map_or_else(|| code.to_string(), str::to_string),
                None => v.to_string(),
            }
        };
        let words = match p.value() {
            Value::Array(items) => {
                items
                    .iter()
                    .map(one)
                    .collect::<Vec<_>>()
                    .join(if zh { "、" } else { ", " })
            }
            Value::Null => {
                return Err(fail(format!(
                    "label: `{}` is empty (null); wrap it in {{{{#if …}}}} if it may be",
                    path_of(p)
                )));
            }
            v => one(v),
        };
        derived(words)
    }
}

/// Words for the codes messages show: categories, statuses and data types.
pub(crate) fn label(code: &str, zh: bool) -> Option<&'static str> {
    let (z, e) = match code {
        "pi_leak" => ("个人信息泄露", "personal information leak"),
        "pi_damage" => (
            "个人信息篡改或损毁",
            "personal information tampering or damage",
        ),
        "pi_loss" => ("个人信息丢失", "personal information loss"),
        "information_destruction" => ("信息破坏", "information destruction"),
        "vulnerability" => ("系统漏洞", "system vulnerability"),
        "malware" => ("计算机病毒或恶意程序", "malware"),
        "network_attack" => ("网络攻击", "network attack"),
        "intrusion" => ("网络侵入", "network intrusion"),
        "content_security" => ("信息内容安全", "content security"),
        "equipment_fault" => ("设备设施故障", "equipment fault"),
        "disaster" => ("灾害性事件", "disaster"),
        "other" => ("其他", "other"),
        "unclassified" => ("待研判", "not yet classified"),
        "detected" => ("已发现", "detected"),
        "triaged" => ("已研判", "triaged"),
        "contained" => ("已控制", "contained"),
        "eradicated" => ("已消除", "eradicated"),
        "recovered" => ("已恢复", "recovered"),
        "closed" => ("已关闭", "closed"),
        "false_positive" => ("误报", "false positive"),
        "reopened" => ("已重新打开", "reopened"),
        "merged" => ("已合并", "merged"),
        "name" => ("姓名", "name"),
        "phone" => ("手机号码", "phone number"),
        "email" => ("电子邮箱地址", "e-mail address"),
        "address" => ("地址", "postal address"),
        "id_number" => ("身份证件号码", "ID number"),
        "passport" => ("护照信息", "passport details"),
        "account_id" => ("账号", "account name"),
        "credentials" => (
            "登录凭证（如密码）",
            "login credentials (such as passwords)",
        ),
        "bank_account" => ("银行账户信息", "bank account details"),
        "payment_card" => ("支付卡信息", "payment card details"),
        "financial" => ("财产信息", "financial information"),
        "biometric" => ("生物识别信息", "biometric data"),
        "health" => ("健康生理信息", "health information"),
        "location" => ("行踪轨迹", "location data"),
        "minor_data" => ("不满十四周岁未成年人的信息", "information about children"),
        "device_id" => ("设备标识", "device identifiers"),
        "browsing" => ("浏览记录", "browsing history"),
        "contacts" => ("通讯录", "contacts"),
        "messages" => ("通信内容", "message contents"),
        "order_history" => ("交易记录", "order history"),
        _ => return None,
    };
    Some(if zh { z } else { e })
}

/// `if`/`unless` that refuse, in strict mode, a path that is not in the data.
struct StrictIf {
    positive: bool,
}

impl HelperDef for StrictIf {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let p = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
        if r.strict_mode() && p.is_value_missing() {
            return Err(RenderError::strict_error(p.relative_path()));
        }
        let include_zero = h
            .hash_get("includeZero")
            .and_then(|v| v.value().as_bool())
            .unwrap_or(false);
        let truthy = p.value().is_truthy(include_zero) == self.positive;
        match if truthy { h.template() } else { h.inverse() } {
            Some(t) => t.render(r, ctx, rc, out),
            None => Ok(()),
        }
    }
}

/// Every code [`label`] knows has words in both languages; a category or status added to the
/// domain without words here shows as its code, which this test catches.
#[cfg(test)]
pub(crate) fn has_label(code: &str) -> bool {
    label(code, true).is_some()
}
