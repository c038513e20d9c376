//! Message templates: every word incidentd sends to a person comes from a handlebars file
//! `templates/<kind>/<name>.<locale>.hbs`, e.g. `templates/notice/pi_leak.zh-CN.hbs`, named
//! `notice/pi_leak` in code, configuration and the CLI.
//!
//! One file holds every part of one message in one language, each part starting at a marker
//! line (see [`sections`]): `subject`, `text`, `html`, `sms`, `voice` and `params`. A channel
//! takes the parts it needs:
//!
//! | channel | parts |
//! |---|---|
//! | email | `subject` + `text`, `html` if present |
//! | sms | `sms`, else `text`; `params` for template-only providers |
//! | voice | `voice`, else `sms`, else `text`; `params` |
//! | inbox, site_webhook, webhook | `subject` (as title) + `text` |
//!
//! Two registries, because the escape function belongs to the registry: `html` parts are
//! rendered with HTML escaping, everything else verbatim (an SMS must say `&`, not `&amp;`).
//! Both run in strict mode, with strict `if`/`unless` ([`helpers`]): a misspelt variable is an
//! error naming the file and line, never a silent blank in a notice.
//!
//! A recipient's locale falls back `zh-Hant-TW → zh-Hant → zh → en` ([`locale_chain`]);
//! [`Rendered::locale`] says which version was used. [`Templates::load`] refuses a folder
//! with any broken file, listing every problem as `file:line: problem`.

pub mod context;
pub mod digest;
pub mod drill;
pub mod helpers;
pub mod lint;
mod load;
pub mod report;
pub mod sections;
pub mod sms;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use handlebars::{Handlebars, RenderErrorReason};
use serde_json::{Value, json};

use crate::config::RenderConfig;
use crate::domain::message::{ChannelKind, Content};

pub use context::{incident_context, sample_context};
pub use lint::{LintProblem, is_notice};
pub use sections::Part;
pub use sms::{SmsEncoding, SmsSegments, sms_segments};

/// The channels whose renderings differ; site_webhook and webhook take what inbox takes.
pub const PREVIEW_CHANNELS: [ChannelKind; 4] = [
    ChannelKind::Email,
    ChannelKind::Sms,
    ChannelKind::Voice,
    ChannelKind::Inbox,
];

/// The locale every chain ends with.
pub const LAST_RESORT_LOCALE: &str = "en";

/// Why a message could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// No template of that name.
    UnknownTemplate { name: String, known: Vec<String> },
    /// Neither the locale nor any fallback has a version.
    NoLocale {
        name: String,
        tried: Vec<String>,
        available: Vec<String>,
    },
    /// The template lacks a part the channel needs.
    MissingPart {
        file: PathBuf,
        channel: ChannelKind,
        needs: String,
    },
    /// Rendering failed (a missing variable, a helper refusing its input…).
    Template {
        file: PathBuf,
        line: Option<usize>,
        part: Part,
        problem: String,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::UnknownTemplate { name, known } => write!(
                f,
                "there is no template `{name}`; the templates are: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
            RenderError::NoLocale {
                name,
                tried,
                available,
            } => write!(
                f,
                "template `{name}` has no version for {} (it has {}): add {}.{}.hbs",
                tried.join(" → "),
                available.join(", "),
                name,
                LAST_RESORT_LOCALE
            ),
            RenderError::MissingPart {
                file,
                channel,
                needs,
            } => write!(
                f,
                "{}: cannot be sent by {channel}: it needs {needs}",
                file.display()
            ),
            RenderError::Template {
                file,
                line,
                part,
                problem,
            } => match line {
                Some(l) => write!(f, "{}:{l}: {problem} (in the {part} part)", file.display()),
                None => write!(f, "{}: {problem} (in the {part} part)", file.display()),
            },
        }
    }
}

impl std::error::Error for RenderError {}

/// A rendering and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub content: Content,
    /// The locale of the version used (after fallback).
    pub locale: String,
    pub file: PathBuf,
}

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Renderings tried (template × locale × channel).
    pub rendered: usize,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
