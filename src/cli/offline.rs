//! Commands that work on the configuration and database directly.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Context;
use tracing::info;

use super::TokenCommand;
use crate::config::{self, Settings};
use crate::server::{Server, notify_systemd, shutdown_signal, spawn_reload_on_sighup};
use crate::store::{self, Store};

pub(super) fn load(path: &Path) -> anyhow::Result<Settings> {
    config::load(path).map_err(|e| {
        anyhow::anyhow!(
            "the configuration is not valid ({} problem{}):\n{e}",
            e.problems.len(),
            if e.problems.len() == 1 { "" } else { "s" }
        )
    })
}

pub async fn serve(path: &Path) -> anyhow::Result<i32> {
    let settings = load(path)?;
    crate::telemetry::init_logging(&settings.log);
    let _ = crate::telemetry::prometheus();
    info!(
        config = %path.display(),
        store = %store::describe(&settings),
        rules = settings.rules.len(),
        tokens = settings.tokens.len(),
        "starting incidentd {}",
        env!("CARGO_PKG_VERSION")
    );
    if settings.tokens.is_empty() {
        tracing::warn!("no [[auth.tokens]] configured: every API call will be refused (401)");
    }
    if !settings.trial_secrets.is_empty() {
        tracing::warn!(
            secrets = %settings.trial_secrets.join(", "),
            "the public trial secrets of the example configuration are in use: replace them before incidentd sees real data"
        );
    }
    let server = Server::build(settings).await?;
    let addr = server.local_addr();
    info!(%addr, "listening on http://{addr}");
    spawn_reload_on_sighup(server.reloader());
    notify_systemd(server.store().clone(), addr);
    server.run_until(shutdown_signal()).await?;
    Ok(0)
}

pub fn check(path: &Path) -> anyhow::Result<i32> {
    let s = load(path)?;
    println!("{} is valid", path.display());
    println!("  listen          {}", s.server.listen);
    println!("  store           {}", store::describe(&s));
    println!(
        "  classification  {} ({} rules)",
        s.classification_path.display(),
        s.rules.len()
    );
    if !s.heartbeats.is_empty() {
        println!("  heartbeats      {}", heartbeats_line(&s));
    }
    println!("  tokens          {}", tokens_line(&s));
    if !s.trial_secrets.is_empty() {
        trial_secrets_warning(&s);
    }
    println!("  channels        {}", channels_line(&s));
    println!(
        "  subjects        {}; contacts purged {} after an incident closes",
        match &s.subject_keys {
            Some(k) => format!("contacts encrypted with key `{}`", k.current_id()),
            None => "no [subjects] key: subject imports are refused".into(),
        },
        s.subjects.retention
    );
    let (templates_ok, templates) = super::render::check_templates(&s);
    if !s.departments.is_empty() {
        check_paging(&s, templates.as_ref());
    }
    let playbooks_ok = templates.as_ref().is_some_and(|t| check_playbooks(&s, t));
    let packs_ok = templates.as_ref().is_some_and(|t| check_packs(&s, t));
    let drills_ok = templates.as_ref().is_some_and(|t| check_drills(&s, t));
    Ok(if templates_ok && playbooks_ok && packs_ok && drills_ok {
        0
    } else {
        1
    })
}

/// Each heartbeat: its interval and grace, how it beats, the severity it raises.
fn heartbeats_line(s: &Settings) -> String {
    let list: Vec<String> = s
        .heartbeats
        .all()
        .iter()
        .map(|b| {
            let every = crate::domain::duration::HumanDuration(b.interval);
            let grace = crate::domain::duration::HumanDuration(b.grace);
            let how = if b.alert_spec.is_some() {
                "alert or ping"
            } else {
                "ping"
            };
            format!(
                "{} (every {every} + {grace}, {how}, {})",
                b.name, b.severity
            )
        })
        .collect();
    list.join(", ")
}

