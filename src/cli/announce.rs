//! `incidentd announce`: publish (or update) an incident's public announcement, or show its
//! versions.

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientArgs;
use super::client::{Client, print};

pub const HELP: &str = "\
Examples:
  incidentd announce 42 --reason 'only 35% of affected users are reachable by SMS or e-mail'
  incidentd announce 42 --history          every version and its approval, oldest first

The public announcement tells everyone at once what individual notices tell each person: what
happened and the possible impact, the kinds of information, the cause, the measures taken and
planned, what people can do, the remedies and the PI-protection officer's contact. It is
rendered from the incident's current facts in every language of the template
([announcements] template, default announcement/pi_leak: zh-CN and en) and served without a
token at <public_url>/announcements/<slug>, listed at /announcements and in the Atom feed
/announcements/feed.xml.

Nothing is public until it is approved: each new version waits for its approval gate, decided
by every department in [announcements] approvers (Public Relations and Legal by default), who
are paged (`incidentd approve <task>`). Once approved it is the version served at the address,
listed, in the feed and pushed to the webhook; rejected, it never is. The same applies to the
version the notice campaign drafts when individual notice is impractical.

Publishing again after the facts change (incidentd facts 42 --set remedies=…) adds a version;
once approved, the page shows it as an update, with the version history. A newer version
supersedes one still waiting. The same words again add nothing.
A fact the announcement cannot go without is named in the refusal (409): fill it in first.
With [announcements] webhook = \"<a [[channels.webhooks]] name>\", each version is also pushed,
signed, to that target (e.g. the public website).

A drill's announcement is marked DRILL, served at its own address (drill-…), never listed nor
in the feed; its webhook push is stopped by the drill guard unless the target is on the drill's
recipient list. The --reason is kept in the audit trail and the version history (API only; it
is not shown on the public page). Needs a token with the responder role.";

#[derive(Debug, Args)]
pub struct AnnounceArgs {
    /// The incident.
    pub incident: i64,
    /// Why the announcement is published now (kept in the audit trail).
    #[arg(long, required_unless_present = "history", conflicts_with = "history")]
    pub reason: Option<String>,
    /// Show the published versions instead of publishing.
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(a: AnnounceArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let path = format!("/api/v1/incidents/{}/announcement", a.incident);
    match a.reason {
        Some(reason) if !a.history => {
            let v = c
                .call(Method::POST, &path, Some(json!({ "reason": reason })))
                .await?;
            print(&a.client, &v, published);
        }
        _ => {
            let v = c.call(Method::GET, &path, None).await?;
            print(&a.client, &v, history);
        }
    }
    Ok(0)
}

fn published(v: &Value) {
    if v["created"].as_bool() == Some(true) {
        println!("announcement {}: {}", str(&v["slug"]), str(&v["detail"]));
        if let Some(t) = v["approval_task"].as_i64() {
            println!(
                "  approve it: incidentd approve {t}   (each of {})",
                v["approvers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    } else {
        println!("announcement {} {}", str(&v["slug"]), str(&v["detail"]));
    }
    println!("  {}", str(&v["url"]).split('?').next().unwrap_or_default());
    if v["drill"].as_bool() == Some(true) {
        println!("  DRILL: served at its address, not listed nor in the feed");
    }
    if let Some(d) = v["webhook_delivery"].as_i64() {
        println!("  pushed to the webhook as delivery {d}");
    }
}

fn history(v: &Value) {
    println!(
        "announcement {}  {}  (public: {})",
        str(&v["slug"]),
        str(&v["url"]),
        v["public_version"]
            .as_i64()
            .map_or_else(|| "none yet".to_string(), |n| format!("version {n}"))
    );
    for x in v["versions"].as_array().into_iter().flatten() {
        println!(
            "  version {:<3} {:<17} {}  {}  {}",
            x["version"],
            str(&x["status"]),
            str(&x["published_at"]),
            str(&x["actor"]),
            str(&x["reason"])
        );
    }
}

fn str(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}
