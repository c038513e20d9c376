//! `incidentd silence add|expire|show` and `incidentd silences`: maintenance windows.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientArgs;
use super::client::{Client, print};

pub const SILENCE_HELP: &str = "\
A silence records matching alerts as silenced: they open and join no incident and page nobody.
Alerts classified as personal information are never silenced. Expired silences are kept.

Examples:
  incidentd silence add --match alertname=DiskFull --match 'instance=~db-.*' --for 2h \\
      --reason 'CHG-1042 disk replacement on the db hosts'
  incidentd silence add --rule network-attack --source waf --starts 2026-03-01T22:00:00Z \\
      --until 2026-03-02T02:00:00Z --reason 'scheduled penetration test'
  incidentd silences --state active
  incidentd silence show 3
  incidentd silence expire 3 --reason 'maintenance finished early'";

pub const ADD_HELP: &str = "\
Matchers work like Alertmanager's, on alert labels (all must match):
  name=value   name!=value   name=~regex   name!~regex
Regexes are anchored (=~db-.* matches db-1, not web-db-1) and case-sensitive; a label the alert
does not have counts as empty. --source matches the alert's source exactly (alertmanager, grafana,
siem, …); --rule names a classification rule (see config/classification.toml).

Examples:
  incidentd silence add --match alertname=DiskFull --match 'instance=~db-.*' --for 2h \\
      --reason 'CHG-1042 disk replacement on the db hosts'
  incidentd silence add --match 'alertname=~Disk.*|Inode.*' --until 2026-03-02T06:00:00Z \\
      --reason 'storage migration'
  incidentd silence add --rule network-attack --source waf --starts 2026-03-01T22:00:00Z \\
      --for 4h --reason 'scheduled penetration test'";

pub const LIST_HELP: &str = "\
Examples:
  incidentd silences                   every silence, newest first (expired ones are kept)
  incidentd silences --state active    silencing now
  incidentd silences --state pending   starting later
  incidentd alerts list --silenced     the alerts silences silenced";

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Create a silence (responder).
    #[command(after_help = ADD_HELP)]
    Add(AddArgs),
    /// End a silence now, with a reason; it is kept, expired (responder).
    Expire {
        /// The silence's id (from `incidentd silences`).
        id: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One silence: what it matches, when, who made it and why, what it silenced.
    Show {
        id: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A label matcher: name=value, name!=value, name=~regex or name!~regex (repeatable; all
    /// must match).
    #[arg(long = "match", value_name = "MATCHER")]
    pub matchers: Vec<String>,
    /// Only alerts from this source (exactly).
    #[arg(long)]
    pub source: Option<String>,
    /// Only alerts this classification rule matched.
    #[arg(long)]
    pub rule: Option<String>,
    /// How long: 90m, 2h, 1d.
    #[arg(
        long = "for",
        value_name = "DURATION",
        required_unless_present = "until",
        conflicts_with = "until"
    )]
    pub duration: Option<String>,
    /// When it ends (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// When it starts (RFC 3339; default now).
    #[arg(long, value_name = "TIME")]
    pub starts: Option<chrono::DateTime<chrono::Utc>>,
    /// Why (a change ticket, the maintenance): kept with the silence.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct SilencesArgs {
    /// Only silences that are active, pending or expired now.
    #[arg(long, value_parser = ["active", "pending", "expired"])]
    pub state: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub client: ClientArgs,
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
        .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

/// What a silence matches, on one line.
fn what(v: &Value) -> String {
    let mut parts: Vec<String> = v["matchers"]
        .as_array()
        .map(|m| m.iter().map(s).collect())
        .unwrap_or_default();
    if let Some(src) = v["source"].as_str() {
        parts.push(format!("source={src}"));
    }
    if let Some(r) = v["rule"].as_str() {
        parts.push(format!("rule={r}"));
    }
    parts.join(" ")
}

fn table(v: &Value) {
    let list = v["items"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no silences");
        return;
    }
    println!(
        "{:>5}  {:<8}  {:<16}  {:<16}  {:>7}  MATCHES — REASON (BY)",
        "ID", "STATE", "STARTS", "ENDS", "ALERTS"
    );
    for x in &list {
        let ends = match x["expired_at"].as_str() {
            Some(_) => format!("{}*", when(&x["expired_at"])),
            None => when(&x["ends_at"]),
        };
        println!(
            "{:>5}  {:<8}  {:<16}  {:<16}  {:>7}  {} — {} ({})",
            s(&x["id"]),
            s(&x["state"]),
            when(&x["starts_at"]),
            ends,
            s(&x["alerts_silenced"]),
            what(x),
            s(&x["reason"]),
            s(&x["created_by"]),
        );
        if let Some(r) = x["expire_reason"].as_str() {
            println!("{:>5}  * ended early by {}: {r}", "", s(&x["expired_by"]));
        }
    }
}

fn one(v: &Value) {
    let span = match v["state"].as_str() {
        Some("expired") => format!(
            "expired (ended {})",
            when(if v["expired_at"].is_string() {
                &v["expired_at"]
            } else {
                &v["ends_at"]
            })
        ),
        Some("pending") => format!(
            "pending (from {} until {})",
            when(&v["starts_at"]),
            when(&v["ends_at"])
        ),
        _ => format!("active until {}", when(&v["ends_at"])),
    };
    println!("silence {} is {span}: {}", s(&v["id"]), what(v));
    println!(
        "  from {} · by {} · reason: {}",
        when(&v["starts_at"]),
        s(&v["created_by"]),
        s(&v["reason"])
    );
    if v["expired_at"].is_string() {
        println!(
            "  ended early {} by {}: {}",
            when(&v["expired_at"]),
            s(&v["expired_by"]),
            s(&v["expire_reason"])
        );
    }
    println!("  alerts silenced: {}", s(&v["alerts_silenced"]));
}

pub async fn silence(cmd: SilenceCommand) -> anyhow::Result<i32> {
    match cmd {
        SilenceCommand::Add(a) => {
            let c = Client::new(&a.client)?;
            let body = json!({
                "matchers": a.matchers,
                "source": a.source,
                "rule": a.rule,
                "starts_at": a.starts,
                "ends_at": a.until,
                "duration": a.duration,
                "reason": a.reason,
            });
            let v = c.call(Method::POST, "/api/v1/silences", Some(body)).await?;
            print(&a.client, &v, one);
        }
        SilenceCommand::Expire { id, reason, client } => {
            let c = Client::new(&client)?;
            let v = c
                .call(
                    Method::POST,
                    &format!("/api/v1/silences/{id}/expire"),
                    Some(json!({ "reason": reason })),
                )
                .await?;
            print(&client, &v, one);
        }
        SilenceCommand::Show { id, client } => {
            let c = Client::new(&client)?;
            let v = c
                .call(Method::GET, &format!("/api/v1/silences/{id}"), None)
                .await?;
            print(&client, &v, one);
        }
    }
    Ok(0)
}

pub async fn list(a: SilencesArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut q = vec![format!("limit={}", a.limit)];
    if let Some(st) = &a.state {
        q.push(format!("state={st}"));
    }
    let v = c
        .call(
            Method::GET,
            &format!("/api/v1/silences?{}", q.join("&")),
            None,
        )
        .await?;
    print(&a.client, &v, table);
    Ok(0)
}
