//! Silences (maintenance windows): time-bounded matchers over alerts, written like
//! Alertmanager's — `name=value`, `name!=value`, `name=~regex`, `name!~regex` on labels — plus
//! an optional exact `source` and a classification `rule` name.
//!
//! Matching follows Alertmanager: regexes are anchored at both ends and case-sensitive, and a
//! label the alert does not have counts as the empty string (so `team!=db` matches an alert
//! without a `team` label). A silence whose every condition would match an alert with no labels
//! at all is refused, as Alertmanager refuses it: it would silence everything.
//!
//! Whether a matching alert is actually silenced is the engine's business: personal-information
//! categories never are.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;

/// The accepted forms, for messages.
pub const FORMS: &str = "name=value, name!=value, name=~regex or name!~regex";

string_enum! {
    /// How a matcher compares a label's value.
    MatchOp {
        Equal => "=",
        NotEqual => "!=",
        Regex => "=~",
        NotRegex => "!~",
    } what = "a match operator"
}

/// One label matcher, parsed and (for regexes) compiled.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&o.name, o.op, &o.value)
    }
}

/// How a matcher is stored (JSON) and compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatcherSpec {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        if !is_label_name(name) {
            return Err(format!(
                "`{name}` is not a label name (letters, digits and _, not starting with a digit); write {FORMS}"
            ));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                let build = |p: &str| regex::RegexBuilder::new(p).size_limit(1 << 20).build();
                // The pattern alone first, so that a mistake is shown in the writer's terms.
                build(value).map_err(|e| {
                    format!(
                        "`{value}` is not a valid regular expression: {}",
                        regex_problem(&e)
                    )
                })?;
                Some(build(&format!("^(?:{value})$")).map_err(|e| {
                    format!(
                        "`{value}` is not a valid regular expression: {}",
                        regex_problem(&e)
                    )
                })?)
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Does the alert's value of this label (`""` when it has none) match?
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(v),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
            (_, None) => false,
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    pub fn spec(&self) -> MatcherSpec {
        MatcherSpec {
            name: self.name.clone(),
            op: self.op,
            value: self.value.clone(),
        }
    }

    pub fn from_spec(s: &MatcherSpec) -> Result<Matcher, String> {
        Matcher::new(&s.name, s.op, &s.value)
    }
}

/// The regex crate's multi-line message, cut to what went wrong (`unclosed group`).
fn regex_problem(e: &regex::Error) -> String {
    let text = e.to_string();
    match text.rfind("error: ") {
        Some(i) => text[i + 7..].trim().to_string(),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl FromStr for Matcher {
    type Err = String;

    /// `name=value`, `name!=value`, `name=~regex`, `name!~regex`; spaces around the operator
    /// and double quotes around the value (`name="a b"`) are allowed.
    fn from_str(s: &str) -> Result<Matcher, String> {
        let t = s.trim();
        let end = t
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(t.len());
        let (name, rest) = t.split_at(end);
        let rest = rest.trim_start();
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Regex, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(format!("`{s}` is not a matcher; write {FORMS}"));
        };
        if name.is_empty() {
            return Err(format!(
                "`{s}` names no label; write {FORMS}, e.g. alertname=DiskFull"
            ));
        }
        Matcher::new(name, op, &unquote(value.trim())?)
    }
}

/// `"a \"b\""` → `a "b"`; anything not starting with a quote is taken as it is.
fn unquote(v: &str) -> Result<String, String> {
    if !v.starts_with('"') {
        return Ok(v.to_string());
    }
    serde_json::from_str::<String>(v).map_err(|_| {
        format!("the value {v} opens a quote it does not close; write name=\"value\" or leave the quotes out")
    })
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.value;
        let plain = !v.is_empty() && !v.starts_with('"') && v.trim() == v;
        if plain {
            write!(f, "{}{}{}", self.name, self.op.as_str(), v)
        } else {
            let quoted = serde_json::to_string(v).unwrap_or_default();
            write!(f, "{}{}{}", self.name, self.op.as_str(), quoted)
        }
    }
}

