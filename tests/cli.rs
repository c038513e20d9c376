//! The real binary: --help, check, token, migrate, the client commands against `serve`,
//! SIGHUP reload, SIGTERM shutdown and `audit verify`.

use crate::common;
use common::Daemon;

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_incidentd");

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("INCIDENTD_TOKEN")
        .env_remove("INCIDENTD_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn setup(dir: &Path) -> String {
    std::fs::copy(
        common::repo().join("config/classification.toml"),
        dir.join("classification.toml"),
    )
    .unwrap();
    let config = dir.join("incidentd.toml");
    std::fs::write(
        &config,
        common::config_text("sqlite://state/incidentd.db", ""),
    )
    .unwrap();
    config.display().to_string()
}

#[test]
fn help_teaches() {
    let o = run(&["--help"], &[]);
    assert!(o.status.success());
    let t = text(&o);
    for needle in [
        "Getting started",
        "incidentd serve --config",
        "INCIDENTD_TOKEN",
        "audit",
        "transition",
    ] {
        assert!(t.contains(needle), "{needle} missing from --help:\n{t}");
    }
    let o = run(&["transition", "--help"], &[]);
    assert!(
        text(&o).contains("detected → triaged → contained"),
        "{}",
        text(&o)
    );
}

#[test]
fn check_names_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let o = run(&["check", "--config", &config], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("is valid"));
    // The repository's own example is valid.
    let example = common::repo().join("config/incidentd.toml");
    let o = run(&["check", "--config", example.to_str().unwrap()], &[]);
    assert!(
        o.status.success(),
        "config/incidentd.toml must stay a working example: {}",
        text(&o)
    );
    // Broken: an unknown key, and an env override of the wrong type.
    let bad = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[store]", "[store]\npool = 3");
    std::fs::write(&config, bad).unwrap();
    let o = run(&["check", "--config", &config], &[]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains(&format!("{config}: store.pool: unknown field `pool`")),
        "{t}"
    );
    let o = run(&["check", "--config", "/nonexistent/incidentd.toml"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("/nonexistent/incidentd.toml: cannot read the configuration"));
}

