//! `incidentd heartbeats` and `incidentd heartbeat ping`: dead-man's switches.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use super::ClientArgs;
use super::client::{Client, print};

pub const LIST_HELP: &str = "\
Heartbeats are configured in incidentd.toml ([[heartbeats]]): a signal expected at least every
`interval` (plus `grace`) — an always-firing alert such as Alertmanager's Watchdog, or a ping. A
late one opens an incident saying which source went silent since when, and pages.

States: ok (heard from in time), never (not heard from yet, not late yet), late.

Examples:
  incidentd heartbeats
  incidentd heartbeat ping nightly_backup        (a token with the ingest role)";

pub const PING_HELP: &str = "\
Examples:
  incidentd heartbeat ping nightly_backup
  # from a cron job or a script, without the CLI:
  curl -fsS -X POST -H \"Authorization: Bearer $INCIDENTD_TOKEN\" \\
      http://127.0.0.1:8600/api/v1/heartbeats/nightly_backup";

#[derive(Debug, Args)]
pub struct HeartbeatsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum HeartbeatCommand {
    /// Signal a heartbeat: its source is alive (a token with the ingest role).
    #[command(after_help = PING_HELP)]
    Ping {
        /// A configured heartbeat's name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn when(v: &Value) -> String {
    v.as_str()
        .map(|t| t.get(..19).unwrap_or(t).replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

fn line(b: &Value) {
    println!(
        "{:<24}  {:<6}  {:>6}+{:<6}  {:<19}  {:<24}  {:<19}  {}",
        s(&b["name"]),
        s(&b["state"]),
        s(&b["interval"]),
        s(&b["grace"]),
        when(&b["last_seen_at"]),
        s(&b["last_via"]),
        when(&b["next_due"]),
        b["incident_id"]
            .as_i64()
            .map_or("-".to_string(), |i| format!("#{i}")),
    );
}

fn header() {
    println!(
        "{:<24}  {:<6}  {:>13}  {:<19}  {:<24}  {:<19}  INCIDENT",
        "NAME", "STATE", "EVERY+GRACE", "LAST SEEN (UTC)", "VIA", "DUE BY (UTC)"
    );
}

pub async fn list(a: HeartbeatsArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let v = c.call(Method::GET, "/api/v1/heartbeats", None).await?;
    print(&a.client, &v, |v| {
        let list = v["items"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            println!("no heartbeats are configured ([[heartbeats]] in incidentd.toml)");
            return;
        }
        header();
        for b in &list {
            line(b);
        }
    });
    Ok(0)
}

pub async fn heartbeat(cmd: HeartbeatCommand) -> anyhow::Result<i32> {
    let HeartbeatCommand::Ping { name, client } = cmd;
    let c = Client::new(&client)?;
    let v = c
        .call(Method::POST, &format!("/api/v1/heartbeats/{name}"), None)
        .await?;
    print(&client, &v, |b| {
        println!(
            "heartbeat {} is {}: seen {}, due again by {} UTC",
            s(&b["name"]),
            s(&b["state"]),
            when(&b["last_seen_at"]),
            when(&b["next_due"])
        )
    });
    Ok(0)
}