/// What a silence looks at, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditions {
    pub matchers: Vec<Matcher>,
    /// The alert's source, exactly.
    pub source: Option<String>,
    /// The classification rule that matched the alert, by name.
    pub rule: Option<String>,
}

impl Conditions {
    pub fn matches(
        &self,
        source: &str,
        labels: &BTreeMap<String, String>,
        rule: Option<&str>,
    ) -> bool {
        self.source.as_deref().is_none_or(|s| s == source)
            && self.rule.as_deref().is_none_or(|r| Some(r) == rule)
            && self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Compile stored matchers (JSON, as [`Conditions::matchers_json`] wrote them).
    pub fn from_stored(
        matchers: &str,
        source: Option<String>,
        rule: Option<String>,
    ) -> Result<Conditions, String> {
        let specs: Vec<MatcherSpec> = serde_json::from_str(matchers)
            .map_err(|e| format!("stored matchers are not readable: {e}"))?;
        Ok(Conditions {
            matchers: specs
                .iter()
                .map(Matcher::from_spec)
                .collect::<Result<_, _>>()?,
            source,
            rule,
        })
    }

    pub fn matchers_json(&self) -> String {
        let specs: Vec<MatcherSpec> = self.matchers.iter().map(Matcher::spec).collect();
        serde_json::to_string(&specs).unwrap_or_else(|_| "[]".into())
    }
}

/// A request to create a silence, as the API and CLI send it (our format: unknown fields are
/// refused).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// Label matchers, all of which must match: `name=value`, `name!=value`, `name=~regex`,
    /// `name!~regex` (regexes anchored, as in Alertmanager).
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Only alerts from this source (exactly, e.g. `alertmanager`).
    #[serde(default)]
    pub source: Option<String>,
    /// Only alerts a classification rule of this name matched.
    #[serde(default)]
    pub rule: Option<String>,
    /// When it starts (default: now).
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends; or give `duration`.
    #[serde(default, deserialize_with = "crate::domain::time::bounded::option")]
    pub ends_at: Option<DateTime<Utc>>,
    /// How long from `starts_at`, e.g. `2h`, `90m`, `1d`; or give `ends_at`.
    #[serde(default)]
    pub duration: Option<String>,
    /// Why (a change ticket, the maintenance planned): kept with the silence.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A validated silence, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSilence {
    pub conditions: Conditions,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

/// A refused request: the field (JSON path) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: String,
    pub message: String,
}

fn refuse(path: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal {
        path: path.into(),
        message: message.into(),
    }
}

impl SilenceRequest {
    /// Check everything; `rules` are the classification rule names in use. The first problem
    /// found is the refusal, in this order: what to silence, when, why.
    pub fn validate(&self, rules: &[&str], now: DateTime<Utc>) -> Result<NewSilence, Refusal> {
        let conditions = Conditions {
            matchers: self.compiled_matchers()?,
            source: self.checked_source()?,
            rule: self.checked_rule(rules)?,
        };
        refuse_unbounded(&conditions)?;
        let (starts_at, ends_at) = self.window(now)?;
        let reason = self.reason.as_deref().map(str::trim).unwrap_or_default();
        if reason.is_empty() {
            return Err(refuse(
                "reason",
                "say why (e.g. the change ticket or the maintenance planned): it is kept with the silence",
            ));
        }
        Ok(NewSilence {
            conditions,
            starts_at,
            ends_at,
            reason: reason.to_string(),
        })
    }

