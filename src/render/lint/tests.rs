#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;
use crate::config::{OperatorType, RenderConfig};

const URL: &str = "http://127.0.0.1:8600";

fn org() -> OrganisationConfig {
    OrganisationConfig {
        name: "Example Co.".into(),
        operator_type: OperatorType::Other,
        jurisdictions: vec![],
        contact: "privacy@example.com".into(),
        default_locale: "zh-CN".into(),
        default_region: None,
    }
}

fn load(files: &[(&str, &str)], cfg: &RenderConfig) -> (tempfile::TempDir, Templates) {
    let d = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = d.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let t = Templates::load(d.path(), cfg).unwrap_or_else(|e| panic!("{e:#?}"));
    (d, t)
}

const CONTACT: &str =
    "{{#if incident.facts.contact}}{{incident.facts.contact}}{{else}}{{org.contact}}{{/if}}";

/// A complete notice body: every element, for `text`, `html` and `voice` alike.
fn full_body() -> String {
    format!(
        "{{{{required incident.facts.cause}}}}\n{{{{label incident.facts.data_types \"en\"}}}}\n\
         {{{{required incident.facts.impact}}}}\n{{{{required incident.facts.measures_taken}}}}\n\
         {{{{#if incident.facts.measures_planned}}}}{{{{incident.facts.measures_planned}}}}{{{{/if}}}}\n\
         {{{{required incident.facts.advice_to_subjects}}}}\n{{{{required incident.facts.remedies}}}}\n{CONTACT}\n"
    )
}

fn good() -> String {
    format!(
        "{{{{!-- subject --}}}}\nNotice\n{{{{!-- text --}}}}\n{b}{{{{!-- html --}}}}\n<p>{b}</p>\n\
         {{{{!-- sms --}}}}\nSee {{{{required notice.url}}}}\n",
        b = full_body()
    )
}

fn strings(p: &[LintProblem]) -> Vec<String> {
    p.iter().map(ToString::to_string).collect()
}

#[test]
fn the_shipped_notices_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let t = Templates::load(&dir, &RenderConfig::default()).unwrap();
    assert!(t.names().iter().any(|n| is_notice(n)));
    let p = t.lint_notices(&org(), URL);
    assert!(p.is_empty(), "{:#?}", strings(&p));
    // The configured organisation and public URL count: a very long contact does not fit
    // the Chinese SMS (UCS-2, 67 characters a segment).
    let long = OrganisationConfig {
        contact:
            "个人信息保护负责人办公室 privacy-officer@example-company.com.cn 电话 400-800-8888 转 6"
                .into(),
        ..org()
    };
    let p = t.lint_notices(&long, "https://security-incidents.example-company.com.cn");
    let got = strings(&p);
    assert!(
        got.iter()
            .any(|g| g.contains("pi_leak.zh-CN.hbs: sms: takes 4 segments")),
        "{got:#?}"
    );
}

#[test]
fn a_complete_notice_passes_and_others_are_not_linted() {
    let page = "{{!-- sms --}}\nno content rules for pages\n";
    let (_d, t) = load(
        &[("notice/n.en.hbs", &good()), ("page/p.en.hbs", page)],
        &RenderConfig::default(),
    );
    assert_eq!(t.lint_notice("notice/n", &org(), URL).unwrap(), vec![]);
    assert_eq!(t.lint_notice("page/p", &org(), URL).unwrap(), vec![]);
    assert!(t.lint_notice("notice/none", &org(), URL).is_err());
}