struct Version {
    file: PathBuf,
    locale: String,
    /// Part → the line of its marker.
    parts: BTreeMap<Part, usize>,
    /// The `params` part's keys, in order, with the file line of each: every value is a
    /// template of its own, rendered by itself (see [`sections::param_lines`]).
    params: Vec<(String, usize)>,
}

/// The loaded templates: two registries and an index of names, locales and parts.
pub struct Templates {
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
    /// name → lower-cased locale → version.
    by_name: BTreeMap<String, BTreeMap<String, Version>>,
    dir: PathBuf,
    time_zone: Tz,
    /// `[render] sms_max_segments`: the most segments a notice's SMS may take.
    sms_max_segments: u32,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .field("time_zone", &self.time_zone)
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn registry(tz: Tz, escape: bool) -> Handlebars<'static> {
    let mut r = Handlebars::new();
    r.set_strict_mode(true);
    if !escape {
        r.register_escape_fn(handlebars::no_escape);
    }
    helpers::register(&mut r, tz);
    r
}

/// Where a file's name is wrong, what it should look like.
const NAMING: &str = "template files are named <kind>/<name>.<locale>.hbs, e.g. notice/pi_leak.zh-CN.hbs (name: a-z, 0-9, _ and -; locale: a language tag such as en, zh or zh-CN)";

/// The locales tried for `requested`, best first: the tag, each shorter prefix, then `en`.
/// `zh_CN` is read as `zh-CN`.
pub fn locale_chain(requested: &str) -> Vec<String> {
    let tag = requested.trim().replace('_', "-");
    let mut chain: Vec<String> = Vec::new();
    let mut cur = tag.as_str();
    while !cur.is_empty() {
        chain.push(cur.to_string());
        cur = cur.rsplit_once('-').map_or("", |(head, _)| head);
    }
    if !chain
        .iter()
        .any(|l| l.eq_ignore_ascii_case(LAST_RESORT_LOCALE))
    {
        chain.push(LAST_RESORT_LOCALE.to_string());
    }
    chain
}

impl Templates {
    /// The templates' names, sorted (`notice/pi_leak`, `page/incident_opened`, …).
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    /// The locales a template exists in, as their files spell them.
    pub fn locales(&self, name: &str) -> Vec<&str> {
        self.by_name
            .get(name)
            .map(|v| v.values().map(|x| x.locale.as_str()).collect())
            .unwrap_or_default()
    }

    /// The folder the templates were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The time zone dates are shown in.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// `[render] sms_max_segments`, as loaded.
    pub fn sms_max_segments(&self) -> u32 {
        self.sms_max_segments
    }

    /// The channels a template has the parts for.
    pub fn channels(&self, name: &str) -> Vec<ChannelKind> {
        let Some(v) = self.by_name.get(name).and_then(|v| v.values().next()) else {
            return vec![];
        };
        ChannelKind::ALL
            .into_iter()
            .filter(|c| needs(*c, &v.parts).is_ok())
            .collect()
    }

    /// The version used for `locale`, after fallback.
    fn version(&self, name: &str, locale: &str) -> Result<&Version, RenderError> {
        let versions = self
            .by_name
            .get(name)
            .ok_or_else(|| RenderError::UnknownTemplate {
                name: name.to_string(),
                known: self.by_name.keys().cloned().collect(),
            })?;
        let chain = locale_chain(locale);
        chain
            .iter()
            .find_map(|l| versions.get(&l.to_ascii_lowercase()))
            .ok_or_else(|| RenderError::NoLocale {
                name: name.to_string(),
                tried: chain.clone(),
                available: versions.values().map(|v| v.locale.clone()).collect(),
            })
    }

    /// Render template `name` for `channel` in `locale` (with fallback) against `data`.
    pub fn render(
        &self,
        name: &str,
        channel: ChannelKind,
        locale: &str,
        data: &Value,
    ) -> Result<Content, RenderError> {
        self.render_detailed(name, channel, locale, data)
            .map(|r| r.content)
    }