    fn compiled_matchers(&self) -> Result<Vec<Matcher>, Refusal> {
        self.matchers
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.parse::<Matcher>()
                    .map_err(|e| refuse(format!("matchers[{i}]"), e))
            })
            .collect()
    }

    fn checked_source(&self) -> Result<Option<String>, Refusal> {
        match self.source.as_deref().map(str::trim) {
            Some("") => Err(refuse("source", "give a source name, or leave source out")),
            s => Ok(s.map(str::to_string)),
        }
    }

    fn checked_rule(&self, rules: &[&str]) -> Result<Option<String>, Refusal> {
        match self.rule.as_deref().map(str::trim) {
            Some(r) if !rules.contains(&r) => Err(refuse(
                "rule",
                format!(
                    "there is no classification rule `{r}`; the rules are: {}",
                    if rules.is_empty() {
                        "(none)".to_string()
                    } else {
                        rules.join(", ")
                    }
                ),
            )),
            r => Ok(r.map(str::to_string)),
        }
    }

    /// When the silence starts and ends: it must end after now and after it starts.
    fn window(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), Refusal> {
        let starts_at = self.starts_at.unwrap_or(now);
        let ends_at = self.end(starts_at)?;
        let at = if self.ends_at.is_some() {
            "ends_at"
        } else {
            "duration"
        };
        if ends_at <= now {
            return Err(refuse(
                at,
                format!("the silence would already be over ({ends_at} is in the past)"),
            ));
        }
        if ends_at <= starts_at {
            return Err(refuse(
                at,
                format!("the silence would end ({ends_at}) before it starts ({starts_at})"),
            ));
        }
        Ok((starts_at, ends_at))
    }

    /// `ends_at`, or `duration` after `starts_at`: exactly one of them.
    fn end(&self, starts_at: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
        match (self.ends_at, self.duration.as_deref()) {
            (Some(_), Some(_)) => Err(refuse(
                "duration",
                "give either ends_at or duration, not both",
            )),
            (None, None) => Err(refuse(
                "ends_at",
                "say when the silence ends: give ends_at (RFC 3339) or duration (e.g. 2h)",
            )),
            (Some(e), None) => Ok(e),
            (None, Some(d)) => {
                let d: HumanDuration = d.parse().map_err(|e: String| refuse("duration", e))?;
                if d.0.is_zero() {
                    return Err(refuse(
                        "duration",
                        "give a duration longer than zero, e.g. 2h",
                    ));
                }
                Ok(starts_at
                    + chrono::Duration::from_std(d.0)
                        .map_err(|_| refuse("duration", "too long"))?)
            }
        }
    }
}

/// A silence must say what to silence, and must not silence every alert.
fn refuse_unbounded(c: &Conditions) -> Result<(), Refusal> {
    if c.matchers.is_empty() && c.source.is_none() && c.rule.is_none() {
        return Err(refuse(
            "matchers",
            format!("say what to silence: give at least one matcher ({FORMS}), a source or a rule"),
        ));
    }
    let empty = BTreeMap::new();
    if c.source.is_none() && c.rule.is_none() && c.matchers.iter().all(|m| m.matches(&empty)) {
        return Err(refuse(
            "matchers",
            "these matchers also match an alert without any labels, so the silence would silence every alert; add a matcher that needs a value, e.g. alertname=DiskFull",
        ));
    }
    Ok(())
}

string_enum! {
    /// Where a silence stands at a moment.
    SilenceState {
        /// It starts later.
        Pending => "pending",
        /// It silences matching alerts now.
        Active => "active",
        /// It ended, or was ended early.
        Expired => "expired",
    } what = "a silence state"
}

