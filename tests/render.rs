//! The real binary: `render --sample` for the shipped templates, and `check` refusing a broken
//! template with its file, line and problem.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_incidentd");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("INCIDENTD_TOKEN")
        .env_remove("INCIDENTD_URL")
        .env_remove("INCIDENTD_CONFIG")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn repo() -> PathBuf {
    common::repo().to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A config in a temporary folder whose `paths.templates` is a copy of the shipped templates.
fn setup(extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("config/classification.toml"),
        dir.path().join("classification.toml"),
    )
    .unwrap();
    copy_dir(&repo().join("templates"), &dir.path().join("my-templates"));
    let config = dir.path().join("incidentd.toml");
    let extra = format!("[paths]\ntemplates = \"my-templates\"\n{extra}");
    std::fs::write(
        &config,
        common::config_text("sqlite://state/incidentd.db", &extra),
    )
    .unwrap();
    (dir, config.display().to_string())
}

#[test]
fn render_sample_shows_the_shipped_notice_and_its_sms_segments() {
    let config = repo().join("config/incidentd.toml");
    let config = config.to_str().unwrap();
    let o = run(&[
        "render",
        "notice/pi_leak",
        "--sample",
        "--channel",
        "sms",
        "--config",
        config,
    ]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    let t = out(&o);
    for needle in [
        "notice/pi_leak · sms · zh-CN",
        "templates/notice/pi_leak.zh-CN.hbs",
        "【Example Co.】您的姓名、手机号码、电子邮箱地址可能因安全事件受到影响",
        // The link to the full notice (a campaign sets the real one).
        "详见：https://incidents.example.com/announcements/2025-06-01-member-backup 咨询：",
        "privacy@example.com",
        "── sms: UCS-2, 171 units, 3 segments (one message holds 70, split parts 67; limit 3)",
        "params: contact=privacy@example.com",
    ] {
        assert!(t.contains(needle), "`{needle}` missing:\n{t}");
    }
    assert!(
        err(&o).is_empty(),
        "no warning within the limit: {}",
        err(&o)
    );

    // Every channel by default; English by request; JSON is the stored Content.
    let o = run(&[
        "render",
        "page/incident_opened",
        "--sample",
        "--locale",
        "en-GB",
        "--json",
        "--config",
        config,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let channels: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["email", "sms", "voice", "inbox"]);
    let email = &v[0];
    assert_eq!(email["locale"], "en");
    assert_eq!(
        email["content"]["subject"],
        "[S1] Security incident #42: 会员数据库备份文件遭未授权访问"
    );
    assert!(
        email["content"]["text"]
            .as_str()
            .unwrap()
            .contains("Discovered: 2025-06-01 14:05 (UTC+08:00)"),
        "{email}"
    );
    assert_eq!(email["content"]["template"], "page/incident_opened");
    assert_eq!(v[1]["sms"]["encoding"], "ucs2");
    assert_eq!(v[1]["content"]["params"]["id"], "42");
}

#[test]
fn render_warns_past_the_segment_limit_and_refuses_unknown_templates() {
    let (_dir, config) = setup("[render]\nsms_max_segments = 1\n");
    let o = run(&[
        "render",
        "notice/pi_leak",
        "--sample",
        "--channel",
        "sms",
        "--config",
        &config,
    ]);
    assert_eq!(o.status.code(), Some(0), "a warning, not a failure");
    assert!(
        err(&o).contains(
            "pi_leak.zh-CN.hbs: the SMS takes 3 segments, more than render.sms_max_segments = 1"
        ),
        "{}",
        err(&o)
    );
    let o = run(&["render", "notice/nope", "--sample", "--config", &config]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("there is no template `notice/nope`")
            && err(&o).contains("notice/pi_leak, page/digest, page/incident_opened"),
        "{}",
        err(&o)
    );
    let o = run(&["render", "notice/pi_leak", "--config", &config]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--sample or --incident is required"
    );
}

#[test]
fn check_renders_every_template_and_names_a_broken_one() {
    let (dir, config) = setup("");
    let o = run(&["check", "--config", &config]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(
            "(13 templates, 36 renderings against the sample incident, times in Asia/Shanghai)"
        ),
        "{}",
        out(&o)
    );

    // A misspelt variable: found only by rendering, reported with file and line.
    let file = dir.path().join("my-templates/notice/pi_leak.en.hbs");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replace("Dear {{recipient.name}},", "Dear {{recipient.nmae}},");
    assert_ne!(text, broken);
    std::fs::write(&file, &broken).unwrap();
    let line = broken
        .lines()
        .position(|l| l.contains("recipient.nmae"))
        .unwrap()
        + 1;
    let o = run(&["check", "--config", &config]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let e = err(&o);
    assert!(
        e.contains(&format!(
            "{}:{line}: `recipient.nmae` is not in the data (strict mode)",
            file.display()
        )),
        "{e}"
    );

    // A syntax error: refused when loading, with file and line.
    let broken = text.replacen("Dear {{recipient.name}},", "Dear {{recipient.name},", 1);
    std::fs::write(&file, &broken).unwrap();
    let o = run(&["check", "--config", &config]);
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(e.contains("the templates are not valid (1 problem)"), "{e}");
    assert!(
        e.contains(&format!("{}:{line}:", file.display())) && e.contains("(in the text part)"),
        "{e}"
    );

    // A bad time zone.
    std::fs::write(&file, &text).unwrap();
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str("[render]\ntime_zone = \"Mars/Olympus\"\n");
    std::fs::write(&config, c).unwrap();
    let o = run(&["check", "--config", &config]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("render.time_zone: `Mars/Olympus` is not an IANA time zone name"),
        "{}",
        err(&o)
    );
}

#[test]
fn check_refuses_a_notice_missing_required_content() {
    let (dir, config) = setup("");
    let file = dir.path().join("my-templates/notice/pi_leak.en.hbs");
    let text = std::fs::read_to_string(&file).unwrap();
    // The text part loses the remedies and the contact; the SMS loses its link.
    let text_start = text.find("{{!-- text --}}").unwrap();
    let html_start = text.find("{{!-- html --}}").unwrap();
    let part = &text[text_start..html_start];
    let stripped = part
        .replace("{{required incident.facts.remedies}}", "")
        .replace(
            "{{#if incident.facts.contact}}{{incident.facts.contact}}{{else}}{{org.contact}}{{/if}}",
            "our help desk",
        );
    let broken = format!("{}{stripped}{}", &text[..text_start], &text[html_start..])
        .replace("Full notice: {{required notice.url}} ", "");
    assert_ne!(text, broken);
    std::fs::write(&file, &broken).unwrap();
    let o = run(&["check", "--config", &config]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let e = err(&o);
    let f = file.display();
    for want in [
        "error: 2 notice content problems".to_string(),
        format!(
            "{f}: text: missing the remedies offered / 提供的补救方式 (incident.facts.remedies); \
             the contact of the personal-information protection officer / 个人信息保护负责人的联系方式 \
             (incident.facts.contact or org.contact)"
        ),
        format!("{f}: sms: no link to the full notice"),
    ] {
        assert!(e.contains(&want), "`{want}` not in:\n{e}");
    }
    // The Chinese version is fine and not named.
    assert!(!e.contains("pi_leak.zh-CN.hbs"), "{e}");
    // Restored, it passes and says so.
    std::fs::write(&file, &text).unwrap();
    let o = run(&["check", "--config", &config]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("notice content  notice/pi_leak complete"),
        "{}",
        out(&o)
    );
}

#[test]
fn render_help_teaches() {
    let o = run(&["render", "--help"]);
    assert!(o.status.success());
    let t = out(&o);
    for needle in [
        "incidentd render notice/pi_leak --sample",
        "--incident 42",
        "zh-CN → zh → en",
        "GSM-7: 160",
        "sms_max_segments",
    ] {
        assert!(t.contains(needle), "`{needle}` missing:\n{t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn render_incident_fetches_it_from_the_daemon() {
    let app = common::TestApp::spawn(common::Backend::Sqlite)
        .await
        .unwrap();
    let v = app
        .declare(&serde_json::json!({
            "title": "Backup bucket exposed",
            "category": "pi_leak",
            "facts": {"affected_subjects": 10, "data_types": ["phone"], "cause": "A misconfigured bucket."},
        }))
        .await;
    let id = v["id"].to_string();
    let (_dir, config) = setup("");
    let url = app.url("");
    let render = move |template: &'static str, channel: &'static str| {
        let (config, url, id) = (config.clone(), url.clone(), id.clone());
        Command::new(BIN)
            .args([
                "render",
                template,
                "--incident",
                &id,
                "--channel",
                channel,
                "--locale",
                "en",
                "--config",
                &config,
            ])
            .env("INCIDENTD_URL", url)
            .env("INCIDENTD_TOKEN", common::VIEWER)
            .output()
            .unwrap()
    };
    let r = render.clone();
    let o = tokio::task::spawn_blocking(move || r("page/incident_opened", "sms"))
        .await
        .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains(&format!("S1 incident #{}: Backup bucket exposed.", v["id"])),
        "{}",
        out(&o)
    );
    // The notice needs facts this incident does not have yet: refused, naming the fact.
    let o = tokio::task::spawn_blocking(move || render("notice/pi_leak", "email"))
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let e = err(&o);
    assert!(
        e.contains("notice/pi_leak.en.hbs:")
            && e.contains("`incident.facts.impact` is empty and this message cannot go out without it: fill it in (incidentd facts <id> --set impact=…)"),
        "{e}"
    );
}
