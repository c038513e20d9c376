//! `incidentd obligations` and `obligation met`: what the law asks of incidents, by when.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientArgs;
use super::client::{Client, print};

pub const HELP: &str = "\
Examples:
  incidentd obligations                        everything still owed, soonest deadline first
  incidentd obligations --due-within 4h        due in the next 4 hours, and everything overdue
  incidentd obligations --incident 42          incident 42's grade per jurisdiction and every
                                               obligation (met, exempt, held, withdrawn too),
                                               each with why
  incidentd obligations --all                  also met, exempt, held and withdrawn ones
  incidentd obligations --jurisdiction SG

Each line says how much time is left in a person's terms (`2h 5m left`, `40m overdue`). The
jurisdiction packs (config/jurisdictions/*.toml) decide what is owed.";

pub const MET_HELP: &str = "\
Examples:
  incidentd obligation met 42 CN:police_report --reference '沪公网安备 2026-1187'
  incidentd obligation met 42 SG:assessment --reference 'DPO memo 2026-03' \\
      --late-reason 'forensics report arrived on day 31'

Reports are met by submitting the approved report, not here.";

#[derive(Debug, Args)]
pub struct ObligationsArgs {
    /// Only those due within this long (e.g. 4h, 3d), and those overdue.
    #[arg(long, value_name = "DURATION")]
    pub due_within: Option<crate::domain::duration::HumanDuration>,
    #[arg(long)]
    pub incident: Option<i64>,
    /// CN, SG, EU, …
    #[arg(long)]
    pub jurisdiction: Option<String>,
    /// Also met, exempt, not required, held and withdrawn obligations.
    #[arg(long)]
    pub all: bool,
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ObligationCommand {
    /// Record that an obligation (not a report) was met outside incidentd.
    Met {
        incident: i64,
        /// The obligation's key, e.g. CN:police_report.
        key: String,
        /// What shows it was met: a receipt, case or document number.
        #[arg(long)]
        reference: String,
        /// When it was met (RFC 3339), if not now.
        #[arg(long)]
        at: Option<chrono::DateTime<chrono::Utc>>,
        /// Why it was late (required after its deadline).
        #[arg(long)]
        late_reason: Option<String>,
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

fn due(v: &Value) -> String {
    v.as_str()
        .map(|d| d.get(..16).unwrap_or(d).replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

fn table(list: &[Value]) {
    if list.is_empty() {
        println!("nothing owed");
        return;
    }
    println!(
        "{:>8}  {:<28} {:<20} {:<16} {:<18} {:<20}  TITLE",
        "INCIDENT", "OBLIGATION", "OWNER", "DUE (UTC)", "TIME LEFT", "TO"
    );
    for o in list {
        println!(
            "{:>8}  {:<28} {:<20} {:<16} {:<18} {:<20}  {}",
            s(&o["incident_id"]),
            s(&o["key"]),
            s(&o["owner"]),
            due(&o["due_at"]),
            s(&o["time_left"]),
            o["recipient"].as_str().unwrap_or("-"),
            s(&o["title"]),
        );
    }
}

fn incident_view(v: &Value) {
    for g in v["grades"].as_array().into_iter().flatten() {
        println!(
            "{} grade {}: {}",
            s(&g["jurisdiction"]),
            s(&g["grade"]),
            s(&g["why"])
        );
    }
    let list = v["obligations"].as_array().cloned().unwrap_or_default();
    println!();
    table(&list);
    for o in &list {
        println!(
            "\n{} — {} ({})",
            s(&o["key"]),
            s(&o["title"]),
            s(&o["standing"])
        );
        for w in o["why"].as_array().into_iter().flatten() {
            println!("  · {}", s(w));
        }
        if let Some(r) = o["met_ref"].as_str() {
            println!(
                "  met by {r}{}",
                o["late_reason"]
                    .as_str()
                    .map(|l| format!(" — late: {l}"))
                    .unwrap_or_default()
            );
        }
    }
}

pub async fn list(a: ObligationsArgs) -> anyhow::Result<i32> {
    let c = Client::new(&a.client)?;
    // One incident: its grades, and every obligation with why.
    if let Some(id) = a.incident
        && a.due_within.is_none()
        && a.jurisdiction.is_none()
    {
        let v = c
            .call(
                Method::GET,
                &format!("/api/v1/incidents/{id}/obligations"),
                None,
            )
            .await?;
        print(&a.client, &v, incident_view);
        return Ok(0);
    }
    let mut q = vec![format!("limit={}", a.limit)];
    if let Some(d) = &a.due_within {
        q.push(format!("due_within={d}"));
    }
    if let Some(i) = a.incident {
        q.push(format!("incident={i}"));
    }
    if let Some(j) = &a.jurisdiction {
        q.push(format!("jurisdiction={j}"));
    }
    if a.all {
        q.push("all=true".into());
    }
    let v = c
        .call(
            Method::GET,
            &format!("/api/v1/obligations?{}", q.join("&")),
            None,
        )
        .await?;
    print(&a.client, &v, |v| {
        table(&v["items"].as_array().cloned().unwrap_or_default())
    });
    Ok(0)
}

pub async fn obligation(cmd: ObligationCommand) -> anyhow::Result<i32> {
    let ObligationCommand::Met {
        incident,
        key,
        reference,
        at,
        late_reason,
        client,
    } = cmd;
    let c = Client::new(&client)?;
    let v = c
        .call(
            Method::POST,
            &format!(
                "/api/v1/incidents/{incident}/obligations/{}/met",
                key.replace('#', "%23")
            ),
            Some(json!({"reference": reference, "at": at, "late_reason": late_reason})),
        )
        .await?;
    print(&client, &v, |o| {
        println!(
            "{} of incident {} is {} ({})",
            s(&o["key"]),
            s(&o["incident_id"]),
            s(&o["status"]),
            s(&o["time_left"])
        );
    });
    Ok(0)
}