impl SilenceState {
    pub fn of(
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        expired_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> SilenceState {
        if expired_at.is_some() || ends_at <= now {
            SilenceState::Expired
        } else if starts_at > now {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(s: &str) -> Matcher {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_four_operators() {
        for (text, op, value) in [
            ("alertname=DiskFull", MatchOp::Equal, "DiskFull"),
            ("env!=prod", MatchOp::NotEqual, "prod"),
            ("instance=~db-.*", MatchOp::Regex, "db-.*"),
            ("job!~node|blackbox", MatchOp::NotRegex, "node|blackbox"),
            ("  team = db  ", MatchOp::Equal, "db"),
            ("summary=\"disk full\"", MatchOp::Equal, "disk full"),
            ("path=a=b", MatchOp::Equal, "a=b"),
            ("x=", MatchOp::Equal, ""),
        ] {
            let got = m(text);
            assert_eq!((got.op, got.value.as_str()), (op, value), "{text}");
        }
        assert_eq!(m("instance=~db-.*").name, "instance");
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "alertname=DiskFull",
            "env!=prod",
            "instance=~db-.*",
            "job!~node|blackbox",
            "summary=\"disk full \"",
            "x=\"\"",
        ] {
            let parsed = m(text);
            assert_eq!(
                parsed.to_string().parse::<Matcher>().unwrap(),
                parsed,
                "{text}"
            );
        }
        assert_eq!(m("a = b").to_string(), "a=b");
    }

    #[test]
    fn bad_matchers_say_the_accepted_forms() {
        for bad in ["DiskFull", "alertname", "=x", "~x", "1abc=x", "a-b=x"] {
            let e = bad.parse::<Matcher>().unwrap_err();
            assert!(
                e.contains("name=value") || e.contains("regular expression"),
                "{bad}: {e}"
            );
        }
        let e = "instance=~db-(".parse::<Matcher>().unwrap_err();
        assert_eq!(
            e,
            "`db-(` is not a valid regular expression: unclosed group"
        );
        let e = "a=\"open".parse::<Matcher>().unwrap_err();
        assert!(e.contains("opens a quote"), "{e}");
    }

    #[test]
    fn regexes_are_anchored_and_case_sensitive() {
        let r = m("instance=~db-.*");
        assert!(r.matches(&labels(&[("instance", "db-1")])));
        assert!(!r.matches(&labels(&[("instance", "web-db-1")])));
        assert!(!r.matches(&labels(&[("instance", "DB-1")])));
        let r = m("alertname=~Disk");
        assert!(!r.matches(&labels(&[("alertname", "DiskFull")])));
        let alt = m("job=~node|blackbox");
        assert!(alt.matches(&labels(&[("job", "blackbox")])));
        assert!(!alt.matches(&labels(&[("job", "nodex")])));
    }

    #[test]
    fn a_missing_label_is_the_empty_string() {
        let none = labels(&[]);
        assert!(m("team!=db").matches(&none));
        assert!(m("team=").matches(&none));
        assert!(m("team=~.*").matches(&none));
        assert!(!m("team=db").matches(&none));
        assert!(!m("team=~.+").matches(&none));
        assert!(m("team!~.+").matches(&none));
    }

    #[test]
    fn conditions_need_every_part() {
        let c = Conditions {
            matchers: vec![m("alertname=DiskFull"), m("instance=~db-.*")],
            source: Some("alertmanager".into()),
            rule: None,
        };
        let l = labels(&[("alertname", "DiskFull"), ("instance", "db-7")]);
        assert!(c.matches("alertmanager", &l, None));
        assert!(!c.matches("grafana", &l, None));
        let l2 = labels(&[("alertname", "DiskFull"), ("instance", "web-7")]);
        assert!(!c.matches("alertmanager", &l2, None));
        let by_rule = Conditions {
            matchers: vec![],
            source: None,
            rule: Some("malware".into()),
        };
        assert!(by_rule.matches("x", &l, Some("malware")));
        assert!(!by_rule.matches("x", &l, Some("other")));
        assert!(!by_rule.matches("x", &l, None));
    }

    #[test]
    fn stored_matchers_compile_back() {
        let c = Conditions {
            matchers: vec![m("alertname=DiskFull"), m("instance!~db-.*")],
            source: None,
            rule: Some("r".into()),
        };
        let back = Conditions::from_stored(&c.matchers_json(), None, Some("r".into())).unwrap();
        assert_eq!(back, c);
        assert!(
            c.matchers_json().contains(r#""op":"!~""#),
            "{}",
            c.matchers_json()
        );
    }

    fn now() -> DateTime<Utc> {
        "2026-03-01T10:00:00Z".parse().unwrap()
    }

    fn req(v: serde_json::Value) -> SilenceRequest {
        serde_json::from_value(v).unwrap()
    }

    fn refused(v: serde_json::Value) -> Refusal {
        req(v)
            .validate(&["malware", "pi-leak-text"], now())
            .unwrap_err()
    }

    #[test]
    fn a_valid_request_becomes_a_silence() {
        let s = req(serde_json::json!({
            "matchers": ["alertname=DiskFull", "instance=~db-.*"],
            "duration": "2h",
            "reason": "CHG-1234 disk replacement"
        }))
        .validate(&[], now())
        .unwrap();
        assert_eq!(s.starts_at, now());
        assert_eq!(s.ends_at, now() + chrono::Duration::hours(2));
        assert_eq!(s.conditions.matchers.len(), 2);
        let later: DateTime<Utc> = "2026-03-02T00:00:00Z".parse().unwrap();
        let s = req(serde_json::json!({
            "rule": "malware", "starts_at": "2026-03-01T22:00:00Z", "ends_at": later, "reason": "x"
        }))
        .validate(&["malware"], now())
        .unwrap();
        assert_eq!(
            (s.starts_at.to_rfc3339(), s.ends_at),
            ("2026-03-01T22:00:00+00:00".into(), later)
        );
    }

    #[test]
    fn every_bad_request_names_its_field() {
        let cases = [
            (
                serde_json::json!({"duration": "1h", "reason": "x"}),
                "matchers",
                "at least one matcher",
            ),
            (
                serde_json::json!({"matchers": ["DiskFull"], "duration": "1h", "reason": "x"}),
                "matchers[0]",
                "name=value",
            ),
            (
                serde_json::json!({"matchers": ["a=b", "i=~("], "duration": "1h", "reason": "x"}),
                "matchers[1]",
                "regular expression",
            ),
            (
                serde_json::json!({"matchers": ["team!=db"], "duration": "1h", "reason": "x"}),
                "matchers",
                "silence every alert",
            ),
            (
                serde_json::json!({"rule": "nope", "duration": "1h", "reason": "x"}),
                "rule",
                "the rules are: malware, pi-leak-text",
            ),
            (
                serde_json::json!({"source": " ", "matchers": ["a=b"], "duration": "1h", "reason": "x"}),
                "source",
                "give a source",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "reason": "x"}),
                "ends_at",
                "duration",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "duration": "1h", "ends_at": "2026-03-01T12:00:00Z", "reason": "x"}),
                "duration",
                "not both",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "duration": "2 hours", "reason": "x"}),
                "duration",
                "unit",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "duration": "0s", "reason": "x"}),
                "duration",
                "longer than zero",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "starts_at": "2026-03-01T12:00:00Z", "ends_at": "2026-03-01T11:00:00Z", "reason": "x"}),
                "ends_at",
                "before it starts",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "starts_at": "2026-03-01T08:00:00Z", "ends_at": "2026-03-01T09:00:00Z", "reason": "x"}),
                "ends_at",
                "already be over",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "duration": "1h"}),
                "reason",
                "say why",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "duration": "1h", "reason": "  "}),
                "reason",
                "say why",
            ),
        ];
        for (body, path, needle) in cases {
            let r = refused(body.clone());
            assert_eq!(r.path, path, "{body}: {r:?}");
            assert!(r.message.contains(needle), "{body}: {r:?}");
        }
    }

    #[test]
    fn states_follow_time_and_early_expiry() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let (s, e) = (t("2026-03-01T09:00:00Z"), t("2026-03-01T11:00:00Z"));
        assert_eq!(SilenceState::of(s, e, None, now()), SilenceState::Active);
        assert_eq!(
            SilenceState::of(s, e, None, t("2026-03-01T08:00:00Z")),
            SilenceState::Pending
        );
        assert_eq!(SilenceState::of(s, e, None, e), SilenceState::Expired);
        assert_eq!(
            SilenceState::of(s, e, Some(now()), now()),
            SilenceState::Expired
        );
    }
}
