//! `incidentd render` (preview one template) and the template part of `incidentd check`.

use serde_json::{Value, json};

use super::RenderArgs;
use crate::config::Settings;
use crate::domain::message::ChannelKind;
use crate::render::{
    PREVIEW_CHANNELS, Rendered, SmsSegments, Templates, incident_context, sample_context,
    sms_segments,
};

pub const HELP: &str = "\
Examples:
  incidentd render notice/pi_leak --sample                every channel, the default locale
  incidentd render notice/pi_leak --sample --channel sms --locale en
  incidentd render page/incident_opened --incident 42     a real incident (needs the daemon
                                                          and INCIDENTD_TOKEN)
  incidentd render notice/pi_leak --sample --json         the stored content as JSON

Templates are files <kind>/<name>.<locale>.hbs in [paths] templates (default: ../templates
beside the config file). A recipient's locale falls back zh-CN → zh → en; the heading says which
file was used. For SMS the encoding, length and segment count are shown (GSM-7: 160 characters,
153 per part when split; UCS-2, e.g. Chinese: 70, 67 per part). More segments than
[render] sms_max_segments is a warning on standard error; the exit status stays 0.
Exit status 1: the template cannot be rendered; the message names file, line and problem.
`incidentd check` renders every template against the sample incident and lints the content of
notices to individuals (notice/*: every required element, the SMS link and length).";

fn load_templates(s: &Settings) -> anyhow::Result<Templates> {
    Templates::load(&s.templates_path, &s.render).map_err(|errors| {
        anyhow::anyhow!(
            "the templates are not valid ({} problem{}):\n  {}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            errors.join("\n  ")
        )
    })
}

pub async fn run(a: RenderArgs) -> anyhow::Result<i32> {
    let settings = super::offline::load(&a.config.config)?;
    let templates = load_templates(&settings)?;
    if !templates.names().contains(&a.template.as_str()) {
        anyhow::bail!(
            "there is no template `{}` in {}; the templates are: {}",
            a.template,
            templates.dir().display(),
            templates.names().join(", ")
        );
    }
    let data = match a.incident {
        Some(id) => {
            let mut data = incident_context(
                &super::client::fetch_incident(&a.client, id).await?,
                &settings.organisation,
            );
            // A campaign links to the person's notice page or the announcement; a preview
            // shows where the announcement would be.
            data["notice"] = crate::render::context::notice_value(Some(&format!(
                "{}/announcements/<slug>",
                settings.server.public_url.trim_end_matches('/')
            )));
            data
        }
        None => sample_context(&settings.organisation),
    };
    let locale = a
        .locale
        .clone()
        .unwrap_or_else(|| settings.organisation.default_locale.clone());
    let supported = templates.channels(&a.template);
    if supported.is_empty() && a.channel.is_none() {
        // A page (the public announcement): a title and an HTML body, sent by no channel.
        let (title, html, used) = templates.render_page(&a.template, &locale, &data)?;
        if a.client.json {
            let v = json!({ "template": a.template, "locale": used, "title": title, "html": html });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            println!(
                "━━ {} · page · {used}\ntitle: {title}\n── html ──\n{html}\n",
                a.template
            );
        }
        return Ok(0);
    }
    let channels: Vec<ChannelKind> = match a.channel {
        Some(c) => vec![c],
        None => PREVIEW_CHANNELS
            .into_iter()
            .filter(|c| supported.contains(c))
            .collect(),
    };
    let limit = settings.render.sms_max_segments;
    let mut as_json = Vec::new();
    for channel in channels {
        let r = templates.render_detailed(&a.template, channel, &locale, &data)?;
        let sms = (channel == ChannelKind::Sms).then(|| sms_segments(&r.content.text));
        if a.client.json {
            as_json.push(json!({
                "template": a.template, "channel": channel, "locale": r.locale,
                "file": r.file, "content": r.content, "sms": sms,
            }));
        } else {
            print_rendering(&a.template, channel, &locale, &r, sms, limit);
        }
        if let Some(s) = sms.filter(|s| s.segments > limit as usize) {
            eprintln!(
                "warning: {}: the SMS takes {} segments, more than render.sms_max_segments = {limit}; shorten it (providers bill per segment)",
                r.file.display(),
                s.segments
            );
        }
    }
    if a.client.json {
        println!("{}", serde_json::to_string_pretty(&Value::Array(as_json))?);
    }
    Ok(0)
}

fn print_rendering(
    name: &str,
    channel: ChannelKind,
    asked: &str,
    r: &Rendered,
    sms: Option<SmsSegments>,
    limit: u32,
) {
    println!(
        "━━ {name} · {channel} · {} ({})",
        r.locale,
        r.file.display()
    );
    if !r.locale.eq_ignore_ascii_case(asked) {
        println!("   (no {asked} version: fell back to {})", r.locale);
    }
    let c = &r.content;
    if let Some(subject) = &c.subject {
        println!("subject: {subject}");
    }
    println!("── text ──\n{}", c.text);
    if let Some(html) = &c.html {
        println!("── html ──\n{html}");
    }
    if let Some(s) = sms {
        let (single, part) = s.encoding.limits();
        println!(
            "── sms: {}, {} units, {} segment{} (one message holds {single}, split parts {part}; limit {limit})",
            s.encoding.as_str(),
            s.units,
            s.segments,
            if s.segments == 1 { "" } else { "s" }
        );
    }
    if !c.params.is_empty() {
        let p: Vec<String> = c.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("── params: {}", p.join(" · "));
    }
    println!();
}

/// The template part of `incidentd check`: load every template and render it for every
/// channel and locale against the sample incident. Prints what it found; false on any error.
/// Load the templates and render each against the sample, printing what was found. Returns
/// whether all is well, and the templates when they loaded (for the playbook check).
pub fn check_templates(s: &Settings) -> (bool, Option<Templates>) {
    let dir = &s.templates_path;
    if !dir.is_dir() {
        eprintln!(
            "error: paths.templates: {} is not a folder; the daemon renders its messages from there (set [paths] templates)",
            dir.display()
        );
        return (false, None);
    }
    let templates = match load_templates(s) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return (false, None);
        }
    };
    if let Err(e) = crate::engine::announce::check_config(&s.announcements, &templates) {
        eprintln!("error: {e}");
        return (false, Some(templates));
    }
    let report = templates.check(&sample_context(&s.organisation), s.render.sms_max_segments);
    println!(
        "  templates       {} ({} templates, {} renderings against the sample incident, times in {})",
        dir.display(),
        templates.names().len(),
        report.rendered,
        templates.time_zone()
    );
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    let notices_ok = lint_notices(s, &templates);
    if report.errors.is_empty() {
        return (notices_ok, Some(templates));
    }
    eprintln!(
        "error: {} template rendering{} failed:\n  {}",
        report.errors.len(),
        if report.errors.len() == 1 { "" } else { "s" },
        report.errors.join("\n  ")
    );
    (false, Some(templates))
}

/// The content lint of the notices to individuals (`notice/*`): every required element in
/// every full-content part, the SMS link and length. Prints what it found; false on a problem.
fn lint_notices(s: &Settings, templates: &Templates) -> bool {
    let names: Vec<&str> = templates
        .names()
        .into_iter()
        .filter(|n| crate::render::is_notice(n))
        .collect();
    let problems = templates.lint_notices(&s.organisation, &s.server.public_url);
    if problems.is_empty() {
        println!(
            "  notice content  {} complete (every required element; SMS within {} segments, linking to the full notice)",
            if names.is_empty() {
                "no notice templates".to_string()
            } else {
                names.join(", ")
            },
            s.render.sms_max_segments
        );
        return true;
    }
    eprintln!(
        "error: {} notice content problem{} (a notice to individuals must carry every required element):\n  {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    false
}
