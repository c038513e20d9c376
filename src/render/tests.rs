#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::{OperatorType, OrganisationConfig};

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

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = d.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    d
}

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Templates) {
    let d = dir_with(files);
    let t =
        Templates::load(d.path(), &RenderConfig::default()).unwrap_or_else(|e| panic!("{e:#?}"));
    (d, t)
}

fn load_err(files: &[(&str, &str)]) -> Vec<String> {
    let d = dir_with(files);
    Templates::load(d.path(), &RenderConfig::default()).unwrap_err()
}

const SIMPLE: &str = "{{!-- subject --}}\nHi {{who}}\n{{!-- text --}}\nText {{who}}\n";

#[test]
fn locale_chain_goes_from_specific_to_english() {
    assert_eq!(locale_chain("zh-CN"), ["zh-CN", "zh", "en"]);
    assert_eq!(
        locale_chain("zh_Hant_TW"),
        ["zh-Hant-TW", "zh-Hant", "zh", "en"]
    );
    assert_eq!(locale_chain("en-GB"), ["en-GB", "en"]);
    assert_eq!(locale_chain("en"), ["en"]);
}

#[test]
fn fallback_uses_the_closest_version_and_says_which() {
    let (_d, t) = load(&[
        ("page/x.zh.hbs", "{{!-- sms --}}\nzh\n"),
        ("page/x.en.hbs", "{{!-- sms --}}\nen\n"),
        ("page/y.zh-CN.hbs", "{{!-- sms --}}\nzh-CN\n"),
        ("page/y.zh.hbs", "{{!-- sms --}}\nzh\n"),
        ("page/y.en.hbs", "{{!-- sms --}}\nen\n"),
    ]);
    let r = |name, locale| {
        let r = t
            .render_detailed(name, ChannelKind::Sms, locale, &json!({}))
            .unwrap();
        (r.content.text, r.locale)
    };
    assert_eq!(r("page/x", "zh-CN"), ("zh".into(), "zh".into()));
    assert_eq!(r("page/y", "zh-CN"), ("zh-CN".into(), "zh-CN".into()));
    assert_eq!(r("page/y", "ZH_cn"), ("zh-CN".into(), "zh-CN".into()));
    assert_eq!(r("page/y", "zh-TW"), ("zh".into(), "zh".into()));
    assert_eq!(r("page/y", "fr-FR"), ("en".into(), "en".into()));
    assert_eq!(t.locales("page/y"), ["en", "zh", "zh-CN"]);
    assert_eq!(t.names(), ["page/x", "page/y"]);
}