    /// As [`render`](Self::render), saying which locale and file were used.
    pub fn render_detailed(
        &self,
        name: &str,
        channel: ChannelKind,
        locale: &str,
        data: &Value,
    ) -> Result<Rendered, RenderError> {
        let v = self.version(name, locale)?;
        let plan = needs(channel, &v.parts).map_err(|needs| RenderError::MissingPart {
            file: v.file.clone(),
            channel,
            needs,
        })?;
        let part = |p: Part| self.render_part(name, v, p, data);
        let mut content = Content {
            template: Some(name.to_string()),
            ..Content::default()
        };
        match plan {
            Plan::Email => {
                content.subject = Some(one_line(&part(Part::Subject)?));
                content.text = tidy(&part(Part::Text)?);
                if v.parts.contains_key(&Part::Html) {
                    content.html = Some(part(Part::Html)?.trim().to_string());
                }
            }
            Plan::Phone(body) => {
                content.text = tidy(&part(body)?);
                content.params = self.render_params(name, v, data)?;
            }
            Plan::Notice => {
                let title = one_line(&part(Part::Subject)?);
                content.text = tidy(&part(Part::Text)?);
                content.data = Some(json!({
                    "title": title,
                    "incident_id": data.pointer("/incident/id").cloned().unwrap_or(Value::Null),
                    "template": name,
                    "locale": v.locale,
                }));
                content.subject = Some(title);
            }
        }
        Ok(Rendered {
            content,
            locale: v.locale.clone(),
            file: v.file.clone(),
        })
    }

    /// Render a page template (a `subject` as its title and an `html` body), as the public
    /// announcement is: `(title, html, locale used)`.
    pub fn render_page(
        &self,
        name: &str,
        locale: &str,
        data: &Value,
    ) -> Result<(String, String, String), RenderError> {
        let v = self.version(name, locale)?;
        if !(v.parts.contains_key(&Part::Subject) && v.parts.contains_key(&Part::Html)) {
            return Err(RenderError::MissingPart {
                file: v.file.clone(),
                channel: ChannelKind::Webhook,
                needs: "a subject (the title) and an html part, to be a page".into(),
            });
        }
        let title = one_line(&self.render_part(name, v, Part::Subject, data)?);
        let html = self
            .render_part(name, v, Part::Html, data)?
            .trim()
            .to_string();
        Ok((title, html, v.locale.clone()))
    }

    /// Each parameter rendered by itself: a map built from the data, never parsed back out of
    /// rendered text (a value cannot add or change another parameter).
    fn render_params(
        &self,
        name: &str,
        v: &Version,
        data: &Value,
    ) -> Result<BTreeMap<String, String>, RenderError> {
        let mut out = BTreeMap::new();
        for (key, line) in &v.params {
            let value = self
                .plain
                .render(&param_name(name, &v.locale, key), data)
                .map_err(|e| RenderError::Template {
                    file: v.file.clone(),
                    line: Some(*line),
                    part: Part::Params,
                    problem: explain(e.reason(), data),
                })?;
            out.insert(key.clone(), one_line(&value));
        }
        Ok(out)
    }

    fn render_part(
        &self,
        name: &str,
        v: &Version,
        part: Part,
        data: &Value,
    ) -> Result<String, RenderError> {
        let reg = if part == Part::Html {
            &self.html
        } else {
            &self.plain
        };
        let marker = v.parts.get(&part).copied().unwrap_or(0);
        reg.render(&reg_name(name, &v.locale, part), data)
            .map_err(|e| RenderError::Template {
                file: v.file.clone(),
                line: e.line_no.map(|l| marker + l),
                part,
                problem: explain(e.reason(), data),
            })
    }