#[test]
fn token_new_prints_a_working_config_entry() {
    let o = run(
        &[
            "token", "new", "--name", "grafana", "--role", "ingest", "--role", "viewer",
        ],
        &[],
    );
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    let token = out
        .lines()
        .next()
        .unwrap()
        .strip_prefix("token: ")
        .unwrap()
        .to_string();
    assert!(token.starts_with("idt_") && token.len() > 40);
    let snippet = &out[out.find("[[auth.tokens]]").unwrap()..];
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let mut text_ = std::fs::read_to_string(&config).unwrap();
    text_.push_str(snippet);
    std::fs::write(&config, text_).unwrap();
    let o = run(&["check", "--config", &config], &[]);
    assert!(text(&o).contains("grafana [ingest,viewer]"), "{}", text(&o));
    let mut c = Command::new(BIN)
        .args(["token", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{token}\n").as_bytes())
        .unwrap();
    let hashed = String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap();
    assert!(snippet.contains(hashed.trim()));
}

/// The daemon as a child process, and the CLI as its client.
fn client(d: &Daemon, args: &[&str], token: &str) -> Output {
    run(
        args,
        &[("INCIDENTD_URL", &d.url("")), ("INCIDENTD_TOKEN", token)],
    )
}

#[test]
fn serve_clients_reload_shutdown_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let o = run(&["migrate", "--config", &config], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        dir.path().join("state/incidentd.db").exists(),
        "relative SQLite paths are relative to the config"
    );

    let mut d = Daemon::start(Path::new(&config));
    let o = client(
        &d,
        &[
            "alert",
            "--title",
            "用户数据库疑似被拖库",
            "--label",
            "severity=info",
        ],
        common::INGEST,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("opened (incident 1)"), "{}", text(&o));
    let o = client(&d, &["incidents", "list", "--open"], common::VIEWER);
    let t = text(&o);
    assert!(
        t.contains("S1") && t.contains("pi_leak") && t.contains("用户数据库疑似被拖库"),
        "{t}"
    );
    let o = client(
        &d,
        &[
            "facts",
            "1",
            "--set",
            "affected_subjects=1200",
            "--set",
            "data_types=phone,id_number",
        ],
        common::RESPONDER,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = client(&d, &["transition", "1", "contained"], common::RESPONDER);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("409 Conflict: cannot move an incident from `detected` to `contained`"),
        "{}",
        text(&o)
    );
    let o = client(
        &d,
        &["transition", "1", "triaged", "--note", "on it"],
        common::RESPONDER,
    );
    assert!(
        text(&o).contains("incident 1 is now triaged"),
        "{}",
        text(&o)
    );
    let o = client(&d, &["incidents", "show", "1"], common::VIEWER);
    let t = text(&o);
    for needle in [
        "Incident 1 — 用户数据库疑似被拖库",
        "affected_subjects",
        "1200",
        "phone, id_number",
        "incident.transitioned",
        "detected → triaged  on it",
    ] {
        assert!(t.contains(needle), "{needle} missing:\n{t}");
    }
    let o = client(&d, &["incidents", "show", "1", "--json"], common::VIEWER);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["facts"]["affected_subjects"], 1200);

    // Deliveries: an operator's test send goes end to end; a channel not configured dies with
    // the reason; the listing shows what went out for an incident.
    let o = client(
        &d,
        &["send-test", "--channel", "inbox", "--to", "cli-check"],
        common::ADMIN,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("sent via inbox to c*******k"),
        "{}",
        text(&o)
    );
    let o = client(
        &d,
        &["send-test", "--channel", "sms", "--to", "+8613800000000"],
        common::ADMIN,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("add [channels.sms]"), "{}", text(&o));
    let o = client(
        &d,
        &["send-test", "--channel", "sms", "--to", "12345"],
        common::ADMIN,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("phone number"), "{}", text(&o));
    let o = client(&d, &["deliveries", "1"], common::VIEWER);
    assert!(text(&o).contains("deliveries: none"), "{}", text(&o));
    let o = client(
        &d,
        &[
            "declare",
            "--title",
            "Drill: bucket exposed",
            "--category",
            "pi_leak",
            "--drill",
            "--fact",
            "affected_subjects=10",
        ],
        common::RESPONDER,
    );
    assert!(text(&o).contains("declared incident 2"), "{}", text(&o));
    let o = run(&["incidents", "list"], &[("INCIDENTD_URL", &d.url(""))]);
    assert!(
        text(&o).contains("401 Unauthorized") && text(&o).contains("set INCIDENTD_TOKEN"),
        "{}",
        text(&o)
    );

    // SIGHUP: a new rule takes effect without a restart.
    let rules = dir.path().join("classification.toml");
    let mut r = std::fs::read_to_string(&rules).unwrap();
    r.push_str("\n[[rules]]\nname = \"kraken\"\ncategory = \"malware\"\ntext = \"kraken\"\n");
    std::fs::write(&rules, r).unwrap();
    d.signal("-HUP");
    common::wait_for_blocking("the new rule after SIGHUP", 5, || {
        text(&client(
            &d,
            &[
                "alert",
                "--title",
                "kraken",
                "--fingerprint",
                &format!("k{}", rand_suffix()),
            ],
            common::INGEST,
        ))
        .contains("opened")
    });

    d.signal("-TERM");
    assert!(d.exit_status(15).success(), "SIGTERM is a clean stop");

    let o = run(&["audit", "verify", "--config", &config], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("audit trail intact"), "{}", text(&o));
    // Tamper behind its back.
    let db = dir.path().join("state/incidentd.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER events_append_only_update; UPDATE events SET actor = 'token:someone-else' WHERE id = 3")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let o = run(&["audit", "verify", "--config", &config], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("audit trail BROKEN at event 3"),
        "{}",
        text(&o)
    );
    let o = run(&["audit", "verify", "--config", &config, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["broken_at"], 3);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// `incidentd … | head`: a reader that goes away ends the command quietly (status 141, as for
/// SIGPIPE), not with a panic.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(BIN)
        .args(["token", "new", "--name", "someone", "--role", "viewer"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(141), "{err}");
}