#[test]
fn no_version_and_unknown_template_are_clear() {
    let (_d, t) = load(&[("page/x.zh-CN.hbs", "{{!-- sms --}}\nzh\n")]);
    let e = t
        .render("page/x", ChannelKind::Sms, "fr", &json!({}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no version for fr → en (it has zh-CN): add page/x.en.hbs"),
        "{e}"
    );
    let e = t
        .render("page/nope", ChannelKind::Sms, "en", &json!({}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no template `page/nope`; the templates are: page/x"),
        "{e}"
    );
}

#[test]
fn html_is_escaped_and_text_sms_are_not() {
    let (_d, t) = load(&[(
        "notice/n.en.hbs",
        "{{!-- subject --}}\n{{t}}\n{{!-- text --}}\n{{t}}\n{{!-- html --}}\n<p>{{t}}</p>\n{{!-- sms --}}\n{{t}} {{mask p}}\n",
    )]);
    let data = json!({"t": "Tom & <Jerry> \"quoted\"", "p": "a<b@example.com"});
    let c = t
        .render("notice/n", ChannelKind::Email, "en", &data)
        .unwrap();
    assert_eq!(c.subject.as_deref(), Some("Tom & <Jerry> \"quoted\""));
    assert_eq!(c.text, "Tom & <Jerry> \"quoted\"");
    assert_eq!(
        c.html.as_deref(),
        Some("<p>Tom &amp; &lt;Jerry&gt; &quot;quoted&quot;</p>")
    );
    assert_eq!(c.template.as_deref(), Some("notice/n"));
    let c = t.render("notice/n", ChannelKind::Sms, "en", &data).unwrap();
    assert_eq!(c.text, "Tom & <Jerry> \"quoted\" a***@example.com");
    assert_eq!(c.subject, None);
}

#[test]
fn helper_output_is_escaped_in_html() {
    let (_d, t) = load(&[(
        "notice/n.en.hbs",
        "{{!-- subject --}}\ns\n{{!-- text --}}\n{{mask e}}\n{{!-- html --}}\n{{mask e}}\n",
    )]);
    let c = t
        .render(
            "notice/n",
            ChannelKind::Email,
            "en",
            &json!({"e": "x@a<b>.com"}),
        )
        .unwrap();
    assert_eq!(c.text, "x***@a<b>.com");
    assert_eq!(c.html.as_deref(), Some("x***@a&lt;b&gt;.com"));
}

#[test]
fn a_missing_variable_names_the_variable_file_and_line() {
    let (d, t) = load(&[(
        "notice/n.en.hbs",
        "{{!-- A comment line. --}}\n{{!-- subject --}}\nHi\n{{!-- text --}}\nline one\nDear {{recipient.nmae}},\n",
    )]);
    let e = t
        .render(
            "notice/n",
            ChannelKind::Email,
            "en",
            &json!({"recipient": {"name": "A"}}),
        )
        .unwrap_err();
    let file = d.path().join("notice/n.en.hbs");
    assert_eq!(
        e,
        RenderError::Template {
            file: file.clone(),
            line: Some(6),
            part: Part::Text,
            problem: "`recipient.nmae` is not in the data (strict mode): check the spelling; the data has recipient (see the render module docs for their fields)".into(),
        }
    );
    assert!(
        e.to_string().starts_with(&format!(
            "{}:6: `recipient.nmae` is not in the data",
            file.display()
        )),
        "{e}"
    );
}

#[test]
fn strict_if_refuses_a_misspelt_path_but_accepts_null() {
    let (_d, t) = load(&[(
        "page/p.en.hbs",
        "{{!-- sms --}}\n{{#if facts.cause}}cause: {{facts.cause}}{{else}}no cause{{/if}}\n{{#unless facts.casue}}x{{/unless}}\n",
    )]);
    let e = t
        .render(
            "page/p",
            ChannelKind::Sms,
            "en",
            &json!({"facts": {"cause": null}}),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains(":3: `facts.casue` is not in the data"), "{e}");
    let (_d, t) = load(&[(
        "page/p.en.hbs",
        "{{!-- sms --}}\n{{#if facts.cause}}cause: {{facts.cause}}{{else}}no cause{{/if}}\n",
    )]);
    let c = t
        .render(
            "page/p",
            ChannelKind::Sms,
            "en",
            &json!({"facts": {"cause": null}}),
        )
        .unwrap();
    assert_eq!(c.text, "no cause");
    let c = t
        .render(
            "page/p",
            ChannelKind::Sms,
            "en",
            &json!({"facts": {"cause": "x"}}),
        )
        .unwrap();
    assert_eq!(c.text, "cause: x");
}

#[test]
fn datetime_shows_the_configured_time_zone() {
    let (_d, t) = load(&[(
        "page/p.en.hbs",
        "{{!-- sms --}}\n{{datetime at}}|{{datetime epoch}}|{{datetime at \"%Y年%m月%d日 %H:%M\"}}\n",
    )]);
    let c = t
        .render(
            "page/p",
            ChannelKind::Sms,
            "en",
            &json!({"at": "2025-06-01T06:30:00Z", "epoch": 1_748_759_400}),
        )
        .unwrap();
    assert_eq!(
        c.text,
        "2025-06-01 14:30 (UTC+08:00)|2025-06-01 14:30 (UTC+08:00)|2025年06月01日 14:30"
    );
    // Another zone from the configuration.
    let d = dir_with(&[("page/p.en.hbs", "{{!-- sms --}}\n{{datetime at}}\n")]);
    let cfg = RenderConfig {
        time_zone: "Europe/Berlin".into(),
        ..RenderConfig::default()
    };
    let t2 = Templates::load(d.path(), &cfg).unwrap();
    let c = t2
        .render(
            "page/p",
            ChannelKind::Sms,
            "en",
            &json!({"at": "2025-01-15T12:00:00Z"}),
        )
        .unwrap();
    assert_eq!(c.text, "2025-01-15 13:00 (UTC+01:00)");
}

#[test]
fn datetime_refuses_what_is_not_a_time() {
    let (_d, t) = load(&[
        ("page/a.en.hbs", "{{!-- sms --}}\n{{datetime at}}\n"),
        ("page/b.en.hbs", "{{!-- sms --}}\n{{datetime at \"%Q\"}}\n"),
    ]);
    let e = t
        .render(
            "page/a",
            ChannelKind::Sms,
            "en",
            &json!({"at": "yesterday"}),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("datetime: `at` is `yesterday`, not an RFC 3339 time"),
        "{e}"
    );
    let e = t
        .render("page/a", ChannelKind::Sms, "en", &json!({"at": null}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("datetime: `at` is empty (null)"), "{e}");
    let e = t
        .render("page/a", ChannelKind::Sms, "en", &json!({}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`at` is not in the data"), "{e}");
    let e = t
        .render(
            "page/b",
            ChannelKind::Sms,
            "en",
            &json!({"at": "2025-06-01T06:30:00Z"}),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("`%Q` is not a valid strftime format"), "{e}");
}

#[test]
fn unknown_time_zone_is_a_load_error() {
    let d = dir_with(&[("page/p.en.hbs", "{{!-- sms --}}\nx\n")]);
    let cfg = RenderConfig {
        time_zone: "Asia/Shangai".into(),
        ..RenderConfig::default()
    };
    let e = Templates::load(d.path(), &cfg).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("render.time_zone: `Asia/Shangai` is not an IANA time zone name"),
        "{e:?}"
    );
}

#[test]
fn masking_phones_and_emails() {
    let (_d, t) = load(&[(
        "page/p.en.hbs",
        "{{!-- sms --}}\n{{mask phone}} {{mask email}} {{mask email \"phone\"}}\n",
    )]);
    let c = t
        .render(
            "page/p",
            ChannelKind::Sms,
            "en",
            &json!({"phone": "+8613812345678", "email": "zhangsan@example.com"}),
        )
        .unwrap();
    assert_eq!(
        c.text,
        "+86138****5678 z***@example.com zhangs**********.com"
    );
}

#[test]
fn required_and_label_helpers() {
    let (_d, t) = load(&[
        (
            "notice/n.zh-CN.hbs",
            "{{!-- sms --}}\n{{label incident.category \"zh-CN\"}}：{{label incident.facts.data_types \"zh-CN\"}}；{{required incident.facts.remedies}}\n",
        ),
        (
            "notice/n.en.hbs",
            "{{!-- sms --}}\n{{label incident.category \"en\"}}: {{label incident.facts.data_types \"en\"}}; {{required incident.facts.remedies}}\n",
        ),
    ]);
    let mut data = sample_context(&org());
    let c = t
        .render("notice/n", ChannelKind::Sms, "zh-CN", &data)
        .unwrap();
    assert!(
        c.text
            .starts_with("个人信息泄露：姓名、手机号码、电子邮箱地址；我们为受影响用户"),
        "{}",
        c.text
    );
    let c = t.render("notice/n", ChannelKind::Sms, "en", &data).unwrap();
    assert!(
        c.text
            .starts_with("personal information leak: name, phone number, e-mail address; "),
        "{}",
        c.text
    );
    data["incident"]["facts"]["remedies"] = Value::Null;
    let e = t
        .render("notice/n", ChannelKind::Sms, "en", &data)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`incident.facts.remedies` is empty and this message cannot go out without it: fill it in (incidentd facts <id> --set remedies=…)"),
        "{e}"
    );
}

#[test]
fn every_category_status_and_data_type_has_words() {
    for code in crate::domain::facts::DATA_TYPES {
        assert!(helpers::has_label(code), "{code}");
    }
    for c in [
        "pi_leak",
        "pi_damage",
        "pi_loss",
        "information_destruction",
        "vulnerability",
        "malware",
        "network_attack",
        "intrusion",
        "content_security",
        "equipment_fault",
        "disaster",
        "other",
    ] {
        assert!(c.parse::<crate::domain::Category>().is_ok(), "{c}");
        assert!(helpers::has_label(c), "{c}");
    }
}

#[test]
fn parse_errors_name_file_line_and_problem() {
    let e = load_err(&[(
        "page/p.en.hbs",
        "{{!-- subject --}}\nok\n{{!-- text --}}\nfine\n{{#if x}}\nnever closed\n",
    )]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("page/p.en.hbs:"), "{e:?}");
    assert!(e[0].contains("(in the text part)"), "{e:?}");
}

#[test]
fn a_syntax_error_points_at_its_line() {
    let e = load_err(&[(
        "page/p.en.hbs",
        "{{!-- subject --}}\nok\n{{!-- text --}}\nline a\nline b {{incident.title}\n",
    )]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("page/p.en.hbs:5:"), "{e:?}");
}

#[test]
fn file_layout_problems_are_listed_together() {
    let e = load_err(&[
        ("loose.en.hbs", SIMPLE),
        ("page/NoLocale.hbs", SIMPLE),
        ("page/x.english.hbs", SIMPLE),
        ("page/deep/x.en.hbs", SIMPLE),
        ("page/ok.en.hbs", SIMPLE),
        ("page/ok.zh-CN.hbs", "{{!-- subject --}}\n你好\n"),
        ("page/README.md", "not a template"),
    ]);
    let all = e.join("\n");
    assert!(all.contains("loose.en.hbs: not in a kind folder"), "{all}");
    assert!(
        all.contains("NoLocale.hbs: template files are named"),
        "{all}"
    );
    assert!(
        all.contains("x.english.hbs: template files are named"),
        "{all}"
    );
    assert!(all.contains("deep: templates are one folder deep"), "{all}");
    assert!(
        all.contains("ok.zh-CN.hbs: has parts [subject] but"),
        "{all}"
    );
    assert_eq!(e.len(), 5, "{all}");
}

#[test]
fn a_missing_folder_says_where_to_set_it() {
    let e = Templates::load(
        Path::new("/nonexistent/templates"),
        &RenderConfig::default(),
    )
    .unwrap_err();
    assert!(
        e[0].contains("/nonexistent/templates: cannot read the templates folder"),
        "{e:?}"
    );
}

#[test]
fn channels_take_the_parts_they_need() {
    let (_d, t) = load(&[
        ("page/sms_only.en.hbs", "{{!-- sms --}}\nsms\n"),
        (
            "page/full.en.hbs",
            "{{!-- subject --}}\nS\n{{!-- text --}}\nT\n{{!-- voice --}}\nV\n{{!-- params --}}\nid={{id}}\n\ntitle = {{title}}\n",
        ),
    ]);
    assert_eq!(
        t.channels("page/sms_only"),
        [ChannelKind::Sms, ChannelKind::Voice]
    );
    let e = t
        .render("page/sms_only", ChannelKind::Email, "en", &json!({}))
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("sms_only.en.hbs: cannot be sent by email: it needs a subject and a text part ({{!-- subject --}}, {{!-- text --}})"),
        "{e}"
    );
    let data = json!({"id": 42, "title": "a=b"});
    let c = t
        .render("page/full", ChannelKind::Sms, "en", &data)
        .unwrap();
    assert_eq!(c.text, "T", "sms falls back to text");
    assert_eq!(c.params.get("id").map(String::as_str), Some("42"));
    assert_eq!(c.params.get("title").map(String::as_str), Some("a=b"));
    let c = t
        .render("page/full", ChannelKind::Voice, "en", &data)
        .unwrap();
    assert_eq!(c.text, "V");
    let c = t
        .render("page/full", ChannelKind::Webhook, "en", &data)
        .unwrap();
    assert_eq!(c.subject.as_deref(), Some("S"));
    assert_eq!(c.data.unwrap()["title"], "S");
    let c = t
        .render("page/full", ChannelKind::Email, "en", &data)
        .unwrap();
    assert!(c.params.is_empty() && c.html.is_none());
}

/// Issue #17 M3: a value with line breaks and `key=value` in it stays that one parameter's
/// value; the keys are the template's.
#[test]
fn params_are_built_as_data_and_a_value_cannot_add_or_change_another() {
    let (_d, t) = load(&[(
        "page/p.en.hbs",
        "{{!-- sms --}}\n[{{severity}}] {{title}}\n{{!-- params --}}\nid={{id}}\n{{! a comment line }}\nseverity={{severity}}\ntitle={{title}}\n",
    )]);
    let data = json!({"id": 12, "severity": "S1", "title": "拖库 x\nid=999\nseverity=S4"});
    let c = t.render("page/p", ChannelKind::Sms, "en", &data).unwrap();
    let want: BTreeMap<String, String> = [
        ("id", "12"),
        ("severity", "S1"),
        ("title", "拖库 x id=999 severity=S4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(c.params, want);
}

#[test]
fn params_lines_are_checked_when_loading() {
    let e = load_err(&[(
        "page/p.en.hbs",
        "{{!-- sms --}}\nx\n{{!-- params --}}\nid={{id}}\njust text\nbad key=1\nid=2\n",
    )]);
    let e = e.join("\n");
    assert!(
        e.contains("p.en.hbs:5: `just text` is not key=value"),
        "{e}"
    );
    assert!(
        e.contains("p.en.hbs:6: `bad key` is not a parameter name"),
        "{e}"
    );
    let e = load_err(&[(
        "page/p.en.hbs",
        "{{!-- sms --}}\nx\n{{!-- params --}}\nid={{id}}\nid=2\nd={{#if x}}y\n",
    )])
    .join("\n");
    assert!(
        e.contains("p.en.hbs:5: the parameter `id` is given twice"),
        "{e}"
    );
    assert!(
        e.contains("p.en.hbs:6:") && e.contains("must close on the line it opens"),
        "{e}"
    );
}

#[test]
fn text_is_tidied_and_subjects_are_one_line() {
    let (_d, t) = load(&[(
        "notice/n.en.hbs",
        "{{!-- subject --}}\n  Line one\n  line two  \n{{!-- text --}}\n\nA  \n{{#if no}}\nhidden\n{{/if}}\n\n\nB\n\n",
    )]);
    let c = t
        .render("notice/n", ChannelKind::Email, "en", &json!({"no": false}))
        .unwrap();
    assert_eq!(c.subject.as_deref(), Some("Line one line two"));
    assert_eq!(c.text, "A\n\nB");
}

#[test]
fn shipped_templates_render_cleanly_for_the_sample() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let cfg = RenderConfig::default();
    let t = Templates::load(&dir, &cfg).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(t.names().contains(&"page/incident_opened"));
    assert!(t.names().contains(&"notice/pi_leak"));
    let data = sample_context(&org());
    let report = t.check(&data, cfg.sms_max_segments);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert!(report.warnings.is_empty(), "{:#?}", report.warnings);
    for name in ["page/incident_opened", "notice/pi_leak"] {
        assert_eq!(t.locales(name), ["en", "zh-CN"], "{name}");
    }
    assert_eq!(
        t.channels("page/incident_opened"),
        ChannelKind::ALL.to_vec(),
        "a page can go out by any channel"
    );
}

#[test]
fn the_shipped_notice_says_what_the_law_asks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let t = Templates::load(&dir, &RenderConfig::default()).unwrap();
    let data = sample_context(&org());
    let f = &data["incident"]["facts"];
    for (locale, types) in [
        ("zh-CN", "姓名、手机号码、电子邮箱地址"),
        ("en", "name, phone number, e-mail address"),
    ] {
        for channel in [ChannelKind::Email, ChannelKind::Inbox] {
            let c = t.render("notice/pi_leak", channel, locale, &data).unwrap();
            // PIPL art. 57 / GB/T 35273 §10: kinds of PI, cause, possible harm, measures,
            // what people can do, remedies, contact.
            for needle in [
                types,
                f["cause"].as_str().unwrap(),
                f["impact"].as_str().unwrap(),
                f["measures_taken"].as_str().unwrap(),
                f["advice_to_subjects"].as_str().unwrap(),
                f["remedies"].as_str().unwrap(),
                "privacy@example.com",
                "Example Co.",
            ] {
                assert!(
                    c.text.contains(needle),
                    "{locale} {channel}: `{needle}` missing:\n{}",
                    c.text
                );
            }
        }
        let c = t
            .render("notice/pi_leak", ChannelKind::Sms, locale, &data)
            .unwrap();
        assert!(c.text.contains("privacy@example.com"), "{}", c.text);
        assert!(sms_segments(&c.text).segments <= 3, "{}", c.text);
    }
    let c = t
        .render("notice/pi_leak", ChannelKind::Email, "zh-CN", &data)
        .unwrap();
    assert!(c.html.unwrap().contains("<li>"));
    // A drill says so everywhere.
    let mut drill = data.clone();
    drill["incident"]["drill"] = json!(true);
    for channel in [ChannelKind::Email, ChannelKind::Sms, ChannelKind::Voice] {
        let c = t
            .render("page/incident_opened", channel, "zh-CN", &drill)
            .unwrap();
        let all = format!("{:?}{}", c.subject, c.text);
        assert!(all.contains("演练"), "{channel}: {all}");
    }
}
