//! When correlation got it wrong: move an alert, promote a recorded one, merge incidents.

use reqwest::Method;
use serde_json::json;

use super::ClientArgs;
use super::client::{Client, print};
use super::output;

pub const MOVE_HELP: &str = "\
Every notification of the alert (same source and fingerprint) in its incident moves, and later
ones join the new incident. A recorded alert (in no incident) is attached. Both timelines say so.

Example:
  incidentd alerts move 812 --to 41 --reason 'same exfiltration as #41, other host'";

pub const PROMOTE_HELP: &str = "\
For an alert that matched no rule (or a rule that opens no incident) but deserves one. Its other
recorded notifications go with it; later alerts of its group join the new incident, which gets
its playbook and team like any other.

Examples:
  incidentd alerts list --unmatched
  incidentd alerts promote 77 --reason 'DLP export to an unknown host'
  incidentd alerts promote 77 --category pi_leak --title '客户表批量导出' --reason '…'";

pub const MERGE_HELP: &str = "\
The merged incident's alerts, group keys, facts and earlier clocks go to the survivor, whose
classification may rise, never fall; it becomes `merged`, pointing at the survivor, and owes
nothing more. Both timelines are kept, and the survivor's shows the merged one's events.
An incident that already holds affected people, notice campaigns, submitted reports or an
announcement is not merged away: merge the other one into it.

Example:
  incidentd merge 42 --into 41 --reason 'one leak, found twice'";

#[derive(Debug, clap::Args)]
pub struct MoveArgs {
    /// The alert's id (`incidentd alerts list`).
    pub alert: i64,
    /// The incident it belongs to.
    #[arg(long)]
    pub to: i64,
    /// Why (kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The alert's id (`incidentd alerts list --unmatched`).
    pub alert: i64,
    /// Default: the alert's title.
    #[arg(long)]
    pub title: Option<String>,
    /// Default: the alert's classification, else unclassified.
    #[arg(long)]
    pub category: Option<crate::domain::Category>,
    /// Default: the alert's classification, else S3 (PI is always S1).
    #[arg(long)]
    pub severity: Option<crate::domain::Severity>,
    /// Why (kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The incident that goes away.
    pub id: i64,
    /// The incident that carries on.
    #[arg(long)]
    pub into: i64,
    /// Why (kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn move_alert(a: MoveArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let v = c
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{}/move", a.alert),
            Some(json!({ "incident": a.to, "reason": a.reason })),
        )
        .await?;
    print(&a.client, &v, |v| {
        let n = v["alerts"].as_array().map_or(0, Vec::len);
        let from = v["from"]
            .as_i64()
            .map_or("no incident".to_string(), |i| format!("incident {i}"));
        println!(
            "alert {} moved from {from} to incident {} ({n} notification{})",
            a.alert,
            v["to"],
            if n == 1 { "" } else { "s" }
        );
    });
    Ok(0)
}

pub async fn promote(a: PromoteArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let mut body = json!({ "reason": a.reason });
    if let Some(t) = a.title {
        body["title"] = json!(t);
    }
    if let Some(x) = a.category {
        body["category"] = json!(x);
    }
    if let Some(x) = a.severity {
        body["severity"] = json!(x);
    }
    let v = c
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{}/promote", a.alert),
            Some(body),
        )
        .await?;
    print(&a.client, &v, |v| {
        println!("alert {} opened incident {}:", a.alert, v["id"]);
        output::incident_summary(v);
    });
    Ok(0)
}

pub async fn merge(a: MergeArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    let v = c
        .call(
            Method::POST,
            &format!("/api/v1/incidents/{}/merge", a.id),
            Some(json!({ "into": a.into, "reason": a.reason })),
        )
        .await?;
    print(&a.client, &v, |v| {
        println!("incident {} merged into incident {}:", a.id, v["id"]);
        output::incident_summary(v);
    });
    Ok(0)
}