    /// Render every template in every locale for every channel it supports against `data`
    /// (normally [`sample_context`]); SMS longer than `sms_max_segments` is a warning (for
    /// `notice/*` templates the content lint, [`Templates::lint_notices`], makes it an error).
    pub fn check(&self, data: &Value, sms_max_segments: u32) -> CheckReport {
        let mut report = CheckReport::default();
        for (name, versions) in &self.by_name {
            for v in versions.values() {
                if is_page(&v.parts) {
                    report.rendered += 1;
                    if let Err(e) = self.render_page(name, &v.locale, data) {
                        report.errors.push(e.to_string());
                    }
                }
                for channel in PREVIEW_CHANNELS {
                    if needs(channel, &v.parts).is_err() {
                        continue;
                    }
                    // Regulator reports (and drills' after-action reports) go out by e-mail or
                    // webhook only, never by SMS or voice.
                    if (name.starts_with("regulator/") || name.starts_with("drill/"))
                        && !matches!(channel, ChannelKind::Email | ChannelKind::Webhook)
                    {
                        continue;
                    }
                    report.rendered += 1;
                    match self.render_detailed(name, channel, &v.locale, data) {
                        Err(e) => report.errors.push(e.to_string()),
                        // A notice's SMS length is the content lint's (an error there).
                        Ok(r) if channel == ChannelKind::Sms && !is_notice(name) => {
                            let s = sms_segments(&r.content.text);
                            if s.segments > sms_max_segments as usize {
                                report.warnings.push(format!(
                                    "{}: the SMS takes {} segments ({} {} units) for the sample incident, more than render.sms_max_segments = {sms_max_segments}",
                                    v.file.display(),
                                    s.segments,
                                    s.units,
                                    s.encoding.as_str()
                                ));
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
        report
    }
}

/// A page (subject and html, nothing a channel sends): the public announcement.
fn is_page(parts: &BTreeMap<Part, usize>) -> bool {
    parts.keys().copied().eq([Part::Subject, Part::Html])
}

fn reg_name(name: &str, locale: &str, part: Part) -> String {
    format!("{name}.{locale}#{part}")
}

fn param_name(name: &str, locale: &str, key: &str) -> String {
    format!("{name}.{locale}#params.{key}")
}

fn join_parts(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a channel is rendered.
enum Plan {
    /// subject + text (+ html).
    Email,
    /// One body part, plus params.
    Phone(Part),
    /// subject as title + text, with structured data.
    Notice,
}

/// The plan for `channel`, or what the template lacks for it.
fn needs(channel: ChannelKind, parts: &BTreeMap<Part, usize>) -> Result<Plan, String> {
    let has = |p: Part| parts.contains_key(&p);
    let first = |order: &[Part]| order.iter().copied().find(|p| has(*p));
    match channel {
        ChannelKind::Email if has(Part::Subject) && has(Part::Text) => Ok(Plan::Email),
        ChannelKind::Email => {
            Err("a subject and a text part ({{!-- subject --}}, {{!-- text --}})".into())
        }
        ChannelKind::Sms => first(&[Part::Sms, Part::Text])
            .map(Plan::Phone)
            .ok_or_else(|| "an sms (or text) part".into()),
        ChannelKind::Voice => first(&[Part::Voice, Part::Sms, Part::Text])
            .map(Plan::Phone)
            .ok_or_else(|| "a voice (or sms, or text) part".into()),
        ChannelKind::Inbox | ChannelKind::SiteWebhook | ChannelKind::Webhook
            if has(Part::Subject) && has(Part::Text) =>
        {
            Ok(Plan::Notice)
        }
        ChannelKind::Inbox | ChannelKind::SiteWebhook | ChannelKind::Webhook => {
            Err("a subject (the title) and a text part".into())
        }
    }
}

/// A handlebars failure in words a template author can act on.
fn explain(reason: &RenderErrorReason, data: &Value) -> String {
    match reason {
        RenderErrorReason::MissingVariable(path) => {
            let keys = data
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            format!(
                "`{}` is not in the data (strict mode): check the spelling; the data has {keys} (see the render module docs for their fields)",
                path.as_deref().unwrap_or("a value")
            )
        }
        RenderErrorReason::HelperNotFound(h) => {
            format!(
                "there is no helper `{h}`; the helpers are {}",
                helpers::NAMES
            )
        }
        RenderErrorReason::Other(m) => m.clone(),
        other => other.to_string(),
    }
}

/// A subject is one line, whatever line breaks the template left in it.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Plain text as sent: no trailing spaces, at most one blank line in a row, no blank edges
/// (the blank lines `{{#if}}` blocks leave behind do not reach people).
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests;