/// The API tokens and their roles, or why every call will be refused.
fn tokens_line(s: &Settings) -> String {
    if s.tokens.is_empty() {
        "none (every API call will be refused)".to_string()
    } else {
        s.tokens
            .iter()
            .map(|t| {
                let roles: Vec<_> = t.roles.iter().map(|r| r.as_str()).collect();
                format!("{} [{}]", t.name, roles.join(","))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The example configuration's public secrets are in use: where they are let through.
fn trial_secrets_warning(s: &Settings) {
    println!(
        "  warning: the public trial secrets of the example configuration are in use: {}. Anyone who read the README can use them: replace them before incidentd sees real data{}",
        s.trial_secrets.join(", "),
        if s.server.listen.ip().is_loopback() {
            " (they are refused on any address but loopback unless server.allow_trial_secrets = true)"
        } else {
            " (server.allow_trial_secrets = true lets them through on this address)"
        }
    );
}

/// The channels configured, the inbox always.
fn channels_line(s: &Settings) -> String {
    let c = &s.channels;
    let mut channels = vec!["inbox".to_string()];
    if let Some(e) = &c.email {
        channels.push(format!("email (smtp, {} connections)", e.pool_max));
    }
    if let Some(p) = &c.sms {
        channels.push(format!("sms ({})", p.provider.as_str()));
    }
    if let Some(p) = &c.voice {
        channels.push(format!("voice ({})", p.provider.as_str()));
    }
    if c.site_webhook.is_some() {
        channels.push("site_webhook".into());
    }
    if !c.webhooks.is_empty() {
        let names: Vec<&str> = c.webhooks.iter().map(|w| w.name.as_str()).collect();
        channels.push(format!("webhook ({})", names.join(", ")));
    }
    channels.join(", ")
}

/// How departments are paged, and what could keep a page from arriving.
fn check_paging(s: &Settings, templates: Option<&crate::render::Templates>) {
    let names = templates.map(|t| t.names()).unwrap_or_default();
    let (line, warnings) = crate::engine::paging::check(&s.paging, &s.channels, &names);
    println!("  paging          {line}");
    for w in warnings {
        println!("  warning: {w}");
    }
}

/// Load the drill scenarios as the daemon does; print them and their schedules.
fn check_drills(s: &Settings, templates: &crate::render::Templates) -> bool {
    let playbooks = crate::server::load_playbooks(s, templates).ok().flatten();
    match crate::server::load_drills(s, templates, playbooks.as_ref()) {
        Ok(d) if d.is_empty() => {
            println!("  drills          none (add config/drills/*.toml or set [paths] drills)");
            true
        }
        Ok(d) => {
            let list: Vec<String> = d
                .all()
                .map(|sc| {
                    let mode = serde_json::to_value(sc.mode).unwrap_or_default();
                    let when = s
                        .drills
                        .schedule
                        .iter()
                        .find(|x| x.scenario == sc.name)
                        .map(|x| format!(", cron `{}` {}", x.cron, x.time_zone))
                        .unwrap_or_default();
                    format!(
                        "{} ({}, {} injects{when})",
                        sc.name,
                        mode.as_str().unwrap_or_default(),
                        sc.injects.len()
                    )
                })
                .collect();
            println!(
                "  drills          {}: {}",
                s.drills_path
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                list.join(", ")
            );
            let hooks: Vec<&str> = s
                .channels
                .webhooks
                .iter()
                .map(|w| w.name.as_str())
                .collect();
            for sc in d.all() {
                for w in sc
                    .capture
                    .webhook
                    .iter()
                    .filter(|w| !hooks.contains(&w.as_str()))
                {
                    println!(
                        "  warning         drill `{}` captures to webhook `{w}`, which no [[channels.webhooks]] defines: those captures will fail",
                        sc.name
                    );
                }
            }
            true
        }
        Err(e) => {
            eprintln!(
                "error: {} drill scenario problem{}:\n  {}",
                e.problems.len(),
                if e.problems.len() == 1 { "" } else { "s" },
                e.problems.join("\n  ")
            );
            false
        }
    }
}

/// Load the jurisdiction packs as the daemon does; print what they grade and owe.
fn check_packs(s: &Settings, templates: &crate::render::Templates) -> bool {
    match crate::server::load_packs(s, templates) {
        Ok(p) if p.is_empty() => {
            println!(
                "  jurisdictions   none: incidents are not graded and no regulator deadlines are tracked (add config/jurisdictions/*.toml or set [paths] jurisdictions)"
            );
            true
        }
        Ok(p) => {
            let list: Vec<String> = p
                .all()
                .iter()
                .map(|pack| {
                    format!(
                        "{} ({} grades, {} obligations, {} reports)",
                        pack.code,
                        pack.grades.len(),
                        pack.obligations.len(),
                        pack.reports.len()
                    )
                })
                .collect();
            println!(
                "  jurisdictions   {}: {}",
                s.jurisdictions_path
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                list.join(", ")
            );
            let applied: Vec<&str> = s
                .organisation
                .jurisdictions
                .iter()
                .map(|j| j.as_str())
                .collect();
            let missing: Vec<&str> = applied
                .iter()
                .copied()
                .filter(|j| p.all().iter().all(|pack| pack.code.as_str() != *j))
                .collect();
            if !missing.is_empty() {
                println!(
                    "  warning         [organisation] jurisdictions {} have no pack: nothing is tracked for them",
                    missing.join(", ")
                );
            }
            true
        }
        Err(e) => {
            eprintln!(
                "error: {} jurisdiction pack problem{}:\n  {}",
                e.problems.len(),
                if e.problems.len() == 1 { "" } else { "s" },
                e.problems.join("\n  ")
            );
            false
        }
    }
}

/// Load the playbooks as the daemon does, against the departments and templates; print what
/// they are.
fn check_playbooks(s: &Settings, templates: &crate::render::Templates) -> bool {
    match crate::server::load_playbooks(s, templates) {
        Ok(None) => {
            println!(
                "  playbooks       not loaded: no [[departments]], so incidents get no team (add departments to page anyone)"
            );
            println!(
                "  warning         a critical alert that no rule matches pages nobody: there are no [[departments]]"
            );
            true
        }
        Ok(Some(p)) => {
            let list: Vec<String> = p
                .all()
                .iter()
                .map(|pb| format!("{} ({} tasks)", pb.id, pb.tasks.len()))
                .collect();
            println!(
                "  playbooks       {}: {}",
                s.playbooks_path.display(),
                list.join(", ")
            );
            let ids: Vec<&str> = s.departments.iter().map(|d| d.id.as_str()).collect();
            println!("  departments     {}", ids.join(", "));
            match triage_reach(s, &p) {
                Ok(who) => println!("  unmatched       {who}"),
                Err(why) => println!("  warning         {why}"),
            }
            true
        }
        Err(e) => {
            eprintln!(
                "error: {} playbook problem{}:\n  {}",
                e.problems.len(),
                if e.problems.len() == 1 { "" } else { "s" },
                e.problems.join("\n  ")
            );
            false
        }
    }
}

/// Who a `severity=critical` alert that no rule matches pages, or why nobody.
fn triage_reach(
    s: &Settings,
    playbooks: &crate::domain::playbook::Playbooks,
) -> Result<String, String> {
    let label = |v: &str| -> std::collections::BTreeMap<String, String> {
        [("severity".to_string(), v.to_string())]
            .into_iter()
            .collect()
    };
    let nobody = "a critical alert that no rule matches pages nobody";
    let Some(min) = s.rules.triage_from() else {
        return Err(format!(
            "{nobody}: [unmatched] policy = \"record\" in {} only records it",
            s.classification_path.display()
        ));
    };
    let Some(c) = s.rules.triage(&label("critical")) else {
        return Err(format!(
            "{nobody}: `severity=critical` maps to {}, below [unmatched] min_severity = {min}",
            s.rules
                .sender_severity(&label("critical"))
                .map_or("no severity (add it to severity_map)".into(), |x| x
                    .to_string())
        ));
    };
    let pb = playbooks.select(c.category, c.severity);
    let configured = s.channels.kinds();
    let channels: Vec<_> = s
        .paging
        .channels
        .get(&c.severity)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|ch| configured.contains(ch))
        .collect();
    let mut reached = Vec::new();
    for d in s
        .departments
        .iter()
        .filter(|d| pb.departments.contains(&d.id))
    {
        let first = d.levels().first().copied().unwrap_or(1);
        let n = d
            .at_level(first)
            .filter(|m| {
                channels.iter().any(|ch| match ch {
                    crate::domain::message::ChannelKind::Email => m.email.is_some(),
                    crate::domain::message::ChannelKind::Sms
                    | crate::domain::message::ChannelKind::Voice => m.phone.is_some(),
                    _ => false,
                })
            })
            .count();
        if n > 0 {
            reached.push(format!("{} ({n})", d.id));
        }
    }
    if reached.is_empty() {
        return Err(format!(
            "{nobody}: playbook `{}` pages no level-1 member reachable on the {} channels configured for {}",
            pb.id,
            channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("/"),
            c.severity
        ));
    }
    Ok(format!(
        "alerts no rule matches open a triage incident from sender severity {min} up (critical: {}, playbook `{}`, paging {})",
        c.severity,
        pb.id,
        reached.join(", ")
    ))
}

async fn open(path: &Path) -> anyhow::Result<(Settings, Store)> {
    let s = load(path)?;
    let store = Store::connect(&s)
        .await
        .with_context(|| format!("cannot open the store at {}", store::describe(&s)))?;
    Ok((s, store))
}

pub async fn migrate(path: &Path) -> anyhow::Result<i32> {
    let (s, store) = open(path).await?;
    store.migrate().await?;
    println!(
        "{} schema is up to date at {}",
        store.backend(),
        store::describe(&s)
    );
    store.close().await;
    Ok(0)
}

pub async fn audit_verify(
    path: &Path,
    expect: Option<&crate::store::ExpectHead>,
    json: bool,
) -> anyhow::Result<i32> {
    let (_, store) = open(path).await?;
    let tty = std::io::stderr().is_terminal() && !json;
    let report = store
        .verify_audit_with(expect, |n| {
            if tty {
                eprint!("\rchecked {n} events…");
                let _ = std::io::stderr().flush();
            }
        })
        .await?;
    if tty {
        eprint!("\r\x1b[K");
    }
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", verify_text(&report));
    }
    Ok(if report.intact() { 0 } else { 1 })
}

/// What `audit verify` prints.
fn verify_text(r: &crate::store::VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let macs = if r.keyed {
        format!(
            "{} MACs checked{}",
            r.macs_checked,
            if r.unkeyed_events > 0 {
                format!(
                    " ({} earlier events from before [audit] key was set)",
                    r.unkeyed_events
                )
            } else {
                String::new()
            }
        )
    } else {
        "no [audit] key: MACs not checked, so a chain rewritten with recomputed hashes is caught only by --expect-head".to_string()
    };
    match &r.problem {
        Some(problem) => match r.broken_at {
            Some(at) if r.problems.is_empty() => {
                let _ = writeln!(out, "audit trail BROKEN at event {at}: {problem}");
                let _ = writeln!(
                    out,
                    "  events 1 to {} are intact; nothing from event {at} on can be trusted",
                    at - 1
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "audit trail BROKEN: {} sealed rows differ from what the chain recorded:",
                    r.problems.len()
                );
                for p in &r.problems {
                    let _ = writeln!(out, "  - {p}");
                }
                let _ = writeln!(
                    out,
                    "  the chain itself is intact: {} events, {} alerts, {} rows checked; {macs}",
                    r.events, r.alerts_checked, r.rows_checked
                );
            }
        },
        None => {
            let _ = writeln!(
                out,
                "audit trail intact: {} events, {} alerts, {} sealed rows checked",
                r.events, r.alerts_checked, r.rows_checked
            );
            let _ = writeln!(out, "  {macs}");
            let _ = writeln!(out, "  head {}:{}", r.head_id, r.head);
            let _ = writeln!(
                out,
                "  (keep the head elsewhere: `--expect-head {}:{}` later shows whether the chain still passes through it)",
                r.head_id, r.head
            );
        }
    }
    out
}

pub async fn accounts(cmd: super::AccountsCommand) -> anyhow::Result<i32> {
    match cmd {
        super::AccountsCommand::Password { login, config } => {
            let (s, store) = open(&config.config).await?;
            let known = s
                .departments
                .iter()
                .any(|d| d.members.iter().any(|m| m.login.as_deref() == Some(&login)));
            anyhow::ensure!(
                known,
                "no member of [[departments]] has login = \"{login}\": add it to their [[departments.members]] first"
            );
            store.migrate().await?;
            let password = read_password()?;
            anyhow::ensure!(
                password.chars().count() >= 12,
                "give a password of at least 12 characters"
            );
            let hash = crate::console::hash_password(&password).map_err(|e| anyhow::anyhow!(e))?;
            store
                .set_password_hash(&login, &hash, chrono::Utc::now().timestamp_micros())
                .await?;
            store.close().await;
            println!("password set for {login} (its open console sessions ended)");
            Ok(0)
        }
        super::AccountsCommand::List { config } => {
            let (s, store) = open(&config.config).await?;
            store.migrate().await?;
            let set: std::collections::HashMap<String, i64> =
                store.accounts().await?.into_iter().collect();
            store.close().await;
            for d in &s.departments {
                for m in &d.members {
                    let Some(login) = &m.login else { continue };
                    let roles = m.roles.as_ref().map_or_else(
                        || "responder, approver".to_string(),
                        |r| r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
                    );
                    let pw = if set.contains_key(login) {
                        "password set"
                    } else {
                        "no password"
                    };
                    println!("{login}\t{}\t{roles}\t{pw}\t{}", d.id, m.name);
                }
            }
            Ok(0)
        }
    }
}

/// One line from standard input; on a terminal, asked twice (the terminal shows it: prefer
/// `read -rs` and a pipe, as the help says).
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let read = |prompt: &str| -> anyhow::Result<String> {
        if tty {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
        }
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    let first = read("new password: ")?;
    if tty {
        let again = read("again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
    }
    Ok(first)
}

pub fn audit_keygen() -> anyhow::Result<i32> {
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("no randomness available"))?;
    println!("{}", hex::encode(raw));
    eprintln!(
        "Keep this key secret and off the database's host: give it as [audit] key_file (a systemd credential). \
         Someone holding both the key and write access to the database can still rewrite the chain."
    );
    Ok(0)
}

pub fn token(cmd: TokenCommand) -> anyhow::Result<i32> {
    match cmd {
        TokenCommand::New { name, roles } => {
            let mut raw = [0u8; 24];
            aws_lc_rs::rand::fill(&mut raw)
                .map_err(|_| anyhow::anyhow!("no randomness available"))?;
            let token = format!("idt_{}", hex::encode(raw));
            let roles: Vec<String> = roles
                .iter()
                .map(|r| format!("\"{}\"", r.as_str()))
                .collect();
            println!("token: {token}");
            println!("(give it to its holder now: incidentd keeps only its hash)\n");
            println!("[[auth.tokens]]");
            println!("name = \"{name}\"");
            println!(
                "sha256 = \"{}\"",
                hex::encode(crate::api::token_hash(&token))
            );
            println!("roles = [{}]", roles.join(", "));
            Ok(0)
        }
        TokenCommand::Hash => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            let t = s.trim();
            anyhow::ensure!(!t.is_empty(), "give the token on standard input");
            println!("{}", hex::encode(crate::api::token_hash(t)));
            Ok(0)
        }
    }
}