#[test]
fn each_part_lists_what_it_lacks() {
    // text: no remedies; html: the cause only in drills, no contact of the organisation;
    // voice: no advice; sms: no link; params: no link.
    let text = full_body().replace("{{required incident.facts.remedies}}", "");
    let html = full_body()
        .replace(
            "{{required incident.facts.cause}}",
            "{{#if incident.drill}}{{incident.facts.cause}}{{/if}}",
        )
        .replace(CONTACT, "{{incident.facts.contact}}");
    let voice = format!("{{{{label incident.facts.data_types \"en\"}}}} {CONTACT}");
    let src = format!(
        "{{{{!-- subject --}}}}\nNotice\n{{{{!-- text --}}}}\n{text}{{{{!-- html --}}}}\n{html}\
         {{{{!-- sms --}}}}\nRead your e-mail\n{{{{!-- voice --}}}}\n{voice}\n{{{{!-- params --}}}}\norg={{{{org.name}}}}\n"
    );
    let (d, t) = load(&[("notice/n.en.hbs", &src)], &RenderConfig::default());
    let p = t.lint_notice("notice/n", &org(), URL).unwrap();
    let file = d.path().join("notice/n.en.hbs");
    let f = file.display();
    let got = strings(&p);
    assert_eq!(p.len(), 5, "{got:#?}");
    assert_eq!(
        got[0],
        format!(
            "{f}: text: missing the remedies offered / 提供的补救方式 (incident.facts.remedies)"
        )
    );
    assert_eq!(
        got[1],
        format!(
            "{f}: html: missing what happened and its cause / 事件经过及原因 (incident.facts.cause, \
             in the normal notice and when the incident has no contact of its own (org.contact)); \
             the contact of the personal-information protection officer / 个人信息保护负责人的联系方式 \
             (incident.facts.contact or org.contact, when the incident has no contact of its own (org.contact))"
        )
    );
    assert_eq!(
        p[1].missing.iter().map(|e| e.id).collect::<Vec<_>>(),
        ["what_happened", "contact"]
    );
    assert!(
        got[2].starts_with(&format!("{f}: voice: missing what people can do")),
        "{got:#?}"
    );
    assert_eq!(
        p[2].missing.len(),
        1,
        "only the essentials are asked of a call"
    );
    assert!(
        got[3].starts_with(&format!("{f}: sms: no link to the full notice")),
        "{got:#?}"
    );
    assert!(
        got[4].starts_with(&format!("{f}: params: no link")),
        "{got:#?}"
    );
}

#[test]
fn a_notice_without_a_text_part_is_refused() {
    let (_d, t) = load(
        &[(
            "notice/n.en.hbs",
            "{{!-- sms --}}\n{{required notice.url}}\n",
        )],
        &RenderConfig::default(),
    );
    let got = strings(&t.lint_notice("notice/n", &org(), URL).unwrap());
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(got[0].contains("no text part"), "{got:#?}");
}

#[test]
fn an_sms_over_the_configured_segments_is_refused() {
    let long_sms = format!(
        "{{{{!-- subject --}}}}\nN\n{{{{!-- text --}}}}\n{}{{{{!-- sms --}}}}\n{}{{{{required notice.url}}}} {{{{label incident.facts.data_types \"zh-CN\"}}}}\n",
        full_body(),
        "中".repeat(60)
    );
    let (_d, t) = load(
        &[("notice/n.zh-CN.hbs", &long_sms)],
        &RenderConfig::default(),
    );
    // 60 + ~60 link + 29 data types: three segments fit (201 units)…
    assert_eq!(t.lint_notice("notice/n", &org(), URL).unwrap(), vec![]);
    // … two do not.
    let cfg = RenderConfig {
        sms_max_segments: 2,
        ..RenderConfig::default()
    };
    let (_d, t) = load(&[("notice/n.zh-CN.hbs", &long_sms)], &cfg);
    let got = strings(&t.lint_notice("notice/n", &org(), URL).unwrap());
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("sms: takes 3 segments") && got[0].contains("render.sms_max_segments = 2"),
        "{got:#?}"
    );
}

#[test]
fn an_sms_falling_back_to_text_needs_the_link_there() {
    let src = format!(
        "{{{{!-- subject --}}}}\nN\n{{{{!-- text --}}}}\n{}",
        full_body()
    );
    let (_d, t) = load(&[("notice/n.en.hbs", &src)], &RenderConfig::default());
    let got = strings(&t.lint_notice("notice/n", &org(), URL).unwrap());
    assert!(
        got.iter()
            .any(|g| g.contains(": text: no link to the full notice")),
        "{got:#?}"
    );
}
